"""exit_uvm ends the vCPU (EXITED) but leaves its core busy."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.exit_uvm.*"]


def mutate(spec):
    return keep(spec, "exit_uvm", "k_busy")
