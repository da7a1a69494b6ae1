"""restart_sysvm answers the requests the crashed system VM had in service with success instead of
EIO: the guest is told a request ran, and how it ended, when nobody knows."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.restart_sysvm.truthful"]
EXPLORE = {"tenants": 1, "user_vms": 1, "ring": 2}


def mutate(spec):
    def edit(b, cfg, s, post, err, out, t):
        W = cfg.W

        def answered(c, slot):   # slot holds one of the answers restart just wrote
            tl, n = b.sel(s["c_pcqt"], c), b.sub(b.sel(s["c_psqh"], c), b.sel(s["c_pcqt"], c), W)
            return b.or_(*[b.and_(b.ult(j, n), b.ule(n, cfg.R), b.eq(M.slot_of(b, cfg, b.add(tl, j, W)), slot))
                           for j in range(cfg.R)])

        def hit(c):
            return b.and_(b.eq(err, 0), b.eq(b.sel(s["c_state"], c), M.C_OPEN), b.eq(b.sel(s["c_sysvm"], c), t))
        post = dict(post)
        post["c_cqr"] = b.tab("C", lambda c: b.tab("R", lambda r: b.ite(
            b.and_(hit(c), answered(c, r)), True, b.sel(b.sel(post["c_cqr"], c), r))))
        return err, out, post
    return post_edit(spec, "restart_sysvm", edit)
