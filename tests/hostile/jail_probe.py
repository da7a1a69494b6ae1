"""A compromised system VM: the real system VM program, jailed exactly as a tenant's is (the same
`nanvix.impl.sysvm.server.main`, so the same jail), whose server also obeys an `attack` control
message: it tries one way out and answers what happened. An attack whose syscall seccomp kills
never answers; the test sees the process die of SIGSYS instead.

Run by tests/hostile/test_jail.py as the system VM of a tenant (see ProbeSystemVM there).
"""
import ctypes
import errno
import os
import signal
import socket
import sys
import time

from nanvix.impl.sysvm.server import Server, main

libc = ctypes.CDLL(None, use_errno=True)
SYS = {"ptrace": 101, "process_vm_readv": 310, "mount": 165, "chroot": 161, "setuid": 105,
       "unshare": 272, "memfd_create": 319, "bpf": 321, "io_uring_setup": 425, "kill": 62,
       "socket": 41, "execve": 59, "fork": 57, "mknodat": 259, "open_by_handle_at": 304,
       "symlinkat": 266, "linkat": 265, "ioctl": 16, "capget": 125, "setns": 308}
PROT_READ, PROT_WRITE, PROT_EXEC, MAP_PRIVATE, MAP_ANONYMOUS = 1, 2, 4, 2, 0x20


def sys_(name, *args):
    r = libc.syscall(ctypes.c_long(SYS[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return r, (ctypes.get_errno() if r < 0 else 0)


def opens(path, flags=os.O_RDONLY):
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        return {"errno": e.errno}
    try:
        data = os.read(fd, 64) if not flags & (os.O_WRONLY | os.O_RDWR) else b""
    except OSError as e:
        data = b"(read failed %d)" % e.errno
    os.close(fd)
    return {"opened": True, "data": data.hex()}


class ProbeServer(Server):
    def command(self, req, fds):
        if req.get("op") != "attack":
            return super().command(req, fds)
        return dict(self.attack(req["name"], req.get("args", {})), ok=True)

    def attack(self, name, a):
        if name == "open":                 # any path, as a host path or relative
            return opens(a["path"].encode(), a.get("flags", 0))
        if name == "listdir":
            try:
                return {"entries": sorted(x.decode(errors="replace") for x in os.listdir(a["path"].encode()))}
            except OSError as e:
                return {"errno": e.errno}
        if name == "spin":                 # keep a core busy, at whatever priority it was given
            end, n = time.monotonic() + a["seconds"], 0
            while time.monotonic() < end:
                n += 1
            return {"loops": n}
        if name == "write_own":            # the control: its own tree is writable
            with open(b"/files/probe.txt", "wb") as f:
                f.write(b"mine")
            return {"written": os.path.getsize(b"/files/probe.txt")}
        if name == "climb":                # .. from its root, many times, then the other tenant
            return opens(b"/" + b"../" * 20 + a["rest"].encode())
        if name == "raise_nofile":         # raise its own hard limit
            import resource
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
                return {"raised": True}
            except (OSError, ValueError) as e:
                return {"errno": getattr(e, "errno", None) or errno.EPERM}
        if name == "big_file":             # write past the jail's file-size limit
            fd = os.open(b"/files/big", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, b"x", a["offset"])
                return {"written": True}
            except OSError as e:
                return {"errno": e.errno}
            finally:
                os.close(fd)
        if name == "symlink_out":          # plant a link to the other tenant's tree
            r, e = sys_("symlinkat", a["target"].encode(), -100, b"/files/out")
            return {"errno": e} if r < 0 else {"made": True}
        if name == "hostname":
            return {"hostname": socket.gethostname()}
        if name == "ids":
            return {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "groups": os.getgroups()}
        if name == "mmap_exec":
            libc.mmap.restype = ctypes.c_void_p
            p = libc.mmap(None, ctypes.c_size_t(4096), PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, ctypes.c_long(0))
            return {"mapped": p not in (None, ctypes.c_void_p(-1).value), "errno": ctypes.get_errno()}
        if name == "signal":               # SIGKILL a pid (the victim's, as the host numbers it)
            r, e = sys_("kill", a["pid"], signal.SIGKILL)
            return {"errno": e} if r < 0 else {"sent": True}
        if name == "socket_inet":
            r, e = sys_("socket", socket.AF_INET, socket.SOCK_STREAM, 0)
            return {"errno": e} if r < 0 else {"socket": r}
        if name == "ptrace":
            r, e = sys_("ptrace", 16, a["pid"], 0, 0)   # PTRACE_ATTACH
            return {"errno": e} if r < 0 else {"attached": True}
        if name == "process_vm_readv":
            r, e = sys_("process_vm_readv", a["pid"], 0, 0, 0, 0, 0)
            return {"errno": e} if r < 0 else {"read": r}
        if name == "exec":
            r, e = sys_("execve", b"/bin/sh", 0, 0)
            return {"errno": e}
        if name == "fork":
            r, e = sys_("fork")
            if r == 0:
                os._exit(0)
            return {"errno": e} if r < 0 else {"forked": r}
        if name == "mount_proc":
            r, e = sys_("mount", b"proc", b"/files", b"proc", 0, 0)
            return {"errno": e} if r < 0 else {"mounted": True}
        if name == "chroot":
            r, e = sys_("chroot", b"/files")
            return {"errno": e} if r < 0 else {"chrooted": True}
        if name == "setuid0":
            r, e = sys_("setuid", 0)
            return {"errno": e} if r < 0 else {"uid": os.getuid()}
        if name == "unshare_user":
            r, e = sys_("unshare", 0x10000000)          # CLONE_NEWUSER: capabilities in a new one
            return {"errno": e} if r < 0 else {"unshared": True}
        if name == "mknod_kvm":
            r, e = sys_("mknodat", -100, b"/files/kvm", 0o20600, os.makedev(10, 232))
            return {"errno": e} if r < 0 else {"made": True}
        if name == "memfd":
            r, e = sys_("memfd_create", b"x", 0)
            return {"errno": e} if r < 0 else {"fd": r}
        if name == "bpf":
            r, e = sys_("bpf", 0, 0, 0)
            return {"errno": e}
        if name == "io_uring":
            r, e = sys_("io_uring_setup", 8, 0)
            return {"errno": e}
        if name == "ioctl_arena":          # an ioctl on a descriptor it holds
            r, e = sys_("ioctl", a["fd"], 0xAE00, 0)   # KVM_GET_API_VERSION
            return {"errno": e}
        if name == "setns":
            r, e = sys_("setns", 0, 0)
            return {"errno": e}
        raise ValueError("no attack %r" % name)


if __name__ == "__main__":
    main(sys.argv[1:], ProbeServer)
