"""The daemon's open files: `nanvix serve` raises its soft RLIMIT_NOFILE to what its connections
and the host need (up to the hard limit), and a connection past what it has room for is answered
503 (JSON) and closed at once, never left to meet EMFILE; the daemon then still serves."""
import json
import resource
import socket
import time

import pytest

from nanvix.impl.serve.client import Client
from nanvix.impl.serve.daemon import CONNECTIONS_MAX, FD_RESERVE
from nanvix.impl.serve.floor import address, spawn_daemon

pytestmark = pytest.mark.kvm


def nofile_of(pid):
    with open("/proc/%d/limits" % pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def stop(proc, url):
    wait_health(url)   # (its signal handlers are in place once it serves)
    proc.terminate()
    out = proc.communicate(timeout=90)[0].decode(errors="replace")
    assert proc.returncode == 0, out


def wait_health(url):
    c = Client(url, "")
    end = time.monotonic() + 60   # a hang guard, not a timing
    while True:
        try:
            return c.call("GET", "/v1/health")
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def with_nofile(soft, hard):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_serve_raises_its_soft_limit_of_open_files(tmp_path):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_RESERVE + 64:
        pytest.skip("this machine's hard limit of open files (%d) is below what the daemon needs" % hard)
    proc, url, _ = spawn_daemon(str(tmp_path), preexec_fn=with_nofile(256, hard))
    try:
        soft, got_hard = nofile_of(proc.pid)
        want = CONNECTIONS_MAX + FD_RESERVE
        assert got_hard == hard and soft == (want if hard == resource.RLIM_INFINITY else min(want, hard))
    finally:
        stop(proc, url)


def test_a_connection_past_the_budget_is_refused_cleanly(tmp_path):
    room = 24   # the daemon has room for this many connections (uvicorn serves one fewer)
    proc, url, _ = spawn_daemon(str(tmp_path), preexec_fn=with_nofile(FD_RESERVE + room, FD_RESERVE + room))
    socks = []
    try:
        for _ in range(room + 6):
            s = socket.create_connection(address(url), timeout=60)
            socks.append(s)
        # the admitted ask at once, while the refused ones may still be closing: each admitted
        # request is served (uvicorn's own per-request limit would answer some a plain-text 503)
        for s in socks[:room - 1]:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = []
        for s in socks[room - 1:]:
            got = b""
            while chunk := s.recv(4096):   # answered, then closed: a definite end, not a timeout
                got += chunk
            refused.append(got)
        for got in refused:
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 "), got
            assert json.loads(body)["error"]["code"] == "unavailable"
        for s in socks[:room - 1]:
            got = b""
            while b"\r\n\r\n" not in got:
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200 "), got
    finally:
        for s in socks:
            s.close()
        stop(proc, url)
