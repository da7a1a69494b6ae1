"""take accepts a request although the completion queue has no room left for its answer."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.take.*"]


def mutate(spec):
    def take(b, cfg, s, c):
        W, R = cfg.W, cfg.R
        sqt, sqh = b.sel(s["c_sqt"], c), b.sel(s["c_sqh"], c)
        err = b.first([(b.eq(b.sel(s["c_state"], c), M.C_OPEN), M.EINVAL),
                       (b.eq(b.sel(s["s_state"], b.sel(s["c_sysvm"], c)), M.S_UP), M.EDOWN),
                       (b.ne(sqt, sqh), M.EEMPTY)])
        slot = b.band(sqh, R - 1)
        payload = b.sel(b.sel(s["c_sq"], c), slot)
        nh = b.add(sqh, 1, W)
        new = dict(s)
        new["c_svc"] = b.upd(s["c_svc"], c, b.upd(b.sel(s["c_svc"], c), slot, payload))
        new["c_sqh"] = b.upd(s["c_sqh"], c, nh)
        new["c_psqh"] = b.upd(s["c_psqh"], c, nh)
        return err, (b.ite(b.eq(err, 0), payload, 0), 0), b.ite_state(b.eq(err, 0), new, s)
    return replace_op(spec, "take", take)
