"""The floors `nanvix bench` compares nanvix against, each doing the same work as the figure it
stands beside, measured in the same run: a bare KVM VM created and run to its first exit (what any
VM-per-invocation start costs), a static program spawned and waited for with its output read
(what the echo function does, as a host process), gVisor's `runsc do` (skipped, with the reason,
where it is absent), a pipe round trip to another process (the host's IPC floor) and a bare VM
close."""
import json
import os
import shutil
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def us(t0):
    return (time.perf_counter_ns() - t0) / 1000


class BareKvm:
    """Create a VM, map 2 MiB of copy-on-write memory plus the low pages and a channel page, one
    vCPU, set its registers, run to the first exit (a one-instruction 64-bit CPL3 guest); then,
    apart, close it."""

    def __init__(self, kvm):
        from nanvix.impl.control import uvm as U
        from nanvix.impl.kvm import Memory, memfd
        self.U, self.Memory, self.kvm = U, Memory, kvm
        A = self.A = U.A
        self.fd = memfd("floor", A["LOW_SIZE"] + A["PAGE_2M"])
        self.tpl = Memory(A["LOW_SIZE"] + A["PAGE_2M"], self.fd, True)
        self.limit = U.lay_out(self.tpl, A["PAGE_2M"], 1)
        self.tpl.write(A["LOW_SIZE"], bytes([0xE5, A["PORT_HYPERCALL"]]))  # in eax, port
        self.chan_fd = memfd("floor-chan", A["CHANNEL_SIZE"])
        self.chan = Memory(A["CHANNEL_SIZE"], self.chan_fd, True)

    def start(self):
        """(microseconds to the first exit, the VM and its memory, to close apart)."""
        A = self.A
        t0 = time.perf_counter_ns()
        vm = self.kvm.create_vm()
        mem = self.Memory(self.tpl.size, self.fd, False)
        vm.set_memory(0, 0, mem, 0, A["LOW_SIZE"])
        vm.set_memory(1, A["GPA_CHANNEL"], self.chan)
        vm.set_memory(2, A["GPA_RAM"], mem, A["LOW_SIZE"], A["PAGE_2M"])
        v = vm.create_vcpu(0)
        self.U.set_cpu_state(v, self.limit)
        v.set_regs(rip=A["GPA_RAM"], rflags=2)
        v.run_once()
        return us(t0), (vm, mem)

    @staticmethod
    def close(held):
        vm, mem = held
        t0 = time.perf_counter_ns()
        vm.close()
        mem.close()
        return us(t0)

    def shutdown(self):
        self.chan.close()
        self.tpl.close()
        os.close(self.fd)
        os.close(self.chan_fd)


def floor_binary(cache, name, static=False):
    """A floor's C program (guests/NAME.c), built once into the cache."""
    out = os.path.join(cache, "floor-" + name)
    if not os.path.exists(out):
        import nanvix.impl.abi as abi
        tmp = out + ".%d" % os.getpid()
        subprocess.run(["gcc", "-O2"] + (["-static"] if static else []) + ["-I", os.path.dirname(abi.__file__), "-o", tmp,
                        os.path.join(HERE, "guests", name + ".c")], check=True, capture_output=True)
        os.rename(tmp, out)
    return out


class DoorbellFloor:
    """The bench's ping guest in a VM of its own whose channel is answered by floor_server.c (the
    least a system VM can be: C, answering 0, polling as the system VM does, then sleeping on
    the doorbell eventfd). Its vCPU runs in the calling thread; a guest that parks is simply
    run again (a host with nothing else to do)."""

    def __init__(self, kvm, image, cache):
        from nanvix.impl.abi import ABI
        from nanvix.impl.control.uvm import Template
        from nanvix.impl.kvm import Memory, memfd
        self.ABI = ABI
        self.tpl = Template(kvm, image)
        self.chan_fd = memfd("floor-channel", ABI["CHANNEL_SIZE"])
        self.chan = Memory(ABI["CHANNEL_SIZE"], self.chan_fd, True)
        self.bell = os.eventfd(0, os.EFD_CLOEXEC)
        self.vm = kvm.create_vm()
        self.mem, self.vcpu = self.tpl.instantiate(self.vm, self.chan, self.bell)
        self.server = floor_binary(cache, "floor_server")
        self.proc = None

    def ping(self, data):
        """Run the guest from its snapshot to its end with input data, against a fresh server;
        its result (JSON)."""
        from nanvix.impl.channel import init_channel
        from nanvix.impl.kvm import EXIT_IO
        A = self.ABI
        self._stop()
        self.tpl.reset(self.mem, self.vcpu)
        init_channel(self.chan)
        self.proc = subprocess.Popen([self.server, str(self.chan_fd), str(self.bell)],
                                     pass_fds=[self.chan_fd, self.bell])
        self.tpl.write_input(self.mem, data)
        while True:
            reason = self.vcpu.run_once(10_000_000_000)
            if reason != EXIT_IO or self.vcpu.io_port != A["PORT_HYPERCALL"]:
                raise RuntimeError("the doorbell floor's guest stopped: %r" % self.vcpu.exit_info())
            nr = self.vcpu.reg("rax") & 0xFFFFFFFF
            if nr == A["HC_EXIT"]:
                info = A["GPA_INFO"]
                n = self.mem.u32(info + A["INFO_RESULT_LEN"])
                return json.loads(self.mem.read(info + A["INFO_RESULT"], n))
            self.vcpu.answer_io(0)  # NX_HC_WAIT: run it again at once

    def _stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self):
        self._stop()
        self.vm.close()
        self.mem.close()
        self.chan.close()
        self.tpl.close()
        os.close(self.chan_fd)
        os.close(self.bell)


