"""The invariants: named predicates inv(b, cfg, s) -> bool over a state, proved per operation."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)


def inv_page_exclusive(b, cfg, s):
    """Each page has one owner, and that owner exists and agrees: a channel's page is owned by
    that channel (so no two channels share a page) and a user VM's page by a live slot."""
    def page_ok(p):
        kind, own = b.sel(s["p_kind"], p), b.sel(s["p_owner"], p)
        return b.and_(
            b.implies(b.eq(kind, P_CHAN), b.and_(b.ne(b.sel(s["c_state"], own), C_FREE),
                                                 b.eq(b.sel(s["c_page"], own), p))),
            b.implies(b.eq(kind, P_UVM), b.ne(b.sel(s["u_state"], own), U_FREE)))

    def chan_ok(c):
        p = b.sel(s["c_page"], c)
        return b.implies(b.ne(b.sel(s["c_state"], c), C_FREE),
                         b.and_(b.eq(b.sel(s["p_kind"], p), P_CHAN), b.eq(b.sel(s["p_owner"], p), c)))
    return b.and_(b.all("P", page_ok), b.all("C", chan_ok))


def inv_no_cross_tenant_mapping(b, cfg, s):
    """A page is mapped only by VMs of the tenant whose share of the pool it belongs to."""
    return b.all("P", lambda p: b.and_(
        b.all("U", lambda u: b.implies(b.sel(b.sel(s["p_mu"], p), u),
                                       b.eq(b.sel(s["u_tenant"], u), b.sel(s["p_tenant"], p)))),
        b.all("T", lambda t: b.implies(b.sel(b.sel(s["p_ms"], p), t), b.eq(t, b.sel(s["p_tenant"], p))))))


def inv_guest_maps_only_own(b, cfg, s):
    """Nobody maps a free or hypervisor page; a user VM maps only its own pages and its own
    channel's page; a system VM only the pages of channels joined to it."""
    def page_ok(p):
        kind, own = b.sel(s["p_kind"], p), b.sel(s["p_owner"], p)
        mu, ms = b.sel(s["p_mu"], p), b.sel(s["p_ms"], p)
        return b.and_(
            b.all("U", lambda u: b.implies(b.sel(mu, u), b.or_(
                b.and_(b.eq(kind, P_UVM), b.eq(own, u)),
                b.and_(b.eq(kind, P_CHAN), b.eq(b.sel(s["c_uvm"], own), u))))),
            b.all("T", lambda t: b.implies(b.sel(ms, t), b.and_(
                b.eq(kind, P_CHAN), b.eq(b.sel(s["c_sysvm"], own), t)))))
    return b.all("P", page_ok)


def inv_channel_join(b, cfg, s):
    """An open (or broken) channel joins a live user VM of its tenant to that tenant's system VM,
    through its page, mapped by both."""
    def ok(c):
        u, t, p = b.sel(s["c_uvm"], c), b.sel(s["c_sysvm"], c), b.sel(s["c_page"], c)
        return b.implies(b.ne(b.sel(s["c_state"], c), C_FREE), b.and_(
            b.eq(b.sel(s["u_tenant"], u), b.sel(s["c_tenant"], c)),
            b.eq(t, b.sel(s["c_tenant"], c)),
            b.ne(b.sel(s["u_state"], u), U_FREE),
            b.sel(s["t_live"], t), b.ne(b.sel(s["s_state"], t), S_NONE),
            b.implies(b.not_(dead(b, b.sel(s["u_state"], u))), b.sel(b.sel(s["p_mu"], p), u)),
            b.sel(b.sel(s["p_ms"], p), t)))
    return b.all("C", ok)


def inv_ring_private_bounds(b, cfg, s):
    """The system VM's own indices: requests in service never exceed the capacity."""
    return b.all("C", lambda c: b.implies(b.eq(b.sel(s["c_state"], c), C_OPEN),
                                          b.ule(dist(b, cfg, b.sel(s["c_sqh"], c), b.sel(s["c_cqt"], c)), cfg.R)))


