"""The channel's host side (nanvix.impl.channel), driven by a host-side model of an honest guest:
random interleavings of submit / take / complete / reap, with indices that wrap 2^32, checked for
FIFO order, no loss or duplication, and the full and empty edges; plus every malformed entry kind
and guest indices no honest guest can produce."""
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nanvix.impl.kvm import Memory, memfd
from nanvix.impl.abi import ABI, E2BIG, EINVAL, EIO, ENOSYS, OP_CODES
from nanvix.impl.channel import SPIN_BUDGET, Arena, Ring, init_channel, ring_state, spin, wait

N = ABI["RING_ENTRIES"]
DS = ABI["DATA_SIZE"]
SQE = struct.Struct("<IIQIIIIIIQ16x")
CQE = struct.Struct("<QqII40x")
assert SQE.size == 64 and CQE.size == 64 and N == 64
U32 = 0xFFFFFFFF


class Channel:
    """A fresh channel page (memfd, shared mapping) plus the guest's end of it."""

    def __init__(self, start=0, mem=None):
        """mem: a channel page of an arena (else a memfd of its own)."""
        self.fd = memfd("test-channel", ABI["CHANNEL_SIZE"]) if mem is None else -1
        self.mem = Memory(ABI["CHANNEL_SIZE"], self.fd, True) if mem is None else mem
        init_channel(self.mem)
        for k in ("HDR_SQ_TAIL", "HDR_SQ_HEAD", "HDR_CQ_TAIL", "HDR_CQ_HEAD"):
            self.mem.set_u32(ABI[k], start)
        self.sq_tail = self.cq_head = start  # the guest's private indices

    def close(self):
        if self.fd >= 0:
            self.mem.close()
            os.close(self.fd)

    # the guest's end --------------------------------------------------------------------------
    def write_sqe(self, idx, opcode=0, flags=0, user_data=0, in_off=0, in_len=0, out_off=0, out_cap=0,
                  name_len=0, arg=0):
        self.mem.write(ABI["SQ_OFF"] + (idx % N) * 64,
                       SQE.pack(opcode, flags, user_data, in_off, in_len, out_off, out_cap, name_len, 0, arg))

    def submit(self, **fields):
        self.write_sqe(self.sq_tail, **fields)
        self.sq_tail = (self.sq_tail + 1) & U32
        self.mem.set_u32(ABI["HDR_SQ_TAIL"], self.sq_tail)

    def reap(self):
        """Every posted completion, in order: [(user_data, result, out_len, flags)]."""
        out = []
        tail = self.mem.u32(ABI["HDR_CQ_TAIL"])
        while self.cq_head != tail:
            out.append(CQE.unpack(self.mem.read(ABI["CQ_OFF"] + (self.cq_head % N) * 64, 64)))
            self.cq_head = (self.cq_head + 1) & U32
        self.mem.set_u32(ABI["HDR_CQ_HEAD"], self.cq_head)
        return out


def expected_error(opcode, in_off, in_len, out_off, out_cap, name_len):
    """The reader's validation, restated: which error a guest-written entry earns."""
    if opcode >= ABI["OP_COUNT"]:
        return ENOSYS
    if in_off + in_len > DS or out_off + out_cap > DS:
        return EINVAL
    if name_len > in_len:
        return EINVAL
    if name_len > ABI["NAME_MAX"]:
        return E2BIG
    return 0


# ---- unit edges ---------------------------------------------------------------------------------

@pytest.fixture
def chan():
    c = Channel()
    yield c
    c.close()


def test_empty_ring_takes_nothing(chan):
    r = Ring(chan.mem, True)
    assert r.pending() == 0 and r.take() is None and not r.broken
    assert r.cq_free() == N


def test_full_ring_round_trip_at_wrap():
    c = Channel(start=U32 - 10)  # indices cross 2^32 inside this batch
    try:
        r = Ring(c.mem, True)
        for i in range(N):
            c.submit(opcode=OP_CODES["nop"], user_data=1000 + i)
        assert r.pending() == N and not r.broken
        taken = [r.take() for _ in range(N)]
        assert [t.user_data for t in taken] == list(range(1000, 1000 + N))
        assert r.cq_free() == 0  # every CQ slot is reserved by a taken request
        assert r.take() is None  # and the SQ is empty
        for t in taken:
            r.complete(t, 7)
        assert r.cq_free() == 0  # CQ full until the guest reaps
        got = c.reap()
        assert [g[0] for g in got] == list(range(1000, 1000 + N)) and all(g[1] == 7 for g in got)
        assert r.cq_free() == N
        st_ = ring_state(c.mem)
        assert st_["sq_head"] == st_["sq_tail"] == st_["cq_tail"] == st_["cq_head"] == (U32 - 10 + N) & U32
    finally:
        c.close()


