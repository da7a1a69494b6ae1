"""Pages a user VM grows into: map and unmap."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)
from nanvix.spec.ops.common import NO_OUT, chan_fields, free_page, off_core, result, update


def map_page(b, cfg, s, p, u):
    """The guest grows by one page from its tenant's share of the pool."""
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (own_page(b, s, p, t), EINVAL),                     # ownership first (LEAKS.md #3)
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    return result(b, err, NO_OUT, map_page_effect(b, s, p, u), s)


def map_page_effect(b, s, p, u):
    """Page p becomes user VM u's, mapped by it, no longer scrubbed."""
    return update(b, s, p_kind=b.upd(s["p_kind"], p, P_UVM), p_owner=b.upd(s["p_owner"], p, u),
                p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
                p_scrub=b.upd(s["p_scrub"], p, False))


def unmap_page(b, cfg, s, p, u):
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.eq(b.sel(s["p_kind"], p), P_UVM), EINVAL),
        (b.eq(b.sel(s["p_owner"], p), u), EINVAL),
    ])
    new = update(b, s, **free_page(b, s, p))
    return result(b, err, NO_OUT, new, s)
