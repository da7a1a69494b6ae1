"""Proof obligations over the Z3 interpretation of nanvix.spec (the `fast` tier: bounded
finite sorts, quantifier-free).

A `Spec` bundles what the obligations are about (operations, invariants, observation, initial
state); mutants (nanvix.proofs.mutants) hand in a modified Spec. Obligation names:

  init.<inv>                      the initial state satisfies <inv> (any partition of ids/pages)
  ind.<op>.<inv>                  all invariants before <op> imply <inv> after it
  ni.<op>.local_respect           <op> on behalf of tenant A changes nothing tenant B observes
  ni.<op>.output_consistency      states A cannot tell apart give A's <op> the same results
  ni.<op>.step_consistency        ... and post-states A still cannot tell apart
                                  (for TIMING_OPS, schedule: between states that also agree on
                                  whether the core is idle: the declared timing channel, no more)
  vacuity.init_exists             the initial state exists (invariants satisfiable together)
  vacuity.<op>                    <op> succeeds from some state satisfying all invariants
  vacuity.independent.<inv>       <inv> is not implied by the other invariants
  sanity.obs_nontrivial           it distinguishes some states and identifies some distinct ones
"""
import time
from dataclasses import dataclass, field, replace

import z3

from nanvix import spec as M
from nanvix.spec.backend import Z3Bounded
from nanvix.spec.symbolic import sym_args, sym_state, state_value, value, IDW

FAST_CFG = M.Config(T=2, U=2, C=2, P=3, K=2, R=2, W=3, V=1, EW=2, hyp=1, quota_uvms=2, quota_pages=2)
# The fast tier proves every obligation at each of these sizes (the first names the tier): more
# tenants than cores, user-VM slots beyond the quota and indices that wrap sooner; more cores, a
# larger ring and wider payloads.
FAST_SIZES = (
    FAST_CFG,
    M.Config(T=3, U=3, C=3, P=4, K=2, R=2, W=2, V=1, EW=1, hyp=1, quota_uvms=1, quota_pages=1),
    M.Config(T=2, U=2, C=2, P=4, K=3, R=4, W=3, V=2, EW=1, hyp=1, quota_uvms=1, quota_pages=2),
)
TIMEOUT_MS = 60_000


def size_name(cfg):
    return "T%dU%dP%dK%dR%dW%d" % (cfg.T, cfg.U, cfg.P, cfg.K, cfg.R, cfg.W)


@dataclass
class Spec:
    ops: dict = field(default_factory=lambda: dict(M.OPS))
    invariants: dict = field(default_factory=lambda: dict(M.INVARIANTS))
    observe: object = M.observe
    init: object = M.init
    timing_ops: dict = field(default_factory=lambda: dict(M.TIMING_OPS))

    def copy(self, **kw):
        return replace(self, ops=dict(self.ops), invariants=dict(self.invariants),
                       timing_ops=dict(self.timing_ops), **kw)


@dataclass
class Result:
    name: str
    status: str          # proved | failed | unknown
    seconds: float
    detail: str = ""


def obligation_names(spec=None, tier="fast"):
    spec = spec or Spec()
    names = ["vacuity.init_exists", "sanity.obs_nontrivial"]
    names += ["init.%s" % i for i in spec.invariants]
    names += ["vacuity.independent.%s" % i for i in spec.invariants if i not in M.DERIVED]
    names += ["corollary.%s" % i for i in spec.invariants if i in M.DERIVED]
    for op in spec.ops:
        names += ["ind.%s.%s" % (op, i) for i in spec.invariants]
        names.append("vacuity.%s" % op)
        names += ["ni.%s.%s" % (op, w) for w in ("local_respect", "output_consistency", "step_consistency")]
    return names


def groups(names):
    """Obligations sharing a solver: one group per op for induction+vacuity, one per op for NI,
    one for the global ones."""
    g = {}
    for n in names:
        parts = n.split(".")
        if parts[0] == "ind" or (parts[0] == "vacuity" and parts[1] not in ("init_exists", "independent")):
            key = ("ind", parts[1])
        elif parts[0] == "ni":
            key = ("ni", parts[1])
        else:
            key = ("global", parts[0])
        g.setdefault(key, []).append(n)
    return g


# ---------------------------------------------------------------------------------------------

def _invs(b, cfg, spec, s):
    return [f(b, cfg, s) for f in spec.invariants.values()]


def _check(solver):
    solver.set("timeout", TIMEOUT_MS)
    return solver.check()


def _model(solver):
    """The model of a counterexample, after minimising (which shortened the solver's timeout)."""
    _check(solver)
    return solver.model()


def _args_text(m, args):
    return ", ".join(str(value(m, a)) for a in args)


def _zb(x):
    return z3.BoolVal(x) if isinstance(x, bool) else x


def _leaves(v, path=()):
    if isinstance(v, tuple):
        for i, x in enumerate(v):
            yield from _leaves(x, path + (i,))
    else:
        yield path, v