def test_take_waits_for_cq_room():
    """With 64 completions unreaped, a further request is left in the SQ (not dropped) until
    the guest reaps."""
    c = Channel(start=U32 - 3)
    try:
        r = Ring(c.mem, True)
        for i in range(N):
            c.submit(user_data=i)
        for _ in range(N):
            r.complete(r.take(), 0)
        c.submit(user_data=N)  # the guest may submit: the SQ itself has room (sq_head moved)
        assert r.pending() == 1
        assert r.take() is None  # no CQ slot for its answer
        assert r.pending() == 1 and not r.broken
        assert len(c.reap()) == N
        t = r.take()
        assert t is not None and t.user_data == N
    finally:
        c.close()


@pytest.mark.parametrize("ahead", [N + 1, 1000, 1 << 31, U32])
def test_sq_tail_too_far_ahead_breaks_the_ring(chan, ahead):
    r = Ring(chan.mem, True)
    chan.mem.set_u32(ABI["HDR_SQ_TAIL"], ahead)
    assert r.pending() == 0
    assert r.broken and "sq_tail" in r.broken_reason
    assert r.take() is None
    # a broken channel is never served again, whatever the guest writes next
    chan.mem.set_u32(ABI["HDR_SQ_TAIL"], 1)
    assert r.take() is None


def test_sq_tail_exactly_full_is_not_broken(chan):
    r = Ring(chan.mem, True)
    chan.mem.set_u32(ABI["HDR_SQ_TAIL"], N)
    assert r.pending() == N and not r.broken


# cq_tail is 0: cq_head 1 or 1000 is ahead of it; (0 - (N + 1)) & U32 is N + 1 behind it, one more
# outstanding completion than the CQ holds (the valid window is [cq_tail - N, cq_tail]).
@pytest.mark.parametrize("head", [1, 1000, (0 - (N + 1)) & U32])
def test_cq_head_outside_window_breaks_the_ring(chan, head):
    r = Ring(chan.mem, True)
    chan.submit(user_data=5)
    chan.mem.set_u32(ABI["HDR_CQ_HEAD"], head)  # ahead of cq_tail (0) or too far behind
    assert r.take() is None
    assert r.broken and "cq_head" in r.broken_reason
    t = Ring(chan.mem, False)
    assert not t.broken  # a new reader of the page starts clean


def test_complete_on_broken_ring_posts_nothing(chan):
    r = Ring(chan.mem, True)
    chan.submit(user_data=9)
    req = r.take()
    chan.mem.set_u32(ABI["HDR_SQ_TAIL"], 5000)
    r.pending()
    assert r.broken
    assert r.complete(req, 0) is False
    assert chan.mem.u32(ABI["HDR_CQ_TAIL"]) == 0


def test_adopt_checks_published_indices():
    c = Channel(start=100)
    try:
        c.mem.set_u32(ABI["HDR_SQ_HEAD"], 100 + N + 1)  # sq_head more than 64 past cq_tail
        assert Ring(c.mem, True).broken
        c.mem.set_u32(ABI["HDR_SQ_HEAD"], 100 + 3)  # three taken, unanswered: plausible
        r = Ring(c.mem, True)
        assert not r.broken and r.sq_head == 103 and r.cq_tail == 100
    finally:
        c.close()


def test_recover_fails_taken_requests_with_eio():
    c = Channel(start=U32 - 1)
    try:
        r = Ring(c.mem, True)
        for i in range(3):
            c.submit(opcode=OP_CODES["kv_add"], user_data=50 + i)
        r.take(), r.take()  # the "old" system VM took two, then died
        r2 = Ring(c.mem, True)  # the restarted one adopts the published indices
        assert r2.recover() == 2
        got = c.reap()
        assert [(g[0], g[1]) for g in got] == [(50, -EIO), (51, -EIO)]
        t = r2.take()
        assert t.user_data == 52 and t.error == 0
    finally:
        c.close()


