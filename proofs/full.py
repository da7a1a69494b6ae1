"""The `full` tier: the same spec text under nanvix.spec.backend.Z3Full (uninterpreted sorts for
tenants, user VMs = channels, pages and cores; arrays; quantified invariants). A proof here holds
for ANY number of tenants, user VMs, pages and cores (ring capacity R and index width W fixed;
quotas any 8-bit value).

Coverage (reported honestly in every run):
  init.<inv>, ind.<op>.<inv>         for every invariant, `quotas` included: a count is the size
                                     of a set (Z3Full.count: an uninterpreted Card over the set,
                                     an unbounded Int, with facts true of every finite set's
                                     size; they are added to every solver here)
  ni.<op>.local_respect              for every operation
  ni.<op>.output_consistency /       for every operation, the three that count (create_uvm,
  ni.<op>.step_consistency           open_channel, map_page: their quota guards) included;
                                     schedule under its declared timing assumption as in the fast
                                     tier, and preempt and block (an idle core acts for `nobody`:
                                     every tenant id a state or an argument holds is required to
                                     differ from that constant)
Anything Z3 cannot decide within the time limit is reported `unknown`, never `proved`.

Refutation: Z3 rarely finds a model of a quantified formula, so an obligation the parametric
solver does not prove is handed to a bounded search beside it: the same obligation in the fast
tier's quantifier-free encoding, at each size of SEARCH_SIZES. A counterexample there is one
here (those sizes are instances of the parametric sorts): `failed`, with its concrete states.
Without one the obligation stays `unknown`, never `proved`.

Not covered here: the vacuity checks (Z3 answers `unknown` to the satisfiability of the quantified
invariants, so "some state satisfies them all" is shown by the fast tier on the same text, not
here) and the sanity checks of the observation relation. A guard against vacuous parametric
proofs: tests/proofs/test_proofs_full.py runs mutants here (the quota mutants among them) and
requires that none of the obligations the fast tier refutes comes out `proved`, and that the
bounded search shows them; and it checks the counting facts against the true sizes of every
subset of small universes.
"""
import time

import z3

from nanvix import spec as M
from nanvix.spec.backend import Z3Full
from nanvix.proofs import engine
from nanvix.proofs.engine import FAST_CFG, Result, Spec, _status, _zb, ni_assertions
from nanvix.spec.symbolic import full_args, full_state

FULL_CFG = FAST_CFG
TIMEOUT_MS = 20_000
# the bounded search beside the parametric tier: the fast tier's sizes
SEARCH_SIZES = engine.FAST_SIZES
SEARCH_TIMEOUT_MS = 30_000


def obligation_names(spec=None):
    spec = spec or Spec()
    names = ["init.%s" % i for i in spec.invariants]
    for op in spec.ops:
        names += ["ind.%s.%s" % (op, i) for i in spec.invariants]
        names += ["ni.%s.%s" % (op, w) for w in ("local_respect", "output_consistency", "step_consistency")]
    return names


def _invs(b, cfg, spec, s):
    return [_zb(f(b, cfg, s)) for f in spec.invariants.values()]


def _solver(timeout_ms=None):
    sv = z3.Solver()
    sv.set("timeout", timeout_ms or TIMEOUT_MS)
    return sv


def _tenants_are_somebody(b, s):
    """Every tenant id a state holds is a real tenant, never `nobody` (the actor of an operation
    on an idle core)."""
    out = []
    for f, sort in (("u_tenant", "U"), ("c_tenant", "C"), ("p_tenant", "P")):
        x = z3.Const("%s.some" % f, b.sorts[sort])
        out.append(z3.ForAll([x], s[f][x] != b.nobody()))
    return out


def _typed(b, cfg, prefix):
    s, cons = full_state(b, cfg, prefix)
    return s, cons + _tenants_are_somebody(b, s)


def _args(b, cfg, spec, op, prefix):
    args, cons = full_args(b, cfg, op, prefix)
    for a, sort in zip(args, spec.ops[op][1]):
        if sort == "T":
            cons.append(a != b.nobody())
    return args, cons


