"""The system VM's server loop, in this process, on a real channel arena: channels come and go
through the arena's change rings (no message, no descriptor per channel), an inactive slot is
acknowledged idle, the report account is written before each answer, a restarted server adopts
what its predecessor served, and forged or overflowing ring contents cannot derail it."""
import contextlib
import os
import socket
import struct

import pytest

from nanvix.impl.abi import ABI, EIO, OP_CODES
from nanvix.impl.channel import Arena, init_channel
from nanvix.impl.sysvm.server import Server

N = ABI["RING_ENTRIES"]
SQE = struct.Struct("<IIQIIIIIIQ16x")
CQE = struct.Struct("<QqII40x")


class Guest:
    """The guest's end of one channel page (an honest guest, written from the host)."""

    def __init__(self, page):
        self.mem = page
        self.sq_tail = self.cq_head = 0

    def submit(self, opcode=0, user_data=0, data=b"", name_len=0):
        off = (self.sq_tail % N) * ABI["DATA_SLOT"]
        self.mem.write(ABI["DATA_OFF"] + off, data)
        self.mem.write(ABI["SQ_OFF"] + (self.sq_tail % N) * 64,
                       SQE.pack(opcode, 0, user_data, off, len(data), off, 0, name_len, 0, 0))
        self.sq_tail += 1
        self.mem.set_u32(ABI["HDR_SQ_TAIL"], self.sq_tail)

    def reap(self):
        out = []
        while self.cq_head != self.mem.u32(ABI["HDR_CQ_TAIL"]):
            out.append(CQE.unpack(self.mem.read(ABI["CQ_OFF"] + (self.cq_head % N) * 64, 64))[:2])
            self.cq_head += 1
        self.mem.set_u32(ABI["HDR_CQ_HEAD"], self.cq_head)
        return out


@pytest.fixture
def host(tmp_path):
    arena = Arena.create(8)
    doorbell = os.eventfd(0, os.EFD_NONBLOCK)
    notify = os.eventfd(0, os.EFD_NONBLOCK)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def server():
        return Server("t", str(tmp_path), theirs, arena.fd, doorbell, {0: notify})
    yield arena, server, notify
    arena.close()
    for fd in (arena.fd, doorbell, notify):
        os.close(fd)


def hand_out(arena, slot, uvm=1):
    page = arena.page(slot)
    page.scrub()
    init_channel(page)
    arena.hand_out(slot, uvm, 0)
    arena.set_active(slot, True, 0)
    return Guest(page)


def test_a_channel_is_served_from_its_activation_and_let_go_after(host):
    arena, make, notify = host
    srv = make()
    g = hand_out(arena, 3)
    g.submit(OP_CODES["log"], 7, b"hello\nforged line")
    g.submit(OP_CODES["nop"], 8)
    srv.sync()
    assert list(srv.channels) == [3]
    srv.serve_round()
    assert g.reap() == [(7, len(b"hello\nforged line")), (8, 0)]
    served, log, dropped, broken = arena.account(3)
    assert served == 2 and log == ["hello\\x0aforged line"] and not broken  # one call, one line
    arena.set_active(3, False, 0)
    assert arena.claimed(3) and not arena.released(3)
    srv.sync()
    assert srv.channels == {} and arena.released(3) and not arena.claimed(3)   # acknowledged: the VMM may scrub the page now


def test_a_restarted_server_adopts_its_channels_and_fails_what_was_taken(host):
    arena, make, notify = host
    first = make()
    g = hand_out(arena, 0)
    g.submit(OP_CODES["nop"], 1)
    g.submit(OP_CODES["nop"], 2)
    first.sync()
    ch = first.channels[0]
    assert first.take(ch).user_data == 1    # taken, never answered: then the server dies
    second = make()                          # same arena, same generation: adopt
    assert g.reap() == [(1, -EIO)]           # failed, not retried (it may not be idempotent)
    assert os.eventfd_read(notify) >= 1 and arena.wakes(0) == [0]
    second.serve_round()
    assert g.reap() == [(2, 0)]              # the untaken one is served by the new server


