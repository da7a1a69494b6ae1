"""crash_sysvm takes down every running system VM, not only the crashed tenant's: one tenant's
crash is seen by every other."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ni.crash_sysvm.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, t):
        down = b.tab("T", lambda t2: b.ite(b.eq(b.sel(s["s_state"], t2), M.S_UP), M.S_DOWN, b.sel(s["s_state"], t2)))
        return err, out, b.ite_state(b.eq(err, 0), dict(post, s_state=down), post)
    return post_edit(spec, "crash_sysvm", edit)
