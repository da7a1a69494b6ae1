"""Explicit-state exploration of the concrete interpretation of nanvix.spec.

Breadth-first over every state reachable from the initial state with a finite action alphabet;
every invariant is checked on every state (violations come with a shortest trace), deadlocks
(states without a successor) are counted, and liveness is checked on the state graph (networkx):

  every request an honest guest submits is eventually answered (the system VM's private cq_tail
  passes it) or fails (its channel leaves OPEN: closed after the user VM ended, or BROKEN),
  under strong fairness of the system's actions FAIR_OPS: no strongly connected set of states
  (with stuttering: one state counts), fair for those actions, in which a request stays pending.

  no tenant starves forever (a runnable vCPU and none on a core), under strong fairness of each
  core's scheduler as one action (whichever vCPU it picks: the spec's fairness rule, not the
  alphabet, must make it pick the starving tenant) and of the end of every time slice (preempt).

  every runnable vCPU eventually runs, under the same fairness (the spec's rule among one
  tenant's vCPUs, not the alphabet, must make the scheduler pick the one that waits).

The guest's own choices (submit, block, exit, crash), the adversary's (crash_sysvm, scribbles)
and the lifecycle (create/destroy, map/unmap) are not assumed fair. An invariant violation is
printed as soon as it is found; with stop_first the run ends there (and checks no liveness).
With check_reduction every new state is compared with its representative under the state
reduction (make_canon), which is sound only for a spec that reads rings as it assumes: a spec (or
a mutant) that does not is reported (reduction_unsound), and must be explored with reduce=False.
"""
import sys
import time
from collections import deque

import networkx as nx

from nanvix import spec as M
from nanvix.spec.backend import Concrete

FAIR_OPS = ("take", "complete", "deliver", "schedule", "wake", "restart_sysvm", "close_channel", "start_sysvm")


def config(tenants=2, user_vms=2, pages=None, ring=2, cores=1, hyp=1, quota_uvms=None, quota_pages=None):
    W = ring.bit_length()          # R < 2**W
    if pages is None:
        pages = hyp + user_vms       # one channel page per user VM; pass more to explore map_page
    # EW=0: the system VMs' epoch counters are abstracted away here (no guard reads them; the
    # proofs keep them), otherwise every crash/restart doubles the state space.
    return M.Config(T=tenants, U=user_vms, C=user_vms, P=pages, K=cores, R=ring, W=W, V=1, EW=0,
                    hyp=hyp, quota_uvms=user_vms if quota_uvms is None else quota_uvms,
                    quota_pages=pages if quota_pages is None else quota_pages)


def alphabet(cfg, s0, payloads=1, hostile=False, cross=False):
    """The finite action alphabet: (op name, args). Ids are only paired with their own tenant's
    ids, unless `cross`: then also with every other tenant's (the spec must refuse those: a
    missing ownership check shows as a violation)."""
    T, U, C, P, K = cfg.T, cfg.U, cfg.C, cfg.P, cfg.K
    ut, pt = s0["u_tenant"], s0["p_tenant"]
    acts = []
    for t in range(T):
        acts += [("create_tenant", (t,)), ("start_sysvm", (t,)), ("crash_sysvm", (t,)), ("restart_sysvm", (t,))]
    for u in range(U):
        acts += [("create_uvm", (u, t)) for t in range(T) if cross or t == ut[u]]
        acts += [("start_uvm", (u,)), ("exit_uvm", (u,)), ("crash_uvm", (u,)), ("destroy_uvm", (u,)), ("recycle_uvm", (u,)),
                 ("wake", (u,))]
        for p in range(0 if cross else cfg.hyp, P):
            if cross or pt[p] == ut[u]:
                acts += [("open_channel", (c, u, p)) for c in range(C) if c == u or (cross and s0["c_tenant"][c] != ut[u])]
                acts += [("map_page", (p, u)), ("unmap_page", (p, u))]
        for k in range(K):
            acts.append(("schedule", (k, u)))
    for c in range(C):
        acts += [("submit", (c, v)) for v in range(payloads)]
        acts += [("take", (c,)), ("complete", (c, True)), ("complete", (c, False)), ("deliver", (c,)),
                 ("close_channel", (c,))]
        if hostile:
            acts += [("scribble_sq_tail", (c, (1 << cfg.W) - 1)), ("scribble_cq_head", (c, 1)),
                     ("scribble_entry", (c, 0, 1)), ("scribble_pub", (c, 0, (1 << cfg.W) - 1))]
    for k in range(K):
        acts += [("preempt", (k,)), ("block", (k,))]
    return acts


