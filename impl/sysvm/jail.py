"""The system VM's jail, modelled on Firecracker's jailer.

On this machine the system VM's macro-kernel is the host's own Linux, so the process that serves a
tenant is confined before it reads a byte from any guest. `enter()` runs in the (single-threaded)
system VM process after everything it needs is loaded, and leaves it:

- in the tenant's cgroup (memory, CPU and task limits; made by the control plane, `Cgroup`);
- in new mount, pid, ipc, uts, network and cgroup namespaces: it sees no other process and has no
  network (a loopback that is down); the process that serves is pid 1 of its own pid namespace, its
  parent (the warden, outside) only waits for it, and takes it down if the warden itself dies;
- with the tenant's directory as its whole filesystem (pivot_root into a bind mount of it, mounted
  nosuid, nodev, noexec): no other tenant's tree, no /dev, /proc or host file exists there;
- as the tenant's own uid and gid, no supplementary groups, no capabilities (bounding and ambient
  sets emptied), no_new_privs;
- under Landlock (read, write and make only beneath that root, no TCP, no signals or abstract
  sockets outside its domain) and a seccomp allow-list of the syscalls it serves with;
- with rlimits (no core dumps, no new processes, few files, no file larger than the tenant's limit)
  and an empty environment.

What it does not stop: the system VM shares the host kernel, so a kernel bug reachable through the
allowed syscalls is a way out; its CPU and memory are bounded by its cgroup, not isolated. See the
README's threat model.
"""
import collections
import ctypes
import fcntl
import resource
import errno
import os
import re
import select
import signal
import struct
import threading
import sys

from nanvix.impl.sysvm.syscalls import install as install_seccomp

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 38, 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SYS_pivot_root = 155
SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self = 444, 445, 446
HOSTNAME = b"nanvix-sysvm"

# Landlock access rights (uapi/linux/landlock.h), by the ABI version that introduced them.
LL_FS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
LL_READ_FILE, LL_WRITE_FILE, LL_READ_DIR, LL_REMOVE_DIR, LL_REMOVE_FILE = 4, 2, 8, 16, 32
LL_MAKE_DIR, LL_MAKE_REG, LL_REFER, LL_TRUNCATE = 128, 256, 1 << 13, 1 << 14
LL_NET_ALL = 3                  # bind and connect TCP (ABI 4)
LL_SCOPE_ALL = 3                # abstract unix sockets and signals (ABI 6)


class JailError(OSError):
    """The jail could not be set up: the system VM must not serve unconfined."""


def _check(ret, what):
    if ret < 0:
        e = ctypes.get_errno()
        raise JailError(e, "%s: %s" % (what, os.strerror(e)))
    return ret


def _prctl(*args):
    return _check(_libc.prctl(*[ctypes.c_ulong(a) for a in args]), "prctl(%d)" % args[0])


def _mount(src, target, fstype, flags):
    enc = lambda s: s.encode() if isinstance(s, str) else s
    return _check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), None),
                  "mount %s" % target)


