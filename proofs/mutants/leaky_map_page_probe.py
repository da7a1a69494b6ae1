"""map_page rejects a foreign page (EINVAL) and a hypervisor page in the caller's range (EBUSY) differently: a probe of the hypervisor's pages (a leak the proofs found)."""
from nanvix.spec.model import *  # noqa: F401,F403
from nanvix.spec.model import _pages_used, _chan_of, _result, _set
from nanvix.proofs.mutants._util import replace_op

TARGETS = ['ni.map_page.*']


def map_page(b, cfg, s, p, u):
    """The guest grows by one page from its tenant's share of the pool."""
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.eq(b.sel(s["p_tenant"], p), t), EINVAL),
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(_pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    new = _set(b, s, p_kind=b.upd(s["p_kind"], p, P_UVM), p_owner=b.upd(s["p_owner"], p, u),
               p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
               p_scrub=b.upd(s["p_scrub"], p, False))
    return _result(b, err, NO_OUT, new, s)


def mutate(spec):
    return replace_op(spec, 'map_page', map_page)
