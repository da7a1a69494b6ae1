"""Workloads for the density model: a generator calibrated on the published fits of the Azure
Functions 2019 trace, and a reader of that trace's own CSV files.

Both give a Workload: per application its memory (MB) and tenant, and every invocation as (start
second, duration seconds, application). An application is the unit of memory and keep-alive, as in
Azure Functions (its functions run in one instance); its owner is its tenant.

The generator follows "Serverless in the Wild" (Shahrad et al., USENIX ATC'20), REFERENCE.md
section 4: application memory Burr XII (c = 11.652, k = 0.221, lambda = 107.083 MB); a function's
mean execution time log-normal (mu = -0.38, sigma = 2.36, natural log of seconds); invocation rates
heavy-tailed (45% of applications at most once an hour, 81% at most once a minute). What the fits do
not give is assumed and said so: each invocation varies log-normally (sigma 0.5) around its
application's mean; 10% of arrivals come in bursts of 2-9; four applications per tenant.

The trace (https://github.com/Azure/AzurePublicDataset, AzureFunctionsDataset2019.md) is one file
per day of each kind:
  invocations_per_function_md.anon.dNN.csv  HashOwner,HashApp,HashFunction,Trigger,1,...,1440
                                            (invocations of the function in each minute)
  function_durations_percentiles.anon.dNN.csv  HashOwner,HashApp,HashFunction,Average,Count,
        Minimum,Maximum,percentile_Average_{0,1,25,50,75,99,100}  (milliseconds)
  app_memory_percentiles.anon.dNN.csv  HashOwner,HashApp,SampleCount,AverageAllocatedMb,
        AverageAllocatedMb_pct{1,5,25,50,75,95,99,100}
It cannot be downloaded here; read_azure() is tested on small files in that format.
"""
import csv
import math
import os
import random

import numpy as np

BURR = {"c": 11.652, "k": 0.221, "lam": 107.083}   # application memory, MB
EXEC = {"mu": -0.38, "sigma": 2.36}                 # mean execution time, ln(seconds)
MAX_MEMORY_MB = 4096.0      # Azure Functions' largest instance at the time (a cap on the Burr tail)
MAX_DURATION_S = 600.0      # the consumption plan's longest execution then
APPS_PER_TENANT = 4         # assumed: the fits say nothing about owners


class Workload:
    """apps: memory_mb and tenant (ints 0..tenants-1) per application, and names; invocations as
    three arrays of equal length (start, duration, app), sorted by start; over `seconds`, of which
    the first `warmup` only fill the keep-alive windows (not counted in any figure)."""

    def __init__(self, memory_mb, tenant, start, duration, app, seconds, warmup, source, names=None, notes=()):
        self.memory_mb = np.asarray(memory_mb, dtype=np.float64)
        self.tenant = np.asarray(tenant, dtype=np.int64)
        order = np.argsort(start, kind="stable")
        self.start = np.asarray(start, dtype=np.float64)[order]
        self.duration = np.asarray(duration, dtype=np.float64)[order]
        self.app = np.asarray(app, dtype=np.int64)[order]
        self.seconds, self.warmup = float(seconds), float(warmup)
        self.source = source
        self.names = names
        self.notes = list(notes)

    @property
    def apps(self):
        return len(self.memory_mb)

    @property
    def tenants(self):
        return len(np.unique(self.tenant)) if self.apps else 0

    def counted(self):
        """Invocations that start after the warm-up."""
        return int(np.count_nonzero(self.start >= self.warmup))


# -- the published fits (inverse CDFs, one draw each) -------------------------------------------

def burr_xii(rng, c=BURR["c"], k=BURR["k"], lam=BURR["lam"]):
    """Application memory in MB."""
    u = rng.random()
    return lam * ((1.0 - u) ** (-1.0 / k) - 1.0) ** (1.0 / c)


def exec_seconds(rng, mu=EXEC["mu"], sigma=EXEC["sigma"]):
    """A function's mean execution time in seconds."""
    return math.exp(rng.gauss(mu, sigma))


def app_rate_per_s(rng):
    """Invocations per second: a log-uniform mixture through the published CDF points (45% of
    applications at most once an hour, 81% at most once a minute; the busiest take almost all)."""
    u = rng.random()
    if u < 0.45:
        per_hour = 10 ** rng.uniform(-1.0, 0.0)             # 0.1 .. 1 per hour
    elif u < 0.81:
        per_hour = 10 ** rng.uniform(0.0, math.log10(60))   # 1 per hour .. 1 per minute
    else:
        per_hour = 60 * 10 ** rng.uniform(0.0, 3.0)         # 1 per minute .. 1000 per minute
    return per_hour / 3600.0


