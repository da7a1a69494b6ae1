"""create_uvm counts every tenant's user VMs against the quota (one shared pool): one tenant exhausting it is visible to another as EQUOTA."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ni.create_uvm.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, u, t):
        used = b.count("U", lambda v: b.ne(b.sel(s["u_state"], v), M.U_FREE))
        over = b.not_(b.ult(used, b.sel(s["t_qu"], t)))
        bad = b.and_(b.eq(err, 0), over)
        return b.ite(bad, M.EQUOTA, err), out, b.ite_state(bad, s, post)
    return post_edit(spec, "create_uvm", edit)
