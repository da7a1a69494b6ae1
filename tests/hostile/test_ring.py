"""Ring and index corruption and replay: a guest writes its channel's indices and entries itself
(the channel page is its memory: nothing stops it), as no honest guest would. The system VM
validates every index and field it reads; an impossible index breaks only that channel; a replay
is one request per index the guest moved, never more and never another tenant's; and nothing a
guest can read holds another tenant's bytes."""
import time

import pytest

from nanvix.impl.abi import ABI, EINVAL, ENOSYS

from conftest import ATTACK, IO, SECRET, run_all, settle


def kv(att, key):
    out = att.ok("kvget " + key, path=IO)
    return None if out == "-2" else out.split(":", 1)[1]


def log_lines(att):
    with open(att.rt.tenants[att.name].root + "/log", "rb") as f:
        return f.read().splitlines()


@pytest.mark.parametrize("how", ["sqahead", "sqbehind", "cqahead"])
def test_an_impossible_index_breaks_only_that_channel(suite, how):
    """sq_tail far ahead, sq_tail moved back behind what was taken, cq_head past cq_tail: the
    system VM records the channel broken and reads nothing more from it (the kv_add posted with
    cq_head ahead never runs), keeps running, and serves the tenant's next user VMs."""
    att = suite.attacker("ring")
    epoch = att.sysvm.epoch
    before, lines = kv(att, "ctr"), len(log_lines(att))
    rep = att.run("ring %s hold" % how, timeout_ms=300)
    assert rep["status"] == "timeout" and rep["result"] == "", rep
    settle(lambda: any(b"broken" in l for l in log_lines(att)[lines:]), "the system VM recorded the broken channel")
    assert att.ok("ring " + how) == "done"        # again, this time leaving at once
    assert kv(att, "ctr") == before               # the kv_adds posted beside cq_head never ran
    assert att.sysvm.alive and att.sysvm.epoch == epoch
    suite.contained(att)


def test_fields_the_system_vm_owns_are_never_read_back(suite):
    """The guest forges sq_head, sq_flags and the header's layout fields (magic, entries, data
    offset and size, slot size): the system VM keeps its own copies and the layout is the ABI's,
    so the requests that follow are served exactly."""
    att = suite.attacker("ring")
    assert att.ok("ring owned") == "put=4 get=4 val=fine"
    suite.contained(att)


def test_out_of_bounds_entries_get_errors_and_the_channel_goes_on(suite):
    """Input past the data area, an offset + length that wraps 32 bits, a name longer than its
    input, an opcode of 2^31: an error completion each, then a valid request on the same channel."""
    att = suite.attacker("ring")
    before = int(kv(att, "k") or 0)
    assert att.ok("ring bounds") == "%d,%d,%d,%d,%d" % (-EINVAL, -EINVAL, -EINVAL, -ENOSYS, before + 3)
    suite.contained(att)


def test_a_replay_by_index_is_one_request_per_index(suite):
    """64 kv_adds, then the same 64 entries submitted again by moving sq_tail alone: each index
    the guest moved is served once (128 in all), none twice and none lost."""
    att = suite.attacker("ring")
    before = int(kv(att, "replay") or 0)
    assert att.ok("ring replay") == "last=%d" % (before + 128)
    assert int(kv(att, "replay")) == before + 128
    suite.contained(att)


def test_entries_planted_by_an_earlier_invocation_are_scrubbed(suite):
    """An invocation fills every submission entry with kv_adds and leaves without submitting;
    the next invocations move sq_tail over all 64 entries: they find zeroed entries (no-ops),
    whichever user VM they get (a recycled one or a fresh one), and nothing is applied."""
    att = suite.attacker("ring")
    for _ in range(4):
        assert att.ok("ring plant") == "planted"
        assert att.ok("ring fire") == "nonzero=0"
    assert kv(att, "planted") is None
    suite.contained(att)


def test_entries_rewritten_while_the_system_vm_reads_them(suite):
    """64 requests are posted, then the guest scribbles over every entry and the data area while
    the system VM takes them (each entry is copied once, then checked): whatever it read, the
    system VM serves or refuses it and keeps running."""
    att = suite.attacker("ring-scribble")
    epoch = att.sysvm.epoch
    for _ in range(5):
        assert att.ok("ring scribble") == "scribbled"
    assert att.sysvm.alive and att.sysvm.epoch == epoch
    suite.contained(att)


