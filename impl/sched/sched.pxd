# Typed interface of the scheduler: many user-VM vCPUs on a few cores.
from libc.stdint cimport uint64_t

from nanvix.impl.kvm.kvm cimport kvm_run


cdef class Scheduler:
    cdef readonly int ncores
    cdef readonly long long slice_ns
    cdef readonly bint commands          # the refinement harness's NX_HC_COMMAND is served
    cdef readonly list current           # per core: the user VM on it, or None
    cdef readonly object queues          # tenant -> deque of runnable user VMs
    cdef readonly object order           # deque of tenants with a runnable user VM
    cdef readonly dict watched           # notify eventfd -> (tenant, arena, shard)
    cdef readonly dict by_slot           # (tenant, channel slot) -> user VM
    cdef readonly set parked             # user VMs blocked in the host
    cdef object lock, cond, left
    cdef object host
    cdef object epoll
    cdef list threads
    cdef bint stopping
    cdef readonly object counts          # how runs ended (a Counter), for reports
    cdef readonly object running         # tenant -> cores it holds (a Counter)
    cdef list thread_ident, thread_tid, borrowed
    cdef readonly list core_cpu          # per core: the CPU its worker is pinned to, or None
    cdef volatile int *preempt_req       # per core: give the core up now (read without the GIL)
    cdef volatile int *in_guest          # per core: its thread is in (or entering) KVM_RUN
    cdef long long *kicked_at            # per core: when it was first asked to give its vCPU up (ns)
    cdef readonly object waits           # recent (tenant, ns a runnable vCPU waited for a core)
    cdef readonly object kick_waits      # recent ns from a kick to its core being given up
    cdef int wake_r, wake_w
    cdef long long waker_until
    cdef dict credit                     # tenant -> its credit of host priority (see _account)

    cdef _enqueue(self, uvm)
    cdef _mind_deadline(self, uvm)
    cdef void _wake_waker(self) noexcept
    cdef _share(self)
    cdef _rebalance(self, tenant)
    cdef _kick(self, int core)
    cdef _record_wait(self, uvm, long long now)
    cdef _set_core(self, int core, uvm)
    cdef _dequeue_next(self)
    cdef int _share_milli(self, long long now)
    cdef list _account(self, tenant, long long now)
    cdef str _run(self, int core, uvm, long long slice_ns)
    cdef void _answer(self, kvm_run *run, uint64_t value) noexcept
    cdef bint _park(self, int core, uvm, uint64_t for_ns) except -1
    cdef str _leave(self, int core, uvm, str how, str detail)
    cdef _kick_late(self, long long now)
    cdef double _next_deadline(self)
