"""Channels: open and close, the guest's side (submit, deliver, and a hostile guest's scribbles
over its own ring) and the system VM's (take, complete)."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)
from nanvix.spec.ops.common import NO_OUT, chan_fields, free_page, off_core, result, update, upd2


def open_channel(b, cfg, s, c, u, p):
    t = b.sel(s["u_tenant"], u)
    # Ownership first (LEAKS.md #2): before the ids are known to be the caller's own, no error
    # may depend on their state.
    err = b.first([
        (b.eq(b.sel(s["c_tenant"], c), t), EINVAL),          # channel ids are per tenant
        (own_page(b, s, p, t), EINVAL),                     # the tenant's own share of the pool
        (b.eq(b.sel(s["u_state"], u), U_CREATED), EINVAL),
        (b.eq(b.sel(s["c_state"], c), C_FREE), EBUSY),
        (b.not_(b.any("C", lambda c2: chan_of(b, s, c2, u))), EBUSY),   # one channel per user VM
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    return result(b, err, NO_OUT, open_channel_effect(b, cfg, s, c, u, p, t), s)


def open_channel_effect(b, cfg, s, c, u, p, t):
    """Channel c of user VM u, on page p, joined to tenant t's system VM (mapped by both)."""
    return update(b, s, **chan_fields(b, cfg, s, c, C_OPEN, u, t, p),
                p_kind=b.upd(s["p_kind"], p, P_CHAN), p_owner=b.upd(s["p_owner"], p, c),
                p_mu=b.upd(s["p_mu"], p, b.upd(b.sel(s["p_mu"], p), u, True)),
                p_ms=b.upd(s["p_ms"], p, b.upd(b.sel(s["p_ms"], p), t, True)),
                p_scrub=b.upd(s["p_scrub"], p, False))


