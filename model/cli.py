"""`nanvix explore`: explicit-state exploration of the formal model (see model/explore.py)."""
import argparse
import json

from nanvix.impl.cli.common import positive, power_of_two


def mutant_name(text):
    from nanvix.proofs.runner import mutant_names
    if text not in mutant_names():
        raise argparse.ArgumentTypeError("no mutant %r (see proofs/mutants/)" % text)
    return text


def register(sub):
    p = sub.add_parser("explore", help="explore every reachable state of a small instance of the formal model")
    p.add_argument("--tenants", type=positive, default=2)
    p.add_argument("--user-vms", type=positive, default=2, help="user-VM slots in all (one channel each), "
                   "shared round robin among the tenants")
    p.add_argument("--pages", type=positive, default=None, help="pages in all, the first is the hypervisor's "
                   "(default: user VMs + 1: the channel pages)")
    p.add_argument("--ring", type=power_of_two, default=2, help="ring capacity (a power of two)")
    p.add_argument("--cores", type=positive, default=2)
    p.add_argument("--payloads", type=positive, default=2, help="distinct request payloads a guest submits")
    p.add_argument("--quota-uvms", type=positive, default=None, help="user VMs per tenant (default: all slots)")
    p.add_argument("--quota-pages", type=positive, default=None, help="pages per tenant (default: all pages)")
    p.add_argument("--same-tenant-only", action="store_true", help="pair ids only with their own tenant's (by "
                   "default the alphabet also has every cross-tenant pairing, which the spec must refuse)")
    p.add_argument("--hostile", action="store_true", help="add the scribbling guest's actions")
    p.add_argument("--mutant", type=mutant_name, default=None, help="explore a mutant of the spec (proofs/mutants/NAME)")
    p.add_argument("--no-liveness", action="store_true")
    p.add_argument("--no-noninterference", action="store_true", help="skip the noninterference check (each "
                   "tenant's observation against every operation, the proofs' unwinding conditions)")
    p.add_argument("--check-reduction", action="store_true", help="check the state reduction is sound for this "
                   "spec: every state against its representative (slower)")
    p.add_argument("--no-reduction", action="store_true", help="explore without the state reduction")
    p.add_argument("--stop-first", action="store_true", help="stop at the first invariant violation (printed as "
                   "soon as found, with a shortest trace)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def main(args):
    from nanvix.model import explore as E
    spec = None
    if args.mutant:
        from nanvix.proofs.runner import load_spec
        spec = load_spec(args.mutant)
    if args.pages is not None and args.pages < 2:
        raise SystemExit("nanvix explore: --pages must leave at least one page after the hypervisor's")
    cfg = E.config(args.tenants, args.user_vms, args.pages, args.ring, args.cores, quota_uvms=args.quota_uvms,
                   quota_pages=args.quota_pages)
    r = E.explore(cfg, payloads=args.payloads, hostile=args.hostile, spec=spec, liveness=not args.no_liveness,
                  stop_first=args.stop_first, check_reduction=args.check_reduction, reduce=not args.no_reduction,
                  cross=not args.same_tenant_only, noninterference=not args.no_noninterference)
    if args.json:
        print(json.dumps(r))
    else:
        print(E.render(r))
    return 0 if not (r["violations"] or r["liveness_violations"] or r.get("reduction_unsound")
                     or r.get("ni_violations")) else 1
