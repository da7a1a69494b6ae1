# Typed interface of a tenant's channel arena: its control region and its channel pages.
from libc.stdint cimport uint32_t, uint64_t

from nanvix.impl.abi.abi cimport nx_ctl_hdr, nx_ctl_slot, nx_ctl_ring
from nanvix.impl.kvm.kvm cimport Memory


cdef class Arena:
    cdef readonly Memory mem
    cdef readonly int fd
    cdef readonly uint32_t nslots
    cdef readonly uint64_t chan_off
    cdef nx_ctl_hdr *hdr
    cdef char *base
    cdef nx_ctl_slot *slot(self, uint32_t i) except NULL
    cdef bint push(self, nx_ctl_ring *r, uint32_t value) noexcept nogil
    cdef list _drain(self, nx_ctl_ring *r)
