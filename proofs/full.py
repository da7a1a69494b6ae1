"""The `full` tier: the same spec text under nanvix.spec.backend.Z3Full (uninterpreted sorts for
tenants, user VMs = channels, pages and cores; arrays; quantified invariants). A proof here holds
for ANY number of tenants, user VMs, pages and cores (ring capacity R and index width W fixed).

Coverage (reported honestly in every run):
  init.<inv>, ind.<op>.<inv>         for every invariant except `quotas` (counting has no
                                     quantifier-free parametric encoding here; `count` is
                                     over-approximated by an unconstrained value, which is sound
                                     for every other invariant)
  ni.<op>.local_respect              for every operation
  ni.<op>.output_consistency /       for operations that neither count (create_uvm,
  ni.<op>.step_consistency           open_channel, map_page) nor act for "nobody" (preempt, block),
                                     and not schedule (declared timing channel)
Anything Z3 cannot decide within the time limit is reported `unknown`, never `proved`.

Not covered here: the vacuity checks (Z3 answers `unknown` to the satisfiability of the quantified
invariants, so "some state satisfies them all" is shown by the fast tier on the same text, not
here) and the sanity checks of the observation relation. A guard against vacuous parametric proofs:
tests/test_proofs_full.py runs mutants here and requires that none of the obligations the fast
tier refutes comes out `proved` (Z3 answers `unknown` on them: the guard catches contradictory
assumptions that would prove anything, not a missing counterexample).
"""
import time

import z3

from nanvix import spec as M
from nanvix.spec.backend import Z3Full
from nanvix.proofs.engine import FAST_CFG, Result, Spec, _status, _zb, ni_assertions
from nanvix.spec.symbolic import full_args, full_state

FULL_CFG = FAST_CFG
TIMEOUT_MS = 20_000
NOT_COVERED_INVS = ("quotas",)
COUNTING_OPS = ("create_uvm", "open_channel", "map_page")
# On an idle core preempt and block act for "nobody": here a Tenant constant a real tenant may
# equal, so their consistency goals would not mean what they say (local_respect still runs;
# both are refused on an idle core anyway).
NOBODY_OPS = ("preempt", "block")


def obligation_names(spec=None):
    spec = spec or Spec()
    invs = [i for i in spec.invariants if i not in NOT_COVERED_INVS]
    names = ["init.%s" % i for i in invs]
    for op in spec.ops:
        names += ["ind.%s.%s" % (op, i) for i in invs]
        names.append("ni.%s.local_respect" % op)
        if op not in spec.timing_ops and op not in COUNTING_OPS and op not in NOBODY_OPS:
            names += ["ni.%s.output_consistency" % op, "ni.%s.step_consistency" % op]
    return names


def _invs(b, cfg, spec, s):
    return [_zb(f(b, cfg, s)) for n, f in spec.invariants.items() if n not in NOT_COVERED_INVS]


def _solver():
    sv = z3.Solver()
    sv.set("timeout", TIMEOUT_MS)
    return sv


def run_group(key, names, spec=None, cfg=FULL_CFG, explain=True):
    spec = spec or Spec()
    b = Z3Full(cfg)
    kind, what = key
    out = []
    if kind == "global":
        statics, cons = full_state(b, cfg, "init", only=M.STATIC_FIELDS)
        s0 = spec.init(b, cfg, statics)
        for n in names:
            t0 = time.time()
            sv = _solver()
            sv.add(*cons)
            sv.add(z3.Not(_zb(spec.invariants[n.split(".", 1)[1]](b, cfg, s0))))
            r = sv.check()
            out.append(Result(n, _status(r), time.time() - t0, "" if r == z3.unsat else "  z3: %s" % r))
        return out
    op = what
    fn = spec.ops[op][0]
    if kind == "ind":
        s, cons = full_state(b, cfg, "pre")
        args, acons = full_args(b, cfg, op, "arg")
        err, o, post = fn(b, cfg, s, *args)
        sv = _solver()
        sv.add(*cons, *acons, *_invs(b, cfg, spec, s))
        for n in names:
            t0 = time.time()
            inv = n.split(".", 2)[2]
            sv.push()
            sv.add(z3.Not(_zb(spec.invariants[inv](b, cfg, post))))
            r = sv.check()
            detail = ""
            if r == z3.sat:
                detail = "  counterexample (parametric model):\n%s" % str(sv.model())[:3000] if explain else ""
            elif r != z3.unsat:
                detail = "  z3: %s (%s)" % (r, sv.reason_unknown())
            sv.pop()
            out.append(Result(n, _status(r), time.time() - t0, detail))
        return out
    # noninterference
    t = z3.Const("obs_tenant", b.sorts["T"])
    args, acons = full_args(b, cfg, op, "arg")
    s1, c1 = full_state(b, cfg, "s1")
    run1 = fn(b, cfg, s1, *args)
    for n in names:
        t0 = time.time()
        sv = _solver()
        sv.add(*acons, *c1, *_invs(b, cfg, spec, s1))
        goal, _, _ = ni_assertions(b, cfg, spec, op, n.split(".")[2], args, t, s1, run1,
                                   lambda prefix: full_state(b, cfg, prefix), lambda st: _invs(b, cfg, spec, st))
        sv.add(*goal)
        r = sv.check()
        detail = "" if r == z3.unsat else ("  z3: %s" % r if r != z3.sat else "  counterexample found (parametric)")
        out.append(Result(n, _status(r), time.time() - t0, detail))
    return out
