"""The system VM's seccomp allow-list (libseccomp, through the pyseccomp binding).

Only the syscalls a jailed system VM serves with, found by tracing it through the test suite and
the hostile-tenant suite. Everything else fails with EPERM; the ones that could only mean an
attempt to get out (exec, ptrace, namespaces, mounts, module and key management, BPF, another
process's memory) kill the process at once. Mappings and protections may never be executable: the
system VM loaded all its code before the jail closed.
"""
import errno

import pyseccomp as sc

ALLOW = (
    # memory (never executable: see below)
    "brk", "munmap", "mremap", "madvise",
    # files, beneath the tenant's tree (Landlock and the mount view confine the paths)
    "read", "write", "pread64", "pwrite64", "readv", "writev", "lseek", "close", "openat",
    "openat2", "newfstatat", "fstat", "statx", "fsync", "fdatasync", "ftruncate", "fallocate",
    "unlinkat", "mkdirat", "renameat", "renameat2", "getdents64", "fcntl", "faccessat",
    "faccessat2", "readlinkat", "getcwd", "dup", "dup3", "fstatfs", "statfs", "open", "stat",
    "lstat", "access", "mkdir", "rmdir", "unlink", "rename", "readlink", "getdents",
    # the control socket, the doorbell and notify eventfds, epoll
    "recvmsg", "sendmsg", "recvfrom", "sendto", "getsockname", "getpeername", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "epoll_ctl", "epoll_create1", "poll", "ppoll", "pselect6", "select",
    # time, randomness, identity, signals, threads' own bookkeeping
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom", "getpid",
    "gettid", "getuid", "geteuid", "getgid", "getegid", "getppid", "getgroups", "getresuid",
    "getresgid", "capget", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "futex", "sched_yield", "sched_getaffinity",
    "set_robust_list", "rseq", "uname", "sysinfo", "getrusage", "prlimit64", "exit", "exit_group",
)

# An attempt to leave the jail or reach past the process: kill it at once.
KILL = (
    "execve", "execveat", "fork", "vfork", "clone", "clone3", "ptrace", "process_vm_readv",
    "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
    "perf_event_open", "add_key", "request_key", "keyctl", "userfaultfd", "open_by_handle_at",
    "name_to_handle_at", "mknodat", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "capset", "socket", "socketpair", "connect", "bind", "listen",
    "accept", "accept4", "io_uring_setup", "io_uring_enter", "io_uring_register", "kill", "tkill",
    "tgkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "memfd_create",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
)

PROT_EXEC = 4
TCGETS = 0x5401   # isatty(): Python's open() asks it of every file


def install():
    """Load the filter into this process (and its threads) for good. no_new_privs must be set."""
    f = sc.SyscallFilter(defaction=sc.ERRNO(errno.EPERM))
    for name in ALLOW:
        f.add_rule(sc.ALLOW, name)
    for name in KILL:
        f.add_rule(sc.KILL_PROCESS, name)
    # mmap and mprotect, only without PROT_EXEC
    for name in ("mmap", "mprotect"):
        f.add_rule(sc.ALLOW, name, sc.Arg(2, sc.MASKED_EQ, PROT_EXEC, 0))
        f.add_rule(sc.KILL_PROCESS, name, sc.Arg(2, sc.MASKED_EQ, PROT_EXEC, PROT_EXEC))
    # no ioctl on anything it holds, but isatty() is answered "not a terminal"
    f.add_rule(sc.ERRNO(errno.ENOTTY), "ioctl", sc.Arg(1, sc.EQ, TCGETS))
    f.add_rule(sc.KILL_PROCESS, "ioctl", sc.Arg(1, sc.NE, TCGETS))
    f.load()