def test_notify_me_is_reported(chan):
    r = Ring(chan.mem, True)
    chan.submit(user_data=1)
    chan.submit(user_data=2)
    assert r.complete(r.take(), 0) is False
    chan.mem.set_u32(ABI["HDR_CQ_FLAGS"], ABI["CQ_NOTIFY_ME"])
    assert r.complete(r.take(), 0) is True


def test_need_wakeup_flag(chan):
    r = Ring(chan.mem, True)
    assert chan.mem.u32(ABI["HDR_SQ_FLAGS"]) & ABI["SQ_NEED_WAKEUP"]  # a fresh channel asks for it
    r.set_need_wakeup(False)
    assert not chan.mem.u32(ABI["HDR_SQ_FLAGS"]) & ABI["SQ_NEED_WAKEUP"]
    r.set_need_wakeup(True)
    assert chan.mem.u32(ABI["HDR_SQ_FLAGS"]) & ABI["SQ_NEED_WAKEUP"]


# ---- the system VM's polling in C (spin, wait): a bounded share per channel ------------------------

@pytest.fixture
def arena():
    a = Arena.create(3)
    yield a
    a.close()


def storm(arena, slot, n=N, opcode=OP_CODES["nop"]):
    """Channel `slot` of the arena with n requests posted: (its ring, the guest's end)."""
    c = Channel(mem=arena.page(slot))
    for i in range(n):
        c.submit(opcode=opcode, user_data=1000 * slot + i)
    return Ring(c.mem, False), c


def test_spin_answers_a_share_of_each_channel_per_pass(arena):
    """A guest with its queue full of nops gets at most per_pass of them answered before the
    polling looks at the next channel, whose request for the server is found in the same pass."""
    a, ga = storm(arena, 0)
    b, gb = storm(arena, 1, 1, OP_CODES["kv_get"])
    i, notify, last = spin([(a, 0), (b, 1)], arena, [], 0, 10**9, 8, 1000)
    assert (i, notify) == (1, False) and last > 0
    assert a.simple == 8 and [c[0] for c in ga.reap()] == list(range(8))   # in order, none lost
    assert b.taken == 0 and b.pending() == 1                              # left for the server


def test_spin_returns_to_the_server_after_its_budget(arena):
    """Two channels full of nops: the polling returns after `budget` answers, with work left
    (the server's own round then runs: its control socket, its other doorbells); the next call
    goes on where it stopped, nothing lost or answered twice."""
    a, ga = storm(arena, 0)
    b, gb = storm(arena, 1)
    i, notify, last = spin([(a, 0), (b, 1)], arena, [], 0, 10**9, 8, 16)
    assert (i, notify) == (SPIN_BUDGET, False) and last > 0
    assert (a.simple, b.simple) == (8, 8)
    while a.simple + b.simple < 2 * N:
        spin([(a, 0), (b, 1)], arena, [], 0, 10**9, 8, 16)
    assert [c[0] for c in ga.reap()] == list(range(N)) and [c[0] for c in gb.reap()] == list(range(1000, 1000 + N))
    assert (a.simple, b.simple) == (N, N)


def test_wait_answers_a_share_of_each_channel(arena):
    """After its epoll_wait, the sleep answers at most per_pass of each hot channel's nops."""
    import select
    a, ga = storm(arena, 0)
    b, gb = storm(arena, 1, 3)
    ep = select.epoll()
    try:
        events, notify, answered = wait(ep.fileno(), [(a, 0), (b, 1)], arena, 8, 0)
    finally:
        ep.close()
    assert (events, notify, answered) == ([], [], True)
    assert (a.simple, b.simple) == (8, 3) and a.pending() == N - 8


MALFORMED = [
    ("opcode", dict(opcode=ABI["OP_COUNT"]), ENOSYS),
    ("opcode_max", dict(opcode=U32), ENOSYS),
    ("in_off", dict(in_off=DS, in_len=1), EINVAL),
    ("in_straddles", dict(in_off=DS - 4, in_len=8), EINVAL),
    ("in_wraps", dict(in_off=U32, in_len=U32), EINVAL),
    ("out_off", dict(out_off=DS, out_cap=1), EINVAL),
    ("out_cap", dict(out_off=0, out_cap=DS + 1), EINVAL),
    ("out_wraps", dict(out_off=0xFFFFFFF0, out_cap=0x20), EINVAL),
    ("name_gt_in", dict(in_len=4, name_len=5), EINVAL),
    ("name_too_long", dict(in_len=300, name_len=256), E2BIG),
]


