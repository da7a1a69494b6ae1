"""One HTTP/1.1 connection of the front door: uvicorn's httptools protocol with the limits a
public door needs and uvicorn leaves out. A request whose head (request line and headers) passes
HEAD_MAX bytes gets 431; one whose head has not arrived HEAD_TIMEOUT_S after the connection
opened (or after the previous response) gets 408. Either closes only that connection. (Bodies are
bounded by the application, which knows each route's limit; idle keep-alive connections are
closed by uvicorn.)"""
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_MAX = 16 << 10
HEAD_TIMEOUT_S = 10.0


class FrontDoorProtocol(HttpToolsProtocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timeout)

    def data_received(self, data):
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # checked after parsing: a chunk may carry the end of the head and a large body with it
        if self._in_head and self._head_bytes > HEAD_MAX and not self.transport.is_closing():
            self._refuse(431, b'{"error": {"code": "headers_too_large", "message": "the request line and '
                              b'headers are past %d bytes"}}' % HEAD_MAX)

    def on_headers_complete(self):
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self):
        pipelined = bool(self.pipeline)   # (the next request's head has arrived already)
        super().on_response_complete()
        if not self.transport.is_closing() and not pipelined:   # the next head, on a kept-alive connection
            self._in_head, self._head_bytes = True, 0
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timeout)

    def connection_lost(self, exc):
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self):
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes:
                self._refuse(408, b'{"error": {"code": "request_timeout", "message": "the request head '
                                  b'did not arrive within %d s"}}' % HEAD_TIMEOUT_S)
            else:
                self.transport.close()   # an idle connection: nothing to answer

    def _refuse(self, status, body):
        phrase = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body))
        self.transport.close()
