"""The KVM layer: every ioctl failure is a KvmError naming the ioctl and carrying the errno; a
guest boots in long mode at CPL3 and computes natively."""
import errno
import json
import os

import pytest

from conftest import example

pytestmark = pytest.mark.kvm

M2 = 2 << 20


def _kvm():
    from nanvix.impl.kvm import Kvm

    return Kvm()


def test_overlapping_memory_slots_raise_named_error(kvm):
    from nanvix.impl.kvm import KvmError, Memory

    k = _kvm()
    vm = k.create_vm()
    a, b = Memory(M2), Memory(M2)
    try:
        vm.set_memory(0, 0, a)
        with pytest.raises(KvmError) as ei:
            vm.set_memory(1, 0x100000, b)  # overlaps slot 0's [0, 2 MiB)
        e = ei.value
        assert e.ioctl == "KVM_SET_USER_MEMORY_REGION"
        assert e.errno == errno.EEXIST
        assert "KVM_SET_USER_MEMORY_REGION" in str(e) and "errno %d" % errno.EEXIST in str(e)
        assert 1 not in vm.slots  # the failed slot is not recorded
    finally:
        vm.close()
        a.close()
        b.close()


def test_bad_slot_and_misaligned_region_raise_einval(kvm):
    from nanvix.impl.kvm import KvmError, Memory

    vm = _kvm().create_vm()
    m = Memory(M2)
    try:
        with pytest.raises(KvmError) as ei:
            vm.set_memory(0x7FFF, 0, m)  # beyond KVM_CAP_NR_MEMSLOTS
        assert ei.value.ioctl == "KVM_SET_USER_MEMORY_REGION" and ei.value.errno == errno.EINVAL
        with pytest.raises(KvmError) as ei:
            vm.set_memory(0, 0x123, m, 0, 0x1000)  # guest address not page aligned
        assert ei.value.ioctl == "KVM_SET_USER_MEMORY_REGION" and ei.value.errno == errno.EINVAL
    finally:
        vm.close()
        m.close()


def test_closed_vm_and_duplicate_vcpu(kvm):
    from nanvix.impl.kvm import KvmError, Memory

    vm = _kvm().create_vm()
    m = Memory(M2)
    try:
        vm.create_vcpu(0)
        with pytest.raises(KvmError) as ei:
            vm.create_vcpu(0)
        assert ei.value.ioctl == "KVM_CREATE_VCPU" and ei.value.errno == errno.EEXIST
        assert "KVM_CREATE_VCPU" in str(ei.value)
        vm.close()
        assert vm.closed
        with pytest.raises(KvmError) as ei:
            vm.set_memory(0, 0, m)
        assert ei.value.errno == errno.EBADF and ei.value.ioctl
        with pytest.raises(KvmError):
            vm.create_vcpu(1)
    finally:
        vm.close()
        m.close()


def test_ioeventfd_errors_are_named(kvm):
    from nanvix.impl.kvm import KvmError

    vm = _kvm().create_vm()
    efd = os.eventfd(0)
    try:
        vm.ioeventfd(efd, 0xD0)
        with pytest.raises(KvmError) as ei:
            vm.ioeventfd(efd, 0xD0)  # the same port twice
        assert ei.value.ioctl == "KVM_IOEVENTFD" and ei.value.errno == errno.EEXIST
        with pytest.raises(KvmError) as ei:
            vm.ioeventfd(efd, 0xD1, length=3)  # invalid access width
        assert ei.value.ioctl == "KVM_IOEVENTFD" and ei.value.errno == errno.EINVAL
    finally:
        vm.close()
        os.close(efd)


def test_kvm_error_is_an_oserror_with_errno():
    from nanvix.impl.kvm import KvmError

    e = KvmError("KVM_RUN", errno.EFAULT)
    assert isinstance(e, OSError)
    assert e.errno == errno.EFAULT and e.ioctl == "KVM_RUN"
    assert "KVM_RUN" in str(e) and os.strerror(errno.EFAULT) in str(e)


def test_guest_runs_in_long_mode_at_cpl3(rt):
    """Run a user VM to its exit, then read its vCPU's segment state before it is destroyed."""
    from nanvix.impl.abi import ABI

    image = rt.load(example("hello.c"))
    uvm = rt.create_user_vm("cpl", image, b"", 10_000)
    try:
        rt.start(uvm)
        rep = rt.wait(uvm, 30)
        assert rep["status"] == "ok", rep
        s = uvm.vcpu.get_sregs()
        assert s["cs"]["selector"] == ABI["SEL_CODE"]
        assert s["cs"]["selector"] & 3 == 3  # RPL 3
        assert s["cs"]["dpl"] == 3 and s["cs"]["l"] == 1  # 64-bit user code segment: CPL 3
        assert s["ss"]["selector"] & 3 == 3 and s["ss"]["dpl"] == 3
        assert s["efer"] & 0x500 == 0x500  # LME | LMA: long mode active
        assert s["cr0"] & 0x80000001 == 0x80000001  # paging, protected mode
        assert s["cr3"] == ABI["GPA_PML4"]
        regs = uvm.vcpu.get_regs()
        assert (regs["rflags"] >> 12) & 3 == 0  # IOPL 0: ports only through the TSS bitmap
    finally:
        rt.destroy(uvm)


