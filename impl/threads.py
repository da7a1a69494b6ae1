"""Host threads. Every thread nanvix starts blocks the signals a user sends the process (SIGINT,
SIGTERM, SIGHUP), so the kernel delivers them to the main thread, whose wait they interrupt: a
Ctrl-C delivered to a worker thread would otherwise sit unseen while the main thread sleeps. The
scheduler's kick signal stays unblocked."""
import signal
import threading

USER_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def spawn(name, target, *args):
    def run():
        signal.pthread_sigmask(signal.SIG_BLOCK, USER_SIGNALS)
        target(*args)
    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t
