# Typed interface of the KVM layer: the ioctl structures we use and the classes other Cython
# modules (channel, sched) call without going through Python.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

cdef extern from "<linux/kvm.h>":
    struct kvm_regs:
        uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp
        uint64_t r8, r9, r10, r11, r12, r13, r14, r15
        uint64_t rip, rflags

    struct kvm_segment:
        uint64_t base
        uint32_t limit
        uint16_t selector
        uint8_t type, present, dpl, db, s, l, g, avl, unusable

    struct kvm_dtable:
        uint64_t base
        uint16_t limit

    struct kvm_sregs:
        kvm_segment cs, ds, es, fs, gs, ss, tr, ldt
        kvm_dtable gdt, idt
        uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base

    struct kvm_xsave:
        uint32_t region[1024]

    struct kvm_vcpu_events:
        uint32_t flags

    struct kvm_sync_regs:
        kvm_regs regs
        kvm_sregs sregs
        kvm_vcpu_events events

    union kvm_sync_u:
        kvm_sync_regs regs

    struct kvm_run_io:
        uint8_t direction
        uint8_t size
        uint16_t port
        uint32_t count
        uint64_t data_offset

    struct kvm_run_mmio:
        uint64_t phys_addr
        uint8_t data[8]
        uint32_t len
        uint8_t is_write

    struct kvm_run_fail_entry:
        uint64_t hardware_entry_failure_reason
        uint32_t cpu

    struct kvm_run_internal:
        uint32_t suberror
        uint32_t ndata
        uint64_t data[16]

    struct kvm_run_hw:
        uint64_t hardware_exit_reason

    struct kvm_run:
        uint8_t immediate_exit
        uint32_t exit_reason
        uint64_t kvm_valid_regs
        uint64_t kvm_dirty_regs
        kvm_run_io io
        kvm_run_mmio mmio
        kvm_run_fail_entry fail_entry
        kvm_run_internal internal
        kvm_run_hw hw
        kvm_sync_u s

    struct kvm_userspace_memory_region:
        uint32_t slot
        uint32_t flags
        uint64_t guest_phys_addr
        uint64_t memory_size
        uint64_t userspace_addr

    struct kvm_ioeventfd:
        uint64_t datamatch
        uint64_t addr
        uint32_t len
        int fd
        uint32_t flags

    enum:
        KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE
        KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION, KVM_IOEVENTFD, KVM_RUN
        KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS
        KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS
        KVM_EXIT_UNKNOWN, KVM_EXIT_IO, KVM_EXIT_HLT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN
        KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTR, KVM_EXIT_INTERNAL_ERROR
        KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT
        KVM_IOEVENTFD_FLAG_PIO, KVM_IOEVENTFD_FLAG_DATAMATCH, KVM_IOEVENTFD_FLAG_DEASSIGN
        KVM_MEM_READONLY
        KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS, KVM_SYNC_X86_EVENTS
        KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_SYNC_REGS, KVM_CAP_IOEVENTFD, KVM_CAP_NR_MEMSLOTS
        KVM_CAP_USER_MEMORY, KVM_CAP_READONLY_MEM


cdef struct vcpu_state:
    kvm_regs regs
    kvm_sregs sregs
    kvm_xsave xsave
    kvm_vcpu_events events


cdef class Memory:
    """A host mapping of guest-visible memory (a memfd or anonymous pages), or a view of part of
    another Memory's mapping (parent set: no mapping of its own)."""
    cdef readonly uint64_t addr
    cdef readonly uint64_t size
    cdef readonly int fd
    cdef readonly bint shared
    cdef readonly uint64_t file_offset   # where the mapping starts in fd
    cdef readonly Memory parent
    cdef readonly list parts              # mappings placed over ranges of this one (place())
    cdef char *base
    cdef bint owner                        # this object made the mapping (a view did not)
    cdef void _check(self, uint64_t off, uint64_t n) except *


cdef class VcpuState:
    """Every piece of a vCPU's state a guest can change from CPL3: general registers, special
    registers (segments, FS/GS base, control registers), FPU/SSE/AVX (xsave) and pending events."""
    cdef vcpu_state s


cdef class Kvm:
    cdef readonly int fd
    cdef readonly int api_version
    cdef readonly int vcpu_mmap_size


cdef class Vm:
    cdef readonly int fd
    cdef readonly Kvm kvm
    cdef readonly dict slots  # slot -> (gpa, size, Memory)
    cdef readonly list vcpus


cdef class Vcpu:
    cdef readonly int fd
    cdef readonly int index
    cdef kvm_run *run
    cdef size_t run_size
    cdef readonly object vm
    cdef int run_nogil(self, long long budget_ns) noexcept nogil
    cdef int restore_nogil(self, vcpu_state *s) noexcept nogil