def test_forged_and_overflowing_change_rings(host):
    arena, make, notify = host
    srv = make()
    g = hand_out(arena, 1)
    # A ring whose producer index runs past its capacity, and indices of slots that do not
    # exist: the server rescans every slot from the VMM's own records instead.
    hdr = arena.mem  # (plain shared memory: poke its header as a lying VMM shard would)
    change0 = 64  # offsetof(nx_ctl_hdr, change[0])
    hdr.set_u32(change0, 5000)                     # head far past tail
    srv.sync()
    assert list(srv.channels) == [1]
    g.submit(OP_CODES["nop"], 9)
    srv.serve_round()
    assert g.reap() == [(9, 0)]


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
MESSAGES = st.one_of(
    st.binary(max_size=200),                                              # not JSON at all
    JSON.map(lambda v: json_bytes(v)),                                    # JSON, any shape
    st.fixed_dictionaries({"op": st.sampled_from(["state", "ping", "shard", "attach", "detach", "take", "x"])},
                          optional={"shard": st.integers(-5, 40) | st.text(max_size=3), "slot": st.integers()})
    .map(lambda v: json_bytes(v)),                                        # the real ops, bad arguments
)


def json_bytes(v):
    import json
    return json.dumps(v).encode()


@contextlib.contextmanager
def lone_server(tmp, slots=4, limits=None):
    """A Server in this process on a fresh arena (a doorbell, shard 0's notify eventfd) and our end
    of its control socket; all closed after (each notify eventfd by the server's table, since a
    shard message may have replaced, and closed, the first)."""
    arena = Arena.create(slots)
    doorbell, notify = os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv = Server("t", str(tmp), theirs, arena.fd, doorbell, {0: notify}, *([limits] if limits else []))
    try:
        yield srv, ours, arena
    finally:
        for fd in set(srv.notify.values()):
            os.close(fd)
        srv.files.close()
        srv.kv.close()
        ours.close()
        theirs.close()
        arena.close()
        for fd in (arena.fd, doorbell):
            os.close(fd)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(msgs=st.lists(MESSAGES, min_size=1, max_size=6))
def test_control_messages_never_bring_the_server_down(tmp_path_factory, msgs):
    """Whatever arrives on the control socket, the server answers it (an error for a bad one)
    and goes on serving: only the socket's end stops it."""
    import json
    with lone_server(tmp_path_factory.mktemp("ctl")) as (srv, ours, _):
        for m in msgs + [json_bytes({"op": "ping"})]:
            ours.send(m if m else b"{}")
            srv.control()
            reply = json.loads(ours.recv(1 << 20))
            assert isinstance(reply, dict) and "ok" in reply
        assert reply["ok"]


def test_a_slot_taken_back_before_the_server_claims_it_needs_no_acknowledgement(host):
    """A guest that did no I/O: its slot is released as soon as it is deactivated (no wake-up
    of the system VM), and a server that looks at it later never touches its page."""
    arena, make, notify = host
    srv = make()
    hand_out(arena, 2)
    arena.set_active(2, False, 0)
    assert arena.released(2) and not arena.claimed(2)
    gen = arena.gen(2)
    assert not arena.claim(2, gen)        # the server's late look: it lets go at once
    assert arena.released(2)
    srv.sync()
    assert srv.channels == {}


def test_a_claimed_slot_is_released_only_once_the_server_lets_go(host):
    arena, make, notify = host
    srv = make()
    g = hand_out(arena, 4)
    g.submit(OP_CODES["nop"], 1)
    srv.sync()                            # claimed, served
    srv.serve_round()
    assert arena.claimed(4)
    arena.set_active(4, False, 0)
    assert not arena.released(4)          # the server may still be touching the page
    srv.sync()
    assert arena.released(4) and not arena.claimed(4)
    # a claim for a generation the VMM has moved past fails too
    hand_out(arena, 4)
    assert not arena.claim(4, arena.gen(4) - 1) and arena.released(4) is False


