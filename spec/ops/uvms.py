"""User VMs: create, start, exit, crash, destroy."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)
from nanvix.spec.ops.common import NO_OUT, chan_fields, free_page, off_core, result, update


def create_uvm(b, cfg, s, u, t):
    err = b.first([
        (b.eq(b.sel(s["u_tenant"], u), t), EINVAL),          # user-VM ids are per tenant
        (b.sel(s["t_live"], t), EINVAL),
        (b.eq(b.sel(s["u_state"], u), U_FREE), EBUSY),
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
        (b.ult(uvms_used(b, s, t), b.sel(s["t_qu"], t)), EQUOTA),
    ])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_CREATED), u_rq=b.upd(s["u_rq"], u, 0),
               u_core=b.upd(s["u_core"], u, 0))
    return result(b, err, NO_OUT, new, s)


def start_uvm(b, cfg, s, u):
    err = b.first([(b.eq(b.sel(s["u_state"], u), U_CREATED), EINVAL)])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_RUNNABLE), u_rq=b.upd(s["u_rq"], u, 1))
    return result(b, err, NO_OUT, new, s)


def exit_uvm(b, cfg, s, u):
    err = b.first([(b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL)])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_EXITED), **off_core(b, s, u))
    return result(b, err, NO_OUT, new, s)


def crash_uvm(b, cfg, s, u):
    err = b.first([(live_uvm(b, b.sel(s["u_state"], u)), EINVAL)])
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_CRASHED), **off_core(b, s, u))
    # (its tenant's last runnable vCPU gone, it starves no longer: nobody owes it a turn)
    t = b.sel(s["u_tenant"], u)
    new["t_ovt"] = b.ite(starving(b, new, t), s["t_ovt"], b.upd(s["t_ovt"], t, b.fill("T", 0, 2)))
    new["u_ovt"] = b.upd(s["u_ovt"], u, b.fill("U", 0, 2))   # (nor is it owed one)
    return result(b, err, NO_OUT, new, s)


def destroy_uvm(b, cfg, s, u):
    err = b.first([
        (dead(b, b.sel(s["u_state"], u)), EINVAL),
        (b.not_(b.any("C", lambda c: chan_of(b, s, c, u))), EBUSY),
    ])
    mine = lambda p: b.and_(b.eq(b.sel(s["p_kind"], p), P_UVM), b.eq(b.sel(s["p_owner"], p), u))
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_FREE), u_rq=b.upd(s["u_rq"], u, 0),
               u_core=b.upd(s["u_core"], u, 0),
               p_kind=b.tab("P", lambda p: b.ite(mine(p), P_FREE, b.sel(s["p_kind"], p))),
               p_owner=b.tab("P", lambda p: b.ite(mine(p), 0, b.sel(s["p_owner"], p))),
               p_mu=b.tab("P", lambda p: b.ite(mine(p), b.fill("U", False), b.sel(s["p_mu"], p))),
               p_ms=b.tab("P", lambda p: b.ite(mine(p), b.fill("T", False), b.sel(s["p_ms"], p))),
               p_scrub=b.tab("P", lambda p: b.ite(mine(p), True, b.sel(s["p_scrub"], p))))
    return result(b, err, NO_OUT, new, s)
