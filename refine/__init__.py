"""The refinement harness, between the spec and the implementation: it drives both in lock-step
and compares them through an abstraction function (`nanvix check`).

    driver.py       the implementation, one spec operation at a time (stepper.c is its guest)
    stepped.py      the stepped runtime it drives; sysvm.py, the stepped system VM
    abstraction.py  the spec state a running implementation stands for
    lockstep.py     Lockstep: one method per operation, compared after every step
    campaign.py     random spec-guided campaigns; shrink.py shortens a divergent program
    plants.py       deliberate implementation bugs (cplants.pyx: those inside the ring)
    cli.py          `nanvix check`
"""
from nanvix.refine.lockstep import Divergence, Lockstep, replay, script  # noqa: F401
