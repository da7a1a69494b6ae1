"""open_channel forgets the one-channel-per-user-VM check: a user VM may be given a second
channel (and a second page) while its first is open."""
from nanvix import spec as M
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ind.open_channel.one_channel_per_uvm"]


def mutate(spec):
    def open_channel(b, cfg, s, c, u, p):
        t = b.sel(s["u_tenant"], u)
        err = b.first([
            (b.eq(b.sel(s["c_tenant"], c), t), M.EINVAL),
            (M.own_page(b, s, p, t), M.EINVAL),
            (b.eq(b.sel(s["u_state"], u), M.U_CREATED), M.EINVAL),
            (b.eq(b.sel(s["c_state"], c), M.C_FREE), M.EBUSY),
            (b.eq(b.sel(s["s_state"], t), M.S_UP), M.EDOWN),
            (b.eq(b.sel(s["p_kind"], p), M.P_FREE), M.EBUSY),
            (b.ult(M.pages_used(b, s, t), b.sel(s["t_qp"], t)), M.EQUOTA),
        ])
        from nanvix.spec.ops.channels import open_channel_effect
        return M.result(b, err, M.NO_OUT, open_channel_effect(b, cfg, s, c, u, p, t), s)
    return replace_op(spec, "open_channel", open_channel)