# -- the cgroup (the control plane makes it and sets its limits; the jailed process joins it) -----
class Cgroup:
    """A tenant's cgroup: v1 controllers memory, cpu and pids where the host mounts them so (this
    machine), else the unified v2 hierarchy. Named per host home, so two hosts on one machine
    never share one."""
    ROOT = "/sys/fs/cgroup"
    # Every system VM's cpu group sits in this one (v1 cpu hierarchy: nanvix/sysvm/<name>), capped
    # at this share of the machine's cores together: the guests' vCPUs run at SCHED_IDLE beside it
    # (see place_host), so the system VMs take the cores first, yet never all of them.
    SYSVMS_CORES = 0.75

    def __init__(self, name):
        self.name = name
        self.claimed = False   # (this instance's claim: see Owners)
        self.v1 = self.is_v1()
        ctrls = ("memory", "cpu", "pids") if self.v1 else ("",)
        if self.v1 and os.path.isdir(os.path.join(self.ROOT, "cpuacct")) and not os.path.samefile(
                os.path.join(self.ROOT, "cpuacct"), os.path.join(self.ROOT, "cpu")):
            ctrls += ("cpuacct",)   # (accounting only: where cpu and cpuacct are mounted apart)
        self.dirs = [os.path.join(self.ROOT, c, "nanvix", "sysvm" if c == "cpu" else "", name) for c in ctrls]

    @classmethod
    def is_v1(cls):
        return os.path.isdir(os.path.join(cls.ROOT, "memory")) and not os.path.exists(
            os.path.join(cls.ROOT, "cgroup.controllers"))

    @property
    def available(self):
        return all(os.path.isdir(os.path.dirname(os.path.dirname(d))) for d in self.dirs) and os.access(self.ROOT, os.W_OK)

    def create(self, memory, cpu, pids):
        with Owners() as owners:   # (claimed first: a sweep never takes a group being made)
            if not self.claimed:
                owners.claim(self.name)
                self.claimed = True
            return self._create(memory, cpu, pids)

    def _create(self, memory, cpu, pids):
        if self.v1:
            sysvms = os.path.dirname(self.dirs[1])
            os.makedirs(sysvms, exist_ok=True)
            self._write(sysvms, "cpu.cfs_period_us", 100_000)
            self._write(sysvms, "cpu.cfs_quota_us", max(1000, int(self.SYSVMS_CORES * (os.cpu_count() or 1) * 100_000)))
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)
        if self.v1:
            mem, cpud, pidd = self.dirs[:3]
            self._write(mem, "memory.limit_in_bytes", memory)
            self._write(cpud, "cpu.cfs_period_us", 100_000)
            self._write(cpud, "cpu.cfs_quota_us", max(1000, int(cpu * 100_000)))
            self._write(pidd, "pids.max", pids)
        else:
            d = self.dirs[0]
            self._write(d, "memory.max", memory)
            self._write(d, "cpu.max", "%d 100000" % max(1000, int(cpu * 100_000)))
            self._write(d, "pids.max", pids)
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    @staticmethod
    def _write(d, name, value):
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write(str(value))
        except OSError as e:
            if e.errno != errno.ENOENT:  # (a controller knob this kernel lacks)
                raise

    @staticmethod
    def _read(d, name):
        try:
            with open(os.path.join(d, name)) as f:
                return f.read()
        except OSError:
            return None

    def cpu_ns(self):
        """The CPU time its tasks have used (ns), or None where the host does not account it."""
        if self.v1:
            acct = self._read(self.dirs[3] if len(self.dirs) > 3 else self.dirs[1], "cpuacct.usage")
            return int(acct) if acct else None
        for line in (self._read(self.dirs[0], "cpu.stat") or "").splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) * 1000
        return None

    def tasks(self):
        """The ids of the threads in the group (its cpu controller's)."""
        got = self._read(self.dirs[1], "tasks") if self.v1 else self._read(self.dirs[0], "cgroup.threads")
        return [int(x) for x in (got or "").split()]

    def usage(self):
        """Memory in use (bytes), CPU used (ns, when the host accounts it) and tasks, as read."""
        read = self._read
        out = {}
        if self.v1:
            mem, cpud, pidd = self.dirs[:3]
            m, p = read(mem, "memory.usage_in_bytes"), read(pidd, "pids.current")
            throttled = read(cpud, "cpu.stat")
        else:
            d = self.dirs[0]
            m, p, throttled = read(d, "memory.current"), read(d, "pids.current"), read(d, "cpu.stat")
        out["sysvm_memory"] = int(m) if m else None
        out["sysvm_tasks"] = int(p) if p else None
        out["sysvm_cpu_ns"] = self.cpu_ns()
        if throttled:
            for line in throttled.splitlines():
                if line.startswith("nr_throttled"):
                    out["sysvm_cpu_throttled"] = int(line.split()[1])
        return out

    def remove(self):
        """This host is done with the group: removed unless another live host has claimed the
        same name (a second process on the same home). One that still has a task stays, without
        this host's claim, for a later sweep."""
        if not self.claimed:
            return   # (this one made none)
        with Owners() as owners:
            owners.unclaim(self.name)
            self.claimed = False
            if not owners.live(self.name):
                owners.remove_dirs(self.name, self.dirs)

    @classmethod
    def dirs_of(cls, name):
        return cls(name).dirs


