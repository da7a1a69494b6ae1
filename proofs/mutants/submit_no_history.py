"""submit posts the request but does not record it in the channel's history (ghost): what was
asked is forgotten, so a lost or reordered request would go unseen."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.submit.*"]


def mutate(spec):
    return keep(spec, "submit", "c_hist")