def test_nops_and_clock_reads_are_answered_by_the_ring_with_the_same_checks(host):
    """serve_simple (C) answers valid nops and clock reads; a malformed one, or any other
    request, is left to take(), which answers it as before; the account counts every answer."""
    import time
    from nanvix.impl.abi import EINVAL
    arena, make, notify = host
    srv = make()
    g = hand_out(arena, 1)
    page = arena.page(1)
    g.submit(OP_CODES["nop"], 1)
    g.submit(OP_CODES["clock"], 2)
    # a nop whose input lies outside the data area: take()'s EINVAL, not an answer of 0
    page.write(ABI["SQ_OFF"] + (g.sq_tail % N) * 64, SQE.pack(OP_CODES["nop"], 0, 3, ABI["DATA_SIZE"], 8, 0, 0, 0, 0, 0))
    g.sq_tail += 1
    page.set_u32(ABI["HDR_SQ_TAIL"], g.sq_tail)
    g.submit(OP_CODES["log"], 4, b"x")
    g.submit(OP_CODES["nop"], 5)
    srv.sync()
    ch = srv.channels[1]
    t0 = time.time_ns()
    assert ch.ring.serve_simple(arena, 1, 8) == (2, False, True)   # two, then one for take()
    t1 = time.time_ns()
    assert srv.serve_round() == 3
    got = g.reap()
    assert [u for u, _ in got] == [1, 2, 3, 4, 5]
    assert got[0][1] == 0 and t0 <= got[1][1] <= t1 and got[2][1] == -EINVAL and got[4][1] == 0
    assert arena.account(1)[0] == 5 and ch.ring.simple == 3


def test_the_c_poll_returns_for_work_it_leaves_to_python_and_for_changes(host):
    import time
    from nanvix.impl.channel import SPIN_CHANGED, SPIN_IDLE, spin, wait
    arena, make, notify = host
    srv = make()
    g = hand_out(arena, 5)
    srv.sync()
    ch = srv.channels[5]
    hot = [(ch.ring, 5)]
    now = time.monotonic_ns()
    assert spin(hot, arena, [0], now, 20_000, 8, 256) == (SPIN_IDLE, False, 0)   # nothing: out after 20 us
    g.submit(OP_CODES["nop"], 1)
    g.submit(OP_CODES["kv_get"], 2, b"k", name_len=1)
    i, woke, last = spin(hot, arena, [0], time.monotonic_ns(), 10**9, 8, 256)
    assert (i, woke) == (0, False) and last > 0 and g.reap() == [(1, 0)]  # the nop answered in C
    srv.serve_round()
    assert [u for u, _ in g.reap()] == [2]
    arena.set_active(5, False, 0)                                       # a change: out at once
    assert spin(hot, arena, [0], time.monotonic_ns(), 10**9, 8, 256)[0] == SPIN_CHANGED   # (not its idle end)
    srv.sync()
    # wait(): epoll, then the nops at once
    g2 = hand_out(arena, 6)
    srv.sync()
    ch = srv.channels[6]
    g2.submit(OP_CODES["nop"], 7)
    os.eventfd_write(srv.doorbell, 1)
    events, woke, answered = wait(srv.epoll.fileno(), [(ch.ring, 6)], arena, 8, 1000)
    assert (srv.doorbell, 1) in [(fd, ev & 1) for fd, ev in events] and answered and woke == []
    assert g2.reap() == [(7, 0)]

# ---- control messages: the new ops, hostile limits, descriptors that must not leak -----------------

LIMIT_VALUES = st.one_of(st.integers(-5, 1 << 70), st.floats(allow_nan=True), st.text(max_size=3), st.none(),
                         st.booleans())
CONTROL = st.one_of(
    MESSAGES,
    st.fixed_dictionaries({"op": st.just("limits")},
                          optional={"limits": st.one_of(st.dictionaries(st.sampled_from(["files", "kv_keys", "log_bytes",
                                                                                          "kv_value", "bogus"]),
                                                                         LIMIT_VALUES, max_size=3),
                                                          st.text(max_size=3), st.lists(st.integers(), max_size=2))})
    .map(lambda v: json_bytes(v)),
    st.just(json_bytes({"op": "usage"})),
)


def fuzz_fds():
    """Descriptors whose name says they came from this test (to count any the server kept)."""
    return [n for n in os.listdir("/proc/self/fd") if "fuzz-fd" in _link(n)]


