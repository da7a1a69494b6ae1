# cython: language_level=3, boundscheck=False, wraparound=False
"""The KVM layer: a thin, typed wrapper over /dev/kvm ioctls.

Mechanism only, no policy: VMs, vCPUs, memory slots, ioeventfds, KVM_RUN with decoded exits,
immediate_exit kicks and sync_regs. Every failing ioctl raises KvmError naming the ioctl and errno.
"""
import errno as _errno
import os

from nanvix.impl.errors import KvmError

from libc.errno cimport errno, EINTR
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy, memset
from posix.fcntl cimport O_RDWR, O_CLOEXEC, open as c_open
from posix.unistd cimport close as c_close_

cdef inline int c_close(int fd) noexcept nogil:
    return c_close_(fd)

cdef extern from "<sys/ioctl.h>" nogil:
    int ioctl(int fd, unsigned long request, ...)

cdef extern from "<sys/mman.h>" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int madvise(void *addr, size_t length, int advice)
    void *MAP_FAILED
    int PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MAP_FIXED
    int MADV_DONTNEED, MADV_POPULATE_READ, MADV_POPULATE_WRITE

cdef extern from "pagemap.h" nogil:
    int64_t _restore_pages "nx_restore_pages"(char *dst, const char *src, uint64_t size)
    int64_t _zero_resident "nx_zero_resident"(int fd, uint64_t off, char *base, uint64_t size)

cdef extern from "<fcntl.h>" nogil:
    int fallocate(int fd, int mode, long offset, long length)
    int FALLOC_FL_PUNCH_HOLE, FALLOC_FL_KEEP_SIZE

cdef extern from "vcpu_run.h" nogil:
    int nx_kick_install()
    int nx_kick_signal()
    int nx_vcpu_run(int fd, kvm_run *run, long long budget_ns)
    long long nx_now_ns()

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_kill(pthread_t thread, int sig)

if nx_kick_install() != 0:
    raise OSError(errno, "sigaction(kick signal) failed")

# Exit kinds, decoded from kvm_run.exit_reason (plus EINTR from a kick).
EXIT_IO = KVM_EXIT_IO
EXIT_MMIO = KVM_EXIT_MMIO
EXIT_HLT = KVM_EXIT_HLT
EXIT_SHUTDOWN = KVM_EXIT_SHUTDOWN
EXIT_FAIL_ENTRY = KVM_EXIT_FAIL_ENTRY
EXIT_INTR = KVM_EXIT_INTR
EXIT_INTERNAL_ERROR = KVM_EXIT_INTERNAL_ERROR
EXIT_NAMES = {
    KVM_EXIT_UNKNOWN: "unknown", KVM_EXIT_IO: "io", KVM_EXIT_HLT: "hlt", KVM_EXIT_MMIO: "mmio",
    KVM_EXIT_SHUTDOWN: "shutdown", KVM_EXIT_FAIL_ENTRY: "fail_entry", KVM_EXIT_INTR: "intr",
    KVM_EXIT_INTERNAL_ERROR: "internal_error",
}
CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT
CAP_SYNC_REGS = KVM_CAP_SYNC_REGS
CAP_IOEVENTFD = KVM_CAP_IOEVENTFD
CAP_NR_MEMSLOTS = KVM_CAP_NR_MEMSLOTS
CAP_READONLY_MEM = KVM_CAP_READONLY_MEM

REG_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11",
             "r12", "r13", "r14", "r15", "rip", "rflags")


cdef inline int _check(int ret, str name) except -1:
    if ret < 0:
        raise KvmError(name, errno)
    return ret


cdef inline int _ioctl(int fd, unsigned long request, void *arg) noexcept nogil:
    """An ioctl that may block in the kernel, called without the GIL: the result, or -errno.
    A signal that lands during a set-up ioctl (KVM_CREATE_VM can be slow) is not a failure: it
    is retried. KVM_RUN's EINTR is a kick and goes back to the caller."""
    cdef int r
    while True:
        r = ioctl(fd, request, arg)
        if r >= 0:
            return r
        if errno != EINTR or request == KVM_RUN:
            return -errno


cdef inline int _done(int ret, str name) except -1:
    if ret < 0:
        raise KvmError(name, -ret)
    return ret


def now_ns():
    return nx_now_ns()


