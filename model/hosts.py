"""The density model's engine: a workload's invocations turned into what each design holds over
time, and the hosts that takes.

Time is cut into bins of dt seconds. Per application a bin holds its running invocations (the
fraction of the bin each one runs: a memory-time integral, exact for means) and its arrivals. From
them, per design and per bin:
- instances: the running invocations (a design that keeps nothing), or, for a keep-alive design,
  the most instances the application needed at once (rounded up) in the last keep-alive window
  (exact for an instance pool that reuses its most recently used instance first);
- snapshots resident: per function, while it was invoked within the snapshot's residency window
  (for ever: every function of the workload, deployed before the run), or while an instance lives;
- tenant processes resident (nanvix's system VMs) likewise, per tenant;
- memory: instances x (overhead + the application's private share) + snapshots x (overhead + the
  application's shared share + ready instances) + tenant processes;
- CPU: a share of every running invocation's time (the same work in every design) plus each
  design's start costs (per invocation, per new instance, per snapshot rebuilt, per tenant process);
- live instances, against the design's ceiling per host.
A host is `host_gib` of memory and `host_cores` cores; per minute the hosts a design needs are the
most any resource needs in that minute's worst bin. Packing is fluid (no fragmentation), which
favours designs with large instances.
"""
import math

import numpy as np

MB_PER_MIB = 1.048576
DTS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
MAX_CELLS = 1_000_000   # (apps x bins: keeps a full run and its sensitivity table within seconds)


def window_max(x, length):
    """Per row, the max over the trailing `length` bins (a sparse table: log2(length) passes)."""
    if length <= 1:
        return x
    p, span = x, 1
    while 2 * span <= length:
        q = p.copy()
        np.maximum(p[:, span:], p[:, :-span], out=q[:, span:])
        p, span = q, span * 2
    rest = length - span
    if rest:
        q = p.copy()
        np.maximum(p[:, rest:], p[:, :-rest], out=q[:, rest:])
        p = q
    return p