def _link(n):
    try:
        return os.readlink("/proc/self/fd/" + n)
    except OSError:
        return ""


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(msgs=st.lists(st.tuples(CONTROL, st.integers(0, 3)), min_size=1, max_size=6))
def test_control_messages_with_descriptors_leak_nothing(tmp_path_factory, msgs):
    """Any message, with up to three descriptors attached: the server answers each, keeps a
    descriptor only as a shard's notify eventfd (one per shard), closes every other, and its
    limits change only to valid ones."""
    import json
    from nanvix.impl.kvm import memfd
    with lone_server(tmp_path_factory.mktemp("ctl")) as (srv, ours, _):
        for m, nfds in msgs:
            fds = [memfd("fuzz-fd", 4096) for _ in range(nfds)]
            socket.send_fds(ours, [m or b"{}"], fds) if fds else ours.send(m or b"{}")
            for fd in fds:
                os.close(fd)
            srv.control()
            reply = json.loads(ours.recv(1 << 20))
            assert isinstance(reply, dict) and "ok" in reply
            kept = [fd for fd in srv.notify.values() if "fuzz-fd" in _link(str(fd))]
            assert len(fuzz_fds()) == len(kept), "the server kept a descriptor it was not meant to"
            lim = srv.limits
            assert all(isinstance(getattr(lim, k), (int, float)) and getattr(lim, k) > 0 for k in lim.DOC)
            assert srv.files.limits is lim and srv.kv.limits is lim


# ---- requests: any opcode, name, value, offset and flags, against the store and its limits --------

NAMES = st.lists(st.sampled_from([b"a", b"b", b"..", b".", b"", b"/", b"d", b"\0", b"\xff", b"x" * 60]),
                 max_size=5).map(lambda parts: b"/".join(parts))
REQUESTS = st.tuples(
    st.one_of(st.sampled_from(sorted(OP_CODES.values())), st.integers(0, 0xffffffff)),   # opcode
    NAMES,
    st.one_of(st.binary(max_size=40), st.integers(0, 3).map(lambda k: b"7" * k), st.just(b"v" * 300)),
    st.one_of(st.integers(0, 2000), st.integers(0, (1 << 64) - 1)),                     # arg: offset, delta
    st.integers(0, 3),                                                                    # flags
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(REQUESTS, min_size=1, max_size=40))
def test_any_request_is_answered_once_and_the_limits_hold(tmp_path_factory, batch):
    """Whatever a guest posts, every request gets exactly one answer, in order, and the server
    never raises; nothing is created outside the tenant's tree; the tenant's counts stay equal to
    what a fresh system VM would count, and within its limits."""
    from nanvix.impl.limits import Limits
    from nanvix.impl.sysvm.store import KV, Files
    tmp = tmp_path_factory.mktemp("req")
    root = tmp / "tenant"
    lim = Limits(files=6, file_bytes=3000, file_size=1000, kv_keys=4, kv_bytes=600, kv_value=100, log_bytes=8192)
    with lone_server(root, slots=2, limits=lim) as (srv, _, arena):
        g = hand_out(arena, 1)
        srv.sync()
        for i in range(0, len(batch), N):
            part = batch[i:i + N]
            for k, (op, name, value, arg, flags) in enumerate(part):
                off = (g.sq_tail % N) * ABI["DATA_SLOT"]
                g.mem.write(ABI["DATA_OFF"] + off, name + value)
                g.mem.write(ABI["SQ_OFF"] + (g.sq_tail % N) * 64,
                            SQE.pack(op, flags, 1000 + i + k, off, len(name) + len(value), off, 64, len(name), 0, arg))
                g.sq_tail += 1
                g.mem.set_u32(ABI["HDR_SQ_TAIL"], g.sq_tail)
            while srv.serve_round():
                pass
            assert [ud for ud, _ in g.reap()] == [1000 + i + k for k in range(len(part))]
        assert sorted(os.listdir(tmp)) == ["tenant"]
        assert set(os.listdir(root)) <= {"files", "kv.sqlite3.reserve", "kv.sqlite3", "kv.sqlite3-shm", "kv.sqlite3-wal", "log", "log.1"}
        fu, ku = srv.files.usage(), srv.kv.usage()
        fresh_files, fresh_kv = Files(str(root / "files"), lim), KV(str(root / "kv.sqlite3"), lim)
        try:
            assert fu == fresh_files.usage() and ku == fresh_kv.usage()
        finally:
            fresh_files.close()
            fresh_kv.close()
        assert fu["files"] <= lim.files and fu["file_bytes"] <= lim.file_bytes
        assert ku["kv_keys"] <= lim.kv_keys and ku["kv_bytes"] <= lim.kv_bytes


