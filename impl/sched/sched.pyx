# cython: language_level=3, boundscheck=False, wraparound=False
"""The scheduler: many user-VM vCPUs on a few cores (host worker threads), M:N.

A core takes the next runnable vCPU (round-robin over tenants, FIFO within a tenant) and runs it
for a slice. The vCPU leaves the core when it exits (its invocation is over), crashes (triple
fault, access outside its memory, a forbidden port), blocks (NX_HC_WAIT: it waits for a completion
on its channel, or a sleeping thread's deadline, and holds no core until then), is preempted (its
slice is over: back to the end of its queue), or times out (its invocation's deadline passed: it
is kicked out of KVM_RUN and never runs again). A waker thread watches the eventfds through which
system VMs signal completions and makes blocked vCPUs runnable again; it also ends parked and
queued invocations whose deadline passed, kicks running ones whose deadline passed (their core's
thread may be starved at SCHED_IDLE), and wakes parked ones whose sleeper's time came. A
system VM signals one eventfd per tenant and names the channels on its arena's wake ring, so the
waker's work is O(channels woken), whatever the number of user VMs.

The worker threads start with start(). Without it the scheduler runs nothing by itself: the
refinement harness dispatches and runs cores one step at a time that way, and only it sets
`commands` (its stepper guest's NX_HC_COMMAND; in a production host that hypercall is an unknown
one, and the guest is crashed).
"""
import collections
import os
import select
import threading

from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport uint32_t, uint64_t, int64_t, uintptr_t
from libc.string cimport memset
from posix.unistd cimport read, write

from nanvix.impl.abi.abi cimport NX_PORT_HYPERCALL, NX_HC_EXIT, NX_HC_WAIT, NX_HC_GROW, NX_HC_COMMAND, nx_ring_hdr
from nanvix.impl.kvm.kvm cimport Memory
from nanvix.impl.kvm.kvm cimport Vcpu, kvm_run, KVM_EXIT_IO, KVM_EXIT_SHUTDOWN, KVM_EXIT_MMIO, KVM_EXIT_IO_IN
from nanvix.impl.kvm.kvm import EXIT_NAMES, kick_thread
from nanvix.impl.threads import spawn

cdef extern from "vcpu_run.h" nogil:
    long long nx_now_ns()
    enum: NX_HOST, NX_GUEST_IDLE, NX_GUEST_BOOSTED, NX_KICKED
    int nx_thread_mode(int tid, int mode, int nice)
    int nx_thread_nice(int tid)
    long long nx_thread_cpu_ns()


# A tenant's guests run as host threads (NX_GUEST_BOOSTED, not SCHED_IDLE) on credit: it accrues
# at a quarter of the tenant's share of the cores, up to BOOST_BURST_NS, and the CPU time its guests take
# at host priority spends it (see _accrue). So a tenant whose guests mostly wait (for their system
# VM, for input) runs them at host priority, where no busy neighbour starves them; one whose
# guests keep their cores busy (spin, flood their channel) soon runs them at SCHED_IDLE, below
# every other thread. (Before, any vCPU just woken by a completion ran 2 ms at host priority: a
# guest flooding its channel is woken all the time, so it kept that priority and starved a
# quiet tenant's vCPU at SCHED_IDLE for whole slices: p99 58 ms against 1.3 ms alone.)
BOOST_BURST_NS = 2_000_000
cdef long long BOOST_BURST = BOOST_BURST_NS
cdef long long RECENT_NS = 100_000_000   # a tenant whose guests ran this recently counts as active

cdef uint32_t HC_PORT = NX_PORT_HYPERCALL
cdef uint32_t HC_EXIT = NX_HC_EXIT, HC_WAIT = NX_HC_WAIT, HC_GROW = NX_HC_GROW
cdef uint32_t HC_COMMAND = NX_HC_COMMAND
cdef int EINTR_ = 4

# vCPU states (the spec's vocabulary)
CREATED, RUNNABLE, RUNNING, BLOCKED, EXITED, CRASHED = (
    "created", "runnable", "running", "blocked", "exited", "crashed")
# how a run on a core ended
LEFT_EXIT, LEFT_CRASH, LEFT_BLOCK, LEFT_PREEMPT, LEFT_TIMEOUT = "exit", "crash", "block", "preempt", "timeout"
# a stepped guest asked for a command the host has not scripted yet: it stays on its core and the
# pending NX_HC_COMMAND is answered on the next run (lock-step driving only)
LEFT_YIELD = "yield"


def now_ns():
    return nx_now_ns()


cdef enum:
    RUN_LOOK = 0     # no exit pending: the loop head looks at the time, preemption and eviction
    RUN_EXIT = 1     # an exit (or a KVM_RUN error) for the host to decode


