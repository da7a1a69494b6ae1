"""Bad requests at the door get 4xx (or a closed connection), never a 5xx, never harm to anyone
else: hypothesis-generated request heads, paths, headers and bodies over raw sockets, malformed
JSON to the admin routes, huge headers, bodies past the limit, and a slow client beside a good
one. After all of it the daemon still serves."""
import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import example
from serve_daemon import start
from nanvix.impl.serve.protocol import HEAD_MAX

pytestmark = pytest.mark.kvm


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    d = start(tmp_path_factory, "serve-bad")
    token, c = d.tenant("good")
    with open(example("echo.c"), "rb") as f:
        c.call("PUT", "/v1/functions/echo", body=f.read())
    d.good = c
    d.good_token = token
    yield d
    code, out = d.stop()
    assert code == 0, out


def address(d):
    host, port = d.url[len("http://"):].rsplit(":", 1)
    return host, int(port)


# How long a request may take to be answered or closed (a hang guard: a loaded machine is slow,
# and a generated request may deploy a function, which builds it). Silence is a failure.
ANSWER_WAIT_S = 60.0
CLOSED = "closed"


class Silent(AssertionError):
    pass


def exchange(d, raw, wait=ANSWER_WAIT_S):
    """Send raw bytes; the status of the answer, or CLOSED if the daemon closed the connection
    without one (a definite end: EOF or a reset). Silence for `wait` seconds raises Silent."""
    s = socket.create_connection(address(d), timeout=wait)
    got = b""
    try:
        try:
            s.sendall(raw)
        except ConnectionError:
            pass   # answered and closed before it read it all (a head or body past its limit): read the answer
        while b"\r\n" not in got:
            try:
                chunk = s.recv(4096)
            except ConnectionError:
                break   # reset: a definite close
            except socket.timeout:
                raise Silent("no answer and no close within %d s to %r" % (wait, raw[:200]))
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    if not got:
        return CLOSED
    assert got.startswith(b"HTTP/1.1 "), got[:200]   # whatever it sends is an HTTP answer
    return int(got[9:12])


def test_silence_is_not_an_answer():
    """exchange() itself: a server that accepts and says nothing fails the check."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        d = type("D", (), {"url": "http://127.0.0.1:%d" % srv.getsockname()[1]})()
        with pytest.raises(Silent):
            exchange(d, b"GET / HTTP/1.1\r\n\r\n", wait=0.2)


def still_serves(d):
    # (a fresh connection: a kept-alive one idle past the daemon's keep-alive, 30 s, is closed by
    # it, and the client retries only requests that change nothing)
    status, r, body = d.client(d.good_token).request("POST", "/v1/functions/echo/invoke", b"fine")
    assert status == 200 and body == b"fine"
    assert d.proc.poll() is None


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW", "G\x00T", ""])
PATHS = st.one_of(
    st.sampled_from(["/", "/v1", "/v1/", "/v1/functions", "/v1/functions/echo", "/v1/functions/echo/invoke",
                     "/v1/functions/../tenants", "/v1/tenants", "/v1/tenants/good/limits", "/v1/invocations/x",
                     "/v1/logs?limit=-1", "/v1/logs?limit=99999999999", "/v1/logs?function=%00",
                     "/v1/functions/echo/invoke?timeout_ms=0", "/v1/functions/echo/invoke?timeout_ms=abc",
                     "/metrics", "/v1/health", "//", "/v1/functions/" + "a" * 5000]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=80).map(lambda p: "/" + p))
HEADER = st.tuples(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e, blacklist_characters=":"),
                           min_size=1, max_size=20),
                   st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")))
AUTH = st.sampled_from(["none", "good", "admin", "junk"])


def test_head_is_answered(door):
    """HEAD is answered (no route takes it: 405, or 404), with no body: the door sends an answer's
    head with its body in one write, and a HEAD answer has none to wait for."""
    for raw in (b"HEAD /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
                b"HEAD /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab"):
        status = exchange(door, raw, wait=10)   # (Silent, before: the answer's head never left)
        assert status != CLOSED and 400 <= status < 500, (status, raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=METHODS, path=PATHS, headers=st.lists(HEADER, max_size=6), body=st.binary(max_size=300),
       auth=AUTH, json_body=st.one_of(st.none(), st.recursive(
           st.none() | st.booleans() | st.integers() | st.text(max_size=40),
           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
           max_leaves=8)))
def test_generated_requests_get_no_5xx(door, method, path, headers, body, auth, json_body):
    if json_body is not None:
        body = json.dumps(json_body).encode()
    token = {"none": None, "good": door.good_token, "admin": door.admin_token, "junk": "nvx_junk"}[auth]
    head = ["%s %s HTTP/1.1" % (method, path), "Host: x", "Content-Length: %d" % len(body)]
    if token:
        head.append("Authorization: Bearer " + token)
    raw = "\r\n".join(head).encode("latin-1", "replace")
    for name, value in headers:
        if name.lower() not in ("content-length", "transfer-encoding", "host", "connection", "expect"):
            raw += b"\r\n" + name.encode() + b": " + value
    status = exchange(door, raw + b"\r\n\r\n" + body)
    assert status == CLOSED or status < 500, (status, raw[:200])
    if status != CLOSED and status >= 300:
        assert 400 <= status < 500
    # (a generated request may deploy, create a tenant or invoke: those are 2xx and fine)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=400))
def test_random_bytes_get_no_5xx(door, raw):
    status = exchange(door, raw + b"\r\n\r\n")
    assert status == CLOSED or 400 <= status < 500, status


def test_malformed_json_huge_headers_large_bodies_and_a_slow_client(door):
    admin = door.admin()
    for body in (b"{", b"[1, 2]", b"\xff\xfe", b'{"tenant": 7}', b'{"tenant": "UPPER"}', b'{"tenant": "' + b"a" * 99 + b'"}'):
        status, _, answer = admin.request("POST", "/v1/tenants", body)
        assert status == 400 and json.loads(answer)["error"]["code"] == "bad_request"
    # a head past the limit: 431, that connection closed
    assert exchange(door, b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * (HEAD_MAX + 10) + b"\r\n\r\n") == 431
    # a body past the limit, announced or chunked
    big = b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % door.good_token.encode()
    assert exchange(door, big + b"Content-Length: 99999999\r\n\r\n") == 413
    chunk = b"8000\r\n" + b"x" * 0x8000 + b"\r\n"
    assert exchange(door, big + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n") == 413
    # a slow client holding half a request does not hold up anyone else
    slow = [socket.create_connection(address(door)) for _ in range(20)]
    for s in slow:
        s.sendall(b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    for _ in range(10):
        still_serves(door)
    for s in slow:
        s.close()
    still_serves(door)


def test_after_everything_the_door_still_serves(door):
    still_serves(door)
    assert door.good.call("GET", "/v1/usage")["tenant"] == "good"