def static_echo(cache):
    """The static echo program, built once (gcc -static) into the cache."""
    return floor_binary(cache, "floor_echo", static=True)


def spawn_echo(path, data):
    """posix_spawn the static echo, read its output through a pipe, wait for it."""
    r, w = os.pipe()
    t0 = time.perf_counter_ns()
    fa = [(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)]
    pid = os.posix_spawn(path, [path, data], {}, file_actions=fa)
    os.close(w)
    got = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        got += b
    os.waitpid(pid, 0)
    dt = us(t0)
    os.close(r)
    if got != data.encode():
        raise RuntimeError("the spawn floor echoed %r" % got)
    return dt


def runsc():
    """The `runsc` command, or (None, why not)."""
    path = shutil.which("runsc")
    if path is None:
        return None, "runsc is not installed (Debian package runsc)"
    if os.geteuid() != 0:
        return None, "runsc do needs root"
    return path, ""


def runsc_echo(path, data):
    t0 = time.perf_counter_ns()
    p = subprocess.run([path, "--platform=ptrace", "--network=none", "do", "echo", "-n", data],
                       capture_output=True, timeout=30)
    dt = us(t0)
    if p.returncode != 0 or p.stdout != data.encode():
        raise RuntimeError("runsc do failed: %s" % p.stderr.decode(errors="replace")[-200:])
    return dt


class Pipe:
    """Round trips of one byte through a pipe pair to a forked process."""

    def __init__(self):
        self.a_r, self.a_w = os.pipe()
        self.b_r, self.b_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.a_w)
            os.close(self.b_r)
            while os.read(self.a_r, 1):
                os.write(self.b_w, b"x")
            os._exit(0)
        os.close(self.a_r)
        os.close(self.b_w)

    def round_trip_ns(self):
        t0 = time.perf_counter_ns()
        os.write(self.a_w, b"x")
        os.read(self.b_r, 1)
        return time.perf_counter_ns() - t0

    def close(self):
        os.close(self.a_w)
        os.waitpid(self.pid, 0)
        os.close(self.b_r)


def process_cpu_s(pid):
    """CPU seconds (user + system) a process has used, 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# What /proc/meminfo says the kernel holds, by kind (KiB): the memory figure's split. "rest" is
# the fall in MemFree that no listed kind explains: pages the kernel took with no counter, such
# as KVM's per-vCPU MMU caches that shadow paging fills at the first fault (40 pages each, a
# cache of shadow pages and one of their tracking pages); below zero when the kernel freed other
# memory meanwhile (page cache).
MEMINFO_KINDS = {"user (anon, shmem)": ("AnonPages", "Shmem"), "slab": ("Slab",), "kernel stacks": ("KernelStack",),
                 "page tables (own, KVM's)": ("PageTables", "SecPageTables"), "vmalloc": ("VmallocUsed",)}


def meminfo_kib():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def memory_split(before, after, n):
    """KiB per VM by kind between two meminfo_kib() readings over n VMs."""
    d = lambda k: after.get(k, 0) - before.get(k, 0)
    split = {kind: round(sum(d(k) for k in keys) / n, 1) for kind, keys in MEMINFO_KINDS.items()}
    split["rest"] = round(-d("MemFree") / n - sum(split.values()), 1)
    return split


def mem_available_kib():
    return meminfo_kib().get("MemAvailable", 0)


class ChargedMemory:
    """Memory charged to this process from now on, user and kernel alike (KVM's vCPU, memory-slot
    and shadow-page allocations are charged to the memory cgroup of the process that makes
    them): the process moves into a cgroup of its own below its current one for the duration, so
    other work on the host does not land in the figure. `available` is False where the cgroup
    v1 memory controller cannot be used."""
    ROOT = "/sys/fs/cgroup/memory"

    def __init__(self):
        self.path = self.home = None
        try:
            with open("/proc/self/cgroup") as f:
                here = next(l.split(":", 2)[2].strip() for l in f if l.split(":")[1] == "memory")
            self.home = os.path.join(self.ROOT, here.lstrip("/"))
            path = os.path.join(self.home, "nanvix-bench-%d" % os.getpid())
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            self.path = path
        except (OSError, StopIteration, IndexError):
            self.close()

    @property
    def available(self):
        return self.path is not None

    def usage_kib(self):
        with open(os.path.join(self.path, "memory.usage_in_bytes")) as f:
            return int(f.read()) / 1024

    def close(self):
        if self.home is not None:
            try:
                with open(os.path.join(self.home, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass
        if self.path is not None:
            for _ in range(50):  # (its charges go to the parent; an rmdir may wait for that)
                try:
                    os.rmdir(self.path)
                    break
                except OSError:
                    time.sleep(0.1)
        self.path = None
