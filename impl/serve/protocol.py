"""One HTTP/1.1 connection of the front door: uvicorn's httptools protocol with the limits a
public door needs and uvicorn leaves out. A request whose head (request line and headers) passes
HEAD_MAX bytes (counted as the parser meets them, however they are split into packets) gets 431;
a head still incomplete HEAD_TIMEOUT_S after its first byte gets 408; a new connection that sends
nothing for HEAD_TIMEOUT_S is closed. Each closes only that connection. A connection past the
server's limit_concurrency is answered 503 at once and closed, so connections never hold more
descriptors than the daemon budgeted for them (see daemon.fd_budget). An answer's head and body
leave in one write (HeadWithBody). (Bodies are bounded by the
application, which knows each route's limit; idle kept-alive connections are uvicorn's.)"""
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_MAX = 16 << 10
HEAD_TIMEOUT_S = 10.0


def uvicorn_options():
    """The HTTP stack of the door (and of the bench's floor, which must be the same): uvloop,
    this protocol, no access log, no Server/Date headers, and no X-Forwarded-* rewriting (the
    door reads no client address; a header from the client must not claim one)."""
    return dict(loop="uvloop", http=FrontDoorProtocol, log_level="warning", access_log=False,
                server_header=False, date_header=False, proxy_headers=False)


class FrontDoorProtocol(HttpToolsProtocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self._head_bytes, self._head_timer = 0, None
        self._in_head, self._head_started, self._too_large = True, False, False
        limit, self.limit_concurrency = self.limit_concurrency, None
        # (None from here on: uvicorn's own check, per request, would answer a plain-text 503 to
        # an admitted connection while refused ones are still closing; admission is here, once)
        if limit is not None and len(self.connections) >= limit:
            self._refuse(503, b'{"error": {"code": "unavailable", "message": "the daemon has its limit of '
                              b'%d connections open: try again"}}' % limit)
            return
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timeout)

    def data_received(self, data):
        if self._in_head and not self._head_started:   # a head begins: it has HEAD_TIMEOUT_S to arrive
            self._head_started = True
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timeout)
        super().data_received(data)

    def on_message_begin(self):
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url):
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name, value):
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, n):
        self._head_bytes += n
        if self._head_bytes > HEAD_MAX:
            self._too_large = True
            raise ValueError("head too large")   # stops the parser: uvicorn answers 400, made 431 below

    def send_400_response(self, msg):
        if self._too_large:
            self._refuse(431, b'{"error": {"code": "headers_too_large", "message": "the request line and '
                              b'headers are past %d bytes"}}' % HEAD_MAX)
        else:
            super().send_400_response(msg)

    def on_headers_complete(self):
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        cycle = self.cycle
        # (not for HEAD: uvicorn writes no body for it, so a held head would never leave)
        if cycle is not None and cycle.scope["method"] != "HEAD" and not isinstance(cycle.transport, HeadWithBody):
            cycle.transport = HeadWithBody(cycle.transport)
            send = cycle.send

            async def send_joined(message):
                if message["type"] == "http.response.start":
                    cycle.transport.hold_next = True
                await send(message)
            cycle.send = send_joined

    def on_response_complete(self):
        pipelined = bool(self.pipeline)   # (the next request's head has arrived already)
        super().on_response_complete()
        if not self.transport.is_closing() and not pipelined:   # idle until the next head (uvicorn's keep-alive)
            self._in_head, self._head_started = True, False

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
            if self._head_started:
                self._refuse(408, b'{"error": {"code": "request_timeout", "message": "the request head '
                                  b'did not arrive within %d s"}}' % HEAD_TIMEOUT_S)
            else:
                self.transport.close()   # an idle connection: nothing to answer

    def _refuse(self, status, body):
        phrase = {408: b"Request Timeout", 431: b"Request Header Fields Too Large",
                  503: b"Service Unavailable"}[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body))
        self.transport.close()


class HeadWithBody:
    """A response's transport as uvicorn's request cycle sees it: the head (held back) goes out
    with the body in one write, so an answer costs one send and one packet, not two (a syscall
    is ~35 us here, and the client wakes once). Anything else is the transport's own."""
    __slots__ = ("transport", "held", "hold_next")

    def __init__(self, transport):
        self.transport, self.held, self.hold_next = transport, None, False

    def write(self, data):
        if self.held is not None:
            data, self.held = self.held + data, None
        if self.hold_next:
            self.hold_next, self.held = False, data
        else:
            self.transport.write(data)

    def close(self):
        if self.held is not None:   # (a head without its body: the app failed; as uvicorn would)
            self.transport.write(self.held)
            self.held = None
        self.transport.close()

    def __getattr__(self, name):
        return getattr(self.transport, name)