def generate(apps=500, hours=1.0, seed=1, warmup_s=1200.0, apps_per_tenant=APPS_PER_TENANT):
    """A calibrated workload of `apps` applications over `hours` (after `warmup_s` of warm-up).
    Deterministic for a seed."""
    rng = random.Random(seed)
    arr = np.random.default_rng(seed)
    seconds = warmup_s + hours * 3600.0
    mem, tenant, starts, durs, owner = [], [], [], [], []
    for a in range(apps):
        mem.append(min(burr_xii(rng), MAX_MEMORY_MB))
        mean_exec = exec_seconds(rng)
        rate = app_rate_per_s(rng)
        tenant.append(a // apps_per_tenant)
        n = arr.poisson(rate * seconds)
        t = np.sort(arr.uniform(0.0, seconds, n))           # a Poisson process of that rate
        burst = np.where(arr.random(n) < 0.1, arr.integers(2, 10, n), 1)
        t = np.repeat(t, burst)
        # a log-normal around the mean with sigma 0.5 has mean mean_exec * e^(0.125): centre it
        d = mean_exec * np.exp(arr.normal(-0.125, 0.5, len(t)))
        starts.append(t)
        durs.append(np.minimum(d, MAX_DURATION_S))
        owner.append(np.full(len(t), a))
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0))
    return Workload(mem, tenant, cat(starts), cat(durs), cat(owner).astype(np.int64), seconds, warmup_s,
                    "generator (ATC'20 fits), seed %d" % seed)


# -- the trace's own files --------------------------------------------------------------------

class TraceError(ValueError):
    """A trace file that is not in the published format: says which file and line."""


FILES = {"invocations": "invocations_per_function_md.anon.d%02d.csv",
         "durations": "function_durations_percentiles.anon.d%02d.csv",
         "memory": "app_memory_percentiles.anon.d%02d.csv"}
DURATION_POINTS = (0, 1, 25, 50, 75, 99, 100)


def trace_files(directory, day=1):
    """The day's three files in `directory` (the durations and memory ones may be absent)."""
    if not 1 <= day <= 14:
        raise TraceError("the trace has days 1..14, not %d" % day)
    out = {k: os.path.join(directory, v % day) for k, v in FILES.items()}
    if not os.path.isfile(out["invocations"]):
        raise TraceError("no %s in %s" % (os.path.basename(out["invocations"]), directory))
    return {k: p for k, p in out.items() if k == "invocations" or os.path.isfile(p)}


def _rows(path, required):
    """(line number, row as a dict) of a CSV file whose header holds every `required` column."""
    try:
        f = open(path, newline="")
    except OSError as e:
        raise TraceError("%s: %s" % (path, e.strerror or e))
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise TraceError("%s: empty file" % path)
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise TraceError("%s:1: missing column(s) %s" % (path, ", ".join(missing)))
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise TraceError("%s:%d: %d fields where the header has %d" % (path, reader.line_num, len(row), len(header)))
            yield reader.line_num, header, row


def _number(path, line, column, text, integer=False):
    try:
        v = int(text) if integer else float(text)
    except ValueError:
        raise TraceError("%s:%d: %s is not a number: %r" % (path, line, column, text))
    if not math.isfinite(v) or v < 0:
        raise TraceError("%s:%d: %s must be finite and >= 0, got %r" % (path, line, column, text))
    return v


def read_invocations(path):
    """{(owner, app): {function: per-minute counts (int array)}} and the number of minutes."""
    ids = ("HashOwner", "HashApp", "HashFunction", "Trigger")
    apps, minutes = {}, None
    for line, header, row in _rows(path, ids + ("1",)):
        if minutes is None:
            cols = header[header.index("1"):]
            if cols != [str(i) for i in range(1, len(cols) + 1)]:
                raise TraceError("%s:1: the minute columns must be 1, 2, ... in order" % path)
            first, minutes = header.index("1"), len(cols)
        counts = np.array([_number(path, line, header[first + i], v, integer=True)
                           for i, v in enumerate(row[first:])], dtype=np.int64)
        owner, app, fn = (row[header.index(c)] for c in ids[:3])
        if not owner or not app or not fn:
            raise TraceError("%s:%d: empty HashOwner, HashApp or HashFunction" % (path, line))
        per_app = apps.setdefault((owner, app), {})
        per_app[fn] = per_app[fn] + counts if fn in per_app else counts   # (a function under two triggers)
    if minutes is None:
        raise TraceError("%s: no rows" % path)
    return apps, minutes


