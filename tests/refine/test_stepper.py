"""The stepper drives the microkernel's own channel code, and the system VM's own serving loop
can be lock-stepped: bugs planted in either are divergences."""
import pytest

from nanvix.refine import Lockstep
from nanvix.refine.campaign import Campaign
from nanvix.refine.guestplants import GUEST_BUGS, planted_source
from nanvix.refine.lockstep import Divergence

pytestmark = pytest.mark.kvm


def running_guest(h):
    """Tenant 0 with its system VM up, and its user VM 0 on core 0."""
    h.create_tenant(0)
    h.start_sysvm(0)
    h.create_uvm(0, 0)
    h.schedule(0)


def kernel_channel(h):
    """A request through kernel.c's channel code: posted, the guest parks until its answer
    comes, is woken, takes it; one more posted."""
    running_guest(h)
    h.submit(0, 1, 1)
    h.block(0)
    h.take(0)
    h.complete(0)
    h.wake()
    h.schedule(0)
    h.deliver(0)
    h.submit(0, 2, 0)
    h.take(0)


def kernel_failed_request(h):
    """A request that fails (stat of a file that does not exist: ENOENT), delivered through the
    microkernel's completion path."""
    running_guest(h)
    h.submit(0, 1, 3)
    h.take(0)
    h.complete(0)
    h.deliver(0)


def loop_serving(h):
    """Requests served by the system VM's loop: delivered; submit-then-park (the loop's answer
    races the park; a parked guest must be woken); a system VM crash and restart."""
    running_guest(h)
    for kind in (0, 1, 2, 3):
        assert h.submit(0, 5, kind).ok
    for _ in range(4):
        assert h.deliver(0).ok
    for kind in (1, 0, 0):
        r = h.submit_block(0, 9, kind)
        assert r.ok
        if r["blocked"]:
            assert h.schedule(0).ok   # woken by the loop's answer
        assert h.deliver(0).ok
    h.crash_sysvm(0)
    h.submit(0, 1, 0)
    h.restart_sysvm(0)
    assert h.deliver(0).ok


def malformed_requests(h):
    """Requests whose fields a hostile guest rewrote after posting: each is answered with the
    errno spec.requests gives it."""
    running_guest(h)
    for slot, (field, v) in enumerate((("opcode", 99), ("in_len", 1 << 31), ("out_cap", 1 << 31),
                                       ("name_len", 5), ("opcode", 0))):
        assert h.submit(0, 7, 2).ok
        h.scribble_field(0, slot, field, v)
        assert h.take(0).ok and h.complete(0).ok
        assert h.deliver(0).ok


SCENARIOS = {"kernel_cq_head_unpublished": kernel_channel, "kernel_submit_wrong_slot": kernel_channel,
             "kernel_park_unarmed": kernel_channel, "kernel_failure_as_success": kernel_failed_request,
             "enosys_as_einval": malformed_requests}


def test_every_guest_plant_has_a_scenario():
    assert sorted(GUEST_BUGS) == sorted(set(SCENARIOS) - {"enosys_as_einval"})


@pytest.mark.parametrize("plant", sorted(SCENARIOS))
def test_plant_is_caught(plant):
    """Each scenario runs clean on the real microkernel and diverges on the planted one."""
    with Lockstep() as h:
        SCENARIOS[plant](h)
    with Lockstep(plant=plant) as h, pytest.raises(Divergence):
        SCENARIOS[plant](h)


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
        assert h.spec_ops["take"] == h.spec_ops["complete"] == 8   # what the loop served
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

