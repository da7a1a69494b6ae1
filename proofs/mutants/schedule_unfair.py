"""schedule forgets fairness: a tenant may take a core again and again while another tenant's
runnable vCPU waits (the tenant rotation skipped)."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.schedule.sched_fair"]


def mutate(spec):
    orig = spec.ops["schedule"][0]

    def schedule(b, cfg, s, k, u):
        # the real schedule, run as if nobody were owed a turn, then the real ghost update
        blind = dict(s, t_ovt=b.fill2("T", "T", 0, 2))
        err, out, post = orig(b, cfg, blind, k, u)
        t = b.sel(s["u_tenant"], u)
        ovt = b.tab("T", lambda t2: b.ite(b.eq(t2, t), b.fill("T", 0, 2), b.ite(
            M.starving(b, s, t2), b.upd(b.sel(s["t_ovt"], t2), t, b.add(b.sel(b.sel(s["t_ovt"], t2), t), 1, 2)),
            b.sel(s["t_ovt"], t2))))
        return err, out, b.ite_state(b.eq(err, 0), dict(post, t_ovt=ovt), s)
    return replace_op(spec, "schedule", schedule)