def inv_ring_honest_bounds(b, cfg, s):
    """Honest channel: cq_head <= cq_tail <= sq_head <= sq_tail (modulo 2**W, within R), and the
    published copies equal the private ones."""
    def ok(c):
        sqt, cqh, sqh, cqt = ring_of(b, cfg, s, c)
        out = dist(b, cfg, sqt, cqh)
        return b.implies(honest(b, s, c), b.and_(
            b.ule(out, cfg.R),
            b.ule(dist(b, cfg, sqh, cqh), out),
            b.ule(dist(b, cfg, cqt, cqh), dist(b, cfg, sqh, cqh)),
            b.eq(b.sel(s["c_psqh"], c), sqh), b.eq(b.sel(s["c_pcqt"], c), cqt)))
    return b.all("C", ok)


def inv_no_lost_dup_reorder(b, cfg, s):
    """Honest channel: the SQ holds exactly the history over [cq_head, sq_tail) (nothing lost,
    duplicated or reordered), and the system VM's in-service copies over [cq_tail, sq_head)."""
    def ok(c):
        sqt, cqh, sqh, cqt = ring_of(b, cfg, s, c)
        hist = b.sel(s["c_hist"], c)
        return b.implies(honest(b, s, c), b.and_(
            window(b, cfg, s, c, cqh, sqt, b.sel(s["c_sq"], c), hist),
            window(b, cfg, s, c, cqt, sqh, b.sel(s["c_svc"], c), hist)))
    return b.all("C", ok)


def inv_cq_answers_request(b, cfg, s):
    """Honest channel: every CQ entry in [cq_head, cq_tail) answers the request of that channel
    with that index (its payload is the history's)."""
    def ok(c):
        _, cqh, _, cqt = ring_of(b, cfg, s, c)
        return b.implies(honest(b, s, c),
                         window(b, cfg, s, c, cqh, cqt, b.sel(s["c_cqv"], c), b.sel(s["c_hist"], c)))
    return b.all("C", ok)


def inv_free_pages_scrubbed(b, cfg, s):
    """A page in the pool is scrubbed: nothing crosses from one owner to the next."""
    return b.all("P", lambda p: b.implies(b.eq(b.sel(s["p_kind"], p), P_FREE), b.sel(s["p_scrub"], p)))


def inv_sched(b, cfg, s):
    """A RUNNING vCPU is on exactly one core and that core runs it; a busy core runs a RUNNING
    vCPU; RUNNABLE vCPUs are queued exactly once (rq == 1), all others not at all."""
    def u_ok(u):
        st, k = b.sel(s["u_state"], u), b.sel(s["u_core"], u)
        return b.and_(
            b.implies(b.eq(st, U_RUNNING), b.and_(b.sel(s["k_busy"], k), b.eq(b.sel(s["k_cur"], k), u))),
            b.eq(b.sel(s["u_rq"], u), b.ite(b.eq(st, U_RUNNABLE), 1, 0)))

    def k_ok(k):
        u = b.sel(s["k_cur"], k)
        return b.implies(b.sel(s["k_busy"], k), b.and_(b.eq(b.sel(s["u_state"], u), U_RUNNING),
                                                       b.eq(b.sel(s["u_core"], u), k)))
    return b.and_(b.all("U", u_ok), b.all("K", k_ok))


def inv_quotas(b, cfg, s):
    """Per-tenant quotas hold: user VMs and pages in use."""
    return b.all("T", lambda t: b.and_(b.ule(uvms_used(b, s, t), b.sel(s["t_qu"], t)),
                                       b.ule(pages_used(b, s, t), b.sel(s["t_qp"], t))))


def inv_one_channel_per_uvm(b, cfg, s):
    """A user VM has at most one channel."""
    return b.all("C", lambda c: b.all("C", lambda d: b.implies(
        b.and_(b.ne(c, d), b.ne(b.sel(s["c_state"], c), C_FREE), b.ne(b.sel(s["c_state"], d), C_FREE)),
        b.ne(b.sel(s["c_uvm"], c), b.sel(s["c_uvm"], d)))))


def inv_honest_not_broken(b, cfg, s):
    """Only a guest that scribbled over its ring ever finds its channel BROKEN."""
    return b.all("C", lambda c: b.implies(b.eq(b.sel(s["c_state"], c), C_BROKEN), b.not_(b.sel(s["c_honest"], c))))


