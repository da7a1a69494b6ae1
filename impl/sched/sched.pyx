# cython: language_level=3, boundscheck=False, wraparound=False
"""The scheduler: many user-VM vCPUs on a few cores (host worker threads), M:N.

A core takes the next runnable vCPU (round-robin over tenants, FIFO within a tenant) and runs it
for a slice. The vCPU leaves the core when it exits (its invocation is over), crashes (triple
fault, access outside its memory, a forbidden port), blocks (NX_HC_WAIT: it waits for a completion
on its channel and holds no core until one arrives), is preempted (its slice is over: back to the
end of its queue), or times out (its invocation's deadline passed: it is kicked out of KVM_RUN and
never runs again). A waker thread watches the eventfds through which system VMs signal completions
and makes blocked vCPUs runnable again; it also ends blocked invocations whose deadline passed.

The worker threads start with start(). Without it the scheduler runs nothing by itself: the
refinement harness dispatches and runs cores one step at a time that way, and only it sets
`commands` (its stepper guest's NX_HC_COMMAND; in a production host that hypercall is an unknown
one, and the guest is crashed).
"""
import collections
import os
import select
import threading

from libc.stdint cimport uint32_t, uint64_t, int64_t

from nanvix.impl.abi.abi cimport NX_PORT_HYPERCALL, NX_HC_EXIT, NX_HC_WAIT, NX_HC_GROW, NX_HC_COMMAND
from nanvix.impl.kvm.kvm cimport Vcpu, kvm_run, KVM_EXIT_IO, KVM_EXIT_SHUTDOWN, KVM_EXIT_MMIO, KVM_EXIT_IO_IN
from nanvix.impl.kvm.kvm import EXIT_NAMES

cdef extern from "vcpu_run.h" nogil:
    long long nx_now_ns()

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


