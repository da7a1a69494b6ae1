"""`nanvix demo`: the default job, two tenants on real KVM, over HTTP: it starts its own daemon
(the front door of `nanvix serve`, on a loopback port, on a fresh home), creates the tenants with
the admin token, and deploys and invokes every function through the door with each tenant's own
token. As the host's operator it also kills a system VM, which the daemon restarts."""
import json
import statistics
import tempfile
import threading
import time

from nanvix.impl.cli.common import add_fair_cores, emit
from nanvix.impl.cli.run import example
from nanvix.impl.control.host import Host
from nanvix.impl.serve.client import ApiError, Client


def register(sub):
    p = sub.add_parser("demo", help="the default job: a daemon of its own, two tenants, several functions over HTTP")
    p.add_argument("--json", action="store_true")
    add_fair_cores(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args):
    out = []
    say = (lambda *a: None) if args.json else print

    def step(title, r):
        out.append(dict(r, step=title))
        say("  %-44s %-8s %s" % (title, r["status"], r["result"][:60]))
        return r

    from nanvix.impl.serve.daemon import Daemon
    with tempfile.TemporaryDirectory(prefix="nanvix-demo-") as home, \
            Host(home=home, fair_cores=args.fair_cores) as host:
        rt = host.runtime
        daemon = Daemon(host=host, listen="127.0.0.1:0").start()
        admin = Client(daemon.url, daemon.token)
        tokens = {t: admin.call("POST", "/v1/tenants", {"tenant": t})["token"] for t in ("alice", "bob")}
        local = threading.local()   # one kept-alive connection per thread and tenant

        def client(tenant):
            if not hasattr(local, "clients"):
                local.clients = {}
            if tenant not in local.clients:
                local.clients[tenant] = Client(daemon.url, tokens[tenant])
            return local.clients[tenant]

        def invoke(tenant, name, data=b"", timeout_ms=10_000):
            """Deploy on first use (over HTTP: the source, built once), then invoke by name."""
            c = client(tenant)
            try:
                return c.invoke(name, data, timeout_ms)[0]
            except ApiError as e:
                if e.status != 403:
                    raise
            with open(example(name), "rb") as f:
                c.call("PUT", "/v1/functions/" + name, body=f.read())
            return c.invoke(name, data, timeout_ms)[0]

        say("nanvix demo: a daemon at %s (home %s), two tenants (alice, bob) with tokens of their own"
            % (daemon.url, home))
        say("\n[1] first invocations (each deployed over HTTP on first use: built once, snapshot booted, system VM started)")
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
        invoke("bob", "echo.c", b"deployed first")   # (alice's echo.c is deployed already)
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

        say("\n[7] the door keeps tenants apart: bob's token on alice's note.c")
        bob_on_alice = client("bob").request("POST", "/v1/functions/note.c/invoke", b"x")[0]
        say("  HTTP %d (alice's functions are not bob's to call)" % bob_on_alice)
        warm = []
        for _ in range(50):
            t0 = time.perf_counter()
            invoke("alice", "echo.c", b"warm")
            warm.append((time.perf_counter() - t0) * 1e6)
        say("  warm HTTP echo (client to client, Python's http.client): median %.0f us" % statistics.median(warm))
        daemon.stop()
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
            "http_url": daemon.url, "foreign_token_status": bob_on_alice,
            "http_warm_echo_us_median": round(statistics.median(warm), 1),
        }
    ok_all = (summary["counter_continued_across_restart"] and not summary["bob_sees_alice_file"]
              and crash["status"] == "crashed" and loop["status"] == "timeout" and after["status"] == "ok"
              and spin["status"] == "ok" and ping["status"] == "ok" and ok == 16 and bob_on_alice == 403)
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
        print("  over HTTP at %s: bob's token on alice's function got %d; warm echo %.0f us (median)"
              % (summary["http_url"], bob_on_alice, summary["http_warm_echo_us_median"]))
        print("  demo %s" % ("OK" if ok_all else "FAILED"))
    return 0 if ok_all else 1
