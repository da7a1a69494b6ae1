"""crash_uvm marks a running vCPU CRASHED but leaves it on its core (the core is never freed)."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.crash_uvm.*"]


def mutate(spec):
    return keep(spec, "crash_uvm", "k_busy")
