"""map_page takes any free page of the global pool (no per-tenant share): whether a page is free is visible to, and exhaustible by, every tenant."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.map_page.*", "ni.map_page.*"]


def mutate(spec):
    def map_page(b, cfg, s, p, u):
        err = b.first([(b.eq(b.sel(s["u_state"], u), M.U_RUNNING), M.EINVAL),
                       (b.eq(b.sel(s["p_kind"], p), M.P_FREE), M.EBUSY)])
        return M.result(b, err, M.NO_OUT, M.map_page_effect(b, s, p, u), s)
    return replace_op(spec, "map_page", map_page)
