"""Memory, page, thread and invocation exhaustion: a tenant takes all it can of what its user VMs
are made of (memory until malloc fails, host pages past its page limit, threads until the
microkernel refuses, invocations and user VMs past its limits). Each is refused at the tenant's
limit (NULL, a refused GROW, an error code, QuotaExceeded), never by a crash, and everything is
the tenant's again once its invocations end."""
import pytest

from nanvix.impl.abi import ABI, ENOSPC
from nanvix.impl.errors import QuotaExceeded

from conftest import IO, PARK, run_all, settle


def pages_settle(att, limit):
    settle(lambda: att.usage()["pages"] <= limit, "the tenant's pages back within its limit")


def test_malloc_until_refused(suite):
    """1 MiB at a time, every page touched, with a limit of 6 host pages: malloc returns NULL at
    the limit, the guest frees it all and allocates again, ends normally; the next invocations
    are served (not refused while the reaper frees the pages)."""
    att = suite.attacker("exh-malloc", pages=6)
    for _ in range(3):
        out = att.ok("malloc 1048576")
        chunks = int(out.split()[0].split("=")[1])
        assert 0 < chunks < 16 and out.endswith("again=1"), out   # 8 MiB of RAM + at most 5 pages
    pages_settle(att, 6)
    suite.contained(att)


@pytest.mark.parametrize("size", [1 << 40, (1 << 40) + 1, (1 << 62), 130 << 20])
def test_one_allocation_larger_than_a_user_vm(suite, size):
    """Larger than any user VM could hold (1 TiB, 2^62) or than its 64 added pages (130 MiB):
    NULL at once, no page taken."""
    att = suite.attacker("exh-malloc", pages=256)
    assert att.ok("malloc %d" % size) == "chunks=0 again=0"
    suite.contained(att)


def test_grow_past_the_page_limit(suite):
    """Raw NX_HC_GROW of one page, 100 times, with a limit of 5 pages: at most 4 granted (the
    channel's page is the fifth), the rest refused."""
    att = suite.attacker("exh-grow", pages=5)
    out = att.ok("grow 1 100")
    granted = int(out.split()[0].split("=")[1])
    assert 1 <= granted <= 4 and out == "granted=%d refused=%d" % (granted, 100 - granted), out
    pages_settle(att, 5)
    suite.contained(att)


def test_growers_at_once_share_one_page_limit(suite):
    """Four user VMs of the tenant start at once, grow as much as they can and hold it: together
    they never hold more than the tenant's limit of 10 pages, channel pages included (one that
    finds no page left for its channel is refused with QuotaExceeded)."""
    att = suite.attacker("exh-grow4", pages=10)
    att.ok("kvdel go", path=IO)
    held = []

    def grower():
        try:
            return att.ok("grow 1 50 hold go")
        except QuotaExceeded as e:
            return e

    def watch():
        settle(lambda: suite.rt.tenants[att.name].invocations >= 2, "growers running")
        for _ in range(200):   # while they hold what they got
            held.append(att.usage()["pages"])
        att.limit(pages=11)    # room for one more user VM: the one that lets them go
        att.ok("kvput go 1", path=IO)
    outs = run_all([grower for _ in range(4)] + [watch])[:4]
    ran = [o for o in outs if isinstance(o, str)]
    assert len(ran) >= 1 and all(isinstance(o, (str, QuotaExceeded)) for o in outs), outs
    granted = sum(int(o.split()[0].split("=")[1]) for o in ran)
    assert granted + len(ran) <= 10, outs
    assert max(held) <= 10, held
    pages_settle(att, 11)
    suite.contained(att)


def test_threads_until_refused(suite):
    """The microkernel holds 32 threads (the first included): the 32nd creation is refused with
    ENOSPC, and every thread made is joined."""
    att = suite.attacker("exh-threads")
    for _ in range(3):
        assert att.ok("threads") == "made=31 err=%d joined=31" % -ENOSPC
    suite.contained(att)


def test_threads_when_memory_runs_out_first(suite):
    """With its memory taken by malloc first, a thread's stack cannot be had: creation fails
    with an error, nothing crashes (threads need 32 KiB stacks from the same frames)."""
    att = suite.attacker("exh-threads2", pages=3)
    out = att.ok("malloc 65536")
    assert out.endswith("again=1"), out
    assert att.ok("threads").startswith("made=")
    suite.contained(att)


def test_more_concurrent_invocations_than_the_limit(suite):
    """With a limit of 2 concurrent invocations, 2 park and a third is refused at once
    (QuotaExceeded), the bystander is served meanwhile, and the tenant is served again once
    they end."""
    att = suite.attacker("exh-invocations", invocations=2)
    parked = [lambda: att.run(b"", timeout_ms=1500, path=PARK) for _ in range(2)]

    def third():
        settle(lambda: suite.rt.tenants[att.name].invocations >= 2, "two invocations running")
        try:
            att.run("ping")
        except QuotaExceeded as e:
            return e
        return None
    reps = run_all(parked + [third, lambda: suite.rt.invoke("bystander", IO, b"kvget secret")])
    assert [r["status"] for r in reps[:2]] == ["timeout", "timeout"]
    assert isinstance(reps[2], QuotaExceeded) and "limit of 2 invocations" in str(reps[2]), reps[2]
    assert reps[3]["status"] == "ok"
    suite.contained(att)


def test_more_user_vms_than_the_limit(suite):
    """With a limit of 3 user VMs (and no limit on invocations), 3 park and a fourth is refused
    with QuotaExceeded (not a crash, not a wait past its deadline)."""
    att = suite.attacker("exh-uvms", user_vms=3, invocations=32)
    att.ok("ping")
    # (their deadline leaves a loaded machine time to admit the fourth while all three are held)
    ended = []

    def park():
        try:
            return att.run(b"", timeout_ms=5000, path=PARK)
        finally:
            ended.append(True)
    parked = [park] * 3

    def fourth():
        # (or one parked call has ended: then its own report, below, says why, not a hang guard)
        settle(lambda: suite.rt.tenants[att.name].invocations >= 3 or ended, "three invocations running")
        if suite.rt.tenants[att.name].invocations < 3:
            return "a parked invocation ended before all three ran"
        try:
            return att.run(b"", timeout_ms=300, path=PARK)
        except QuotaExceeded as e:
            return e
    reps = run_all(parked + [fourth])
    assert [r["status"] for r in reps[:3]] == ["timeout"] * 3
    assert isinstance(reps[3], QuotaExceeded), reps[3]
    settle(lambda: len(suite.rt.tenants[att.name].uvms) <= 3, "user VMs within the limit")
    suite.contained(att)


def test_a_result_length_no_result_area_holds(suite):
    """The guest sets its result length to 2^32 - 1 and exits: the host reads at most the result
    area (RESULT_MAX bytes), the invocation is ok."""
    att = suite.attacker("exh-result")
    rep = att.run("bigresult")
    assert rep["status"] == "ok" and len(rep["result_bytes"]) == ABI["RESULT_MAX"], rep["status"]
    suite.contained(att)
