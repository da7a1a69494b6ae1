"""A guest's scribble over its ring's sq_tail is not recorded (the ghost c_honest stays true):
the checks would hold an honest guest to what a hostile one wrote."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.scribble_sq_tail.*"]


def mutate(spec):
    return keep(spec, "scribble_sq_tail", "c_honest")
