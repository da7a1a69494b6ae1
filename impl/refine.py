"""Refinement checking: the implementation and the spec, driven in lock-step.

`Lockstep` owns a stepped implementation (a `Driver`: real KVM user VMs running the stepper
guest, system VM processes, the scheduler) and the spec's concrete interpreter. Each public
method is one operation of the shared alphabet. It performs the operation on the implementation,
then on the spec (giving the spec whatever the implementation chose: which user VM a core took,
which page a channel got, whether an answer was a success), and checks, in order:

  1. the same outcome: success, or the same error code; and the same observations (payloads);
  2. the abstraction of the implementation's state (`abstract`) equals the spec's state;
  3. every spec invariant holds on the abstracted implementation state.

A failed check is a divergence. It carries the operations so far as a short runnable program.
With `strict=True` (the tests) it raises; otherwise (`nanvix check`) it is recorded, the spec is
re-synchronised to the abstraction and the run goes on.

The abstraction reads only what the implementation reports through public interfaces: the
runtime's state report (tenants, user VMs, scheduler queues, channel pages as they are in memory,
the page pool as read from the pages) and each live system VM's own account of its channels
(private indices, requests in service). What no implementation state holds is taken from the spec:
ghost fields (c_hist, c_honest), the private indices of a dead system VM or of a BROKEN channel
(which nobody serves again), ring slots the system VM holds no copy of, and the last core of a
user VM that is not running.

Ids: the spec's user-VM, channel and page ids are partitioned per tenant (slot i belongs to tenant
i % T); the implementation's are global. User VM slot u is chosen by the caller and its channel is
channel c = u. Implementation pages are mapped to spec pages by a bijection kept here: a page the
implementation hands to tenant t is given a spec page of t's share (swapping two free pages when
needed, which the spec cannot tell apart).
"""
import collections
import random
import time

from nanvix.impl import sched as S
from nanvix.impl.driver import Driver, Outcome, no
from nanvix.spec import api
from nanvix.spec import model as M

T, SLOTS, K, QUOTA_UVMS, QUOTA_PAGES = 2, 3, 2, 2, 3
# One more user-VM slot and page per tenant than its quota, so EQUOTA (not EBUSY) is what a
# tenant at its quota meets, in the spec as in the implementation. Ring indices are 32-bit and
# payloads 64-bit, as in nanvix_abi.h: the abstraction needs no truncation.
CFG = api.Config(T=T, U=T * SLOTS, C=T * SLOTS, P=T * (QUOTA_PAGES + 1), K=K, R=64, W=32, V=64, EW=32,
                 hyp=0, quota_uvms=QUOTA_UVMS, quota_pages=QUOTA_PAGES)
U_CODE = {S.CREATED: M.U_CREATED, S.RUNNABLE: M.U_RUNNABLE, S.RUNNING: M.U_RUNNING,
          S.BLOCKED: M.U_BLOCKED, S.EXITED: M.U_EXITED, S.CRASHED: M.U_CRASHED}
ERR = {name: code for code, name in enumerate(M.ERR_NAMES)}
GHOSTS = ("c_hist", "c_honest")
RING_FIELDS = ("c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh", "c_pcqt", "c_sq", "c_svc", "c_cqv", "c_cqr")
# SQ entry fields the system VM validates (offset in the 64-byte entry): a hostile guest's target
ENTRY_FIELDS = {"opcode": 0, "flags": 4, "in_off": 16, "in_len": 20, "out_off": 24, "out_cap": 28,
                "name_len": 32}
# The spec's operations this harness drives. unmap_page has no implementation counterpart (a
# user VM never gives pages back before it is destroyed).
SPEC_OPS = tuple(op for op in api.OPS if op != "unmap_page")
FAULT_OPS = ("loop_past_budget", "spurious_doorbell", "scribble_field")
ALL_OPS = SPEC_OPS + FAULT_OPS
MASK32 = 0xFFFFFFFF
ZERO = api.Model(CFG).initial()  # what a FREE channel slot holds


class Divergence(AssertionError):
    pass


def tenant_of(u):
    return u % T


def slots_of(t):
    return [u for u in range(CFG.U) if u % T == t]


# ---------------------------------------------------------------------------------------------
# the abstraction function

