"""restart_sysvm replays the requests the crashed system VM had taken: instead of answering them
with EIO it rewinds sq_head to cq_tail, so they are taken, and executed, a second time."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.restart_sysvm.at_most_once"]
EXPLORE = {"tenants": 1, "user_vms": 1, "ring": 2}


def mutate(spec):
    def edit(b, cfg, s, post, err, out, t):
        def hit(c):
            return b.and_(b.eq(err, 0), b.eq(b.sel(post["c_state"], c), M.C_OPEN), b.eq(b.sel(s["c_sysvm"], c), t))
        post = dict(post)
        for f in ("c_sqh", "c_psqh", "c_cqt", "c_pcqt", "c_cqv", "c_cqr"):
            src = s["c_pcqt"] if f in ("c_sqh", "c_psqh", "c_cqt") else s[f]
            post[f] = b.tab("C", lambda c, f=f, src=src: b.ite(hit(c), b.sel(src, c), b.sel(post[f], c)))
        return err, out, post
    return post_edit(spec, "restart_sysvm", edit)