@pytest.mark.parametrize("why,fields,err", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_each_malformed_entry_gets_an_error_request(chan, why, fields, err):
    r = Ring(chan.mem, True)
    f = dict(opcode=OP_CODES["kv_get"], user_data=0xABC)
    f.update(fields)
    chan.submit(**f)
    chan.submit(opcode=OP_CODES["kv_get"], user_data=0xDEF, in_off=0, in_len=3, name_len=3)
    bad = r.take()
    assert bad.error == err and bad.user_data == 0xABC and bad.why
    assert bad.name == b"" and bad.value == b""
    r.complete(bad, -bad.error)
    good = r.take()
    assert good.error == 0 and good.user_data == 0xDEF
    r.complete(good, 0)
    assert [(c[0], c[1]) for c in chan.reap()] == [(0xABC, -err), (0xDEF, 0)]
    assert not r.broken and r.rejected == 1


def test_name_and_value_are_copied_out_of_shared_memory(chan):
    r = Ring(chan.mem, True)
    chan.mem.write(ABI["DATA_OFF"] + 100, b"keyVALUE")
    chan.submit(opcode=OP_CODES["kv_put"], in_off=100, in_len=8, name_len=3, user_data=1)
    req = r.take()
    chan.mem.write(ABI["DATA_OFF"] + 100, b"XXXXXXXX")  # the guest rewrites it afterwards
    assert req.name == b"key" and req.value == b"VALUE"


def test_output_is_clipped_to_out_cap(chan):
    r = Ring(chan.mem, True)
    chan.submit(opcode=OP_CODES["kv_get"], out_off=4096, out_cap=4, user_data=1)
    r.complete(r.take(), 10, b"0123456789")
    (ud, res, out_len, _), = chan.reap()
    assert (ud, res, out_len) == (1, 10, 4)
    assert chan.mem.read(ABI["DATA_OFF"] + 4096, 6) == b"0123\0\0"


# ---- the model-driven machine ------------------------------------------------------------------

entry_fields = st.fixed_dictionaries({
    "opcode": st.one_of(st.integers(0, ABI["OP_COUNT"] - 1), st.integers(ABI["OP_COUNT"], U32)),
    "in_off": st.one_of(st.integers(0, 64), st.integers(DS - 64, DS + 64), st.integers(0, U32)),
    "in_len": st.one_of(st.integers(0, 300), st.integers(0, U32)),
    "out_off": st.one_of(st.integers(0, 64), st.integers(DS - 64, DS + 64), st.integers(0, U32)),
    "out_cap": st.one_of(st.integers(0, 64), st.integers(0, U32)),
    "name_len": st.one_of(st.integers(0, 300), st.integers(0, U32)),
    "arg": st.integers(0, (1 << 64) - 1),
})


class RingMachine(RuleBasedStateMachine):
    """An honest guest and the system VM's Ring, interleaved at random. The model: submitted,
    taken, completed and reaped sequences of user_data."""

    @initialize(start=st.one_of(st.integers(U32 - 2 * N, U32), st.integers(0, 2 * N), st.integers(0, U32)))
    def setup(self, start):
        self.c = Channel(start)
        self.ring = Ring(self.c.mem, True)
        self.next_ud = 1
        self.submitted = []      # user_data in submission order
        self.fields = {}         # user_data -> entry fields
        self.taken = []          # in take order
        self.in_service = []     # taken, not completed
        self.completed = []      # in completion order
        self.reaped = []

    def teardown(self):
        if hasattr(self, "c"):
            self.c.close()

    def sq_used(self):
        # what the guest sees of the SQ: its tail against the published head
        return (self.c.sq_tail - self.c.mem.u32(ABI["HDR_SQ_HEAD"])) & U32

    @rule(fields=entry_fields, k=st.integers(1, N))
    def submit(self, fields, k):
        # an honest producer never overfills the SQ; it may have more than 64 requests
        # outstanding in total (taken ones waiting for CQ room), which the reader must handle
        k = min(k, N - self.sq_used())
        for _ in range(k):
            ud = self.next_ud
            self.next_ud += 1
            self.c.submit(user_data=ud, **fields)
            self.submitted.append(ud)
            self.fields[ud] = fields

    @rule(k=st.integers(1, N + 2))
    def take(self, k):
        for _ in range(k):
            pending = len(self.submitted) - len(self.taken)
            reserved_or_used = len(self.taken) - len(self.reaped)
            req = self.ring.take()
            if pending == 0 or reserved_or_used >= N:
                assert req is None  # empty SQ, or no CQ room for the answer
                continue
            assert req is not None
            ud = self.submitted[len(self.taken)]
            assert req.user_data == ud  # FIFO: the oldest untaken entry
            f = self.fields[ud]
            assert req.error == expected_error(f["opcode"], f["in_off"], f["in_len"], f["out_off"],
                                               f["out_cap"], f["name_len"])
            if not req.error:
                assert len(req.name) == f["name_len"] and len(req.value) == f["in_len"] - f["name_len"]
                assert req.arg == f["arg"]
            self.taken.append(ud)
            self.in_service.append(req)

    @precondition(lambda self: self.in_service)
    @rule(pick=st.integers(0, N), k=st.integers(1, N))
    def complete(self, pick, k):
        for _ in range(min(k, len(self.in_service))):
            req = self.in_service.pop(pick % len(self.in_service))  # any order
            res = -req.error if req.error else req.user_data * 3
            self.ring.complete(req, res, b"")
            self.completed.append(req.user_data)

    @rule()
    def reap(self):
        got = self.c.reap()
        for ud, res, out_len, _ in got:
            f = self.fields[ud]
            err = expected_error(f["opcode"], f["in_off"], f["in_len"], f["out_off"], f["out_cap"], f["name_len"])
            assert res == (-err if err else ud * 3)
            assert out_len == 0
            self.reaped.append(ud)
        assert self.reaped == self.completed  # CQ order is completion order, nothing lost

    @invariant()
    def consistent(self):
        assert not self.ring.broken, self.ring.broken_reason
        s = ring_state(self.c.mem)
        start = (self.c.sq_tail - len(self.submitted)) & U32
        assert s["sq_tail"] == self.c.sq_tail
        assert s["sq_head"] == self.ring.sq_head == (start + len(self.taken)) & U32
        assert s["cq_tail"] == self.ring.cq_tail == (start + len(self.completed)) & U32
        assert s["cq_head"] == self.c.cq_head == (start + len(self.reaped)) & U32
        assert self.ring.pending() == len(self.submitted) - len(self.taken)
        used = len(self.completed) - len(self.reaped)
        reserved = len(self.taken) - len(self.completed)
        assert self.ring.cq_free() == max(0, N - used - reserved)
        # no duplication; taken is a prefix of submitted (FIFO)
        assert self.taken == self.submitted[:len(self.taken)]
        assert len(set(self.completed)) == len(self.completed)
        assert set(self.completed) <= set(self.taken)


RingMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestRingMachine = RingMachine.TestCase


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, U32), taken=st.integers(0, N), bad=st.integers(N + 1, U32))
def test_any_far_index_breaks_without_crashing(start, taken, bad):
    """Whatever the guest writes into sq_tail beyond the window, the reader marks the channel
    broken and stops; it never reads a slot or raises."""
    c = Channel(start)
    try:
        r = Ring(c.mem, True)
        for i in range(taken):
            c.submit(user_data=i)
        for _ in range(taken):
            assert r.take() is not None
        c.mem.set_u32(ABI["HDR_SQ_TAIL"], (r.sq_head + bad) & U32)
        assert r.take() is None and r.broken
        assert r.sq_head == (start + taken) & U32  # nothing more consumed
    finally:
        c.close()