def test_a_full_completion_ring_never_reaped_costs_no_spinning(suite):
    """The guest fills the CQ, never reaps it and keeps submitting: the system VM cannot answer
    and must not busy-poll (a full CQ is no work); the invocation ends at its deadline. Its
    system VM's CPU time over that second stays well below a spinning core's."""
    att = suite.attacker("ring-noreap")
    cpu0 = att.usage()["sysvm_cpu_ns"]
    t0 = time.monotonic()
    rep = att.run("ring noreap", timeout_ms=1000)
    assert rep["status"] == "timeout" and "budget" in rep["detail"], rep
    wall = time.monotonic() - t0
    cpu = att.usage()["sysvm_cpu_ns"] - cpu0
    assert cpu < 0.5 * wall * 1e9, "the system VM spun on a full completion ring (%.2f s CPU in %.2f s)" % (cpu / 1e9, wall)
    suite.contained(att)


def test_many_broken_channels_in_a_row_leak_no_slot(suite):
    """Forty user VMs in a row break their channels: every slot comes back to the tenant (its
    arena does not run out) and its user VMs are within its limit."""
    att = suite.attacker("ring-churn")
    att.ok("ping")
    t = att.rt.tenants[att.name]
    free = len(t.free_slots) + len(t.uvms)
    for i in range(40):
        assert att.ok("ring " + ("sqahead", "cqahead")[i % 2]) == "done"
    settle(lambda: len(t.free_slots) + len(t.uvms) == free, "every channel slot came back")
    assert len(t.uvms) <= t.limits.user_vms
    suite.contained(att)


def test_nothing_of_another_tenant_is_in_reach(suite):
    """The bystander moves its secret through its channel; then the attacker reads every byte
    its user VM can (info block, channel page, all of its RAM) looking for it, in several VMs
    one after another and at once: found only in the scanner's own copy."""
    att = suite.attacker("ring-scan")
    for _ in range(3):
        rep = suite.rt.invoke("bystander", IO, b"kvget secret;fread notes/secret.txt")
        assert rep["status"] == "ok" and SECRET in rep["result_bytes"]
        outs = run_all([lambda: att.ok("scan " + SECRET.hex()) for _ in range(3)])
        assert outs == ["found=1 bytes=%d" % att.rt.ram_size] * 3, outs
    suite.contained(att)


STORM_MS = 60_000   # only a bound that catches a hang: the test stops the storm itself


def test_a_nop_storm_cannot_keep_its_system_vm_from_its_other_user_vms(suite):
    """A user VM posts nops as fast as they are answered (its system VM answers them in its C
    polling loop, never back in its Python round); meanwhile the same tenant's other user VMs
    run kv_adds and the control plane asks that system VM for the tenant's usage. Every one of
    them is served while the storm goes on (counted: the storm is still running after each, and
    its answers grow again before the next one), and the storm ends when told to."""
    att = suite.attacker("storm")
    rt = att.rt
    before = int(kv(att, "n") or 0)
    uvm = rt.begin(att.name, ATTACK, b"ring nopstorm", STORM_MS)

    def storm():
        return rt.report(uvm)["io_requests"]
    try:
        settle(lambda: storm() > 640, "the storm began")
        adds = 0
        for _ in range(10):
            seen = storm()
            out = att.ok("adds 5 n")   # another user VM of the tenant, served by the same system VM
            assert out.startswith("ok=5 eio=0 other=0 "), out
            adds += 5
            assert att.usage()["tenant"] == att.name
            assert not uvm.done.is_set(), rt.report(uvm)
            settle(lambda: storm() > seen, "the storm went on")
        assert int(kv(att, "n")) == before + adds
    finally:
        uvm.mem.set_u64(ABI["GPA_INFO"] + ABI["INFO_COMMAND_ARG"] + 24, 1)   # stop
        rep = rt.finish(uvm)
    assert rep["status"] == "ok" and rep["result"] == "stopped", rep
    suite.contained(att)