# -- who owns which group: a registry in /run, gone with the cgroups on a reboot --------------------
def _start_time(pid):
    """The process's start time (clock ticks since boot: /proc/<pid>/stat field 22), or None if
    there is no such process. With the pid, it names one process: a pid reused later differs."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


_claims = collections.Counter()   # name -> this process's claims (changed under the Owners lock)


def _pid_ns():
    """The inode of this process's pid namespace: a pid means a process only within one."""
    return os.stat("/proc/self/ns/pid").st_ino


class Owners:
    """The hosts that use each tenant cgroup: REGISTRY/<group name>/<pid ns>-<pid>-<start time>,
    one empty file per host process. A host claims a name before it makes the group and drops its
    claim when it removes it; a host killed (kill -9) leaves its claim, which names a process
    that no longer exists. sweep() removes the groups whose every claimant is dead, under the
    same lock as a claim, so a group a live host uses or is about to use is never taken: it has
    a live claimant. rmdir is the last guard: the kernel refuses (EBUSY) a group with a task.
    Groups nothing claims (made before this registry) are left alone: nothing says they are free;
    so are those a host in another pid namespace claims (its pid means nothing here)."""
    REGISTRY = "/run/nanvix/cgroups"
    NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
    OWNER = re.compile(r"([0-9]{1,20})-([0-9]{1,10})-([0-9]{1,20})")   # pid namespace, pid, start

    def __enter__(self):
        os.makedirs(self.REGISTRY, mode=0o700, exist_ok=True)
        self.fd = os.open(os.path.join(os.path.dirname(self.REGISTRY), "cgroups.lock"),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)   # (the lock goes with it)

    @staticmethod
    def me():
        pid = os.getpid()
        return "%d-%d-%d" % (_pid_ns(), pid, _start_time(pid))

    def _dir(self, name):
        if not self.NAME.fullmatch(name):
            raise ValueError("not a cgroup name: %r" % (name,))
        return os.path.join(self.REGISTRY, name)

    def claim(self, name):
        d = self._dir(name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.close(os.open(os.path.join(d, self.me()), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        _claims[name] += 1

    def unclaim(self, name):
        """Drop one of this process's claims on name; its file goes with the last (two runtimes
        of one process on one home share the name)."""
        if _claims[name] > 1:
            _claims[name] -= 1
            return
        _claims.pop(name, None)
        try:
            os.unlink(os.path.join(self._dir(name), self.me()))
        except FileNotFoundError:
            pass

    def live(self, name):
        """The claimants of name that are running processes (the dead ones' claims dropped)."""
        try:
            claims = os.listdir(self._dir(name))
        except FileNotFoundError:
            return []
        alive = []
        for c in claims:
            m = self.OWNER.fullmatch(c)
            if m and (int(m.group(1)) != _pid_ns()   # (another pid namespace's: cannot tell, kept)
                      or _start_time(int(m.group(2))) == int(m.group(3))):
                alive.append(c)
            else:
                os.unlink(os.path.join(self._dir(name), c))
        return alive

    def remove_dirs(self, name, dirs):
        """rmdir the group's directories (none claimed live: checked by the caller, under this
        lock); its registry entry goes once they all are gone. True if they are."""
        gone = True
        for d in dirs:
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                gone = False   # (EBUSY: a task is still in it; a later sweep tries again)
        if gone:
            try:
                os.rmdir(self._dir(name))
            except OSError:
                pass
        return gone

    def sweep(self):
        """Remove the groups whose claimants are all dead. Returns the names removed."""
        removed = []
        try:
            names = os.listdir(self.REGISTRY)
        except FileNotFoundError:
            return removed
        for name in names:
            if self.NAME.fullmatch(name) and not self.live(name):
                if self.remove_dirs(name, Cgroup.dirs_of(name)):
                    removed.append(name)
        return removed


def sweep_cgroups():
    """At a host's start: the tenant cgroups left by hosts that died (see Owners). Returns the
    names removed; nothing where this process cannot manage cgroups."""
    if not os.access(Cgroup.ROOT, os.W_OK) or not os.access("/run", os.W_OK):
        return []
    try:
        with Owners() as owners:
            return owners.sweep()
    except OSError:
        return []   # (no registry to keep here: nothing was claimed either)


# -- the host's own place: its threads beside the system VMs' group, its guests at SCHED_IDLE -----
_placed = {"count": 0, "back": None}
_placed_lock = threading.Lock()


# The real-time time the host's threads may take, per CPU per second, in its v1 cpu group: a
# core's thread is real-time only from a kick to its leaving KVM_RUN (sched.pyx, NX_KICKED), tens
# of us each; past the budget the kernel holds them back, so it is set well above what they use.
HOST_RT_US = 100_000


def _rt_budget(d):
    """Let the threads of cpu group d be real-time for HOST_RT_US per second (v1 with real-time
    group scheduling; a child group has none by default). Without it a kick lifts a core's thread
    to SCHED_OTHER only."""
    path = os.path.join(d, "cpu.rt_runtime_us")
    try:
        with open(path) as f:
            if int(f.read()) >= HOST_RT_US:
                return
        with open(path, "w") as f:
            f.write(str(HOST_RT_US))
    except (OSError, ValueError):
        pass   # (no real-time group scheduling, or no budget left above: kicks do without)


def place_host():
    """Put this (host) process's threads in the cpu cgroup that holds the system VMs' group
    (v1: nanvix/). The kernel weighs a waking thread against the running one at the level where
    their cgroup paths meet; only there does a running SCHED_IDLE thread give way at once. The
    scheduler runs guest code at SCHED_IDLE (sched.pyx), so with the host beside the system VMs
    a system VM, the waker or an invoker that wakes takes a core from a computing guest at once,
    not after the guest's slice. Counted: the last unplace_host() puts the process back where it
    was. Returns the cgroup joined, or None (cgroup v2, or no cgroup to write)."""
    if not Cgroup.is_v1() or not os.access(os.path.join(Cgroup.ROOT, "cpu"), os.W_OK):
        return None
    d = os.path.join(Cgroup.ROOT, "cpu", "nanvix")
    with _placed_lock:
        if _placed["count"] == 0:
            back = None
            with open("/proc/self/cgroup") as f:
                for line in f:
                    _, ctrls, path = line.rstrip("\n").split(":", 2)
                    if "cpu" in ctrls.split(","):
                        back = os.path.join(Cgroup.ROOT, "cpu", path.lstrip("/"))
            try:
                os.makedirs(d, exist_ok=True)
                _rt_budget(d)
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                return None   # (a host whose cgroups are read-only to it: guests yield to its threads only)
            _placed["back"] = back
        _placed["count"] += 1
    return d


def unplace_host():
    with _placed_lock:
        if _placed["count"] == 0:
            return
        _placed["count"] -= 1
        if _placed["count"] == 0 and _placed["back"]:
            try:
                with open(os.path.join(_placed["back"], "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass   # (its old group is gone: it stays beside the system VMs)


# -- inside the jailed process ----------------------------------------------------------------
def _landlock():
    """Only the filesystem view's root, beneath; no TCP; no signals or abstract sockets out.
    Returns the ABI version used (0: the kernel has no Landlock)."""
    abi = _libc.syscall(SYS_landlock_create_ruleset, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs = LL_FS[max(v for v in LL_FS if v <= abi)]
    if abi >= 6:
        attr, size = struct.pack("<QQQ", fs, LL_NET_ALL, LL_SCOPE_ALL), 24
    elif abi >= 4:
        attr, size = struct.pack("<QQ", fs, LL_NET_ALL), 16
    else:
        attr, size = struct.pack("<Q", fs), 8
    buf = ctypes.create_string_buffer(attr, len(attr))
    rs = _check(_libc.syscall(SYS_landlock_create_ruleset, buf, ctypes.c_size_t(size), ctypes.c_uint32(0)),
                "landlock_create_ruleset")
    allowed = (LL_READ_FILE | LL_WRITE_FILE | LL_READ_DIR | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_DIR
               | LL_MAKE_REG | (LL_REFER if abi >= 2 else 0) | (LL_TRUNCATE if abi >= 3 else 0))
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    rule = ctypes.create_string_buffer(struct.pack("<Qi", allowed, root), 12)
    try:
        _check(_libc.syscall(SYS_landlock_add_rule, ctypes.c_int(rs), ctypes.c_int(1), rule, ctypes.c_uint32(0)),
               "landlock_add_rule")
        _check(_libc.syscall(SYS_landlock_restrict_self, ctypes.c_int(rs), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(root)
        os.close(rs)
    return abi


def _view(root):
    """Make the tenant's directory the whole filesystem: a private mount tree, the directory
    bind-mounted onto itself (nosuid, nodev, noexec) and pivoted into; the old root detached."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(root, root, None, MS_BIND | MS_REC)
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    _check(_libc.syscall(SYS_pivot_root, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def _cap_last():
    last = 40
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except OSError:
        pass
    return last


def _drop_privileges(uid, gid, last_cap):
    for cap in range(last_cap + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)   # from root to a uid: permitted and effective capabilities cleared
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise JailError(errno.EPERM, "credentials did not change")
    _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _rlimits(file_size, nofile):
    for res, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 0),
                       (resource.RLIMIT_NOFILE, nofile), (resource.RLIMIT_FSIZE, file_size),
                       (resource.RLIMIT_MEMLOCK, 0), (resource.RLIMIT_MSGQUEUE, 0)):
        resource.setrlimit(res, (value, value))
    # a write past RLIMIT_FSIZE fails with EFBIG instead of killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _warden(child, uid, gid):
    """The parent outside the namespaces: unprivileged, it waits for the system VM and exits with
    its status (the control plane watches this process; killing it kills the system VM)."""
    try:
        os.closerange(3, 1 << 16)
        _drop_privileges(uid, gid, _cap_last())   # (the bounding set too: it keeps nothing)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        os._exit(os.waitstatus_to_exitcode(status) & 0xff if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    except BaseException:
        os._exit(125)


def enter(root, uid, gid, cgroup_procs=(), file_size=64 << 20, nofile=64, seccomp=True):
    """Confine this process for good (see the module's doc). root: the tenant's directory (host
    path); cgroup_procs: the cgroup.procs files to join. Returns what was applied (the jail facts).
    Raises JailError when a part cannot be applied: the caller must then not serve."""
    if not os.path.isdir(root):
        raise JailError(errno.ENOENT, "no directory %s" % root)
    last_cap = _cap_last()
    for procs in cgroup_procs:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET
                         | CLONE_NEWCGROUP), "unshare")
    parent = os.pidfd_open(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()   # the first process in the new pid namespace: pid 1 there
    if child:
        _warden(child, uid, gid)
    _check(_libc.sethostname(HOSTNAME, len(HOSTNAME)), "sethostname")
    _view(root)
    _rlimits(file_size, nofile)
    _drop_privileges(uid, gid, last_cap)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # (after the credentials change, which clears it)
    if select.select([parent], [], [], 0)[0]:  # the warden died before we asked: go too
        os._exit(1)
    os.close(parent)
    landlock = _landlock()
    os.environ.clear()
    if seccomp:
        install_seccomp()
    return {"uid": uid, "gid": gid, "pid_ns_pid": os.getpid(), "landlock_abi": landlock,
            "seccomp": bool(seccomp), "cgroups": len(cgroup_procs)}
