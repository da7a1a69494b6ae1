"""map_page lets a guest map a hypervisor page (the check is "not already a user page" instead of "free")."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.map_page.*"]


def mutate(spec):
    def map_page(b, cfg, s, p, u):
        t = b.sel(s["u_tenant"], u)
        kind = b.sel(s["p_kind"], p)
        err = b.first([(b.eq(b.sel(s["p_tenant"], p), t), M.EINVAL),
                       (b.eq(b.sel(s["u_state"], u), M.U_RUNNING), M.EINVAL),
                       (b.or_(b.eq(kind, M.P_FREE), b.eq(kind, M.P_HYP)), M.EBUSY)])
        return M.result(b, err, M.NO_OUT, M.map_page_effect(b, s, p, u), s)
    return replace_op(spec, "map_page", map_page)
