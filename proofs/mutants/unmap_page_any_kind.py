"""unmap_page forgets to check the page is one the user VM grew into: a user VM frees its own
channel page while the channel is open (its system VM still maps it)."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op
from nanvix.spec.ops.common import free_page

TARGETS = ["ind.unmap_page.*"]


def mutate(spec):
    def unmap_page(b, cfg, s, p, u):
        mine = b.or_(b.and_(b.eq(b.sel(s["p_kind"], p), M.P_UVM), b.eq(b.sel(s["p_owner"], p), u)),
                     b.and_(b.eq(b.sel(s["p_kind"], p), M.P_CHAN), b.sel(b.sel(s["p_mu"], p), u)))
        err = b.first([(b.eq(b.sel(s["u_state"], u), M.U_RUNNING), M.EINVAL), (mine, M.EINVAL)])
        return M.result(b, err, M.NO_OUT, M.update(b, s, **free_page(b, s, p)), s)
    return replace_op(spec, "unmap_page", unmap_page)
