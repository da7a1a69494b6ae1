"""The daemon's lifetime: kill -9 in the middle of a load loses nothing it acknowledged (tenants,
deployments, what functions wrote) and a restarted daemon serves the same functions with the same
tokens; SIGTERM lets an invocation in flight finish and stops every system VM."""
import os
import signal
import threading
import time

import pytest

from conftest import example
from serve_daemon import RunningDaemon, start

pytestmark = pytest.mark.kvm


def system_vm_pids(home):
    """The system VM processes serving tenants of this home."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read()
                if b"nanvix.impl.sysvm" in argv and home.encode() in argv:
                    out.append(int(pid))
        except OSError:
            pass
    return out


def test_kill9_mid_load_then_restart_loses_nothing_acknowledged(tmp_path_factory):
    d = start(tmp_path_factory, "serve-kill9")
    token, c = d.tenant("acme")
    with open(example("counter.c"), "rb") as f:
        c.call("PUT", "/v1/functions/counter", body=f.read())
    with open(example("echo.c"), "rb") as f:
        c.call("PUT", "/v1/functions/echo", body=f.read())
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def load():
        me = d.client(token)
        while not stop.is_set():
            try:
                status, r, body = me.request("POST", "/v1/functions/counter/invoke", b"")
            except Exception:
                return   # the daemon died under us: this one was never acknowledged
            if status == 200 and r.getheader("nanvix-status") == "ok":
                with lock:
                    acked.append(int(body))
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    end = time.monotonic() + 30
    while len(acked) < 20 and time.monotonic() < end:
        time.sleep(0.01)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 20 and len(set(acked)) == len(acked)   # each answer a distinct increment

    d2 = RunningDaemon(d.home)
    try:
        c2 = d2.client(token)   # the same token still authenticates
        names = [f["function"] for f in c2.call("GET", "/v1/functions")["functions"]]
        assert names == ["counter", "echo"]
        after = int(c2.request("POST", "/v1/functions/counter/invoke", b"")[2])
        assert after > max(acked)    # every acknowledged increment is in the store
        assert c2.request("POST", "/v1/functions/echo/invoke", b"back")[2] == b"back"
    finally:
        code, out = d2.stop()
    assert code == 0, out


def test_sigterm_lets_an_invocation_in_flight_finish(tmp_path_factory):
    d = start(tmp_path_factory, "serve-term")
    token, c = d.tenant("acme")
    with open(example("loop.c"), "rb") as f:
        c.call("PUT", "/v1/functions/loop", body=f.read())
    got = {}

    def slow():
        got["answer"] = d.client(token).request("POST", "/v1/functions/loop/invoke?timeout_ms=1500", b"")
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)   # the loop is running in its user VM
    before = system_vm_pids(d.home)
    assert before
    code, out = d.stop(signal.SIGTERM)
    t.join()
    status, r, _ = got["answer"]
    assert status == 200 and r.getheader("nanvix-status") == "timeout"   # ended with a status
    assert code == 0 and "stopped" in out, out
    assert not set(before) & set(system_vm_pids(d.home))   # its system VMs stopped with it
    assert not os.path.exists(os.path.join(d.home, "serve.json"))
