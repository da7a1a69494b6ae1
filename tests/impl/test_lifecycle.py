"""The vCPU's lifetime is owned: nothing tears a user VM down while a core is inside KVM_RUN, a
host error ends one invocation and not its core, every deadline ends the invocation (running,
queued or parked), and Ctrl-C ends `nanvix run` cleanly with its report."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, example, guest
from nanvix.impl import sched as S
from nanvix.impl.control.runtime import Runtime

pytestmark = pytest.mark.kvm
NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


def wait_until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_destroying_a_user_vm_while_its_vcpu_runs(rt):
    """The segfault on Ctrl-C: a VM closed while a core thread was still inside KVM_RUN. The
    destroy now kicks the vCPU out and waits for the core to leave it."""
    image = rt.load(example("loop.c"))
    for _ in range(5):
        uvm = rt.create_user_vm("life", image, b"", 60_000)
        rt.start(uvm)
        wait_until(lambda: uvm.state == S.RUNNING and uvm.exits > 0)
        rt.destroy(uvm)
        assert uvm.status == "crashed" and "destroyed" in uvm.detail, uvm.detail
        assert uvm.vm is None or uvm.vm.closed
    assert rt.invoke("life", example("echo.c"), b"still served")["result"] == "still served"
    assert all(k is None for k in rt.sched.current)


def test_a_parked_user_vm_ends_at_its_deadline(rt):
    rep = rt.invoke("life", guest("park.c"), b"", 300)
    assert rep["status"] == "timeout", rep
    assert "budget" in rep["detail"]


def test_a_queued_user_vm_ends_at_its_deadline(nanvix_home):
    """One core, held by a spinning guest with a long slice: the second invocation never gets
    the core before its deadline, and still ends (timeout) instead of waiting for the core."""
    with Runtime(home=nanvix_home, cores=1, slice_ms=2000) as r:
        spin = r.create_user_vm("q", r.load(example("loop.c")), b"", 1500)
        r.start(spin)
        wait_until(lambda: spin.state == S.RUNNING)
        rep = r.invoke("q", example("echo.c"), b"x", 200)
        assert rep["status"] == "timeout", rep
        assert spin.done.wait(30) and spin.status == "timeout"
        r.destroy(spin)


class FaultyHost(Runtime):
    """A host whose NX_HC_GROW handler fails (a host bug): the guest asking must end, its core
    must go on."""

    def grow(self, uvm, n):
        raise RuntimeError("host bug")


def test_a_host_error_ends_the_invocation_not_the_core(nanvix_home):
    with FaultyHost(home=nanvix_home, cores=1) as r:
        rep = r.invoke("faulty", guest("grow.c"))
        assert rep["status"] == "crashed" and "host error" in rep["detail"], rep
        for _ in range(3):  # the one core still serves
            assert r.invoke("faulty", example("echo.c"), b"ok")["result"] == "ok"


def run_and_interrupt(delay):
    p = subprocess.Popen([NANVIX, "run", example("loop.c"), "--timeout-ms", "60000", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


@pytest.mark.parametrize("delay", [1.0, 2.5])
def test_ctrl_c_ends_a_run_cleanly_with_its_report(delay):
    code, out, err = run_and_interrupt(delay)
    assert code == 130, (out, err)
    assert "Traceback" not in err and "Segmentation" not in err, err
    if out.strip():  # interrupted once the user VM ran: its report
        rep = json.loads(out)
        assert rep["status"] == "crashed" and rep["detail"] == "interrupted (SIGINT)", rep


def test_reset_recycles_a_clean_exit_and_never_a_crash(nanvix_home):
    """Runtime.reset (through recycle_user_vm, the reset the refinement harness drives): a user
    VM that exited cleanly is the one its function's next invocation gets, and runs it; a crashed
    one is refused by recycle_user_vm and torn down by reset."""
    with Runtime(home=nanvix_home, cores=1, ready_per_function=0) as r:  # ready VMs: recycled ones only
        echo = r.load(example("echo.c"))
        u = r.create_user_vm("again", echo, b"one")
        r.start(u)
        assert r.wait(u, 10)["result"] == "one"
        r.reset(u)
        v = r.create_user_vm("again", echo, b"two")
        assert v is u
        r.start(v)
        assert r.wait(v, 10)["result"] == "two"
        c = r.create_user_vm("again", r.load(example("crash.c")), b"")
        r.start(c)
        assert r.wait(c, 10)["status"] == "crashed"
        with pytest.raises(ValueError):
            r.recycle_user_vm(c)
        r.reset(c)
        assert c.id not in r.uvms and c.mem is None


def test_a_recycled_user_vm_starts_pristine(nanvix_home):
    """Recycling within a tenant resets every piece of guest state: a guest that dirtied
    registers (SSE, MXCSR, x87 control word, flags), memory (globals, heap, stack, the info block,
    the channel's data area) finds none of it in the next invocation on the same VM."""
    with Runtime(home=nanvix_home, cores=1, ready_per_function=0) as r:  # ready VMs: recycled ones only
        image = r.load(guest("residue.c"))
        fresh = r.invoke("pristine", image, b"look")
        assert fresh["status"] == "ok", fresh
        dirty = r.invoke("pristine", image, b"dirty")
        assert dirty["status"] == "ok", dirty
        look_again_on(r, "pristine", image, dirty["user_vm"], fresh)
        assert r.uvms[dirty["user_vm"]].invocations >= 2


def look_again_on(r, tenant, image, uvm_id, fresh):
    """Invoke residue.c's look until user VM uvm_id runs it (back from its reset); it must find
    what a fresh VM found."""
    for _ in range(20):
        again = r.invoke(tenant, image, b"look")
        if again["user_vm"] == uvm_id:
            break
    else:
        pytest.fail("user VM %d was never reset for reuse" % uvm_id)
    assert again["status"] == "ok" and again["result"] == fresh["result"], (fresh, again)


def test_a_stop_at_the_deadline_is_reset_and_a_crash_is_destroyed(nanvix_home):
    """After an invocation the host stopped at its deadline, the user VM is reset (not destroyed
    and rebuilt) and the function's next invocation on it finds none of what the stopped one
    wrote, registers and memory alike; after a crash the VM is never reused."""
    with Runtime(home=nanvix_home, cores=1, ready_per_function=0) as r:  # ready VMs: recycled ones only
        image = r.load(guest("residue.c"))
        fresh = r.invoke("stopped", image, b"look")
        assert fresh["status"] == "ok", fresh
        stuck = r.invoke("stopped", image, b"stuck", timeout_ms=100)
        assert stuck["status"] == "timeout", stuck
        look_again_on(r, "stopped", image, stuck["user_vm"], fresh)
        crash = r.load(example("crash.c"))
        first = r.invoke("stopped", crash, b"")
        assert first["status"] == "crashed", first
        later = [r.invoke("stopped", crash, b"")["user_vm"] for _ in range(5)]
        assert first["user_vm"] not in later
