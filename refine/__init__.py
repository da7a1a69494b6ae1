"""The refinement harness, between the spec and the implementation: it drives both in lock-step
and compares them through an abstraction function (`nanvix check`).

    driver.py       the implementation, one spec operation at a time (stepper.c is its guest)
    stepped.py      the stepped runtime it drives; sysvm.py, the stepped system VM
    abstraction.py  the spec state a running implementation stands for
    lockstep.py     Lockstep: one method per operation, compared after every step
    campaign.py     random spec-guided campaigns; shrink.py shortens a divergent program
    plants.py       implementation mutants (cplants.pyx: those in the ring and the scheduler;
                    guestplants.py: those in the microkernel's kernel.c)
    coverage.py     branch coverage of a campaign; scenarios.py, directed programs
    mutants.py      `nanvix check --mutants`: every mutant against the checks
    cli.py          `nanvix check`
"""


def __getattr__(name):  # lazily: `python -m nanvix.refine.sysvm` must not import the harness first
    if name in ("Divergence", "Lockstep", "replay", "script"):
        from nanvix.refine import lockstep
        return getattr(lockstep, name)
    raise AttributeError("module 'nanvix.refine' has no attribute %r" % name)
