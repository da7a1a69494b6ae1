"""map_page rejects a foreign page (EINVAL) and a hypervisor page in the caller's range (EBUSY) differently: a probe of the hypervisor's pages (a leak the proofs found)."""
from nanvix.spec import *  # noqa: F401,F403
from nanvix.spec.ops.common import result
from nanvix.spec.ops.pages import map_page_effect
from nanvix.proofs.mutants._util import replace_op

TARGETS = ['ni.map_page.*']


def map_page(b, cfg, s, p, u):
    """The guest grows by one page from its tenant's share of the pool."""
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.eq(b.sel(s["p_tenant"], p), t), EINVAL),
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    return result(b, err, NO_OUT, map_page_effect(b, s, p, u), s)


def mutate(spec):
    return replace_op(spec, 'map_page', map_page)
