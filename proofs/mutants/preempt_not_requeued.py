"""preempt takes the vCPU off its core and marks it RUNNABLE but never puts it back in its run
queue: it is never scheduled again."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.preempt.*"]


def mutate(spec):
    return keep(spec, "preempt", "u_rq")
