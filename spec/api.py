"""The executable reference model: the public API for refinement tests and abstraction functions.

    from nanvix.spec import api
    m = api.Model(api.Config(T=2, U=4, C=4, P=9, K=2, R=8, W=4))   # any sizes; R a power of two
    s = m.initial()                               # dict: field -> nested tuples (see FIELD_DOC)
    err, out, s = m.step(s, "submit", c, v)       # err 0 = success (then s is the new state);
                                                  # err != 0: s is unchanged, out = (0, 0).
                                                  # out = (a, b) ints
    m.check(s)                                    # {invariant name: bool}
    m.violations(s)                               # [names of violated invariants]
    m.observe(s, t)                               # what tenant t observes (for noninterference)

This is the SAME text the Z3 proofs are about (nanvix.spec), run with the concrete backend.
The only operation that returns err == 0 with out signalling trouble is take: out = (payload, 0)
when it took a request, (0, 1) when it found the guest-written indices impossible and marked the
channel BROKEN.
"""
from nanvix import spec as M
from nanvix.spec.backend import Concrete
from nanvix.spec.state import Config  # noqa: F401  (re-exported)

OPS = tuple(M.OPS)
INVARIANTS = tuple(M.INVARIANTS)
ERR_NAMES = M.ERR_NAMES

FIELD_DOC = {
    "t_live": "[t] bool: tenant created",
    "t_qu": "[t] int: user-VM quota (static)",
    "t_qp": "[t] int: page quota (static)",
    "t_ovt": "[t][t2] ghost: times t2 was scheduled while t starved (0..1; fairness)",
    "s_state": "[t] 0 NONE | 1 UP | 2 DOWN: tenant t's system VM",
    "s_epoch": "[t] int mod 2**EW: restarts of tenant t's system VM",
    "u_state": "[u] 0 FREE 1 CREATED 2 RUNNABLE 3 RUNNING 4 BLOCKED 5 EXITED 6 CRASHED",
    "u_tenant": "[u] tenant owning user-VM slot u (static; default u % T)",
    "u_core": "[u] core (meaningful when RUNNING, else 0)",
    "u_ovt": "[u][u2] ghost: times u2, of u's tenant, was scheduled while u waited runnable (0..1; fairness)",
    "u_rq": "[u] 0/1: times u sits in a run queue (1 iff RUNNABLE)",
    "c_state": "[c] 0 FREE | 1 OPEN | 2 BROKEN",
    "c_tenant": "[c] tenant owning channel slot c (static; default c % T)",
    "c_uvm": "[c] user VM (0 when FREE)", "c_sysvm": "[c] tenant whose system VM serves it (0 when FREE)",
    "c_page": "[c] page (0 when FREE)",
    "c_sqt": "[c] sq_tail (guest-written, shared), mod 2**W", "c_cqh": "[c] cq_head (guest-written, shared)",
    "c_sqh": "[c] sq_head: system VM's private copy", "c_cqt": "[c] cq_tail: system VM's private copy",
    "c_psqh": "[c] sq_head as published in shared memory", "c_pcqt": "[c] cq_tail as published",
    "c_sq": "[c][slot] SQ payloads (slot = index % R)", "c_svc": "[c][slot] payload the system VM read at take",
    "c_cqv": "[c][slot] CQ payloads",
    "c_cqr": "[c][slot] CQ result: True ok (also a never-written, zeroed entry), False error",
    "c_hist": "[c][i] ghost: payload submitted with index i (i < 2**W)",
    "c_honest": "[c] ghost: False once the guest scribbled on the shared ring",
    "c_runs": "[c][i] ghost: times request i was taken to be executed (0..3, mod 4)",
    "c_ok": "[c][i] ghost: request i was executed and succeeded (set when it is completed)",
    "c_ndl": "[c] ghost: completions delivered to the guest, mod 2**W",
    "c_any": "[c] ghost: some completion was delivered",
    "c_lastv": "[c] ghost: payload of the last completion delivered",
    "c_lastr": "[c] ghost: result of the last completion delivered",
    "p_kind": "[p] 0 FREE 1 HYP 2 UVM 3 CHAN", "p_owner": "[p] user VM (UVM) or channel (CHAN), else 0",
    "p_tenant": "[p] tenant whose share of the pool p is (static)",
    "p_hyp": "[p] bool: a hypervisor page, never any tenant's (static)",
    "p_mu": "[p][u] bool: mapped by user VM u", "p_ms": "[p][t] bool: mapped by tenant t's system VM",
    "p_scrub": "[p] bool: scrubbed",
    "k_busy": "[k] bool: core runs a vCPU", "k_cur": "[k] user VM it runs (0 when idle)",
}


class Model:
    def __init__(self, cfg=None):
        self.cfg = cfg or M.Config()
        self.b = Concrete(self.cfg)

    def initial(self, u_tenant=None, c_tenant=None, p_tenant=None, quota_uvms=None, quota_pages=None):
        """The initial state; the partitions default to round robin (u % T, c % T, and pages after
        the hypervisor's `hyp` ones)."""
        statics = {f: tuple(v) for f, v in (("u_tenant", u_tenant), ("c_tenant", c_tenant),
                                             ("p_tenant", p_tenant)) if v is not None}
        for f, q in (("t_qu", quota_uvms), ("t_qp", quota_pages)):
            if q is not None:
                statics[f] = (q,) * self.cfg.T if isinstance(q, int) else tuple(q)
        return M.init(self.b, self.cfg, statics)

    def step(self, s, op, *args):
        """(err, out, new state). Unknown op names raise KeyError; ids out of range IndexError."""
        return M.OPS[op][0](self.b, self.cfg, s, *args)

    def check(self, s):
        return {n: bool(f(self.b, self.cfg, s)) for n, f in M.INVARIANTS.items()}

    def violations(self, s):
        return [n for n, ok in self.check(s).items() if not ok]

    def observe(self, s, t):
        return M.observe(self.b, self.cfg, s, t)

    def arg_sorts(self, op):
        return M.OPS[op][1]
