"""submit returns a request id from one global counter (the sum of every channel's sq_tail): visible across tenants."""
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ni.submit.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c, v):
        rid = 0
        for k in range(cfg.C):
            rid = b.add(rid, b.sel(s["c_sqt"], k), cfg.W)
        return err, (b.ite(b.eq(err, 0), rid, 0), out[1]), post
    return post_edit(spec, "submit", edit)