def diff_text(pre, post):
    lines = []
    for f in pre:
        if pre[f] == post[f]:
            continue
        a = dict(_leaves(pre[f]))
        for path, v in _leaves(post[f]):
            if a[path] != v:
                idx = "".join("[%d]" % i for i in path)
                lines.append("    %s%s: %s -> %s" % (f, idx, a[path], v))
    return "\n".join(lines) or "    (no change)"


def state_text(cfg, st, skip_default=True):
    """A state, omitting fields equal to their minimised default (0 / False)."""
    lines = []
    for f, v in st.items():
        leaves = [(p, x) for p, x in _leaves(v) if not (skip_default and x in (0, False))]
        if leaves:
            lines.append("    %s = %s" % (f, v))
    return "\n".join(lines) or "    (all zero)"


def _minimise(solver, s):
    """Greedily pin pre-state fields to 0/False while the counterexample survives."""
    for f, v in s.items():
        eqs = []
        for _, leaf in _leaves(v):
            if isinstance(leaf, z3.BoolRef):
                eqs.append(z3.Not(leaf))
            elif isinstance(leaf, z3.BitVecRef):
                eqs.append(leaf == 0)
        if not eqs:
            continue
        solver.push()
        solver.add(*eqs)
        solver.set("timeout", 5000)
        if solver.check() == z3.sat:
            solver.pop()
            solver.add(*eqs)
        else:
            solver.pop()


def run_group(key, names, spec=None, cfg=FAST_CFG, explain=True):
    spec = spec or Spec()
    kind, what = key
    b = Z3Bounded(cfg)
    if kind == "ind":
        return _run_ind(b, cfg, spec, what, names, explain)
    if kind == "ni":
        return _run_ni(b, cfg, spec, what, names, explain)
    return _run_global(b, cfg, spec, names, explain)


def _status(r):
    return "proved" if r == z3.unsat else ("failed" if r == z3.sat else "unknown")


def _sat_status(r):
    return "proved" if r == z3.sat else ("failed" if r == z3.unsat else "unknown")


def _run_ind(b, cfg, spec, op, names, explain):
    out = []
    s, cons = sym_state(cfg, "pre")
    args, acons = sym_args(cfg, op, "arg")
    fn = spec.ops[op][0]
    err, o, post = fn(b, cfg, s, *args)
    solver = z3.Solver()
    solver.add(*cons, *acons)
    solver.add(*[_zb(x) for x in _invs(b, cfg, spec, s)])
    for n in names:
        t0 = time.time()
        if n.startswith("vacuity."):
            solver.push()
            solver.add(_zb(b.eq(err, M.OK)))
            r = _check(solver)
            st = _sat_status(r)
            detail = "" if st == "proved" else "%s never succeeds from a state satisfying the invariants" % op
            solver.pop()
            out.append(Result(n, st, time.time() - t0, detail))
            continue
        inv = n.split(".", 2)[2]
        solver.push()
        solver.add(z3.Not(_zb(spec.invariants[inv](b, cfg, post))))
        r = _check(solver)
        detail = ""
        if r == z3.sat and explain:
            _minimise(solver, s)
            m = _model(solver)
            pre_v, post_v = state_value(m, s), state_value(m, post)
            detail = ("  counterexample to %s after %s(%s) (err=%s):\n  pre-state (minimised, zero fields omitted):\n%s\n"
                      "  pre -> post:\n%s" % (inv, op, _args_text(m, args),
                                              M.ERR_NAMES[value(m, err)] if value(m, err) < len(M.ERR_NAMES) else value(m, err),
                                              state_text(cfg, pre_v), diff_text(pre_v, post_v)))
        solver.pop()
        out.append(Result(n, _status(r), time.time() - t0, detail))
    return out


def _obs_eq(b, cfg, spec, s1, s2, t):
    return _zb(b.eq(spec.observe(b, cfg, s1, t), spec.observe(b, cfg, s2, t)))


def ni_assertions(b, cfg, spec, op, which, args, t, s1, run1, new_state, invs):
    """What a counterexample to ni.<op>.<which> satisfies, beyond s1's own constraints (shared by
    both tiers). run1 = op's (err, out, post) from s1; new_state(prefix) -> (state, constraints);
    invs(state) -> the invariants assumed of it. Returns (assertions, s2, run2); s2 and run2 are
    None for local_respect, which needs one state."""
    fn, _, actor = spec.ops[op]
    e1, o1, p1 = run1
    if which == "local_respect":
        return [_zb(b.ne(actor(b, s1, *args), t)), z3.Not(_obs_eq(b, cfg, spec, s1, p1, t))], None, None
    s2, c2 = new_state("s2")
    e2, o2, p2 = fn(b, cfg, s2, *args)
    if which == "output_consistency":
        goal = b.and_(b.eq(actor(b, s2, *args), t), b.eq(e1, e2), b.eq(o1, o2))
    else:
        goal = _obs_eq(b, cfg, spec, p1, p2, t)
    timing = spec.timing_ops.get(op)
    same_timing = [_zb(b.eq(timing(b, cfg, s1, *args), timing(b, cfg, s2, *args)))] if timing else []
    return ([*c2, *invs(s2), _obs_eq(b, cfg, spec, s1, s2, t), _zb(b.eq(actor(b, s1, *args), t)),
             *same_timing, z3.Not(_zb(goal))], s2, (e2, o2, p2))


