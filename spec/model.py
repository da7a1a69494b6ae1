"""The nanvix state machine: state, operations, invariants, observation. Written once.

Every function here takes a backend `b` (nanvix.spec.backend.Concrete or Z3Bounded) first and uses
only its API, so the same text is the executable reference model and the Z3 proof model.

State (a dict, field name -> nested tuple indexed by finite sorts; see FIELDS):
  tenants t:  t_live[t] bool, t_qu[t] user-VM quota, t_qp[t] page quota
  system VMs (one per tenant, indexed by t): s_state[t] NONE|UP|DOWN, s_epoch[t] (EW-bit counter)
  user VMs u: u_state[u] FREE..CRASHED, u_tenant[u] (static: user-VM ids are partitioned per
              tenant), u_core[u] (valid when RUNNING), u_rq[u] ghost "queued" count (0/1)
  channels c: c_state[c] FREE|OPEN|BROKEN (BROKEN: its system VM found the guest's indices
              impossible and serves it no more, for good; the guest may still write its page),
              c_tenant[c] (static partition), c_uvm, c_sysvm (tenant
              id of the joined system VM), c_page,
              ring indices (W-bit, free running): c_sqt (sq_tail, guest), c_cqh (cq_head, guest),
              c_sqh / c_cqt (sq_head / cq_tail: the system VM's PRIVATE copies),
              c_psqh / c_pcqt (the copies published in shared memory),
              c_sq[c][slot] SQ payloads, c_svc[c][slot] payload the system VM read at take (private),
              c_cqv[c][slot] / c_cqr[c][slot] CQ payload / result ok,
              c_hist[c][i] ghost: payload submitted with index i, c_honest[c] ghost
  pages p:    p_kind[p] FREE|HYP|UVM|CHAN, p_owner[p] (user VM or channel id), p_tenant[p] (static
              partition of the pool), p_hyp[p] (static: a hypervisor page), p_mu[p][u] mapped by user VM u, p_ms[p][t] mapped by
              system VM t, p_scrub[p]
  cores k:    k_busy[k], k_cur[k] (valid when busy)
"""
from dataclasses import dataclass

# enums
U_FREE, U_CREATED, U_RUNNABLE, U_RUNNING, U_BLOCKED, U_EXITED, U_CRASHED = range(7)
U_NAMES = ["FREE", "CREATED", "RUNNABLE", "RUNNING", "BLOCKED", "EXITED", "CRASHED"]
S_NONE, S_UP, S_DOWN = range(3)
S_NAMES = ["NONE", "UP", "DOWN"]
C_FREE, C_OPEN, C_BROKEN = range(3)
C_NAMES = ["FREE", "OPEN", "BROKEN"]
P_FREE, P_HYP, P_UVM, P_CHAN = range(4)
P_NAMES = ["FREE", "HYP", "UVM", "CHAN"]

# error codes (0 = success)
OK, EINVAL, EFULL, EEMPTY, EQUOTA, EDOWN, EBUSY = range(7)
ERR_NAMES = ["OK", "EINVAL", "EFULL", "EEMPTY", "EQUOTA", "EDOWN", "EBUSY"]


@dataclass(frozen=True)
class Config:
    T: int = 2          # tenants
    U: int = 2          # user VMs (ids partitioned: u belongs to tenant u % T)
    C: int = 2          # channels (c belongs to tenant c % T)
    P: int = 3          # pages, the first `hyp` are the hypervisor's
    K: int = 2          # cores
    R: int = 2          # ring capacity (a power of two)
    W: int = 2          # ring index width in bits (R < 2**W)
    V: int = 1          # payload width in bits
    EW: int = 2         # epoch counter width
    hyp: int = 1        # hypervisor pages
    quota_uvms: int = 2
    quota_pages: int = 2

    def __post_init__(self):
        assert self.R >= 1 and self.R & (self.R - 1) == 0, "R must be a power of two"
        assert self.R < (1 << self.W), "R < 2**W so a full ring differs from an empty one"
        assert self.P > self.hyp >= 0
        assert self.C == self.U, "one channel per user VM (as in the implementation)"

    def sizes(self):
        return {"T": self.T, "U": self.U, "C": self.C, "P": self.P, "K": self.K, "R": self.R,
                "H": 1 << self.W}


# field name -> (dims, kind); kind: "bool" | ("bv", width-attr) | ("id", sort) | ("enum", n) | ("int", bound)
def fields(cfg):
    W, V, EW = cfg.W, cfg.V, cfg.EW
    return {
        "t_live": (("T",), "bool"),
        "t_qu": (("T",), ("int", cfg.U)),
        "t_qp": (("T",), ("int", cfg.P)),
        "s_state": (("T",), ("enum", 3)),
        "s_epoch": (("T",), ("bv", EW)),
        "u_state": (("U",), ("enum", 7)),
        "u_tenant": (("U",), ("id", "T")),
        "u_core": (("U",), ("id", "K")),
        "u_rq": (("U",), ("int", 1)),
        "c_state": (("C",), ("enum", 3)),
        "c_tenant": (("C",), ("id", "T")),
        "c_uvm": (("C",), ("id", "U")),
        "c_sysvm": (("C",), ("id", "T")),
        "c_page": (("C",), ("id", "P")),
        "c_sqt": (("C",), ("bv", W)),
        "c_cqh": (("C",), ("bv", W)),
        "c_sqh": (("C",), ("bv", W)),
        "c_cqt": (("C",), ("bv", W)),
        "c_psqh": (("C",), ("bv", W)),
        "c_pcqt": (("C",), ("bv", W)),
        "c_sq": (("C", "R"), ("bv", V)),
        "c_svc": (("C", "R"), ("bv", V)),
        "c_cqv": (("C", "R"), ("bv", V)),
        "c_cqr": (("C", "R"), "bool"),
        "c_hist": (("C", "H"), ("bv", V)),
        "c_honest": (("C",), "bool"),
        "p_kind": (("P",), ("enum", 4)),
        "p_owner": (("P",), ("id", "U")),   # a user VM or a channel: one id space (C == U)
        "p_tenant": (("P",), ("id", "T")),
        "p_hyp": (("P",), "bool"),
        "p_mu": (("P", "U"), "bool"),
        "p_ms": (("P", "T"), "bool"),
        "p_scrub": (("P",), "bool"),
        "k_busy": (("K",), "bool"),
        "k_cur": (("K",), ("id", "U")),
    }


