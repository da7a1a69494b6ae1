"""`nanvix check`: the implementation against the spec, in lock-step, outside pytest.

A random campaign (nanvix.refine.campaign.Campaign) of real KVM user VMs, system VM processes and
the scheduler, each step compared with the spec's concrete interpreter through the abstraction
function. Prints the steps, their rate, how often each operation succeeded, what no step covered,
and every divergence with the program that led to it. Exit status 1 on any divergence (and, with
--require-coverage, when an operation's success path was never taken). `--mutants` scores the
check against every implementation mutant (nanvix.refine.mutants).
"""
import sys
import time

from nanvix.impl.cli.common import emit, positive


def register(sub):
    p = sub.add_parser("check", help="run the implementation and the spec in lock-step and compare them")
    p.add_argument("--steps", type=positive, default=2000, help="lock-step operations in all (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episode", type=positive, default=250,
                   help="operations before the system is torn down and built afresh (default 250)")
    p.add_argument("--plant", choices=MutantNames(), default=None, metavar="MUTANT",
                   help="run with one implementation mutant (a deliberate bug), to see the check catch it")
    p.add_argument("--mutants", action="store_true",
                   help="run every implementation mutant (a campaign of up to --steps each, stopped at its "
                        "first divergence; then its directed scenario); print what caught each and the "
                        "mutation score; exit 1 if one survives")
    p.add_argument("--only", metavar="MUTANT,...", help="with --mutants: only these mutants")
    p.add_argument("--loop", action="store_true",
                   help="the system VMs serve by their own loop; checked at quiet points, with wake-ups")
    p.add_argument("--shrink-seconds", type=float, default=60.0,
                   help="time to spend shortening the first divergence's program (default 60)")
    p.add_argument("--require-coverage", action="store_true",
                   help="also fail when some operation never succeeded or some branch (an error, a "
                        "completion kind, a ring boundary, a restart path) was never reached")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


class MutantNames:
    """The registry's mutant names, read when argparse first looks (importing the mutants costs
    about a second: not for every nanvix command)."""

    def _names(self):
        from nanvix.refine.plants import NAMES
        return NAMES

    def __contains__(self, name):
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


def run(steps, seed=0, episode=250, progress=None, shrink_seconds=60.0, plant=None, loop=False):
    from nanvix.refine import abstraction as A, lockstep as L
    from nanvix.refine.campaign import Campaign
    from nanvix.refine.coverage import BRANCHES
    from nanvix.refine.shrink import shrink
    c = Campaign(seed=seed, episode=episode, plant=plant, loop=loop)
    t0 = time.perf_counter()
    try:
        c.run(steps, progress=progress)
    finally:
        c.close()
    dt = time.perf_counter() - t0
    firsts = []
    for i, d in enumerate(c.divergences[:5]):
        calls = d.pop("calls")
        d["calls"] = len(calls)
        if i == 0 and shrink_seconds > 0:  # the first one, as a short program
            short = shrink(calls, shrink_seconds, plant, loop)
            d["shrunk"] = {"calls": len(short), "program": L.script(short, plant, loop)}
        firsts.append(d)
    operations = {op: c.spec_ops[op] for op in A.SPEC_OPS}
    operations.update({op: c.ops[op] for op in A.FAULT_OPS})
    outcomes = {}
    for (op, err), n in sorted(c.outcomes.items()):
        outcomes.setdefault(op, {})[err] = n
    return {
        "steps": c.steps, "divergences": len(c.divergences),
        "steps_per_second": round(c.steps / dt, 1) if dt else None,
        "operations": operations, "uncovered": c.uncovered(),
        "seed": seed, "seconds": round(dt, 2), "outcomes": outcomes, "serving": "loop" if loop else "stepped",
        "unsupported": [op for op in A.api.OPS if op not in A.SPEC_OPS],
        "first_divergences": firsts,
        "branches": {b: c.branches[b] for b in BRANCHES}, "branches_uncovered": c.branches_uncovered(),
    }


def render(r):
    lines = ["%-20s %8s   %s" % ("operation", "succeeded", "outcomes of the harness's calls")]
    for op, n in r["operations"].items():
        oc = r["outcomes"].get(op, {})
        lines.append("%-20s %8d   %s" % (op, n, " ".join("%s=%d" % kv for kv in sorted(oc.items()))))
    lines.append("")
    lines.append("steps %d in %.1f s (%.0f steps/s), seed %d, system VMs serving %s" % (
        r["steps"], r["seconds"], r["steps_per_second"] or 0, r["seed"],
        "by their own loop" if r["serving"] == "loop" else "on command"))
    lines.append("uncovered: %s" % (", ".join(r["uncovered"]) or "none"))
    groups, counts = {}, {}
    for b, n in r["branches"].items():
        g, rest = b.split(".", 1)
        groups.setdefault(g, [0, 0])[0] += n > 0
        groups[g][1] += 1
        counts.setdefault(g, []).append("%s=%d" % (rest, n))
    lines.append("branch coverage (steps that took each branch; each operation's errors: the table above):")
    for g, cs in counts.items():
        if g != "error":
            lines.append("  %-11s %s" % (g, " ".join(cs)))
    lines.append("branches reached: %s" % ", ".join("%s %d/%d" % (g, a, t) for g, (a, t) in groups.items()))
    lines.append("branches never reached: %s" % (", ".join(r["branches_uncovered"]) or "none"))
    if r["unsupported"]:
        lines.append("not in the implementation: %s" % ", ".join(r["unsupported"]))
    lines.append("divergences: %d" % r["divergences"])
    for d in r["first_divergences"]:
        lines.append("")
        lines.append("step %d: %s" % (d["step"], d["what"]))
        if "shrunk" in d:
            lines.append("shrunk from %d calls to %d; replay with python3:" % (d["calls"], d["shrunk"]["calls"]))
            lines.append(d["shrunk"]["program"])
        else:
            lines.append("(%d calls; the program is in --json)" % d["calls"])
    return "\n".join(lines)


def mutants(args):
    from nanvix.refine import mutants as M
    progress = None
    if not args.json and sys.stderr.isatty():
        progress = lambda row: print("  %-26s %s" % (row["mutant"], "caught" if row["caught"] else "SURVIVED"),
                                     file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    names = None
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in M.NAMES]
        if unknown:
            print("no mutant %s (there are: %s)" % (", ".join(unknown), ", ".join(M.NAMES)), file=sys.stderr)
            return 2
    r = M.run(names, steps=args.steps, seed=args.seed, episode=args.episode, progress=progress)
    r["seconds"] = round(time.perf_counter() - t0, 1)
    emit(r, args.json, lambda r: M.render(r) + "\n%.0f s in all" % r["seconds"])
    return 1 if r["survivors"] else 0


def main(args):
    if args.mutants:
        return mutants(args)
    progress = None
    if not args.json and sys.stderr.isatty():
        progress = lambda n: print("  %d steps ..." % n, file=sys.stderr, flush=True)
    r = run(args.steps, args.seed, args.episode, progress, args.shrink_seconds, args.plant, args.loop)
    emit(r, args.json, render)
    if r["divergences"]:
        return 1
    if args.require_coverage and (r["uncovered"] or r["branches_uncovered"]):
        return 1
    return 0