class Grid:
    """A workload binned once; every design and every sensitivity case is evaluated on it."""

    def __init__(self, w, dt=None):
        self.w = w
        minutes = int(w.seconds // 60)
        if dt is None:
            dt = next((d for d in DTS if w.apps * minutes * 60 // d <= MAX_CELLS), 60)
        if dt not in DTS:
            raise ValueError("dt must divide a minute: one of %s" % (DTS,))
        self.dt, self.per_min = dt, 60 // dt
        self.bins = minutes * self.per_min
        self.first = int(math.ceil(w.warmup / 60.0)) * self.per_min   # the first counted bin
        if self.first >= self.bins:
            raise ValueError("the workload (%.0f s) ends within its warm-up (%.0f s)" % (w.seconds, w.warmup))
        end = self.bins * dt
        keep = w.start < end
        s, e, a = w.start[keep], np.minimum(w.start[keep] + w.duration[keep], end), w.app[keep]
        self.running = self._occupancy(s, e, a)
        self.arrivals = np.bincount(a * self.bins + (s // dt).astype(np.int64),
                                    minlength=w.apps * self.bins).reshape(w.apps, self.bins).astype(np.float32)
        self.memory_mib = (w.memory_mb / MB_PER_MIB).astype(np.float32)
        self.cache = {}

    def _occupancy(self, s, e, a):
        """Per application and bin, the invocations running, as the fraction of the bin each runs."""
        n, dt, bins = self.w.apps, self.dt, self.bins
        i0, i1 = (s // dt).astype(np.int64), np.minimum((e // dt).astype(np.int64), bins - 1)
        i1 = np.maximum(i0, i1)
        same = i0 == i1
        flat = np.zeros(n * bins + 1, dtype=np.float64)
        base = a * bins
        # within one bin
        np.add.at(flat, base[same] + i0[same], (e[same] - s[same]) / dt)
        d = ~same
        # the partial first and last bins, and a +1/-1 difference over the full ones between
        np.add.at(flat, base[d] + i0[d], (i0[d] + 1) - s[d] / dt)
        np.add.at(flat, base[d] + i1[d], np.minimum(e[d] / dt - i1[d], 1.0))
        diff = np.zeros(n * bins + 1, dtype=np.float64)
        np.add.at(diff, base[d] + i0[d] + 1, 1.0)
        np.add.at(diff, base[d] + i1[d], -1.0)
        full = np.cumsum(diff[:-1].reshape(n, bins), axis=1)
        return (flat[:-1].reshape(n, bins) + full).astype(np.float32)

    def bins_of(self, seconds):
        return int(round(seconds / self.dt))

    def _cached(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def instances(self, keep_s):
        """Instances of a keep-alive design (the most needed at once within the keep window), the
        instances created per bin, and where at least one lives."""
        k = self.bins_of(keep_s)

        def make():
            inst = window_max(np.ceil(self.running - 1e-6), k + 1)
            return inst, rises(inst), (inst > 0).astype(np.float32)
        return self._cached(("instances", k), make)

    def resident(self, keep_s):
        """1 where an application was invoked within the last keep_s, and where that begins
        (None for ever: always resident, built before the run)."""
        if math.isinf(keep_s):
            return None
        k = self.bins_of(keep_s)

        def make():
            res = window_max((self.running > 0).astype(np.float32), k + 1)
            return res, rises(res)
        return self._cached(("resident", k), make)

    def tenants_resident(self, keep_s, tenant):
        """Per bin, tenants with an application invoked within keep_s (for ever: every tenant),
        and tenant processes started."""
        present = np.unique(tenant[tenant >= 0])
        if math.isinf(keep_s):
            return np.full(self.bins, float(len(present)), dtype=np.float32), np.zeros(self.bins, dtype=np.float32)

        def make():
            res = self.resident(keep_s)[0]
            per = np.zeros((int(tenant.max()) + 1, self.bins), dtype=np.float32)
            rows = tenant >= 0
            np.maximum.at(per, tenant[rows], res[rows])
            return per.sum(axis=0), rises(per).sum(axis=0)
        return self._cached(("tenants", self.bins_of(keep_s), tenant.tobytes()), make)


def rises(x):
    """Per row and bin, how much x went up since the bin before (from 0 before the first)."""
    out = np.empty_like(x)
    out[:, 0] = x[:, 0]
    np.subtract(x[:, 1:], x[:, :-1], out=out[:, 1:])
    return np.maximum(out, 0, out=out)


def evaluate(grid, design, g, mask=None, tenant=None, subset="all"):
    """Demand per bin of one design (memory MiB, cores, live instances), and its starts. g: the
    workload-wide assumptions (dirty_fraction, cpu_share, host_gib, host_cores); mask: 1 per
    application kept (a subset of the workload, named `subset`), tenant: a regrouping of
    applications."""
    f32 = np.float32
    m = grid.memory_mib
    keep = np.ones(len(m), dtype=f32) if mask is None else mask.astype(f32)
    tenant = grid.w.tenant if tenant is None else tenant
    priv = f32(g["dirty_fraction"] if design.shared else 1.0)

    def total(name, x):   # the kept applications' sum per bin (once per matrix and subset)
        return grid._cached(("total", name, subset), lambda: keep @ x)
    running = total("running", grid.running)
    arrivals = total("arrivals", grid.arrivals)
    created = None
    if design.per_invocation:
        inst, inst_name = grid.running, "running"
    else:
        inst, rose, alive = grid.instances(design.keep_s)
        inst_name = "instances %d" % grid.bins_of(design.keep_s)
        created = total("rose " + inst_name, rose)
    mem = (((f32(design.instance_mib) + priv * m) * keep).astype(f32)) @ inst
    live = total(inst_name, inst)
    rebuilt = np.zeros(grid.bins, dtype=f32)
    if design.shared or design.pool:
        per_tpl = ((f32(design.template_mib) + (1 - priv) * m + f32(design.pool * design.ready_mib)) * keep).astype(f32)
        res = alive if design.template_keep_s is None else grid.resident(design.template_keep_s)
        if res is None:                              # for ever: every function, all the time
            mem = mem + per_tpl.sum()
            live = live + design.pool * keep.sum()
        elif design.template_keep_s is None:         # a snapshot lives while an instance does
            mem = mem + per_tpl @ res
        else:
            name = "resident %d" % grid.bins_of(design.template_keep_s)
            mem = mem + per_tpl @ res[0]
            live = live + design.pool * total(name, res[0])
            rebuilt = total("rose " + name, res[1])
    tenants_started = np.zeros(grid.bins, dtype=f32)
    if design.tenant_mib:
        t = np.where(keep > 0, tenant, -1)
        count, tenants_started = grid.tenants_resident(design.tenant_keep_s, t)
        mem = mem + design.tenant_mib * count
    cpu_ms = arrivals * design.invoke_cpu_ms + rebuilt * design.template_cpu_ms + tenants_started * design.tenant_cpu_ms
    if design.invoke_cpu_per_dirty_mb:
        cpu_ms = cpu_ms + ((f32(g["dirty_fraction"]) * m * keep).astype(f32) @ grid.arrivals) * design.invoke_cpu_per_dirty_mb
    if created is not None:
        cpu_ms = cpu_ms + created * design.cold_cpu_ms
    cores = g["cpu_share"] * running + cpu_ms / 1000.0 / grid.dt
    counted = slice(grid.first, None)
    return {"mem_mib": mem[counted], "cores": cores[counted], "live": live[counted],
            "invocations": float(arrivals[counted].sum()),
            "new_instances": float(created[counted].sum()) if created is not None else None,
            "snapshots_rebuilt": float(rebuilt[counted].sum()),
            "tenant_processes_started": float(tenants_started[counted].sum())}


def hosts(grid, demand, design, g):
    """Hosts per minute: the worst bin of the minute, for the resource that needs the most."""
    need = {"memory": demand["mem_mib"] / (g["host_gib"] * 1024.0), "cpu": demand["cores"] / g["host_cores"]}
    if design.live_ceiling:
        need["live VMs"] = demand["live"] / float(design.live_ceiling)
    names = list(need)
    per_min = np.stack([need[k].reshape(-1, grid.per_min).max(axis=1) for k in names])
    frac = per_min.max(axis=0)
    whole = np.ceil(frac - 1e-9)
    binding = np.bincount(per_min.argmax(axis=0), minlength=len(names))
    return {"hosts_per_minute": whole, "host_equivalents_per_minute": frac,
            "gib_per_minute": demand["mem_mib"].reshape(-1, grid.per_min).max(axis=1) / 1024.0,
            "binding": names[int(binding.argmax())],
            "binding_minutes": {n: int(c) for n, c in zip(names, binding) if c}}


def summarise(grid, design, g, demand, h):
    mem = demand["mem_mib"]
    inv = demand["invocations"]
    r = {"mean_hosts": round(float(h["hosts_per_minute"].mean()), 2),
         "peak_hosts": int(h["hosts_per_minute"].max()),
         "host_equivalents": round(float(h["host_equivalents_per_minute"].mean()), 3),
         "mean_gib": round(float(mem.mean()) / 1024.0, 1), "peak_gib": round(float(mem.max()) / 1024.0, 1),
         "mean_cores": round(float(demand["cores"].mean()), 1), "peak_live": int(math.ceil(float(demand["live"].max()))),
         "binding": h["binding"]}
    if demand["new_instances"] is not None:
        r["new_instances"] = int(round(demand["new_instances"]))
        r["cold_start_fraction"] = round(min(1.0, demand["new_instances"] / inv), 4) if inv else 0.0
    if demand["snapshots_rebuilt"]:
        r["snapshots_rebuilt"] = int(round(demand["snapshots_rebuilt"]))
    if demand["tenant_processes_started"]:
        r["tenant_processes_started"] = int(round(demand["tenant_processes_started"]))
    return r