STATIC_FIELDS = ("u_tenant", "c_tenant", "p_tenant", "t_qu", "t_qp", "p_hyp")


def default_statics(cfg):
    return {
        "u_tenant": tuple(u % cfg.T for u in range(cfg.U)),
        "c_tenant": tuple(c % cfg.T for c in range(cfg.C)),
        "p_tenant": tuple(0 if p < cfg.hyp else (p - cfg.hyp) % cfg.T for p in range(cfg.P)),
        "t_qu": (cfg.quota_uvms,) * cfg.T,
        "t_qp": (cfg.quota_pages,) * cfg.T,
        "p_hyp": tuple(p < cfg.hyp for p in range(cfg.P)),
    }


def init(b, cfg, statics=None):
    """The initial state. `statics` gives the partition fields u_tenant, c_tenant, p_tenant,
    t_qu, t_qp and which pages are the hypervisor's (p_hyp); default: round robin
    with the first cfg.hyp pages the hypervisor's. The proofs pass them symbolic."""
    st = dict(default_statics(cfg))
    st.update(statics or {})
    F = b.fill
    I = lambda sort, of: b.fill_id(sort, of)
    W, V, EW = cfg.W, cfg.V, cfg.EW
    return {
        "t_live": F("T", False), "t_qu": st["t_qu"], "t_qp": st["t_qp"],
        "s_state": F("T", S_NONE), "s_epoch": F("T", 0, EW),
        "u_state": F("U", U_FREE), "u_tenant": st["u_tenant"], "u_core": I("U", "K"),
        "u_rq": F("U", 0),
        "c_state": F("C", C_FREE), "c_tenant": st["c_tenant"], "c_uvm": I("C", "U"), "c_sysvm": I("C", "T"),
        "c_page": I("C", "P"), "c_sqt": F("C", 0, W), "c_cqh": F("C", 0, W), "c_sqh": F("C", 0, W),
        "c_cqt": F("C", 0, W), "c_psqh": F("C", 0, W), "c_pcqt": F("C", 0, W),
        "c_sq": b.fill2("C", "R", 0, V), "c_svc": b.fill2("C", "R", 0, V),
        "c_cqv": b.fill2("C", "R", 0, V), "c_cqr": b.fill2("C", "R", True),
        "c_hist": b.fill2("C", "H", 0, V), "c_honest": F("C", True),
        "p_kind": b.tab("P", lambda p: b.ite(b.sel(st["p_hyp"], p), P_HYP, P_FREE)),
        "p_owner": I("P", "U"), "p_tenant": st["p_tenant"], "p_hyp": st["p_hyp"],
        "p_mu": b.fill2("P", "U", False), "p_ms": b.fill2("P", "T", False),
        "p_scrub": F("P", True),
        "k_busy": F("K", False), "k_cur": I("K", "U"),
    }


# ---------------------------------------------------------------------------------------------
# helpers

def _set(b, s, **kw):
    t = dict(s)
    t.update(kw)
    return t


def _slot(b, cfg, i):
    return b.band(i, cfg.R - 1)


def _ring(b, cfg, s, c):
    g = lambda f: b.sel(s[f], c)
    return g("c_sqt"), g("c_cqh"), g("c_sqh"), g("c_cqt")


def _result(b, err, out, new, old):
    """Total operations: on error the state is unchanged and the output is (0, 0)."""
    ok = b.eq(err, OK)
    return err, tuple(b.ite(ok, o, 0) for o in out), b.ite_state(ok, new, old)


NO_OUT = (0, 0)


def _live_uvm(b, st):
    return b.or_(b.eq(st, U_CREATED), b.eq(st, U_RUNNABLE), b.eq(st, U_RUNNING), b.eq(st, U_BLOCKED))


def _free_page(b, s, p):
    """A page back to the pool: unmapped everywhere, scrubbed."""
    return {
        "p_kind": b.upd(s["p_kind"], p, P_FREE),
        "p_owner": b.upd(s["p_owner"], p, 0),
        "p_mu": b.upd(s["p_mu"], p, b.fill("U", False)),
        "p_ms": b.upd(s["p_ms"], p, b.fill("T", False)),
        "p_scrub": b.upd(s["p_scrub"], p, True),
    }


def _chan_fields(b, cfg, s, c, state, uvm, sysvm, page):
    """Channel c set up afresh (open_channel) or cleared (close_channel): empty rings, blank
    history, honest. (A zeroed CQ entry reads as a success, as on the implementation's page.)"""
    z = lambda f, v: b.upd(s[f], c, v)
    ring = {f: z(f, 0) for f in ("c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh", "c_pcqt")}
    slots = {f: z(f, b.fill("R", 0, cfg.V)) for f in ("c_sq", "c_svc", "c_cqv")}
    return dict(ring, **slots, c_state=z("c_state", state), c_uvm=z("c_uvm", uvm), c_sysvm=z("c_sysvm", sysvm),
                c_page=z("c_page", page), c_cqr=z("c_cqr", b.fill("R", True)),
                c_hist=z("c_hist", b.fill("H", 0, cfg.V)), c_honest=z("c_honest", True))


