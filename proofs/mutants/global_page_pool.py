"""map_page takes any free page of the global pool (no per-tenant share): whether a page is free is visible to, and exhaustible by, every tenant."""
from nanvix.spec import model as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.map_page.*", "ni.map_page.*"]


def mutate(spec):
    def map_page(b, cfg, s, p, u):
        t = b.sel(s["u_tenant"], u)
        err = b.first([(b.eq(b.sel(s["u_state"], u), M.U_RUNNING), M.EINVAL),
                       (b.eq(b.sel(s["p_kind"], p), M.P_FREE), M.EBUSY)])
        new = dict(s)
        new.update(p_kind=b.upd(s["p_kind"], p, M.P_UVM), p_owner=b.upd(s["p_owner"], p, u),
                   p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
                   p_scrub=b.upd(s["p_scrub"], p, False))
        return err, M.NO_OUT, b.ite_state(b.eq(err, 0), new, s)
    return replace_op(spec, "map_page", map_page)
