"""`nanvix verify`: prove the spec's obligations with Z3, or show every mutant caught."""
import json
import sys

from nanvix.impl.cli.common import positive


def register(sub):
    p = sub.add_parser("verify", help="prove the formal model's obligations with Z3 (see proofs/)")
    p.add_argument("--tier", choices=("fast", "full"), default="fast",
                   help="fast: bounded finite sorts, quantifier-free; full: parametric (uninterpreted "
                        "sorts, quantified invariants) for the obligations it covers")
    p.add_argument("--only", metavar="PATTERN", help="obligations whose name matches (glob or substring; "
                   "comma-separated)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--mutants", action="store_true", help="run every mutant in proofs/mutants/ and show "
                   "which obligation catches it")
    p.add_argument("--jobs", type=positive, default=None, help="worker processes (default: up to 2)")
    p.set_defaults(func=main)


def main(args):
    from nanvix.proofs import runner
    if args.mutants:
        return _mutants(args, runner)
    done = [0]

    def progress(r):
        done[0] += 1
        if not args.json:
            print("%-62s %-8s %7.3fs" % (r.name, r.status, r.seconds), flush=True)
            if r.status != "proved" and r.detail:
                print(r.detail, flush=True)

    results, secs = runner.run(args.tier, args.only, jobs=args.jobs, progress=progress)
    counts = {k: sum(1 for r in results if r.status == k) for k in ("proved", "failed", "unknown")}
    if args.json:
        print(json.dumps({"tier": args.tier, "seconds": round(secs, 3), **counts,
                          "obligations": [{"name": r.name, "status": r.status, "seconds": round(r.seconds, 4),
                                           **({"counterexample": r.detail} if r.detail else {})}
                                          for r in results]}))
    else:
        print("-" * 80)
        print("tier %s: %d obligations, %d proved, %d failed, %d unknown in %.1fs"
              % (args.tier, len(results), counts["proved"], counts["failed"], counts["unknown"], secs))
        bad = [r.name for r in results if r.status != "proved"]
        if bad:
            print("NOT PROVED: " + ", ".join(bad))
    if not results:
        print("no obligation matches %r" % args.only, file=sys.stderr)
        return 2
    return 0 if counts["failed"] == 0 and counts["unknown"] == 0 else 1


def _mutants(args, runner):
    out = []
    for name in runner.mutant_names():
        r = runner.run_mutant(name, jobs=args.jobs)
        out.append(r)
        if not args.json:
            print("%-34s %-7s by %s" % (name, "CAUGHT" if r["caught"] else "MISSED",
                                         ", ".join(r["caught_by"][:4]) + (" (+%d more)" % (len(r["caught_by"]) - 4)
                                                                          if len(r["caught_by"]) > 4 else "")),
                  flush=True)
            print("    %s" % r["description"], flush=True)
    caught = sum(1 for r in out if r["caught"])
    score = round(100.0 * caught / len(out), 1) if out else None
    if args.json:
        print(json.dumps({"mutants": out, "caught": caught, "total": len(out), "score": score,
                          "survivors": [r["name"] for r in out if not r["caught"]]}))
    else:
        print("-" * 80)
        print("%d/%d mutants caught (mutation score %.1f%%)" % (caught, len(out), score or 0))
    return 0 if out and caught == len(out) else 1
