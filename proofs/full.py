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
here) and the sanity checks of the observation relation. Evidence that the parametric proofs are
not vacuous: for every mutant, the obligations the fast tier refutes are NOT proved here
(tests/test_proofs_full.py), so the quantified assumptions do not imply everything.
"""
import time

import z3

from nanvix.spec import model as M
from nanvix.spec.backend import Z3Full
from nanvix.proofs.engine import Result, Spec, FAST_CFG

FULL_CFG = FAST_CFG
TIMEOUT_MS = 20_000
NOT_COVERED_INVS = ("quotas",)
COUNTING_OPS = ("create_uvm", "open_channel", "map_page")
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


def groups(names):
    g = {}
    for n in names:
        parts = n.split(".")
        key = (parts[0], parts[1]) if parts[0] in ("ind", "ni") else ("global", parts[0])
        g.setdefault(key, []).append(n)
    return g


def _leaf_sort(b, cfg, f, kind):
    if f == "p_owner":
        return b.sorts["U"]
    if kind == "bool":
        return z3.BoolSort()
    if kind[0] == "bv":
        return z3.BitVecSort(kind[1])
    if kind[0] == "id":
        return b.sorts[kind[1]]
    return z3.BitVecSort(Z3Full.ID_WIDTH)


def sym_state(b, cfg, prefix, only=None):
    s, cons = {}, []
    for f, (dims, kind) in M.fields(cfg).items():
        if only is not None and f not in only:
            continue
        rng = _leaf_sort(b, cfg, f, kind)
        for d in reversed(dims):
            rng = z3.ArraySort(b.sorts[d], rng)
        a = z3.Const("%s.%s" % (prefix, f), rng)
        s[f] = a
        if kind != "bool" and kind[0] in ("enum", "int") and f != "p_owner" and len(dims) == 1:
            x = z3.Const("%s.%s.x" % (prefix, f), b.sorts[dims[0]])
            bound = z3.ULT(a[x], kind[1]) if kind[0] == "enum" else z3.ULE(a[x], kind[1])
            cons.append(z3.ForAll([x], bound))
    return s, cons


def sym_args(b, cfg, op, prefix):
    out, cons = [], []
    for i, sort in enumerate(M.OPS[op][1]):
        name = "%s.%s%d" % (prefix, sort, i)
        if sort in ("T", "U", "C", "P", "K"):
            v = z3.Const(name, b.sorts[sort])
        elif sort == "V":
            v = z3.BitVec(name, cfg.V)
        elif sort == "I":
            v = z3.BitVec(name, cfg.W)
        elif sort == "B":
            v = z3.Bool(name)
        elif sort == "S":
            v = z3.BitVec(name, cfg.W)
            cons.append(z3.ULT(v, cfg.R))
        else:
            v = z3.BitVec(name, Z3Full.ID_WIDTH)
            cons.append(z3.ULT(v, 2))
        out.append(v)
    return out, cons


def _zb(x):
    return z3.BoolVal(x) if isinstance(x, bool) else x


def _invs(b, cfg, spec, s):
    return [_zb(f(b, cfg, s)) for n, f in spec.invariants.items() if n not in NOT_COVERED_INVS]


def _solver():
    sv = z3.Solver()
    sv.set("timeout", TIMEOUT_MS)
    return sv


def _status(r):
    return "proved" if r == z3.unsat else ("failed" if r == z3.sat else "unknown")


def run_group(key, names, spec=None, cfg=FULL_CFG, explain=True):
    spec = spec or Spec()
    b = Z3Full(cfg)
    kind, what = key
    out = []
    if kind == "global":
        statics, cons = sym_state(b, cfg, "init", only=M.STATIC_FIELDS)
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
    fn, _, actor = spec.ops[op]
    if kind == "ind":
        s, cons = sym_state(b, cfg, "pre")
        args, acons = sym_args(b, cfg, op, "arg")
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
    args, acons = sym_args(b, cfg, op, "arg")
    s1, c1 = sym_state(b, cfg, "s1")
    e1, o1, p1 = fn(b, cfg, s1, *args)
    obs_eq = lambda x, y: _zb(b.eq(spec.observe(b, cfg, x, t), spec.observe(b, cfg, y, t)))
    for n in names:
        t0 = time.time()
        which = n.split(".")[2]
        sv = _solver()
        sv.add(*acons, *c1, *_invs(b, cfg, spec, s1))
        if which == "local_respect":
            sv.add(_zb(b.ne(actor(b, s1, *args), t)))
            sv.add(z3.Not(obs_eq(s1, p1)))
        else:
            s2, c2 = sym_state(b, cfg, "s2")
            e2, o2, p2 = fn(b, cfg, s2, *args)
            sv.add(*c2, *_invs(b, cfg, spec, s2), obs_eq(s1, s2), _zb(b.eq(actor(b, s1, *args), t)))
            if which == "output_consistency":
                goal = b.and_(b.eq(actor(b, s2, *args), t), b.eq(e1, e2), b.eq(o1, o2))
            else:
                goal = obs_eq(p1, p2)
            sv.add(z3.Not(_zb(goal)))
        r = sv.check()
        detail = "" if r == z3.unsat else ("  z3: %s" % r if r != z3.sat else "  counterexample found (parametric)")
        out.append(Result(n, _status(r), time.time() - t0, detail))
    return out
