"""start_sysvm forgets to check that the tenant exists: a system VM runs for a tenant that was
never created."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.start_sysvm.*"]


def mutate(spec):
    def start_sysvm(b, cfg, s, t):
        err = b.first([(b.eq(b.sel(s["s_state"], t), M.S_NONE), M.EINVAL)])
        new = M.update(b, s, s_state=b.upd(s["s_state"], t, M.S_UP))
        return M.result(b, err, M.NO_OUT, new, s)
    return replace_op(spec, "start_sysvm", start_sysvm)
