"""open_channel (first draft) checks state before ownership: its error code (EINVAL vs EBUSY) depends on pages and user VMs the caller does not own, e.g. a hypervisor page numbered inside the caller's share (a leak the proofs found)."""
from nanvix.spec.model import *  # noqa: F401,F403
from nanvix.spec.model import _pages_used, _chan_of, _result, _set
from nanvix.proofs.mutants._util import replace_op

TARGETS = ['ni.open_channel.*']


def open_channel(b, cfg, s, c, u, p):
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_CREATED), EINVAL),
        (b.eq(b.sel(s["c_state"], c), C_FREE), EBUSY),
        (b.eq(b.sel(s["c_tenant"], c), t), EINVAL),          # channel ids are per tenant
        (b.not_(b.any("C", lambda c2: _chan_of(b, s, c2, u))), EBUSY),   # one channel per user VM
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
        (b.eq(b.sel(s["p_tenant"], p), t), EINVAL),          # the tenant's own share of the pool
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(_pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    z = lambda f, v: b.upd(s[f], c, v)
    R, H = cfg.R, 1 << cfg.W
    new = _set(b, s,
               c_state=z("c_state", C_OPEN), c_uvm=z("c_uvm", u), c_sysvm=z("c_sysvm", t),
               c_page=z("c_page", p), c_sqt=z("c_sqt", 0), c_cqh=z("c_cqh", 0), c_sqh=z("c_sqh", 0),
               c_cqt=z("c_cqt", 0), c_psqh=z("c_psqh", 0), c_pcqt=z("c_pcqt", 0),
               c_sq=z("c_sq", (0,) * R), c_svc=z("c_svc", (0,) * R), c_cqv=z("c_cqv", (0,) * R),
               c_cqr=z("c_cqr", (False,) * R), c_hist=z("c_hist", (0,) * H), c_honest=z("c_honest", True),
               p_kind=b.upd(s["p_kind"], p, P_CHAN), p_owner=b.upd(s["p_owner"], p, c),
               p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
               p_ms=b.upd(s["p_ms"], p, b.upd(b.sel(s["p_ms"], p), t, True)),
               p_scrub=b.upd(s["p_scrub"], p, False))
    return _result(b, err, NO_OUT, new, s)


def mutate(spec):
    return replace_op(spec, 'open_channel', open_channel)
