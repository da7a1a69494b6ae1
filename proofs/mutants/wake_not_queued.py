"""wake makes a blocked vCPU RUNNABLE but puts it in no run queue (a lost wake-up)."""
from nanvix.proofs.mutants._util import keep

TARGETS = ["ind.wake.*"]


def mutate(spec):
    return keep(spec, "wake", "u_rq")
