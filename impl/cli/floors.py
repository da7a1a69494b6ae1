"""The floors `nanvix bench` compares nanvix against, measured in the same run: the work any design
of the kind must do (a bare KVM VM created and run to its first exit, a process forked and
exec'd, a pipe round trip to another process)."""
import os
import subprocess
import time


def bare_kvm(kvm, n):
    """Bare KVM: create a VM, map 2 MiB of copy-on-write memory, one vCPU, set registers, run to
    the first exit (a one-instruction 64-bit CPL3 guest). The floor any VM-per-invocation design
    pays; the nanvix start adds the channel, the system VM attach and the input, and saves the
    VM creation through its pool."""
    from nanvix.impl.control import uvm as U
    from nanvix.impl.kvm import Memory, memfd
    A = U.A
    times = []
    fd = memfd("floor", A["LOW_SIZE"] + A["PAGE_2M"])
    tpl = Memory(A["LOW_SIZE"] + A["PAGE_2M"], fd, True)
    lim = U.lay_out(tpl, A["PAGE_2M"], 1)
    tpl.write(A["LOW_SIZE"], bytes([0xE5, A["PORT_HYPERCALL"]]))  # in eax, port
    chan_fd = memfd("floor-chan", A["CHANNEL_SIZE"])
    chan = Memory(A["CHANNEL_SIZE"], chan_fd, True)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        vm = kvm.create_vm()
        mem = Memory(tpl.size, fd, False)
        vm.set_memory(0, 0, mem, 0, A["LOW_SIZE"])
        vm.set_memory(1, A["GPA_CHANNEL"], chan)
        vm.set_memory(2, A["GPA_RAM"], mem, A["LOW_SIZE"], A["PAGE_2M"])
        v = vm.create_vcpu(0)
        U.set_cpu_state(v, lim)
        v.set_regs(rip=A["GPA_RAM"], rflags=2)
        v.run_once()
        times.append((time.perf_counter_ns() - t0) / 1000)
        vm.close()  # destroying the VM is off the clock, as it is for an invocation
        mem.close()
    chan.close()
    tpl.close()
    os.close(fd)
    os.close(chan_fd)
    return times


def fork_exec(n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        subprocess.run(["/bin/true"])
        times.append((time.perf_counter_ns() - t0) / 1000)
    return times


def pipe_round_trip(n):
    """Round trip through a pipe pair to a forked process: the host IPC floor."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(a_w)
        os.close(b_r)
        while os.read(a_r, 1):
            os.write(b_w, b"x")
        os._exit(0)
    os.close(a_r)
    os.close(b_w)
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        os.write(a_w, b"x")
        os.read(b_r, 1)
        times.append(time.perf_counter_ns() - t0)
    os.close(a_w)
    os.waitpid(pid, 0)
    os.close(b_r)
    return times


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0