# ---- a hostile guest: any value in any field, at any time --------------------------------------

HDR_FIELDS = ["HDR_SQ_TAIL", "HDR_SQ_HEAD", "HDR_CQ_TAIL", "HDR_CQ_HEAD", "HDR_SQ_FLAGS", "HDR_CQ_FLAGS"]
CTL_END = ABI["DATA_OFF"]   # header, SQ and CQ: compared byte by byte after every reader step
near = lambda base: st.integers(-3, N + 3).map(lambda d: (base + d) & U32)


class HostileRingMachine(RuleBasedStateMachine):
    """The guest writes any u32 into any index or flag (its own and the reader's published
    copies) and any bytes into any submission entry, between any two reader steps; it also
    submits honestly. Whatever it does, the reader never raises, writes nothing but what it
    owns (its published sq_head, cq_tail and sq_flags, the CQ entry of the request it answers,
    that request's output range), never posts more completions than it took, keeps its private
    indices to itself, and once broken stays broken and writes nothing at all."""

    @initialize(start=st.one_of(st.integers(U32 - N, U32), st.integers(0, U32)))
    def setup(self, start):
        self.c = Channel(start)
        self.ring = Ring(self.c.mem, True)
        self.start = start
        self.pattern = bytes(range(256)) * (ABI["DATA_SIZE"] // 256)
        self.c.mem.write(ABI["DATA_OFF"], self.pattern)   # the guest's data, to see what changes
        self.expected = bytearray(self.pattern)
        self.in_service = []
        self.taken = self.completed = 0
        self.was_broken = False

    def teardown(self):
        if hasattr(self, "c"):
            try:
                assert self.c.mem.read(ABI["DATA_OFF"], ABI["DATA_SIZE"]) == bytes(self.expected), \
                    "the reader wrote outside the output ranges of the requests it answered"
            finally:
                self.c.close()

    def ctl(self):
        return self.c.mem.read(0, CTL_END)

    def only_changed(self, before, allowed):
        """Every byte of header, SQ and CQ that changed lies in one of the allowed ranges."""
        after = self.ctl()
        for i in range(CTL_END):
            if before[i] != after[i]:
                assert any(lo <= i < lo + n for lo, n in allowed), "the reader wrote byte %#x" % i

    # -- the guest --------------------------------------------------------------------------------
    @rule(field=st.sampled_from(HDR_FIELDS), data=st.data())
    def forge_index(self, field, data):
        ring = self.ring
        v = data.draw(st.one_of(st.integers(0, U32), near(ring.sq_head), near(ring.cq_tail)))
        self.c.mem.set_u32(ABI[field], v)
        if field == "HDR_SQ_TAIL":
            self.c.sq_tail = v
        if field == "HDR_CQ_HEAD":
            self.c.cq_head = v

    @rule(idx=st.integers(0, N - 1), entry=st.binary(min_size=64, max_size=64))
    def forge_entry(self, idx, entry):
        self.c.mem.write(ABI["SQ_OFF"] + idx * 64, entry)

    @rule(fields=entry_fields)
    def submit(self, fields):
        self.c.submit(user_data=0x5eed, **fields)

    @rule()
    def reap(self):
        self.c.reap() if (self.c.mem.u32(ABI["HDR_CQ_TAIL"]) - self.c.cq_head) & U32 <= N else None

    # -- the reader ---------------------------------------------------------------------------------
    @rule()
    def take(self):
        before = self.ctl()
        req = self.ring.take()
        self.only_changed(before, [] if self.was_broken else [(ABI["HDR_SQ_HEAD"], 4)])
        if req is not None:
            assert not self.was_broken
            self.taken += 1
            self.in_service.append(req)
            if not req.error:
                assert len(req.name) <= ABI["NAME_MAX"] and len(req.name) + len(req.value) <= ABI["DATA_SIZE"]

    @precondition(lambda self: self.in_service)
    @rule(pick=st.integers(0, N), out=st.binary(max_size=300), result=st.integers(-(1 << 63), (1 << 63) - 1))
    def complete(self, pick, out, result):
        req = self.in_service.pop(pick % len(self.in_service))
        slot = ABI["CQ_OFF"] + (self.ring.cq_tail % N) * 64
        before = self.ctl()
        self.ring.complete(req, result, out)
        if self.was_broken or self.ring.broken:
            self.only_changed(before, [])
            return
        self.only_changed(before, [(slot, 64), (ABI["HDR_CQ_TAIL"], 4)])
        self.completed += 1
        n = min(len(out), req.out_cap)
        self.expected[req.out_off:req.out_off + n] = out[:n]

    @rule()
    def look(self):
        before = self.ctl()
        self.ring.pending()
        self.ring.cq_free()
        self.only_changed(before, [])

    @rule(on=st.booleans())
    def need_wakeup(self, on):
        before = self.ctl()
        self.ring.set_need_wakeup(on)
        self.only_changed(before, [(ABI["HDR_SQ_FLAGS"], 4)])

    @invariant()
    def indices_are_the_readers_own(self):
        if not hasattr(self, "ring"):
            return
        if self.was_broken:
            assert self.ring.broken, "a broken channel came back"
        self.was_broken = self.ring.broken
        assert self.ring.sq_head == (self.start + self.taken) & U32
        assert self.completed <= self.taken
        if not self.ring.broken:
            assert self.ring.cq_tail == (self.start + self.completed) & U32
            assert (self.ring.sq_head - self.ring.cq_tail) & U32 <= N   # never more in service than the CQ holds


HostileRingMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                                suppress_health_check=[HealthCheck.too_slow])
TestHostileRingMachine = HostileRingMachine.TestCase