def _pages_used(b, s, t):
    return b.count("P", lambda p: b.and_(b.eq(b.sel(s["p_tenant"], p), t),
                                         b.or_(b.eq(b.sel(s["p_kind"], p), P_UVM),
                                               b.eq(b.sel(s["p_kind"], p), P_CHAN))))


def _uvms_used(b, s, t):
    return b.count("U", lambda u: b.and_(b.eq(b.sel(s["u_tenant"], u), t),
                                         b.ne(b.sel(s["u_state"], u), U_FREE)))


def _own_page(b, s, p, t):
    """p is in tenant t's share of the pool (hypervisor pages are nobody's)."""
    return b.and_(b.eq(b.sel(s["p_tenant"], p), t), b.ne(b.sel(s["p_kind"], p), P_HYP))


def _chan_of(b, s, c, u):
    return b.and_(b.ne(b.sel(s["c_state"], c), C_FREE), b.eq(b.sel(s["c_uvm"], c), u))


def _cq_nonempty(b, s, c):
    """The guest's view: published cq_tail differs from its cq_head."""
    return b.ne(b.sel(s["c_pcqt"], c), b.sel(s["c_cqh"], c))


# ---------------------------------------------------------------------------------------------
# operations: op(b, cfg, s, *args) -> (err, out, new_state). out = (a, b) ints.

def create_tenant(b, cfg, s, t):
    err = b.first([(b.not_(b.sel(s["t_live"], t)), EINVAL)])
    new = _set(b, s, t_live=b.upd(s["t_live"], t, True), s_state=b.upd(s["s_state"], t, S_NONE))
    return _result(b, err, NO_OUT, new, s)


def start_sysvm(b, cfg, s, t):
    err = b.first([(b.sel(s["t_live"], t), EINVAL), (b.eq(b.sel(s["s_state"], t), S_NONE), EINVAL)])
    new = _set(b, s, s_state=b.upd(s["s_state"], t, S_UP))
    return _result(b, err, NO_OUT, new, s)


def create_uvm(b, cfg, s, u, t):
    err = b.first([
        (b.eq(b.sel(s["u_tenant"], u), t), EINVAL),          # user-VM ids are per tenant
        (b.sel(s["t_live"], t), EINVAL),
        (b.eq(b.sel(s["u_state"], u), U_FREE), EBUSY),
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
        (b.ult(_uvms_used(b, s, t), b.sel(s["t_qu"], t)), EQUOTA),
    ])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_CREATED), u_rq=b.upd(s["u_rq"], u, 0),
               u_core=b.upd(s["u_core"], u, 0))
    return _result(b, err, NO_OUT, new, s)


def start_uvm(b, cfg, s, u):
    err = b.first([(b.eq(b.sel(s["u_state"], u), U_CREATED), EINVAL)])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_RUNNABLE), u_rq=b.upd(s["u_rq"], u, 1))
    return _result(b, err, NO_OUT, new, s)


