"""Directed lock-step scenarios: short programs that reach code a random campaign reaches rarely
(a ring's last slot, a restart with requests in service, a lying index with a full CQ). Each runs
clean on the honest implementation; SCENARIOS names, per implementation mutant, the one that
catches it where the campaign does not (nanvix.refine.mutants, tests/refine/test_mutants.py)."""
from nanvix.refine.abstraction import CFG


def both_tenants_up(h):
    for t in range(2):
        h.create_tenant(t)
        h.start_sysvm(t)


def running_guest(h):
    """Tenant 0 with its system VM up, and its user VM 0 on core 0."""
    h.create_tenant(0)
    h.start_sysvm(0)
    h.create_uvm(0, 0)
    h.schedule(0)


def foreign_sysvm(h):
    both_tenants_up(h)
    h.create_uvm(1, 1)   # tenant 1's channel, joined to tenant 0's system VM by the bug


def no_scrub(h):
    running_guest(h)
    h.submit(0, 0x5ec2e7, 0)
    h.exit_uvm(0)
    h.destroy_uvm(0)     # its channel page goes back to the pool unscrubbed


def recycled_leftovers(h):
    """A guest grows a page, leaves requests answered and not yet delivered, and one queued,
    exits cleanly and is recycled: none of it may reach the next invocation."""
    running_guest(h)
    h.map_page(0)
    for v in range(3):
        h.submit(0, 0x5ec2e7 + v, v % 2)
    h.take(0)
    h.complete(0)
    h.take(0)
    h.exit_uvm(0)
    h.recycle_uvm(0)


def full_cq_and_a_lie(h):
    """64 requests in service, then a CQ full of undelivered answers, each with one more request
    (the guest lied about sq_tail): take must refuse (EFULL) and keep the request."""
    running_guest(h)
    for v in range(CFG.R):
        assert h.submit(0, 1000 + v).ok
    for _ in range(CFG.R):
        assert h.take(0).ok
    h.scribble_sq_tail(0, CFG.R + 1)
    h.take(0)                       # room reserved for every answer: none for this one
    for _ in range(CFG.R):
        assert h.complete(0).ok
    h.take(0)                       # the answers fill the CQ


def ring_wrap(h):
    """Every index of one channel past the ring's end and back: 70 requests through, in waves
    that leave the SQ, then the CQ, one short of full and full."""
    running_guest(h)
    v = 0
    for wave in (CFG.R - 1, CFG.R, 7):
        for _ in range(wave):
            assert h.submit(0, 500 + v, v % 4).ok
            v += 1
        for _ in range(wave):
            assert h.take(0).ok and h.complete(0).ok
        for _ in range(wave):
            assert h.deliver(0).ok


def restart_in_service(h):
    """The system VM dies holding requests it took (one answered, two not) while its guest is
    blocked; the restarted one answers the two with EIO and wakes the guest."""
    running_guest(h)
    for v in (1, 2, 3, 4):
        assert h.submit(0, v, 1).ok
    for _ in range(3):
        assert h.take(0).ok
    assert h.complete(0).ok
    assert h.deliver(0).ok
    assert h.block(0).ok
    h.crash_sysvm(0)
    h.restart_sysvm(0)
    h.wake()
    h.schedule(0)
    for _ in range(2):
        h.deliver(0)
    h.take(0)
    h.complete(0)
    h.deliver(0)


def restart_after_break(h):
    """A channel broken by a lie (and a second one, whose published indices were scribbled),
    then a restart: both stay broken, nothing is served."""
    h.create_tenant(0)
    h.start_sysvm(0)
    h.create_uvm(0, 0)
    h.create_uvm(2, 0)
    h.schedule(0)
    h.schedule(1)
    h.submit(0, 7)
    h.scribble_sq_tail(0, 1 << 20)
    h.take(0)                       # broken
    h.submit(2, 8)
    h.scribble_pub(2, 1, 1 << 30)   # the published cq_tail: impossible for a restarted one
    h.crash_sysvm(0)
    h.restart_sysvm(0)
    h.take(0)
    h.take(2)


def notify_after_block(h):
    """A guest blocks on a request in service; its answer must wake it."""
    running_guest(h)
    assert h.submit(0, 9).ok
    assert h.take(0).ok
    assert h.block(0).ok
    assert h.complete(0).ok
    h.wake()
    h.schedule(0)
    h.deliver(0)


def malformed_request(h):
    """A request whose name is longer than its input: answered with an error (EINVAL)."""
    running_guest(h)
    assert h.submit(0, 11, 1).ok
    h.scribble_field(0, 0, "name_len", 5)
    assert h.take(0).ok and h.complete(0).ok
    h.deliver(0)


def two_tenants_share_cores(h):
    """Both tenants keep user VMs runnable on two cores: each must get its turn."""
    both_tenants_up(h)
    for u in (0, 2, 1, 3):
        h.create_uvm(u, u % 2)
    for _ in range(6):
        for k in (0, 1):
            h.schedule(k)
        for k in (0, 1):
            h.preempt(k)


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
    # whether the guest parks before the loop's answer lands is the machine's timing: go on until
    # it has parked twice (a lost wake-up shows only then), or 40 tries
    parked = 0
    for i in range(40):
        r = h.submit_block(0, 9, (1, 0, 0)[i % 3])
        assert r.ok
        if r["blocked"]:
            parked += 1
            assert h.schedule(0).ok   # woken by the loop's answer
        assert h.deliver(0).ok
        if parked >= 2 and i >= 2:
            break
    h.crash_sysvm(0)
    h.submit(0, 1, 0)
    h.restart_sysvm(0)
    assert h.deliver(0).ok


loop_serving.loop = True   # (played with the system VMs serving by their own loop)


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


def one_tenant_two_vcpus(h):
    """Two runnable vCPUs of one tenant take turns on one core: neither may overtake the other
    twice."""
    h.create_tenant(0)
    h.start_sysvm(0)
    for u in (0, 2):
        h.create_uvm(u, 0)
    for _ in range(4):
        h.schedule(0)
        h.preempt(0)


SCENARIOS = {
    "foreign_sysvm": foreign_sysvm, "no_scrub": no_scrub, "drop_when_full": full_cq_and_a_lie,
    "cq_free_ignores_reserved": full_cq_and_a_lie, "sq_slot_mod63": ring_wrap,
    "complete_wrong_slot": ring_wrap, "recover_none": restart_in_service,
    "recover_replays": restart_in_service, "recover_success": restart_in_service,
    "restart_no_wake": restart_in_service, "adopt_unchecked": restart_after_break,
    "restart_unbreaks": restart_after_break, "answer_drops_notify": notify_after_block,
    "take_no_name_check": malformed_request, "error_answered_success": malformed_request,
    "no_tenant_rotation": two_tenants_share_cores, "enosys_as_einval": malformed_requests,
    "kernel_cq_head_unpublished": kernel_channel, "kernel_submit_wrong_slot": kernel_channel,
    "kernel_park_unarmed": kernel_channel, "kernel_failure_as_success": kernel_failed_request,
    "loop_lost_wake": loop_serving, "vcpu_queue_lifo": one_tenant_two_vcpus,
    "recycle_keeps_grown": recycled_leftovers,
}
