"""The nanvix state machine's state: its sorts, enums, error codes, fields and initial state,
and the queries over a state that operations and invariants share.

Every function in nanvix.spec takes a backend `b` (nanvix.spec.backend: Concrete, Z3Bounded or
Z3Full) first and uses only its API, so one text is the executable reference model and the Z3
proof model.

State (a dict, field name -> nested tuple indexed by finite sorts; see fields()):
  tenants t:  t_live[t] bool, t_qu[t] user-VM quota, t_qp[t] page quota, t_ovt[t][t2] ghost:
              times tenant t2 was scheduled while t starved (fairness: at most once)
  system VMs (one per tenant, indexed by t): s_state[t] NONE|UP|DOWN, s_epoch[t] (EW-bit counter)
  user VMs u: u_state[u] FREE..CRASHED, u_tenant[u] (static: user-VM ids are partitioned per
              tenant), u_core[u] (valid when RUNNING), u_rq[u] ghost "queued" count (0/1),
              u_ovt[u][u2] ghost: times u2 (of u's tenant) was scheduled while u waited
              runnable (fairness among one tenant's vCPUs: at most once)
  channels c: c_state[c] FREE|OPEN|BROKEN (BROKEN: its system VM found the guest's indices
              impossible and serves it no more, for good; the guest may still write its page),
              c_tenant[c] (static partition), c_uvm, c_sysvm (tenant
              id of the joined system VM), c_page,
              ring indices (W-bit, free running): c_sqt (sq_tail, guest), c_cqh (cq_head, guest),
              c_sqh / c_cqt (sq_head / cq_tail: the system VM's PRIVATE copies),
              c_psqh / c_pcqt (the copies published in shared memory),
              c_sq[c][slot] SQ payloads, c_svc[c][slot] payload the system VM read at take (private),
              c_cqv[c][slot] / c_cqr[c][slot] CQ payload / result ok,
              c_hist[c][i] ghost: payload submitted with index i, c_honest[c] ghost,
              c_runs[c][i] ghost: times request i was taken to be executed (at most once),
              c_ok[c][i] ghost: request i was executed and its execution succeeded (the truth a
              completion must tell), c_ndl[c] ghost: completions delivered to the guest (W bits),
              c_any[c] / c_lastv[c] / c_lastr[c] ghost: one was; the last one's payload and result
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
        "t_ovt": (("T", "T"), ("bv", 2)),
        "s_state": (("T",), ("enum", 3)),
        "s_epoch": (("T",), ("bv", EW)),
        "u_state": (("U",), ("enum", 7)),
        "u_tenant": (("U",), ("id", "T")),
        "u_core": (("U",), ("id", "K")),
        "u_rq": (("U",), ("int", 1)),
        "u_ovt": (("U", "U"), ("bv", 2)),
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
        "c_runs": (("C", "H"), ("bv", 2)),
        "c_ok": (("C", "H"), "bool"),
        "c_ndl": (("C",), ("bv", W)),
        "c_any": (("C",), "bool"),
        "c_lastv": (("C",), ("bv", V)),
        "c_lastr": (("C",), "bool"),
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
        "t_live": F("T", False), "t_qu": st["t_qu"], "t_qp": st["t_qp"], "t_ovt": b.fill2("T", "T", 0, 2),
        "s_state": F("T", S_NONE), "s_epoch": F("T", 0, EW),
        "u_state": F("U", U_FREE), "u_tenant": st["u_tenant"], "u_core": I("U", "K"),
        "u_rq": F("U", 0), "u_ovt": b.fill2("U", "U", 0, 2),
        "c_state": F("C", C_FREE), "c_tenant": st["c_tenant"], "c_uvm": I("C", "U"), "c_sysvm": I("C", "T"),
        "c_page": I("C", "P"), "c_sqt": F("C", 0, W), "c_cqh": F("C", 0, W), "c_sqh": F("C", 0, W),
        "c_cqt": F("C", 0, W), "c_psqh": F("C", 0, W), "c_pcqt": F("C", 0, W),
        "c_sq": b.fill2("C", "R", 0, V), "c_svc": b.fill2("C", "R", 0, V),
        "c_cqv": b.fill2("C", "R", 0, V), "c_cqr": b.fill2("C", "R", True),
        "c_hist": b.fill2("C", "H", 0, V), "c_honest": F("C", True),
        "c_runs": b.fill2("C", "H", 0, 2), "c_ok": b.fill2("C", "H", False),
        "c_ndl": F("C", 0, W), "c_any": F("C", False), "c_lastv": F("C", 0, V), "c_lastr": F("C", False),
        "p_kind": b.tab("P", lambda p: b.ite(b.sel(st["p_hyp"], p), P_HYP, P_FREE)),
        "p_owner": I("P", "U"), "p_tenant": st["p_tenant"], "p_hyp": st["p_hyp"],
        "p_mu": b.fill2("P", "U", False), "p_ms": b.fill2("P", "T", False),
        "p_scrub": F("P", True),
        "k_busy": F("K", False), "k_cur": I("K", "U"),
    }


# ---------------------------------------------------------------------------------------------
# queries over a state (shared by operations, invariants and the observation)

def slot_of(b, cfg, i):
    return b.band(i, cfg.R - 1)


def ring_of(b, cfg, s, c):
    g = lambda f: b.sel(s[f], c)
    return g("c_sqt"), g("c_cqh"), g("c_sqh"), g("c_cqt")


def live_uvm(b, st):
    return b.or_(b.eq(st, U_CREATED), b.eq(st, U_RUNNABLE), b.eq(st, U_RUNNING), b.eq(st, U_BLOCKED))


def dead(b, st):
    return b.or_(b.eq(st, U_EXITED), b.eq(st, U_CRASHED))


def pages_used(b, s, t):
    return b.count("P", lambda p: b.and_(b.eq(b.sel(s["p_tenant"], p), t),
                                         b.or_(b.eq(b.sel(s["p_kind"], p), P_UVM),
                                               b.eq(b.sel(s["p_kind"], p), P_CHAN))))


def starving(b, s, t):
    """Tenant t has a runnable vCPU and none on a core."""
    mine = lambda u: b.eq(b.sel(s["u_tenant"], u), t)
    return b.and_(b.any("U", lambda u: b.and_(mine(u), b.eq(b.sel(s["u_state"], u), U_RUNNABLE))),
                  b.not_(b.any("U", lambda u: b.and_(mine(u), b.eq(b.sel(s["u_state"], u), U_RUNNING)))))


def owes(b, s, t):
    """Another tenant starves that tenant t has already overtaken: t must let it run first."""
    return b.any("T", lambda t2: b.and_(b.ne(t2, t), starving(b, s, t2),
                                         b.ne(b.sel(b.sel(s["t_ovt"], t2), t), 0)))


def overtaken(b, s, u):
    """A runnable vCPU of u's tenant waits that u has already overtaken: u must let it run first
    (the scheduler's order among one tenant's vCPUs: first come, first served, up to one overtake)."""
    return b.any("U", lambda u2: b.and_(b.ne(u2, u), b.eq(b.sel(s["u_state"], u2), U_RUNNABLE),
                                         b.ne(b.sel(b.sel(s["u_ovt"], u2), u), 0)))


def uvms_used(b, s, t):
    return b.count("U", lambda u: b.and_(b.eq(b.sel(s["u_tenant"], u), t),
                                         b.ne(b.sel(s["u_state"], u), U_FREE)))


def own_page(b, s, p, t):
    """p is in tenant t's share of the pool (hypervisor pages are nobody's)."""
    return b.and_(b.eq(b.sel(s["p_tenant"], p), t), b.ne(b.sel(s["p_kind"], p), P_HYP))


def chan_of(b, s, c, u):
    return b.and_(b.ne(b.sel(s["c_state"], c), C_FREE), b.eq(b.sel(s["c_uvm"], c), u))


def cq_nonempty(b, s, c):
    """The guest's view: published cq_tail differs from its cq_head."""
    return b.ne(b.sel(s["c_pcqt"], c), b.sel(s["c_cqh"], c))


def dist(b, cfg, a, c):
    return b.sub(a, c, cfg.W)


def honest(b, s, c):
    return b.and_(b.eq(b.sel(s["c_state"], c), C_OPEN), b.sel(s["c_honest"], c))


def window(b, cfg, s, c, lo, hi, arr, hist):
    """For every index i in [lo, hi): arr[slot(i)] == hist[i]."""
    return each_in(b, cfg, lo, hi, lambda i: b.eq(b.sel(arr, slot_of(b, cfg, i)), b.sel(hist, i)))


def each_in(b, cfg, lo, hi, pred):
    """pred(i) for every index i in [lo, hi) (at most R of them, indices modulo 2**W)."""
    n = dist(b, cfg, hi, lo)
    return b.and_(*[b.implies(b.ult(j, n), pred(b.add(lo, j, cfg.W))) for j in range(cfg.R)])
