"""Host threads. Every thread nanvix starts blocks the signals a user sends the process (SIGINT,
SIGTERM, SIGHUP), so the kernel delivers them to the main thread, whose wait they interrupt: a
Ctrl-C delivered to a worker thread would otherwise sit unseen while the main thread sleeps. The
scheduler's kick signal stays unblocked."""
import os
import signal
import threading

USER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
BACKGROUND_NICE = 10


def spawn(name, target, *args, background=False):
    """Start a daemon thread. A background one (work that no invocation waits on right now:
    refilling pools, closing and reaping VMs) runs at nice BACKGROUND_NICE, so it gives way to the
    threads an invocation waits on (its invoker, a core, its system VM) when they compete for a
    CPU, as a neighbour's churn of VMs otherwise makes them."""
    def run():
        signal.pthread_sigmask(signal.SIG_BLOCK, USER_SIGNALS)
        if background:
            os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE))
        target(*args)
    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t
