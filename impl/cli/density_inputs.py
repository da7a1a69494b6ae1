"""What the density model (`nanvix density`, model/) needs to know about this host, measured here.

measure() runs a small nanvix host of its own and returns {"values": {...}, "how": {...}, "limits":
{...}, "notes": [...]}: `nanvix bench --json` carries it as `density_inputs`, and `nanvix density`
calls it when given no bench output. Memory is counted three ways where it can be, because each
misses something:
- the memory charged to this process's memory cgroup before and after (user VMs, ready user VMs,
  processes, extra system VMs): kernel memory included (KVM's, page tables, kernel stacks), and
  only this process and its children (the host's MemAvailable, the fallback where the cgroup
  cannot be read, moves with every other process on a shared machine). A system VM moves itself
  into its tenant's cgroup once jailed: what it allocates there is read from that cgroup;
- USS, the pages only this process maps (Private_Clean + Private_Dirty of smaps_rollup) plus its
  page tables (VmPTE): what its exit would free, kernel objects aside;
- PSS (shared pages split among the processes mapping them) and RSS (shared pages counted whole),
  reported beside them: RSS overstates a process's cost wherever libraries are shared, PSS
  depends on how many others share them.
A system VM is two processes (its warden and the jailed server); both are counted.
"""
import os
import resource
import statistics
import subprocess
import tempfile
import time

from nanvix.impl.cli import floors as F
from nanvix.impl.cli.run import example

GUESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guests")


def smaps(pid):
    """{rss, pss, uss, pte} in KiB of one process (zeros if it is gone)."""
    out = {"rss": 0, "pss": 0, "uss": 0, "pte": 0}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss"):
                    out[k.lower()] += int(v.split()[0])
                elif k in ("Private_Clean", "Private_Dirty"):
                    out["uss"] += int(v.split()[0])
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    out["pte"] = int(line.split()[1])
    except OSError:
        pass
    return out


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def memory_of(pids):
    tot = {"rss": 0, "pss": 0, "uss": 0, "pte": 0}
    for p in pids:
        for k, v in smaps(p).items():
            tot[k] += v
    return tot


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def own_cgroup():
    """memory.usage_in_bytes of this process's memory cgroup (v1 or v2), or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrl, path = line.rstrip("\n").split(":", 2)
                for c, name in (("memory", "memory/%s/memory.usage_in_bytes"), ("", "%s/memory.current")):
                    if ctrl == c:
                        p = os.path.join("/sys/fs/cgroup", name % path.strip("/"))
                        if os.path.exists(p):
                            return p
    except OSError:
        pass
    return None


COUNTER = own_cgroup()


def settle():
    """KiB in use, as this process's cgroup counts it (else the host's MemTotal - MemAvailable)."""
    time.sleep(0.3)
    if COUNTER:
        try:
            with open(COUNTER) as f:
                return int(f.read()) / 1024
        except OSError:
            pass
    return -F.mem_available_kib()


def limits():
    """The per-process and host limits a live-VM ceiling runs into (REFERENCE.md section 5)."""
    def read(path):
        try:
            with open(path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    with open("/proc/meminfo") as f:
        total = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    return {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1], "max_map_count": read("/proc/sys/vm/max_map_count"),
            "file_max": read("/proc/sys/fs/file-max"), "pid_max": read("/proc/sys/kernel/pid_max"),
            "mem_total_kib": total, "cores": os.cpu_count()}


def cgroup_kib(tenant):
    """What a tenant's system VM allocated once in its own cgroup."""
    cg = tenant.sysvm.cgroup
    return ((cg.usage().get("sysvm_memory") or 0) / 1024) if cg.available else 0.0


