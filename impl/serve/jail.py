"""Build a tenant's C source in a jail: the compiler may read the toolchain and the SDK, write
one scratch folder, and nothing else.

Compiling is not running, but it reads files: `#include "/any/path"` or `.incbin` in inline
assembly would copy any file the daemon can read (another tenant's data, the admin token) into a
tenant's image. So the build runs in a child process that first restricts itself with Landlock
(kernel-enforced, inherited by gcc, as, ld) and rlimits (memory, CPU, file size), in its own
session with a wall-clock timeout. Without Landlock, source builds are refused (built images can
still be deployed).

    python -m nanvix.impl.serve.jail SCRATCH NAME < source.c     (prints the image as JSON)
"""
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys

from nanvix.impl.errors import BuildError
from nanvix.impl.guest import build as B
from nanvix.impl.sysvm.jail import (LL_FS, LL_READ_DIR, LL_READ_FILE, LL_TRUNCATE, LL_WRITE_FILE, PR_SET_NO_NEW_PRIVS,
                                    SYS_landlock_add_rule as SYS_ADD_RULE,
                                    SYS_landlock_create_ruleset as SYS_CREATE_RULESET,
                                    SYS_landlock_restrict_self as SYS_RESTRICT_SELF)

RULE_PATH_BENEATH = 1
LL_EXECUTE, LL_IOCTL_DEV = 1, 1 << 15
FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV   # the rights a file rule takes
READ = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR
SOURCE_MAX = 1 << 20
BUILD_TIMEOUT_S = 120
LIMITS = {resource.RLIMIT_AS: 2 << 30, resource.RLIMIT_CPU: 60, resource.RLIMIT_FSIZE: 256 << 20,
          resource.RLIMIT_CORE: 0}
TOOLCHAIN = ("/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", "/dev/null")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _abi():
    """The Landlock ABI version of this kernel (0: none)."""
    v = _libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, v)


def available():
    return _abi() >= 1


def _handled(abi):
    """Every filesystem right this ABI knows."""
    return LL_FS[max(v for v in LL_FS if v <= abi)]


def restrict(read, write):
    """Restrict this process (and what it runs) to reading `read` and writing `write` paths."""
    abi = _abi()
    if abi < 1:
        raise BuildError("Landlock is not available on this kernel: source builds are refused")
    handled = _handled(abi)
    attr = ctypes.c_uint64(handled)
    rs = _libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if rs < 0:
        raise BuildError("landlock_create_ruleset: %s" % os.strerror(ctypes.get_errno()))

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]
    try:
        for paths, rights in ((read, READ), (write, handled)):
            for path in paths:
                if not os.path.exists(path):
                    continue
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    allowed = rights & (FILE_RIGHTS if not os.path.isdir(path) else handled)
                    pb = PathBeneath(allowed & handled, fd)
                    if _libc.syscall(ctypes.c_long(SYS_ADD_RULE), ctypes.c_int(rs), ctypes.c_int(RULE_PATH_BENEATH),
                                     ctypes.byref(pb), ctypes.c_uint32(0)) < 0:
                        raise BuildError("landlock_add_rule %s: %s" % (path, os.strerror(ctypes.get_errno())))
                finally:
                    os.close(fd)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise BuildError("prctl(NO_NEW_PRIVS): %s" % os.strerror(ctypes.get_errno()))
        if _libc.syscall(ctypes.c_long(SYS_RESTRICT_SELF), ctypes.c_int(rs), ctypes.c_uint32(0)) < 0:
            raise BuildError("landlock_restrict_self: %s" % os.strerror(ctypes.get_errno()))
    finally:
        os.close(rs)


def build_jailed(text, name, scratch):
    """Build C source text in a jailed child; returns the image (its folder is in scratch).
    The trusted runtime objects are built (or found) here first, outside the jail."""
    if len(text) > SOURCE_MAX:
        raise BuildError("source of %d bytes is past the %d a deployment takes" % (len(text), SOURCE_MAX))
    if not available():
        raise BuildError("Landlock is not available on this kernel: source builds are refused "
                         "(deploy a built image instead)")
    runtime = B.build_runtime()
    cache = os.path.join(scratch, "cache")
    os.makedirs(os.path.join(scratch, "tmp"), mode=0o700, exist_ok=True)
    os.makedirs(cache, mode=0o700, exist_ok=True)
    link = os.path.join(cache, os.path.basename(runtime))
    if not os.path.lexists(link):
        os.symlink(runtime, link)
    env = {"PATH": "/usr/bin:/bin", "NANVIX_CACHE": cache, "TMPDIR": os.path.join(scratch, "tmp"),
           "LANG": "C", "PYTHONDONTWRITEBYTECODE": "1"}
    if "NANVIX_CC" in os.environ:
        env["NANVIX_CC"] = os.environ["NANVIX_CC"]
    p = subprocess.Popen([sys.executable, "-m", "nanvix.impl.serve.jail", scratch, name, runtime],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True, cwd=scratch)
    try:
        out, err = p.communicate(text, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)   # the compilers it started too, not only the builder
        p.communicate()
        raise BuildError("building %s took longer than %d s" % (name, BUILD_TIMEOUT_S))
    if p.returncode != 0:
        raise BuildError(err.decode("utf-8", "replace").strip()[-8000:] or "the build failed")
    image = json.loads(out)
    if not os.path.realpath(image["path"]).startswith(os.path.realpath(scratch) + os.sep):
        raise BuildError("the jailed build put its image outside its folder")
    return image


def main(argv):
    scratch, name, runtime = argv
    text = sys.stdin.buffer.read()
    for what, limit in LIMITS.items():
        resource.setrlimit(what, (limit, limit))
    restrict(read=TOOLCHAIN + (B.HERE, B.ABI_DIR, runtime), write=(scratch,))
    try:
        image = B.build_source(text, name)
    except BuildError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(json.dumps(image))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
