"""Hypercall and port abuse: unknown hypercall numbers, the harness-only NX_HC_COMMAND and the
boot-time NX_HC_READY in a production host, every port but the two the guest may use, the two it
may use in the wrong direction or width, and absurd NX_HC_GROW requests. A hypercall the host does
not serve ends the invocation as crashed, at once (it never holds a core); a refused GROW is an
answer (0), not a crash; nothing lasts past the invocation."""
import os

import pytest

from conftest import HANG_S, PARK, run_all


@pytest.mark.parametrize("nr", [0, 4, 5, 6, 7, 0xff, 0x1_0001, 0x8000_0003, 0xffff_ffff])
def test_a_hypercall_the_host_does_not_serve_crashes_its_guest(suite, nr):
    """Unknown numbers, NX_HC_READY after the snapshot and NX_HC_COMMAND (the stepped
    harness's) in a production host: status crashed, named."""
    att = suite.attacker("hcall")
    rep = att.run("hc %x 0" % nr)
    assert rep["status"] == "crashed" and rep["detail"] == "unknown hypercall %d" % nr, rep
    suite.contained(att)


def test_command_hypercalls_from_many_guests_at_once_hold_no_core(suite):
    """The issue's worst finding: NX_HC_COMMAND kept its core forever and two hung the host.
    Eight at once, on two cores, beside the bystander: every one crashes at once and the
    bystander's invocations are served meanwhile."""
    att = suite.attacker("hcall")
    calls = [lambda: att.run("hc 5 0") for _ in range(8)]
    calls += [lambda: suite.rt.invoke("bystander", "tests/guests/io.c", b"kvget secret") for _ in range(4)]
    reps = run_all(calls)
    assert all(r["status"] == "crashed" and "unknown hypercall 5" in r["detail"] for r in reps[:8]), reps[:8]
    assert all(r["status"] == "ok" for r in reps[8:]), reps[8:]
    suite.contained(att)


PORTS = [0x20, 0x60, 0x64, 0x70, 0x80, 0x92, 0x3f8, 0xcf8, 0xcfc, 0xe1, 0xcf, 0xffff]


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("port", PORTS, ids=hex)
def test_ports_outside_the_io_bitmap(suite, port, direction):
    """A port the TSS I/O bitmap does not open: #GP with no handler, the guest crashes."""
    att = suite.attacker("hcall")
    rep = att.run("port %s 1 %x" % (direction, port))
    assert rep["status"] == "crashed" and rep["result"] == "", rep
    suite.contained(att)


@pytest.mark.parametrize("how", ["in 1 d0", "in 4 d0", "out 2 d0", "out 4 d0", "in 1 e0", "in 2 e0",
                                 "out 1 e0", "out 4 e0"])
def test_the_open_ports_in_the_wrong_direction_or_width(suite, how):
    """The doorbell takes a 1-byte `out` only (an ioeventfd); the hypercall port a 4-byte `in`
    only. Anything else reaches the VMM as an I/O exit it does not serve, or faults: crashed."""
    att = suite.attacker("hcall")
    rep = att.run("port " + how)
    assert rep["status"] == "crashed", rep
    suite.contained(att)


def test_string_io_on_the_doorbell(suite):
    """`rep outsb` of 16 bytes to the doorbell: sixteen doorbells (no exit), or a fault; the
    system VM stays up either way."""
    att = suite.attacker("hcall")
    epoch = att.sysvm.epoch
    rep = att.run("outs")
    assert rep["status"] in ("ok", "crashed"), rep
    assert att.sysvm.epoch == epoch
    suite.contained(att)


@pytest.mark.parametrize("n", [0, 65, 0x1_0000_0001, 1 << 63, (1 << 64) - 1], ids=hex)
def test_absurd_grow_requests_are_refused(suite, n):
    """GROW of 0 pages, more than a user VM's 64, a count whose low 32 bits are 1, 2^63, 2^64-1:
    each answered 0 (refused), the guest runs on, and no page stays allocated."""
    att = suite.attacker("hcall")
    pages = att.usage()["pages"]
    assert att.ok("grow %x 5" % n) == "granted=0 refused=5"
    assert att.usage()["pages"] == pages
    suite.contained(att)


def test_grow_storm_stops_at_the_page_limit(suite):
    """One page at a time, 200 times, with a limit of 8 pages: what is granted fits the limit
    (the channel's page counts), the rest is refused, and every page is freed after."""
    att = suite.attacker("hcall-grow", pages=8)
    reps = [att.ok("grow 1 200") for _ in range(3)]
    for out in reps:
        granted = int(out.split()[0].split("=")[1])
        assert 0 < granted <= 7 and out.endswith("refused=%d" % (200 - granted)), out
    from conftest import settle
    settle(lambda: att.usage()["pages"] <= 8, "pages back within the limit")
    suite.contained(att)


@pytest.mark.parametrize("status", [1, 0xffffffff, 0x80000000, (1 << 64) - 1], ids=hex)
def test_exit_with_an_odd_status(suite, status):
    """NX_HC_EXIT with any 64-bit status: an invocation with status error and that exit status
    (as a 32-bit int), never a host error."""
    att = suite.attacker("hcall")
    rep = att.run("hc 1 %x" % status)
    want = status & 0xffffffff
    want = want - (1 << 32) if want >= 1 << 31 else want
    assert rep["status"] == "error" and rep["exit_status"] == want, rep
    suite.contained(att)


def test_parking_forever_ends_at_the_deadline_and_holds_no_core(suite):
    """NX_HC_WAIT with nothing in flight, forever, from more guests than cores: each parks (no
    core held), the bystander is served meanwhile, and each ends at its own deadline, as a
    timeout reported by the scheduler (not the host's watchdog)."""
    att = suite.attacker("hcall-park")
    calls = [lambda: att.run(b"", timeout_ms=1500, path=PARK) for _ in range(4)]
    calls += [lambda: suite.rt.invoke("bystander", "tests/guests/io.c", b"kvget secret") for _ in range(8)]
    reps = run_all(calls, bound=HANG_S)
    for r in reps[:4]:
        assert r["status"] == "timeout" and r["detail"] == "waited past its 1500 ms budget", r
    assert all(r["status"] == "ok" for r in reps[4:]), reps[4:]
    suite.contained(att)
