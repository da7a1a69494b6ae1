"""destroy_uvm returns the user VM's pages to the pool but leaves them mapped in its (reusable) address space."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.destroy_uvm.*"]


def mutate(spec):
    return keep(spec, "destroy_uvm", "p_mu")
