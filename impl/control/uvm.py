"""User VMs: the guest memory layout, host-laid page tables and GDT, and fast start from snapshots.

A function image is booted once per (tenant, image) into a *template*: the VM runs the microkernel's
initialisation up to the NX_HC_READY hypercall and its memory becomes a sealed memfd. Every
invocation then maps that memfd MAP_PRIVATE (copy-on-write) into a fresh VM and resumes at the
snapshot's registers: no copy, no re-initialisation. Templates are per tenant, so no page is ever
shared across tenants, not even read-only.

Layout (identity-mapped; see guest/nanvix_abi.h): [0, 2 MiB) low memory in 4 KiB pages: page
tables, GDT and TSS supervisor-only (U=0, so no code in the VM, which is all CPL3, can reach them),
the info block user-writable; [2, 4 MiB) the channel page; [4 MiB, 4 MiB + ram) the image and RAM;
from 1 GiB the pages the host adds when the guest grows.
"""
import fcntl
import os
import struct

from nanvix.impl.abi import ABI
from nanvix.impl.errors import GuestError, InvalidArgument
from nanvix.impl.guest.linux import zpoline
from nanvix.impl.kvm import EXIT_IO, Memory, VcpuState, memfd

A = ABI
P, RW, US, PS = 1, 2, 4, 0x80
AC, DI = 0x20, 0x40       # accessed, dirty: set here, so the MMU never writes a page table (each
                          # such write would copy a page of the snapshot into every user VM)
CR0 = 0x80050033          # PE MP ET NE WP PG
CR4 = 0x620               # PAE OSFXSR OSXMMEXCPT
CR4_FSGSBASE = 0x10000    # wrfsbase/rdfsbase at CPL3: the Linux-ABI layer's TLS, with no exit
EFER = 0x500              # LME LMA
RFLAGS = 0x2              # IOPL 0: ports are allowed by the TSS bitmap alone
ALLOWED_PORTS = ((A["PORT_DOORBELL"], 1), (A["PORT_HYPERCALL"], 4))  # (port, access width)
SLOT_GUEST, SLOT_HOTADD = 0, 3   # the guest's memory in one slot; added pages from SLOT_HOTADD
DEFAULT_RAM = 8 << 20
IN_EAX_IMM8 = 0xE5        # `in eax, imm8`: the hypercall instruction (2 bytes)

F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
SEALS = 0x0001 | 0x0002 | 0x0004 | 0x0008  # SEAL_SEAL | SHRINK | GROW | WRITE


def _q(mem, off, value):
    mem.set_u64(off, value)


