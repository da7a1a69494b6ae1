"""recycle_uvm makes the user VM ready for another tenant (user VM 0's) while it keeps its channel and pages."""
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.recycle_uvm.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, u):
        post = dict(post)
        other = b.sel(s["u_tenant"], 0)
        post["u_tenant"] = b.ite(b.eq(err, 0), b.upd(s["u_tenant"], u, other), s["u_tenant"])
        return err, out, post
    return post_edit(spec, "recycle_uvm", edit)