def test_spin_computes_natively(invoke):
    """examples/spin.c: 10^7 loop iterations at CPL3 finish (status ok) with few VM exits,
    i.e. the loop ran natively, not instruction by instruction in an emulator."""
    rep = invoke("spin", example("spin.c"), b"", 120_000)
    assert rep["status"] == "ok", rep
    out = json.loads(rep["result"])
    assert out["iterations"] == 10_000_000
    # a trap-and-emulate run would exit per instruction; natively only the time slices and
    # the few hypercalls leave the guest
    assert rep["exits"] < 100_000, rep


def _xorshift(n):
    x = 88172645463325252
    m = (1 << 64) - 1
    for _ in range(n):
        x ^= (x << 13) & m
        x ^= x >> 7
        x ^= (x << 17) & m
    return x


@pytest.mark.parametrize("n", [0, 1, 12345])
def test_spin_checksum_is_exact(invoke, n):
    rep = invoke("spin", example("spin.c"), str(n).encode(), 30_000)
    assert rep["status"] == "ok", rep
    out = json.loads(rep["result"])
    assert out["iterations"] == n and out["checksum"] == _xorshift(n)


def test_restore_copies_back_exactly_the_pages_a_private_mapping_changed():
    """Memory.restore: a copy-on-write mapping reads as its file again, whatever wrote to it,
    and only the pages it copied are counted (the rest are still the file's)."""
    from nanvix.impl.kvm import Memory, memfd

    size = 64 * 4096
    fd = memfd("restore-test", size)
    try:
        shared = Memory(size, fd, True)
        shared.write(0, bytes(range(256)) * (size // 256))
        snapshot = bytes(shared.read(0, size))
        private, source = Memory(size, fd, False), Memory(size, fd, False)
        assert private.restore(source) == 0          # nothing copied yet
        private.read(5 * 4096, 4096)                 # a read maps the file's page: no copy
        for page in (0, 7, 63):
            private.fill(page * 4096 + 100, 50, 0xAB)
        private.write(20 * 4096 + 4090, b"0123456789")  # one write across two pages
        assert private.read(0, size) != snapshot
        assert private.restore(source) == 5
        assert private.read(0, size) == snapshot
        assert private.restore(source) == 5           # the copies stay (now equal to the file)
        with pytest.raises(ValueError):
            shared.restore(source)                    # not a private mapping
        for m in (private, source, shared):
            m.close()
    finally:
        os.close(fd)


def test_zero_resident_leaves_a_shared_mapping_all_zero():
    from nanvix.impl.kvm import Memory, memfd

    size = 128 * 4096
    fd = memfd("zero-test", size)
    try:
        a, b = Memory(size, fd, True), Memory(size, fd, True)  # two mappings, as VMM and system VM
        for page in (0, 3, 127):
            b.fill(page * 4096 + 17, 300, 0x5C)
        assert not a.is_zero()
        assert a.zero_resident() == 3   # only those pages are in memory
        assert a.is_zero() and b.is_zero()
        with pytest.raises(ValueError):
            Memory(size, fd, False).zero_resident()
        a.close()
        b.close()
    finally:
        os.close(fd)


def _mapped(addr):
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


def test_collecting_a_closed_mapping_never_unmaps_what_is_there_now():
    """A view placed into a mapping (place()) forms a cycle with it; the cycle collector clears
    the view's fields before freeing it. Freeing it must not unmap its old range, which by then
    may hold another user VM's memory (it did: the host process crashed in a later episode)."""
    import ctypes
    import gc
    import mmap
    import sys
    from nanvix.impl.kvm import Memory
    from nanvix.impl.kvm.kvm import memfd
    page = mmap.PAGESIZE
    fd = memfd("test-view", page)
    try:
        parent = Memory(2 * page)
        view = parent.place(0, page, fd)
        addr = view.addr
        parent.close()
        # something else takes the same addresses, as a new user VM's mapping would
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long)
        MAP_FIXED = 0x10
        p = libc.mmap(addr, 2 * page, mmap.PROT_READ | mmap.PROT_WRITE,
                      mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        assert p == addr
        # the collector, visiting the view first, clears its fields (tp_clear) before freeing it;
        # call the type's tp_clear as it does (offsetof(PyTypeObject, tp_clear), 64-bit CPython 3.11)
        assert sys.version_info[:2] == (3, 11) and ctypes.sizeof(ctypes.c_void_p) == 8
        tp_clear = ctypes.c_void_p.from_address(id(Memory) + 24 * 8).value
        ctypes.CFUNCTYPE(ctypes.c_int, ctypes.py_object)(tp_clear)(view)
        assert view.parent is None
        del parent, view
        gc.collect()
        assert _mapped(addr), "freeing a closed mapping's view unmapped memory that is not its own"
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        libc.munmap(addr, 2 * page)
    finally:
        os.close(fd)
