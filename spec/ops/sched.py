"""The scheduler: cores run vCPUs; preempt, block on I/O, wake."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)
from nanvix.spec.ops.common import NO_OUT, chan_fields, free_page, off_core, result, update


def schedule(b, cfg, s, k, u):
    """Core k (idle) runs user VM u (RUNNABLE). The implementation picks u; the spec checks it.
    Fairness: a tenant overtakes a starving tenant at most once (ghost t_ovt), so a starving
    tenant runs after at most one turn of each other tenant: T - 1 decisions; and within a
    tenant a vCPU overtakes another runnable one at most once (ghost u_ovt), so a runnable vCPU
    runs after at most one turn of each other vCPU of its tenant."""
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_RUNNABLE), EINVAL),
        (b.not_(b.sel(s["k_busy"], k)), EBUSY),
        (b.not_(owes(b, s, t)), EBUSY),
        (b.not_(overtaken(b, s, u)), EBUSY),
    ])
    # t overtakes every other starving tenant (once more); t itself starves no longer
    ovt = b.tab("T", lambda t2: b.ite(b.eq(t2, t), b.fill("T", 0, 2), b.ite(
        starving(b, s, t2), b.upd(b.sel(s["t_ovt"], t2), t, b.add(b.sel(b.sel(s["t_ovt"], t2), t), 1, 2)),
        b.sel(s["t_ovt"], t2))))
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_RUNNING), u_core=b.upd(s["u_core"], u, k),
               u_rq=b.upd(s["u_rq"], u, 0), k_busy=b.upd(s["k_busy"], k, True),
               k_cur=b.upd(s["k_cur"], k, u), t_ovt=ovt, u_ovt=vcpu_overtakes(b, s, u))
    return result(b, err, NO_OUT, new, s)


def vcpu_overtakes(b, s, u):
    """u_ovt once u is scheduled: u overtakes every other runnable vCPU of its tenant (once more);
    u itself waits no longer."""
    t = b.sel(s["u_tenant"], u)
    return b.tab("U", lambda u2: b.ite(b.eq(u2, u), b.fill("U", 0, 2), b.ite(
        b.and_(b.eq(b.sel(s["u_state"], u2), U_RUNNABLE), b.eq(b.sel(s["u_tenant"], u2), t)),
        b.upd(b.sel(s["u_ovt"], u2), u, b.add(b.sel(b.sel(s["u_ovt"], u2), u), 1, 2)),
        b.sel(s["u_ovt"], u2))))


def preempt(b, cfg, s, k):
    u = b.sel(s["k_cur"], k)
    err = b.first([(b.sel(s["k_busy"], k), EINVAL)])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_RUNNABLE), u_rq=b.upd(s["u_rq"], u, 1),
               k_busy=b.upd(s["k_busy"], k, False))
    return result(b, err, NO_OUT, new, s)


def block(b, cfg, s, k):
    """The vCPU on core k waits for a completion; refused while one is already there."""
    u = b.sel(s["k_cur"], k)
    err = b.first([
        (b.sel(s["k_busy"], k), EINVAL),
        (b.not_(b.any("C", lambda c: b.and_(chan_of(b, s, c, u), cq_nonempty(b, s, c)))), EBUSY),
    ])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_BLOCKED), k_busy=b.upd(s["k_busy"], k, False))
    return result(b, err, NO_OUT, new, s)


def wake(b, cfg, s, u):
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_BLOCKED), EINVAL),
        (b.any("C", lambda c: b.and_(chan_of(b, s, c, u), cq_nonempty(b, s, c))), EEMPTY),
    ])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_RUNNABLE), u_rq=b.upd(s["u_rq"], u, 1))
    return result(b, err, NO_OUT, new, s)
