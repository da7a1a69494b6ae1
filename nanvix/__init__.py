"""nanvix: serverless functions in per-invocation user VMs served by per-tenant system VMs, on KVM,
with a formal model of the design.

The public Python API:

    import nanvix
    with nanvix.Host() as host:                     # a host embedded in this process
        host.deploy("acme", "examples/echo.c")     # build once, snapshot per tenant
        r = host.invoke("acme", "echo.c", b"hi")   # nanvix.Invocation
        print(r.status, r.result)                  # ok b'hi'

Host, Function and Invocation are in nanvix.impl.control.host; every exception derives from
nanvix.NanvixError (nanvix.impl.errors). The other packages: nanvix.spec (the state-machine spec),
nanvix.proofs, nanvix.model, nanvix.impl (the implementation), nanvix.refine (the refinement
harness).
"""
from nanvix.impl.errors import (BuildError, GuestError, InvalidArgument, KvmError, NanvixError,  # noqa: F401
                                NotFound, OutOfPages, QuotaExceeded, StoreError, SystemVMDown)

_LAZY = {"Host", "Function", "Invocation"}  # importing them loads the KVM layer: only on use


def __getattr__(name):
    if name in _LAZY:
        from nanvix.impl.control import host
        return getattr(host, name)
    if name == "__version__":
        from importlib.metadata import version
        return version("nanvix")
    raise AttributeError("module 'nanvix' has no attribute %r" % name)


__all__ = sorted(_LAZY | {"BuildError", "GuestError", "InvalidArgument", "KvmError", "NanvixError",
                          "NotFound", "OutOfPages", "QuotaExceeded", "StoreError", "SystemVMDown"})
