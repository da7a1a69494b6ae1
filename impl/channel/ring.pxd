# Typed interface of the channel's host side: the system VM's end of the rings.
from libc.stdint cimport uint32_t, uint64_t, int64_t

from nanvix.impl.abi.abi cimport nx_ring_hdr, nx_sqe, nx_cqe
from nanvix.impl.channel.arena cimport Arena
from nanvix.impl.kvm.kvm cimport Memory


cdef class Request:
    cdef readonly uint64_t user_data
    cdef readonly uint32_t opcode, flags, out_off, out_cap
    cdef readonly uint64_t arg
    cdef readonly bytes name, value
    cdef readonly int error
    cdef readonly str why


cdef class Ring:
    cdef Memory mem
    cdef nx_ring_hdr *hdr
    cdef nx_sqe *sq
    cdef nx_cqe *cq
    cdef char *data
    cdef readonly uint32_t sq_head, cq_tail   # private, authoritative
    cdef readonly bint broken
    cdef readonly str broken_reason
    cdef readonly uint64_t taken, completed, rejected
    cdef readonly uint64_t simple                 # of completed: nops and clock reads answered in C
    cdef void _break(self, str why)
    cpdef uint32_t pending(self) except? 0xffffffff
    cpdef uint32_t cq_free(self) except? 0xffffffff
    cdef bint _head(self, nx_sqe *e) except -1
    cdef void _advance(self) noexcept
    cdef bint _post(self, uint64_t user_data, int64_t result, uint32_t out_len) noexcept
    cdef int answer_simple(self, uint32_t *account) except -2