cdef int _run_until(Vcpu vcpu, kvm_run *run, nx_ring_hdr *ring, long long deadline,
                    long long slice_end, volatile int *preempt, int *err, long *exits) noexcept nogil:
    """Run the vCPU, without the GIL, until an exit that needs the host's Python (or the slice,
    the deadline or a preemption request comes). The two exits a guest makes in a loop are
    answered here as the host would answer them: NX_HC_WAIT when a completion is already in the
    ring (nothing to park for), and NX_HC_GROW of zero pages (refused). So a guest that exits in
    a storm holds no lock and no GIL the other cores' invocations need."""
    cdef long long now
    cdef uint32_t nr
    while True:
        now = nx_now_ns()
        if now >= deadline or now >= slice_end or preempt[0]:
            return RUN_LOOK
        err[0] = vcpu.run_nogil((slice_end if slice_end < deadline else deadline) - now)
        exits[0] += 1
        if err[0] != 0:
            return RUN_EXIT
        if not (run.exit_reason == KVM_EXIT_IO and run.io.port == HC_PORT and run.io.direction == KVM_EXIT_IO_IN
                and run.io.size == 4 and run.io.count == 1):
            return RUN_EXIT
        nr = <uint32_t>run.s.regs.regs.rax
        if nr == HC_GROW and run.s.regs.regs.rdi == 0:
            (<uint32_t *>((<char *>run) + run.io.data_offset))[0] = 0
        elif nr == HC_WAIT and ring != NULL and ring.cq_tail != ring.cq_head:
            (<uint32_t *>((<char *>run) + run.io.data_offset))[0] = 0
        else:
            return RUN_EXIT


LATENCIES = 8192   # scheduler latencies kept (see Scheduler.latencies)
cdef long long WAIT_MAX_NS = 1_000_000_000_000   # (a parked guest's wake time, far enough: its deadline comes first)


cdef inline void _host_mode() noexcept:
    """This thread is a host thread (SCHED_OTHER, its nice): after a kick that may have found it
    just out of KVM_RUN and made it real-time (see Scheduler._kick)."""
    nx_thread_mode(0, NX_HOST, nx_thread_nice(0))


cdef inline long long _accrue(list acct, long long now, int share_milli):
    """A credit account (see Scheduler._account) accrued to now at share_milli thousandths of a
    core, at most BOOST_BURST; its credit (ns; below zero: what it overspent, paid back first).
    Two cores running one tenant's vCPUs may both spend one credit: the debt is paid back."""
    cdef long long credit = acct[0], last = acct[1]
    if now > last:
        credit += (now - last) * share_milli // 1000
        if credit > BOOST_BURST:
            credit = BOOST_BURST
        acct[0], acct[1] = credit, now
    return credit


cdef inline long long _soonest(uvm):
    """When a parked user VM needs the waker: its deadline, or its wake time if sooner."""
    cdef long long wake = uvm.wake_ns
    return wake if wake and wake < uvm.deadline_ns else uvm.deadline_ns