def make_canon(cfg, FIELDS):
    """A sound state reduction for honest channels (a bisimulation quotient): every operation and
    invariant reads a channel's ring only through index differences and slot(index) within the
    live windows [cq_head, sq_tail) (SQ, history, execution counts), [cq_head, cq_tail) (CQ),
    [cq_tail, sq_head) (in-service copies). So rotating an honest channel's indices (and the
    ghost delivery count, which equals cq_head) to cq_head = 0, its arrays with them, and zeroing
    data outside the windows changes no behaviour. A scribbled (dishonest) channel is left
    exactly as it is, but for its ghosts (zeroed: nothing reads them).
    One ghost is dropped, not kept: the last completion delivered (c_any, c_lastv, c_lastr),
    which only the second half of delivered_in_order reads (it equals entry cq_head - 1 of the
    history and of the results). Keeping it multiplies the state space; that half is proved per
    operation by `nanvix verify` and not re-checked here."""
    fi = {f: k for k, f in enumerate(FIELDS)}
    R, M_ = cfg.R, (1 << cfg.W) - 1
    H = 1 << cfg.W
    idx = [fi[f] for f in ("c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh", "c_pcqt", "c_ndl")]
    ist, ihon = fi["c_state"], fi["c_honest"]
    isq, isvc, icqv, icqr, ihist = fi["c_sq"], fi["c_svc"], fi["c_cqv"], fi["c_cqr"], fi["c_hist"]
    iruns, iok = fi["c_runs"], fi["c_ok"]
    ilast = [(fi["c_any"], False), (fi["c_lastv"], 0), (fi["c_lastr"], False)]
    indl = fi["c_ndl"]

    def canon(tup):
        lst = None
        for c in range(cfg.C):
            if tup[ist][c] != M.C_OPEN or not tup[ihon][c]:
                # no guard reads the ghosts and no invariant those of a channel that is not an
                # honest open one (it never becomes one again but by open_channel, which resets them)
                if lst is None:
                    lst = list(tup)
                for k, v in ((iruns, (0,) * H), (iok, (False,) * H), (indl, 0)) + tuple(ilast):
                    col = list(lst[k])
                    col[c] = v
                    lst[k] = tuple(col)
                continue
            sqt, cqh, sqh, cqt = (tup[k][c] for k in idx[:4])
            n_sq, n_cq, n_sh = (sqt - cqh) & M_, (cqt - cqh) & M_, (sqh - cqh) & M_
            sq, svc, cqv, cqr, hist, runs, ok = (tup[k][c] for k in (isq, isvc, icqv, icqr, ihist, iruns, iok))
            nsq, nsvc, ncqv, ncqr, nhist = [0] * R, [0] * R, [0] * R, [False] * R, [0] * H
            nruns, nok = [0] * H, [False] * H
            for j in range(min(n_sq, R)):
                i = (cqh + j) & M_
                nsq[j % R] = sq[i % R]
                nhist[j], nruns[j], nok[j] = hist[i], runs[i], ok[i]
                if j < n_cq:
                    ncqv[j % R], ncqr[j % R] = cqv[i % R], cqr[i % R]
                if n_cq <= j < n_sh:
                    nsvc[j % R] = svc[i % R]
            if lst is None:
                lst = list(tup)
            for k in idx:
                col = list(lst[k])
                col[c] = (col[c] - cqh) & M_
                lst[k] = tuple(col)
            for k, v in ((isq, nsq), (isvc, nsvc), (icqv, ncqv), (icqr, ncqr), (ihist, nhist), (iruns, nruns),
                         (iok, nok)):
                col = list(lst[k])
                col[c] = tuple(v)
                lst[k] = tuple(col)
            for k, v in ilast:
                col = list(lst[k])
                col[c] = v
                lst[k] = tuple(col)
        return tup if lst is None else tuple(lst)

    def rotate(tup, d):
        """Another member of tup's class: every honest channel's indices moved on by d (its
        arrays with them), so that indices wrap around where tup's do not."""
        lst = list(tup)
        for c in range(cfg.C):
            if tup[ist][c] != M.C_OPEN or not tup[ihon][c]:
                continue
            for k in idx:
                col = list(lst[k])
                col[c] = (col[c] + d) & M_
                lst[k] = tuple(col)
            for k, n in ((isq, R), (isvc, R), (icqv, R), (icqr, R), (ihist, H), (iruns, H), (iok, H)):
                old = tup[k][c]
                col = list(lst[k])
                col[c] = tuple(old[(j - d) % n] for j in range(n))
                lst[k] = tuple(col)
        return tuple(lst)
    canon.rotate = rotate
    return canon


