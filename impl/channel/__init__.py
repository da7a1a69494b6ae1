"""The channel between a user VM and its tenant's system VM: the system VM's end of the SPSC
rings (ring.pyx, typed interface ring.pxd), and the tenant's arena that holds every channel page
and the control region between the VMM and the system VM (arena.pyx). The guest's end is in
impl/guest/kernel.c."""
from nanvix.impl.channel.ring import *  # noqa: F401,F403
from nanvix.impl.channel.arena import Arena  # noqa: F401
