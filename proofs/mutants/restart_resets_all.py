"""restart_sysvm(t) recovers every open channel, not only those joined to t: a crash of one tenant's system VM resets another tenant's channels."""
from nanvix.proofs.mutants._util import replace_op

TARGETS = ["ni.restart_sysvm.*", "ind.restart_sysvm.*"]


def mutate(spec):
    orig = spec.ops["restart_sysvm"][0]

    def restart(b, cfg, s, t):
        # run the real recovery once per tenant's worth of channels by pretending every open
        # channel is joined to t
        err, out, post = orig(b, cfg, dict(s, c_sysvm=tuple(t for _ in s["c_sysvm"])), t)
        post = dict(post)
        post["c_sysvm"] = s["c_sysvm"]
        return err, out, post
    return replace_op(spec, "restart_sysvm", restart)
