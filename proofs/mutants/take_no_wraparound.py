"""take checks the guest-written indices by comparing them as plain numbers (sq_tail < sq_head,
cq_tail < cq_head) instead of modulo 2**W: once an index wraps around, an honest channel is
marked BROKEN."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.take.honest_not_broken"]
EXPLORE = {"tenants": 1, "user_vms": 1, "ring": 2}


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c):
        sqt, cqh, sqh, cqt = M.ring_of(b, cfg, s, c)
        up = b.and_(b.eq(b.sel(s["c_state"], c), M.C_OPEN),
                    b.eq(b.sel(s["s_state"], b.sel(s["c_sysvm"], c)), M.S_UP))
        wrong = b.and_(up, b.or_(b.ult(sqt, sqh), b.ult(cqt, cqh)))
        broken = dict(s)
        broken["c_state"] = b.upd(s["c_state"], c, M.C_BROKEN)
        return (b.ite(wrong, 0, err), tuple(b.ite(wrong, x, o) for x, o in zip((0, 1), out)),
                b.ite_state(wrong, broken, post))
    return post_edit(spec, "take", edit)
