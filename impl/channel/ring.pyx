# cython: language_level=3, boundscheck=False, wraparound=False
"""The host side of a channel: SPSC submission and completion rings in one shared page.

The layout comes from abi/nanvix_abi.h, the one header the guest microkernel also compiles.
The system VM is the consumer of the submission queue (SQ) and the producer of the completion
queue (CQ). The guest is untrusted: every value it writes (its indices, every entry field) is read
once into private memory, validated, and only then used; a bad entry is answered with an error
completion. The system VM keeps private copies of the indices it owns (sq_head, cq_tail) and only
publishes them, so a guest scribbling over the shared copies cannot steer it. A guest index that
no honest guest could produce marks the channel broken: it is no longer served.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.errno cimport errno, EINTR as EINTR_
from libc.string cimport memcpy, memset

from nanvix.impl.abi.abi cimport *
from nanvix.impl.channel.arena cimport Arena
from nanvix.impl.kvm.kvm cimport Memory

from nanvix.impl.abi.abi import OPS, OP_CODES

cdef extern from *:
    """
    #include <time.h>
    static inline void nx_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
    static inline void nx_pause(void) { __builtin_ia32_pause(); }
    static inline long long nx_clock(int id) {
        struct timespec ts; clock_gettime(id, &ts); return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    """
    void nx_fence() nogil
    void nx_pause() nogil
    long long nx_clock(int id) nogil
    enum:
        CLOCK_REALTIME, CLOCK_MONOTONIC

cdef uint32_t OP_NOP = OP_CODES["nop"], OP_CLOCK = OP_CODES["clock"]
# what Ring.answer_simple() found at the head of the submission queue
cdef enum:
    SIMPLE_NONE = -1     # nothing takeable: empty, no room for an answer, or broken
    SIMPLE_OTHER = 0     # a request the system VM's Python serves (or take() rejects)
    SIMPLE_DONE = 1      # a nop or a clock read, answered here
    SIMPLE_NOTIFY = 3    # ... and the guest asked to be notified

# Which of the reader's checks a guest-written entry fails (the first), one place for both take()
# and the C answers; FAULT_ERRNO is the error each earns.
cdef enum:
    FAULT_NONE, FAULT_OPCODE, FAULT_INPUT, FAULT_OUTPUT, FAULT_NAME_LEN, FAULT_NAME_MAX
cdef int FAULT_ERRNO[6]
FAULT_ERRNO[:] = [0, NX_ENOSYS, NX_EINVAL, NX_EINVAL, NX_EINVAL, NX_E2BIG]


cdef inline int entry_fault(const nx_sqe *e) noexcept nogil:
    if e.opcode >= NX_OP_COUNT:
        return FAULT_OPCODE
    if <uint64_t>e.in_off + e.in_len > NX_DATA_SIZE:
        return FAULT_INPUT
    if <uint64_t>e.out_off + e.out_cap > NX_DATA_SIZE:
        return FAULT_OUTPUT
    if e.name_len > e.in_len:
        return FAULT_NAME_LEN
    if e.name_len > NX_NAME_MAX:
        return FAULT_NAME_MAX
    return FAULT_NONE


cdef str fault_why(const nx_sqe *e, int fault):
    """The fault in words, for the log."""
    if fault == FAULT_OPCODE:
        return "opcode %d" % e.opcode
    if fault == FAULT_INPUT:
        return "input [%d, +%d) outside the data area" % (e.in_off, e.in_len)
    if fault == FAULT_OUTPUT:
        return "output [%d, +%d) outside the data area" % (e.out_off, e.out_cap)
    if fault == FAULT_NAME_LEN:
        return "name_len %d > in_len %d" % (e.name_len, e.in_len)
    return "name of %d bytes" % e.name_len


cdef class Request:
    """One validated request, copied out of shared memory. error != 0 means it was malformed:
    answer it with an error completion and do nothing else."""

    @property
    def op(self):
        return OPS.get(self.opcode, "op_%d" % self.opcode)

    def __repr__(self):
        if self.error:
            return "Request(bad: %s, user_data=%#x)" % (self.why, self.user_data)
        return "Request(%s %r, %d value bytes, arg=%d)" % (self.op, self.name, len(self.value), self.arg)


def init_channel(Memory mem):
    """Lay out a fresh channel page (host side, before any guest sees it)."""
    if mem.size < NX_CHANNEL_SIZE:
        raise ValueError("a channel needs %d bytes" % NX_CHANNEL_SIZE)
    cdef nx_ring_hdr *h = <nx_ring_hdr *>mem.base
    if mem.fd >= 0 and mem.shared:
        # a page of a shared file (a tenant's arena): what is not in memory reads as zero, and
        # writing zeros there would only bring it in (3 pages per channel, idle ones included)
        mem.view(0, NX_DATA_OFF).zero_resident()
    else:
        memset(mem.base, 0, NX_DATA_OFF)
    h.magic = NX_RING_MAGIC
    h.version = NX_ABI_VERSION
    h.entries = NX_RING_ENTRIES
    h.data_off = NX_DATA_OFF
    h.data_size = NX_DATA_SIZE
    h.slot_size = NX_DATA_SLOT
    h.sq_flags = NX_SQ_NEED_WAKEUP


cdef class Ring:
    """The system VM's end of one channel."""

    def __cinit__(self, Memory mem, bint adopt=True):
        if mem.size < NX_CHANNEL_SIZE:
            raise ValueError("a channel needs %d bytes" % NX_CHANNEL_SIZE)
        self.mem = mem
        self.hdr = <nx_ring_hdr *>mem.base
        self.sq = <nx_sqe *>(mem.base + NX_SQ_OFF)
        self.cq = <nx_cqe *>(mem.base + NX_CQ_OFF)
        self.data = mem.base + NX_DATA_OFF
        self.broken = False
        self.broken_reason = ""
        # A system VM restarted mid-stream adopts the published indices, after checking them.
        self.sq_head = self.hdr.sq_head if adopt else 0
        self.cq_tail = self.hdr.cq_tail if adopt else 0
        if adopt and <uint32_t>(self.sq_head - self.cq_tail) > NX_RING_ENTRIES:
            self._break("published indices are inconsistent (sq_head %d, cq_tail %d)"
                        % (self.sq_head, self.cq_tail))

    cdef void _break(self, str why):
        self.broken = True
        self.broken_reason = why

    cpdef uint32_t pending(self) except? 0xffffffff:
        """Requests waiting in the SQ (validated against the guest's tail)."""
        cdef uint32_t tail = self.hdr.sq_tail
        cdef uint32_t n = tail - self.sq_head
        if n > NX_RING_ENTRIES:
            self._break("sq_tail %d is %d ahead of sq_head %d" % (tail, n, self.sq_head))
            return 0
        return n

    cpdef uint32_t cq_free(self) except? 0xffffffff:
        """Free CQ slots, counting requests taken but not yet completed as reserved."""
        cdef uint32_t head = self.hdr.cq_head
        cdef uint32_t used = self.cq_tail - head
        if used > NX_RING_ENTRIES:
            self._break("cq_head %d is outside [cq_tail - %d, cq_tail %d]" % (head, NX_RING_ENTRIES, self.cq_tail))
            return 0
        cdef uint32_t reserved = self.sq_head - self.cq_tail  # taken, not completed
        if used + reserved >= NX_RING_ENTRIES:
            return 0
        return NX_RING_ENTRIES - used - reserved

    cdef bint _head(self, nx_sqe *e) except -1:
        """Copy the entry at the head of the SQ into e (read once: the guest may rewrite it), if
        there is one to take: the channel not broken, a request pending and room in the CQ for
        its answer. Both guest-written indices are checked before anything is decided, so an
        impossible cq_head breaks the channel even when the SQ is empty (as the spec's take does)."""
        cdef uint32_t n, free
        if self.broken:
            return False
        n = self.pending()
        free = self.cq_free()
        if self.broken or n == 0 or free == 0:
            return False
        memcpy(e, &self.sq[self.sq_head & (NX_RING_ENTRIES - 1)], sizeof(nx_sqe))
        return True

    cdef void _advance(self) noexcept:
        """The head entry is taken (its answer's CQ slot is reserved from now on)."""
        self.sq_head += 1
        self.hdr.sq_head = self.sq_head
        self.taken += 1

    cdef bint _post(self, uint64_t user_data, int64_t result, uint32_t out_len) noexcept:
        """Write a completion and publish it; whether the guest asked to be notified."""
        cdef nx_cqe *c = &self.cq[self.cq_tail & (NX_RING_ENTRIES - 1)]
        c.user_data = user_data
        c.result = result
        c.out_len = out_len
        c.flags = 0
        self.cq_tail += 1
        nx_fence()  # the entry is visible before the tail
        self.hdr.cq_tail = self.cq_tail
        self.completed += 1
        nx_fence()  # publish the tail before reading the guest's flag (pairs with its re-check)
        return (self.hdr.cq_flags & NX_CQ_NOTIFY_ME) != 0

    def take(self):
        """The next request, or None when the SQ is empty, the CQ has no room for its answer,
        or the channel is broken. The entry is copied, then validated field by field."""
        cdef nx_sqe e
        cdef Request r
        cdef int fault
        if not self._head(&e):
            return None
        self._advance()
        r = Request.__new__(Request)
        r.user_data = e.user_data
        r.opcode = e.opcode
        r.flags = e.flags
        r.arg = e.arg
        r.name = b""
        r.value = b""
        r.why = ""
        fault = entry_fault(&e)
        r.error = FAULT_ERRNO[fault]
        if fault:
            r.why = fault_why(&e, fault)
            self.rejected += 1
        else:
            r.out_off = e.out_off
            r.out_cap = e.out_cap
            r.name = self.data[e.in_off:e.in_off + e.name_len]
            r.value = self.data[e.in_off + e.name_len:e.in_off + e.in_len]
        return r

    def complete(self, Request r, int64_t result, bytes out=b""):
        """Post the answer to r. Returns True when the guest asked to be notified (NOTIFY_ME).
        Space was reserved when r was taken, so this cannot overflow the CQ."""
        cdef uint32_t n = len(out)
        if self.broken:
            return False
        if n > r.out_cap:
            n = r.out_cap
        if n:
            memcpy(self.data + r.out_off, <char *>out, n)
        return self._post(r.user_data, result, n)

    cdef int answer_simple(self, uint32_t *account) except -2:
        """Answer the request at the head of the queue here if it is one that needs no state of
        the system VM (a nop, a clock read) and passes take()'s checks; anything else is left for
        take(). The account (*account, the arena's served count) is written before the answer,
        as answer() does. Returns a SIMPLE_ code."""
        cdef nx_sqe e
        cdef int64_t result = 0
        if not self._head(&e):
            return SIMPLE_NONE
        if (e.opcode != OP_NOP and e.opcode != OP_CLOCK) or entry_fault(&e):
            return SIMPLE_OTHER
        if e.opcode == OP_CLOCK:
            result = nx_clock(CLOCK_REALTIME)
        self._advance()
        account[0] = account[0] + 1
        nx_fence()  # the account before the answer
        self.simple += 1
        return SIMPLE_NOTIFY if self._post(e.user_data, result, 0) else SIMPLE_DONE

    def serve_simple(self, Arena arena, uint32_t slot, uint32_t budget):
        """Answer up to budget nops and clock reads at the head of the queue (see answer_simple).
        Returns (answered, whether a guest asked to be notified, whether a request for take()
        is next)."""
        cdef uint32_t k = 0
        cdef int r = SIMPLE_NONE
        cdef bint notify = False
        cdef uint32_t *account = &arena.slot(slot).served
        while k < budget:
            r = self.answer_simple(account)
            if r <= SIMPLE_OTHER:
                break
            k += 1
            notify |= r == SIMPLE_NOTIFY
        return k, notify, r == SIMPLE_OTHER

    def recover(self):
        """After a restart: fail, with EIO, every request the dead system VM had taken but not
        answered (their entries are still in the SQ: an honest guest cannot have reused them).
        Retrying instead could apply a non-idempotent request (kv_add) twice. Returns how many."""
        cdef uint32_t k, start = self.cq_tail, n = self.sq_head - self.cq_tail
        cdef Request r
        if self.broken:
            return 0
        for k in range(n):
            r = Request.__new__(Request)
            r.user_data = self.sq[(start + k) & (NX_RING_ENTRIES - 1)].user_data
            r.name = r.value = b""
            r.why = "system VM restarted"
            r.error = NX_EIO
            self.complete(r, -NX_EIO)
        return n

    def set_need_wakeup(self, bint on):
        """Ask the guest to ring the doorbell (we are about to sleep), or let it skip the exit.
        After arming, the caller must re-check pending() so no submission is missed."""
        if on:
            self.hdr.sq_flags = self.hdr.sq_flags | NX_SQ_NEED_WAKEUP
            nx_fence()
        else:
            self.hdr.sq_flags = self.hdr.sq_flags & ~NX_SQ_NEED_WAKEUP

    def mark_broken(self, str why):
        self._break(why)


# why spin() returned -1 and below: what the server's loop need not tell apart, a test may
SPIN_CHANGED, SPIN_BUDGET, SPIN_IDLE = -1, -2, -3


cdef int drain(Ring ring, uint32_t *account, uint32_t per_pass, uint32_t *answered) except -2:
    """Answer up to per_pass nops and clock reads at the head of one ring (a pass's share: a
    guest that keeps its queue full cannot keep the loop on its own ring). Returns the last
    SIMPLE_ code: DONE when the share ran out with more perhaps behind it."""
    cdef uint32_t k = 0
    cdef int r = SIMPLE_DONE
    while k < per_pass:
        r = ring.answer_simple(account)
        if r < SIMPLE_DONE:
            return r
        k += 1
        answered[0] += 1
        if r == SIMPLE_NOTIFY:
            return r
    return r


def spin(list hot, Arena arena, list shards, long long since_ns, long long poll_ns, uint32_t per_pass,
         uint32_t budget):
    """The system VM's polling, in C: spin over the hot channels (hot: [(Ring, slot)]) answering
    nops and clock reads as they come, up to per_pass of each channel per pass, until a channel
    holds a request for the Python server, a guest answered here asked to be notified, a channel
    change is posted on one of the shards' change rings, budget answers were made (what a guest
    can make this loop do before the server's own round runs again: its control socket, its
    other channels' doorbells), or poll_ns (CLOCK_MONOTONIC) pass with nothing answered since
    since_ns (or since the last answer here). A polled round trip then costs a few loads and
    stores, not a pass of the interpreter's loop. Returns (the index into hot of the channel
    that needs the server, else SPIN_CHANGED, SPIN_BUDGET or SPIN_IDLE; whether that guest asked
    to be notified; the time of the last answer here or 0)."""
    cdef Py_ssize_t i, n = len(hot)
    cdef Ring ring
    cdef uint32_t slot, shard, spins = 0, answered = 0, before
    cdef int r
    cdef long long last = 0, until = since_ns + poll_ns
    cdef nx_ctl_ring *change
    rings = [h[0] for h in hot]
    slots = [h[1] for h in hot]
    while True:
        for i in range(n):
            ring = <Ring>rings[i]
            slot = slots[i]
            before = answered
            r = drain(ring, &arena.slot(slot).served, per_pass, &answered)
            if answered != before:
                last = nx_clock(CLOCK_MONOTONIC)
                until = last + poll_ns
            if r == SIMPLE_NOTIFY:
                return i, True, last
            if r == SIMPLE_OTHER:
                return i, False, last
        if answered >= budget:
            return SPIN_BUDGET, False, last
        for shard in shards:
            change = &arena.hdr.change[shard % NX_SHARDS_MAX]
            if change.head != change.tail or change.overflow:
                return SPIN_CHANGED, False, last
        spins += 1
        if spins % 32 == 0 and nx_clock(CLOCK_MONOTONIC) >= until:
            return SPIN_IDLE, False, last
        nx_pause()


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        int fd
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)


