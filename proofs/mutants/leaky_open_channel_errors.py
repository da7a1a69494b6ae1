"""open_channel (first draft) checks state before ownership: its error code (EINVAL vs EBUSY) depends on pages and user VMs the caller does not own, e.g. a hypervisor page numbered inside the caller's share (a leak the proofs found)."""
from nanvix.spec import *  # noqa: F401,F403
from nanvix.spec.ops.common import result
from nanvix.spec.ops.channels import open_channel_effect
from nanvix.proofs.mutants._util import replace_op

TARGETS = ['ni.open_channel.*']


def open_channel(b, cfg, s, c, u, p):
    t = b.sel(s["u_tenant"], u)
    err = b.first([
        (b.eq(b.sel(s["u_state"], u), U_CREATED), EINVAL),
        (b.eq(b.sel(s["c_state"], c), C_FREE), EBUSY),
        (b.eq(b.sel(s["c_tenant"], c), t), EINVAL),          # channel ids are per tenant
        (b.not_(b.any("C", lambda c2: chan_of(b, s, c2, u))), EBUSY),   # one channel per user VM
        (b.eq(b.sel(s["s_state"], t), S_UP), EDOWN),
        (b.eq(b.sel(s["p_tenant"], p), t), EINVAL),          # the tenant's own share of the pool
        (b.eq(b.sel(s["p_kind"], p), P_FREE), EBUSY),
        (b.ult(pages_used(b, s, t), b.sel(s["t_qp"], t)), EQUOTA),
    ])
    return result(b, err, NO_OUT, open_channel_effect(b, cfg, s, c, u, p, t), s)


def mutate(spec):
    return replace_op(spec, 'open_channel', open_channel)
