"""`nanvix demo`: the embedded default job, two tenants on real KVM, through the public API."""
import json
import statistics
import threading
import time

from nanvix.impl.cli.common import emit
from nanvix.impl.cli.run import example
from nanvix.impl.control.host import Host
from nanvix.impl.errors import NotFound


def register(sub):
    p = sub.add_parser("demo", help="the embedded default job: two tenants, several functions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args):
    out = []
    say = (lambda *a: None) if args.json else print

    def step(title, r):
        out.append(dict(r, step=title))
        say("  %-44s %-8s %s" % (title, r["status"], r["result"][:60]))
        return r

    with Host() as host:
        rt = host.runtime

        def invoke(tenant, name, data=b"", timeout_ms=10_000):
            """Deploy on first use (build once, snapshot per tenant), then invoke by name."""
            try:
                host.function(tenant, name)
            except NotFound:
                host.deploy(tenant, example(name), name)
            return host.invoke(tenant, name, data, timeout_ms).to_dict()

        say("nanvix demo: two tenants (alice, bob) on real KVM; state in %s" % rt.home)
        say("\n[1] first invocations (each tenant's system VM starts on first use)")
        step("alice hello", invoke("alice", "hello.c", b"alice"))
        step("bob hello", invoke("bob", "hello.c", b"bob"))
        step("alice echo", invoke("alice", "echo.c", b"echo me"))

        say("\n[2] a kv counter that keeps counting: across invocations and a system VM restart")
        counts = [int(step("alice counter", invoke("alice", "counter.c"))["result"]) for _ in range(3)]
        old = rt.system_vm("alice").pid
        rt.kill_system_vm("alice")
        new = rt.system_vm("alice").pid
        say("  killed alice's system VM with SIGKILL (pid %d); restarted as pid %d" % (old, new))
        counts.append(int(step("alice counter (after restart)", invoke("alice", "counter.c"))["result"]))
        bob_count = step("bob counter (his own key space)", invoke("bob", "counter.c"))

        say("\n[3] a file written by one invocation and read by the next; invisible to the other tenant")
        step("alice note (append notes.txt)", invoke("alice", "note.c", b"the quick brown fox"))
        wc = step("alice wordcount notes.txt", invoke("alice", "wordcount.c"))
        wc_bob = step("bob wordcount notes.txt", invoke("bob", "wordcount.c"))

        say("\n[4] containment: a crashing and a looping guest; the system VMs keep serving")
        crash = step("alice crash (null dereference)", invoke("alice", "crash.c"))
        loop = step("bob loop (200 ms budget)", invoke("bob", "loop.c", timeout_ms=200))
        after = step("alice echo after both", invoke("alice", "echo.c", b"still here"))

        say("\n[5] native guest speed and the I/O round trip")
        spin = step("alice spin (10^7 iterations)", invoke("alice", "spin.c"))
        ping = step("alice ping (1000 no-op requests)", invoke("alice", "ping.c", b"1000"))

        say("\n[6] 16 concurrent invocations over %d cores" % rt.sched.ncores)
        par = []
        lock = threading.Lock()

        def one(i):
            r = invoke("alice" if i % 2 else "bob", "echo.c", b"req-%d" % i)
            with lock:
                par.append(r)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        ok = sum(r["status"] == "ok" and r["result"].startswith("req-") for r in par)
        say("  %d/16 ok in %.1f ms" % (ok, wall * 1000))

        starts = [r["start_us"] for r in out if r["status"] in ("ok", "error")]
        pj = json.loads(ping["result"]) if ping["status"] == "ok" else {}
        summary = {
            "counter": counts, "counter_continued_across_restart": counts == list(range(counts[0], counts[0] + 4)),
            "bob_counter": bob_count["result"], "alice_wordcount": wc["result"],
            "bob_sees_alice_file": wc_bob["status"] == "ok",
            "crash_status": crash["status"], "loop_status": loop["status"],
            "served_after_faults": after["status"] == "ok",
            "start_us_median": round(statistics.median(starts), 1),
            "start_us_min": round(min(starts), 1),
            "io_round_trip_ns_mean": pj.get("mean_ns"), "io_round_trip_ns_best": pj.get("best_ns"),
            "spin": json.loads(spin["result"]) if spin["status"] == "ok" else None,
            "spin_run_us": spin["run_us"],
            "concurrent_ok": ok, "concurrent_wall_ms": round(wall * 1000, 1),
            "system_vm_restarts": [e for e in rt.sysvm_events],
        }
    ok_all = (summary["counter_continued_across_restart"] and not summary["bob_sees_alice_file"]
              and crash["status"] == "crashed" and loop["status"] == "timeout" and after["status"] == "ok"
              and spin["status"] == "ok" and ping["status"] == "ok" and ok == 16)
    summary["ok"] = ok_all
    if args.json:
        emit({"invocations": out, "summary": summary}, True, None)
    else:
        print("\nsummary")
        print("  counter values: %s (continued across the restart: %s)" % (counts, summary["counter_continued_across_restart"]))
        print("  bob can see alice's notes.txt: %s" % summary["bob_sees_alice_file"])
        print("  user VM start: median %.0f us, best %.0f us (system VM warm, VM from the pool, CoW snapshot)"
              % (summary["start_us_median"], summary["start_us_min"]))
        print("  I/O round trip (guest -> system VM -> guest): mean %s ns, best %s ns"
              % (summary["io_round_trip_ns_mean"], summary["io_round_trip_ns_best"]))
        if summary["spin"]:
            print("  spin: 10^7 iterations in %.1f ms of guest time (invocation run %.1f ms)"
                  % (summary["spin"]["guest_ns"] / 1e6, summary["spin_run_us"] / 1000))
        print("  demo %s" % ("OK" if ok_all else "FAILED"))
    return 0 if ok_all else 1