def open_channel(b, cfg, s, c, u, p):
    t = b.sel(s["u_tenant"], u)
    # Ownership first (LEAKS.md #2): before the ids are known to be the caller's own, no error
    # may depend on their state.
    err = b.first([
        (b.eq(b.sel(s["c_tenant"], c), t), EINVAL),          # channel ids are per tenant
        (_own_page(b, s, p, t), EINVAL),                     # the tenant's own share of the pool
        (b.eq(b.sel(s["u_state"], u), U_CREATED), EINVAL),
        (b.eq(b.sel(s["c_state"], c), C_FREE), EBUSY),
        (b.not_(b.any("C", lambda c2: _chan_of(b, s, c2, u))), EBUSY),   # one channel per user VM
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(_pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    return _result(b, err, NO_OUT, _open_channel_effect(b, cfg, s, c, u, p, t), s)


def _open_channel_effect(b, cfg, s, c, u, p, t):
    """Channel c of user VM u, on page p, joined to tenant t's system VM (mapped by both)."""
    return _set(b, s, **_chan_fields(b, cfg, s, c, C_OPEN, u, t, p),
                p_kind=b.upd(s["p_kind"], p, P_CHAN), p_owner=b.upd(s["p_owner"], p, c),
                p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
                p_ms=b.upd(s["p_ms"], p, b.upd(b.sel(s["p_ms"], p), t, True)),
                p_scrub=b.upd(s["p_scrub"], p, False))


def submit(b, cfg, s, c, v):
    """The guest posts a request. Guest-side operations need only a channel, OPEN or BROKEN: the
    page stays the guest's to write even after its system VM has given up on it."""
    u = b.sel(s["c_uvm"], c)
    sqt, cqh, _, _ = _ring(b, cfg, s, c)
    W = cfg.W
    err = b.first([
        (b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.ult(b.sub(sqt, cqh, W), cfg.R), EFULL),
    ])
    new = _set(b, s,
               c_sq=b.upd(s["c_sq"], c, b.upd(b.sel(s["c_sq"], c), _slot(b, cfg, sqt), v)),
               c_hist=b.upd(s["c_hist"], c, b.upd(b.sel(s["c_hist"], c), sqt, v)),
               c_sqt=b.upd(s["c_sqt"], c, b.add(sqt, 1, W)))
    return _result(b, err, NO_OUT, new, s)


def _broken(b, s, c):
    return _set(b, s, c_state=b.upd(s["c_state"], c, C_BROKEN))


def take(b, cfg, s, c):
    """The system VM takes the next request. Distrusts sq_tail and cq_head (guest-written)."""
    sqt, cqh, sqh, cqt = _ring(b, cfg, s, c)
    W, R = cfg.W, cfg.R
    pending = b.sub(sqt, sqh, W)
    cq_used = b.sub(cqt, cqh, W)
    in_service = b.sub(sqh, cqt, W)
    err = b.first([
        (b.eq(b.sel(s["c_state"], c), C_OPEN), EINVAL),
        (b.eq(b.sel(s["s_state"], b.sel(s["c_sysvm"], c)), S_UP), EDOWN),
    ])
    bad = b.or_(b.ult(R, pending), b.ult(R, cq_used))
    # no CQ space for one more answer: cq_used + in_service >= R (written without overflow)
    nospace = b.not_(b.ult(in_service, b.sub(R, cq_used, W)))
    err = b.ite(b.eq(err, OK), b.ite(bad, OK, b.ite(b.eq(pending, 0), EEMPTY, b.ite(nospace, EFULL, OK))), err)
    slot = _slot(b, cfg, sqh)
    payload = b.sel(b.sel(s["c_sq"], c), slot)
    nh = b.add(sqh, 1, W)
    took = _set(b, s,
                c_svc=b.upd(s["c_svc"], c, b.upd(b.sel(s["c_svc"], c), slot, payload)),
                c_sqh=b.upd(s["c_sqh"], c, nh), c_psqh=b.upd(s["c_psqh"], c, nh))
    new = b.ite_state(bad, _broken(b, s, c), took)
    out = (b.ite(bad, 0, payload), b.ite(bad, 1, 0))
    return _result(b, err, out, new, s)


def complete(b, cfg, s, c, ok):
    """The system VM answers the oldest request in service with result `ok` (True/False)."""
    _, _, sqh, cqt = _ring(b, cfg, s, c)
    W = cfg.W
    err = b.first([
        (b.eq(b.sel(s["c_state"], c), C_OPEN), EINVAL),
        (b.eq(b.sel(s["s_state"], b.sel(s["c_sysvm"], c)), S_UP), EDOWN),
        (b.ne(sqh, cqt), EEMPTY),
    ])
    slot = _slot(b, cfg, cqt)
    payload = b.sel(b.sel(s["c_svc"], c), slot)
    nt = b.add(cqt, 1, W)
    new = _set(b, s,
               c_cqv=b.upd(s["c_cqv"], c, b.upd(b.sel(s["c_cqv"], c), slot, payload)),
               c_cqr=b.upd(s["c_cqr"], c, b.upd(b.sel(s["c_cqr"], c), slot, ok)),
               c_cqt=b.upd(s["c_cqt"], c, nt), c_pcqt=b.upd(s["c_pcqt"], c, nt))
    return _result(b, err, NO_OUT, new, s)


def deliver(b, cfg, s, c):
    """The guest reads the next completion: out = (payload, 1 if ok else 0)."""
    u = b.sel(s["c_uvm"], c)
    cqh = b.sel(s["c_cqh"], c)
    err = b.first([
        (b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (_cq_nonempty(b, s, c), EEMPTY),
    ])
    slot = _slot(b, cfg, cqh)
    out = (b.sel(b.sel(s["c_cqv"], c), slot), b.ite(b.sel(b.sel(s["c_cqr"], c), slot), 1, 0))
    new = _set(b, s, c_cqh=b.upd(s["c_cqh"], c, b.add(cqh, 1, cfg.W)))
    return _result(b, err, out, new, s)


def _off_core(b, s, u):
    """Take u off its core (if RUNNING) and out of the run queue."""
    k = b.sel(s["u_core"], u)
    running = b.eq(b.sel(s["u_state"], u), U_RUNNING)
    return {"k_busy": b.ite(running, b.upd(s["k_busy"], k, False), s["k_busy"]),
            "u_rq": b.upd(s["u_rq"], u, 0)}


def exit_uvm(b, cfg, s, u):
    err = b.first([(b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL)])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_EXITED), **_off_core(b, s, u))
    return _result(b, err, NO_OUT, new, s)


def crash_uvm(b, cfg, s, u):
    err = b.first([(_live_uvm(b, b.sel(s["u_state"], u)), EINVAL)])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_CRASHED), **_off_core(b, s, u))
    return _result(b, err, NO_OUT, new, s)


def _dead(b, st):
    return b.or_(b.eq(st, U_EXITED), b.eq(st, U_CRASHED))


def close_channel(b, cfg, s, c):
    """Tear down a finished user VM's channel: page unmapped from both sides, scrubbed, freed.
    Requests still outstanding fail (the user VM is gone)."""
    u = b.sel(s["c_uvm"], c)
    p = b.sel(s["c_page"], c)
    err = b.first([
        (b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
        (_dead(b, b.sel(s["u_state"], u)), EBUSY),
    ])
    new = _set(b, s, **_chan_fields(b, cfg, s, c, C_FREE, 0, 0, 0), **_free_page(b, s, p))
    return _result(b, err, NO_OUT, new, s)


def destroy_uvm(b, cfg, s, u):
    err = b.first([
        (_dead(b, b.sel(s["u_state"], u)), EINVAL),
        (b.not_(b.any("C", lambda c: _chan_of(b, s, c, u))), EBUSY),
    ])
    mine = lambda p: b.and_(b.eq(b.sel(s["p_kind"], p), P_UVM), b.eq(b.sel(s["p_owner"], p), u))
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_FREE), u_rq=b.upd(s["u_rq"], u, 0),
               u_core=b.upd(s["u_core"], u, 0),
               p_kind=b.tab("P", lambda p: b.ite(mine(p), P_FREE, b.sel(s["p_kind"], p))),
               p_owner=b.tab("P", lambda p: b.ite(mine(p), 0, b.sel(s["p_owner"], p))),
               p_mu=b.tab("P", lambda p: b.ite(mine(p), b.fill("U", False), b.sel(s["p_mu"], p))),
               p_ms=b.tab("P", lambda p: b.ite(mine(p), b.fill("T", False), b.sel(s["p_ms"], p))),
               p_scrub=b.tab("P", lambda p: b.ite(mine(p), True, b.sel(s["p_scrub"], p))))
    return _result(b, err, NO_OUT, new, s)


