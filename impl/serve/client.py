"""The HTTP client of a nanvix daemon, as the `nanvix` command uses it.

    c = Client("http://127.0.0.1:8790", token)      # or "unix:/path/to/socket"
    c.call("POST", "/v1/tenants", {"tenant": "acme"})   # -> the JSON answer
    c.invoke("echo", b"hi")                             # -> the JSON object `nanvix run --json` prints

An error answer raises ApiError (a NanvixError) with the daemon's stable code and message, so the
command prints it as one line, as any user's error.
"""
import http.client
import json
import os
import socket
import urllib.parse

from nanvix.impl.errors import NanvixError


class ApiError(NanvixError):
    def __init__(self, status, code, message):
        super().__init__("%s (HTTP %d, %s)" % (message, status, code))
        self.status, self.code = status, code


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def daemon_url(args=None):
    """The daemon to talk to: --host, else $NANVIX_URL, else None (work embedded)."""
    return getattr(args, "host", None) or os.environ.get("NANVIX_URL") or None


class Client:
    def __init__(self, url, token=None, timeout=120):
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("NANVIX_TOKEN", "").strip()
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        if self.url.startswith("unix:"):
            return _UnixConnection(self.url[5:], self.timeout)
        u = urllib.parse.urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise NanvixError("NANVIX_URL must be http://HOST:PORT or unix:/path/to/socket, got %r" % self.url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        return cls(u.hostname, u.port, timeout=self.timeout)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes); one kept-alive connection, reopened when it broke."""
        h = {"Authorization": "Bearer " + self.token} if self.token else {}
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                return r.status, r, data
            except (ConnectionError, http.client.HTTPException) as e:
                self.close()
                # a kept-alive connection the server had closed: one retry on a fresh one, only
                # for requests that change nothing
                if attempt or method not in ("GET", "HEAD"):
                    raise NanvixError("the daemon at %s did not answer: %s" % (self.url, e))
            except OSError as e:
                self.close()
                raise NanvixError("cannot reach the daemon at %s: %s" % (self.url, e))

    def call(self, method, path, obj=None, body=None, headers=None, expect=(200, 201)):
        """A JSON call: obj is sent as JSON (or body as it is); the JSON answer is returned."""
        if obj is not None:
            body, headers = json.dumps(obj).encode(), dict(headers or {}, **{"Content-Type": "application/json"})
        status, _, data = self.request(method, path, body, headers)
        return self._answer(status, data, expect)

    @staticmethod
    def _answer(status, data, expect):
        try:
            obj = json.loads(data) if data else {}
        except ValueError:
            obj = None
        if status not in expect:
            err = obj.get("error", {}) if isinstance(obj, dict) else {}
            raise ApiError(status, err.get("code", "http_%d" % status),
                           err.get("message") or data[:200].decode("utf-8", "replace"))
        if obj is None:
            raise NanvixError("the daemon answered something that is not JSON: %r" % data[:200])
        return obj

    def invoke(self, name, data=b"", timeout_ms=None):
        """One invocation: the JSON object `nanvix run --json` prints (and the invocation id)."""
        path = "/v1/functions/%s/invoke" % urllib.parse.quote(name, safe="")
        if timeout_ms:
            path += "?timeout_ms=%d" % timeout_ms
        status, r, body = self.request("POST", path, data, {"Accept": "application/json"})
        return self._answer(status, body, (200,)), r.getheader("nanvix-invocation")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