def inv_at_most_once(b, cfg, s):
    """Honest channel: every request is executed at most once, across system VM crashes and
    restarts: one taken (answered, or in service) ran exactly once, one still queued never."""
    def ok(c):
        sqt, cqh, sqh, _ = ring_of(b, cfg, s, c)
        runs = lambda i: b.sel(b.sel(s["c_runs"], c), i)
        return b.implies(honest(b, s, c), b.and_(each_in(b, cfg, cqh, sqh, lambda i: b.eq(runs(i), 1)),
                                                 each_in(b, cfg, sqh, sqt, lambda i: b.eq(runs(i), 0))))
    return b.all("C", ok)


def inv_truthful(b, cfg, s):
    """Honest channel: a completion tells the truth: it says success exactly when its request was
    executed (c_ok: set only by completing a taken request with its result) and succeeded; no
    request not yet answered counts as a success."""
    def ok(c):
        sqt, cqh, _, cqt = ring_of(b, cfg, s, c)
        good = lambda i: b.sel(b.sel(s["c_ok"], c), i)
        return b.implies(honest(b, s, c), b.and_(
            each_in(b, cfg, cqh, cqt, lambda i: b.eq(b.sel(b.sel(s["c_cqr"], c), slot_of(b, cfg, i)), good(i))),
            each_in(b, cfg, cqt, sqt, lambda i: b.not_(good(i)))))
    return b.all("C", ok)


def inv_delivered_in_order(b, cfg, s):
    """Honest channel: completions are delivered exactly once and in order: the guest has been
    handed exactly cq_head of them (mod 2**W), the last one answering request cq_head - 1, with
    its payload and its true result."""
    def ok(c):
        cqh = b.sel(s["c_cqh"], c)
        last = b.sub(cqh, 1, cfg.W)
        return b.implies(honest(b, s, c), b.and_(
            b.eq(b.sel(s["c_ndl"], c), cqh),
            b.implies(b.sel(s["c_any"], c), b.and_(
                b.eq(b.sel(s["c_lastv"], c), b.sel(b.sel(s["c_hist"], c), last)),
                b.eq(b.sel(s["c_lastr"], c), b.sel(b.sel(s["c_ok"], c), last))))))
    return b.all("C", ok)


def inv_sched_fair(b, cfg, s):
    """No tenant is starved: while a tenant starves (a runnable vCPU, none on a core) each other
    tenant is scheduled at most once, so it runs within T - 1 decisions of the scheduler; only a
    starving tenant is owed a turn."""
    return b.all("T", lambda t: b.all("T", lambda t2: b.and_(
        b.ule(b.sel(b.sel(s["t_ovt"], t), t2), 1),
        b.implies(b.ne(b.sel(b.sel(s["t_ovt"], t), t2), 0), b.and_(b.ne(t, t2), starving(b, s, t))))))


def inv_vcpu_fair(b, cfg, s):
    """No vCPU is starved by its own tenant's: while a vCPU waits runnable each other vCPU of its
    tenant is scheduled at most once, so it runs within (its tenant's vCPUs - 1) of its tenant's
    turns; only a runnable vCPU is owed a turn, and only by its own tenant's."""
    return b.all("U", lambda u: b.all("U", lambda u2: b.and_(
        b.ule(b.sel(b.sel(s["u_ovt"], u), u2), 1),
        b.implies(b.ne(b.sel(b.sel(s["u_ovt"], u), u2), 0), b.and_(
            b.ne(u, u2), b.eq(b.sel(s["u_state"], u), U_RUNNABLE),
            b.eq(b.sel(s["u_tenant"], u), b.sel(s["u_tenant"], u2)))))))


def pristine_channel(b, cfg, s, c):
    """Channel c is open, honest and empty, as open_channel or recycle_uvm leave it: every index
    (and the delivery count) where cq_head is (zero, there; stated relative to cq_head, as every
    invariant reads a ring, so the explorer's rotation of indices stays sound), blank slots,
    nothing delivered. (Its history, execution counts and truths are read only
    over the windows between the indices, all empty: what an earlier invocation left there is
    unreachable. Stating it over every history position would make the concrete check as long as
    2**W, too long at the implementation's 32-bit indices.)"""
    g = lambda f: b.sel(s[f], c)
    at = lambda f, i: b.sel(g(f), i)
    return b.and_(
        b.eq(g("c_state"), C_OPEN), g("c_honest"), b.not_(g("c_any")),
        *[b.eq(g(f), g("c_cqh")) for f in ("c_sqt", "c_sqh", "c_cqt", "c_psqh", "c_pcqt", "c_ndl")],
        b.all("R", lambda i: b.and_(b.eq(at("c_sq", i), 0), b.eq(at("c_svc", i), 0), b.eq(at("c_cqv", i), 0))))