def memfd(str name, uint64_t size, bint sealable=False):
    """An anonymous file for guest memory that can be shared by fd (and sealed, if asked)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealable else 0))
    try:
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


cdef class Memory:
    """A host mapping of guest memory. MAP_SHARED of a memfd is seen by every mapper (a channel);
    MAP_PRIVATE of a memfd is a copy-on-write snapshot; fd=-1 gives fresh anonymous pages.
    Memory(size, parent=m, offset=o) is a view of m's bytes [o, o+size): no mapping of its own
    (one mapping can then hold many channels: the per-process limit on mappings is 65,530)."""

    def __cinit__(self, uint64_t size, int fd=-1, bint shared=True, uint64_t offset=0, Memory parent=None):
        cdef int flags = MAP_SHARED if shared else MAP_PRIVATE
        cdef void *p
        self.base = NULL
        self.owner = False
        if parent is not None:
            parent._check(offset, size)
            self.parent = parent
            self.base = parent.base + offset
            self.addr = <uint64_t>self.base
            self.size = size
            self.fd = parent.fd
            self.shared = parent.shared
            self.file_offset = parent.file_offset + offset
            return
        if fd < 0:
            flags |= MAP_ANONYMOUS
        flags |= MAP_NORESERVE
        with nogil:
            p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, offset)
        if p == MAP_FAILED:
            raise OSError(errno, "mmap(%d bytes) failed: %s" % (size, os.strerror(errno)))
        self.base = <char *>p
        self.owner = True
        self.addr = <uint64_t>p
        self.size = size
        self.fd = fd
        self.shared = shared
        self.file_offset = offset

    def __dealloc__(self):
        # Whether to unmap is a C field, never `parent`: the cycle collector clears a view's
        # object fields (parent = None) before deallocating it, and a view that then unmapped
        # "its" range would unmap whatever has been mapped there since its parent was closed
        # (another user VM's memory: the host process crashed).
        if self.base != NULL and self.owner:
            munmap(self.base, self.size)
        self.base = NULL

    def view(self, uint64_t offset, uint64_t size):
        return Memory(size, parent=self, offset=offset)

    def place(self, uint64_t offset, uint64_t size, int fd, uint64_t file_offset=0, bint shared=True):
        """Map fd's [file_offset, +size) over this mapping's [offset, +size) (MAP_FIXED), so one
        range of addresses, and so one KVM memory slot, holds memory of several files (a user
        VM's snapshot and its channel page). Returns the placed range as a view that knows its
        own file; close() of this mapping unmaps it too."""
        cdef void *p
        cdef int flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_FIXED | MAP_NORESERVE
        cdef Memory v
        if self.parent is not None:
            raise ValueError("place() is for a mapping, not a view")
        self._check(offset, size)
        with nogil:
            p = mmap(self.base + offset, size, PROT_READ | PROT_WRITE, flags, fd, file_offset)
        if p == MAP_FAILED:
            raise OSError(errno, "mmap(MAP_FIXED, %d bytes) failed: %s" % (size, os.strerror(errno)))
        v = Memory(size, parent=self, offset=offset)
        v.fd, v.shared, v.file_offset = fd, shared, file_offset
        if self.parts is None:
            self.parts = []
        self.parts.append(v)
        return v

    def close(self):
        cdef char *base = self.base
        self.base = NULL
        if base != NULL and self.owner:
            with nogil:
                munmap(base, self.size)

    @property
    def closed(self):
        return self.base == NULL or (self.parent is not None and self.parent.closed)

    cdef void _check(self, uint64_t off, uint64_t n) except *:
        if self.base == NULL or (self.parent is not None and self.parent.base == NULL):
            raise ValueError("memory is unmapped")
        if off > self.size or n > self.size - off:
            raise IndexError("range [%#x, +%#x) outside %#x bytes" % (off, n, self.size))

    def read(self, uint64_t off, uint64_t n):
        self._check(off, n)
        return (self.base + off)[:n]

    def write(self, uint64_t off, const uint8_t[:] data):
        cdef uint64_t n = data.shape[0]
        self._check(off, n)
        if n:
            memcpy(self.base + off, &data[0], n)

    def fill(self, uint64_t off, uint64_t n, int byte=0):
        self._check(off, n)
        memset(self.base + off, byte, n)

    def u32(self, uint64_t off):
        self._check(off, 4)
        return (<uint32_t *>(self.base + off))[0]

    def set_u32(self, uint64_t off, uint32_t v):
        self._check(off, 4)
        (<uint32_t *>(self.base + off))[0] = v

    def u64(self, uint64_t off):
        self._check(off, 8)
        return (<uint64_t *>(self.base + off))[0]

    def set_u64(self, uint64_t off, uint64_t v):
        self._check(off, 8)
        (<uint64_t *>(self.base + off))[0] = v

    def scrub(self):
        """Return every byte to zero. A shared memfd's range is punched out (the kernel hands back
        zeroed pages on the next touch, in every process that maps it); anonymous memory is
        dropped; a private file mapping is zeroed in place."""
        cdef int err = 0
        cdef char *base = self.base
        cdef uint64_t n = self.size, off = self.file_offset
        cdef int fd = self.fd
        self._check(0, 0)
        with nogil:
            if fd >= 0 and self.shared:
                err = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n)
            elif fd < 0:
                err = madvise(base, n, MADV_DONTNEED)
            else:
                err = -1
            if err != 0:
                memset(base, 0, n)

    def restore(self, Memory source):
        """Drop the changes made through a private (copy-on-write) mapping, keeping what still
        matches mapped (a user VM's memory back to its snapshot): every page this mapping copied
        (written through it by a guest or by the host) is copied back from `source`, a mapping
        of the same file, and the pages never written stay the file's own. The kernel's page map
        says which pages were copied (present and not a file page), so nothing is guessed, and
        neither the host page tables nor KVM's shadow of them are dropped: the next run of the
        guest does not fault its working set in again. Returns the pages copied back."""
        cdef int64_t r
        self._check(0, 0)
        if self.shared or self.fd < 0 or source is None or source.size < self.size or source.fd < 0:
            raise ValueError("restore() is for a private mapping of a file, from a mapping of it")
        source._check(0, self.size)
        r = _restore_pages(self.base, source.base, self.size)  # (~5 us: not worth a GIL hand-off)
        if r < 0:
            raise OSError(<int>-r, "restoring a private mapping: %s" % os.strerror(<int>-r))
        return r

    def zero_resident(self):
        """Zero the pages of a shared file mapping that are in memory (a page not in memory
        reads as zero already): a scrub that leaves the mapping's working set in place, where
        scrub() hands every page back and each is faulted in again on its next use. Returns the
        pages zeroed."""
        cdef int64_t r
        self._check(0, 0)
        if not self.shared or self.fd < 0:
            raise ValueError("zero_resident() is for a shared mapping of a file")
        r = _zero_resident(self.fd, self.file_offset, self.base, self.size)  # (a few calls: GIL kept)
        if r < 0:
            raise OSError(<int>-r, "zeroing a shared mapping: %s" % os.strerror(<int>-r))
        return r

    def populate(self, uint64_t off=0, n=None, bint write=False):
        """Fault the range's pages into the host page tables now, so a guest's first touch does
        not pay for them (MADV_POPULATE_READ / _WRITE). Returns False where the kernel refuses."""
        cdef uint64_t count = self.size - off if n is None else n
        cdef int err
        self._check(off, count)
        with nogil:
            err = madvise(self.base + off, count, MADV_POPULATE_WRITE if write else MADV_POPULATE_READ)
        return err == 0

    def is_zero(self, uint64_t off=0, n=None):
        """True if the range reads as zeros (used to show a page was scrubbed)."""
        cdef uint64_t i, count = self.size - off if n is None else n
        self._check(off, count)
        cdef const uint64_t *w = <const uint64_t *>(self.base + off)
        for i in range(count // 8):
            if w[i] != 0:
                return False
        for i in range(count - count % 8, count):
            if self.base[off + i] != 0:
                return False
        return True


cdef class Kvm:
    """/dev/kvm itself: capabilities and VM creation."""

    def __cinit__(self, path="/dev/kvm"):
        self.fd = -1
        fd = c_open(os.fsencode(path), O_RDWR | O_CLOEXEC)
        if fd < 0:
            raise KvmError("open(%s)" % path, errno)
        self.fd = fd
        self.api_version = _check(ioctl(fd, KVM_GET_API_VERSION, 0), "KVM_GET_API_VERSION")
        if self.api_version != 12:
            raise KvmError("KVM_GET_API_VERSION", _errno.EPROTO)
        self.vcpu_mmap_size = _check(ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0), "KVM_GET_VCPU_MMAP_SIZE")

    def __dealloc__(self):
        if self.fd >= 0:
            c_close(self.fd)

    def check_extension(self, int cap):
        return _check(ioctl(self.fd, KVM_CHECK_EXTENSION, cap), "KVM_CHECK_EXTENSION")

    def create_vm(self):
        return Vm(self)


cdef class Vm:
    """One VM: its memory slots, ioeventfds and vCPUs."""

    def __cinit__(self, Kvm kvm):
        self.fd = -1
        self.kvm = kvm
        cdef int kfd = kvm.fd, ret
        with nogil:
            ret = _ioctl(kfd, KVM_CREATE_VM, NULL)
        self.fd = _done(ret, "KVM_CREATE_VM")
        self.slots = {}
        self.vcpus = []

    def __dealloc__(self):
        if self.fd >= 0:
            c_close(self.fd)

    def close(self):
        """Destroying a VM can take milliseconds in the kernel: done without the GIL."""
        cdef int fd = self.fd
        for v in self.vcpus:
            v.close()
        self.vcpus = []
        self.fd = -1
        if fd >= 0:
            with nogil:
                c_close(fd)
        self.slots = {}

    @property
    def closed(self):
        return self.fd < 0

    def _live(self):
        if self.fd < 0:
            raise KvmError("VM", _errno.EBADF)

    def set_memory(self, uint32_t slot, uint64_t gpa, Memory mem, uint64_t offset=0, size=None,
                   bint readonly=False):
        """Map mem[offset:offset+size] at guest-physical gpa (KVM_SET_USER_MEMORY_REGION)."""
        cdef kvm_userspace_memory_region r
        cdef uint64_t n = mem.size - offset if size is None else size
        self._live()
        mem._check(offset, n)
        r.slot = slot
        r.flags = KVM_MEM_READONLY if readonly else 0
        r.guest_phys_addr = gpa
        r.memory_size = n
        r.userspace_addr = mem.addr + offset
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_SET_USER_MEMORY_REGION, &r)
        _done(ret_, "KVM_SET_USER_MEMORY_REGION")
        self.slots[slot] = (gpa, n, mem)

    def delete_memory(self, uint32_t slot):
        cdef kvm_userspace_memory_region r
        self._live()
        if slot not in self.slots:
            raise KeyError(slot)
        memset(&r, 0, sizeof(r))
        r.slot = slot
        r.guest_phys_addr = self.slots[slot][0]
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_SET_USER_MEMORY_REGION, &r)
        _done(ret_, "KVM_SET_USER_MEMORY_REGION")
        del self.slots[slot]

    def ioeventfd(self, int efd, uint64_t port, int length=1, datamatch=None, bint pio=True,
                  bint deassign=False):
        """Signal efd in the kernel when the guest writes port (no exit to user space)."""
        cdef kvm_ioeventfd io
        self._live()
        memset(&io, 0, sizeof(io))
        io.addr = port
        io.len = length
        io.fd = efd
        io.flags = (KVM_IOEVENTFD_FLAG_PIO if pio else 0) | (KVM_IOEVENTFD_FLAG_DEASSIGN if deassign else 0)
        if datamatch is not None:
            io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH
            io.datamatch = datamatch
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_IOEVENTFD, &io)
        _done(ret_, "KVM_IOEVENTFD")

    def create_vcpu(self, int index=0):
        self._live()
        v = Vcpu(self, index)
        self.vcpus.append(v)
        return v


cdef class Vcpu:
    """One vCPU: registers, KVM_RUN and the decoded exit of the last run."""

    def __cinit__(self, Vm vm, int index):
        self.fd = -1
        self.run = NULL
        self.vm = vm
        self.index = index
        cdef int vfd = vm.fd, ret
        with nogil:
            ret = _ioctl(vfd, KVM_CREATE_VCPU, <void *><long>index)
        self.fd = _done(ret, "KVM_CREATE_VCPU")
        self.run_size = vm.kvm.vcpu_mmap_size
        p = mmap(NULL, self.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd, 0)
        if p == MAP_FAILED:
            err = errno
            c_close(self.fd)
            self.fd = -1
            raise KvmError("mmap(kvm_run)", err)
        self.run = <kvm_run *>p

    def __dealloc__(self):
        self.close()

    def close(self):
        cdef int fd = self.fd
        if self.run != NULL:
            munmap(self.run, self.run_size)
            self.run = NULL
        self.fd = -1
        if fd >= 0:
            with nogil:
                c_close(fd)

    def _live(self):
        if self.fd < 0 or self.run == NULL:
            raise KvmError("vCPU", _errno.EBADF)

    # -- registers -----------------------------------------------------------------------------
    def get_regs(self):
        cdef kvm_regs r
        self._live()
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_GET_REGS, &r)
        _done(ret_, "KVM_GET_REGS")
        return {k: v for k, v in zip(REG_NAMES, (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp,
                r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags))}

    def set_regs(self, **values):
        """Set the named general registers (others keep their value)."""
        cdef kvm_regs r
        unknown = set(values) - set(REG_NAMES)
        if unknown:
            raise ValueError("unknown registers: %s" % ", ".join(sorted(unknown)))
        cur = self.get_regs()
        cur.update(values)
        (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11,
         r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags) = [cur[k] for k in REG_NAMES]
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_SET_REGS, &r)
        _done(ret_, "KVM_SET_REGS")

    def get_sregs(self):
        cdef kvm_sregs s
        self._live()
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_GET_SREGS, &s)
        _done(ret_, "KVM_GET_SREGS")
        return s

    def set_sregs(self, dict s):
        """Set the special registers from a get_sregs() dict. Fields this wrapper does not
        declare (the pending-interrupt bitmap) are zero: no interrupt is left pending."""
        cdef kvm_sregs sr
        cdef kvm_sregs given = s
        self._live()
        memset(&sr, 0, sizeof(sr))
        sr.cs, sr.ds, sr.es, sr.fs, sr.gs, sr.ss = given.cs, given.ds, given.es, given.fs, given.gs, given.ss
        sr.tr, sr.ldt, sr.gdt, sr.idt = given.tr, given.ldt, given.gdt, given.idt
        sr.cr0, sr.cr2, sr.cr3, sr.cr4, sr.cr8 = given.cr0, given.cr2, given.cr3, given.cr4, given.cr8
        sr.efer, sr.apic_base = given.efer, given.apic_base
        cdef int ret_
        with nogil:
            ret_ = _ioctl(self.fd, KVM_SET_SREGS, &sr)
        _done(ret_, "KVM_SET_SREGS")

    def enable_sync_regs(self):
        """After every exit the general registers are in kvm_run (no GET_REGS ioctl needed)."""
        self._live()
        self.run.kvm_valid_regs = KVM_SYNC_X86_REGS

    def reg(self, str name):
        """A general register from the synced copy in kvm_run (needs enable_sync_regs)."""
        cdef kvm_regs *r = &self.run.s.regs.regs
        return {"rax": r.rax, "rbx": r.rbx, "rcx": r.rcx, "rdx": r.rdx, "rsi": r.rsi,
                "rdi": r.rdi, "rsp": r.rsp, "rip": r.rip}[name]

    def set_sync_reg(self, str name, uint64_t value):
        """Write a general register through kvm_run; KVM loads it on the next KVM_RUN."""
        cdef kvm_regs *r = &self.run.s.regs.regs
        if name == "rax":
            r.rax = value
        elif name == "rdx":
            r.rdx = value
        elif name == "rip":
            r.rip = value
        else:
            raise ValueError("only rax, rdx and rip are settable through sync_regs here")
        self.run.kvm_dirty_regs |= KVM_SYNC_X86_REGS

    def save_state(self):
        """Everything a guest can change from CPL3, as one VcpuState."""
        cdef VcpuState st = VcpuState()
        cdef int fd = self.fd, r = 0
        self._live()
        with nogil:
            r = _ioctl(fd, KVM_GET_REGS, &st.s.regs)
            if r >= 0:
                r = _ioctl(fd, KVM_GET_SREGS, &st.s.sregs)
            if r >= 0:
                r = _ioctl(fd, KVM_GET_XSAVE, &st.s.xsave)
            if r >= 0:
                r = _ioctl(fd, KVM_GET_VCPU_EVENTS, &st.s.events)
        _done(r, "saving the vCPU state")
        return st

    cdef int restore_nogil(self, vcpu_state *s) noexcept nogil:
        """Load a saved state: registers, special registers, FPU/SSE/AVX, no pending event.
        First a KVM_RUN with immediate_exit set: it completes an I/O exit still pending (the
        guest's last `in`, which KVM would otherwise complete, into the restored registers, on the
        next run) without entering the guest. Then the FPU state; the registers, special
        registers and events go through kvm_run's sync area, loaded by the next KVM_RUN: two
        ioctls, not five. Returns 0 or -errno."""
        cdef int r
        self.run.immediate_exit = 1
        r = _ioctl(self.fd, KVM_RUN, NULL)
        self.run.immediate_exit = 0
        if r < 0 and r != -4:  # EINTR: what immediate_exit answers
            return r
        r = _ioctl(self.fd, KVM_SET_XSAVE, &s.xsave)
        if r < 0:
            return r
        memcpy(&self.run.s.regs.regs, &s.regs, sizeof(kvm_regs))
        memcpy(&self.run.s.regs.sregs, &s.sregs, sizeof(kvm_sregs))
        memcpy(&self.run.s.regs.events, &s.events, sizeof(kvm_vcpu_events))
        self.run.kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS
        return 0

    def restore_state(self, VcpuState st):
        cdef int r
        self._live()
        r = self.restore_nogil(&st.s)  # (two short ioctls: not worth a GIL hand-off)
        _done(r, "restoring the vCPU state")

    # -- running -------------------------------------------------------------------------------
    cdef int run_nogil(self, long long budget_ns) noexcept nogil:
        return nx_vcpu_run(self.fd, self.run, budget_ns)

    def run_once(self, long long budget_ns=0):
        """KVM_RUN until the next exit (or until budget_ns elapses). Returns the exit reason."""
        cdef int err
        self._live()
        with nogil:
            err = self.run_nogil(budget_ns)
        if err == _errno.EINTR:
            return KVM_EXIT_INTR
        if err:
            raise KvmError("KVM_RUN", err)
        return self.run.exit_reason

    @property
    def immediate_exit(self):
        return self.run.immediate_exit

    @immediate_exit.setter
    def immediate_exit(self, v):
        self.run.immediate_exit = 1 if v else 0

    def exit_info(self):
        """The last exit, decoded into plain data."""
        cdef kvm_run *r = self.run
        reason = r.exit_reason
        info = {"reason": EXIT_NAMES.get(reason, "exit_%d" % reason)}
        if reason == KVM_EXIT_IO:
            info.update(port=r.io.port, size=r.io.size, count=r.io.count,
                        write=r.io.direction == KVM_EXIT_IO_OUT)
        elif reason == KVM_EXIT_MMIO:
            info.update(address=r.mmio.phys_addr, length=r.mmio.len, write=bool(r.mmio.is_write))
        elif reason == KVM_EXIT_FAIL_ENTRY:
            info.update(hardware_reason=r.fail_entry.hardware_entry_failure_reason)
        elif reason == KVM_EXIT_INTERNAL_ERROR:
            info.update(suberror=r.internal.suberror)
        elif reason == KVM_EXIT_UNKNOWN:
            info.update(hardware_reason=r.hw.hardware_exit_reason)
        return info

    def answer_io(self, uint32_t value):
        """The value a guest's pending `in` (an I/O exit) reads when the vCPU runs next."""
        self._live()
        (<uint32_t *>((<char *>self.run) + self.run.io.data_offset))[0] = value

    @property
    def io_port(self):
        return self.run.io.port


cdef class VcpuState:
    """A saved vCPU state (see the .pxd): restored in four ioctls, no Python objects involved."""

    def __cinit__(self):
        memset(&self.s, 0, sizeof(vcpu_state))

    @property
    def rip(self):
        return self.s.regs.rip

    def to_bytes(self):
        """The state as bytes (to hand a snapshot's vCPU state to another process)."""
        return (<char *>&self.s)[:sizeof(vcpu_state)]

    @staticmethod
    def from_bytes(const uint8_t[:] b):
        cdef VcpuState st = VcpuState()
        if b.shape[0] != sizeof(vcpu_state):
            raise ValueError("a vCPU state is %d bytes, got %d" % (sizeof(vcpu_state), b.shape[0]))
        memcpy(&st.s, &b[0], sizeof(vcpu_state))
        return st

    def set_reg(self, str name, uint64_t value):
        """Change one general register of the saved state (rip, rax, rsp, rflags)."""
        if name == "rip":
            self.s.regs.rip = value
        elif name == "rax":
            self.s.regs.rax = value
        elif name == "rsp":
            self.s.regs.rsp = value
        elif name == "rflags":
            self.s.regs.rflags = value
        else:
            raise ValueError(name)


def kick_thread(unsigned long thread_ident):
    """Interrupt KVM_RUN on another thread (threading.get_ident() value): EINTR there."""
    pthread_kill(<pthread_t>thread_ident, nx_kick_signal())