def nanvix_costs(home, n, hold, extra_tenants, ready):
    """Start, CPU, templates, system VMs, user VMs that have run and ready ones, on a host of its own."""
    from nanvix.impl.control.runtime import Runtime
    from nanvix.impl.control.uvm import Template
    v, how, notes = {}, {}, []
    quota = hold + ready + 64
    with Runtime(home=os.path.join(home, "a"), cores=2, quota_uvms=quota, quota_pages=quota + 256,
                 arena_slots=quota, max_pages=quota + 256) as rt:
        echo = rt.load(example("echo.c"))
        t0 = time.perf_counter_ns()
        rt.system_vm("dens0")
        v["sysvm_start_us"] = F.us(t0)
        how["sysvm_start_us"] = "the first tenant's system VM started (a jailed process, spawned and handshaken)"
        builds, kib = [], []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            tpl = Template(rt.kvm, echo, rt.ram_size)
            builds.append(F.us(t0))
            kib.append(os.fstat(tpl.fd).st_blocks / 2)
            tpl.close()
        v["template_build_us"] = statistics.median(builds)
        v["template_kib"] = statistics.median(kib)
        how["template_build_us"] = "echo's image booted to NX_HC_READY and sealed (p50 of 5)"
        how["template_kib"] = "memory the sealed snapshot memfd holds (st_blocks), echo"
        for _ in range(20):
            rt.invoke("dens0", echo, b"warm")
        t = rt.tenants["dens0"]
        sysvm = [t.sysvm.pid, t.sysvm.server_pid]
        starts, walls = [], []
        cpu0 = time.process_time() + sum(cpu_seconds(p) for p in sysvm if p)
        w0 = time.perf_counter_ns()
        for _ in range(n):
            t0 = time.perf_counter_ns()
            r = rt.invoke("dens0", echo, b"hi")
            walls.append(F.us(t0))
            if r["status"] != "ok" or r["result"] != "hi":
                raise RuntimeError("echo failed while measuring: %r" % (r,))
            starts.append(r["start_us"])
        time.sleep(0.05)   # let the reaper reset the last ones
        cpu = time.process_time() + sum(cpu_seconds(p) for p in sysvm if p) - cpu0
        v["start_us"] = statistics.median(starts)
        how["start_us"] = "invoke -> the guest's first KVM_RUN (a ready user VM), p50 of %d" % n
        v["invoke_us"] = statistics.median(walls)
        v["cpu_us_per_invocation"] = cpu * 1e6 / n
        how["cpu_us_per_invocation"] = ("CPU of every thread of the control plane and of the system VM's "
                                        "processes over %d sequential echo invocations (start, run, "
                                        "reset), per invocation; %.0f us wall each" % (n, (time.perf_counter_ns() - w0) / 1000 / n))
        m = memory_of(p for p in sysvm if p)
        v["sysvm_uss_kib"], v["sysvm_pss_kib"], v["sysvm_rss_kib"] = m["uss"] + m["pte"], m["pss"], m["rss"]
        v["sysvm_cgroup_kib"] = cgroup_kib(t)
        # user VMs that have run, parked, in this process
        park = rt.load(os.path.join(GUESTS, "park.c"))
        rt.invoke("dens0", park, b"", 50)   # (its template and pool made before the baseline)
        fds0, maps0 = len(os.listdir("/proc/self/fd")), sum(1 for _ in open("/proc/self/maps"))
        used0 = settle()
        placed = rt.hold("dens0", park, hold, per_shard=hold + len(rt.uvms) + 1)
        kib = (settle() - used0) / hold
        parked = sum(placed.get(rt.shard_id, {}).values())
        v["fds_per_user_vm"] = (len(os.listdir("/proc/self/fd")) - fds0) / hold
        v["maps_per_user_vm"] = (sum(1 for _ in open("/proc/self/maps")) - maps0) / hold
        rt.drop_held()
        v["kib_per_user_vm"] = kib
        how["kib_per_user_vm"] = "memory charged per user VM that has run, %d held (parked) in one process" % parked
        v["ready_per_function"] = rt.ready_per_function
        how["ready_per_function"] = "the Runtime's setting"
        # more tenants, each served once: the marginal system VM as the host sees it (with the
        # tenant's template and ready user VMs, deducted in measure())
        used0 = settle()
        for i in range(1, extra_tenants + 1):
            rt.invoke("dens%d" % i, echo, b"x")
        v["sysvm_marginal_kib"] = (settle() - used0 + sum(cgroup_kib(rt.tenants["dens%d" % i]) for i in range(1, extra_tenants + 1))) / extra_tenants
    # ready user VMs (never run): a host that keeps `ready` of one function
    with Runtime(home=os.path.join(home, "b"), cores=1, quota_uvms=ready + 8, quota_pages=ready + 64,
                 arena_slots=ready + 8, ready_per_function=ready) as rt:
        echo = rt.load(example("echo.c"))
        t = rt.tenant("dens0")
        rt.system_vm("dens0")   # (ready user VMs are made for a tenant whose system VM runs)
        used0 = settle()
        rt.prepare("dens0", echo)
        end = time.monotonic() + 30
        while len(t.ready[echo["digest"]]) < ready and time.monotonic() < end:
            time.sleep(0.02)
        made = len(t.ready[echo["digest"]])
        if made:
            v["kib_per_ready_vm"] = max(0.0, (settle() - used0 - v["template_kib"]) / made)
            how["kib_per_ready_vm"] = "memory charged per ready user VM (never run), %d kept, template deducted" % made
        else:
            notes.append("no ready user VM was made within 30 s: kib_per_ready_vm not measured")
    return v, how, notes


def process_costs(home, n):
    """A static process blocked in read(2): what a process per invocation costs the host."""
    src = os.path.join(home, "wait.c")
    with open(src, "w") as f:
        f.write("#include <unistd.h>\nint main(void) { char c; return read(0, &c, 1) < 0; }\n")
    exe = os.path.join(home, "wait")
    subprocess.run(["gcc", "-O2", "-static", "-o", exe, src], check=True, capture_output=True)
    r, w = os.pipe()
    used0 = settle()
    pids = [os.posix_spawn(exe, [exe], {}, file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)]) for _ in range(n)]
    kib = (settle() - used0) / n
    own = memory_of(pids[:1])
    os.close(w)   # end of file: they all exit
    for p in pids:
        os.waitpid(p, 0)
    os.close(r)
    return kib, own["uss"] + own["pte"]