def inv_uvm_starts_pristine(b, cfg, s):
    """A user VM not yet started (CREATED: new, or recycled after a clean exit) holds nothing of
    an earlier invocation: it owns no page it grew into (so it maps only its channel's page), and
    its channel, if it has one, is pristine: no request, completion or history of the last
    invocation reaches the next one (at most once, exactly once and in order start afresh)."""
    def ok(u):
        return b.implies(b.eq(b.sel(s["u_state"], u), U_CREATED), b.and_(
            b.all("P", lambda p: b.not_(b.and_(b.eq(b.sel(s["p_kind"], p), P_UVM),
                                               b.eq(b.sel(s["p_owner"], p), u)))),
            b.all("C", lambda c: b.implies(chan_of(b, s, c, u), pristine_channel(b, cfg, s, c)))))
    return b.all("U", ok)


def inv_page_share(b, cfg, s):
    """A page in use belongs to its user's tenant's share of the pool."""
    def p_ok(p):
        kind, own = b.sel(s["p_kind"], p), b.sel(s["p_owner"], p)
        return b.and_(
            b.implies(b.eq(kind, P_UVM), b.eq(b.sel(s["u_tenant"], own), b.sel(s["p_tenant"], p))),
            b.implies(b.eq(kind, P_CHAN), b.eq(b.sel(s["c_tenant"], own), b.sel(s["p_tenant"], p))))
    return b.all("P", p_ok)


def inv_hyp_pages_stay(b, cfg, s):
    """The hypervisor's pages (p_hyp, static) are exactly the pages of kind HYP: no operation
    hands one out or takes one in."""
    return b.all("P", lambda p: b.eq(b.sel(s["p_hyp"], p), b.eq(b.sel(s["p_kind"], p), P_HYP)))


def inv_tenant_lifecycle(b, cfg, s):
    """A user VM exists only for a live tenant whose system VM was started; a dead tenant's
    system VM is NONE."""
    return b.and_(
        b.all("T", lambda t: b.implies(b.not_(b.sel(s["t_live"], t)), b.eq(b.sel(s["s_state"], t), S_NONE))),
        b.all("U", lambda u: b.implies(b.ne(b.sel(s["u_state"], u), U_FREE), b.and_(
            b.sel(s["t_live"], b.sel(s["u_tenant"], u)),
            b.ne(b.sel(s["s_state"], b.sel(s["u_tenant"], u)), S_NONE)))))


INVARIANTS = {
    "page_exclusive": inv_page_exclusive,
    "no_cross_tenant_mapping": inv_no_cross_tenant_mapping,
    "guest_maps_only_own": inv_guest_maps_only_own,
    "channel_join": inv_channel_join,
    "ring_private_bounds": inv_ring_private_bounds,
    "ring_honest_bounds": inv_ring_honest_bounds,
    "no_lost_dup_reorder": inv_no_lost_dup_reorder,
    "cq_answers_request": inv_cq_answers_request,
    "free_pages_scrubbed": inv_free_pages_scrubbed,
    "sched": inv_sched,
    "quotas": inv_quotas,
    "page_share": inv_page_share,
    "tenant_lifecycle": inv_tenant_lifecycle,
    "hyp_pages_stay": inv_hyp_pages_stay,
    # what users rely on, stated over ghost state (issue 10)
    "one_channel_per_uvm": inv_one_channel_per_uvm,
    "honest_not_broken": inv_honest_not_broken,
    "at_most_once": inv_at_most_once,
    "truthful": inv_truthful,
    "delivered_in_order": inv_delivered_in_order,
    "sched_fair": inv_sched_fair,
    "vcpu_fair": inv_vcpu_fair,
    "uvm_starts_pristine": inv_uvm_starts_pristine,
}
NEW_INVARIANTS = ("one_channel_per_uvm", "honest_not_broken", "at_most_once", "truthful", "delivered_in_order",
                  "sched_fair", "vcpu_fair", "uvm_starts_pristine")


# Invariants that are consequences of the others (proved as corollaries, not independent):
# no_cross_tenant_mapping follows from guest_maps_only_own + channel_join + quotas.
DERIVED = ("no_cross_tenant_mapping",)
