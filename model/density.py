"""`nanvix density`: how many hosts a serverless workload needs under nanvix and under four
baselines, from costs measured on this machine where they can be, and what moves the answer.

- the workload: the calibrated generator or the Azure Functions 2019 trace (model/workload.py);
- the inputs and the designs, each input with its source (model/designs.py);
- the engine: memory, CPU and live instances per bin, hosts per minute (model/hosts.py);
- here: the run, the sensitivity table (one input changed at a time), a greedy search of what it
  takes to reach the paper's 20-100x, the command and its output; the plot (model/plot.py).

Ratios are of host-equivalents (the mean over minutes of the fractional hosts a design needs):
with the few hosts a sampled workload fills, whole hosts would round the ratio away.
"""
import argparse
import json
import math

import numpy as np

from nanvix.model import designs as D
from nanvix.model import hosts as H
from nanvix.model import workload as W

BASELINES = ("firecracker", "gvisor", "process", "hyperlight")
GOALS = (20.0, 100.0)   # the paper's claim: 20-100x fewer hosts


def assumptions(inp):
    """The workload-wide inputs every design is evaluated under."""
    return {k: inp[k] for k in ("dirty_fraction", "cpu_share", "host_gib", "host_cores")}


class Model:
    """A workload on its grid, and the inputs; evaluates any variant of them."""

    def __init__(self, workload, inputs, dt=None):
        self.w, self.inp = workload, inputs
        self.grid = H.Grid(workload, dt)
        self.memo = {}
        self.subsets = {}

    def variant(self, changes):
        """Inputs, assumptions, mask and tenant grouping with `changes` ({name: value}) applied."""
        inp = D.Inputs()
        inp.values = dict(self.inp.values)
        mask = tenant = None
        subset = "all"
        for k, v in changes.items():
            if k == "workload":
                mask, subset = self.subset(v), v
            elif k == "apps_per_tenant":
                tenant = np.arange(self.w.apps) // int(v)
            elif k == "host":
                inp.values["host_gib"], inp.values["host_cores"] = v
            else:
                inp.values[k] = v
        return inp, assumptions(inp), mask, tenant, subset

    def subset(self, which):
        """Applications invoked at most once a minute on average ("rare"), more ("busy"), or all."""
        if which == "all":
            return None
        if which not in self.subsets:
            per_min = np.bincount(self.w.app, minlength=self.w.apps) / (self.w.seconds / 60.0)
            self.subsets[which] = (per_min <= 1.0) if which == "rare" else (per_min > 1.0)
        return self.subsets[which]

    def evaluate(self, changes=(), names=None):
        """{design: (summary, hosts)} for the designs named (default all)."""
        changes = dict(changes)
        inp, g, mask, tenant, subset = self.variant(changes)
        out = {}
        for name, design in D.designs(inp).items():
            if names is not None and name not in names:
                continue
            key = (name, tuple(sorted((k, repr(v)) for k, v in changes.items() if affects(k, name))))
            if key not in self.memo:
                demand = H.evaluate(self.grid, design, g, mask, tenant, subset)
                h = H.hosts(self.grid, demand, design, g)
                self.memo[key] = (H.summarise(self.grid, design, g, demand, h), h)
            out[name] = self.memo[key]
        return out

    def ratios(self, changes=(), names=BASELINES):
        got = self.evaluate(changes, set(names) | {"nanvix"})
        nx = got["nanvix"][0]["host_equivalents"] or 1e-9
        return {n: round(got[n][0]["host_equivalents"] / nx, 2) for n in names}


# which inputs each design reads (a change to another input cannot move it: memoised)
READS = {
    "nanvix": {"kib_per_user_vm", "template_kib", "template_keep_s", "ready_per_function", "kib_per_ready_vm",
               "sysvm_kib", "sysvm_keep_s", "cpu_us_per_invocation", "template_build_us", "app_init_ms",
               "sysvm_start_us", "live_ceiling"},
    "firecracker": {"keep_alive_s", "guest_os_mib", "firecracker_shared"},
    "gvisor": {"keep_alive_s", "gvisor_sandbox_kib", "gvisor_start_us", "app_init_ms"},
    "process": {"process_kib", "spawn_us", "app_init_ms"},
    "hyperlight": {"keep_alive_s", "kib_per_user_vm", "app_init_ms", "copy_gib_per_s", "live_ceiling"},
}
EVERY_DESIGN = {"dirty_fraction", "cpu_share", "host_gib", "host_cores", "host", "workload", "apps_per_tenant"}