def abstract(rep, index, page_slot, hidden):
    """The spec state the implementation's state report `rep` stands for.

    index: implementation user-VM id -> spec slot; page_slot: implementation page -> spec page;
    hidden: the spec state, consulted only for what no implementation state holds (see the
    module doc). Returns (state, problems): problems lists what cannot be mapped at all (a user
    VM or channel of no slot, a system VM serving a channel that does not exist)."""
    s = {f: v for f, v in hidden.items()}
    problems = []
    tix = {"t%d" % t: t for t in range(T)}
    L = lambda f: list(s[f])

    # tenants and system VMs
    t_live, s_state, s_epoch = [False] * T, [M.S_NONE] * T, [0] * T
    t_qu, t_qp = L("t_qu"), L("t_qp")
    served = {}  # channel id -> (serving tenant, its account)
    for name, info in rep["tenants"].items():
        t = tix[name]
        t_live[t] = True
        t_qu[t], t_qp[t] = info["quota_uvms"], info["quota_pages"]
        sv = rep["system_vms"][name]
        s_state[t] = M.S_NONE if sv["epoch"] == 0 else (M.S_UP if sv["alive"] else M.S_DOWN)
        s_epoch[t] = max(sv["epoch"] - 1, 0) & ((1 << CFG.EW) - 1)
        for cid, acct in (sv["served"] or {}).items():
            if cid in served:
                problems.append("channel %d is served by two system VMs" % cid)
            served[cid] = (t, acct)
    s.update(t_live=tuple(t_live), s_state=tuple(s_state), s_epoch=tuple(s_epoch),
             t_qu=tuple(t_qu), t_qp=tuple(t_qp))

    # user VMs and the scheduler
    u_state, u_tenant, u_core, u_rq = [M.U_FREE] * CFG.U, L("u_tenant"), L("u_core"), [0] * CFG.U
    for uid, info in rep["user_vms"].items():
        u = index.get(uid)
        if u is None:
            problems.append("user VM %d has no slot" % uid)
            continue
        u_state[u] = U_CODE[info["state"]]
        u_tenant[u] = tix[info["tenant"]]
        u_core[u] = info["core"] if info["state"] == S.RUNNING else hidden["u_core"][u]
    for u in range(CFG.U):
        if u_state[u] == M.U_FREE:
            u_core[u] = 0
    sch = rep["scheduler"]
    for q in sch["queues"].values():
        for uid in q:
            if uid in index:
                u_rq[index[uid]] += 1
    k_busy, k_cur = [False] * K, L("k_cur")
    for k, uid in enumerate(sch["cores"]):
        if uid is not None:
            k_busy[k] = True
            k_cur[k] = index.get(uid, 255)
    s.update(u_state=tuple(u_state), u_tenant=tuple(u_tenant), u_core=tuple(u_core), u_rq=tuple(u_rq),
             k_busy=tuple(k_busy), k_cur=tuple(k_cur))

    # channels: what the page holds, what the serving system VM holds
    chan = {f: L(f) for f in ("c_state", "c_tenant", "c_uvm", "c_sysvm", "c_page") + RING_FIELDS}
    filled = {index.get(ch["user_vm"]) for ch in rep["channels"].values() if ch["state"] == "open"}
    for c in range(CFG.C):  # a channel slot no open channel fills reads as the spec's FREE one
        if c not in filled:
            for f in chan:
                if f != "c_tenant":
                    chan[f][c] = ZERO[f][c]
    for cid, ch in rep["channels"].items():
        if ch["state"] != "open":
            continue
        c = index.get(ch["user_vm"])
        if c is None:
            problems.append("channel %d belongs to no user VM slot" % cid)
            continue
        chan["c_tenant"][c] = tix[rep["user_vms"][ch["user_vm"]]["tenant"]]
        chan["c_uvm"][c] = c
        chan["c_page"][c] = page_slot[ch["page"]]
        who = served.get(cid)
        chan["c_sysvm"][c] = who[0] if who else tix[ch["system_vm"]]
        chan["c_state"][c] = M.C_BROKEN if ch["broken"] else M.C_OPEN
        r, slots = ch["ring"], ch["slots"]
        chan["c_sqt"][c], chan["c_cqh"][c] = r["sq_tail"], r["cq_head"]
        chan["c_psqh"][c], chan["c_pcqt"][c] = r["sq_head"], r["cq_tail"]
        chan["c_sq"][c] = tuple(slots["sq"])
        chan["c_cqv"][c] = tuple(ud for ud, _ in slots["cq"])
        chan["c_cqr"][c] = tuple(res >= 0 for _, res in slots["cq"])
        if who is None or ch["broken"]:  # private copies that died with their system VM, or
            # that nobody will use again
            for f in ("c_sqh", "c_cqt", "c_svc"):
                chan[f][c] = hidden[f][c]
            continue
        acct = who[1]
        chan["c_sqh"][c], chan["c_cqt"][c] = acct["sq_head"], acct["cq_tail"]
        svc = list(hidden["c_svc"][c])
        for j, ud in enumerate(acct["in_service_user_data"]):
            svc[(acct["cq_tail"] + j) % CFG.R] = ud
        chan["c_svc"][c] = tuple(svc)
    s.update({f: tuple(v) for f, v in chan.items()})
    open_ids = {cid for cid, ch in rep["channels"].items() if ch["state"] == "open"}
    for cid in served:
        if cid not in open_ids:
            problems.append("a system VM serves channel %d, which is not open" % cid)

    # pages
    p_kind, p_owner, p_tenant = [M.P_FREE] * CFG.P, [0] * CFG.P, L("p_tenant")
    p_mu = [[False] * CFG.U for _ in range(CFG.P)]
    p_ms = [[False] * T for _ in range(CFG.P)]
    p_scrub = [True] * CFG.P
    for pg in rep["pages"]:
        p = page_slot[pg["index"]]
        p_scrub[p] = pg["scrubbed"]
        if pg["owner"] is not None:
            kind, uid = pg["owner"]
            p_kind[p] = M.P_CHAN if kind == "channel" else M.P_UVM
            p_owner[p] = index.get(uid, 0)
            p_tenant[p] = tix[pg["tenant"]]
        for who, x in pg["mapped_by"]:  # the control plane's record, for dead system VMs only
            if who == "sysvm" and s_state[tix[x]] != M.S_UP:
                p_ms[p][tix[x]] = True
    # which user VM maps a page: its KVM memory slots; which system VM: the channels it serves
    for uid, info in rep["user_vms"].items():
        for idx in info["pages_in_slots"]:
            if uid in index:
                p_mu[page_slot[idx]][index[uid]] = True
            else:
                problems.append("page %d is mapped by user VM %d, which has no slot" % (idx, uid))
    for cid, (t, _) in served.items():
        if cid in rep["channels"]:
            p_ms[page_slot[rep["channels"][cid]["page"]]][t] = True
    s.update(p_kind=tuple(p_kind), p_owner=tuple(p_owner), p_tenant=tuple(p_tenant),
             p_mu=tuple(map(tuple, p_mu)), p_ms=tuple(map(tuple, p_ms)), p_scrub=tuple(p_scrub))
    return s, problems


