"""take serves a channel only while its user VM is on a core: a guest that blocks waiting for its answer is never answered (a lost wake-up; caught by the model checker's liveness check)."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.take.*"]
EXPLORE = {"tenants": 1, "user_vms": 1, "ring": 1}


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c):
        running = b.eq(b.sel(s["u_state"], b.sel(s["c_uvm"], c)), M.U_RUNNING)
        bad = b.and_(b.eq(err, 0), b.not_(running))
        return b.ite(bad, M.EINVAL, err), (b.ite(bad, 0, out[0]), b.ite(bad, 0, out[1])), b.ite_state(bad, s, post)
    return post_edit(spec, "take", edit)