def gvisor_costs(runsc, home):
    """One gVisor sandbox (ptrace platform) running `sleep 3`: its processes' memory, read while
    it sleeps. It is left to end by itself: a killed `runsc do` leaves its cgroups behind."""
    p = subprocess.Popen([runsc, "--platform=ptrace", "--network=none", "do", "sleep", "3"], cwd=home,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        pids = []
        end = time.monotonic() + 2.5
        while time.monotonic() < end and p.poll() is None:   # up: runsc, gofer, sandbox, stub(s)
            pids = tree(p.pid)
            if len(pids) >= 4:
                time.sleep(0.5)
                pids = tree(p.pid)
                break
            time.sleep(0.05)
        return memory_of(pids), len(pids)
    finally:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait()


def measure(small=False, values=None):
    """The density model's inputs, measured here. small: a quick run (for `nanvix density`);
    values: `nanvix bench`'s figures (its start p50 is taken as it is)."""
    values = values or {}
    n, hold, tenants, ready, procs = (60, 100, 2, 16, 200) if small else (200, 300, 3, 48, 400)
    out = {"values": {}, "how": {}, "notes": [], "limits": limits()}
    v, how = out["values"], out["how"]
    with tempfile.TemporaryDirectory(prefix="nanvix-density-") as home:
        got, h, notes = nanvix_costs(home, n, hold, tenants, ready)
        v.update(got)
        how.update(h)
        out["notes"] += notes
        drop, own = process_costs(home, procs)
        v["process_kib"] = max(drop, own)
        how["process_kib"] = ("the larger of memory charged per static process blocked in read(2), %d at "
                              "once (%.0f KiB), and one's USS + page tables (%d KiB)" % (procs, drop, own))
        spawn = F.static_echo(home)
        v["spawn_us"] = statistics.median(F.spawn_echo(spawn, "hi") for _ in range(n))
        how["spawn_us"] = "posix_spawn + wait of a static echo, its output read (p50 of %d)" % n
        runsc, why = F.runsc()
        if runsc:
            m, k = gvisor_costs(runsc, home)
            v["gvisor_sandbox_kib"] = m["uss"] + m["pte"]
            v["gvisor_sandbox_pss_kib"], v["gvisor_sandbox_rss_kib"] = m["pss"], m["rss"]
            how["gvisor_sandbox_kib"] = ("USS + page tables of the %d processes of `runsc do sleep` (ptrace "
                                         "platform: runsc, gofer, sandbox, stubs); PSS %d KiB, RSS %d KiB"
                                         % (k, m["pss"], m["rss"]))
            if not small:
                v["gvisor_start_us"] = statistics.median(F.runsc_echo(runsc, "hi") for _ in range(3))
                how["gvisor_start_us"] = "runsc --platform=ptrace do echo, wall (p50 of 3)"
        else:
            out["notes"].append("gVisor not measured: %s" % why)
    # a system VM: the larger of what its processes account and what the host lost per tenant
    # (less that tenant's template and ready user VMs, which the model charges apart)
    v["sysvm_marginal_kib"] -= v["template_kib"] + v["ready_per_function"] * v.get("kib_per_ready_vm", 0.0)
    v["sysvm_kib"] = max(v["sysvm_uss_kib"], v["sysvm_marginal_kib"])
    how["sysvm_kib"] = ("the larger of its two processes' USS + page tables (%.0f KiB; PSS %.0f, RSS %.0f) and "
                        "memory charged per extra tenant served, less its template and ready user VMs "
                        "(%.0f KiB)" % (v["sysvm_uss_kib"], v["sysvm_pss_kib"], v["sysvm_rss_kib"], v["sysvm_marginal_kib"]))
    # the bench's start figure (more repetitions, interleaved with its floor); its MemAvailable
    # figure per user VM is kept beside ours (the host-wide counter moves with other processes)
    if isinstance(values.get("start_p50_us"), (int, float)) and values["start_p50_us"] > 0:
        v["start_us"] = values["start_p50_us"]
        how["start_us"] = "nanvix bench (start_p50_us)"
    if isinstance(values.get("kib_per_user_vm"), (int, float)):
        v["kib_per_user_vm_bench"] = values["kib_per_user_vm"]
    lim = out["limits"]
    per_process = min(lim["nofile"] / max(v["fds_per_user_vm"], 1e-9),
                      (lim["max_map_count"] or 65530) / max(v["maps_per_user_vm"], 1e-9))
    v["live_ceiling_per_process"] = int(per_process)
    how["live_ceiling_per_process"] = ("min(RLIMIT_NOFILE %d / %.2f fds, vm.max_map_count %s / %.2f mappings) "
                                       "per user VM" % (lim["nofile"], v["fds_per_user_vm"], lim["max_map_count"],
                                                        v["maps_per_user_vm"]))
    out["values"] = {k: round(x, 1) if isinstance(x, float) else x for k, x in v.items()}
    return out