class _Noninterference:
    """Noninterference on the explored states, the proofs' unwinding conditions checked
    explicitly: for every tenant t, (1) an operation on another tenant's behalf that succeeds
    leaves what t observes as it was (local respect); (2) any two states t cannot tell apart
    (and that agree on what the declared timing channel may reveal to t) give every operation
    on t's behalf the same error, the same output and post-states t cannot tell apart (output
    and step consistency). (2) compares each state with the first one met of its class, so it
    keeps one entry per state and tenant. A class is keyed by a hash of the observation; a
    mismatch is confirmed on the exact observations before it is reported."""

    def __init__(self, cfg, b, spec, fns, acts, parent, thaw, progress=False):
        self.cfg, self.b, self.fns, self.acts, self.parent, self.thaw = cfg, b, fns, acts, parent, thaw
        self.progress = progress
        self.observe = spec.observe if spec is not None else M.observe
        ops = spec.ops if spec is not None else M.OPS
        timing = spec.timing_ops if spec is not None else M.TIMING_OPS
        self.actor = [ops[name][2] for name, _, _ in fns]
        self.timing = [timing.get(name) for name, _, _ in fns]
        self.classes = {}
        self.found = []
        self.seen = set()       # (kind, tenant, action name): one report each

    def state(self, i, s, results):
        """results: per action, (err, out, post) from s (the explorer's own steps)."""
        b, cfg = self.b, self.cfg
        obs = [self.observe(b, cfg, s, t) for t in range(cfg.T)]
        hobs = [hash(o) for o in obs]
        mine = [[] for _ in range(cfg.T)]
        when = [[] for _ in range(cfg.T)]
        for ai, (name, args, _) in enumerate(self.fns):
            err, out, post = results[ai]
            actor = self.actor[ai](b, s, *args)
            for t in range(cfg.T):
                if actor == t:
                    po = hash(self.observe(b, cfg, post, t)) if err == 0 else hobs[t]
                    mine[t].append((err, out, po))
                    if self.timing[ai] is not None:
                        when[t].append(self.timing[ai](b, cfg, s, *args))
                elif err == 0 and ("local_respect", t, name) not in self.seen:
                    if self.observe(b, cfg, post, t) != obs[t]:
                        self._report("local_respect", t, ai, i, None)
        for t in range(cfg.T):
            key = (t, hobs[t], tuple(when[t]))
            got = self.classes.get(key)
            if got is None:
                self.classes[key] = (hash(tuple(mine[t])), i)
            elif got[0] != hash(tuple(mine[t])):
                self._confirm(t, got[1], i, s, obs[t], mine[t], results)

    def _confirm(self, t, j, i, s, obs, mine, results):
        b, cfg = self.b, self.cfg
        s2 = self.thaw(j)
        if self.observe(b, cfg, s2, t) != obs:
            return   # (two observations with one hash)
        for ai, (name, args, fn) in enumerate(self.fns):
            if self.actor[ai](b, s, *args) != t or self.actor[ai](b, s2, *args) != t:
                continue
            if self.timing[ai] is not None and self.timing[ai](b, cfg, s, *args) != self.timing[ai](b, cfg, s2, *args):
                continue
            e1, o1, p1 = results[ai]
            e2, o2, p2 = fn(b, cfg, s2, *args)
            if (e1, o1) != (e2, o2):
                kind = "output_consistency"
            elif e1 == 0 and self.observe(b, cfg, p1, t) != self.observe(b, cfg, p2, t):
                kind = "step_consistency"
            else:
                continue
            if (kind, t, name) not in self.seen:
                self._report(kind, t, ai, i, j, (e1, e2))
            return

    def _report(self, kind, t, ai, i, j, errs=None):
        name, args, _ = self.fns[ai]
        self.seen.add((kind, t, name))
        v = {"check": "ni.%s.%s" % (name, kind), "tenant": t,
             "action": "%s(%s)" % (name, ", ".join(map(str, args))), "trace": _trace(self.parent, self.acts, i)}
        if j is not None:   # the other state t cannot tell apart
            v["other_trace"] = _trace(self.parent, self.acts, j)
            v["errors"] = list(errs)
        self.found.append(v)
        if self.progress:   # as soon as found
            print("explore: %s violated for tenant %d by %s after: %s" % (v["check"], t, v["action"], " ; ".join(v["trace"])),
                  file=sys.stderr, flush=True)


