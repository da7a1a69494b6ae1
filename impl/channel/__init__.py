"""The channel between a user VM and its tenant's system VM: the system VM's end of the SPSC
rings (ring.pyx, typed interface ring.pxd). The guest's end is in impl/guest/kernel.c."""
from nanvix.impl.channel.ring import *  # noqa: F401,F403
