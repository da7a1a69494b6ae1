"""complete writes every answer as a success, whatever executing the request gave: a failed
request is reported to the guest as done."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.complete.truthful"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c, ok):
        slot = M.slot_of(b, cfg, b.sel(s["c_cqt"], c))
        cqr = b.upd(post["c_cqr"], c, b.upd(b.sel(post["c_cqr"], c), slot, True))
        return err, out, b.ite_state(b.eq(err, 0), dict(post, c_cqr=cqr), post)
    return post_edit(spec, "complete", edit)
