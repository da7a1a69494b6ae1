"""schedule forgets the order among one tenant's vCPUs: a vCPU may take a core again and again
while another runnable vCPU of its tenant waits (first come, first served skipped)."""
from nanvix.proofs.mutants._util import replace_op
from nanvix.spec.ops.sched import vcpu_overtakes

TARGETS = ["ind.schedule.vcpu_fair"]
# one tenant, two vCPUs, one core: the explorer finds the vCPU that waits forever
EXPLORE = {"tenants": 1, "user_vms": 2, "cores": 1}


def mutate(spec):
    orig = spec.ops["schedule"][0]

    def schedule(b, cfg, s, k, u):
        # the real schedule, run as if no vCPU were owed a turn, then the real ghost update
        blind = dict(s, u_ovt=b.fill2("U", "U", 0, 2))
        err, out, post = orig(b, cfg, blind, k, u)
        return err, out, b.ite_state(b.eq(err, 0), dict(post, u_ovt=vcpu_overtakes(b, s, u)), s)
    return replace_op(spec, "schedule", schedule)
