"""complete posts the answer to the ring indexed by the user-VM id, not the channel id (a response delivered to the wrong user VM)."""
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.complete.*", "ni.complete.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c, ok):
        # move the CQ entry the real operation wrote into ring c_uvm[c] instead of ring c
        u = b.sel(s["c_uvm"], c)
        cqt = b.sel(s["c_cqt"], c)
        slot = b.band(cqt, cfg.R - 1)
        good = b.eq(err, 0)
        post = dict(post)
        v = b.sel(b.sel(post["c_cqv"], c), slot)
        r = b.sel(b.sel(post["c_cqr"], c), slot)
        cqv = b.upd(post["c_cqv"], c, b.sel(s["c_cqv"], c))
        cqr = b.upd(post["c_cqr"], c, b.sel(s["c_cqr"], c))
        cqv = b.upd(cqv, u, b.upd(b.sel(cqv, u), slot, v))
        cqr = b.upd(cqr, u, b.upd(b.sel(cqr, u), slot, r))
        post["c_cqv"] = b.ite(good, cqv, post["c_cqv"])
        post["c_cqr"] = b.ite(good, cqr, post["c_cqr"])
        return err, out, post
    return post_edit(spec, "complete", edit)
