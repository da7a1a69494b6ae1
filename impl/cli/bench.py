"""`nanvix bench`: every figure beside a floor that does the same work, interleaved in one run,
as medians and p99 with the number of samples behind each (the machines are shared and noisy:
compare the ratios, not the values).

  start        invoke -> the guest's first KVM_RUN (a user VM kept ready)  vs  a bare KVM VM
               created, mapped, given a vCPU and run to its first exit
  echo         one echo invocation end to end (Python API)  vs  posix_spawn of a static echo
               with its output read, and vs gVisor's `runsc do echo`
  teardown     resetting a user VM for its next invocation, and destroying one  vs  closing a
               bare VM
  throughput   sustained echo invocations/s and CPU per invocation: one VMM process on one
               core; one process per core on two (how a host scales: nothing shared per
               invocation); one process with two invoker threads on two cores (what one
               interpreter's lock leaves of the second core); rounds interleaved
  io           a no-op request's round trip, the system VM polling, and through the doorbell
               (the system VM asleep)  vs  a pipe round trip to another process
  memory       MemAvailable per live user VM that has run (parked), in rounds (hold, drop)
  fairness     a quiet tenant's invocation (a kv read through its system VM) alone and beside
               each kind of noisy neighbour, in interleaved rounds; how late the neighbours'
               300 ms deadlines are kept
`nanvix bench --live N` holds N live user VMs over VMM shard processes (the scale test);
`nanvix bench --fairness` runs only the fairness section.
Targets (issues 9 and 11) are printed met or not; they are never asserted by the tests.
"""
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from nanvix.impl.cli import density_inputs, floors as F
from nanvix.impl.cli.common import add_fair_cores, emit, positive, positive_float
from nanvix.impl.cli.run import example

GUESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guests")
TARGETS = {  # figure -> (comparison, bound)
    "start_p50_us": ("<=", 150), "start_over_bare_kvm": ("<=", 0.35),
    "echo_p50_us": ("<=", 400), "echo_over_spawn": ("<=", 0.6),
    "invocations_per_s_2_cores": (">=", 2000),
    "io_polled_us": ("<=", 1), "io_doorbell_us": ("<=", 30),
    "live_user_vms": (">=", 20000), "kib_per_user_vm": ("<=", 600),
    "fairness_p99_ratio": ("<=", 1.5), "deadline_overshoot_ms_p99": ("<=", 5),
}
NEIGHBOURS = {"cpu spin": example("loop.c"), "exit storm": os.path.join(GUESTS, "exitstorm.c"),
              "doorbell storm": os.path.join(GUESTS, "bellstorm.c"), "I/O flood": os.path.join(GUESTS, "ioflood.c")}
NOISY_BUDGET_MS = 300


def register(sub):
    p = sub.add_parser("bench", help="start, invocation, teardown, throughput, I/O, memory and fairness, "
                       "each beside a floor measured in the same run")
    p.add_argument("-n", type=positive, default=100, help="repetitions per interleaved measurement "
                   "(the fairness section takes 18n samples per kind)")
    p.add_argument("--seconds", type=positive_float, default=3.0, help="length of each throughput configuration")
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
    p.add_argument("--no-fairness", action="store_true", help="leave the fairness section out")
    p.add_argument("--json", action="store_true")
    add_fair_cores(p)
    p.set_defaults(func=cmd_bench)


