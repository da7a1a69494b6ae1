"""crash_uvm marks a running vCPU CRASHED but leaves it on its core (the core is never freed)."""
from nanvix.spec import model as M
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.crash_uvm.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, u):
        post = dict(post)
        post["k_busy"] = s["k_busy"]
        return err, out, post
    return post_edit(spec, "crash_uvm", edit)