def explore(cfg, payloads=1, hostile=False, spec=None, max_states=2_000_000, progress=True, liveness=True,
            reduce=True, stop_first=False, check_reduction=False, cross=False, noninterference=True):
    """Returns a dict: states, transitions, violations (each with a shortest trace), deadlocks,
    liveness_violations, ni_violations (with noninterference), seconds."""
    t0 = time.time()
    ops = (spec.ops if spec is not None else M.OPS)
    invs = (spec.invariants if spec is not None else M.INVARIANTS)
    b = Concrete(cfg)
    s0 = M.init(b, cfg)
    FIELDS = tuple(s0)
    canon = make_canon(cfg, FIELDS) if reduce else (lambda t: t)
    freeze = lambda s: canon(tuple(s[f] for f in FIELDS))
    thaw = lambda tup: dict(zip(FIELDS, tup))
    acts = alphabet(cfg, s0, payloads, hostile, cross)
    fns = [(name, args, ops[name][0]) for name, args in acts]
    ids = {freeze(s0): 0}
    states = [freeze(s0)]
    parent = [None]
    edges = []               # (src, dst, action index)
    violations = []
    seen_viol = set()
    deadlocks = []
    unsound = []
    ni = _Noninterference(cfg, b, spec, fns, acts, parent, lambda j: thaw(states[j]), progress) if noninterference else None
    q = deque([0])
    last = time.time()
    while q:
        i = q.popleft()
        s = thaw(states[i])
        for name, f in invs.items():
            if name not in seen_viol and not f(b, cfg, s):
                seen_viol.add(name)
                violations.append({"invariant": name, "state": i, "trace": _trace(parent, acts, i)})
                if progress:   # as soon as found (breadth-first: the trace is a shortest one)
                    print("explore: %s violated after %d states; shortest trace: %s"
                          % (name, len(states), " ; ".join(violations[-1]["trace"])), file=sys.stderr, flush=True)
        if violations and stop_first:
            break
        nsucc = 0
        results = [fn(b, cfg, s, *args) for name, args, fn in fns]
        if ni is not None:
            ni.state(i, s, results)
            if ni.found and stop_first:
                break
        for ai, (name, args, fn) in enumerate(fns):
            err, _, s2 = results[ai]
            if err != 0:
                continue
            key = freeze(s2)
            if key == states[i]:
                continue
            j = ids.get(key)
            if j is None and check_reduction and reduce:
                why = _reduction_differs(b, cfg, invs, fns, thaw(canon.rotate(key, (1 << cfg.W) - 1)), thaw(key),
                                         freeze)
                if why and len(unsound) < 3:
                    unsound.append({"trace": _trace(parent, acts, i) + ["%s(%s)" % (name, ", ".join(map(str, args)))],
                                    "differs": why})
            if j is None:
                j = len(states)
                ids[key] = j
                states.append(key)
                parent.append((i, ai))
                q.append(j)
            edges.append((i, j, ai))
            nsucc += 1
        if nsucc == 0:
            deadlocks.append(i)
        if progress and time.time() - last > 2:
            last = time.time()
            print("explore: %d states, %d transitions, %d queued, %.0fs" % (len(states), len(edges), len(q),
                                                                            last - t0), file=sys.stderr, flush=True)
        if len(states) > max_states:
            raise RuntimeError("state space exceeds %d states" % max_states)
    live = []
    stopped = bool((violations or (ni and ni.found)) and stop_first)
    if liveness and not stopped:
        if progress:
            print("explore: checking liveness over %d states" % len(states), file=sys.stderr, flush=True)
        live = _liveness(cfg, states, FIELDS, edges, acts, parent)
    return {"states": len(states), "transitions": len(edges), "violations": violations,
            "deadlocks": len(deadlocks), "deadlock_traces": [_trace(parent, acts, d) for d in deadlocks[:3]],
            "liveness_violations": live, "seconds": round(time.time() - t0, 3),
            **({"ni_violations": ni.found} if ni is not None else {}),
            "config": {k: getattr(cfg, k) for k in ("T", "U", "C", "P", "K", "R", "W", "V", "EW", "hyp")},
            "actions": len(acts), "payloads": payloads, "hostile": hostile, "cross_tenant": cross,
            "quotas": {"user_vms": cfg.quota_uvms, "pages": cfg.quota_pages}, "stopped_early": stopped,
            **({"reduction_unsound": unsound} if check_reduction else {})}


