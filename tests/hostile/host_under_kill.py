"""A host process for tests/hostile/test_kill.py to kill -9 while it writes.

    python host_under_kill.py HOME PREFIX

Runs invocations of guests/attack.c `durable` for tenant "writer" back to back, forever, and
prints one line per invocation that returned: "ACK <tag> <digits>" (one digit per round: bit 0
the kv put was acknowledged, bit 1 the file append), flushed before the next invocation starts.
"""
import os
import sys

from nanvix.impl.control.runtime import Runtime

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rt = Runtime(home=sys.argv[1], cores=1)
    print("READY %d" % os.getpid(), flush=True)
    i = 0
    while True:
        tag = "%s-%d" % (sys.argv[2], i)
        rep = rt.invoke("writer", os.path.join(HERE, "guests", "attack.c"), b"durable 5 " + tag.encode(), 30_000)
        if rep["status"] == "ok":
            print("ACK %s %s" % (tag, rep["result"]), flush=True)
        i += 1


if __name__ == "__main__":
    main()
