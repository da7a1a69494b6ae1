"""The KVM layer: a thin, typed wrapper over /dev/kvm ioctls (kvm.pyx, typed interface kvm.pxd)."""
from nanvix.impl.kvm.kvm import *  # noqa: F401,F403