def affects(key, design):
    return key in EVERY_DESIGN or key in READS[design]


def sensitivity_rows(model):
    """(input, values) to vary one at a time; the base value among them."""
    v = model.inp.values
    rows = [
        ("keep_alive_s", [60.0, 600.0, 1200.0]),
        ("template_keep_s", [math.inf, 1200.0, 600.0, 60.0]),
        ("sysvm_keep_s", [math.inf, 600.0]),
        ("ready_per_function", [0, 3, 8]),
        ("dirty_fraction", [0.05, 0.1, 0.3, 0.6, 1.0]),
        ("sysvm_kib", [v["sysvm_kib"] / 4, v["sysvm_kib"] * 4]),
        ("kib_per_user_vm", [v["kib_per_user_vm"] / 4, v["kib_per_user_vm"] * 4]),
        ("template_kib", [v["template_kib"] / 4, v["template_kib"] * 4]),
        ("cpu_us_per_invocation", [v["cpu_us_per_invocation"] / 10, v["cpu_us_per_invocation"] * 10]),
        ("cpu_share", [0.0, 0.02, 0.1, 0.5]),
        ("app_init_ms", [0.0, 100.0, 1000.0]),
        ("guest_os_mib", [0.0, 32.0, 128.0]),
        ("firecracker_shared", [1, 0]),
        ("gvisor_sandbox_kib", [v["gvisor_sandbox_kib"] / 2, v["gvisor_sandbox_kib"] * 2]),
        ("live_ceiling", [5000, 1_000_000_000]),
        ("host", [(64, 16), (256, 64), (1024, 256)]),
        ("workload", ["all", "rare", "busy"]),
    ]
    if model.w.names is None:   # the generator: its owners are an assumption too
        rows.append(("apps_per_tenant", [1, W.APPS_PER_TENANT, 16]))
    base = {"host": (v["host_gib"], v["host_cores"]), "workload": "all", "apps_per_tenant": W.APPS_PER_TENANT}
    out = []
    for key, values in rows:
        b = base.get(key, v.get(key))
        if b not in values:
            values = sorted(values + [b], key=_order)
        out.append((key, b, values))
    return out


def _order(x):
    return x if isinstance(x, (int, float)) else (x[0] if isinstance(x, tuple) else 0)


def show(key, value):
    if isinstance(value, float) and math.isinf(value):
        return "for ever"
    if key == "host":
        return "%d GiB/%d cores" % value
    if key == "live_ceiling" and value >= 1e9:
        return "none"
    if isinstance(value, float):
        return ("%.3g" % value) if value < 1000 else "%d" % round(value)
    return str(value)


def sensitivity(model):
    """Each row: one input changed; the ratios under the base assumptions, and with CPU left out
    (cpu_share 0: memory and live VMs only, as the paper packs hosts)."""
    table = []
    for key, base, values in sensitivity_rows(model):
        for value in values:
            changes = {} if value == base else {key: value}
            row = {"input": key, "value": show(key, value), "base": value == base, "ratios": model.ratios(changes)}
            if key != "cpu_share":
                row["ratios_memory_only"] = model.ratios(dict(changes, cpu_share=0.0))
            table.append(row)
    return table


def what_it_takes(model, baseline, steps=8):
    """Greedy: from the base, each step applies the one change (among the sensitivity values) that
    raises baseline/nanvix the most, until the paper's 100x or no change helps."""
    rows = sensitivity_rows(model)
    changes, ratio = {}, model.ratios({}, (baseline,))[baseline]
    path = [{"change": "base", "ratio": ratio}]
    for _ in range(steps):
        if ratio >= GOALS[-1]:
            break
        best = None
        for key, base, values in rows:
            if key in changes:
                continue
            for value in values:
                if value == base:
                    continue
                r = model.ratios(dict(changes, **{key: value}), (baseline,))[baseline]
                if best is None or r > best[0]:
                    best = (r, key, value)
        if best is None or best[0] <= ratio * 1.01:
            break
        ratio = best[0]
        changes[best[1]] = best[2]
        path.append({"change": "%s=%s" % (best[1], show(best[1], best[2])), "ratio": ratio})
    return {"steps": path, "reached": {"%gx" % g: ratio >= g for g in GOALS}, "best": ratio}


