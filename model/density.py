"""The deployment-density model: how many hosts a serverless workload needs under each design.

A calibrated generator stands in for the Azure Functions 2019 trace (which cannot be downloaded
here), from its published fits ("Serverless in the Wild", ATC'20): execution time log-normal
(mu = -0.38, sigma = 2.36, seconds); application memory Burr XII (c = 11.652, k = 0.221,
lambda = 107.083 MB); invocation rates heavy-tailed (45% of applications at most once an hour,
81% at most once a minute); bursty arrivals.

Designs differ in what stays resident:
- keep-alive designs (a microVM or container per application instance) keep an instance, with
  its whole application memory, for a keep-alive window after every invocation, so a rarely
  invoked application holds memory almost all the time;
- nanvix keeps only each tenant's system VM resident; a user VM exists only while an invocation
  runs (its start is ~1 ms), so an application holds its memory only while it executes.
Hosts are packed by memory (the binding resource in the paper). The per-instance overheads are
parameters: nanvix's default is what `nanvix bench` measures on this machine.
"""
import bisect
import heapq
import json
import math
import random
import sys

GIB = 1024.0  # MiB


def burr_xii(rng, c=11.652, k=0.221, lam=107.083):
    """Application memory in MB (inverse CDF of Burr XII)."""
    u = rng.random()
    return lam * ((1.0 - u) ** (-1.0 / k) - 1.0) ** (1.0 / c)


def exec_seconds(rng, mu=-0.38, sigma=2.36):
    return math.exp(rng.gauss(mu, sigma))


def app_rate_per_s(rng):
    """Invocations per second: a log-uniform mixture matching the published CDF points
    (45% <= 1/h, 81% <= 1/min; the busiest apps take almost all invocations)."""
    u = rng.random()
    if u < 0.45:
        per_hour = 10 ** rng.uniform(-1.0, 0.0)        # 0.1 .. 1 per hour
    elif u < 0.81:
        per_hour = 10 ** rng.uniform(0.0, math.log10(60))  # 1 per hour .. 1 per minute
    else:
        per_hour = 60 * 10 ** rng.uniform(0.0, 3.0)     # 1 per minute .. 1000 per minute
    return per_hour / 3600.0


