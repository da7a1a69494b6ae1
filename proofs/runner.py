"""Run proof obligations (in parallel, one solver per group) and mutants."""
import fnmatch
import functools
import importlib
import multiprocessing as mp
import os
import pkgutil
import time

from nanvix.proofs import engine


def load_spec(mutant=None):
    if mutant is None:
        return engine.Spec()
    return mutant_module(mutant).mutate(engine.Spec())


def mutant_names():
    import nanvix.proofs.mutants as pkg
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def mutant_module(name):
    return importlib.import_module("nanvix.proofs.mutants.%s" % name)


def _work(job):
    key, names, mutant, tier, explain, size = job
    spec = load_spec(mutant)
    try:
        if tier == "full":
            from nanvix.proofs import full
            return full.run_group(key, names, spec, explain=explain)
        cfg = engine.FAST_SIZES[size]
        rs = engine.run_group(key, names, spec, cfg=cfg, explain=explain)
    except Exception as e:  # an encoding the tier cannot handle: unknown, never proved
        return [engine.Result(n, "unknown", 0.0, "  %s: %s" % (type(e).__name__, e)) for n in names]
    if size:
        for r in rs:
            if r.detail:
                r.detail = "  at size %s:\n%s" % (engine.size_name(cfg), r.detail)
    return rs


def _merge(parts):
    """One obligation proved at several sizes: proved only if proved at every one; the first
    failure (else the first unknown) explains it; the time is the sum."""
    worst = next((r for r in parts if r.status == "failed"), None) or \
        next((r for r in parts if r.status == "unknown"), None) or parts[0]
    return engine.Result(worst.name, worst.status, sum(r.seconds for r in parts), worst.detail)


def select(names, only):
    if not only:
        return names
    pats = [p.strip() for p in only.split(",") if p.strip()]
    return [n for n in names if any(fnmatch.fnmatch(n, p) or p in n for p in pats)]


def run(tier="fast", only=None, mutant=None, jobs=None, explain=True, progress=None, sizes=None):
    """Returns (results in a stable order, seconds). The fast tier runs every obligation at each
    of engine.FAST_SIZES (or the first `sizes` of them)."""
    t0 = time.time()
    spec = load_spec(mutant)
    if tier == "full":
        from nanvix.proofs import full
        names = full.obligation_names(spec)
    else:
        names = engine.obligation_names(spec)
    grouped = engine.groups(select(names, only))
    nsizes = 1 if tier == "full" else min(sizes or len(engine.FAST_SIZES), len(engine.FAST_SIZES))
    # the independence and sanity checks of the invariants and the observation: at the first size
    per_size = lambda k: 1 if k[0] == "global" and k[1] in ("vacuity", "sanity", "corollary") else nsizes
    jobs_list = [(k, v, mutant, tier, explain, z) for k, v in grouped.items() for z in range(per_size(k))]
    want = {n: per_size(k) for k, v in grouped.items() for n in v}
    # big groups first, so the two cores stay busy
    jobs_list.sort(key=lambda j: (-len(j[1]) * (1 + j[5]), j[5]))
    njobs = jobs or min(2, os.cpu_count() or 1)
    parts = {}

    def collect(rs):
        for r in rs:
            parts.setdefault(r.name, []).append(r)
            if len(parts[r.name]) == want[r.name] and progress:
                progress(_merge(parts[r.name]))
    if njobs <= 1 or len(jobs_list) <= 1:
        for j in jobs_list:
            collect(_work(j))
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(njobs) as pool:
            for rs in pool.imap_unordered(_work, jobs_list):
                collect(rs)
    results = [_merge(p) for p in parts.values()]
    order = {n: i for i, n in enumerate(names)}
    results.sort(key=lambda r: order.get(r.name, 1 << 30))
    return results, time.time() - t0


@functools.lru_cache(maxsize=None)
def _proved_on_the_spec(pats):
    return frozenset(r.name for r in run("fast", only=pats, explain=False)[0] if r.status == "proved")


def run_mutant(name, jobs=None):
    """Run the obligations a mutant touches; caught_by = the obligations that fail."""
    t0 = time.time()
    mod = mutant_module(name)
    pats = ",".join(mod.TARGETS)
    results, secs = run("fast", only=pats, mutant=name, jobs=jobs, explain=False)
    proved = _proved_on_the_spec(pats)  # a failure counts only where the real spec is proved
    caught_by = [r.name for r in results if r.status == "failed" and r.name in proved]
    explore_cfg = getattr(mod, "EXPLORE", None)
    if explore_cfg:
        caught_by += explore_mutant(name, explore_cfg)
        secs = time.time() - t0
    return {"name": name, "description": mod.__doc__.strip().splitlines()[0] if mod.__doc__ else "",
            "caught": bool(caught_by), "caught_by": caught_by, "obligations_run": len(results),
            "seconds": round(secs, 3)}


def explore_mutant(name, params):
    """Bounded model checking of a mutant with the explicit-state explorer: the names of the
    checks it fails (explore.invariant.<inv>, explore.deadlock, explore.liveness)."""
    from nanvix.model import explore as E
    cfg = E.config(params.get("tenants", 1), params.get("user_vms", 1), params.get("pages"),
                   params.get("ring", 1), params.get("cores", 1))
    spec = load_spec(name)
    r = E.explore(cfg, spec=spec, progress=False, check_reduction=True)
    out = []
    if r["reduction_unsound"]:   # the mutant reads rings as the reduction does not allow
        out.append("explore.reduction_unsound")
        r = E.explore(cfg, spec=spec, progress=False, reduce=False)
    out += ["explore.invariant.%s" % v["invariant"] for v in r["violations"]]
    if r["deadlocks"]:
        out.append("explore.deadlock")
    if r["liveness_violations"]:
        out.append("explore.liveness")
    out += sorted({"explore.%s" % v["check"] for v in r.get("ni_violations", ())})
    return out