def lay_out(mem, ram_size, tsc_khz, page0=None):
    """Write page tables, GDT, TSS and the info block into mem (low memory at offset 0). page0:
    the content of a user-readable, read-only page at address 0 (a rewritten binary's syscall
    sled, see guest/linux/zpoline.py); else page 0 is absent, so null pointers fault."""
    low = A["LOW_SIZE"]
    # PML4 -> PDPT -> PD0 (first GiB), PD1 (the hot-add GiB)
    _q(mem, A["GPA_PML4"], A["GPA_PDPT"] | P | RW | US | AC)
    _q(mem, A["GPA_PDPT"], A["GPA_PD0"] | P | RW | US | AC)
    _q(mem, A["GPA_PDPT"] + 8, A["GPA_PD1"] | P | RW | US | AC)
    _q(mem, A["GPA_PD0"], A["GPA_PT0"] | P | RW | US | AC)
    _q(mem, A["GPA_PD0"] + 8, A["GPA_CHANNEL"] | P | RW | US | PS | AC | DI)
    for i in range(ram_size // A["PAGE_2M"]):
        _q(mem, A["GPA_PD0"] + 8 * (2 + i), (A["GPA_RAM"] + i * A["PAGE_2M"]) | P | RW | US | PS | AC | DI)
    for i in range(A["HOTADD_MAX"]):
        _q(mem, A["GPA_PD1"] + 8 * i, (A["GPA_HOTADD"] + i * A["PAGE_2M"]) | P | RW | US | PS | AC | DI)
    # 4 KiB pages of the low 2 MiB: page 0 absent (null pointers fault), the hypervisor's pages
    # present but supervisor-only, the info block user read-write, the rest absent.
    for gpa in range(A["GPA_PML4"], A["GPA_TSS"] + A["PAGE_4K"], A["PAGE_4K"]):
        _q(mem, A["GPA_PT0"] + 8 * (gpa >> 12), gpa | P | RW | AC | DI)
    for gpa in range(A["GPA_INFO"], A["GPA_INFO"] + A["INFO_SIZE"], A["PAGE_4K"]):
        _q(mem, A["GPA_PT0"] + 8 * (gpa >> 12), gpa | P | RW | US | AC | DI)
    if page0 is not None:
        mem.write(0, page0)
        _q(mem, A["GPA_PT0"], 0 | P | US | AC)
    assert A["GPA_INFO"] + A["INFO_SIZE"] <= low
    # GDT: 64-bit user code and data (DPL 3) and a TSS whose I/O bitmap admits only our ports.
    _q(mem, A["GPA_GDT"] + (A["SEL_DATA"] & ~7), 0x00CFF3000000FFFF)
    _q(mem, A["GPA_GDT"] + (A["SEL_CODE"] & ~7), 0x00AFFB000000FFFF)
    bitmap = bytearray(b"\xff" * 32)
    for base, width in ALLOWED_PORTS:  # every byte of an access must be allowed
        for port in range(base, base + width):
            bitmap[port // 8] &= ~(1 << (port % 8)) & 0xFF
    tss = A["GPA_TSS"]
    limit = 0x68 + len(bitmap)
    mem.write(tss + 0x66, struct.pack("<H", 0x68))
    mem.write(tss + 0x68, bytes(bitmap) + b"\xff")
    desc_lo = (limit & 0xFFFF) | ((tss & 0xFFFFFF) << 16) | (0x89 << 40) | (((tss >> 24) & 0xFF) << 56)
    _q(mem, A["GPA_GDT"] + A["SEL_TSS"], desc_lo)
    _q(mem, A["GPA_GDT"] + A["SEL_TSS"] + 8, tss >> 32)
    # the info block
    info = A["GPA_INFO"]
    _q(mem, info, A["INFO_MAGIC"])
    mem.set_u32(info + A["INFO_ABI_VERSION"], A["ABI_VERSION"])
    _q(mem, info + A["INFO_RAM_BASE"], A["GPA_RAM"])
    _q(mem, info + A["INFO_RAM_SIZE"], ram_size)
    _q(mem, info + A["INFO_TSC_KHZ"], tsc_khz)
    return limit


def segment(selector, code):
    return {"base": 0, "limit": 0xFFFFFFFF, "selector": selector, "type": 11 if code else 3,
            "present": 1, "dpl": 3, "db": 0 if code else 1, "s": 1, "l": 1 if code else 0, "g": 1,
            "avl": 0, "unusable": 0}


def set_cpu_state(vcpu, tss_limit):
    s = vcpu.get_sregs()
    s["cs"] = segment(A["SEL_CODE"], True)
    for name in ("ds", "es", "fs", "gs", "ss"):
        s[name] = segment(A["SEL_DATA"], False)
    s["tr"] = {"base": A["GPA_TSS"], "limit": tss_limit, "selector": A["SEL_TSS"], "type": 11,
               "present": 1, "dpl": 0, "db": 0, "s": 0, "l": 0, "g": 0, "avl": 0, "unusable": 0}
    s["gdt"] = {"base": A["GPA_GDT"], "limit": 0x4F}
    s["idt"] = {"base": 0, "limit": 0}
    s["cr0"], s["cr3"], s["cr4"], s["efer"] = CR0, A["GPA_PML4"], CR4 | (CR4_FSGSBASE if HAS_FSGSBASE else 0), EFER
    vcpu.set_sregs(s)


def _cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


HAS_FSGSBASE = _cpu_has("fsgsbase")


def tsc_khz():
    """The host TSC rate, for the guest's cycle clock (KVM passes the host TSC through here)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/tsc_freq_khz") as f:
            return int(f.read())
    except OSError:
        pass
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    return 1_000_000


class Template:
    """A function image booted to NX_HC_READY for one tenant: a sealed memfd plus registers."""

    def __init__(self, kvm, image, ram_size=DEFAULT_RAM):
        if ram_size % A["PAGE_2M"] or not 0 < ram_size <= A["RAM_MAX"]:
            raise InvalidArgument("ram_size must be a multiple of 2 MiB below %d" % A["RAM_MAX"])
        with open(image["path"], "rb") as f:
            code = f.read()
        entry = image.get("entry", A["GPA_RAM"])
        if not A["GPA_RAM"] <= entry < image["end"]:
            raise InvalidArgument("image entry %#x outside the image" % entry)
        if image.get("kind", "c") != "c" and not HAS_FSGSBASE:
            raise GuestError("this CPU lacks FSGSBASE, which Linux programs' TLS needs (wrfsbase at CPL3)")
        if image["end"] - A["GPA_RAM"] > ram_size // 2:
            raise InvalidArgument("image of %d bytes leaves too little RAM" % (image["end"] - A["GPA_RAM"]))
        self.ram_size = ram_size
        self.size = A["LOW_SIZE"] + ram_size
        self.image = image
        self.source = None
        self.fd = memfd("nanvix-template", self.size, sealable=True)
        mem = Memory(self.size, self.fd, True)
        page0 = zpoline.page0(A["GPA_SYSCALL_VEC"]) if image.get("zpoline") else None
        self.tss_limit = lay_out(mem, ram_size, tsc_khz(), page0)
        mem.write(A["LOW_SIZE"], code)  # RAM begins at offset LOW_SIZE of the memfd
        # Boot it to READY with a throwaway channel page, on the shared mapping, so what the
        # initialisation wrote lands in the memfd.
        chan_fd = memfd("nanvix-template-channel", A["CHANNEL_SIZE"])
        chan = Memory(A["CHANNEL_SIZE"], chan_fd, True)
        vm = kvm.create_vm()
        try:
            window = self.window(True, chan)
            vm.set_memory(SLOT_GUEST, 0, window)
            vcpu = vm.create_vcpu(0)
            set_cpu_state(vcpu, self.tss_limit)
            vcpu.set_regs(rip=entry, rflags=RFLAGS, rsp=0)
            vcpu.enable_sync_regs()
            reason = vcpu.run_once(2_000_000_000)
            info = vcpu.exit_info()
            if reason != EXIT_IO or info["port"] != A["PORT_HYPERCALL"] or vcpu.reg("rax") & 0xFFFFFFFF != A["HC_READY"]:
                said = ""
                if reason == EXIT_IO and vcpu.reg("rax") & 0xFFFFFFFF == A["HC_EXIT"]:
                    n = min(mem.u32(A["GPA_INFO"] + A["INFO_RESULT_LEN"]), A["RESULT_MAX"])
                    said = ": it exited with status %d before its snapshot point, saying: %s" % (
                        vcpu.reg("rdi") & 0xFF, mem.read(A["GPA_INFO"] + A["INFO_RESULT"], n).decode("utf-8", "replace")[-2000:])
                raise GuestError("image did not reach NX_HC_READY%s" % (said or ": %r" % info))
            # The whole vCPU state at the snapshot point: every start (and every recycle)
            # restores exactly this, resuming after the `in` as if it had returned 0.
            self.state = vcpu.save_state()
            if mem.read(A["LOW_SIZE"] + self.state.rip - A["GPA_RAM"], 1)[0] == IN_EAX_IMM8:
                self.state.set_reg("rip", self.state.rip + 2)
            self.state.set_reg("rax", 0)
        finally:
            vm.close()
            if "window" in locals():
                window.close()
            chan.close()
            os.close(chan_fd)
            mem.close()
        fcntl.fcntl(self.fd, F_ADD_SEALS, SEALS)  # nothing can change the snapshot now

    @classmethod
    def adopt(cls, fd, image, ram_size, state):
        """A template booted elsewhere (another process of this host): its sealed snapshot memfd
        and its vCPU state (VcpuState.to_bytes())."""
        seals = fcntl.fcntl(fd, 1034)  # F_GET_SEALS: only a sealed snapshot is taken
        if seals & SEALS != SEALS:
            raise GuestError("a template snapshot must be sealed")
        tpl = cls.__new__(cls)
        tpl.fd, tpl.image, tpl.ram_size = fd, image, ram_size
        tpl.size = A["LOW_SIZE"] + ram_size
        tpl.source = None
        tpl.state = VcpuState.from_bytes(state)
        return tpl

    def window(self, shared, chan=None):
        """The guest's memory as one range of host addresses, laid out as its guest-physical
        one, so KVM holds it in one memory slot (each slot costs the host ~16 KiB of kernel
        memory per VM for its reverse maps and tracking arrays): [0, 2 MiB) and the RAM from
        the snapshot (copy-on-write unless shared), the channel page in between from its own
        file (the tenant's arena) or nothing (chan None: the range stays the snapshot's,
        never read)."""
        mem = Memory(A["GPA_RAM"] + self.ram_size, self.fd, shared)
        try:
            mem.place(A["GPA_RAM"], self.ram_size, self.fd, A["LOW_SIZE"], shared)
            if chan is not None:
                mem.place(A["GPA_CHANNEL"], A["CHANNEL_SIZE"], chan.fd, chan.file_offset, True)
        except BaseException:
            mem.close()
            raise
        return mem

    def instantiate(self, vm, channel_mem, doorbell_fd):
        """Give a fresh VM its private copy-on-write memory, the channel page and the doorbell,
        and its vCPU in the snapshot's state. Returns (memory, vcpu): the memory is the guest's
        physical layout (see window)."""
        mem = self.window(False, channel_mem)  # MAP_PRIVATE: copy-on-write
        vm.set_memory(SLOT_GUEST, 0, mem)
        vm.ioeventfd(doorbell_fd, A["PORT_DOORBELL"])
        vcpu = vm.create_vcpu(0)
        vcpu.restore_state(self.state)
        vcpu.enable_sync_regs()
        return mem, vcpu

    def reset(self, mem, vcpu):
        """Back to the snapshot: every page the copy-on-write mapping copied is the snapshot's
        again (copied back; the rest still is the sealed file's) and the vCPU's whole state
        restored (registers, special registers with FS/GS base, FPU/SSE/AVX, no pending event).
        Nothing of the last invocation is left in the VM; its pages beyond the snapshot and its
        channel are the caller's. Returns the pages copied back."""
        if self.source is None:  # one read-only window on the snapshot per template and process
            self.source = self.window(False)
        n = mem.restore(self.source)  # (the channel's pages are its file's: never copied back)
        vcpu.restore_state(self.state)
        return n

    def prefault(self, mem):
        """Map the snapshot's image into the host page tables ahead of a start (the guest's first
        touches then skip the host's fault path)."""
        mem.populate(0, A["LOW_SIZE"])
        mem.populate(A["GPA_RAM"], min(self.ram_size, self.image["end"] - A["GPA_RAM"]))

    @staticmethod
    def write_input(mem, data):
        if len(data) > A["INPUT_MAX"]:
            raise InvalidArgument("input of %d bytes exceeds %d" % (len(data), A["INPUT_MAX"]))
        info = A["GPA_INFO"]
        mem.set_u32(info + A["INFO_INPUT_LEN"], len(data))
        if data:
            mem.write(info + A["INFO_INPUT"], data)

    def close(self):
        if self.source is not None:
            self.source.close()
            self.source = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
