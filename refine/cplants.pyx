# cython: language_level=3
"""Planted bugs that need the channel's typed interface (ring.pxd): Ring subclasses with one
mistake each, handed to a stepped system VM by nanvix.refine.plants. Never used by a host."""
from nanvix.impl.channel.ring cimport Ring


cdef class DropWhenFullRing(Ring):
    """take() with no room in the CQ for the answer drops the request instead of leaving it."""

    def take(self):
        if self.pending() > 0 and self.cq_free() == 0 and not self.broken:
            self.sq_head += 1
            self.hdr.sq_head = self.sq_head
            return None
        return Ring.take(self)
