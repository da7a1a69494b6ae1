"""deliver hands the guest the completion at cq_head but never moves cq_head on: the guest is
delivered the same completion forever."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.deliver.delivered_in_order"]
EXPLORE = {"tenants": 1, "user_vms": 1, "ring": 2}


def mutate(spec):
    return keep(spec, "deliver", "c_cqh")
