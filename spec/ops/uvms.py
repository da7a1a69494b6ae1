"""User VMs: create, start, exit, crash, destroy, recycle."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)
from nanvix.spec.ops.common import NO_OUT, chans_fresh, off_core, result, update


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
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_FREE), u_rq=b.upd(s["u_rq"], u, 0),
                 u_core=b.upd(s["u_core"], u, 0), **free_grown(b, s, u))
    return result(b, err, NO_OUT, new, s)


def free_grown(b, s, u):
    """Every page user VM u grew into back to the pool: unmapped everywhere, scrubbed."""
    mine = lambda p: b.and_(b.eq(b.sel(s["p_kind"], p), P_UVM), b.eq(b.sel(s["p_owner"], p), u))
    return dict(p_kind=b.tab("P", lambda p: b.ite(mine(p), P_FREE, b.sel(s["p_kind"], p))),
                p_owner=b.tab("P", lambda p: b.ite(mine(p), 0, b.sel(s["p_owner"], p))),
                p_mu=b.tab("P", lambda p: b.ite(mine(p), b.fill("U", False), b.sel(s["p_mu"], p))),
                p_ms=b.tab("P", lambda p: b.ite(mine(p), b.fill("T", False), b.sel(s["p_ms"], p))),
                p_scrub=b.tab("P", lambda p: b.ite(mine(p), True, b.sel(s["p_scrub"], p))))


def recycle_uvm(b, cfg, s, u):
    """A user VM that exited cleanly made ready again for its next invocation, in its own tenant
    (u_tenant is static: it never moves to another): back to CREATED, every page it grew into
    freed and scrubbed, its channel (kept, on the same page, joined to the same system VM) empty
    and fresh, with no request, completion or history of the last invocation left. Only a clean
    exit: a crashed VM is destroyed, never reused (its state is not known to be sane). Only while
    its tenant's system VM is up: the fresh channel is handed out to it, as open_channel's is."""
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_EXITED), EINVAL),
        (b.sel(s["t_live"], t), EINVAL),
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
    ])
    mine = lambda c: chan_of(b, s, c, u)
    grown = free_grown(b, s, u)
    # its channel's page mapped by it again (nothing else is: the rest of its memory is its own)
    chan_page = lambda p: b.any("C", lambda c: b.and_(mine(c), b.eq(b.sel(s["c_page"], c), p)))
    p_mu = b.tab("P", lambda p: b.ite(chan_page(p), b.upd(b.sel(grown["p_mu"], p), u, True),
                                      b.sel(grown["p_mu"], p)))
    new = update(b, s, u_state=b.upd(s["u_state"], u, U_CREATED), u_rq=b.upd(s["u_rq"], u, 0),
                 u_core=b.upd(s["u_core"], u, 0), **dict(grown, p_mu=p_mu), **chans_fresh(b, cfg, s, mine))
    return result(b, err, NO_OUT, new, s)