def run_group(key, names, spec=None, cfg=FULL_CFG, explain=True):
    spec = spec or Spec()
    out = _parametric(key, names, spec, cfg, explain)
    # Z3's time limit is wall-clock: on a loaded machine it can turn a proof into `unknown`. One
    # more try with three times the time for those (not for what the quantifiers leave undecided).
    slow = [r.name for r in out if r.status == "unknown" and _timed_out(r)]
    if slow:
        again = {r.name: r for r in _parametric(key, slow, spec, cfg, explain, 3 * TIMEOUT_MS)}
        out = [again.get(r.name, r) for r in out]
    return [r if r.status == "proved" else _search(key, r, spec) for r in out]


def _timed_out(r):
    return "timeout" in r.detail or "canceled" in r.detail


def _search(key, r, spec):
    """The bounded search beside the parametric tier, for one obligation it did not prove."""
    t0 = time.time()
    old = engine.TIMEOUT_MS
    engine.TIMEOUT_MS = SEARCH_TIMEOUT_MS
    try:
        for cfg in SEARCH_SIZES:
            (br,) = engine.run_group(key, [r.name], spec, cfg=cfg, explain=True)
            if br.status == "failed":
                return Result(r.name, "failed", r.seconds + time.time() - t0,
                              "  parametric: %s; bounded counterexample at size %s:\n%s"
                              % (r.detail.strip() or r.status, engine.size_name(cfg), br.detail))
    finally:
        engine.TIMEOUT_MS = old
    if r.status == "failed":   # a parametric model the bounded sizes do not reach
        return r
    return Result(r.name, "unknown", r.seconds + time.time() - t0,
                  r.detail + "\n  no counterexample at sizes %s" % ", ".join(map(engine.size_name, SEARCH_SIZES)))


def _why(sv, r):
    return "  z3: %s (%s)" % (r, sv.reason_unknown()) if r == z3.unknown else "  z3: %s" % r


def _parametric(key, names, spec, cfg, explain, timeout_ms=None):
    b = Z3Full(cfg)
    kind, what = key
    out = []
    if kind == "global":
        statics, cons = full_state(b, cfg, "init", only=M.STATIC_FIELDS)
        s0 = spec.init(b, cfg, statics)
        for n in names:
            t0 = time.time()
            goal = z3.Not(_zb(spec.invariants[n.split(".", 1)[1]](b, cfg, s0)))
            sv = _solver(timeout_ms)
            sv.add(*cons, goal, *b.card_axioms())
            r = sv.check()
            out.append(Result(n, _status(r), time.time() - t0, "" if r == z3.unsat else _why(sv, r)))
        return out
    op = what
    fn = spec.ops[op][0]
    if kind == "ind":
        s, cons = _typed(b, cfg, "pre")
        args, acons = _args(b, cfg, spec, op, "arg")
        err, o, post = fn(b, cfg, s, *args)
        pre = _invs(b, cfg, spec, s)
        goals = {n: z3.Not(_zb(spec.invariants[n.split(".", 2)[2]](b, cfg, post))) for n in names}
        sv = _solver(timeout_ms)
        sv.add(*cons, *acons, *pre, *b.card_axioms())
        for n in names:
            t0 = time.time()
            sv.push()
            sv.add(goals[n])
            r = sv.check()
            detail = ""
            if r == z3.sat:
                detail = "  counterexample (parametric model):\n%s" % str(sv.model())[:3000] if explain else ""
            elif r != z3.unsat:
                detail = _why(sv, r)
            sv.pop()
            out.append(Result(n, _status(r), time.time() - t0, detail))
        return out
    # noninterference
    t = z3.Const("obs_tenant", b.sorts["T"])
    args, acons = _args(b, cfg, spec, op, "arg")
    s1, c1 = _typed(b, cfg, "s1")
    run1 = fn(b, cfg, s1, *args)
    for n in names:
        t0 = time.time()
        sv = _solver(timeout_ms)
        sv.add(t != b.nobody(), *acons, *c1, *_invs(b, cfg, spec, s1))
        goal, _, _ = ni_assertions(b, cfg, spec, op, n.split(".")[2], args, t, s1, run1,
                                   lambda prefix: _typed(b, cfg, prefix), lambda st: _invs(b, cfg, spec, st))
        sv.add(*goal, *b.card_axioms())
        r = sv.check()
        detail = "" if r == z3.unsat else (_why(sv, r) if r != z3.sat else "  counterexample found (parametric)")
        out.append(Result(n, _status(r), time.time() - t0, detail))
    return out
