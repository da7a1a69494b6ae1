"""`nanvix bench`: every figure beside a floor that does the same work, interleaved in one run,
as medians and p99 (the machines are shared and noisy: compare the ratios, not the values).

  start        invoke -> the guest's first KVM_RUN (a user VM kept ready)  vs  a bare KVM VM
               created, mapped, given a vCPU and run to its first exit
  echo         one echo invocation end to end (Python API)  vs  posix_spawn of a static echo
               with its output read, and vs gVisor's `runsc do echo`
  teardown     resetting a user VM for its next invocation, and destroying one  vs  closing a
               bare VM
  throughput   sustained echo invocations/s with 1 core and 1 invoker, and 2 cores and 2
  io           a no-op request's round trip, the system VM polling, and through the doorbell
               (the system VM asleep)  vs  a pipe round trip to another process
  memory       MemAvailable per live user VM that has run (parked), and descriptors per VM
`nanvix bench --live N` holds N live user VMs over VMM shard processes (the scale test).
Targets (issue 11) are printed met or not; they are never asserted by the tests.
"""
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

from nanvix.impl.cli import density_inputs, floors as F
from nanvix.impl.cli.common import emit, positive, positive_float
from nanvix.impl.cli.run import example

GUESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guests")
TARGETS = {  # figure -> (comparison, bound)
    "start_p50_us": ("<=", 150), "start_over_bare_kvm": ("<=", 0.35),
    "echo_p50_us": ("<=", 400), "echo_over_spawn": ("<=", 0.6),
    "invocations_per_s_2_cores": (">=", 2000),
    "io_polled_us": ("<=", 1), "io_doorbell_us": ("<=", 30),
    "live_user_vms": (">=", 20000), "kib_per_user_vm": ("<=", 600),
}


def register(sub):
    p = sub.add_parser("bench", help="start, invocation, teardown, throughput, I/O and memory, each "
                       "beside a floor measured in the same run")
    p.add_argument("-n", type=positive, default=100, help="repetitions per interleaved measurement")
    p.add_argument("--seconds", type=positive_float, default=3.0, help="length of each throughput run")
    p.add_argument("--hold", type=positive, default=300, help="parked user VMs for the memory figure")
    p.add_argument("--live", type=positive, default=None, metavar="N",
                   help="the scale test instead: hold N live user VMs over VMM shard processes")
    p.add_argument("--per-shard", type=positive, default=2500, help="user VMs per process (--live)")
    p.add_argument("--fairness", action="store_true",
                   help="only the fairness section: a quiet tenant alone and beside each noisy neighbour")
    p.add_argument("--http", action="store_true",
                   help="only the HTTP section: a `nanvix serve` daemon beside an in-process HTTP floor")
    p.add_argument("--runtimes", action="store_true",
                   help="only the runtimes section: hello and echo in C (SDK), static musl C, JavaScript and "
                   "Python (MicroPython; CPython too once `make cpython` built it); system calls that leave "
                   "the VM; snapshot memory per runtime")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def stats(xs):
    xs = sorted(xs)
    return {"p50": round(statistics.median(xs), 2), "p99": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 2),
            "n": len(xs)}


def judge(values):
    out = {}
    for name, (op, bound) in dict(TARGETS, **HTTP_TARGETS).items():
        if name in values and values[name] is not None:
            v = values[name]
            out[name] = {"value": v, "target": "%s %s" % (op, bound), "met": v <= bound if op == "<=" else v >= bound}
    return out


