"""recycle_uvm frees the pages the user VM grew into but leaves them mapped in its address space (the next invocation reads the last one's memory)."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.recycle_uvm.*"]


def mutate(spec):
    return keep(spec, "recycle_uvm", "p_mu")