# -- statistics ---------------------------------------------------------------------------------
def pct(xs, q):
    """The q-quantile (0..1) of xs, nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def stats(xs):
    return {"p50": round(statistics.median(xs), 2), "p99": round(pct(xs, 0.99), 2), "n": len(xs)}


def ratio_ci(num, den, q, rounds=400, seed=1):
    """95% bootstrap interval of quantile(num, q) / quantile(den, q): how far the ratio could move
    with other samples of the same sizes."""
    rng = random.Random(seed)
    rs = sorted(pct(rng.choices(num, k=len(num)), q) / pct(rng.choices(den, k=len(den)), q) for _ in range(rounds))
    return [round(rs[int(0.025 * rounds)], 2), round(rs[int(0.975 * rounds) - 1], 2)]


def judge(values):
    out = {}
    for name, (op, bound) in dict(TARGETS, **HTTP_TARGETS).items():
        if name in values and values[name] is not None:
            v = values[name]
            out[name] = {"value": v, "target": "%s %s" % (op, bound), "met": v <= bound if op == "<=" else v >= bound}
    return out


def loadavg():
    return round(os.getloadavg()[0], 2)


# -- throughput: VMM processes pinned to cores --------------------------------------------------
class ThroughputChild:
    """A VMM process pinned to `cpus` (its system VM too: affinity is inherited), with `threads`
    invoker threads; it runs echo invocations for as long as it is told, then reports."""

    def __init__(self, cpus, threads, home):
        arg = json.dumps({"cpus": cpus, "threads": threads, "home": home, "image": example("echo.c")})
        self.proc = subprocess.Popen([sys.executable, "-m", "nanvix.impl.cli.bench", arg], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.cpus, self.threads = cpus, threads
        self.read()

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a throughput process failed (cpus %s)" % self.cpus)
        return json.loads(line)

    def go(self, seconds):
        self.proc.stdin.write("%f\n" % seconds)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(60)


def throughput_child(arg):
    """(In the child.) Pin, build the runtime, warm it, then run a round per line read."""
    from nanvix.impl.control.runtime import Runtime
    a = json.loads(arg)
    os.sched_setaffinity(0, a["cpus"])
    with Runtime(home=a["home"], cores=len(a["cpus"])) as rt:
        img = rt.load(a["image"])
        rt.prepare("tput", img)
        for _ in range(200):
            rt.invoke("tput", img, b"x")
        sysvm = rt.tenants["tput"].sysvm.server_pid
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            seconds = float(line)
            counts = [0] * a["threads"]
            end = time.monotonic() + seconds

            def work(k):
                n = 0
                while time.monotonic() < end:
                    rt.invoke("tput", img, b"hi")
                    n += 1
                counts[k] = n
            c0, s0, t0 = os.times(), F.process_cpu_s(sysvm), time.monotonic()
            ths = [threading.Thread(target=work, args=(k,)) for k in range(a["threads"])]
            for t in ths:
                t.start()
            for t in ths:
                t.join()
            c1, s1, wall = os.times(), F.process_cpu_s(sysvm), time.monotonic() - t0
            cpu = (c1.user - c0.user) + (c1.system - c0.system) + (s1 - s0)
            print(json.dumps({"n": sum(counts), "seconds": wall, "cpu_s": cpu}), flush=True)


def throughput(home, seconds, rounds=3):
    """Invocations/s and CPU per invocation of: one process on one core; one process per core on
    two cores; one process with two threads on two cores. Configurations alternate over rounds
    (a neighbour's load hits them alike); each runs seconds in total."""
    cpus = sorted(os.sched_getaffinity(0))
    confs = {"1_core": [([cpus[0]], 1)]}
    if len(cpus) >= 2:
        confs["2_cores"] = [([cpus[0]], 1), ([cpus[1]], 1)]
        confs["2_threads_1_process"] = [(cpus[:2], 2)]
    kids = {}
    try:
        for name, procs in confs.items():
            kids[name] = [ThroughputChild(c, t, os.path.join(home, "%s-%d" % (name, i))) for i, (c, t) in enumerate(procs)]
        got = {name: {"n": 0, "seconds": 0.0, "cpu_s": 0.0} for name in confs}
        order = list(confs)
        for r in range(rounds):
            for name in order[r % len(order):] + order[:r % len(order)]:
                for k in kids[name]:
                    k.go(seconds / rounds)
                results = [k.read() for k in kids[name]]
                g = got[name]
                g["n"] += sum(x["n"] for x in results)
                g["seconds"] += max(x["seconds"] for x in results)
                g["cpu_s"] += sum(x["cpu_s"] for x in results)
    finally:
        for ks in kids.values():
            for k in ks:
                k.close()
    return {name: {"per_s": round(g["n"] / g["seconds"], 1), "invocations": g["n"],
                   "cpu_us_per_invocation": round(g["cpu_s"] / g["n"] * 1e6, 1) if g["n"] else None}
            for name, g in got.items()}


# -- fairness -----------------------------------------------------------------------------------
def fairness(home, samples, rounds=8, fair_cores=True):
    """A quiet tenant's invocation (one kv read through its system VM), alone and beside each kind
    of noisy neighbour: four of the neighbour's guests at a time, re-invoked as they end, each
    with a 300 ms budget. The kinds (alone included) take turns in `rounds` rounds, so load from
    outside lands on all of them; each gets `samples` samples in all. Also how late each
    neighbour's invocations return past their deadline (set as its user VM starts), and where
    the quiet tenant's time went in the scheduler (Scheduler.latencies)."""
    from nanvix.impl.control.runtime import Runtime
    kinds = ["alone"] + list(NEIGHBOURS)
    lat = {k: [] for k in kinds}
    alone_by_round = []
    late = {k: [] for k in NEIGHBOURS}
    core_wait = {k: [] for k in kinds}   # the quiet tenant's runnable vCPUs' wait for a core (us)
    kick = {k: [] for k in kinds}        # a kick to its core's giving up the vCPU (us)
    boosted = {k: [0, 0] for k in NEIGHBOURS}   # the neighbour's guest CPU ns at host priority, in all
    per_round = -(-samples // rounds)   # at least `samples` in all
    with Runtime(home=home, cores=2, quota_uvms=64, fair_cores=fair_cores) as rt:
        beside = rt.placed
        quiet = rt.load(os.path.join(GUESTS, "kvget.c"))
        images = {k: rt.load(p) for k, p in NEIGHBOURS.items()}
        if rt.invoke("quiet", quiet, b"v")["result"] != "v":
            raise RuntimeError("the quiet tenant's invocation failed")
        rt.system_vm("noisy")  # (started before, not inside, the first round)
        for img in images.values():
            rt.prepare("noisy", img)
        for _ in range(20):
            rt.invoke("quiet", quiet, b"")

        def measure(into, n, kind):
            rt.sched.waits.clear()
            rt.sched.kick_waits.clear()
            for _ in range(n):
                t0 = time.perf_counter_ns()
                r = rt.invoke("quiet", quiet, b"")
                into.append(F.us(t0))
                if r["status"] != "ok":
                    raise RuntimeError("the quiet tenant's invocation failed: %r" % r)
                time.sleep(0.001)
            got = rt.sched.latencies()
            core_wait[kind] += [ns / 1000 for ns in got["runnable_wait_ns"].get("quiet", ())]
            kick[kind] += [ns / 1000 for ns in got["kick_ns"]]

        for r in range(rounds):
            for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                if kind == "alone":
                    alone_by_round.append([])
                    measure(alone_by_round[-1], per_round, kind)
                    lat[kind] += alone_by_round[-1]
                    continue
                stop = threading.Event()

                def noisy(img=images[kind], out=late[kind]):
                    while not stop.is_set():
                        # late: from its deadline (budget after its user VM was made) to its end
                        uvm = rt.begin("noisy", img, b"", NOISY_BUDGET_MS)
                        deadline = uvm.deadline_ns   # (before finish: a recycled VM's is reset)
                        rt.finish(uvm)
                        out.append((time.monotonic_ns() - deadline) / 1e6)
                threads = [threading.Thread(target=noisy) for _ in range(4)]
                cpu0 = rt.sched.latencies()["guest_cpu_ns"].get("noisy", {"boosted": 0, "idle": 0})
                for th in threads:
                    th.start()
                time.sleep(0.1)
                measure(lat[kind], per_round, kind)
                stop.set()
                for th in threads:
                    th.join()
                cpu1 = rt.sched.latencies()["guest_cpu_ns"]["noisy"]
                boosted[kind][0] += cpu1["boosted"] - cpu0["boosted"]
                boosted[kind][1] += cpu1["boosted"] + cpu1["idle"] - cpu0["boosted"] - cpu0["idle"]
    out = {"alone": stats(lat["alone"]), "rounds": rounds, "host_beside_system_vms": beside}
    # where the quiet tenant's time went: waiting for a core, and how long a core took to be given up
    out["scheduler_us"] = {k: {"quiet_core_wait": stats(core_wait[k]) if core_wait[k] else None,
                               "kick": stats(kick[k]) if kick[k] else None} for k in kinds}
    # how much of the neighbour's guest CPU time ran at host priority (on its credit), not SCHED_IDLE
    for k, (b, total) in boosted.items():
        out["scheduler_us"][k]["neighbour_boosted_share"] = round(b / total, 3) if total else None
    # the noise floor of the ratio: the alone samples of odd rounds against those of even rounds
    odd = [x for r in alone_by_round[1::2] for x in r]
    even = [x for r in alone_by_round[0::2] for x in r]
    if odd and even:
        out["alone"]["split_p99_ratio"] = round(pct(odd, 0.99) / pct(even, 0.99), 2)
        out["alone"]["split_p50_ratio"] = round(statistics.median(odd) / statistics.median(even), 2)
    for kind in NEIGHBOURS:
        s = stats(lat[kind])
        s["p50_ratio"] = round(s["p50"] / out["alone"]["p50"], 2)
        s["p99_ratio"] = round(s["p99"] / out["alone"]["p99"], 2)
        s["p99_ratio_ci95"] = ratio_ci(lat[kind], lat["alone"], 0.99)
        lt = late[kind]
        s["deadline_overshoot_ms"] = {"p50": round(statistics.median(lt), 2), "p99": round(pct(lt, 0.99), 2),
                                      "max": round(max(lt), 2), "n": len(lt)} if lt else None
        out[kind] = s
    return out


def fairness_values(f):
    ks = [k for k in NEIGHBOURS if k in f]
    over = [f[k]["deadline_overshoot_ms"]["p99"] for k in ks if f[k].get("deadline_overshoot_ms")]
    return {"fairness_p99_ratio": max(f[k]["p99_ratio"] for k in ks),
            "fairness_alone_split_p99_ratio": f["alone"].get("split_p99_ratio"),
            "fairness_p50_ratio": max(f[k]["p50_ratio"] for k in ks),
            "deadline_overshoot_ms_p99": max(over) if over else None}


def render_fairness(f):
    lines = ["%-20s %9s %9s %6s %9s %9s %13s %18s" % ("quiet tenant beside", "p50 us", "p99 us", "n", "p50 ratio",
                                                    "p99 ratio", "(95% CI)", "late ms p50/p99/max")]
    for kind, s in f.items():
        if not isinstance(s, dict) or "p50" not in s:
            continue
        late = s.get("deadline_overshoot_ms")
        lines.append("%-20s %9.1f %9.1f %6d %9s %9s %13s %18s" % (
            kind, s["p50"], s["p99"], s["n"], s.get("p50_ratio", ""), s.get("p99_ratio", ""),
            "[%s, %s]" % tuple(s["p99_ratio_ci95"]) if "p99_ratio_ci95" in s else "",
            "%.1f/%.1f/%.1f (%d)" % (late["p50"], late["p99"], late["max"], late["n"]) if late else ""))
    lines.append("(p99 of n samples is the %s largest; the interval is a bootstrap of both sample sets; %d "
                 "interleaved rounds)" % (_nth(max(1, round(0.01 * f["alone"]["n"]))), f["rounds"]))
    if "host_beside_system_vms" in f:
        lines.append("(guest code at SCHED_IDLE once its tenant's credit of host priority is spent; the host %s "
                     "the system VMs' cpu cgroup)"
                     % ("beside" if f["host_beside_system_vms"] else "NOT beside"))
    if f.get("scheduler_us"):
        lines.append("%-20s %27s %27s %12s" % ("scheduler (us)", "quiet vCPU's wait p50/p99 (n)",
                                               "kick to core given up p50/p99 (n)", "its boosted"))
        for kind, s in f["scheduler_us"].items():
            cell = lambda x: "%.0f/%.0f (%d)" % (x["p50"], x["p99"], x["n"]) if x else "-"
            share = s.get("neighbour_boosted_share")
            lines.append("%-20s %27s %27s %12s" % (kind, cell(s["quiet_core_wait"]), cell(s["kick"]),
                                                   "%.0f%%" % (100 * share) if share is not None else "-"))
        lines.append("(its boosted: the share of the neighbour's guest CPU time run at host priority, on its "
                     "tenant's credit; the rest ran at SCHED_IDLE)")
    if "split_p99_ratio" in f["alone"]:
        lines.append("(no neighbour at all, odd rounds over even rounds: p50 ratio %s, p99 ratio %s: the noise "
                     "floor of these ratios on this host now)" % (f["alone"]["split_p50_ratio"], f["alone"]["split_p99_ratio"]))
    return "\n".join(lines)


def _nth(k):
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(k, "%dth" % k)


# -- memory -------------------------------------------------------------------------------------
MEM_ROUNDS = 3


def memory_per_vm(rt, park, hold, rounds=MEM_ROUNDS):
    """Host memory per user VM: `rounds` increments of `hold` user VMs, each measured on its own,
    none dropped in between (memory the kernel freed would be reused and look free), reported as
    the median increment. The first increment is measured twice: made ready (never run) and
    then run until parked, which shows what a first run adds. Two measures of each: MemAvailable
    (the whole host: other work on it lands in the figure too) and what the increment charged
    to this process's own memory cgroup (user and kernel memory alike: immune to neighbours)."""
    per, charged, fds = [], [], []
    cg = F.ChargedMemory()
    charging = cg.available

    def look():
        return F.mem_available_kib(), cg.usage_kib() if cg.available else 0, len(os.listdir("/proc/self/fd"))
    try:
        time.sleep(0.3)
        a0, c0, f0 = look()
        k0 = F.meminfo_kib()
        ready = [rt.create_user_vm("bench-mem", park, b"") for _ in range(hold)]
        time.sleep(0.3)
        a1, c1, _ = look()
        k1 = F.meminfo_kib()
        for u in ready:
            rt.start(u)
        rt.held.extend(ready)
        while any(u.state in ("created", "runnable", "running") for u in ready):
            time.sleep(0.01)
        time.sleep(0.5)
        a2, c2, f2 = look()
        split = {"made ready": F.memory_split(k0, k1, hold), "first run": F.memory_split(k1, F.meminfo_kib(), hold)}
        ready_kib = {"kib_per_vm": round((a0 - a1) / hold, 1), "charged_kib_per_vm": round((c1 - c0) / hold, 1) if cg.available else None}
        per.append((a0 - a2) / hold)
        charged.append((c2 - c0) / hold)
        fds.append((f2 - f0) / hold)
        for _ in range(rounds - 1):
            time.sleep(0.3)
            a0, c0, f0 = look()
            rt.hold("bench-mem", park, hold, per_shard=rounds * hold + 1)
            time.sleep(0.5)
            a1, c1, f1 = look()
            per.append((a0 - a1) / hold)
            charged.append((c1 - c0) / hold)
            fds.append((f1 - f0) / hold)
        rt.drop_held()
    finally:
        cg.close()
    return {"kib_per_vm": round(statistics.median(per), 1), "rounds_kib": [round(x, 1) for x in per],
            "charged_kib_per_vm": round(statistics.median(charged), 1) if charging else None,
            "rounds_charged_kib": [round(x, 1) for x in charged] if charging else [],
            "ready_never_run": ready_kib, "split_kib_per_vm": split,
            "fds_per_vm": round(statistics.median(fds), 2), "held": hold * rounds}


# -- the bench ----------------------------------------------------------------------------------
def cmd_bench(args):
    """Every section runs as the `nanvix` commands run a host: beside the system VMs' cpu cgroup
    (this process and the VMM processes it starts, which inherit its group), unless
    --no-fair-cores."""
    from nanvix.impl.sysvm.jail import place_host, unplace_host
    placed = args.fair_cores and place_host() is not None
    try:
        return bench_sections(args)
    finally:
        if placed:
            unplace_host()


def bench_sections(args):
    if args.live:
        return cmd_live(args)
    if args.http:
        figures, values, skipped = http_rows(args.n, args.seconds)
        emit({"n": args.n, "figures": figures, "values": values, "targets": judge(values), "skipped": skipped,
              "unit": "us", "note": "the machine is shared: compare the ratios"}, args.json, render)
        return 0
    if args.runtimes:
        return cmd_runtimes(args)
    # 18n: its p99 is then the 18th largest sample, not the 6th, whose spread from run to run
    # (a 95% interval of [0.94, 2.41] about a ratio of 1.78 at 600 samples) decided the verdict
    fair_n = max(20, 18 * args.n)
    if args.fairness:
        load0 = loadavg()
        with tempfile.TemporaryDirectory(prefix="nanvix-fair-") as home:
            f = fairness(home, fair_n, fair_cores=args.fair_cores)
        values = fairness_values(f)
        r = {"fairness": f, "values": values, "targets": judge(values),
             "machine": {"cpus": os.cpu_count(), "load_before": load0, "load_after": loadavg()}}
        emit(r, args.json, lambda r: render_fairness(r["fairness"]) + "\n\n" + render_values(r))
        return 0
    from nanvix.impl.control.host import Host
    med = statistics.median
    load0 = loadavg()
    with tempfile.TemporaryDirectory(prefix="nanvix-bench-") as home:
        spawn_path = F.static_echo(home)
        held = MEM_ROUNDS * args.hold
        with Host(home=home, cores=2, quota_uvms=held + 64, quota_pages=held + 256,
                  arena_slots=held + 64) as host:
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
            # I/O round trips beside the same guest against the least a system VM can be
            ping = rt.load(example("ping.c"))
            polled, bell, floor_polled, floor_bell = io_round_trips(rt, ping, home, args.n)
            pipe = F.Pipe()
            pipe_rtt = [pipe.round_trip_ns() / 1000 for _ in range(args.n * 20)]
            pipe.close()
            mem = memory_per_vm(rt, rt.load(os.path.join(GUESTS, "park.c")), args.hold)
        tput = throughput(os.path.join(home, "tput"), args.seconds)
        fair = None if args.no_fairness else fairness(os.path.join(home, "fair"), fair_n,
                                                             fair_cores=args.fair_cores)
    figures = {
        "start (invoke -> first KVM_RUN)": dict(stats(starts), floor="bare KVM create + run to first exit"),
        "floor: bare KVM create + run to first exit": stats(floor_start),
        "echo invocation, end to end": dict(stats(echo), floor="posix_spawn of a static echo"),
        "floor: posix_spawn of a static echo": stats(spawn),
        "teardown: reset for the next invocation": dict(stats(resets), floor="bare VM close"),
        "teardown: destroy (VM closed)": dict(stats(destroys), floor="bare VM close"),
        "floor: bare VM close": stats(floor_close),
        "I/O round trip, polled": dict(io_figure(polled), floor="the same guest, a C server polling"),
        "floor: polled round trip to a C server": io_figure(floor_polled),
        "I/O round trip, doorbell": dict(io_figure(bell), floor="the same guest, a C server asleep on the doorbell"),
        "floor: doorbell round trip to a C server": io_figure(floor_bell),
        "floor: pipe round trip": stats(pipe_rtt),
    }
    if gvisor:
        figures["peer: runsc do echo (gVisor, ptrace)"] = stats(gvisor)
    t1 = tput["1_core"]
    t2 = tput.get("2_cores", {})
    t2t = tput.get("2_threads_1_process", {})
    values = {
        "start_p50_us": figures["start (invoke -> first KVM_RUN)"]["p50"],
        "start_over_bare_kvm": round(med(starts) / med(floor_start), 3),
        "echo_p50_us": figures["echo invocation, end to end"]["p50"],
        "echo_over_spawn": round(med(echo) / med(spawn), 3),
        "echo_over_runsc": round(med(echo) / med(gvisor), 4) if gvisor else None,
        "invocations_per_s_1_core": t1["per_s"], "invocations_per_s_2_cores": t2.get("per_s"),
        "invocations_per_s_2_threads_1_process": t2t.get("per_s"),
        "second_core_speedup": round(t2["per_s"] / t1["per_s"], 2) if t2 else None,
        "second_thread_speedup": round(t2t["per_s"] / t1["per_s"], 2) if t2t else None,
        "cpu_us_per_invocation": t1["cpu_us_per_invocation"],
        "io_polled_us": round(polled["p50_ns"] / 1000, 3), "io_polled_p99_us": round(polled["p99_ns"] / 1000, 3),
        "io_doorbell_us": round(bell["p50_ns"] / 1000, 3), "io_doorbell_p99_us": round(bell["p99_ns"] / 1000, 3),
        "io_polled_over_pipe": round(polled["p50_ns"] / 1000 / med(pipe_rtt), 3),
        "io_doorbell_over_pipe": round(bell["p50_ns"] / 1000 / med(pipe_rtt), 3),
        "io_polled_over_c_server": round(polled["p50_ns"] / floor_polled["p50_ns"], 3),
        "io_doorbell_over_c_server": round(bell["p50_ns"] / floor_bell["p50_ns"], 3),
        "io_doorbell_c_server_us": round(floor_bell["p50_ns"] / 1000, 3),
        "kib_per_user_vm": mem["kib_per_vm"], "charged_kib_per_user_vm": mem["charged_kib_per_vm"],
        "charged_kib_per_ready_user_vm": mem["ready_never_run"]["charged_kib_per_vm"],
        "fds_per_user_vm": mem["fds_per_vm"],
        "reset_us": round(med(resets), 1), "destroy_us": round(med(destroys), 1),
        "reset_over_bare_close": round(med(resets) / med(floor_close), 3),
    }
    if fair:
        values.update(fairness_values(fair))
    result = {"n": args.n, "figures": figures, "values": values, "targets": judge(values),
              "measurements": {k: v["p50"] for k, v in figures.items()},
              "ratios": {k: v for k, v in values.items() if ("_over_" in k or k.endswith(("speedup", "ratio"))) and v},
              "throughput": tput, "memory": mem, "fairness": fair, "skipped": skipped, "unit": "us",
              "machine": {"cpus": os.cpu_count(), "load_before": load0, "load_after": loadavg()}}
    result["density_inputs"] = density_inputs.measure(small=args.n < 100, values=values)  # nanvix density --inputs
    emit(result, args.json, render)
    return 0


def io_round_trips(rt, ping, cache, n, chunks=4):
    """The ping guest's no-op round trips, polled and through the doorbell (300 us apart: the
    server sleeps between them), against the tenant's system VM and against the doorbell floor
    (a C server), in alternating chunks. Per kind: the median of the chunks' p50 and p99, the
    samples of all chunks, the best."""
    floor = F.DoorbellFloor(rt.kvm, ping, cache)
    runs = {k: [] for k in ("polled", "bell", "floor_polled", "floor_bell")}
    try:
        rt.invoke("bench", ping, b"100")  # warm
        for _ in range(chunks):
            for kind, arg in (("polled", b"%d" % max(50, n * 5)), ("bell", b"%d 300" % max(10, n // 2))):
                runs[kind].append(json.loads(rt.invoke("bench", ping, arg)["result"]))
                runs["floor_" + kind].append(floor.ping(arg))
    finally:
        floor.close()
    out = []
    for kind in ("polled", "bell", "floor_polled", "floor_bell"):
        rs = runs[kind]
        out.append({"p50_ns": statistics.median(r["p50_ns"] for r in rs), "p99_ns": statistics.median(r["p99_ns"] for r in rs),
                    "sampled": sum(r["sampled"] for r in rs), "mean_ns": statistics.mean(r["mean_ns"] for r in rs),
                    "best_ns": min(r["best_ns"] for r in rs)})
    return out


def io_figure(r):
    return {"p50": r["p50_ns"] / 1000, "p99": r["p99_ns"] / 1000, "n": r["sampled"],
            "mean": round(r["mean_ns"] / 1000, 3), "best": r["best_ns"] / 1000}


def render_values(r):
    lines = []
    for k, v in r["values"].items():
        t = r["targets"].get(k)
        lines.append("%-46s %10s %s" % (k, v, "" if t is None else "target %s: %s" % (t["target"], "met" if t["met"] else "NOT met")))
    return "\n".join(lines)


def render(r):
    lines = ["%-46s %10s %10s %7s" % ("figure (us)", "p50", "p99", "n")]
    for name, f in r["figures"].items():
        lines.append("%-46s %10.2f %10.2f %7d" % (name, f["p50"], f["p99"], f["n"]))
    if r.get("throughput"):   # (the sections a --http run leaves out)
        lines.append("")
        lines.append("%-46s %10s %10s" % ("throughput (echo)", "per s", "CPU us/inv"))
        for name, t in r["throughput"].items():
            lines.append("%-46s %10s %10s" % (name.replace("_", " "), t["per_s"], t["cpu_us_per_invocation"]))
    if r.get("memory"):
        m = r["memory"]
        lines.append("memory per parked user VM: %s KiB of MemAvailable (rounds %s); %s KiB charged to "
                     "the VMM's own cgroup (rounds %s); %s fds" % (m["kib_per_vm"], m["rounds_kib"],
                                                                  m["charged_kib_per_vm"], m["rounds_charged_kib"], m["fds_per_vm"]))
        lines.append("memory per ready user VM (never run): %s KiB of MemAvailable; %s KiB charged" % (
            m["ready_never_run"]["kib_per_vm"], m["ready_never_run"]["charged_kib_per_vm"]))
        for step, split in m.get("split_kib_per_vm", {}).items():
            lines.append("  %s, KiB per VM by /proc/meminfo: %s" % (step, ", ".join("%s %s" % kv for kv in split.items())))
    if r.get("fairness"):
        lines += ["", render_fairness(r["fairness"])]
    lines += ["", render_values(r)]
    for k, why in r["skipped"].items():
        lines.append("skipped %s: %s" % (k, why))
    if r.get("machine"):
        m = r["machine"]
        lines.append("(%d CPUs; load average %s before, %s after: other work on the host skews values, "
                     "less so the ratios)" % (m["cpus"], m["load_before"], m["load_after"]))
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
            # the 64-client run is of the host's capacity, not of the default per-tenant limit (32
            # invocations at once: beyond it the door answers 429)
            Client(url, admin).call("PUT", "/v1/tenants/bench/limits", {"invocations": 128, "user_vms": 128})
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


if __name__ == "__main__":  # a throughput process (see ThroughputChild)
    throughput_child(sys.argv[1])
