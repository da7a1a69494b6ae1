"""destroy_uvm returns the user VM's pages to the pool but leaves them mapped in its (reusable) address space."""
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.destroy_uvm.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, u):
        post = dict(post)
        post["p_mu"] = s["p_mu"]
        return err, out, post
    return post_edit(spec, "destroy_uvm", edit)
