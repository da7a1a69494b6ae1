"""restart_sysvm adopts the published (guest-writable) ring indices without validating sq_head - cq_tail <= R: it answers the R requests its completion ring can hold and believes the rest are still in service."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.restart_sysvm.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, t):
        W, R = cfg.W, cfg.R
        ok = b.eq(err, 0)

        def hit(c):   # the channels the real recovery would have marked BROKEN
            return b.and_(ok, b.eq(b.sel(s["c_state"], c), M.C_OPEN), b.eq(b.sel(s["c_sysvm"], c), t),
                          b.ult(R, b.sub(b.sel(s["c_psqh"], c), b.sel(s["c_pcqt"], c), W)))
        post = dict(post)
        post["c_state"] = b.tab("C", lambda c: b.ite(hit(c), M.C_OPEN, b.sel(post["c_state"], c)))
        post["c_sqh"] = b.tab("C", lambda c: b.ite(hit(c), b.sel(s["c_psqh"], c), b.sel(post["c_sqh"], c)))
        adv = lambda c: b.add(b.sel(s["c_pcqt"], c), R, W)
        post["c_cqt"] = b.tab("C", lambda c: b.ite(hit(c), adv(c), b.sel(post["c_cqt"], c)))
        post["c_pcqt"] = b.tab("C", lambda c: b.ite(hit(c), adv(c), b.sel(post["c_pcqt"], c)))
        return err, out, post
    return post_edit(spec, "restart_sysvm", edit)
