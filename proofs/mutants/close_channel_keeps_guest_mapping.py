"""close_channel frees and scrubs the channel's page but leaves it mapped in the user VM."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.close_channel.*"]


def mutate(spec):
    return keep(spec, "close_channel", "p_mu")
