# cython: language_level=3
"""Planted bugs that need the typed interfaces (ring.pxd, sched.pxd): a Ring and a Scheduler with
one mistake each, chosen by the BUG class attribute of a subclass that nanvix.refine.plants makes
per mutant. Never used by a host.

Each bug is written as the mistake it stands for would be written in ring.pyx or sched.pyx: the
honest method runs where it is not affected."""
from libc.stdint cimport uint32_t, int64_t, uint64_t

from nanvix.impl.abi.abi cimport NX_RING_ENTRIES, NX_DATA_SIZE, nx_sqe
from nanvix.impl.channel.ring cimport Ring, Request
from nanvix.impl.kvm.kvm cimport Memory
from nanvix.impl.sched.sched cimport Scheduler

from nanvix.impl.sched.sched import BLOCKED, LEFT_PREEMPT, RUNNABLE

cdef uint32_t MASK = NX_RING_ENTRIES - 1


cdef class MutantRing(Ring):
    """The channel's ring with the mistake named by the subclass's BUG."""
    cdef str bug

    def __cinit__(self, Memory mem, bint adopt=True):
        self.bug = getattr(type(self), "BUG", "")
        if self.bug == "adopt_unchecked" and self.broken:
            # restart: impossible published indices are adopted as they are
            self.broken = False
            self.broken_reason = ""

    cpdef uint32_t pending(self) except? 0xffffffff:
        cdef uint32_t n
        if self.bug == "pending_unbounded":   # the tail is trusted: no bound on what it claims
            n = self.hdr.sq_tail - self.sq_head
            return n
        return Ring.pending(self)

    cpdef uint32_t cq_free(self) except? 0xffffffff:
        cdef uint32_t used = self.cq_tail - self.hdr.cq_head
        if self.bug == "cq_head_unchecked" and used > NX_RING_ENTRIES:
            return 0                          # an impossible cq_head read as a full CQ
        if self.bug == "cq_free_ignores_reserved":
            if used > NX_RING_ENTRIES:
                return Ring.cq_free(self)
            return NX_RING_ENTRIES - used if used < NX_RING_ENTRIES else 0
        return Ring.cq_free(self)

    def take(self):
        cdef uint32_t head = self.sq_head
        cdef Request r
        cdef nx_sqe e
        if self.bug == "drop_when_full" and not self.broken and self.pending() > 0 \
                and self.cq_free() == 0 and not self.broken:
            self.sq_head += 1                 # no room for the answer: the request is dropped
            self.hdr.sq_head = self.sq_head
            return None
        r = Ring.take(self)
        if r is None:
            return r
        if self.bug == "sq_slot_mod63" and head % MASK != head & MASK:
            # the slot computed with a modulo one short of the ring's size
            r.user_data = self.sq[head % MASK].user_data
            r.opcode = self.sq[head % MASK].opcode
        if self.bug == "take_no_name_check" and r.error and r.why.startswith("name_len"):
            # the name's length is not checked against the input's: the request goes through
            e = self.sq[head & MASK]
            if <unsigned long long>e.in_off + e.name_len <= NX_DATA_SIZE:
                r.error, r.why = 0, ""
                r.out_off, r.out_cap = e.out_off, e.out_cap
                r.name = self.data[e.in_off:e.in_off + e.name_len]
                self.rejected -= 1
        return r

    def complete(self, Request r, int64_t result, bytes out=b""):
        cdef uint32_t tail = self.cq_tail
        if self.bug == "complete_success_always" and result < 0:
            result = 0                        # the error lost on the way into the CQ entry
        notify = Ring.complete(self, r, result, out)
        if self.bug == "complete_wrong_slot" and not self.broken and tail & MASK == MASK:
            # the last slot's answer written one slot on (the wrap of cq_tail mishandled)
            self.cq[0] = self.cq[MASK]
            self.cq[MASK].user_data = 0
            self.cq[MASK].result = 0
        return notify

    def recover(self):
        cdef uint32_t k, n = self.sq_head - self.cq_tail
        cdef Request r
        if self.broken:
            return 0
        if self.bug == "adopt_unchecked" and n > NX_RING_ENTRIES:
            return 0                          # (else it would answer 2**32 requests)
        if self.bug == "recover_none":        # what the dead one had taken is never answered
            return 0
        if self.bug == "recover_replays":     # ... taken again, so it runs twice
            self.sq_head = self.cq_tail
            self.hdr.sq_head = self.sq_head
            return 0
        if self.bug == "recover_success":     # ... answered as if it had run
            for k in range(n):
                r = Request.__new__(Request)
                r.user_data = self.sq[(self.cq_tail) & MASK].user_data
                r.name = r.value = b""
                r.why = ""
                self.complete(r, 0)
            return n
        return Ring.recover(self)

    def mark_broken(self, str why):
        if self.bug == "restart_unbreaks":    # the arena's verdict ignored by a new system VM
            return
        Ring.mark_broken(self, why)


cdef class MutantScheduler(Scheduler):
    """The scheduler with the mistake named by the subclass's BUG."""

    cdef _dequeue_next(self):
        bug = getattr(type(self), "BUG", "")
        if bug == "vcpu_queue_lifo":
            # the tenant's newest queued vCPU instead of its oldest: one that waits can wait forever
            uvm = Scheduler._dequeue_next(self)
            q = self.queues[uvm.tenant] if uvm is not None else None
            if q:
                newest = q.pop()
                q.appendleft(uvm)
                return newest
            return uvm
        if bug != "no_tenant_rotation":
            return Scheduler._dequeue_next(self)
        # the first tenant in the order with work, every time: the order never turns
        for tenant in self.order:
            q = self.queues[tenant]
            if q:
                uvm = q.popleft()
                if not q:
                    self.order.remove(tenant)
                return uvm
        return None

    cdef bint _park(self, int core, uvm, uint64_t for_ns) except -1:
        if getattr(type(self), "BUG", "") != "block_keeps_core":
            return Scheduler._park(self, core, uvm, for_ns)
        with self.lock:                       # parked, but the core is never given back
            if uvm.completions_ready():
                return False
            uvm.wake_ns = 0
            uvm.state = BLOCKED
            uvm.core = None
            self.parked.add(uvm)
            self.left.notify_all()
        return True

    def preempt(self, int core):
        if getattr(type(self), "BUG", "") != "preempt_loses_vcpu":
            return Scheduler.preempt(self, core)
        with self.lock:                       # off the core, runnable, but in no queue
            uvm = self.current[core]
            if uvm is None:
                return None
            self._set_core(core, None)
            uvm.core = None
            uvm.state = RUNNABLE
            self.counts[LEFT_PREEMPT] += 1
            return uvm