def crash_sysvm(b, cfg, s, t):
    err = b.first([(b.eq(b.sel(s["s_state"], t), S_UP), EINVAL)])
    new = _set(b, s, s_state=b.upd(s["s_state"], t, S_DOWN))
    return _result(b, err, NO_OUT, new, s)


def restart_sysvm(b, cfg, s, t):
    """DOWN -> UP, epoch + 1. For every open channel joined to t: adopt the published indices
    if sq_head - cq_tail <= R (else the channel is BROKEN), then answer every request that was in
    service with an error (EIO): retrying could run a non-idempotent request twice."""
    err = b.first([(b.eq(b.sel(s["s_state"], t), S_DOWN), EINVAL)])
    W, R = cfg.W, cfg.R

    def mine(c):
        return b.and_(b.eq(b.sel(s["c_state"], c), C_OPEN), b.eq(b.sel(s["c_sysvm"], c), t))

    def valid(c):
        return b.ule(b.sub(b.sel(s["c_psqh"], c), b.sel(s["c_pcqt"], c), W), R)

    def fix(c):
        return b.and_(mine(c), valid(c))

    def ent(c):
        """CQ payload / result arrays after answering [pcqt, psqh) with errors."""
        h, tl = b.sel(s["c_psqh"], c), b.sel(s["c_pcqt"], c)
        n = b.sub(h, tl, W)
        vals, oks = b.sel(s["c_cqv"], c), b.sel(s["c_cqr"], c)
        sq = b.sel(s["c_sq"], c)
        for j in range(R):
            i = b.add(tl, j, W)
            slot = _slot(b, cfg, i)
            hit = b.ult(j, n)
            vals = b.ite(hit, b.upd(vals, slot, b.sel(sq, slot)), vals)
            oks = b.ite(hit, b.upd(oks, slot, False), oks)
        return vals, oks

    psqh = lambda c: b.sel(s["c_psqh"], c)
    new = _set(b, s,
               s_state=b.upd(s["s_state"], t, S_UP),
               s_epoch=b.upd(s["s_epoch"], t, b.add(b.sel(s["s_epoch"], t), 1, cfg.EW)),
               c_state=b.tab("C", lambda c: b.ite(b.and_(mine(c), b.not_(valid(c))), C_BROKEN,
                                                   b.sel(s["c_state"], c))),
               c_sqh=b.tab("C", lambda c: b.ite(fix(c), psqh(c), b.sel(s["c_sqh"], c))),
               c_cqt=b.tab("C", lambda c: b.ite(fix(c), psqh(c), b.sel(s["c_cqt"], c))),
               c_pcqt=b.tab("C", lambda c: b.ite(fix(c), psqh(c), b.sel(s["c_pcqt"], c))),
               c_cqv=b.tab("C", lambda c: b.ite(fix(c), ent(c)[0], b.sel(s["c_cqv"], c))),
               c_cqr=b.tab("C", lambda c: b.ite(fix(c), ent(c)[1], b.sel(s["c_cqr"], c))))
    return _result(b, err, NO_OUT, new, s)


def map_page(b, cfg, s, p, u):
    """The guest grows by one page from its tenant's share of the pool."""
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (_own_page(b, s, p, t), EINVAL),                     # ownership first (LEAKS.md #3)
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(_pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    return _result(b, err, NO_OUT, _map_page_effect(b, s, p, u), s)


def _map_page_effect(b, s, p, u):
    """Page p becomes user VM u's, mapped by it, no longer scrubbed."""
    return _set(b, s, p_kind=b.upd(s["p_kind"], p, P_UVM), p_owner=b.upd(s["p_owner"], p, u),
                p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
                p_scrub=b.upd(s["p_scrub"], p, False))


def unmap_page(b, cfg, s, p, u):
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.eq(b.sel(s["p_kind"], p), P_UVM), EINVAL),
        (b.eq(b.sel(s["p_owner"], p), u), EINVAL),
    ])
    new = _set(b, s, **_free_page(b, s, p))
    return _result(b, err, NO_OUT, new, s)


def schedule(b, cfg, s, k, u):
    """Core k (idle) runs user VM u (RUNNABLE). The implementation picks u; the spec checks it."""
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_RUNNABLE), EINVAL),
        (b.not_(b.sel(s["k_busy"], k)), EBUSY),
    ])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_RUNNING), u_core=b.upd(s["u_core"], u, k),
               u_rq=b.upd(s["u_rq"], u, 0), k_busy=b.upd(s["k_busy"], k, True),
               k_cur=b.upd(s["k_cur"], k, u))
    return _result(b, err, NO_OUT, new, s)


def preempt(b, cfg, s, k):
    u = b.sel(s["k_cur"], k)
    err = b.first([(b.sel(s["k_busy"], k), EINVAL)])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_RUNNABLE), u_rq=b.upd(s["u_rq"], u, 1),
               k_busy=b.upd(s["k_busy"], k, False))
    return _result(b, err, NO_OUT, new, s)


def block(b, cfg, s, k):
    """The vCPU on core k waits for a completion; refused while one is already there."""
    u = b.sel(s["k_cur"], k)
    err = b.first([
        (b.sel(s["k_busy"], k), EINVAL),
        (b.not_(b.any("C", lambda c: b.and_(_chan_of(b, s, c, u), _cq_nonempty(b, s, c)))), EBUSY),
    ])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_BLOCKED), k_busy=b.upd(s["k_busy"], k, False))
    return _result(b, err, NO_OUT, new, s)


def wake(b, cfg, s, u):
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_BLOCKED), EINVAL),
        (b.any("C", lambda c: b.and_(_chan_of(b, s, c, u), _cq_nonempty(b, s, c))), EEMPTY),
    ])
    new = _set(b, s, u_state=b.upd(s["u_state"], u, U_RUNNABLE), u_rq=b.upd(s["u_rq"], u, 1))
    return _result(b, err, NO_OUT, new, s)


