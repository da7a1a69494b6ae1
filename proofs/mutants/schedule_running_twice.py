"""schedule accepts a vCPU that is already RUNNING: one vCPU on two cores."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.schedule.*"]


def mutate(spec):
    def schedule(b, cfg, s, k, u):
        st = b.sel(s["u_state"], u)
        err = b.first([(b.or_(b.eq(st, M.U_RUNNABLE), b.eq(st, M.U_RUNNING)), M.EINVAL),
                       (b.not_(b.sel(s["k_busy"], k)), M.EBUSY)])
        new = dict(s)
        new.update(u_state=b.upd(s["u_state"], u, M.U_RUNNING), u_core=b.upd(s["u_core"], u, k),
                   u_rq=b.upd(s["u_rq"], u, 0), k_busy=b.upd(s["k_busy"], k, True),
                   k_cur=b.upd(s["k_cur"], k, u))
        return err, M.NO_OUT, b.ite_state(b.eq(err, 0), new, s)
    return replace_op(spec, "schedule", schedule)
