"""Tenants and their system VMs: create, start, crash, restart."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)
from nanvix.spec.ops.common import NO_OUT, chan_fields, free_page, off_core, result, update


def create_tenant(b, cfg, s, t):
    err = b.first([(b.not_(b.sel(s["t_live"], t)), EINVAL)])
    new = update(b, s, t_live=b.upd(s["t_live"], t, True), s_state=b.upd(s["s_state"], t, S_NONE))
    return result(b, err, NO_OUT, new, s)


def start_sysvm(b, cfg, s, t):
    err = b.first([(b.sel(s["t_live"], t), EINVAL), (b.eq(b.sel(s["s_state"], t), S_NONE), EINVAL)])
    new = update(b, s, s_state=b.upd(s["s_state"], t, S_UP))
    return result(b, err, NO_OUT, new, s)


def crash_sysvm(b, cfg, s, t):
    err = b.first([(b.eq(b.sel(s["s_state"], t), S_UP), EINVAL)])
    new = update(b, s, s_state=b.upd(s["s_state"], t, S_DOWN))
    return result(b, err, NO_OUT, new, s)


def restart_sysvm(b, cfg, s, t):
    """DOWN -> UP, epoch + 1. For every open channel joined to t: adopt the published indices
    if sq_head - cq_tail <= R (else the channel is BROKEN), then answer every request that was in
    service with an error (EIO): retrying could run a non-idempotent request twice."""
    err = b.first([(b.eq(b.sel(s["s_state"], t), S_DOWN), EINVAL)])
    W, R = cfg.W, cfg.R

    def mine(c):
        return b.and_(b.eq(b.sel(s["c_state"], c), C_OPEN), b.eq(b.sel(s["c_sysvm"], c), t))

    def valid(c):
        return b.ule(b.sub(b.sel(s["c_psqh"], c), b.sel(s["c_pcqt"], c), W), R)

    def fix(c):
        return b.and_(mine(c), valid(c))

    def ent(c):
        """CQ payload / result arrays after answering [pcqt, psqh) with errors."""
        h, tl = b.sel(s["c_psqh"], c), b.sel(s["c_pcqt"], c)
        n = b.sub(h, tl, W)
        vals, oks = b.sel(s["c_cqv"], c), b.sel(s["c_cqr"], c)
        sq = b.sel(s["c_sq"], c)
        for j in range(R):
            i = b.add(tl, j, W)
            slot = slot_of(b, cfg, i)
            hit = b.ult(j, n)
            vals = b.ite(hit, b.upd(vals, slot, b.sel(sq, slot)), vals)
            oks = b.ite(hit, b.upd(oks, slot, False), oks)
        return vals, oks

    psqh = lambda c: b.sel(s["c_psqh"], c)
    new = update(b, s,
               s_state=b.upd(s["s_state"], t, S_UP),
               s_epoch=b.upd(s["s_epoch"], t, b.add(b.sel(s["s_epoch"], t), 1, cfg.EW)),
               c_state=b.tab("C", lambda c: b.ite(b.and_(mine(c), b.not_(valid(c))), C_BROKEN,
                                                   b.sel(s["c_state"], c))),
               c_sqh=b.tab("C", lambda c: b.ite(fix(c), psqh(c), b.sel(s["c_sqh"], c))),
               c_cqt=b.tab("C", lambda c: b.ite(fix(c), psqh(c), b.sel(s["c_cqt"], c))),
               c_pcqt=b.tab("C", lambda c: b.ite(fix(c), psqh(c), b.sel(s["c_pcqt"], c))),
               c_cqv=b.tab("C", lambda c: b.ite(fix(c), ent(c)[0], b.sel(s["c_cqv"], c))),
               c_cqr=b.tab("C", lambda c: b.ite(fix(c), ent(c)[1], b.sel(s["c_cqr"], c))))
    return result(b, err, NO_OUT, new, s)
