"""The refinement harness, between the spec and the implementation: it drives both in lock-step
and compares them through an abstraction function (`nanvix check`).

    driver.py       the implementation, one spec operation at a time (stepper.c is its guest)
    stepped.py      the stepped runtime it drives; sysvm.py, the stepped system VM
    abstraction.py  the spec state a running implementation stands for
    lockstep.py     Lockstep: one method per operation, compared after every step
    campaign.py     random spec-guided campaigns; shrink.py shortens a divergent program
    plants.py       deliberate implementation bugs (cplants.pyx: those inside the ring;
                    guestplants.py: those in the microkernel's kernel.c)
    cli.py          `nanvix check`
"""


def __getattr__(name):  # lazily: `python -m nanvix.refine.sysvm` must not import the harness first
    if name in ("Divergence", "Lockstep", "replay", "script"):
        from nanvix.refine import lockstep
        return getattr(lockstep, name)
    raise AttributeError("module 'nanvix.refine' has no attribute %r" % name)