def diff(a, b, limit=6):
    """Where two spec states differ: ["field[i][j]: impl != spec", ...] (ghosts excluded)."""
    out = []

    def walk(path, x, y):
        if len(out) >= limit or x == y:
            return
        if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y):
            for i, (xi, yi) in enumerate(zip(x, y)):
                walk("%s[%d]" % (path, i), xi, yi)
        else:
            out.append("%s: impl %r, spec %r" % (path, x, y))

    for f in a:
        if f not in GHOSTS:
            walk(f, a[f], b[f])
    return out


# ---------------------------------------------------------------------------------------------
# the lock-step harness

class Lockstep:
    def __init__(self, strict=True, home=None):
        self.strict = strict
        self.m = api.Model(CFG)
        self.s = self.m.initial()
        self.d = Driver(tenants=T, cores=K, pages=CFG.P, quota_uvms=QUOTA_UVMS,
                        quota_pages=QUOTA_PAGES, home=home)
        self.page_slot = list(range(CFG.P))   # implementation page index -> spec page
        self.program = []
        self.ops = collections.Counter()       # operations that succeeded on both sides
        self.spec_ops = collections.Counter()  # spec operations that succeeded (incl. composites)
        self.divergences = []
        self.steps = 0
        self.outcomes = collections.Counter()  # (operation, implementation's outcome)
        self.current = None

    def close(self):
        self.d.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the check after every step -------------------------------------------------------------
    def abstraction(self):
        return abstract(self.d.state(), self.d.index, self.page_slot, self.s)

    def _diverge(self, what):
        prog = self.script()
        self.divergences.append({"step": self.steps, "what": what, "program": prog,
                                 "calls": list(self.program)})
        if self.strict:
            raise Divergence("%s\nafter:\n%s" % (what, prog))

    def sync(self):
        """Compare the abstracted implementation state with the spec state, and check every
        invariant on it."""
        a, problems = self.abstraction()
        if problems:
            self._diverge("abstraction: " + "; ".join(problems))
        d = diff(a, self.s)
        if d:
            self._diverge("state differs: " + "; ".join(d))
        bad = self.m.violations(a)
        if bad:
            self._diverge("invariants violated by the implementation: " + ", ".join(bad))
        if d or bad or problems:
            self.s = a  # go on from where the implementation is

    def script(self, program=None):
        """The operations so far, as a program that replays them (and raises the same
        Divergence)."""
        return script(self.program if program is None else program)

    def _spec(self, steps):
        """Run spec operations in sequence; stop at the first error. (err name, outs, state)."""
        s, outs = self.s, []
        for op, *args in steps:
            err, out, s2 = self.m.step(s, op, *args)
            if err:
                return M.ERR_NAMES[err], outs, self.s
            outs.append(out)
            s = s2
        return "OK", outs, s

    def _check(self, name, impl, steps, same=None):
        """One operation: compare impl's outcome with the spec's over `steps`; on success,
        `same(spec_outs)` returns a mismatch description or None."""
        self._outcome(impl)
        err, outs, s2 = self._spec(steps)
        if impl.err != err:
            self._diverge("%s: implementation %s (%s), spec %s" % (name, impl.err, impl.get("why", ""), err))
        elif err == "OK" and same is not None:
            why = same(outs)
            if why:
                self._diverge("%s: %s" % (name, why))
        if err == "OK" and impl.ok:
            self.s = s2
            self.ops[name] += 1
            for op, *_ in steps:
                self.spec_ops[op] += 1
        self.sync()
        return impl

    def _call(self, name, *args):
        self.steps += 1
        self.program.append((name, args))
        self.current = name

    def _outcome(self, impl):
        self.outcomes[(self.current, impl.err)] += 1

    # -- tenants and system VMs -----------------------------------------------------------------
    def create_tenant(self, t):
        self._call("create_tenant", t)
        return self._check("create_tenant", self.d.create_tenant(t), [("create_tenant", t)])

    def start_sysvm(self, t):
        self._call("start_sysvm", t)
        return self._check("start_sysvm", self.d.start_sysvm(t), [("start_sysvm", t)])

    def crash_sysvm(self, t):
        """SIGKILL the tenant's system VM."""
        self._call("crash_sysvm", t)
        return self._check("crash_sysvm", self.d.crash_sysvm(t), [("crash_sysvm", t)])

    def restart_sysvm(self, t):
        self._call("restart_sysvm", t)
        return self._check("restart_sysvm", self.d.restart_sysvm(t), [("restart_sysvm", t)])

    # -- user VMs ---------------------------------------------------------------------------------
    def _page_for(self, t, impl_page=None):
        """The spec page standing for the implementation page just handed to tenant t: always
        the lowest free page of t's share, so which spec page a tenant gets depends on that
        tenant alone (the host page index is the pool's business, invisible to the guest). The
        implementation page takes that spec page's place; the free page that stood there takes
        the old one's (the spec cannot tell free pages apart). impl_page None: refused."""
        share = [p for p in range(CFG.P) if self.s["p_tenant"][p] == t]
        free = [p for p in share if self.s["p_kind"][p] == M.P_FREE]
        if not free:
            return share[0]  # the spec will refuse: the implementation gave more than t's share
        q = free[0]
        if impl_page is not None:
            p, j = self.page_slot[impl_page], self.page_slot.index(q)
            self.page_slot[impl_page], self.page_slot[j] = q, p
        return q

    def create_uvm(self, u, t):
        """A user VM of tenant t in slot u, with its channel c = u, started (runnable)."""
        self._call("create_uvm", u, t)
        impl = self.d.create_uvm(u, t)
        p = self._page_for(t, impl.get("page"))
        return self._check("create_uvm", impl, [("create_uvm", u, t), ("open_channel", u, u, p), ("start_uvm", u)])

    def destroy_uvm(self, u):
        self._call("destroy_uvm", u)
        return self._check("destroy_uvm", self.d.destroy_uvm(u), [("close_channel", u), ("destroy_uvm", u)])

    def _on_core(self, u):
        return self.s["u_state"][u] == M.U_RUNNING

    def _refused(self, name, impl, err):
        """A guest action whose guest is not on a core: the implementation must refuse it."""
        self._outcome(impl)
        if impl.err != err:
            self._diverge("%s: implementation %s, expected %s (not on a core)" % (name, impl.err, err))
        self.sync()
        return impl

    def exit_uvm(self, u):
        self._call("exit_uvm", u)
        return self._check("exit_uvm", self.d.exit_uvm(u), [("exit_uvm", u)])

    def crash_uvm(self, u):
        """The guest triple-faults (a null dereference with no IDT)."""
        self._call("crash_uvm", u)
        return self._guest_ended("crash_uvm", u, self.d.crash_uvm(u), "crashed")

    def loop_past_budget(self, u):
        """The guest spins until its budget runs out and the host ends it."""
        self._call("loop_past_budget", u)
        return self._guest_ended("loop_past_budget", u, self.d.loop_past_budget(u), "timeout")

    def _guest_ended(self, name, u, impl, status):
        """A guest that crashed or was stopped: crash_uvm for the spec, with the invocation's
        status as the implementation reports it. The guest must have been on a core (the spec's
        crash_uvm also covers the host killing a user VM that is not running)."""
        if not self._on_core(u):
            return self._refused(name, impl, "EINVAL")
        return self._check(name, impl, [("crash_uvm", u)],
                           same=lambda _: None if impl["status"] == status else "status %r" % impl["status"])

    def map_page(self, u):
        self._call("map_page", u)
        impl = self.d.map_page(u)
        p = self._page_for(tenant_of(u), impl.get("page"))
        return self._check("map_page", impl, [("map_page", p, u)])

    # -- the channel: guest side ----------------------------------------------------------------
    def submit(self, u, v, kind=0):
        self._call("submit", u, v, kind)
        return self._check("submit", self.d.submit(u, v, kind), [("submit", u, v)])

    def deliver(self, u):
        self._call("deliver", u)
        impl = self.d.deliver(u)

        def same(outs):
            payload, ok = outs[0]
            if (payload, ok) != (impl["user_data"], int(impl["result"] >= 0)):
                return "delivered (%d, %d), spec (%d, %d)" % (impl["user_data"], impl["result"] >= 0, payload, ok)
        return self._check("deliver", impl, [("deliver", u)], same=same)

    def scribble_sq_tail(self, u, v):
        self._call("scribble_sq_tail", u, v)
        return self._check("scribble_sq_tail", self.d.scribble(u, "sq_tail", v),
                           [("scribble_sq_tail", u, v & MASK32)])

    def scribble_cq_head(self, u, v):
        self._call("scribble_cq_head", u, v)
        return self._check("scribble_cq_head", self.d.scribble(u, "cq_head", v),
                           [("scribble_cq_head", u, v & MASK32)])

    def scribble_pub(self, u, which, v):
        """which 0: the published sq_head, 1: the published cq_tail (the system VM's to write)."""
        self._call("scribble_pub", u, which, v)
        impl = self.d.scribble(u, "sq_head" if which == 0 else "cq_tail", v)
        return self._check("scribble_pub", impl, [("scribble_pub", u, which, v & MASK32)])

    def scribble_entry(self, u, slot, v):
        self._call("scribble_entry", u, slot, v)
        return self._check("scribble_entry", self.d.scribble_entry(u, slot, v),
                           [("scribble_entry", u, slot, v)])

    def scribble_field(self, u, slot, field, v):
        """Arbitrary bytes in a field the spec does not model (opcode, data offsets, lengths):
        for the spec the entry's payload is unchanged but the guest is no longer honest."""
        self._call("scribble_field", u, slot, field, v)
        impl = self.d.scribble_entry(u, slot, v & MASK32, offset=ENTRY_FIELDS[field], width=4)
        return self._check("scribble_field", impl, [("scribble_entry", u, slot, self.s["c_sq"][u][slot])])

    def spurious_doorbell(self, u):
        """The doorbell rung with nothing posted: no spec operation, nothing may change."""
        self._call("spurious_doorbell", u)
        impl = self.d.spurious_doorbell(u)
        self._outcome(impl)
        exists = self.s["c_state"][u] != M.C_FREE
        if impl.ok != exists:
            self._diverge("spurious_doorbell: implementation %s, channel %s" % (impl.err, "open" if exists else "free"))
        elif impl.ok:
            self.ops["spurious_doorbell"] += 1
        self.sync()
        return impl

    # -- the channel: system VM side --------------------------------------------------------------
    def take(self, u):
        self._call("take", u)
        impl = self.d.take(u)

        def same(outs):
            got = (0, 1) if impl["broke"] else (impl["user_data"], 0)
            if got != tuple(outs[0]):
                return "took %r, spec %r" % (got, tuple(outs[0]))
        return self._check("take", impl, [("take", u)], same=same)

    def complete(self, u):
        self._call("complete", u)
        impl = self.d.complete(u)
        ok = impl.ok and impl["result"] >= 0  # the answer's success is the system VM's to decide
        return self._check("complete", impl, [("complete", u, ok)])

    # -- the scheduler ----------------------------------------------------------------------------
    def schedule(self, k):
        """Core k takes the user VM the implementation picks; the spec checks it was allowed."""
        self._call("schedule", k)
        impl = self.d.schedule(k)
        if impl.ok:
            return self._check("schedule", impl, [("schedule", k, impl["u"])])
        self._outcome(impl)
        errs = {M.ERR_NAMES[self.m.step(self.s, "schedule", k, u)[0]] for u in range(CFG.U)}
        want = "EBUSY" if self.s["k_busy"][k] and "OK" not in errs and "EBUSY" in errs else "EINVAL"
        if "OK" in errs or impl.err != want:
            self._diverge("schedule(%d): implementation %s, spec allows %s" % (k, impl.err, sorted(errs)))
        self.sync()
        return impl

    def preempt(self, k):
        self._call("preempt", k)
        impl = self.d.preempt(k)
        return self._check("preempt", impl, [("preempt", k)],
                           same=lambda _: None if impl["u"] == self.s["k_cur"][k] else "took %d off" % impl["u"])

    def block(self, k):
        """The vCPU on core k waits for a completion."""
        self._call("block", k)
        u = self.d.running_on(k)
        impl = self.d.block(u) if u is not None else no("EINVAL", "idle core")
        return self._check("block", impl, [("block", k)])

    def wake(self):
        """Deliver completion signals. Each user VM woken must be one the spec may wake; and
        every blocked user VM with a completion waiting must be woken (no lost wake-up)."""
        self._call("wake")
        impl = self.d.wake()
        self._outcome(Outcome(ok=bool(impl["us"]), err="EEMPTY"))
        for u in impl["us"]:
            err, _, s2 = self.m.step(self.s, "wake", u)
            if err:
                self._diverge("wake: implementation woke %d, spec %s" % (u, M.ERR_NAMES[err]))
                break
            self.s = s2
            self.spec_ops["wake"] += 1
        if impl["us"]:
            self.ops["wake"] += 1
        for u in range(CFG.U):
            if u not in impl["us"] and self.s["u_state"][u] == M.U_BLOCKED and \
                    self.m.step(self.s, "wake", u)[0] == 0:
                self._diverge("wake: user VM %d has a completion but was not woken" % u)
        self.sync()
        return impl

    # -- tenants' view (noninterference) --------------------------------------------------------
    def observe(self, t, cores=True):
        """What tenant t can see: the spec's observation of the abstracted state, plus its keys
        and files as its system VM holds them. cores=False leaves out which core runs its user
        VMs: where the scheduler puts a vCPU is the declared timing channel (proofs/LEAKS.md)."""
        a, _ = self.abstraction()
        if not cores:
            a = dict(a, u_core=(0,) * CFG.U)
        return {"spec": self.m.observe(a, t), "data": self.d.tenant_data(t)}


