"""Every exception nanvix raises, in one place. All derive from NanvixError.

    NanvixError
      KvmError           an ioctl on /dev/kvm, a VM or a vCPU failed (also an OSError: errno, ioctl)
      BuildError         a function's source did not compile or link (the message has gcc's output)
      GuestError         a function image did not behave as the ABI requires while being prepared
      QuotaExceeded      a tenant is at one of its limits (user VMs, pages, ...); OutOfPages: the host
      SystemVMDown       a tenant's system VM died or stopped answering
      NotFound           no such tenant or function
      InvalidArgument    a bad name, size or value given by the caller (also a ValueError)
      StoreError         a request a system VM refused; .code is the NX_E* code the guest gets
"""


class NanvixError(Exception):
    """Base of every nanvix error."""


class KvmError(NanvixError, OSError):
    """An ioctl on /dev/kvm, a VM or a vCPU failed."""

    def __init__(self, ioctl_name, err):
        import os
        OSError.__init__(self, err, "%s failed: %s (errno %d)" % (ioctl_name, os.strerror(err), err))
        self.ioctl = ioctl_name


class BuildError(NanvixError):
    """A function's source did not compile or link; the message carries gcc's output."""


class GuestError(NanvixError):
    """The guest did not behave as the ABI requires while being prepared."""


class QuotaExceeded(NanvixError):
    """The tenant is at one of its limits (user VMs, pages, concurrent invocations, ...)."""


class OutOfPages(QuotaExceeded):
    """The host's page pool is exhausted."""


class PageError(NanvixError):
    """A page was released twice or while still mapped (a host bug, never a guest's doing)."""


class SystemVMDown(NanvixError):
    """The system VM process died or stopped answering."""


class NotFound(NanvixError, KeyError):
    """No such tenant or function."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class InvalidArgument(NanvixError, ValueError):
    """A caller's argument is malformed: a tenant or function name, an input too large, ..."""


class StoreError(NanvixError):
    """A request failed in the system VM; .code is the positive NX_E* code the guest gets back
    (negated)."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code