def _scribble(b, cfg, s, c, **upd):
    u = b.sel(s["c_uvm"], c)
    err = b.first([(b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
                   (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL)])
    new = _set(b, s, c_honest=b.upd(s["c_honest"], c, False), **upd)
    return _result(b, err, NO_OUT, new, s)


def scribble_sq_tail(b, cfg, s, c, v):
    return _scribble(b, cfg, s, c, c_sqt=b.upd(s["c_sqt"], c, v))


def scribble_cq_head(b, cfg, s, c, v):
    return _scribble(b, cfg, s, c, c_cqh=b.upd(s["c_cqh"], c, v))


def scribble_entry(b, cfg, s, c, i, v):
    return _scribble(b, cfg, s, c, c_sq=b.upd(s["c_sq"], c, b.upd(b.sel(s["c_sq"], c), i, v)))


def scribble_pub(b, cfg, s, c, which, v):
    """which = 0: the published sq_head, 1: the published cq_tail."""
    return _scribble(b, cfg, s, c,
                     c_psqh=b.ite(b.eq(which, 0), b.upd(s["c_psqh"], c, v), s["c_psqh"]),
                     c_pcqt=b.ite(b.eq(which, 0), s["c_pcqt"], b.upd(s["c_pcqt"], c, v)))


# name -> (function, argument sorts, actor). Argument sorts: "T","U","C","P","K" ids,
# "V" payload, "B" bool, "I" ring index (W bits), "S" ring slot, "2" which-of-two.
# actor(b, s, *args) -> the tenant on whose behalf the operation runs (for noninterference).
def _a_t(b, s, t, *_):
    return t


def _a_u(b, s, u, *_):
    return b.sel(s["u_tenant"], u)


def _a_c(b, s, c, *_):
    return b.sel(s["c_tenant"], c)


def _a_k(b, s, k, *_):
    return b.ite(b.sel(s["k_busy"], k), b.sel(s["u_tenant"], b.sel(s["k_cur"], k)), b.nobody())


def _a_2u(b, s, x, u, *_):
    return b.sel(s["u_tenant"], u)


OPS = {
    "create_tenant": (create_tenant, ("T",), _a_t),
    "start_sysvm": (start_sysvm, ("T",), _a_t),
    "create_uvm": (create_uvm, ("U", "T"), _a_u),
    "start_uvm": (start_uvm, ("U",), _a_u),
    "open_channel": (open_channel, ("C", "U", "P"), _a_c),
    "submit": (submit, ("C", "V"), _a_c),
    "take": (take, ("C",), _a_c),
    "complete": (complete, ("C", "B"), _a_c),
    "deliver": (deliver, ("C",), _a_c),
    "exit_uvm": (exit_uvm, ("U",), _a_u),
    "crash_uvm": (crash_uvm, ("U",), _a_u),
    "close_channel": (close_channel, ("C",), _a_c),
    "destroy_uvm": (destroy_uvm, ("U",), _a_u),
    "crash_sysvm": (crash_sysvm, ("T",), _a_t),
    "restart_sysvm": (restart_sysvm, ("T",), _a_t),
    "map_page": (map_page, ("P", "U"), _a_2u),
    "unmap_page": (unmap_page, ("P", "U"), _a_2u),
    "schedule": (schedule, ("K", "U"), _a_2u),
    "preempt": (preempt, ("K",), _a_k),
    "block": (block, ("K",), _a_k),
    "wake": (wake, ("U",), _a_u),
    "scribble_sq_tail": (scribble_sq_tail, ("C", "I"), _a_c),
    "scribble_cq_head": (scribble_cq_head, ("C", "I"), _a_c),
    "scribble_entry": (scribble_entry, ("C", "S", "V"), _a_c),
    "scribble_pub": (scribble_pub, ("C", "2", "I"), _a_c),
}

# Operations whose outcome depends on state no tenant observes (core availability): the
# scheduler is a declared timing channel. Only local respect is claimed for them.
TIMING_OPS = ("schedule",)


# ---------------------------------------------------------------------------------------------
# invariants: inv(b, cfg, s) -> bool

def _dist(b, cfg, a, c):
    return b.sub(a, c, cfg.W)


def inv_page_exclusive(b, cfg, s):
    """Each page has one owner, and that owner exists and agrees: a channel's page is owned by
    that channel (so no two channels share a page) and a user VM's page by a live slot."""
    def page_ok(p):
        kind, own = b.sel(s["p_kind"], p), b.sel(s["p_owner"], p)
        return b.and_(
            b.implies(b.eq(kind, P_CHAN), b.and_(b.ne(b.sel(s["c_state"], own), C_FREE),
                                                 b.eq(b.sel(s["c_page"], own), p))),
            b.implies(b.eq(kind, P_UVM), b.ne(b.sel(s["u_state"], own), U_FREE)))

    def chan_ok(c):
        p = b.sel(s["c_page"], c)
        return b.implies(b.ne(b.sel(s["c_state"], c), C_FREE),
                         b.and_(b.eq(b.sel(s["p_kind"], p), P_CHAN), b.eq(b.sel(s["p_owner"], p), c)))
    return b.and_(b.all("P", page_ok), b.all("C", chan_ok))


def inv_no_cross_tenant_mapping(b, cfg, s):
    """A page is mapped only by VMs of the tenant whose share of the pool it belongs to."""
    return b.all("P", lambda p: b.and_(
        b.all("U", lambda u: b.implies(b.sel(b.sel(s["p_mu"], p), u),
                                       b.eq(b.sel(s["u_tenant"], u), b.sel(s["p_tenant"], p)))),
        b.all("T", lambda t: b.implies(b.sel(b.sel(s["p_ms"], p), t), b.eq(t, b.sel(s["p_tenant"], p))))))


def inv_guest_maps_only_own(b, cfg, s):
    """Nobody maps a free or hypervisor page; a user VM maps only its own pages and its own
    channel's page; a system VM only the pages of channels joined to it."""
    def page_ok(p):
        kind, own = b.sel(s["p_kind"], p), b.sel(s["p_owner"], p)
        mu, ms = b.sel(s["p_mu"], p), b.sel(s["p_ms"], p)
        return b.and_(
            b.all("U", lambda u: b.implies(b.sel(mu, u), b.or_(
                b.and_(b.eq(kind, P_UVM), b.eq(own, u)),
                b.and_(b.eq(kind, P_CHAN), b.eq(b.sel(s["c_uvm"], own), u))))),
            b.all("T", lambda t: b.implies(b.sel(ms, t), b.and_(
                b.eq(kind, P_CHAN), b.eq(b.sel(s["c_sysvm"], own), t)))))
    return b.all("P", page_ok)


def inv_channel_join(b, cfg, s):
    """An open (or broken) channel joins a live user VM of its tenant to that tenant's system VM,
    through its page, mapped by both."""
    def ok(c):
        u, t, p = b.sel(s["c_uvm"], c), b.sel(s["c_sysvm"], c), b.sel(s["c_page"], c)
        return b.implies(b.ne(b.sel(s["c_state"], c), C_FREE), b.and_(
            b.eq(b.sel(s["u_tenant"], u), b.sel(s["c_tenant"], c)),
            b.eq(t, b.sel(s["c_tenant"], c)),
            b.ne(b.sel(s["u_state"], u), U_FREE),
            b.sel(s["t_live"], t), b.ne(b.sel(s["s_state"], t), S_NONE),
            b.implies(b.not_(_dead(b, b.sel(s["u_state"], u))), b.sel(b.sel(s["p_mu"], p), u)),
            b.sel(b.sel(s["p_ms"], p), t)))
    return b.all("C", ok)


def inv_ring_private_bounds(b, cfg, s):
    """The system VM's own indices: requests in service never exceed the capacity."""
    return b.all("C", lambda c: b.implies(b.eq(b.sel(s["c_state"], c), C_OPEN),
                                          b.ule(_dist(b, cfg, b.sel(s["c_sqh"], c), b.sel(s["c_cqt"], c)), cfg.R)))


def _honest(b, s, c):
    return b.and_(b.eq(b.sel(s["c_state"], c), C_OPEN), b.sel(s["c_honest"], c))


def inv_ring_honest_bounds(b, cfg, s):
    """Honest channel: cq_head <= cq_tail <= sq_head <= sq_tail (modulo 2**W, within R), and the
    published copies equal the private ones."""
    def ok(c):
        sqt, cqh, sqh, cqt = _ring(b, cfg, s, c)
        out = _dist(b, cfg, sqt, cqh)
        return b.implies(_honest(b, s, c), b.and_(
            b.ule(out, cfg.R),
            b.ule(_dist(b, cfg, sqh, cqh), out),
            b.ule(_dist(b, cfg, cqt, cqh), _dist(b, cfg, sqh, cqh)),
            b.eq(b.sel(s["c_psqh"], c), sqh), b.eq(b.sel(s["c_pcqt"], c), cqt)))
    return b.all("C", ok)


def _window(b, cfg, s, c, lo, hi, arr, hist):
    """For every index i in [lo, hi): arr[slot(i)] == hist[i]."""
    n = _dist(b, cfg, hi, lo)
    conj = []
    for j in range(cfg.R):
        i = b.add(lo, j, cfg.W)
        conj.append(b.implies(b.ult(j, n), b.eq(b.sel(arr, _slot(b, cfg, i)), b.sel(hist, i))))
    return b.and_(*conj)


def inv_no_lost_dup_reorder(b, cfg, s):
    """Honest channel: the SQ holds exactly the history over [cq_head, sq_tail) (nothing lost,
    duplicated or reordered), and the system VM's in-service copies over [cq_tail, sq_head)."""
    def ok(c):
        sqt, cqh, sqh, cqt = _ring(b, cfg, s, c)
        hist = b.sel(s["c_hist"], c)
        return b.implies(_honest(b, s, c), b.and_(
            _window(b, cfg, s, c, cqh, sqt, b.sel(s["c_sq"], c), hist),
            _window(b, cfg, s, c, cqt, sqh, b.sel(s["c_svc"], c), hist)))
    return b.all("C", ok)


def inv_cq_answers_request(b, cfg, s):
    """Honest channel: every CQ entry in [cq_head, cq_tail) answers the request of that channel
    with that index (its payload is the history's)."""
    def ok(c):
        _, cqh, _, cqt = _ring(b, cfg, s, c)
        return b.implies(_honest(b, s, c),
                         _window(b, cfg, s, c, cqh, cqt, b.sel(s["c_cqv"], c), b.sel(s["c_hist"], c)))
    return b.all("C", ok)


def inv_free_pages_scrubbed(b, cfg, s):
    """A page in the pool is scrubbed: nothing crosses from one owner to the next."""
    return b.all("P", lambda p: b.implies(b.eq(b.sel(s["p_kind"], p), P_FREE), b.sel(s["p_scrub"], p)))


def inv_sched(b, cfg, s):
    """A RUNNING vCPU is on exactly one core and that core runs it; a busy core runs a RUNNING
    vCPU; RUNNABLE vCPUs are queued exactly once (rq == 1), all others not at all."""
    def u_ok(u):
        st, k = b.sel(s["u_state"], u), b.sel(s["u_core"], u)
        return b.and_(
            b.implies(b.eq(st, U_RUNNING), b.and_(b.sel(s["k_busy"], k), b.eq(b.sel(s["k_cur"], k), u))),
            b.eq(b.sel(s["u_rq"], u), b.ite(b.eq(st, U_RUNNABLE), 1, 0)))

    def k_ok(k):
        u = b.sel(s["k_cur"], k)
        return b.implies(b.sel(s["k_busy"], k), b.and_(b.eq(b.sel(s["u_state"], u), U_RUNNING),
                                                       b.eq(b.sel(s["u_core"], u), k)))
    return b.and_(b.all("U", u_ok), b.all("K", k_ok))


def inv_quotas(b, cfg, s):
    """Per-tenant quotas hold: user VMs and pages in use."""
    return b.all("T", lambda t: b.and_(b.ule(_uvms_used(b, s, t), b.sel(s["t_qu"], t)),
                                       b.ule(_pages_used(b, s, t), b.sel(s["t_qp"], t))))


def inv_page_share(b, cfg, s):
    """A page in use belongs to its user's tenant's share of the pool."""
    def p_ok(p):
        kind, own = b.sel(s["p_kind"], p), b.sel(s["p_owner"], p)
        return b.and_(
            b.implies(b.eq(kind, P_UVM), b.eq(b.sel(s["u_tenant"], own), b.sel(s["p_tenant"], p))),
            b.implies(b.eq(kind, P_CHAN), b.eq(b.sel(s["c_tenant"], own), b.sel(s["p_tenant"], p))))
    return b.all("P", p_ok)


def inv_hyp_pages_stay(b, cfg, s):
    """The hypervisor's pages (p_hyp, static) are exactly the pages of kind HYP: no operation
    hands one out or takes one in."""
    return b.all("P", lambda p: b.eq(b.sel(s["p_hyp"], p), b.eq(b.sel(s["p_kind"], p), P_HYP)))


def inv_tenant_lifecycle(b, cfg, s):
    """A user VM exists only for a live tenant whose system VM was started; a dead tenant's
    system VM is NONE."""
    return b.and_(
        b.all("T", lambda t: b.implies(b.not_(b.sel(s["t_live"], t)), b.eq(b.sel(s["s_state"], t), S_NONE))),
        b.all("U", lambda u: b.implies(b.ne(b.sel(s["u_state"], u), U_FREE), b.and_(
            b.sel(s["t_live"], b.sel(s["u_tenant"], u)),
            b.ne(b.sel(s["s_state"], b.sel(s["u_tenant"], u)), S_NONE)))))


INVARIANTS = {
    "page_exclusive": inv_page_exclusive,
    "no_cross_tenant_mapping": inv_no_cross_tenant_mapping,
    "guest_maps_only_own": inv_guest_maps_only_own,
    "channel_join": inv_channel_join,
    "ring_private_bounds": inv_ring_private_bounds,
    "ring_honest_bounds": inv_ring_honest_bounds,
    "no_lost_dup_reorder": inv_no_lost_dup_reorder,
    "cq_answers_request": inv_cq_answers_request,
    "free_pages_scrubbed": inv_free_pages_scrubbed,
    "sched": inv_sched,
    "quotas": inv_quotas,
    "page_share": inv_page_share,
    "tenant_lifecycle": inv_tenant_lifecycle,
    "hyp_pages_stay": inv_hyp_pages_stay,
}


# Invariants that are consequences of the others (proved as corollaries, not independent):
# no_cross_tenant_mapping follows from guest_maps_only_own + channel_join + quotas.
DERIVED = ("no_cross_tenant_mapping",)


# ---------------------------------------------------------------------------------------------
# observation (noninterference). Scheduling/timing is NOT observed: which core runs whom, and
# whether a core is idle, are invisible (except the core of the tenant's own RUNNING vCPUs).

def observe(b, cfg, s, t):
    """What tenant t can observe: a tuple of values (concrete) / terms (symbolic), one table per
    observed component. Entities of other tenants contribute only their ownership flag (False)
    and masked (zero) fields."""
    def m(mine, v):
        if isinstance(v, tuple):
            return tuple(m(mine, x) for x in v)
        return b.mask(mine, v)
    g = lambda f, i: b.sel(s[f], i)
    obs = [g("t_live", t), g("t_qu", t), g("t_qp", t), g("s_state", t), g("s_epoch", t)]
    umine = lambda u: b.eq(g("u_tenant", u), t)
    obs.append(b.tab("U", umine))
    obs.append(b.tab("U", lambda u: m(umine(u), g("u_state", u))))
    obs.append(b.tab("U", lambda u: m(b.and_(umine(u), b.eq(g("u_state", u), U_RUNNING)), g("u_core", u))))
    cmine = lambda c: b.eq(g("c_tenant", c), t)
    obs.append(b.tab("C", cmine))
    for f in ("c_state", "c_uvm", "c_sysvm", "c_page", "c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh",
              "c_pcqt", "c_sq", "c_svc", "c_cqv", "c_cqr", "c_hist", "c_honest"):
        obs.append(b.tab("C", lambda c, f=f: m(cmine(c), g(f, c))))
    pmine = lambda p: _own_page(b, s, p, t)
    obs.append(b.tab("P", pmine))
    for f in ("p_kind", "p_owner", "p_scrub"):
        obs.append(b.tab("P", lambda p, f=f: m(pmine(p), g(f, p))))
    # and, for every page, which of t's user VMs map it and whether t's system VM does
    obs.append(b.tab("P", lambda p: b.tab("U", lambda u: b.and_(umine(u), b.sel(g("p_mu", p), u)))))
    obs.append(b.tab("P", lambda p: b.sel(g("p_ms", p), t)))
    return tuple(obs)


def apply(b, cfg, s, name, *args):
    fn = OPS[name][0]
    return fn(b, cfg, s, *args)