def script(program):
    """[(operation, args)] as a Python program over Lockstep."""
    return "\n".join(["from nanvix.impl.refine import Lockstep", "h = Lockstep()"] +
                     ["h.%s(%s)" % (op, ", ".join(map(repr, args))) for op, args in program])


def replay(program):
    """Run [(operation, args)] on a fresh system; the Divergence it raises, or None."""
    with Lockstep(strict=True) as h:
        try:
            for op, args in program:
                getattr(h, op)(*args)
        except Divergence as e:
            return e
    return None


def shrink(program, seconds=60.0):
    """A shorter program that still diverges: drop chunks of calls (halves, then quarters, down
    to single calls) while the replay still raises a Divergence, within a time budget."""
    end = time.monotonic() + seconds
    if replay(program) is None:
        return program  # does not reproduce on its own (it depended on earlier episodes)
    n = 2
    while len(program) > 1 and time.monotonic() < end:
        size = -(-len(program) // n)
        for i in range(0, len(program), size):
            cand = program[:i] + program[i + size:]
            if time.monotonic() >= end:
                break
            if replay(cand) is not None:
                program, n = cand, max(n - 1, 2)
                break
        else:
            if n >= len(program):
                break
            n = min(len(program), 2 * n)
    return program


# ---------------------------------------------------------------------------------------------
# random campaigns (nanvix check)

class Campaign:
    """Random operations over episodes of a fresh system (so creating tenants and starting system
    VMs are exercised again and again). The spec guides the drawing: most of the time an operation
    is redrawn until the spec says it can succeed, so runs go deep (full rings, restarts with
    requests in service) while every error path is still taken now and then. Some operations
    start a burst: repeated while they succeed, which fills and drains rings."""

    WEIGHTS = {
        "create_uvm": 5, "destroy_uvm": 4, "schedule": 8, "preempt": 3, "block": 4, "wake": 4,
        "submit": 12, "take": 10, "complete": 10, "deliver": 9, "exit_uvm": 2, "crash_uvm": 1,
        "loop_past_budget": 0.3, "map_page": 2, "crash_sysvm": 0.6, "restart_sysvm": 2,
        "scribble_sq_tail": 1, "scribble_cq_head": 1, "scribble_pub": 1, "scribble_entry": 1,
        "scribble_field": 1, "spurious_doorbell": 1, "create_tenant": 0.3, "start_sysvm": 0.3,
    }
    BURSTS = {"submit": 0.08, "take": 0.08, "complete": 0.08, "deliver": 0.06}
    GUIDED = 0.85   # the chance that a step insists on an operation the spec allows

    def __init__(self, seed=0, episode=250, strict=False):
        self.rng = random.Random(seed)
        self.seed = seed
        self.episode = episode
        self.strict = strict
        self.h = None
        self.steps = 0
        self.ops = collections.Counter()
        self.spec_ops = collections.Counter()
        self.outcomes = collections.Counter()
        self.divergences = []
        self.in_episode = 0
        self.burst = None  # (operation, arguments, steps left): repeated while it succeeds

    def _fresh(self):
        self._retire()
        self.h = Lockstep(strict=self.strict)
        self.in_episode = 0
        self.burst = None
        for t in range(T):  # most episodes start with both tenants up; some leave it to chance
            if self.rng.random() < 0.8:
                self.h.create_tenant(t)
                self.h.start_sysvm(t)

    def _retire(self):
        if self.h is not None:
            self.steps += self.h.steps
            self.ops.update(self.h.ops)
            self.spec_ops.update(self.h.spec_ops)
            self.outcomes.update(self.h.outcomes)
            self.divergences += self.h.divergences
            self.h.close()
            self.h = None

    def close(self):
        self._retire()

    # -- drawing ----------------------------------------------------------------------------------
    def _index(self, s, c):
        """A value near one of the channel's indices (an off-by-some lie), or any 32-bit value."""
        if self.rng.random() < 0.15:
            return self.rng.getrandbits(32)
        base = s[self.rng.choice(("c_sqt", "c_cqh", "c_psqh", "c_pcqt"))][c]
        return (base + self.rng.randint(-3, 3) + self.rng.choice((0, 0, 64, -64, 65, -65))) & MASK32

    def _draw(self):
        rng, s = self.rng, self.h.s
        ops = list(self.WEIGHTS)
        op = rng.choices(ops, [self.WEIGHTS[o] for o in ops])[0]
        live = [u for u in range(CFG.U) if s["u_state"][u] != M.U_FREE]
        running = [u for u in live if s["u_state"][u] == M.U_RUNNING]
        pick = lambda pool: rng.choice(pool) if pool and rng.random() < 0.95 else rng.randrange(CFG.U)
        t = rng.randrange(T)
        if op in ("create_tenant", "start_sysvm", "crash_sysvm", "restart_sysvm"):
            return op, (t,)
        if op == "create_uvm":
            return op, (rng.choice(slots_of(t)), t)
        if op in ("schedule", "preempt", "block"):
            return op, (rng.randrange(K),)
        if op == "wake":
            return op, ()
        if op == "submit":
            return op, (pick(running), rng.getrandbits(64), rng.choice((0, 0, 0, 1, 2)))
        if op in ("take", "complete", "destroy_uvm", "spurious_doorbell"):
            return op, (pick(live),)
        u = pick(running)
        if op in ("scribble_sq_tail", "scribble_cq_head"):
            return op, (u, self._index(s, u))
        if op == "scribble_pub":
            return op, (u, rng.randrange(2), self._index(s, u))
        if op == "scribble_entry":
            return op, (u, rng.randrange(CFG.R), rng.getrandbits(64))
        if op == "scribble_field":
            return op, (u, rng.randrange(CFG.R), rng.choice(sorted(ENTRY_FIELDS)),
                        rng.choice((rng.getrandbits(32), rng.randrange(300), MASK32)))
        return op, (u,)   # deliver, exit_uvm, crash_uvm, loop_past_budget, map_page

    def _enabled(self, op, args):
        """Would the spec let this operation succeed now? (For the composite operations, their
        first spec step decides; a refusal further on is an error path too.)"""
        m, s = self.h.m, self.h.s
        ok = lambda name, *a: m.step(s, name, *a)[0] == 0
        if op == "schedule":
            return any(ok("schedule", args[0], u) for u in range(CFG.U))
        if op == "wake":
            return any(ok("wake", u) for u in range(CFG.U))
        if op == "destroy_uvm":
            return ok("close_channel", *args)
        if op in ("crash_uvm", "loop_past_budget"):
            return s["u_state"][args[0]] == M.U_RUNNING
        if op == "map_page":
            return s["u_state"][args[0]] == M.U_RUNNING
        if op == "scribble_field":
            return ok("scribble_entry", args[0], 0, 0)
        if op == "spurious_doorbell":
            return s["c_state"][args[0]] != M.C_FREE
        if op == "complete":
            return ok("complete", args[0], True)
        if op == "take":
            return ok("take", args[0])
        if op == "submit":
            return ok("submit", args[0], args[1])
        return ok(op, *args)

    def step(self):
        if self.h is None or self.in_episode >= self.episode:
            self._fresh()
        h, rng = self.h, self.rng
        self.in_episode += 1
        if self.burst:
            op, args, left = self.burst
            self.burst = (op, args, left - 1) if left > 1 else None
            if op == "submit":
                args = (args[0], rng.getrandbits(64), args[2])
        else:
            guided = rng.random() < self.GUIDED
            for _ in range(8):
                op, args = self._draw()
                if not guided or self._enabled(op, args):
                    break
            if rng.random() < self.BURSTS.get(op, 0):
                self.burst = (op, args, rng.randint(2, 80))
        out = getattr(h, op)(*args)
        if not out.ok:
            self.burst = None

    def run(self, steps, progress=None):
        while self.steps + (self.h.steps if self.h else 0) < steps:
            self.step()
            done = self.steps + self.h.steps
            if progress and done % 1000 == 0:
                progress(done)
        self._retire()

    def uncovered(self):
        """Operations whose success path was never taken."""
        seen = set(self.spec_ops) | set(self.ops)
        return [op for op in ALL_OPS if op not in seen]