def workload(apps, seconds, seed):
    """[(arrival, duration, app)] over `seconds`, plus the apps' (memory MB, tenant)."""
    rng = random.Random(seed)
    meta, events = [], []
    for a in range(apps):
        mem = min(burr_xii(rng), 4096.0)
        median_exec = exec_seconds(rng)
        rate = app_rate_per_s(rng)
        meta.append((mem, a // 4))                       # 4 applications per tenant
        t = rng.expovariate(rate)  # rate > 0: app_rate_per_s draws from 0.1/hour up
        while t < seconds:
            burst = 1 + (rng.random() < 0.1) * rng.randint(1, 8)  # bursty: 10% come in bunches
            for _ in range(burst):
                dur = min(median_exec * math.exp(rng.gauss(0, 0.5)), 600.0)
                events.append((t, dur, a))
            t += rng.expovariate(rate)
    events.sort()
    return meta, events


def simulate(meta, events, seconds, design):
    """Memory in use over time (sampled each minute); returns peak and mean hosts."""
    keep = design["keep_alive_s"]
    overhead = design["instance_overhead_mib"]
    per_tenant = design["tenant_overhead_mib"]
    host = design["host_gib"] * GIB
    deltas = []  # (time, +/- MiB)
    if keep is None:  # nanvix: memory held during execution only; a system VM per active tenant
        for t, dur, a in events:
            deltas += [(t, meta[a][0] + overhead), (t + dur, -(meta[a][0] + overhead))]
        tenants = {meta[a][1] for _, _, a in events}
        base = per_tenant * len(tenants)
    else:  # keep-alive instances: each busy-or-warm instance holds its app's memory
        busy = {}  # app -> heap of instance free times (an instance serves one invocation at a time)
        for t, dur, a in events:
            h = busy.setdefault(a, [])
            while h and h[0] + keep < t:  # instances idle past keep-alive were torn down
                deltas.append((heapq.heappop(h) + keep, -(meta[a][0] + overhead)))
            if h and h[0] <= t:
                heapq.heapreplace(h, t + dur)
            else:
                heapq.heappush(h, t + dur)
                deltas.append((t, meta[a][0] + overhead))
        for a, h in busy.items():
            for free_at in h:
                deltas.append((free_at + keep, -(meta[a][0] + overhead)))
        base = 0.0
    deltas.sort()
    times = [d[0] for d in deltas]
    cum, level = [], 0.0
    for _, d in deltas:
        level += d
        cum.append(level)
    samples = []
    for minute in range(int(seconds // 60) + 1):
        i = bisect.bisect_right(times, minute * 60.0) - 1
        samples.append(base + (cum[i] if i >= 0 else 0.0))
    hosts = [math.ceil(m / host) if m > 0 else 0 for m in samples]
    return {"peak_hosts": max(hosts), "mean_hosts": round(sum(hosts) / len(hosts), 2),
            "peak_gib": round(max(samples) / GIB, 1), "mean_gib": round(sum(samples) / len(samples) / GIB, 1)}


DESIGNS = {
    # keep-alive window 10 min (AWS-like); per-instance overheads from the published figures
    "firecracker": {"keep_alive_s": 600, "instance_overhead_mib": 5.0, "tenant_overhead_mib": 0},
    "gvisor": {"keep_alive_s": 600, "instance_overhead_mib": 20.0, "tenant_overhead_mib": 0},
    # nanvix: a user VM lives only while it runs; ~0.26 MiB host memory per user VM (nanvix bench)
    # and a system VM per tenant (a Python process here, ~30 MiB resident)
    "nanvix": {"keep_alive_s": None, "instance_overhead_mib": 0.26, "tenant_overhead_mib": 30.0},
}


def run(apps=500, hours=1.0, seed=1, host_gib=256, instance_overhead_mib=None):
    meta, events = workload(apps, hours * 3600, seed)
    out = {"apps": apps, "tenants": len({m[1] for m in meta}), "hours": hours, "seed": seed,
           "invocations": len(events), "host_gib": host_gib, "designs": {}}
    for name, d in DESIGNS.items():
        d = dict(d, host_gib=host_gib)
        if name == "nanvix" and instance_overhead_mib is not None:
            d["instance_overhead_mib"] = instance_overhead_mib
        out["designs"][name] = dict(simulate(meta, events, hours * 3600, d), **{
            k: v for k, v in d.items() if k != "host_gib"})
    nx = out["designs"]["nanvix"]["mean_hosts"] or 1
    out["hosts_saved_vs"] = {n: round(r["mean_hosts"] / nx, 1) for n, r in out["designs"].items() if n != "nanvix"}
    return out


def register(sub):
    p = sub.add_parser("density", help="deployment-density model: hosts needed per design")
    from nanvix.impl.cli.common import positive, positive_float
    p.add_argument("--apps", type=positive, default=500)
    p.add_argument("--hours", type=positive_float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--host-gib", type=positive, default=256)
    p.add_argument("--overhead-mib", type=positive_float, default=None,
                   help="nanvix host memory per user VM (default: the figure nanvix bench measured)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_density)


def cmd_density(args):
    r = run(args.apps, args.hours, args.seed, args.host_gib, args.overhead_mib)
    if args.json:
        print(json.dumps(r))
        return 0
    print("%d applications (%d tenants), %.1f h, %d invocations, %d GiB hosts"
          % (r["apps"], r["tenants"], r["hours"], r["invocations"], r["host_gib"]))
    print("%-12s %10s %10s %10s %10s" % ("design", "mean hosts", "peak hosts", "mean GiB", "peak GiB"))
    for n, d in r["designs"].items():
        print("%-12s %10s %10s %10s %10s" % (n, d["mean_hosts"], d["peak_hosts"], d["mean_gib"], d["peak_gib"]))
    print("mean hosts relative to nanvix: %s" % r["hosts_saved_vs"])
    sys.stdout.flush()
    return 0