def _reduction_differs(b, cfg, invs, fns, s, r, freeze):
    """The state reduction is sound for the spec under test only if a state and its
    representative are alike: the same invariants hold, and every action gives the same error
    and output and successors with the same representative. What differs, or None."""
    for name, f in invs.items():
        if bool(f(b, cfg, s)) != bool(f(b, cfg, r)):
            return "invariant %s" % name
    for name, args, fn in fns:
        e1, o1, p1 = fn(b, cfg, s, *args)
        e2, o2, p2 = fn(b, cfg, r, *args)
        if e1 != e2 or o1 != o2 or (e1 == 0 and freeze(p1) != freeze(p2)):
            return "%s(%s)" % (name, ", ".join(map(str, args)))
    return None


def _trace(parent, acts, i):
    out = []
    while parent[i] is not None:
        i, ai = parent[i]
        name, args = acts[ai]
        out.append("%s(%s)" % (name, ", ".join(str(a) for a in args)))
    return out[::-1]


def _liveness(cfg, states, FIELDS, edges, acts, parent):
    """Three liveness properties, each a search for a fair cycle in which something stays pending:
    an honest channel's request stays unanswered (fairness: each action of FAIR_OPS on its own),
    a tenant starves (a runnable vCPU, none on a core) forever, or a vCPU waits runnable forever
    (fairness for both: the scheduler of each core as one, whichever vCPU it picks, and the end
    of every time slice, preempt)."""
    fi = {f: k for k, f in enumerate(FIELDS)}
    ist, ihon, isqt, icqt = fi["c_state"], fi["c_honest"], fi["c_sqt"], fi["c_cqt"]
    iu, iut = fi["u_state"], fi["u_tenant"]
    found = []
    per_action = [a if acts[a][0] in FAIR_OPS else None for a in range(len(acts))]
    for c in range(cfg.C):
        def pending(tup):
            return tup[ist][c] == M.C_OPEN and tup[ihon][c] and tup[isqt][c] != tup[icqt][c]
        for v in _fair_cycles(states, edges, acts, parent, per_action, pending,
                              lambda a, b: a[icqt][c] == b[icqt][c], 3 - len(found)):
            found.append(dict(v, channel=c))

    def sched_label(a):
        name, args = acts[a]
        if name == "schedule":
            return ("schedule", args[0])        # core k runs someone: the scheduler's choice
        return a if name in FAIR_OPS or name == "preempt" else None
    grouped = [sched_label(a) for a in range(len(acts))]
    for t in range(cfg.T):
        def starving(tup):
            mine = [tup[iu][u] for u in range(cfg.U) if tup[iut][u] == t]
            return M.U_RUNNABLE in mine and M.U_RUNNING not in mine
        for v in _fair_cycles(states, edges, acts, parent, grouped, starving, lambda a, b: True,
                              3 - len(found)):
            found.append(dict(v, tenant=t))
    for u in range(cfg.U):   # and, under the same fairness, no vCPU waits runnable forever
        def waits(tup):
            return tup[iu][u] == M.U_RUNNABLE
        for v in _fair_cycles(states, edges, acts, parent, grouped, waits, lambda a, b: True,
                              3 - len(found)):
            found.append(dict(v, uvm=u))
    return found


