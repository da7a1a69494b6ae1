"""close_channel hands the channel's page back to the pool without scrubbing it."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.close_channel.*"]


def mutate(spec):
    return keep(spec, "close_channel", "p_scrub")
