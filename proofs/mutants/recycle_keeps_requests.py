"""recycle_uvm keeps the requests the last invocation left queued (sq_tail and the SQ entries, with their history): the next invocation's system VM executes them."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.recycle_uvm.*"]


def mutate(spec):
    return keep(spec, "recycle_uvm", "c_sqt", "c_sq", "c_hist")