def throughput(home, cores, seconds, image_path):
    """Echo invocations/s sustained for `seconds` by `cores` invoker threads on `cores` cores."""
    from nanvix.impl.control.runtime import Runtime
    with Runtime(home=home, cores=cores) as rt:
        img = rt.load(image_path)
        rt.prepare("tput", img)
        for _ in range(50):
            rt.invoke("tput", img, b"x")
        count = [0]
        lock = threading.Lock()
        end = time.monotonic() + seconds

        def work():
            n = 0
            while time.monotonic() < end:
                rt.invoke("tput", img, b"hi")
                n += 1
            with lock:
                count[0] += n
        t0 = time.monotonic()
        threads = [threading.Thread(target=work) for _ in range(cores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return round(count[0] / (time.monotonic() - t0), 1)


NEIGHBOURS = {"cpu spin": example("loop.c"), "exit storm": os.path.join(GUESTS, "exitstorm.c"),
              "doorbell storm": os.path.join(GUESTS, "bellstorm.c"), "I/O flood": os.path.join(GUESTS, "ioflood.c")}


def fairness(home, n, seconds):
    """A quiet tenant's invocation (one kv round trip through its system VM), alone and beside
    each kind of noisy neighbour: four of its guests at a time, re-invoked as they end (each with
    a 300 ms budget). Returns {kind: latency stats}, the alone runs taken before and after."""
    from nanvix.impl.control.runtime import Runtime
    io = os.path.join(os.path.dirname(GUESTS), "..", "..", "tests", "guests", "io.c")
    if not os.path.exists(io):
        io = example("echo.c")
    with Runtime(home=home, cores=2, quota_uvms=64) as rt:
        quiet = rt.load(io)
        rt.invoke("quiet", quiet, b"kvput k v")
        for _ in range(20):
            rt.invoke("quiet", quiet, b"kvget k")

        def measure():
            out = []
            end = time.monotonic() + seconds
            while len(out) < n or time.monotonic() < end:
                t0 = time.perf_counter_ns()
                r = rt.invoke("quiet", quiet, b"kvget k")
                out.append(F.us(t0))
                if r["status"] != "ok":
                    raise RuntimeError("the quiet tenant's invocation failed: %r" % r)
                time.sleep(0.002)
                if len(out) >= 5 * n:
                    break
            return out

        alone = measure()
        result = {}
        for kind, path in NEIGHBOURS.items():
            img = rt.load(path)
            stop = threading.Event()

            def noisy():
                while not stop.is_set():
                    rt.invoke("noisy", img, b"", 300)
            threads = [threading.Thread(target=noisy) for _ in range(4)]
            for th in threads:
                th.start()
            time.sleep(0.3)
            result[kind] = measure()
            stop.set()
            for th in threads:
                th.join()
        alone += measure()
    out = {"alone": stats(alone)}
    for kind, xs in result.items():
        s = stats(xs)
        s["p50_ratio"] = round(s["p50"] / out["alone"]["p50"], 2)
        s["p99_ratio"] = round(s["p99"] / out["alone"]["p99"], 2)
        out[kind] = s
    return out


def render_fairness(f):
    lines = ["%-16s %10s %10s %10s %10s" % ("quiet tenant beside", "p50 us", "p99 us", "p50 ratio", "p99 ratio")]
    for kind, s in f.items():
        lines.append("%-16s %10.1f %10.1f %10s %10s" % (kind, s["p50"], s["p99"], s.get("p50_ratio", ""),
                                                        s.get("p99_ratio", "")))
    return "\n".join(lines)


def cmd_bench(args):
    if args.live:
        return cmd_live(args)
    if args.http:
        figures, values, skipped = http_rows(args.n, args.seconds)
        emit({"n": args.n, "figures": figures, "values": values, "targets": judge(values), "skipped": skipped,
              "unit": "us", "note": "the machine is shared: compare the ratios"}, args.json, render)
        return 0
    if args.runtimes:
        return cmd_runtimes(args)
    if args.fairness:
        with tempfile.TemporaryDirectory(prefix="nanvix-fair-") as home:
            f = fairness(home, args.n, args.seconds)
        worst = max(s["p99_ratio"] for k, s in f.items() if k != "alone")
        emit({"fairness": f, "targets": {"fairness_p99_ratio": {"value": worst, "target": "<= 1.5", "met": worst <= 1.5}}},
             args.json, lambda r: render_fairness(r["fairness"]) + "\nworst p99 ratio %.2f: target <= 1.5 %s"
             % (worst, "met" if worst <= 1.5 else "NOT met"))
        return 0
    from nanvix.impl.control.host import Host
    med = statistics.median
    with tempfile.TemporaryDirectory(prefix="nanvix-bench-") as home:
        spawn_path = F.static_echo(home)
        with Host(home=home, cores=2, quota_uvms=args.hold + 64, quota_pages=args.hold + 256,
                  arena_slots=args.hold + 64) as host:
            rt = host.runtime
            host.deploy("bench", example("echo.c"), name="echo")
            for _ in range(30):  # warm: system VM, snapshot, ready user VMs, caches
                host.invoke("bench", "echo", b"x")
            bare = F.BareKvm(rt.kvm)
            starts, floor_start, echo, spawn, floor_close = [], [], [], [], []
            for _ in range(args.n):
                t, held = bare.start()
                floor_start.append(t)
                floor_close.append(bare.close(held))
                t0 = time.perf_counter_ns()
                r = host.invoke("bench", "echo", b"hi")
                echo.append(F.us(t0))
                if not r.ok or r.result != b"hi":
                    raise RuntimeError("echo failed: %r" % (r,))
                starts.append(r.start_us)
                spawn.append(F.spawn_echo(spawn_path, "hi"))
            bare.shutdown()
            gvisor, skipped = [], {}
            path, why = F.runsc()
            if path:
                for _ in range(min(args.n, 10)):
                    gvisor.append(F.runsc_echo(path, "hi"))
            else:
                skipped["runsc"] = why
            # teardown: reset a user VM for its next invocation; destroy one (closing its VM)
            img = rt.load(example("echo.c"))
            resets, destroys = [], []
            for i in range(min(args.n, 50)):
                for kind in ("reset", "destroy"):
                    u = rt.create_user_vm("bench", img, b"hi")
                    rt.start(u)
                    u.done.wait(10)
                    t0 = time.perf_counter_ns()
                    rt.reset(u) if kind == "reset" else rt.destroy(u, wait=True)
                    (resets if kind == "reset" else destroys).append(F.us(t0))
            # I/O round trips
            ping = rt.load(example("ping.c"))
            polled = json.loads(rt.invoke("bench", ping, b"%d" % (args.n * 20))["result"])
            bell = json.loads(rt.invoke("bench", ping, b"%d 300" % max(20, args.n // 2))["result"])
            pipe = F.Pipe()
            pipe_rtt = [pipe.round_trip_ns() / 1000 for _ in range(args.n * 20)]
            pipe.close()
            # memory: parked user VMs that have run, in this process
            park = rt.load(os.path.join(GUESTS, "park.c"))
            fds0 = len(os.listdir("/proc/self/fd"))
            avail0 = F.mem_available_kib()
            held = rt.hold("bench-mem", park, args.hold, per_shard=args.hold + 1)
            time.sleep(0.5)
            kib = (avail0 - F.mem_available_kib()) / args.hold
            fds_per_vm = (len(os.listdir("/proc/self/fd")) - fds0) / args.hold
            rt.drop_held()
        tput1 = throughput(os.path.join(home, "t1"), 1, args.seconds, example("echo.c"))
        tput2 = throughput(os.path.join(home, "t2"), 2, args.seconds, example("echo.c"))
    figures = {
        "start (invoke -> first KVM_RUN)": dict(stats(starts), floor="bare KVM create + run to first exit"),
        "floor: bare KVM create + run to first exit": stats(floor_start),
        "echo invocation, end to end": dict(stats(echo), floor="posix_spawn of a static echo"),
        "floor: posix_spawn of a static echo": stats(spawn),
        "teardown: reset for the next invocation": dict(stats(resets), floor="bare VM close"),
        "teardown: destroy (VM closed)": dict(stats(destroys), floor="bare VM close"),
        "floor: bare VM close": stats(floor_close),
        "I/O round trip, polled (mean, best)": {"p50": polled["mean_ns"] / 1000, "best": polled["best_ns"] / 1000},
        "I/O round trip, doorbell (mean, best)": {"p50": bell["mean_ns"] / 1000, "best": bell["best_ns"] / 1000},
        "floor: pipe round trip": stats(pipe_rtt),
    }
    if gvisor:
        figures["peer: runsc do echo (gVisor, ptrace)"] = stats(gvisor)
    values = {
        "start_p50_us": figures["start (invoke -> first KVM_RUN)"]["p50"],
        "start_over_bare_kvm": round(med(starts) / med(floor_start), 3),
        "echo_p50_us": figures["echo invocation, end to end"]["p50"],
        "echo_over_spawn": round(med(echo) / med(spawn), 3),
        "echo_over_runsc": round(med(echo) / med(gvisor), 4) if gvisor else None,
        "invocations_per_s_1_core": tput1, "invocations_per_s_2_cores": tput2,
        "second_core_speedup": round(tput2 / tput1, 2) if tput1 else None,
        "io_polled_us": round(polled["mean_ns"] / 1000, 3), "io_doorbell_us": round(bell["mean_ns"] / 1000, 3),
        "io_polled_over_pipe": round(polled["mean_ns"] / 1000 / med(pipe_rtt), 3),
        "kib_per_user_vm": round(kib, 1), "fds_per_user_vm": round(fds_per_vm, 2),
        "reset_us": round(med(resets), 1), "destroy_us": round(med(destroys), 1),
    }
    result = {"n": args.n, "figures": figures, "values": values, "targets": judge(values),
              "measurements": {k: v["p50"] for k, v in figures.items()},
              "ratios": {k: v for k, v in values.items() if ("_over_" in k or k.endswith("speedup")) and v},
              "memory": {"held_user_vms": args.hold, "placed": held}, "skipped": skipped, "unit": "us"}
    result["density_inputs"] = density_inputs.measure(small=args.n < 100, values=values)  # nanvix density --inputs
    emit(result, args.json, render)
    return 0


def render(r):
    lines = ["%-46s %10s %10s" % ("figure (us)", "p50", "p99")]
    for name, f in r["figures"].items():
        lines.append("%-46s %10.2f %10s" % (name, f["p50"], "%.2f" % f["p99"] if "p99" in f else "best %.2f" % f["best"]))
    lines.append("")
    for k, v in r["values"].items():
        t = r["targets"].get(k)
        lines.append("%-46s %10s %s" % (k, v, "" if t is None else "target %s: %s" % (t["target"], "met" if t["met"] else "NOT met")))
    for k, why in r["skipped"].items():
        lines.append("skipped %s: %s" % (k, why))
    return "\n".join(lines)


def cmd_live(args):
    """Hold N live user VMs that have run (parked), over VMM shards: how many, how long, what
    each costs the host, and an invocation beside them."""
    from nanvix.impl.control.runtime import Runtime
    n = args.live
    with tempfile.TemporaryDirectory(prefix="nanvix-live-") as home, \
            Runtime(home=home, cores=2, quota_uvms=n + 64, quota_pages=n + 256, arena_slots=n + 64,
                    max_pages=min(n, args.per_shard) + 256) as rt:
        echo = rt.load(example("echo.c"))
        rt.invoke("live", echo, b"warm")
        time.sleep(0.5)
        avail0 = F.mem_available_kib()
        t0 = time.monotonic()
        placed = rt.hold("live", rt.load(os.path.join(GUESTS, "park.c")), n, per_shard=args.per_shard)
        took = time.monotonic() - t0
        time.sleep(1)
        kib = (avail0 - F.mem_available_kib()) / n
        shards = rt.shard_stats()
        parked = sum(v.get("blocked", 0) for v in placed.values())
        beside = [rt.invoke("live", echo, b"hi") for _ in range(20)]
        rt.drop_held()
    values = {"live_user_vms": parked, "kib_per_user_vm": round(kib, 1), "seconds_to_hold": round(took, 1),
              "processes": len(shards),
              "fds_per_user_vm": round(max((s["fds"] - 20) / s["user_vms"] for s in shards.values() if s["user_vms"] > 100), 2),
              "echo_beside_them_start_us_p50": statistics.median(b["start_us"] for b in beside),
              "echo_beside_them_ok": sum(b["status"] == "ok" for b in beside)}
    result = {"live": n, "values": values, "targets": judge(values), "placed": placed, "shards": shards}
    emit(result, args.json, lambda r: "\n".join(
        ["%-34s %s%s" % (k, v, "" if k not in r["targets"] else "   target %s: %s" % (
            r["targets"][k]["target"], "met" if r["targets"][k]["met"] else "NOT met")) for k, v in r["values"].items()]))
    return 0


HTTP_TARGETS = {"http_first_echo_p50_us": ("<=", 5000), "http_warm_echo_p50_us": ("<=", 500),
                "http_invocations_per_s_64_clients": (">=", 1500)}


def http_rows(n, seconds):
    """The front door (issue 13), against a real `nanvix serve` in a process of its own on 2 cores:
    the first HTTP echo of a freshly deployed function (a new image each time: built, snapshot
    booted, then invoked at once), warm HTTP echo invocations beside the floor (the same HTTP stack
    answering in-process) and `runsc do echo`, the door's own share of a warm echo (the request's
    time less the invocation's time on its thread, which the daemon reports), and sustained
    invocations/s with 1, 8 and 64 clients beside the floor's requests/s.
    Returns (figures, values, skipped)."""
    from nanvix.impl.serve import floor as H
    from nanvix.impl.serve.client import Client
    import subprocess
    import sys
    figures, values, skipped = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="nanvix-http-") as home:
        info = os.path.join(home, "floor.json")
        floor = subprocess.Popen([sys.executable, "-m", "nanvix.impl.serve.floor", "serve", info])
        proc, url, admin = H.spawn_daemon(os.path.join(home, "daemon"))
        try:
            while not os.path.exists(info):
                time.sleep(0.02)
            with open(info) as f:
                floor_url = json.load(f)["url"]
            # fresh deployments in a tenant of their own: the warm figures are of a tenant with one function
            tokens = {t: Client(url, admin).call("POST", "/v1/tenants", {"tenant": t})["token"]
                      for t in ("bench", "bench-fresh")}
            c, fresh, token = Client(url, tokens["bench"]), Client(url, tokens["bench-fresh"]), tokens["bench"]
            with open(example("echo.c"), "rb") as f:
                echo_src = f.read()
            firsts, deploys = [], []
            for i in range(min(n, 10)):   # a new image each time: a different comment, another digest
                name = "fresh%d" % i
                t0 = time.perf_counter_ns()
                fresh.call("PUT", "/v1/functions/" + name, body=echo_src + b"\n/* %d %d */\n" % (os.getpid(), i))
                deploys.append(F.us(t0))
                first = H.request_bytes("/v1/functions/%s/invoke" % name, b"hi", tokens["bench-fresh"])
                dt, status, head, body = H.RawClient(url).send(first)
                if status != 200 or body != b"hi":
                    raise RuntimeError("the first HTTP echo failed: %s %r" % (status, body))
                firsts.append(dt)
            c.call("PUT", "/v1/functions/echo", body=echo_src)
            warm_req = H.request_bytes("/v1/functions/echo/invoke", b"hi", token)
            floor_req = H.request_bytes("/echo", b"hi")
            dc, fc = H.RawClient(url), H.RawClient(floor_url)
            for _ in range(30):
                dc.send(warm_req)
            warm, door, fl = [], [], []
            for _ in range(n):   # interleaved: the floor and the daemon, one after the other
                fl.append(fc.send(floor_req)[0])
                dt, status, head, body = dc.send(warm_req)
                if status != 200 or body != b"hi":
                    raise RuntimeError("the warm HTTP echo failed: %s %r" % (status, body))
                host_us = float(head.lower().split("nanvix-host-us:")[1].split("\r\n")[0])
                warm.append(dt)
                door.append(dt - host_us)
            dc.close()
            fc.close()
            gvisor = []
            path, why = F.runsc()
            if path:
                gvisor = [F.runsc_echo(path, "hi") for _ in range(min(n, 10))]
            else:
                skipped["runsc"] = why
            tput = {}
            for clients in (1, 8, 64):
                tput[clients] = (H.load(url, warm_req, clients, seconds), H.load(floor_url, floor_req, clients, seconds))
        finally:
            floor.terminate()
            floor.wait()
            proc.terminate()
            proc.wait(120)
            proc.stdout.close()
    figures["HTTP first echo of a fresh deployment"] = stats(firsts)
    figures["HTTP deploy (build + snapshot boot)"] = stats(deploys)
    figures["HTTP warm echo"] = dict(stats(warm), floor="HTTP server answering in-process")
    figures["floor: HTTP server answering in-process"] = stats(fl)
    figures["HTTP front door's share of a warm echo"] = stats(door)
    if gvisor:
        figures["peer: runsc do echo (gVisor, ptrace)"] = stats(gvisor)
    med = statistics.median
    values.update({
        "http_first_echo_p50_us": figures["HTTP first echo of a fresh deployment"]["p50"],
        "http_warm_echo_p50_us": figures["HTTP warm echo"]["p50"],
        "http_warm_echo_over_floor": round(med(warm) / med(fl), 2),
        "http_door_added_us": round(med(door), 1),
        "http_first_echo_over_runsc": round(med(firsts) / med(gvisor), 4) if gvisor else None,
    })
    for clients, (rate, floor_rate) in tput.items():
        values["http_invocations_per_s_%d_clients" % clients] = rate
        values["http_floor_requests_per_s_%d_clients" % clients] = floor_rate
    return figures, values, skipped


# ---- runtimes: C (SDK), static musl C, JavaScript, Python (and CPython, once built) -------------

RUNTIME_TARGETS = {"javascript_echo_p50_ms": ("<=", 3.0), "python_echo_p50_ms": ("<=", 3.0),
                   "memory_syscalls_left_guest": ("<=", 0)}


def runtimes(home, n):
    """Hello and echo invocations of each runtime, interleaved (one tenant per runtime, each
    with its snapshot booted and user VMs kept ready), beside posix_spawn of a static echo; the
    system calls of each that left the VM; each runtime's snapshot memory for its tenant (the
    pages its boot wrote: what a tenant pays once per runtime); a memory-only program's system
    calls, none of which may leave the VM."""
    from nanvix.impl.control.runtime import Runtime
    from nanvix.impl.guest.linux.toolchain import toolchain
    cc = toolchain().cc()
    musl = {}
    for name in ("posix_hello", "posix_echo", "memchurn"):
        musl[name] = os.path.join(home, name)
        subprocess.run([cc, "-static", "-O2", "-o", musl[name], os.path.join(GUESTS, name + ".c")], check=True)
    spawn_path = F.static_echo(home)
    kinds = {"C SDK": (example("hello.c"), example("echo.c")),
             "static musl C": (musl["posix_hello"], musl["posix_echo"]),
             "JavaScript": (example("hello.js"), example("echo.js")),
             "Python": (example("hello.py"), example("echo.py"))}
    from nanvix.impl.guest.linux import cpython
    if cpython.built() is not None:   # CPython: a row only where the slow `make cpython` built it
        from nanvix.impl.guest.linux.image import python_image
        kinds["CPython"] = tuple(os.path.dirname(python_image(example(n), "cpython")["path"])
                                 for n in ("hello.py", "echo.py"))
    with Runtime(home=os.path.join(home, "rt"), cores=2) as rt:
        imgs, times, calls, snap = {}, {}, {}, {}
        for kind, paths in kinds.items():
            tenant = "rt-" + kind.split()[0].lower()
            for what, path in zip(("hello", "echo"), paths):
                img = imgs[(kind, what)] = (tenant, rt.load(path))
                rt.prepare(tenant, img[1])
                for _ in range(10):   # warm: snapshot, ready user VMs, caches
                    rt.invoke(tenant, img[1], b"hi")
                times[(kind, what)] = []
            t = rt.tenants[tenant]
            snap[kind] = {what: os.fstat(t.templates[imgs[(kind, what)][1]["digest"]].fd).st_blocks // 2
                          for what in ("hello", "echo")}
        spawn = []
        for _ in range(n):
            for key, (tenant, img) in imgs.items():
                t0 = time.perf_counter_ns()
                rep = rt.invoke(tenant, img, b"hi")
                times[key].append(F.us(t0))
                if rep["status"] != "ok" or (key[1] == "echo" and rep["result_bytes"] != b"hi"):
                    raise RuntimeError("%s %s failed: %r" % (key[0], key[1], rep))
                calls[key] = (rep["syscalls"], rep["syscalls_left_guest"], rep["io_requests"])
            spawn.append(F.spawn_echo(spawn_path, "hi"))
        churn = rt.invoke("rt-static", rt.load(musl["memchurn"]), b"")
        if churn["status"] != "ok":
            raise RuntimeError("memchurn failed: %r" % churn)
    figures = {"%s %s" % key: stats(xs) for key, xs in times.items()}
    figures["floor: posix_spawn of a static echo"] = stats(spawn)
    c_echo = statistics.median(times[("C SDK", "echo")])
    values = {}
    for kind in kinds:
        k = kind.split()[0].lower() if kind != "static musl C" else "musl"
        echo = statistics.median(times[(kind, "echo")])
        values["%s_echo_p50_ms" % k] = round(echo / 1000, 3)
        values["%s_echo_over_c_sdk" % k] = round(echo / c_echo, 2)
        values["%s_echo_over_spawn" % k] = round(echo / statistics.median(spawn), 2)
        values["%s_snapshot_kib" % k] = snap[kind]["echo"]
        values["%s_echo_syscalls" % k] = calls[(kind, "echo")][0]
        values["%s_echo_syscalls_left_guest" % k] = calls[(kind, "echo")][1]
    values["memory_syscalls"] = churn["syscalls"]
    values["memory_syscalls_left_guest"] = churn["syscalls_left_guest"]
    targets = {}
    for name, (op, bound) in RUNTIME_TARGETS.items():
        v = values[name]
        targets[name] = {"value": v, "target": "%s %s" % (op, bound), "met": v <= bound if op == "<=" else v >= bound}
    table = {"%s %s" % key: {"syscalls": c[0], "left_guest": c[1], "io_requests": c[2]} for key, c in calls.items()}
    table["memchurn (memory calls only)"] = {"syscalls": churn["syscalls"], "left_guest": churn["syscalls_left_guest"],
                                             "io_requests": churn["io_requests"]}
    return {"n": n, "figures": figures, "values": values, "targets": targets, "syscalls": table,
            "snapshot_kib": snap, "unit": "us"}


def render_runtimes(r):
    lines = ["%-40s %10s %10s" % ("invocation, end to end (us)", "p50", "p99")]
    for name, f in r["figures"].items():
        lines.append("%-40s %10.1f %10.1f" % (name, f["p50"], f["p99"]))
    lines += ["", "%-40s %10s %10s %10s" % ("system calls per invocation", "all", "left VM", "requests")]
    for name, c in r["syscalls"].items():
        lines.append("%-40s %10d %10d %10d" % (name, c["syscalls"], c["left_guest"], c["io_requests"]))
    lines += ["", "%-40s %10s %10s" % ("snapshot memory per tenant (KiB)", "hello", "echo")]
    for kind, s in r["snapshot_kib"].items():
        lines.append("%-40s %10d %10d" % (kind, s["hello"], s["echo"]))
    lines.append("")
    for k, v in r["values"].items():
        t = r["targets"].get(k)
        lines.append("%-40s %10s %s" % (k, v, "" if t is None else "target %s: %s" % (t["target"], "met" if t["met"] else "NOT met")))
    return "\n".join(lines)


def cmd_runtimes(args):
    with tempfile.TemporaryDirectory(prefix="nanvix-runtimes-") as home:
        emit(runtimes(home, args.n), args.json, render_runtimes)
    return 0
