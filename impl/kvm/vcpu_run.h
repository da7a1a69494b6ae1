/* KVM_RUN with a time budget, callable without the GIL.
 *
 * A vCPU that computes forever never exits on its own, so the host must kick it out of KVM_RUN.
 * The kick is the usual pair: a signal interrupts the ioctl (EINTR) and its handler sets
 * kvm_run->immediate_exit, which closes the race where the signal lands just before the thread
 * re-enters the guest. Each worker thread owns one POSIX timer aimed at itself (SIGEV_THREAD_ID),
 * armed for the slice before KVM_RUN and disarmed after, so a budget costs two syscalls per run.
 */
#ifndef NX_VCPU_RUN_H
#define NX_VCPU_RUN_H

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NX_KICK_SIG (SIGRTMIN + 5)

static __thread struct kvm_run *volatile nx_current_run;
static __thread timer_t nx_timer;
static __thread int nx_timer_ready;

static void nx_kick_handler(int sig)
{
    struct kvm_run *run = nx_current_run;
    (void)sig;
    if (run)
        run->immediate_exit = 1;
}

/* Installed once per process; no SA_RESTART so KVM_RUN returns EINTR. */
static int nx_kick_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = nx_kick_handler;
    sigemptyset(&sa.sa_mask);
    return sigaction(NX_KICK_SIG, &sa, NULL);
}

static int nx_kick_signal(void) { return NX_KICK_SIG; }

static int nx_thread_timer(void)
{
    struct sigevent sev;
    if (nx_timer_ready)
        return 0;
    nx_current_run = NULL; /* touch the TLS slot outside the handler */
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = NX_KICK_SIG;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &nx_timer) != 0)
        return -1;
    nx_timer_ready = 1;
    return 0;
}

static void nx_arm(long long ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = ns / 1000000000LL;
    its.it_value.tv_nsec = ns % 1000000000LL;
    timer_settime(nx_timer, 0, &its, NULL);
}

/* One KVM_RUN. budget_ns > 0 arms the kick timer for that long. Returns 0 or the errno. */
static int nx_vcpu_run(int fd, struct kvm_run *run, long long budget_ns)
{
    int r, err = 0;
    int timed = budget_ns > 0 && nx_thread_timer() == 0;
    nx_current_run = run;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (timed)
        nx_arm(budget_ns);
    r = ioctl(fd, KVM_RUN, 0);
    if (r < 0)
        err = errno;
    if (timed)
        nx_arm(0);
    nx_current_run = NULL;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    run->immediate_exit = 0;
    return err;
}

/* How a thread of this process (tid; 0: this one) is scheduled by the host kernel, at the given
 * nice:
 *  NX_HOST         a host thread: SCHED_OTHER, the default slice;
 *  NX_GUEST_IDLE   running guest code: SCHED_IDLE. A running SCHED_IDLE thread gives way at once
 *                  to any other thread that wakes at its cgroup level, whatever the fair
 *                  scheduler's lag says. But only to one that wakes: the change of policy itself
 *                  does not make the kernel look at the threads already waiting for this CPU (the
 *                  priority it compares is the nice, unchanged), so one woken while this thread
 *                  ran otherwise (its system VM, the invoker its guest's exit woke) would wait for
 *                  the next tick, 4 ms here. So this thread, made SCHED_IDLE, yields: the kernel
 *                  picks again now (a no-op when nothing else waits);
 *  NX_GUEST_BOOSTED running a guest on its tenant's credit of host priority (see sched.pyx):
 *                  SCHED_OTHER, so neither a busy system VM nor another process starves it, but
 *                  with a long slice (NX_BOOSTED_SLICE_NS): the kernel lets a waking thread with a
 *                  shorter slice, which every other thread has, preempt a running one at once
 *                  rather than at the end of the running one's slice (traced: the guest's own
 *                  system VM, woken by its request, waited for the next 4 ms tick while the
 *                  guest spun waiting for the answer).
 *  NX_KICKED       a thread in KVM_RUN asked to leave its guest now (a preemption, a deadline, an
 *                  eviction): SCHED_FIFO at the lowest priority, until the thread sets its own
 *                  mode as it leaves KVM_RUN (microseconds). A kicked SCHED_IDLE thread that some
 *                  other thread keeps off its CPU would otherwise wait for the next tick (4 ms
 *                  here) to see its signal: lifting it to SCHED_OTHER is no change of priority to
 *                  the kernel, so it does not look again (measured: kick to core given up, p99
 *                  4.6 ms beside a busy system VM). Where real-time is not allowed (no budget in
 *                  the thread's cgroup, no CAP_SYS_NICE) it is NX_HOST, from the first refusal on.
 * Returns 0, or -1. */
enum { NX_HOST = 0, NX_GUEST_IDLE = 1, NX_GUEST_BOOSTED = 2, NX_KICKED = 3 };
static int nx_rt_refused;
#define NX_BOOSTED_SLICE_NS 20000000ULL

struct nx_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
};

static int nx_thread_mode(int tid, int mode, int nice)
{
    struct nx_sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    if (mode == NX_KICKED && !__atomic_load_n(&nx_rt_refused, __ATOMIC_RELAXED)) {
        a.sched_policy = 1;   /* SCHED_FIFO */
        a.sched_priority = 1;
        if (syscall(SYS_sched_setattr, tid, &a, 0) == 0)
            return 0;
        __atomic_store_n(&nx_rt_refused, 1, __ATOMIC_RELAXED);
        a.sched_priority = 0;
    }
    a.sched_policy = mode == NX_GUEST_IDLE ? 5 /* SCHED_IDLE */ : 0 /* SCHED_OTHER */;
    a.sched_nice = nice;
    a.sched_runtime = mode == NX_GUEST_BOOSTED ? NX_BOOSTED_SLICE_NS : 0;   /* (SCHED_OTHER: the slice; 0: default) */
    if (syscall(SYS_sched_setattr, tid, &a, 0) != 0)
        return -1;
    if (mode == NX_GUEST_IDLE && tid == 0)
        sched_yield();
    return 0;
}

/* This thread's CPU time (ns): what a boosted guest's run spends of its tenant's credit. */
static long long nx_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int nx_thread_nice(int tid)
{
    return getpriority(PRIO_PROCESS, (id_t)tid);
}

static long long nx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
