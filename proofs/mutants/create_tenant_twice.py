"""create_tenant forgets to check the tenant is new: creating a live tenant again resets its
system VM to never started, under its running user VMs."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.create_tenant.*"]


def mutate(spec):
    def create_tenant(b, cfg, s, t):
        new = M.update(b, s, t_live=b.upd(s["t_live"], t, True), s_state=b.upd(s["s_state"], t, M.S_NONE))
        return M.result(b, 0, M.NO_OUT, new, s)
    return replace_op(spec, "create_tenant", create_tenant)
