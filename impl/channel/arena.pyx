# cython: language_level=3, boundscheck=False, wraparound=False
"""A tenant's channel arena (layout in abi/nanvix_abi.h): one memfd with a control region and
every channel page of the tenant, mapped once by the VMM and once by the tenant's system VM.

The VMM hands slot i to a user VM (hand_out: a new generation), activates it while the guest
runs and deactivates it after; each change goes on the shard's change ring, which the system VM
drains, so it serves only active slots (its loop is O(active channels)) and acknowledges a slot it
no longer touches (idle) before the VMM scrubs and reuses its page. The system VM posts slots
whose guest asked to be notified on the shard's wake ring. Either side validates every index it
reads from the other: neither trusts the region.
"""
import os

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from nanvix.impl.abi.abi cimport *
from nanvix.impl.kvm.kvm cimport Memory

from nanvix.impl.kvm.kvm import memfd

cdef extern from *:
    """
    static inline void nx_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
    """
    void nx_fence() nogil

cdef enum:
    SLOT_BYTES = 8192
SLOT_SIZE = SLOT_BYTES
cdef uint64_t PAGE = NX_PAGE_2M
SHARDS_MAX = NX_SHARDS_MAX
CTL_LOG = NX_CTL_LOG


def layout(uint32_t nslots):
    """(offset of channel page 0, arena size) for nslots channels."""
    cdef uint64_t chan_off = NX_CTL_SLOTS_OFF + <uint64_t>nslots * SLOT_SIZE
    chan_off = (chan_off + PAGE - 1) // PAGE * PAGE
    return chan_off, chan_off + <uint64_t>nslots * PAGE


