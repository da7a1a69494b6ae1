"""The abstraction function: the spec state a running implementation stands for.

It reads only what the implementation reports through public interfaces: the runtime's state
report (nanvix.impl.control.report: tenants, user VMs, scheduler queues, channel pages as they are
in memory, the page pool as read from the pages) and each live system VM's own account of its
channels (private indices, requests in service). What no implementation state holds is taken from
the spec: ghost fields (c_hist, c_honest), the private indices of a dead system VM or of a BROKEN
channel (which nobody serves again), ring slots the system VM holds no copy of, and the last core
of a user VM that is not running.

Ids: the spec's user-VM, channel and page ids are partitioned per tenant (slot i belongs to tenant
i % T); the implementation's are global. User VM slot u is chosen by the harness and its channel
is channel c = u. Implementation pages are mapped to spec pages by a bijection the harness keeps
(page_slot).
"""
from nanvix import spec as M
from nanvix.impl import sched as S
from nanvix.spec import api

T, SLOTS, K, QUOTA_UVMS, QUOTA_PAGES = 2, 3, 2, 2, 3
# One more user-VM slot and page per tenant than its quota, so EQUOTA (not EBUSY) is what a
# tenant at its quota meets, in the spec as in the implementation. Ring indices are 32-bit and
# payloads 64-bit, as in nanvix_abi.h: the abstraction needs no truncation.
CFG = api.Config(T=T, U=T * SLOTS, C=T * SLOTS, P=T * (QUOTA_PAGES + 1), K=K, R=64, W=32, V=64, EW=32,
                 hyp=0, quota_uvms=QUOTA_UVMS, quota_pages=QUOTA_PAGES)
U_CODE = {S.CREATED: M.U_CREATED, S.RUNNABLE: M.U_RUNNABLE, S.RUNNING: M.U_RUNNING,
          S.BLOCKED: M.U_BLOCKED, S.EXITED: M.U_EXITED, S.CRASHED: M.U_CRASHED}
ERR = {name: code for code, name in enumerate(M.ERR_NAMES)}
GHOSTS = ("c_hist", "c_honest", "c_runs", "c_ok", "c_ndl", "c_any", "c_lastv", "c_lastr")
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


def tenant_of(u):
    return u % T


def slots_of(t):
    return [u for u in range(CFG.U) if u % T == t]


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