def _fair_cycles(states, edges, acts, parent, label, pending, stays, limit):
    """Strongly connected sets of `pending` states (edges between them that keep `stays`), fair
    for the labelled actions: every label enabled somewhere in the set is taken inside it. A
    single state counts (the environment may stutter). label[a]: a's fairness label, or None."""
    found = []
    if limit <= 0:
        return found
    pend = {i for i, tup in enumerate(states) if pending(tup)}
    if not pend:
        return found
    out_labels = {i: set() for i in pend}
    for i, j, a in edges:
        if i in pend and label[a] is not None:
            out_labels[i].add(label[a])
    g = nx.DiGraph()
    g.add_nodes_from(pend)
    for i, j, a in edges:
        if i in pend and j in pend and stays(states[i], states[j]):
            lab = g.get_edge_data(i, j)
            if lab is None:
                g.add_edge(i, j, acts=[a])
            else:
                lab["acts"].append(a)
    stack = [set(pend)]
    while stack and len(found) < limit:
        X = stack.pop()
        sub = g.subgraph(X)
        for scc in nx.strongly_connected_components(sub):
            taken, taken_labels = set(), set()
            for i in scc:
                for j in sub.successors(i):
                    if j in scc:
                        taken.update(sub[i][j]["acts"])
            taken_labels = {label[a] for a in taken if label[a] is not None}
            enabled = set()
            for i in scc:
                enabled |= out_labels[i]
            bad = enabled - taken_labels
            if not bad:
                rep = min(scc)
                found.append({"scc_size": len(scc), "state": rep, "trace": _trace(parent, acts, rep),
                              "cycle_actions": sorted({"%s%s" % acts[a] for a in taken})[:12]})
                break
            Y = {i for i in scc if not (out_labels[i] & bad)}
            if Y:
                stack.append(Y)
    return found


def render(r):
    lines = ["explored %d states, %d transitions in %.1fs (config %s, %d actions, payloads %d%s)"
             % (r["states"], r["transitions"], r["seconds"], r["config"], r["actions"], r["payloads"],
                ", hostile guests" if r["hostile"] else "")]
    lines.append("invariant violations: %d" % len(r["violations"]))
    for v in r["violations"]:
        lines.append("  %s violated; shortest trace (%d steps):" % (v["invariant"], len(v["trace"])))
        lines += ["    %s" % s for s in v["trace"]]
    if "reduction_unsound" in r:
        lines.append("state reduction unsound for this spec: %d" % len(r["reduction_unsound"]))
        for v in r["reduction_unsound"]:
            lines.append("  a state and its representative differ on %s, after: %s" % (v["differs"], " ; ".join(v["trace"])))
    if "ni_violations" in r:
        lines.append("noninterference violations: %d" % len(r["ni_violations"]))
        for v in r["ni_violations"]:
            lines.append("  %s: tenant %d, %s%s, after:" % (v["check"], v["tenant"], v["action"],
                         " (errors %s / %s)" % tuple(v["errors"]) if "errors" in v else ""))
            lines.append("    %s" % " ; ".join(v["trace"]))
            if "other_trace" in v:
                lines.append("    and, a state tenant %d cannot tell from it, after: %s" % (v["tenant"], " ; ".join(v["other_trace"])))
    lines.append("deadlocks: %d" % r["deadlocks"])
    for t in r["deadlock_traces"]:
        lines.append("  deadlock after: %s" % " ; ".join(t))
    lines.append("liveness violations: %d" % len(r["liveness_violations"]))
    for v in r["liveness_violations"]:
        if "uvm" in v:
            lines.append("  user VM %d's vCPU waits runnable forever (never on a core) in a fair cycle of %d "
                         "states, reached by:" % (v["uvm"], v["scc_size"]))
        elif "tenant" in v:
            lines.append("  tenant %d starves (a runnable vCPU, none on a core) forever in a fair cycle of %d "
                         "states, reached by:" % (v["tenant"], v["scc_size"]))
        else:
            lines.append("  channel %d: a request stays pending forever in a fair cycle of %d states, reached by:"
                         % (v["channel"], v["scc_size"]))
        lines += ["    %s" % s for s in v["trace"]]
        lines.append("    cycle uses: %s" % ", ".join(v["cycle_actions"]))
    return "\n".join(lines)