def wait(int epfd, list hot, Arena arena, uint32_t per_pass, int timeout_ms=-1):
    """The system VM's sleep: epoll_wait without the GIL, then, before anything else, one look
    at the hot channels answering up to per_pass of each one's nops and clock reads (see spin):
    a doorbell's nop is answered within a microsecond of the wake-up, not after a pass of the
    Python loop. Returns ([(fd, events)] as select.epoll.poll does, [indexes into hot whose
    guest asked to be notified], whether anything was answered)."""
    cdef epoll_event ev[16]
    cdef int n, k, r, err = 0
    cdef Py_ssize_t i
    cdef Ring ring
    cdef uint32_t answered = 0
    with nogil:
        n = epoll_wait(epfd, ev, 16, timeout_ms)
        if n < 0:
            err = errno
    if n < 0:
        if err == EINTR_:
            return [], [], False
        raise OSError(err, "epoll_wait")
    notify = []
    for i in range(len(hot)):
        ring = <Ring>hot[i][0]
        if drain(ring, &arena.slot(<uint32_t>hot[i][1]).served, per_pass, &answered) == SIMPLE_NOTIFY:
            notify.append(i)
    return [(ev[k].data.fd, ev[k].events) for k in range(n)], notify, answered > 0


def ring_state(Memory mem):
    """The channel's shared indices and flags as they are in the page (for state reports)."""
    cdef nx_ring_hdr *h = <nx_ring_hdr *>mem.base
    return {"sq_tail": h.sq_tail, "sq_head": h.sq_head, "cq_tail": h.cq_tail,
            "cq_head": h.cq_head, "sq_flags": h.sq_flags, "cq_flags": h.cq_flags}


def ring_slots(Memory mem):
    """Every slot of both rings, as the page holds it: {"sq": [user_data] * ENTRIES,
    "cq": [(user_data, result)] * ENTRIES}. Stale slots included: they are what a lying sq_tail
    would make the system VM read next."""
    cdef uint32_t i
    cdef nx_sqe *sq = <nx_sqe *>(mem.base + NX_SQ_OFF)
    cdef nx_cqe *cq = <nx_cqe *>(mem.base + NX_CQ_OFF)
    return {"sq": [sq[i].user_data for i in range(NX_RING_ENTRIES)],
            "cq": [(cq[i].user_data, cq[i].result) for i in range(NX_RING_ENTRIES)]}