cdef class Arena:
    """Arena(fd): map an existing arena (validated); Arena.create(nslots): a new one."""

    def __cinit__(self, int fd, uint64_t size=0):
        cdef uint64_t chan_off, want
        if size == 0:
            size = os.fstat(fd).st_size
        if size < NX_CTL_SLOTS_OFF:
            raise ValueError("an arena of %d bytes is too small" % size)
        self.fd = fd
        self.mem = Memory(size, fd, True)
        self.base = <char *>self.mem.addr
        self.hdr = <nx_ctl_hdr *>self.base
        if self.hdr.magic != NX_ARENA_MAGIC or self.hdr.slot_size != SLOT_SIZE:
            raise ValueError("not a channel arena")
        chan_off, want = layout(self.hdr.nslots)
        if self.hdr.chan_off != chan_off or want > size:
            raise ValueError("a malformed channel arena header")
        self.nslots = self.hdr.nslots
        self.chan_off = chan_off

    @staticmethod
    def create(uint32_t nslots, str name="nanvix-arena"):
        """A new arena memfd laid out for nslots channels; returns the mapped Arena (it owns the
        fd: close() closes it)."""
        chan_off, size = layout(nslots)
        fd = memfd(name, size)
        cdef Memory m = Memory(NX_CTL_SLOTS_OFF, fd, True)
        cdef nx_ctl_hdr *h = <nx_ctl_hdr *>m.addr
        h.magic = NX_ARENA_MAGIC
        h.version = NX_ABI_VERSION
        h.nslots = nslots
        h.slot_size = SLOT_SIZE
        h.chan_off = chan_off
        m.close()
        return Arena(fd, size)

    def close(self):
        self.mem.close()

    cdef nx_ctl_slot *slot(self, uint32_t i) except NULL:
        if i >= self.nslots:
            raise IndexError("slot %d of %d" % (i, self.nslots))
        return <nx_ctl_slot *>(self.base + NX_CTL_SLOTS_OFF + <uint64_t>i * SLOT_BYTES)

    def page(self, uint32_t i):
        """Channel page i, as a view of the arena's one mapping."""
        self.slot(i)
        return self.mem.view(self.chan_off + <uint64_t>i * PAGE, PAGE)

    # -- the rings ---------------------------------------------------------------------------------
    cdef bint push(self, nx_ctl_ring *r, uint32_t value) noexcept nogil:
        cdef uint32_t head = r.head
        if head - r.tail >= NX_CTL_RING:
            r.overflow = 1          # the consumer rescans everything
            return False
        r.slot[head & (NX_CTL_RING - 1)] = value
        nx_fence()
        r.head = head + 1
        return True

    cdef list _drain(self, nx_ctl_ring *r):
        """Every slot posted since the last drain, valid ones only; [-1] first on overflow."""
        cdef uint32_t tail = r.tail, head = r.head, v
        out = []
        if r.overflow:
            r.overflow = 0
            nx_fence()
            out.append(-1)
        if head - tail > NX_CTL_RING:  # the producer's index is impossible: rescan, start over
            r.tail = head
            return [-1]
        while tail != head:
            v = r.slot[tail & (NX_CTL_RING - 1)]
            if v < self.nslots:
                out.append(v)
            tail += 1
        nx_fence()
        r.tail = tail
        return out

    # -- the VMM's side ------------------------------------------------------------------------------
    def hand_out(self, uint32_t i, uint64_t uvm, uint32_t shard):
        """Slot i begins a new generation for user VM uvm of this shard (inactive; its page must
        already be scrubbed and initialised, and the system VM idle on it)."""
        cdef nx_ctl_slot *s = self.slot(i)
        if shard >= NX_SHARDS_MAX:
            raise ValueError("shard %d" % shard)
        s.active = 0
        s.running = 0
        s.uvm = uvm
        s.shard = shard
        s.served = s.broken = s.log_len = s.log_dropped = 0
        nx_fence()
        s.gen = s.gen + 1

    def set_active(self, uint32_t i, bint on, uint32_t shard):
        """The guest of slot i may (on) or may no longer (off) submit; posted on the shard's change
        ring. Returns False when the ring was full (the system VM then rescans every slot)."""
        cdef nx_ctl_slot *s = self.slot(i)
        cdef bint posted
        s.active = 1 if on else 0
        nx_fence()  # (a few stores: not worth letting go of the GIL, and waiting to get it back)
        posted = self.push(&self.hdr.change[shard % NX_SHARDS_MAX], i)
        return posted

    def set_running(self, uint32_t i, bint on, uint32_t shard):
        """Slot i's vCPU is (on) or is no longer (off) on a core: a guest can submit only while
        it runs, so the system VM polls only those channels (and each one once more after it
        stops, for what it submitted last)."""
        cdef nx_ctl_slot *s = self.slot(i)
        if s.running == (1 if on else 0):
            return True
        cdef bint posted
        s.running = 1 if on else 0
        nx_fence()  # (a few stores: not worth letting go of the GIL, and waiting to get it back)
        posted = self.push(&self.hdr.change[shard % NX_SHARDS_MAX], i)
        return posted

    def released(self, uint32_t i):
        """After slot i was deactivated: the system VM does not touch its page, so the VMM may
        scrub and reuse it. Either the system VM never claimed the slot's current generation
        (and cannot now: it looks at `active` again after claiming, see claim()), or it has
        acknowledged it idle. Saves a wake-up of the system VM per invocation that did no I/O."""
        cdef nx_ctl_slot *s = self.slot(i)
        cdef uint32_t gen
        nx_fence()  # (pairs with the fence in claim: one of the two sides sees the other's store)
        gen = s.gen
        if s.active:
            return False
        return s.seen_gen != gen or s.idle == 1

    def claimed(self, uint32_t i):
        """The system VM has claimed slot i's current generation and not let go of it yet."""
        cdef nx_ctl_slot *s = self.slot(i)
        return s.seen_gen == s.gen and s.idle == 0

    def gen(self, uint32_t i):
        return self.slot(i).gen

    def account(self, uint32_t i):
        """What the system VM reported for slot i's current generation: (served, log lines,
        dropped lines, broken). Read as it is: the system VM writes each answer's account before
        the answer, so after the guest's last synchronous call it is complete."""
        cdef nx_ctl_slot *s = self.slot(i)
        cdef uint32_t n = s.log_len
        if n > NX_CTL_LOG:
            n = NX_CTL_LOG
        text = (<char *>s.log)[:n].decode("utf-8", "replace")
        return s.served, [l for l in text.split("\n") if l], s.log_dropped, s.broken != 0

    def wakes(self, uint32_t shard):
        """Slots the system VM asked this shard to wake (-1 first: it overflowed, scan them all)."""
        return self._drain(&self.hdr.wake[shard % NX_SHARDS_MAX])

    # -- the system VM's side -----------------------------------------------------------------------
    def changes(self, uint32_t shard):
        """Slots whose activation changed, posted by a shard (-1 first: rescan every slot)."""
        return self._drain(&self.hdr.change[shard % NX_SHARDS_MAX])

    def state(self, uint32_t i):
        """(gen, active, shard, uvm, running) as the VMM wrote them."""
        cdef nx_ctl_slot *s = self.slot(i)
        return s.gen, s.active == 1, s.shard, s.uvm, s.running == 1

    def state_seen(self, uint32_t i):
        """The generation the system VM last served slot i in."""
        return self.slot(i).seen_gen

    def seen(self, uint32_t i, uint32_t gen, bint idle):
        """The system VM's private state of slot i is for generation gen; idle: it no longer
        touches the page."""
        cdef nx_ctl_slot *s = self.slot(i)
        if s.seen_gen != gen:
            s.served = s.broken = s.log_len = s.log_dropped = 0
        s.seen_gen = gen
        nx_fence()
        s.idle = 1 if idle else 0

    def claim(self, uint32_t i, uint32_t gen):
        """The system VM is about to touch slot i's page for generation gen. It says so first
        (seen_gen = gen, not idle), then looks again: if the VMM has taken the slot back (or on
        to a later generation) meanwhile, it lets go at once, untouched, and returns False.
        Store, fence, load on both sides (see released()): either the VMM sees the claim and
        waits for the system VM to let go, or the system VM sees the slot inactive."""
        cdef nx_ctl_slot *s = self.slot(i)
        if s.seen_gen != gen:
            s.served = s.broken = s.log_len = s.log_dropped = 0
        s.seen_gen = gen
        s.idle = 0
        nx_fence()
        if s.gen != gen or not s.active:
            s.idle = 1
            return False
        return True

    def served(self, uint32_t i):
        cdef nx_ctl_slot *s = self.slot(i)
        s.served = s.served + 1

    def log(self, uint32_t i, str line):
        """Append one (escaped) line to slot i's report log, or count it as dropped."""
        cdef nx_ctl_slot *s = self.slot(i)
        b = line.encode("utf-8", "replace") + b"\n"
        cdef uint32_t n = len(b), at = s.log_len
        if at > NX_CTL_LOG or n > NX_CTL_LOG - at:
            s.log_dropped = s.log_dropped + 1
            return False
        memcpy(<char *>s.log + at, <char *>b, n)
        nx_fence()
        s.log_len = at + n
        return True

    def set_broken(self, uint32_t i):
        self.slot(i).broken = 1

    def broken(self, uint32_t i):
        return self.slot(i).broken != 0

    def wake(self, uint32_t shard, uint32_t i):
        """Ask the shard to wake slot i's guest (then signal the shard's notify eventfd)."""
        cdef bint posted
        self.slot(i)
        posted = self.push(&self.hdr.wake[shard % NX_SHARDS_MAX], i)
        return posted