def build_inputs(paths=(), measure=True, sets=(), overhead_mib=None):
    """The inputs: files first; else measured now (if this host can); options over either."""
    inp = D.Inputs()
    for p in paths:
        inp.load(p)
    if not paths and measure:
        try:
            from nanvix.impl.cli.density_inputs import measure as measure_now
            inp.take(measure_now(small=True), "nanvix density, this run")
        except Exception as e:   # (no /dev/kvm, not root, no build): say so, use the defaults
            inp.notes.append("could not measure here (%s: %s): documented defaults used"
                             % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
    if overhead_mib is not None:
        inp.set("kib_per_user_vm", overhead_mib * 1024.0, "option --overhead-mib")
    for k, v in sets:
        inp.set(k, v, "option --set")
    return inp


def run(apps=500, hours=1.0, seed=1, host_gib=None, instance_overhead_mib=None, inputs=None, workload=None,
        host_cores=None, with_sensitivity=True, dt=None):
    """The model on a workload (default: the generator), with inputs (default: documented
    defaults; never measures). Returns the result dict (and keeps the per-minute hosts in
    result['_series'] for the plot: host-equivalents per minute)."""
    inp = inputs or D.Inputs()
    if instance_overhead_mib is not None:
        inp.set("kib_per_user_vm", instance_overhead_mib * 1024.0, "option --overhead-mib")
    if host_gib is not None:
        inp.set("host_gib", host_gib, "option")
    if host_cores is not None:
        inp.set("host_cores", host_cores, "option")
    w = workload or W.generate(apps, hours, seed)
    m = Model(w, inp, dt)
    got = m.evaluate()
    out = {"workload": w.source, "apps": w.apps, "tenants": w.tenants, "hours": round((w.seconds - w.warmup) / 3600.0, 3),
           "warmup_s": w.warmup, "seed": seed, "invocations": w.counted(), "host_gib": inp["host_gib"],
           "host_cores": inp["host_cores"], "dt_s": m.grid.dt,
           "inputs": {k: {"value": _jsonable(v), "unit": u, "source": s} for k, v, u, s in inp.rows()},
           "measured": inp.measured(), "notes": inp.notes + w.notes,
           "designs": {}, "published": D.PUBLISHED}
    for name, design in D.designs(inp).items():
        out["designs"][name] = dict(got[name][0], label=design.label, basis=design.basis)
    nx = out["designs"]["nanvix"]["host_equivalents"] or 1e-9
    out["hosts_saved_vs"] = {n: round(out["designs"][n]["host_equivalents"] / nx, 2) for n in BASELINES}
    if with_sensitivity:
        out["sensitivity"] = sensitivity(m)
        out["what_it_takes"] = {b: what_it_takes(m, b) for b in BASELINES}
    out["_series"] = {n: {"hosts": got[n][1]["host_equivalents_per_minute"], "gib": got[n][1]["gib_per_minute"]}
                      for n in got}
    return out


def _jsonable(v):
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return v


# -- the command --------------------------------------------------------------------------------

def name_value(text):
    """--set NAME=VALUE: any input of the model (see the inputs table)."""
    name, sep, value = text.partition("=")
    known = set(D.DEFAULTS) | set(D.ASSUMED)
    if not sep or name not in known:
        raise argparse.ArgumentTypeError("expected NAME=VALUE with NAME one of: %s" % ", ".join(sorted(known)))
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("%s: %r is not a number" % (name, value))
    if not v >= 0:
        raise argparse.ArgumentTypeError("%s must be >= 0" % name)
    return name, v


def register(sub):
    from nanvix.impl.cli.common import positive, positive_float
    p = sub.add_parser("density", help="deployment-density model: hosts needed per design, from measured costs")
    p.add_argument("--apps", type=positive, default=None, help="applications (generator default 500; "
                   "with --trace: a sample of that many, default all)")
    p.add_argument("--hours", type=positive_float, default=1.0, help="hours counted, after a 20-minute warm-up")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--trace", metavar="DIR", default=None,
                   help="read the Azure Functions 2019 trace's CSV files from DIR instead of generating")
    p.add_argument("--day", type=positive, default=1, help="the trace's day (1-14)")
    p.add_argument("--inputs", metavar="FILE", action="append", default=[],
                   help="measured inputs: `nanvix bench --json` output (repeatable; also `bench --live N --json`)")
    p.add_argument("--defaults", action="store_true", help="measure nothing: documented defaults (deterministic)")
    p.add_argument("--set", metavar="NAME=VALUE", type=name_value, action="append", default=[],
                   help="override one input (inf allowed)")
    p.add_argument("--host-gib", type=positive, default=None)
    p.add_argument("--host-cores", type=positive, default=None)
    p.add_argument("--overhead-mib", type=positive_float, default=None,
                   help="nanvix host memory per user VM (default: measured)")
    p.add_argument("--plot", metavar="PNG", default="nanvix-density.png", help="where to write the plot")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-sensitivity", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_density)