def submit(b, cfg, s, c, v):
    """The guest posts a request. Guest-side operations need only a channel, OPEN or BROKEN: the
    page stays the guest's to write even after its system VM has given up on it."""
    u = b.sel(s["c_uvm"], c)
    sqt, cqh, _, _ = ring_of(b, cfg, s, c)
    W = cfg.W
    err = b.first([
        (b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (b.ult(b.sub(sqt, cqh, W), cfg.R), EFULL),
    ])
    new = update(b, s,
               c_sq=b.upd(s["c_sq"], c, b.upd(b.sel(s["c_sq"], c), slot_of(b, cfg, sqt), v)),
               c_hist=b.upd(s["c_hist"], c, b.upd(b.sel(s["c_hist"], c), sqt, v)),
               c_runs=upd2(b, s, "c_runs", c, sqt, 0), c_ok=upd2(b, s, "c_ok", c, sqt, False),
               c_sqt=b.upd(s["c_sqt"], c, b.add(sqt, 1, W)))
    return result(b, err, NO_OUT, new, s)


def broken(b, s, c):
    return update(b, s, c_state=b.upd(s["c_state"], c, C_BROKEN))


def take(b, cfg, s, c):
    """The system VM takes the next request, to execute it (ghost: its execution count goes up).
    Distrusts sq_tail and cq_head (guest-written)."""
    sqt, cqh, sqh, cqt = ring_of(b, cfg, s, c)
    W, R = cfg.W, cfg.R
    pending = b.sub(sqt, sqh, W)
    cq_used = b.sub(cqt, cqh, W)
    in_service = b.sub(sqh, cqt, W)
    err = b.first([
        (b.eq(b.sel(s["c_state"], c), C_OPEN), EINVAL),
        (b.eq(b.sel(s["s_state"], b.sel(s["c_sysvm"], c)), S_UP), EDOWN),
    ])
    bad = b.or_(b.ult(R, pending), b.ult(R, cq_used))
    # no CQ space for one more answer: cq_used + in_service >= R (written without overflow)
    nospace = b.not_(b.ult(in_service, b.sub(R, cq_used, W)))
    err = b.ite(b.eq(err, OK), b.ite(bad, OK, b.ite(b.eq(pending, 0), EEMPTY, b.ite(nospace, EFULL, OK))), err)
    slot = slot_of(b, cfg, sqh)
    payload = b.sel(b.sel(s["c_sq"], c), slot)
    nh = b.add(sqh, 1, W)
    took = update(b, s,
                c_svc=b.upd(s["c_svc"], c, b.upd(b.sel(s["c_svc"], c), slot, payload)),
                c_runs=upd2(b, s, "c_runs", c, sqh, b.add(b.sel(b.sel(s["c_runs"], c), sqh), 1, 2)),
                c_sqh=b.upd(s["c_sqh"], c, nh), c_psqh=b.upd(s["c_psqh"], c, nh))
    new = b.ite_state(bad, broken(b, s, c), took)
    out = (b.ite(bad, 0, payload), b.ite(bad, 1, 0))
    return result(b, err, out, new, s)


def complete(b, cfg, s, c, ok):
    """The system VM answers the oldest request in service with the result of executing it, `ok`
    (True/False; ghost: the truth about that request)."""
    _, _, sqh, cqt = ring_of(b, cfg, s, c)
    W = cfg.W
    err = b.first([
        (b.eq(b.sel(s["c_state"], c), C_OPEN), EINVAL),
        (b.eq(b.sel(s["s_state"], b.sel(s["c_sysvm"], c)), S_UP), EDOWN),
        (b.ne(sqh, cqt), EEMPTY),
    ])
    slot = slot_of(b, cfg, cqt)
    payload = b.sel(b.sel(s["c_svc"], c), slot)
    nt = b.add(cqt, 1, W)
    new = update(b, s,
               c_cqv=b.upd(s["c_cqv"], c, b.upd(b.sel(s["c_cqv"], c), slot, payload)),
               c_cqr=b.upd(s["c_cqr"], c, b.upd(b.sel(s["c_cqr"], c), slot, ok)),
               c_ok=upd2(b, s, "c_ok", c, cqt, ok),
               c_cqt=b.upd(s["c_cqt"], c, nt), c_pcqt=b.upd(s["c_pcqt"], c, nt))
    return result(b, err, NO_OUT, new, s)


def deliver(b, cfg, s, c):
    """The guest reads the next completion: out = (payload, 1 if ok else 0)."""
    u = b.sel(s["c_uvm"], c)
    cqh = b.sel(s["c_cqh"], c)
    err = b.first([
        (b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
        (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL),
        (cq_nonempty(b, s, c), EEMPTY),
    ])
    slot = slot_of(b, cfg, cqh)
    v, r = b.sel(b.sel(s["c_cqv"], c), slot), b.sel(b.sel(s["c_cqr"], c), slot)
    # ghost: one more completion handed to the guest, and which
    new = update(b, s, c_cqh=b.upd(s["c_cqh"], c, b.add(cqh, 1, cfg.W)),
                 c_ndl=b.upd(s["c_ndl"], c, b.add(b.sel(s["c_ndl"], c), 1, cfg.W)),
                 c_any=b.upd(s["c_any"], c, True), c_lastv=b.upd(s["c_lastv"], c, v),
                 c_lastr=b.upd(s["c_lastr"], c, r))
    out = (v, b.ite(r, 1, 0))
    return result(b, err, out, new, s)


def close_channel(b, cfg, s, c):
    """Tear down a finished user VM's channel: page unmapped from both sides, scrubbed, freed.
    Requests still outstanding fail (the user VM is gone)."""
    u = b.sel(s["c_uvm"], c)
    p = b.sel(s["c_page"], c)
    err = b.first([
        (b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
        (dead(b, b.sel(s["u_state"], u)), EBUSY),
    ])
    new = update(b, s, **chan_fields(b, cfg, s, c, C_FREE, 0, 0, 0), **free_page(b, s, p))
    return result(b, err, NO_OUT, new, s)


def scribble(b, cfg, s, c, **upd):
    u = b.sel(s["c_uvm"], c)
    err = b.first([(b.ne(b.sel(s["c_state"], c), C_FREE), EINVAL),
                   (b.eq(b.sel(s["u_state"], u), U_RUNNING), EINVAL)])
    new = update(b, s, c_honest=b.upd(s["c_honest"], c, False), **upd)
    return result(b, err, NO_OUT, new, s)


def scribble_sq_tail(b, cfg, s, c, v):
    return scribble(b, cfg, s, c, c_sqt=b.upd(s["c_sqt"], c, v))


def scribble_cq_head(b, cfg, s, c, v):
    return scribble(b, cfg, s, c, c_cqh=b.upd(s["c_cqh"], c, v))


def scribble_entry(b, cfg, s, c, i, v):
    return scribble(b, cfg, s, c, c_sq=b.upd(s["c_sq"], c, b.upd(b.sel(s["c_sq"], c), i, v)))


def scribble_pub(b, cfg, s, c, which, v):
    """which = 0: the published sq_head, 1: the published cq_tail."""
    return scribble(b, cfg, s, c,
                     c_psqh=b.ite(b.eq(which, 0), b.upd(s["c_psqh"], c, v), s["c_psqh"]),
                     c_pcqt=b.ite(b.eq(which, 0), s["c_pcqt"], b.upd(s["c_pcqt"], c, v)))
