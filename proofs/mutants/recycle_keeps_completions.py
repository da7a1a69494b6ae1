"""recycle_uvm empties the submission ring but keeps the completion ring: answers to the last invocation's requests are delivered to the next."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.recycle_uvm.*"]


def mutate(spec):
    return keep(spec, "recycle_uvm", "c_cqt", "c_pcqt", "c_cqv", "c_cqr")