# ---- the other way: what a system VM (which reads guest bytes) answers the control plane ----------

class _Running:
    pid = 1

    def poll(self):
        return None


REPLIES = st.one_of(st.binary(max_size=100), JSON.map(json_bytes), st.just(b"[" * 50_000),
                    st.fixed_dictionaries({"ok": st.booleans() | st.none() | st.integers()},
                                          optional={"usage": JSON, "error": JSON}).map(json_bytes))


@settings(max_examples=200, deadline=None)
@given(reply=REPLIES)
def test_a_system_vm_reply_is_checked(reply):
    """Any reply to a call is a dict with ok set, or a NanvixError (SystemVMDown for one that is
    not a JSON object): never a JSONDecodeError, AttributeError or RecursionError in the host."""
    from nanvix.impl.errors import NanvixError
    from nanvix.impl.sysvm.client import SystemVM
    sv = SystemVM("t", "/nonexistent", -1, -1, {}, 1)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sv.sock, sv.proc = ours, _Running()
    try:
        theirs.send(reply)
        try:
            got = sv.call("usage")
        except NanvixError:
            return
        assert isinstance(got, dict) and got.get("ok")
    finally:
        ours.close()
        theirs.close()


def test_usage_takes_only_a_system_vms_own_counts(nanvix_home, kvm):
    """A system VM that lies in its usage reply cannot rename the tenant, replace the control
    plane's counts or the limits, or slip in anything but numbers."""
    from nanvix.impl.control.runtime import Runtime
    from nanvix.impl.sysvm.client import SystemVM

    class Liar(SystemVM):
        def call(self, op, fds=(), **args):
            if op == "usage":
                return {"ok": True, "usage": {"tenant": "bystander", "user_vms": 0, "pages": -1, "limits": {},
                                              "files": 3, "file_bytes": "lots", "kv_keys": [1], "made_up": 7}}
            return super().call(op, fds, **args)

    class LiarRuntime(Runtime):
        sysvm_class = Liar
    rt = LiarRuntime(home=os.path.join(nanvix_home, "liar"), cores=1)
    try:
        u = rt.usage("honest")
        assert u["tenant"] == "honest" and u["pages"] >= 0 and u["limits"]["files"] == rt.limits("honest").files
        assert u["files"] == 3 and "file_bytes" not in u and "kv_keys" not in u and u["made_up"] == 7
    finally:
        rt.close()


def test_stale_and_foreign_epoll_events_are_ignored(tmp_path):
    """An event for a descriptor that an earlier event of the same batch closed killed the system
    VM with EBADF (a bench run in four). A batch of events for a closed descriptor, one the server
    never had, and a doorbell already drained (twice, with error bits) does nothing, and the
    server goes on answering in the same batch and the next."""
    import json
    import select
    closed = os.eventfd(0)
    os.close(closed)
    with lone_server(tmp_path, slots=2) as (srv, ours, _):
        doorbell = srv.doorbell
        ours.send(json_bytes({"op": "ping"}))
        srv.dispatch([(closed, select.EPOLLIN), (srv.sock.fileno(), select.EPOLLIN), (1 << 20, select.EPOLLIN),
                      (doorbell, select.EPOLLIN), (doorbell, select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP),
                      (closed, select.EPOLLERR)])
        assert json.loads(ours.recv(1 << 16))["ok"]
        os.eventfd_write(doorbell, 1)
        ours.send(json_bytes({"op": "ping"}))
        srv.dispatch(srv.epoll.poll(1.0))
        assert json.loads(ours.recv(1 << 16))["ok"]
