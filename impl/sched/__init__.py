"""The scheduler: user-VM vCPUs on a few cores, M:N (sched.pyx, typed interface sched.pxd)."""
from nanvix.impl.sched.sched import *  # noqa: F401,F403
