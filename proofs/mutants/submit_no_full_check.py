"""submit posts a request without checking the ring has room (missing bound check)."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.submit.*"]


def mutate(spec):
    def submit(b, cfg, s, c, v):
        # the real submit, with the capacity made unbounded
        u = b.sel(s["c_uvm"], c)
        sqt = b.sel(s["c_sqt"], c)
        err = b.first([(b.eq(b.sel(s["c_state"], c), M.C_OPEN), M.EINVAL),
                       (b.eq(b.sel(s["u_state"], u), M.U_RUNNING), M.EINVAL)])
        new = dict(s)
        new["c_sq"] = b.upd(s["c_sq"], c, b.upd(b.sel(s["c_sq"], c), b.band(sqt, cfg.R - 1), v))
        new["c_hist"] = b.upd(s["c_hist"], c, b.upd(b.sel(s["c_hist"], c), sqt, v))
        new["c_sqt"] = b.upd(s["c_sqt"], c, b.add(sqt, 1, cfg.W))
        return err, M.NO_OUT, b.ite_state(b.eq(err, 0), new, s)
    return replace_op(spec, "submit", submit)