def cmd_density(args):
    from nanvix.impl.cli.common import emit, fail
    try:
        inp = build_inputs(args.inputs, not args.defaults, args.set, args.overhead_mib)
        if args.trace:
            files = W.trace_files(args.trace, args.day)
            w = W.read_azure(files["invocations"], files.get("durations"), files.get("memory"),
                             apps=args.apps, hours=args.hours, seed=args.seed)
        else:
            w = W.generate(args.apps or 500, args.hours, args.seed)
        r = run(seed=args.seed, inputs=inp, workload=w, host_gib=args.host_gib, host_cores=args.host_cores,
                with_sensitivity=not args.no_sensitivity)
    except ValueError as e:
        return fail("density", e)
    series = r.pop("_series")
    r["plot"] = None
    if not args.no_plot:
        from nanvix.model.plot import hosts_over_time
        r["plot"] = hosts_over_time(r, series, args.plot)
    emit(r, args.json, render)
    return 0


def render(r):
    L = ["workload: %s: %d applications, %d tenants, %.2f h after a %d-min warm-up, %d invocations"
         % (r["workload"], r["apps"], r["tenants"], r["hours"], r["warmup_s"] / 60, r["invocations"]),
         "hosts of %d GiB and %d cores; bins of %d s" % (r["host_gib"], r["host_cores"], r["dt_s"]), "",
         "inputs (%d measured on this machine):" % len(r["measured"])]
    for k, v in r["inputs"].items():
        val = v["value"]
        L.append("  %-22s %12s %-8s %s" % (k, show(k, float(val) if val == "inf" else val), v["unit"], v["source"]))
    for n in r["notes"]:
        L.append("  note: %s" % n)
    L += ["", "%-12s %10s %10s %9s %9s %9s %7s %9s %-9s %s" % (
        "design", "mean hosts", "peak hosts", "host-eq", "mean GiB", "peak GiB", "cores", "peak live",
        "bound by", "new instances (cold starts)")]
    for n, d in r["designs"].items():
        cold = "%d (%.1f%% of invocations)" % (d["new_instances"], 100 * d["cold_start_fraction"]) \
            if "new_instances" in d else "none kept: every invocation starts one"
        if d.get("snapshots_rebuilt"):
            cold += "; %d snapshots rebuilt" % d["snapshots_rebuilt"]
        L.append("%-12s %10.2f %10d %9.3f %9.1f %9.1f %7.1f %9d %-9s %s" % (
            n, d["mean_hosts"], d["peak_hosts"], d["host_equivalents"], d["mean_gib"], d["peak_gib"],
            d["mean_cores"], d["peak_live"], d["binding"], cold))
    L.append("hosts relative to nanvix (host-equivalents): " + ", ".join(
        "%s %.2fx" % (n, x) for n, x in r["hosts_saved_vs"].items()))
    if "sensitivity" in r:
        L += ["", "sensitivity: each baseline's hosts / nanvix's, one input changed at a time (* = base);",
              "  each cell: with the base CPU share | with CPU left out (cpu_share 0, memory-bound as in the paper)",
              "%-22s %-18s " % ("input", "value") + " ".join("%15s" % b for b in BASELINES)]
        last = None
        for row in r["sensitivity"]:
            mem = row.get("ratios_memory_only")
            L.append("%-22s %-18s " % (row["input"] if row["input"] != last else "", row["value"] + (" *" if row["base"] else ""))
                     + " ".join("%15s" % ("%.2fx | %s" % (row["ratios"][b], "%.2fx" % mem[b] if mem else "  -  "))
                                for b in BASELINES))
            last = row["input"]
        L += ["", "what it takes to reach 20-100x (greedy: each step the one change above that raises the ratio most):"]
        for b, w in r["what_it_takes"].items():
            steps = " -> ".join("%s %.2fx" % (s["change"], s["ratio"]) for s in w["steps"])
            reached = [g for g, ok in w["reached"].items() if ok]
            L.append("  vs %-11s %s  [%s]" % (b + ":", steps, "reaches " + ", ".join(reached) if reached
                                                 else "20x not reached"))
    if r.get("plot"):
        L += ["", "plot: %s" % r["plot"]]
    return "\n".join(L)

