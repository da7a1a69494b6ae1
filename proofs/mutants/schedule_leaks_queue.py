"""schedule refuses a core (EBUSY) while another tenant has a vCPU waiting in the run queue: its
error code tells a tenant about another's load, more than the declared timing channel (whether
the core is idle)."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ni.schedule.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, k, u):
        t = b.sel(s["u_tenant"], u)
        other = b.any("U", lambda v: b.and_(b.ne(b.sel(s["u_tenant"], v), t),
                                            b.eq(b.sel(s["u_state"], v), M.U_RUNNABLE)))
        refuse = b.and_(b.eq(err, 0), other)
        return b.ite(refuse, M.EBUSY, err), tuple(b.ite(refuse, 0, o) for o in out), b.ite_state(refuse, s, post)
    return post_edit(spec, "schedule", edit)
