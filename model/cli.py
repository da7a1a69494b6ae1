"""`nanvix explore`: explicit-state exploration of the formal model (see model/explore.py)."""
import json


def register(sub):
    p = sub.add_parser("explore", help="explore every reachable state of a small instance of the formal model")
    p.add_argument("--tenants", type=int, default=2)
    p.add_argument("--user-vms", type=int, default=2, help="user-VM slots in all (one channel each), "
                   "shared round robin among the tenants")
    p.add_argument("--pages", type=int, default=None, help="pages in all, the first is the hypervisor's "
                   "(default: user VMs + 1: the channel pages)")
    p.add_argument("--ring", type=int, default=2, help="ring capacity (a power of two)")
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--payloads", type=int, default=1, help="distinct request payloads a guest submits (1 or 2)")
    p.add_argument("--hostile", action="store_true", help="add the scribbling guest's actions")
    p.add_argument("--mutant", default=None, help="explore a mutant of the spec (proofs/mutants/NAME)")
    p.add_argument("--no-liveness", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def main(args):
    from nanvix.model import explore as E
    spec = None
    if args.mutant:
        from nanvix.proofs.runner import load_spec
        spec = load_spec(args.mutant)
    cfg = E.config(args.tenants, args.user_vms, args.pages, args.ring, args.cores)
    r = E.explore(cfg, payloads=args.payloads, hostile=args.hostile, spec=spec, liveness=not args.no_liveness)
    if args.json:
        print(json.dumps(r))
    else:
        print(E.render(r))
    return 0 if not r["violations"] and not r["liveness_violations"] else 1