cdef class Scheduler:

    def __init__(self, host, int ncores=0, long long slice_ns=10_000_000, bint commands=False):
        self.host = host
        self.ncores = ncores or os.cpu_count() or 1
        self.slice_ns = slice_ns
        self.commands = commands
        self.current = [None] * self.ncores
        self.queues = collections.defaultdict(collections.deque)
        self.order = collections.deque()
        self.blocked = {}
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.epoll = select.epoll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.epoll.register(self.wake_r, select.EPOLLIN)
        self.threads = []
        self.stopping = False
        self.counts = collections.Counter()

    def start(self):
        """Start one worker thread per core and the waker."""
        for k in range(self.ncores):
            t = threading.Thread(target=self._worker, args=(k,), name="nanvix-core-%d" % k, daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self._waker, name="nanvix-waker", daemon=True)
        t.start()
        self.threads.append(t)

    # -- admission and queues --------------------------------------------------------------------
    def attach(self, uvm):
        """Watch the user VM's notify eventfd (completions posted while it is blocked)."""
        with self.lock:
            self.blocked[uvm.notify_fd] = uvm
            self.epoll.register(uvm.notify_fd, select.EPOLLIN)

    def detach(self, uvm):
        with self.lock:
            if self.blocked.pop(uvm.notify_fd, None) is not None:
                self.epoll.unregister(uvm.notify_fd)

    def submit(self, uvm):
        """A created user VM becomes runnable."""
        with self.lock:
            if uvm.state != CREATED:
                raise ValueError("user VM %s is %s, not created" % (uvm.id, uvm.state))
            self._enqueue(uvm)

    cdef _enqueue(self, uvm):
        uvm.state = RUNNABLE
        q = self.queues[uvm.tenant]
        if not q:
            self.order.append(uvm.tenant)
        q.append(uvm)
        self.cond.notify()

    cdef _dequeue_next(self):
        while self.order:
            tenant = self.order.popleft()
            q = self.queues[tenant]
            if not q:
                continue
            uvm = q.popleft()
            if q:
                self.order.append(tenant)
            return uvm
        return None

    def remove(self, uvm):
        """Take a user VM out of every queue (it is being destroyed)."""
        with self.lock:
            q = self.queues.get(uvm.tenant)
            if q and uvm in q:
                q.remove(uvm)
            for k in range(self.ncores):
                if self.current[k] is uvm:
                    self.current[k] = None

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
                uvm.state = RUNNING
                uvm.core = core
                self.current[core] = uvm
            return uvm

    def preempt(self, int core):
        """Take the user VM off the core and put it back at the end of its queue."""
        with self.lock:
            uvm = self.current[core]
            if uvm is None:
                return None
            self.current[core] = None
            uvm.core = None
            self._enqueue(uvm)
            self.counts[LEFT_PREEMPT] += 1
            return uvm

    def run_core(self, int core, long long slice_ns=0):
        """Run the core's user VM until it leaves the core. Returns how it left."""
        uvm = self.current[core]
        if uvm is None:
            return None
        how = self._run(core, uvm, slice_ns or self.slice_ns)
        self.counts[how] += 1
        return how

    cdef str _run(self, int core, uvm, long long slice_ns):
        cdef Vcpu vcpu = uvm.vcpu
        cdef kvm_run *run = vcpu.run
        cdef long long now = nx_now_ns()
        cdef long long deadline = uvm.deadline_ns
        cdef long long slice_end = now + slice_ns
        cdef long long budget
        cdef int err
        cdef uint32_t nr, reason
        cdef uint64_t arg0
        if self.commands and uvm.awaiting_command:
            value = self.host.command(uvm)
            if value is None:
                return LEFT_YIELD
            uvm.awaiting_command = False
            self._answer(run, value)
        while True:
            now = nx_now_ns()
            if now >= deadline:
                return self._leave(core, uvm, LEFT_TIMEOUT, "ran past its %d ms budget" % uvm.timeout_ms)
            if now >= slice_end:
                self.preempt(core)
                return LEFT_PREEMPT
            budget = min(slice_end, deadline) - now
            with nogil:
                err = vcpu.run_nogil(budget)
            uvm.exits += 1
            if err == EINTR_:
                continue  # kicked: the loop head decides between timeout and preemption
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
                    if self._park(core, uvm):
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

    cdef void _answer(self, kvm_run *run, uint64_t value) noexcept:
        (<uint32_t *>((<char *>run) + run.io.data_offset))[0] = <uint32_t>value

    cdef bint _park(self, int core, uvm) except -1:
        """The guest has nothing to run until a completion. Park it unless one is already there:
        the ring, not a signal, decides (a completion is published before its signal, so a
        signal consumed while the guest still ran cannot be lost)."""
        with self.lock:
            if uvm.completions_ready():
                return False
            uvm.state = BLOCKED
            uvm.core = None
            self.current[core] = None
            return True

    cdef str _leave(self, int core, uvm, str how, str detail):
        with self.lock:
            if self.current[core] is uvm:
                self.current[core] = None
            uvm.core = None
        self.host.finished(uvm, how, detail)
        return how

    # -- wake-ups ----------------------------------------------------------------------------------
    def poll_wakeups(self, timeout=0.0):
        """Wake blocked user VMs whose channel signalled; end those whose deadline passed.
        Returns the user VMs made runnable."""
        woken = []
        events = self.epoll.poll(timeout)
        expired = []
        with self.lock:
            for fd, _ in events:
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                uvm = self.blocked.get(fd)
                if uvm is None:
                    continue
                try:
                    os.eventfd_read(fd)
                except BlockingIOError:
                    continue
                # Only a completion the guest can read wakes it: a stray signal (a restarted
                # system VM pokes every channel) must not make it runnable for nothing.
                if uvm.state == BLOCKED and uvm.completions_ready():
                    self._enqueue(uvm)
                    woken.append(uvm)
            now = nx_now_ns()
            for uvm in self.blocked.values():
                if uvm.state == BLOCKED and now >= uvm.deadline_ns:
                    uvm.state = CRASHED  # killed by the host: no wake-up may queue it again
                    expired.append(uvm)
        for uvm in expired:
            self.host.finished(uvm, LEFT_TIMEOUT, "blocked past its %d ms budget" % uvm.timeout_ms)
        return woken

    def wake(self, uvm):
        """Make a blocked user VM runnable (a completion arrived)."""
        with self.lock:
            if uvm.state != BLOCKED:
                return False
            self._enqueue(uvm)
            return True

    cdef double _next_deadline(self):
        cdef long long now = nx_now_ns(), soonest = now + 1_000_000_000
        with self.lock:
            for uvm in self.blocked.values():
                if uvm.state == BLOCKED and uvm.deadline_ns < soonest:
                    soonest = uvm.deadline_ns
        return max(0.0, (soonest - now) / 1e9)

    def _waker(self):
        while not self.stopping:
            self.poll_wakeups(self._next_deadline())

    def _worker(self, int core):
        while True:
            with self.lock:
                while not self.stopping and not self.order:
                    self.cond.wait()
                if self.stopping:
                    return
                uvm = self.dispatch(core)
            if uvm is not None:
                self.run_core(core)

    def stop(self):
        with self.lock:
            self.stopping = True
            self.cond.notify_all()
        os.write(self.wake_w, b"x")
        for t in self.threads:
            t.join(5)
        self.epoll.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
