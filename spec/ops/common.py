"""What every operation is built from: total results (an error changes nothing) and the state
updates several operations share."""
from nanvix.spec.state import C_OPEN, OK, P_FREE, U_RUNNING


def update(b, s, **kw):
    t = dict(s)
    t.update(kw)
    return t


def result(b, err, out, new, old):
    """Total operations: on error the state is unchanged and the output is (0, 0)."""
    ok = b.eq(err, OK)
    return err, tuple(b.ite(ok, o, 0) for o in out), b.ite_state(ok, new, old)


NO_OUT = (0, 0)


def free_page(b, s, p):
    """A page back to the pool: unmapped everywhere, scrubbed."""
    return {
        "p_kind": b.upd(s["p_kind"], p, P_FREE),
        "p_owner": b.upd(s["p_owner"], p, 0),
        "p_mu": b.upd(s["p_mu"], p, b.fill("U", False)),
        "p_ms": b.upd(s["p_ms"], p, b.fill("T", False)),
        "p_scrub": b.upd(s["p_scrub"], p, True),
    }


def fresh_channel(b, cfg):
    """The values of a fresh channel's fields, except its state and what it joins (c_state,
    c_uvm, c_sysvm, c_page: set by the caller): empty rings, blank slots, no history, honest. The
    one list open_channel, close_channel and recycle_uvm share, so a field added to the channel is
    made fresh in one place. (A zeroed CQ entry reads as a success, as on the implementation's
    page.)"""
    ring = {f: 0 for f in ("c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh", "c_pcqt", "c_ndl", "c_lastv")}
    slots = {f: b.fill("R", 0, cfg.V) for f in ("c_sq", "c_svc", "c_cqv")}
    return dict(ring, **slots, c_cqr=b.fill("R", True), c_hist=b.fill("H", 0, cfg.V),
                c_runs=b.fill("H", 0, 2), c_ok=b.fill("H", False), c_honest=True, c_any=False,
                c_lastr=False)


def chan_fields(b, cfg, s, c, state, uvm, sysvm, page):
    """Channel c set up afresh (open_channel) or cleared (close_channel), in the given state,
    joining uvm to sysvm on page."""
    vals = dict(fresh_channel(b, cfg), c_state=state, c_uvm=uvm, c_sysvm=sysvm, c_page=page)
    return {f: b.upd(s[f], c, v) for f, v in vals.items()}


def chans_fresh(b, cfg, s, hit):
    """Every channel c with hit(c) made fresh and OPEN again, still on its own page and joined to
    the same user VM and system VM (recycle_uvm)."""
    vals = dict(fresh_channel(b, cfg), c_state=C_OPEN)
    return {f: b.tab("C", lambda c, f=f, v=v: b.ite(hit(c), v, b.sel(s[f], c))) for f, v in vals.items()}


def upd2(b, s, f, c, i, v):
    """s[f][c][i] = v."""
    return b.upd(s[f], c, b.upd(b.sel(s[f], c), i, v))


def off_core(b, s, u):
    """Take u off its core (if RUNNING) and out of the run queue."""
    k = b.sel(s["u_core"], u)
    running = b.eq(b.sel(s["u_state"], u), U_RUNNING)
    return {"k_busy": b.ite(running, b.upd(s["k_busy"], k, False), s["k_busy"]),
            "u_rq": b.upd(s["u_rq"], u, 0)}