cdef class Scheduler:

    def __init__(self, host, int ncores=0, long long slice_ns=10_000_000, bint commands=False):
        self.host = host
        self.ncores = ncores or os.cpu_count() or 1
        self.slice_ns = slice_ns
        self.commands = commands
        self.current = [None] * self.ncores
        self.queues = collections.defaultdict(collections.deque)
        self.order = collections.deque()
        self.watched = {}    # notify eventfd -> (tenant, arena, shard)
        self.by_slot = {}    # (tenant, channel slot) -> user VM
        self.parked = set()  # user VMs BLOCKED in the host
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)   # workers wait here for queued work
        self.left = threading.Condition(self.lock)   # remove() waits here for a vCPU to leave its core
        self.epoll = select.epoll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.waker_until = 0     # when the waker looks at the deadlines next (ns)
        self.epoll.register(self.wake_r, select.EPOLLIN)
        self.threads = []
        self.core_cpu = [None] * self.ncores
        self.stopping = False
        self.counts = collections.Counter()
        self.running = collections.Counter()   # tenant -> cores it holds
        self.thread_ident = [0] * self.ncores  # the thread running each core (for kicks)
        self.thread_tid = [0] * self.ncores    # its kernel thread id (to lift it out of SCHED_IDLE)
        self.borrowed = [False] * self.ncores  # the core runs an invoker's vCPU in its thread
        self.preempt_req = <int *>PyMem_Malloc(self.ncores * sizeof(int))  # read without the GIL
        if self.preempt_req == NULL:
            raise MemoryError()
        memset(<void *>self.preempt_req, 0, self.ncores * sizeof(int))
        self.in_guest = <int *>PyMem_Malloc(self.ncores * sizeof(int))
        if self.in_guest == NULL:
            raise MemoryError()
        memset(<void *>self.in_guest, 0, self.ncores * sizeof(int))
        self.kicked_at = <long long *>PyMem_Malloc(self.ncores * sizeof(long long))
        if self.kicked_at == NULL:
            raise MemoryError()
        memset(<void *>self.kicked_at, 0, self.ncores * sizeof(long long))
        # What fairness costs, for the bench (bounded: the latest LATENCIES of each)
        self.waits = collections.deque(maxlen=LATENCIES)
        self.kick_waits = collections.deque(maxlen=LATENCIES)
        self.credit = {}   # tenant -> its credit of host priority for its guests (see _accrue)

    def __dealloc__(self):
        PyMem_Free(<void *>self.preempt_req)
        PyMem_Free(<void *>self.kicked_at)
        PyMem_Free(<void *>self.in_guest)

    def start(self):
        """Start one worker thread per core and the waker. With at least as many CPUs as cores,
        each core's worker is pinned to a CPU of its own, as a VMM pins its vCPUs. Left to the
        kernel, both workers can share one CPU while the other idles: its balancer weighs a
        SCHED_IDLE guest as almost no load, so a worker queued behind its neighbour waits for the
        next tick's balancing (traced: a kicked worker runnable 2.8 ms on CPU 1 beside the other,
        CPU 0 idle). Pinned here, by the starting thread, so it holds once start() returns."""
        cpus = sorted(os.sched_getaffinity(0))
        self.core_cpu = cpus[:self.ncores] if self.ncores <= len(cpus) else [None] * self.ncores
        for k in range(self.ncores):
            t = spawn("nanvix-core-%d" % k, self._worker, k)
            if self.core_cpu[k] is not None:
                os.sched_setaffinity(t.native_id, {self.core_cpu[k]})
            self.threads.append(t)
        self.threads.append(spawn("nanvix-waker", self._waker))

    # -- admission and queues --------------------------------------------------------------------
    def watch(self, tenant, int notify_fd, arena, int shard):
        """Watch a tenant's notify eventfd: its system VM signals it after naming, on the arena's
        wake ring for this shard, the channels whose guest asked to be woken."""
        with self.lock:
            self.watched[notify_fd] = (tenant, arena, shard)
            self.epoll.register(notify_fd, select.EPOLLIN)

    def attach(self, uvm, tenant, slot):
        """The user VM whose channel is slot `slot` of tenant's arena."""
        with self.lock:
            self.by_slot[(tenant, slot)] = uvm

    def detach(self, uvm):
        with self.lock:
            ch = uvm.channel
            if ch is not None and self.by_slot.get((ch.sysvm, ch.slot)) is uvm:
                del self.by_slot[(ch.sysvm, ch.slot)]
            self.parked.discard(uvm)

    def submit(self, uvm):
        """A created user VM becomes runnable."""
        with self.lock:
            if uvm.state != CREATED:
                raise ValueError("user VM %s is %s, not created" % (uvm.id, uvm.state))
            self._enqueue(uvm)

    cdef _enqueue(self, uvm):
        uvm.state = RUNNABLE
        uvm.t_queued = nx_now_ns()
        q = self.queues[uvm.tenant]
        if not q:
            self.order.append(uvm.tenant)
        q.append(uvm)
        # wake one worker free to take it: a worker whose core an invoker borrowed waits too, and
        # would only go back to sleep (run_here's end wakes them all if work is still queued)
        self.cond.notify(1 + sum(self.borrowed))
        self._mind_deadline(uvm)
        self._rebalance(uvm.tenant)

    cdef _share(self):
        """Cores per tenant that has work (running or queued), at least 1."""
        cdef int active = len({t for t, n in self.running.items() if n} | {t for t, q in self.queues.items() if q})
        return max(1, self.ncores // max(1, active))

    cdef _rebalance(self, tenant):
        """A tenant with queued work and fewer cores than its share, while no core is idle: ask
        a core of the tenant holding the most cores beyond its share to give one up now, rather
        than at the end of its slice. So a tenant gets its share of the cores within one VM exit,
        however the other tenants' guests behave."""
        cdef int k, victim = -1, most, share
        if self.stopping or not self.threads or None in self.current:
            return
        share = self._share()
        if self.running[tenant] >= share:
            return
        most = share
        for k in range(self.ncores):
            u = self.current[k]
            if u is not None and not self.preempt_req[k] and u.tenant != tenant and self.running[u.tenant] > most:
                victim, most = k, self.running[u.tenant]
        if victim >= 0:
            self.preempt_req[victim] = 1
            self._kick(victim)

    cdef _kick(self, int core):
        """Make the core's vCPU leave KVM_RUN now: immediate_exit for a core about to enter,
        a signal for one inside."""
        cdef Vcpu vcpu
        u = self.current[core]
        if u is not None and not self.kicked_at[core]:
            self.kicked_at[core] = nx_now_ns()
        if u is not None:
            vcpu = u.vcpu
            if vcpu.run != NULL:
                vcpu.run.immediate_exit = 1
        if self.thread_ident[core]:
            # The guest runs at SCHED_IDLE: on a core a system VM keeps busy it could wait long to
            # run again and see the kick. Real-time for the moment it takes to leave KVM_RUN, it
            # runs at once (see NX_KICKED); it makes itself a host thread again as it leaves.
            # The signal goes first: made real-time before it, a thread waiting for this very
            # CPU would run its guest at real-time priority, ahead of this thread and its signal.
            # One not in KVM_RUN is only made a host thread (it sets its own mode on entering).
            kick_thread(self.thread_ident[core])
            tid = self.thread_tid[core]
            if tid:
                nx_thread_mode(tid, NX_KICKED if self.in_guest[core] else NX_HOST, nx_thread_nice(tid))

    cdef _dequeue_next(self):
        """Round robin over tenants, preferring the first one below its share of the cores."""
        cdef int share = self._share()
        pick = None
        for tenant in self.order:
            if self.queues[tenant] and self.running[tenant] < share:
                pick = tenant
                break
        while pick is None and self.order:
            tenant = self.order.popleft()
            if self.queues[tenant]:
                pick = tenant
                self.order.appendleft(tenant)
        if pick is None:
            return None
        self.order.remove(pick)
        q = self.queues[pick]
        uvm = q.popleft()
        if q:
            self.order.append(pick)
        return uvm

    def remove(self, uvm, why="destroyed by the host", double timeout=10.0):
        """Take a user VM out of every queue and off its core (it is being destroyed). A vCPU
        inside KVM_RUN on a worker is kicked out and this waits until the worker has left it:
        its VM may be closed only then. One that has ended (exited, or crashed by the scheduler)
        is in no queue and on no core any more: that takes no lock, so an invoker releasing its
        user VM never waits for a lock another thread holds (the waker, a worker the kernel
        preempted)."""
        cdef int k
        if uvm.state in (EXITED, CRASHED) and uvm.core is None:
            return   # (the scheduler let go of it, under the lock, before it set that state)
        with self.lock:
            self.parked.discard(uvm)
            q = self.queues.get(uvm.tenant)
            if q and uvm in q:
                q.remove(uvm)
                if not q and uvm.tenant in self.order:
                    self.order.remove(uvm.tenant)
            if self.threads and uvm.state == RUNNING:
                uvm.evict = why
                for k in range(self.ncores):
                    if self.current[k] is uvm:
                        self._kick(k)
                if not self.left.wait_for(lambda: uvm.state != RUNNING, timeout):
                    raise RuntimeError("user VM %s did not leave its core" % uvm.id)
            for k in range(self.ncores):
                if self.current[k] is uvm:
                    self._set_core(k, None)

    def queue_state(self):
        """Per tenant, the runnable user VMs in queue order, and per core the one it runs."""
        with self.lock:
            return {"queues": {t: [u.id for u in q] for t, q in self.queues.items() if q},
                    "order": list(self.order),
                    "cores": [u.id if u is not None else None for u in self.current]}

    # -- a core's step: dispatch, then run until the vCPU leaves ----------------------------------
    def dispatch(self, int core):
        """Put the next runnable user VM on the core. Returns it, or None."""
        with self.lock:
            if self.current[core] is not None:
                raise ValueError("core %d is busy" % core)
            uvm = self._dequeue_next()
            if uvm is not None:
                self._record_wait(uvm, nx_now_ns())
                uvm.state = RUNNING
                uvm.core = core
                self._set_core(core, uvm)
                self._mind_deadline(uvm)
            return uvm

    cdef _record_wait(self, uvm, long long now):
        """(Lock held.) A runnable vCPU gets a core: how long it waited for one."""
        cdef long long since = getattr(uvm, "t_queued", 0)
        if since:
            self.waits.append((uvm.tenant, now - since))
            uvm.t_queued = 0

    def latencies(self):
        """What the cores' sharing cost lately: per tenant, the ns its runnable vCPUs waited for a
        core; the ns from asking a core to give its vCPU up (a kick) to its doing so; and per
        tenant, the CPU ns its guests have run at host priority (on credit) and at SCHED_IDLE."""
        with self.lock:
            waits, kicks = list(self.waits), list(self.kick_waits)
        per = collections.defaultdict(list)
        for tenant, ns in waits:
            per[tenant].append(ns)
        return {"runnable_wait_ns": dict(per), "kick_ns": kicks,
                "guest_cpu_ns": {t: {"boosted": a[2], "idle": a[3]} for t, a in self.credit.items()}}

    cdef _set_core(self, int core, uvm):
        """Put uvm (or nobody) on the core, telling the system VMs which vCPUs run: only those
        can submit, so only their channels are polled (see the arena's set_running)."""
        old = self.current[core]
        if self.kicked_at[core]:
            self.kick_waits.append(nx_now_ns() - self.kicked_at[core])
            self.kicked_at[core] = 0
        if old is not None:
            self.running[old.tenant] -= 1
            ch = old.channel
            if ch is not None and ch.state == "open":
                ch.arena.set_running(ch.slot, False, ch.shard)
        if uvm is not None:
            self.running[uvm.tenant] += 1
            ch = uvm.channel
            if ch is not None and ch.state == "open":
                ch.arena.set_running(ch.slot, True, ch.shard)
        self.current[core] = uvm
        self.preempt_req[core] = 0

    def preempt(self, int core):
        """Take the user VM off the core and put it back at the end of its queue."""
        with self.lock:
            uvm = self.current[core]
            if uvm is None:
                return None
            self._set_core(core, None)
            uvm.core = None
            self._enqueue(uvm)
            self.left.notify_all()
            self.counts[LEFT_PREEMPT] += 1
            return uvm

    def run_core(self, int core, long long slice_ns=0):
        """Run the core's user VM until it leaves the core. Returns how it left."""
        uvm = self.current[core]
        if uvm is None:
            return None
        how = self._run(core, uvm, slice_ns or self.slice_ns)
        _host_mode()
        self.counts[how] += 1
        return how

    cdef str _run(self, int core, uvm, long long slice_ns):
        cdef Vcpu vcpu = uvm.vcpu
        cdef kvm_run *run = vcpu.run
        cdef long long now = nx_now_ns()
        cdef long long deadline = uvm.deadline_ns
        cdef long long slice_end = now + slice_ns
        cdef long long credit, seg_end, cpu
        cdef list acct = self._account(uvm.tenant, now)
        cdef int share_milli = self._share_milli(now)
        cdef bint idle
        cdef int err = 0, how
        cdef int nice = nx_thread_nice(0)
        cdef long exits
        cdef uint32_t nr, reason
        cdef uint64_t arg0
        cdef nx_ring_hdr *ring = NULL
        cdef Memory page
        ch = uvm.channel
        if ch is not None and ch.state == "open":
            page = ch.page.mem
            ring = <nx_ring_hdr *><uintptr_t>page.addr
        if self.commands and uvm.awaiting_command:
            value = self.host.command(uvm)
            if value is None:
                return LEFT_YIELD
            uvm.awaiting_command = False
            self._answer(run, value)
        while True:
            now = nx_now_ns()
            if uvm.evict:
                return self._leave(core, uvm, LEFT_CRASH, uvm.evict)
            if now >= deadline:
                return self._leave(core, uvm, LEFT_TIMEOUT, "ran past its %d ms budget" % uvm.timeout_ms)
            if now >= slice_end or self.preempt_req[core]:
                self.preempt(core)
                return LEFT_PREEMPT
            if not uvm.t_run:
                uvm.t_run = now  # the invocation's first KVM_RUN: its start ends here
            exits = 0
            credit = _accrue(acct, now, share_milli)
            idle = credit <= 0
            seg_end = slice_end if idle or slice_end < now + credit else now + credit
            with nogil:
                # Guest code runs at SCHED_IDLE: any host thread or system VM that wakes beside it
                # (jail.place_host) takes this core at once. The cores are shared between tenants
                # by this scheduler, not by the kernel's; the system VMs' CPU by their cgroups.
                # On its tenant's credit it runs as a host thread with a long slice: starved by no
                # one, it still gives way at once to a thread that wakes (see vcpu_run.h).
                self.in_guest[core] = 1
                cpu = nx_thread_cpu_ns()
                nx_thread_mode(0, NX_GUEST_IDLE if idle else NX_GUEST_BOOSTED, nice)
                how = _run_until(vcpu, run, ring, deadline, seg_end, &self.preempt_req[core], &err, &exits)
                nx_thread_mode(0, NX_HOST, nice)
                cpu = nx_thread_cpu_ns() - cpu
                self.in_guest[core] = 0
            if idle:
                acct[3] += cpu
            else:
                acct[0] -= cpu   # (CPU time, not wall time: a boosted thread kept off its CPU spends nothing)
                acct[2] += cpu
            uvm.exits += exits
            if how == RUN_LOOK:
                continue
            if err == EINTR_:
                # kicked: the loop head decides between timeout and preemption. (A Ctrl-C that
                # interrupted an invoking main thread is raised here: see run_here.)
                if PyErr_CheckSignals() < 0:
                    raise KeyboardInterrupt
                continue
            if err:
                return self._leave(core, uvm, LEFT_CRASH, "KVM_RUN failed: %s" % os.strerror(err))
            reason = run.exit_reason
            if reason == KVM_EXIT_IO and run.io.port == HC_PORT and run.io.direction == KVM_EXIT_IO_IN \
                    and run.io.size == 4 and run.io.count == 1:
                nr = <uint32_t>run.s.regs.regs.rax
                arg0 = run.s.regs.regs.rdi
                if nr == HC_EXIT:
                    uvm.exit_status = <int>(<int64_t>arg0)
                    return self._leave(core, uvm, LEFT_EXIT, "")
                elif nr == HC_WAIT:
                    if self._park(core, uvm, arg0):
                        return LEFT_BLOCK
                    self._answer(run, 0)
                elif nr == HC_GROW:
                    self._answer(run, self.host.grow(uvm, arg0))
                elif nr == HC_COMMAND and self.commands:
                    value = self.host.command(uvm)
                    if value is None:
                        uvm.awaiting_command = True
                        return LEFT_YIELD
                    self._answer(run, value)
                else:
                    return self._leave(core, uvm, LEFT_CRASH, "unknown hypercall %d" % nr)
            elif reason == KVM_EXIT_SHUTDOWN:
                return self._leave(core, uvm, LEFT_CRASH, "triple fault (an exception with no handler)")
            elif reason == KVM_EXIT_MMIO:
                return self._leave(core, uvm, LEFT_CRASH, "access to unmapped guest memory at %#x" % run.mmio.phys_addr)
            elif reason == KVM_EXIT_IO:
                return self._leave(core, uvm, LEFT_CRASH, "forbidden port access %#x" % run.io.port)
            else:
                return self._leave(core, uvm, LEFT_CRASH, "exit %s" % EXIT_NAMES.get(reason, reason))

    cdef int _share_milli(self, long long now):
        """The rate a tenant's credit of host priority accrues at, in thousandths of a core: a
        quarter of its share of the cores among the tenants whose guests ran in the last
        RECENT_NS (not only those with work this instant: a quiet tenant's invocations come and
        go, and its share must not go to its neighbour each time it has none queued)."""
        cdef int active = 0
        for acct in self.credit.values():
            if now - <long long>acct[1] < RECENT_NS:
                active += 1
        return max(1, 250 * self.ncores // max(1, active))

    cdef list _account(self, tenant, long long now):
        """The tenant's credit account: [credit ns, when it last accrued, CPU ns its guests ran
        boosted, CPU ns they ran at SCHED_IDLE]. (One small list per tenant that ever ran, like
        the queues.)"""
        acct = self.credit.get(tenant)
        if acct is None:
            acct = self.credit[tenant] = [BOOST_BURST, now, 0, 0]
        return acct

    def active_tenants(self):
        """The tenants whose guests ran on these cores in the last RECENT_NS."""
        cdef long long now = nx_now_ns()
        return [t for t, acct in self.credit.items() if now - <long long>acct[1] < RECENT_NS]

    def credit_ns(self, tenant):
        """The tenant's credit of host priority for its guests now (ns; at most BOOST_BURST_NS;
        at or below zero: its guests run at SCHED_IDLE)."""
        cdef long long now = nx_now_ns()
        acct = self.credit.get(tenant)
        if acct is None:
            return BOOST_BURST
        return _accrue(acct, now, self._share_milli(now))

    cdef void _answer(self, kvm_run *run, uint64_t value) noexcept:
        (<uint32_t *>((<char *>run) + run.io.data_offset))[0] = <uint32_t>value

    cdef bint _park(self, int core, uvm, uint64_t for_ns) except -1:
        """The guest has nothing to run until a completion, or for at most for_ns (a sleeping
        thread's deadline; 0: none). Park it unless a completion is already there: the ring,
        not a signal, decides (a completion is published before its signal, so a signal
        consumed while the guest still ran cannot be lost). The waker makes it runnable again
        at its wake time, a timer instead of a vCPU spinning on its clock."""
        cdef long long wake = 0
        if for_ns:
            wake = nx_now_ns() + <long long>(for_ns if for_ns < WAIT_MAX_NS else WAIT_MAX_NS)
        with self.lock:
            if uvm.completions_ready():
                return False
            uvm.wake_ns = wake
            uvm.state = BLOCKED
            uvm.core = None
            self.parked.add(uvm)
            self._set_core(core, None)
            self.left.notify_all()
            self._mind_deadline(uvm)
        return True

    cdef _mind_deadline(self, uvm):
        """(Lock held.) A user VM now waits off any core (parked or queued) or was put on one: if
        its deadline (or its wake time, parked) comes before the waker means to look again, wake
        the waker, so the deadline is kept to within a few ms even for a guest that never gets a
        core back, or whose core's thread the kernel does not run (see _kick_late)."""
        cdef long long when = _soonest(uvm) if uvm.state == BLOCKED else uvm.deadline_ns
        if self.threads and when < self.waker_until:
            self.waker_until = when
            self._wake_waker()

    cdef void _wake_waker(self) noexcept:
        """Wake the waker. A plain write(2) that keeps the GIL (os.write would hand it over, and
        this runs under the scheduler's lock: its holder would then wait for the interpreter
        while every other thread waited for it). The pipe is non-blocking: a full one wakes the
        waker anyway."""
        cdef char c = 120
        write(self.wake_w, &c, 1)

    cdef str _leave(self, int core, uvm, str how, str detail):
        with self.lock:
            if self.current[core] is uvm:
                self._set_core(core, None)
            uvm.core = None
        _host_mode()   # (no kick comes for this core now: none may leave this thread real-time)
        try:
            self.host.finished(uvm, how, detail)
        finally:
            with self.lock:
                self.left.notify_all()  # remove() may be waiting for this vCPU to leave
        return how

    # -- wake-ups ----------------------------------------------------------------------------------
    def poll_wakeups(self, timeout=0.0):
        """Wake blocked user VMs whose channel signalled; end those whose deadline passed.
        Returns the user VMs made runnable."""
        cdef char buf[512]
        woken = []
        events = self.epoll.poll(timeout)
        expired = []
        with self.lock:
            for fd, _ in events:
                # (read(2) keeps the GIL under this lock: see _wake_waker; both fds are non-blocking)
                if fd == self.wake_r:
                    while read(self.wake_r, buf, sizeof(buf)) == sizeof(buf):
                        pass
                    continue
                w = self.watched.get(fd)
                if w is None:
                    continue
                read(<int>fd, buf, 8)   # (an eventfd: its counter, reset; an error: a stale event)
                tenant, arena, shard = w
                slots = arena.wakes(shard)
                if slots and slots[0] == -1:  # the wake ring overflowed: look at every parked one
                    cands = [u for u in self.parked if u.channel is not None and u.channel.sysvm == tenant]
                else:
                    cands = [self.by_slot.get((tenant, s)) for s in slots]
                for uvm in cands:
                    # Only a completion the guest can read wakes it: a stray or forged slot (a
                    # restarted system VM wakes every channel it recovered) wakes nothing.
                    if uvm is not None and uvm.state == BLOCKED and uvm.completions_ready():
                        self.parked.discard(uvm)
                        self._enqueue(uvm)
                        woken.append(uvm)
            now = nx_now_ns()
            if now < self.waker_until:
                return woken   # no deadline or wake time has come: no need to look at every user VM
            self.waker_until = 0   # (looked at now: _next_deadline finds the next one)
            self._kick_late(now)
            for uvm in [u for u in self.parked if now >= u.deadline_ns]:
                self.parked.discard(uvm)
                uvm.state = CRASHED  # killed by the host: no wake-up may queue it again
                expired.append(uvm)
            for uvm in [u for u in self.parked if u.wake_ns and now >= u.wake_ns]:   # a sleeper's time
                self.parked.discard(uvm)
                self._enqueue(uvm)
                woken.append(uvm)
            for tenant, q in list(self.queues.items()):  # queued past the deadline (cores busy)
                for uvm in [u for u in q if now >= u.deadline_ns]:
                    q.remove(uvm)
                    uvm.state = CRASHED
                    expired.append(uvm)
                if not q and tenant in self.order:
                    self.order.remove(tenant)
        for uvm in expired:
            self.host.finished(uvm, LEFT_TIMEOUT, "waited past its %d ms budget" % uvm.timeout_ms)
        return woken

    def wake(self, uvm):
        """Make a blocked user VM runnable (a completion arrived)."""
        with self.lock:
            if uvm.state != BLOCKED:
                return False
            self.parked.discard(uvm)
            self._enqueue(uvm)
            return True

    cdef _kick_late(self, long long now):
        """(Lock held.) Kick every core whose vCPU's deadline has passed. Its own timer has fired
        by then, but the signal runs only when the thread does, and at SCHED_IDLE on a CPU that
        any other thread keeps busy (a system VM, another process) it may not run for a long
        time (measured: 160 ms here); the kick first makes it a host thread again."""
        cdef int k
        for k in range(self.ncores):
            u = self.current[k]
            if u is not None and not self.preempt_req[k] and now >= u.deadline_ns:
                self.preempt_req[k] = 1   # (its loop head takes the timeout first; none kicked twice)
                self._kick(k)

    cdef double _next_deadline(self):
        """How long the waker may sleep. The soonest deadline or wake time is found by looking at
        every user VM only after poll_wakeups acted on those that came (waker_until 0); until
        then it is waker_until, which _mind_deadline lowers for every user VM that starts to wait
        or run. So the waker holds the lock O(user VMs) only once per deadline, not per wake-up."""
        cdef long long now = nx_now_ns(), soonest = now + 1_000_000_000
        cdef int k
        with self.lock:
            if self.waker_until:
                return max(0.0, (self.waker_until - now) / 1e9)
            for k in range(self.ncores):   # running vCPUs too (see _kick_late)
                u = self.current[k]
                if u is not None and not self.preempt_req[k] and u.deadline_ns < soonest:
                    soonest = u.deadline_ns
            for uvm in self.parked:
                if _soonest(uvm) < soonest:
                    soonest = _soonest(uvm)
            for q in self.queues.values():
                for uvm in q:
                    if uvm.deadline_ns < soonest:
                        soonest = uvm.deadline_ns
            self.waker_until = soonest
        return max(0.0, (soonest - now) / 1e9)

    def _waker(self):
        while not self.stopping:
            try:
                self.poll_wakeups(self._next_deadline())
            except Exception:  # one bad wake-up must not stop every later one
                pass

    def run_here(self, uvm, long long budget_ns=0):
        """Start a created user VM on an idle core in the calling thread, if there is one: the
        invoker runs its own vCPU, with no hand-off to a worker and back (about 70 us less per
        invocation here). It runs until it leaves the core: exit, crash or timeout ends it; if it
        blocks or is preempted it goes on the scheduler's queues and a worker takes it from
        there. budget_ns (default a slice) bounds its stay here. Returns False (nothing done)
        when no core is idle."""
        cdef int k, core = -1
        with self.lock:
            if uvm.state != CREATED:
                raise ValueError("user VM %s is %s, not created" % (uvm.id, uvm.state))
            if not self.threads or self.order:  # queued work first: no overtaking
                return False
            for k in range(self.ncores):
                if self.current[k] is None and not self.borrowed[k]:
                    core = k
                    break
            if core < 0:
                return False
            self.borrowed[core] = True
            self._record_wait(uvm, nx_now_ns())
            uvm.state = RUNNING
            uvm.core = core
            self._set_core(core, uvm)
            self._mind_deadline(uvm)
            worker = self.thread_ident[core], self.thread_tid[core]
            self.thread_ident[core] = threading.get_ident()  # kicks come to this thread now
            self.thread_tid[core] = threading.get_native_id()
        try:
            how = self._run(core, uvm, budget_ns if 0 < budget_ns < self.slice_ns else self.slice_ns)
            self.counts[how] += 1
        except BaseException as e:  # a host error ends this invocation; a Ctrl-C goes on up
            self._fail(core, uvm, e)
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            with self.lock:
                self.thread_ident[core], self.thread_tid[core] = worker
                self.borrowed[core] = False
                if self.order:   # queued work waits for this core; else an idle worker need not wake
                    self.cond.notify_all()
            _host_mode()   # (kicks go to the worker now: this thread is the invoker's again)
        return True

    def _worker(self, int core):
        self.thread_ident[core] = threading.get_ident()
        self.thread_tid[core] = threading.get_native_id()
        while True:
            with self.lock:
                while not self.stopping and (not self.order or self.borrowed[core]):
                    self.cond.wait()
                if self.stopping:
                    return
                uvm = self.dispatch(core)
            if uvm is not None:
                try:
                    self.run_core(core)
                except BaseException as e:  # a host error on this vCPU ends it, not the core
                    self._fail(core, uvm, e)

    def _fail(self, int core, uvm, e):
        with self.lock:
            if self.current[core] is uvm:
                self._set_core(core, None)
            uvm.core = None
        if uvm.state == RUNNING:
            why = "interrupted (SIGINT)" if isinstance(e, KeyboardInterrupt) else "host error: %s" % type(e).__name__
            try:
                self.host.finished(uvm, LEFT_CRASH, why)
            except BaseException:
                uvm.state = CRASHED
        with self.lock:
            self.left.notify_all()
            self.cond.notify_all()

    def stop(self):
        with self.lock:
            self.stopping = True
            self.cond.notify_all()
            self.left.notify_all()
        self._wake_waker()
        for t in self.threads:
            t.join(5)
        self.epoll.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
