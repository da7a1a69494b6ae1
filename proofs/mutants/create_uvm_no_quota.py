"""create_uvm forgets the tenant's user-VM quota."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.create_uvm.quotas"]


def mutate(spec):
    def create_uvm(b, cfg, s, u, t):
        err = b.first([
            (b.eq(b.sel(s["u_tenant"], u), t), M.EINVAL),
            (b.sel(s["t_live"], t), M.EINVAL),
            (b.eq(b.sel(s["u_state"], u), M.U_FREE), M.EBUSY),
            (b.eq(b.sel(s["s_state"], t), M.S_UP), M.EDOWN),
        ])
        new = M.update(b, s, u_state=b.upd(s["u_state"], u, M.U_CREATED), u_rq=b.upd(s["u_rq"], u, 0),
                       u_core=b.upd(s["u_core"], u, 0))
        return M.result(b, err, M.NO_OUT, new, s)
    return replace_op(spec, "create_uvm", create_uvm)
