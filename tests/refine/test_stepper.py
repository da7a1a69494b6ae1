"""The stepper drives the microkernel's own channel code, and the system VM's own serving loop
can be lock-stepped: bugs planted in either are divergences."""
import pytest

from nanvix.refine import Lockstep
from nanvix.refine.campaign import Campaign
from nanvix.refine.guestplants import GUEST_BUGS, planted_source
from nanvix.refine.lockstep import Divergence
from nanvix.refine.plants import MUTANTS
from nanvix.refine.scenarios import SCENARIOS, loop_serving, malformed_requests, running_guest

pytestmark = pytest.mark.kvm


def test_every_guest_plant_is_a_mutant_with_a_scenario():
    for name in GUEST_BUGS:
        assert name in MUTANTS and name in SCENARIOS, name
    assert MUTANTS["loop_lost_wake"].loop and SCENARIOS["loop_lost_wake"].loop


def test_guest_plant_needs_its_text():
    """A plant whose text kernel.c no longer holds fails loudly (it would otherwise test the
    honest microkernel under a bug's name)."""
    GUEST_BUGS["kernel_nothing"] = ("-", "-", "kernel.c", "no such text in kernel.c", "")
    try:
        with pytest.raises(RuntimeError, match="not in kernel.c exactly once"):
            planted_source("kernel_nothing")
    finally:
        del GUEST_BUGS["kernel_nothing"]


def test_loop_serving_runs_clean():
    with Lockstep(loop=True) as h:
        loop_serving(h)
        # what the loop served: 4, the submit-then-park rounds (at least 3: as many as it took to
        # park twice) and 1 after the restart
        assert h.spec_ops["take"] == h.spec_ops["complete"] >= 8
        assert h.spec_ops["wake"] == h.spec_ops["block"]            # every park woken


def test_loop_lost_wake_up_is_a_stuck_quiet_point():
    with Lockstep(loop=True, plant="loop_lost_wake", quiet_s=3) as h, \
            pytest.raises(Divergence, match=r"stuck quiet point: user VM\(s\) \[0\] parked .* never woken"):
        loop_serving(h)


def test_loop_refuses_take_on_command():
    with Lockstep(loop=True) as h, pytest.raises(ValueError):
        h.take(0)


def test_loop_campaign():
    c = Campaign(seed=3, episode=150, loop=True)
    try:
        c.run(300)
    finally:
        c.close()
    assert c.divergences == []
    assert c.spec_ops["take"] > 0 and c.spec_ops["complete"] > 0


def test_request_rule_is_the_system_vms():
    """spec.requests speaks the ABI's numbers, and a wrong errno from the system VM's
    validation is a divergence of the lock-step (not only of a hand-written test)."""
    from nanvix.impl.abi import ABI, E2BIG, EINVAL, ENOSYS
    from nanvix.spec import requests as Q
    assert (Q.ENOSYS, Q.EINVAL, Q.E2BIG) == (ENOSYS, EINVAL, E2BIG)
    assert (Q.DATA_SIZE, Q.NAME_MAX, Q.OP_COUNT) == (ABI["DATA_SIZE"], ABI["NAME_MAX"], ABI["OP_COUNT"])
    with Lockstep(plant="enosys_as_einval") as h, \
            pytest.raises(Divergence, match=r"a malformed request \(spec: errno 38\) answered -22"):
        malformed_requests(h)


def test_loop_checks_error_codes():
    with Lockstep(loop=True) as h:
        running_guest(h)
        assert h.submit(0, 7, 0).ok
        assert h.deliver(0).ok
    with Lockstep(loop=True, plant="enosys_as_einval") as h, \
            pytest.raises(Divergence, match="malformed request .spec: errno 38"):
        running_guest(h)
        h.crash_sysvm(0)             # (so the request waits while its opcode is rewritten)
        assert h.submit(0, 7, 0).ok
        h.scribble_field(0, 0, "opcode", 99)
        h.restart_sysvm(0)