def _run_ni(b, cfg, spec, op, names, explain):
    out = []
    fn, _, actor = spec.ops[op]
    t = z3.BitVec("obs_tenant", IDW)
    args, acons = sym_args(cfg, op, "arg")
    s1, c1 = sym_state(cfg, "s1")
    run1 = fn(b, cfg, s1, *args)
    invs = lambda st: [_zb(x) for x in _invs(b, cfg, spec, st)]
    for n in names:
        t0 = time.time()
        which = n.split(".")[2]
        solver = z3.Solver()
        solver.add(z3.ULT(t, cfg.T), *acons, *c1, *invs(s1))
        goal, s2, run2 = ni_assertions(b, cfg, spec, op, which, args, t, s1, run1,
                                       lambda prefix: sym_state(cfg, prefix), invs)
        solver.add(*goal)
        r = _check(solver)
        detail = ""
        if r == z3.sat and explain and s2 is None:
            _minimise(solver, s1)
            m = _model(solver)
            detail = ("  %s(%s) on behalf of tenant %s changes what tenant %s observes:\n%s"
                      % (op, _args_text(m, args), value(m, actor(b, s1, *args)), value(m, t),
                         diff_text(state_value(m, s1), state_value(m, run1[2]))))
        elif r == z3.sat and explain:
            # minimise: make s1 and s2 agree on as many fields as the counterexample allows
            for f in s1:
                solver.push()
                solver.add(_zb(b.eq(s1[f], s2[f])))
                solver.set("timeout", 5000)
                keep = solver.check() == z3.sat
                solver.pop()
                if keep:
                    solver.add(_zb(b.eq(s1[f], s2[f])))
            m = _model(solver)
            detail = ("  tenant %s cannot tell these states apart, yet %s(%s) gives err %s/%s out %s/%s "
                      "or post-states it can tell apart.\n  s1 -> s2 differences (minimised):\n%s"
                      % (value(m, t), op, _args_text(m, args), value(m, run1[0]), value(m, run2[0]),
                         value(m, run1[1]), value(m, run2[1]), diff_text(state_value(m, s1), state_value(m, s2))))
        out.append(Result(n, _status(r), time.time() - t0, detail))
    return out


def _run_global(b, cfg, spec, names, explain):
    out = []
    for n in names:
        t0 = time.time()
        detail = ""
        if n.startswith("init.") or n == "vacuity.init_exists":
            statics, cons = sym_state(cfg, "init", only=M.STATIC_FIELDS)
            s0 = spec.init(b, cfg, statics)
            solver = z3.Solver()
            solver.add(*cons)
            if n == "vacuity.init_exists":
                solver.add(*[_zb(x) for x in _invs(b, cfg, spec, s0)])
                r = _check(solver)
                st = _sat_status(r)
            else:
                solver.add(z3.Not(_zb(spec.invariants[n[5:]](b, cfg, s0))))
                r = _check(solver)
                st = _status(r)
                if r == z3.sat and explain:
                    detail = "  the initial state violates %s:\n%s" % (n[5:], state_text(cfg, state_value(solver.model(), s0)))
        elif n.startswith("vacuity.independent.") or n.startswith("corollary."):
            inv = n.split(".")[-1]
            s, cons = sym_state(cfg, "s")
            solver = z3.Solver()
            solver.add(*cons)
            solver.add(*[_zb(f(b, cfg, s)) for k, f in spec.invariants.items() if k != inv])
            solver.add(z3.Not(_zb(spec.invariants[inv](b, cfg, s))))
            r = _check(solver)
            if n.startswith("corollary."):
                st = _status(r)
                if st == "failed":
                    detail = "  %s does not follow from the other invariants" % inv
            else:
                st = _sat_status(r)
                if st == "failed":
                    detail = "  %s is implied by the other invariants" % inv
        elif n == "sanity.obs_nontrivial":
            # some reachable-like states differ for t; some distinct states look the same to t
            t = z3.BitVec("t", IDW)
            (s1, c1), (s2, c2) = sym_state(cfg, "a"), sym_state(cfg, "b")
            base = [z3.ULT(t, cfg.T), *c1, *c2, *[_zb(x) for x in _invs(b, cfg, spec, s1)],
                    *[_zb(x) for x in _invs(b, cfg, spec, s2)]]
            solver = z3.Solver()
            solver.add(*base, z3.Not(_obs_eq(b, cfg, spec, s1, s2, t)))
            r1 = _check(solver)
            solver = z3.Solver()
            solver.add(*base, _obs_eq(b, cfg, spec, s1, s2, t), z3.Not(_zb(b.eq(tuple(s1.values()), tuple(s2.values())))))
            r2 = _check(solver)
            st = "proved" if (r1 == z3.sat and r2 == z3.sat) else ("unknown" if z3.unknown in (r1, r2) else "failed")
            if st == "failed":
                detail = "  observation is trivial (distinguishes %s, identifies distinct %s)" % (r1, r2)
        else:
            raise ValueError(n)
        out.append(Result(n, st, time.time() - t0, detail))
    return out
