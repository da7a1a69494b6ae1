"""block parks the vCPU (BLOCKED) but never gives its core back: the core stays busy with a vCPU
that does not run."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.block.*"]


def mutate(spec):
    return keep(spec, "block", "k_busy")
