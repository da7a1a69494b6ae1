"""The nanvix state-machine spec: state (state.py), operations (ops/), invariants
(invariants.py) and what a tenant observes (observe.py), written once over a backend
(backend.py) and interpreted concretely (api.Model, the test oracle) or with Z3 (symbolic.py, for
nanvix.proofs).

This package's top level is the whole vocabulary in one namespace, as the proofs, the explorer and
the refinement harness use it: `from nanvix import spec as M; M.OPS, M.INVARIANTS, M.U_RUNNING`.
"""
from nanvix.spec.state import *  # noqa: F401,F403
from nanvix.spec.ops import OPS, TIMING_OPS, apply  # noqa: F401
from nanvix.spec.invariants import DERIVED, INVARIANTS, NEW_INVARIANTS  # noqa: F401
from nanvix.spec.observe import observe  # noqa: F401
from nanvix.spec.ops.common import NO_OUT, result, update  # noqa: F401  (for mutants of an operation)
from nanvix.spec.ops.pages import map_page_effect  # noqa: F401
from nanvix.spec.ops.channels import open_channel_effect  # noqa: F401
