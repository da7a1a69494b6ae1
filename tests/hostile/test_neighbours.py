"""Noisy neighbours: an attacker keeps more user VMs busy than there are cores (spinning, exiting
to the VMM as fast as it can, ringing its doorbell with nothing posted, flooding its system VM
with I/O, crashing over and over) while the bystander works. The bystander is served throughout
and every one of its invocations ends within its budget; each noisy invocation ends at its own
deadline, ended by the scheduler (not by the host's watchdog). No wall-clock time is asserted:
only a bound far past every deadline, which catches a hang."""
import os
import threading

import pytest

from conftest import IO, NOISE, PARK, run_all

NOISY_MS = 1500


def bystander_work(suite, stop, n_min=10):
    """The bystander's invocations while the noise lasts (at least n_min): reads of its secret,
    writes, and one parked invocation whose 300 ms budget must end it. Returns their reports."""
    reps = []
    while len(reps) < n_min or not stop.is_set():
        reps.append(suite.rt.invoke("bystander", IO, b"kvget secret;kvput tmp 1;kvdel tmp", 5000))
        if len(reps) % 5 == 0:
            reps.append(suite.rt.invoke("bystander", PARK, b"", 300))
        if len(reps) > 200:
            break
    return reps


class Noise:
    """One noisy call; the last one to end tells the bystander it may stop."""

    def __init__(self, fn, all_, stop):
        self.fn, self.all, self.stop, self.done = fn, all_, stop, False

    def __call__(self):
        try:
            return self.fn()
        finally:
            self.done = True
            if all(c.done for c in self.all):
                self.stop.set()


def under_noise(suite, noisy):
    """Run the noisy calls and, at the same time, the bystander's work; check the bystander's
    reports and return the noisy ones."""
    stop, calls = threading.Event(), []
    calls.extend(Noise(fn, calls, stop) for fn in noisy)
    out = run_all(calls + [lambda: bystander_work(suite, stop)])
    for r in out[-1]:
        if r["function"] == "park.c":
            assert r["status"] == "timeout" and r["detail"] == "waited past its 300 ms budget", r
        else:
            assert r["status"] == "ok" and r["result"] == "21:bystander-secret-7f3a;1;0", r
    return out[:-1]


def ended_by_deadline(rep):
    return rep["status"] == "timeout" and "budget" in rep["detail"] and "watchdog" not in rep["detail"]


@pytest.mark.parametrize("kind,path,data", [
    ("spin", None, "spin"),
    ("exit storm", os.path.join(NOISE, "exitstorm.c"), ""),
    ("doorbell storm", os.path.join(NOISE, "bellstorm.c"), ""),
    ("I/O flood", os.path.join(NOISE, "ioflood.c"), ""),
], ids=["spin", "exitstorm", "bellstorm", "ioflood"])
def test_a_noisy_tenant_beside_the_bystander(suite, kind, path, data):
    """Three noisy user VMs (more than the two cores) for NOISY_MS each."""
    att = suite.attacker("noisy", file_bytes=4 << 20)
    kw = {"path": path} if path else {}
    reps = under_noise(suite, [lambda: att.run(data, timeout_ms=NOISY_MS, **kw) for _ in range(3)])
    assert all(ended_by_deadline(r) for r in reps), reps
    if kind == "I/O flood":
        att.ok("fdel flood.log", path=IO)
    suite.contained(att)


def test_a_crash_storm_beside_the_bystander(suite):
    """User VMs that fault at once, one after another on two threads (a VM torn down and built
    again each time): every one crashed, the bystander served."""
    att = suite.attacker("noisy-crash")

    def storm():
        return [att.run("insn ud2") for _ in range(40)]
    reps = under_noise(suite, [storm, storm])
    assert all(r["status"] == "crashed" for rs in reps for r in rs)
    suite.contained(att)


def test_parked_user_vms_hold_no_core(suite):
    """Twenty user VMs park on their channels at once (ten times the cores): none holds a core,
    the bystander is served, each ends at its own deadline."""
    att = suite.attacker("noisy-park", invocations=32)
    reps = under_noise(suite, [lambda: att.run(b"", timeout_ms=NOISY_MS, path=PARK) for _ in range(20)])
    assert all(r["detail"] == "waited past its %d ms budget" % NOISY_MS for r in reps), reps
    suite.contained(att)


def test_two_noisy_tenants_at_once(suite):
    """A spinning tenant and a flooding tenant together, beside the bystander."""
    spin = suite.attacker("noisy")
    flood = suite.attacker("noisy-flood", file_bytes=4 << 20)
    calls = [lambda: spin.run("spin", timeout_ms=NOISY_MS)] * 2
    calls += [lambda: flood.run(b"", timeout_ms=NOISY_MS, path=os.path.join(NOISE, "ioflood.c"))] * 2
    reps = under_noise(suite, calls)
    assert all(ended_by_deadline(r) for r in reps), reps
    flood.ok("fdel flood.log", path=IO)
    suite.contained(spin, flood)


@pytest.mark.hostile_slow
def test_every_kind_of_noise_at_once_for_longer(suite):
    """Four noisy tenants at once (spin, exit storm, doorbell storm, I/O flood), three user VMs
    each (six times the cores), for 8 s, beside the bystander."""
    long_ms = 8000
    kinds = {"noisy": ("spin", None), "noisy-exit": ("", "exitstorm.c"), "noisy-bell": ("", "bellstorm.c"),
             "noisy-flood": ("", "ioflood.c")}
    tenants = {name: suite.attacker(name, file_bytes=16 << 20) for name in kinds}
    calls = []
    for name, (data, guest) in kinds.items():
        kw = {"path": os.path.join(NOISE, guest)} if guest else {}
        calls += [lambda t=tenants[name], kw=kw, data=data: t.run(data, timeout_ms=long_ms, **kw)] * 3
    reps = under_noise(suite, calls)
    assert all(ended_by_deadline(r) for r in reps), reps
    tenants["noisy-flood"].ok("fdel flood.log", path=IO)
    suite.contained(*tenants.values())