def read_durations(path):
    """{(owner, app, function): (percentile points, milliseconds)}."""
    cols = ["percentile_Average_%d" % p for p in DURATION_POINTS]
    out = {}
    for line, header, row in _rows(path, ("HashOwner", "HashApp", "HashFunction", "Average") + tuple(cols)):
        get = dict(zip(header, row))
        ms = [_number(path, line, c, get[c]) for c in cols]
        if any(b < a for a, b in zip(ms, ms[1:])):
            raise TraceError("%s:%d: duration percentiles must not decrease" % (path, line))
        out[(get["HashOwner"], get["HashApp"], get["HashFunction"])] = ms
    return out


def read_memory(path):
    """{(owner, app): average allocated MB}."""
    out = {}
    for line, header, row in _rows(path, ("HashOwner", "HashApp", "AverageAllocatedMb")):
        get = dict(zip(header, row))
        out[(get["HashOwner"], get["HashApp"])] = _number(path, line, "AverageAllocatedMb", get["AverageAllocatedMb"])
    return out


def read_azure(invocations, durations=None, memory=None, apps=None, hours=None, seed=1, warmup_s=1200.0):
    """A Workload from the trace's files (paths; durations and memory optional). apps: keep a
    sample of that many applications (uniform, by seed, among those invoked in the window); hours:
    the first warm-up + hours of the day. Invocations of a minute arrive at uniform times in it;
    durations follow the function's duration percentiles (linear between them); an application
    or function missing from the memory or durations file is drawn from the published fits (and
    counted in the workload's notes)."""
    per_app, minutes = read_invocations(invocations)
    dur = read_durations(durations) if durations else {}
    mem = read_memory(memory) if memory else {}
    window = minutes if hours is None else min(minutes, int(math.ceil((warmup_s + hours * 3600.0) / 60.0)))
    if window * 60.0 <= warmup_s:
        raise TraceError("%s: %d minutes do not cover the %.0f s warm-up" % (invocations, window, warmup_s))
    keys = sorted(k for k, fns in per_app.items() if any(c[:window].sum() for c in fns.values()))
    rng = np.random.default_rng(seed)
    fit = random.Random(seed)
    if apps is not None and apps < len(keys):
        keys = [keys[i] for i in sorted(rng.choice(len(keys), apps, replace=False))]
    owners = {o: i for i, o in enumerate(sorted({o for o, _ in keys}))}
    memory_mb, tenant, starts, durs, owner = [], [], [], [], []
    drawn_mem = drawn_dur = 0
    for a, key in enumerate(keys):
        if key in mem and mem[key] > 0:
            memory_mb.append(min(mem[key], MAX_MEMORY_MB))
        else:
            memory_mb.append(min(burr_xii(fit), MAX_MEMORY_MB))
            drawn_mem += 1
        tenant.append(owners[key[0]])
        for fn in sorted(per_app[key]):
            counts = per_app[key][fn][:window]
            n = int(counts.sum())
            if not n:
                continue
            t = np.repeat(np.arange(window) * 60.0, counts) + rng.uniform(0.0, 60.0, n)
            points = dur.get(key + (fn,))
            u = rng.uniform(0.0, 100.0, n)
            if points is not None:
                d = np.interp(u, DURATION_POINTS, points) / 1000.0
            else:
                mean = exec_seconds(fit)
                d = mean * np.exp(rng.normal(-0.125, 0.5, n))
                drawn_dur += 1
            starts.append(t)
            durs.append(np.clip(d, 0.0, MAX_DURATION_S))
            owner.append(np.full(n, a))
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0))
    notes = []
    if drawn_mem:
        notes.append("%d of %d applications had no memory row: drawn from the Burr XII fit" % (drawn_mem, len(keys)))
    if drawn_dur:
        notes.append("%d functions had no duration row: drawn from the log-normal fit" % drawn_dur)
    return Workload(memory_mb, tenant, cat(starts), cat(durs), cat(owner).astype(np.int64), window * 60.0,
                    warmup_s, "Azure Functions 2019 trace (%s)" % os.path.basename(invocations),
                    names=keys, notes=notes)
