"""CPython 3.11 for Python functions: the slow target (`make cpython`), outside `make test`.

CPython comes from the host release's python3.11 source package (the toolchain's deb-src
mechanism) and is built static with nanvix's musl, in two cached parts:

- the interpreter (libpython3.11.a, with the C modules of runtimes/cpython/Setup.local built in)
  and its standard library (compiled to bytecode, in one uncompressed zip), keyed by the source
  package's checksum, Setup.local, the build's flags and the compiler: about 4 minutes on this
  machine's 2 shared cores, once. It is cross-compiled: the patched musl's programs run only in a user VM, so the
  build's code generators (frozen modules, deep-freeze) and the bytecode run on a host Python
  3.11, checked to write the source's bytecode format;
- the driver (runtimes/cpython/cpython_nanvix.c: the embedding and the `nanvix` module), linked
  against it in seconds, keyed by its own sources.

`python -m nanvix.impl.guest.linux.cpython` builds both and prints the times. An image is only
ever made from a finished build (built()): nothing starts this build on its own.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from nanvix.impl.guest.linux.toolchain import (ABI_DIR, HERE, JOBS, PACKAGES, RUNTIMES, BuildError, _digest,
                                               _files_digest, _run, cache_dir, syscall_sites, toolchain)

# the source package, from the host's own release (registered here, not in toolchain.py, whose
# text is part of every other runtime's cache key)
PACKAGES["python3.11"] = "host"

RECIPE = os.path.join(RUNTIMES, "cpython")
DRIVER_SOURCES = [os.path.join(RECIPE, "cpython_nanvix.c"), os.path.join(HERE, "nanvix_linux.h"),
                  os.path.join(ABI_DIR, "nanvix_abi.h")]
# Cross-compiling: answers for what configure cannot run; no pkg-config, so nothing of the
# host's libraries is picked up (the modules needing one are left out); no debug info.
CONFIGURE = ["--host=x86_64-pc-linux-musl", "--build=x86_64-pc-linux-gnu", "--prefix=/.nanvix", "--disable-shared",
             "--without-ensurepip", "--disable-test-modules"]
CONFIGURE_ENV = {"CFLAGS": "-O2", "OPT": "-DNDEBUG -fwrapv -O2 -Wall", "LDFLAGS": "-static", "PKG_CONFIG": "false",
                 "ac_cv_file__dev_ptmx": "no", "ac_cv_file__dev_ptc": "no", "ac_cv_buggy_getaddrinfo": "no"}
# Parts of the standard library a function cannot use here (no tk, curses, sqlite, ssl, ctypes,
# subprocesses or sockets to a network) or that only serve development: left out of the zip.
STDLIB_SKIP = ["__phello__", "asyncio", "concurrent", "ctypes", "curses", "dbm", "distutils", "doctest.py",
               "ensurepip", "idlelib", "lib2to3", "msilib", "multiprocessing", "pydoc.py", "pydoc_data",
               "site-packages", "sqlite3", "ssl.py", "test", "tkinter", "turtle.py", "turtledemo", "unittest",
               "venv", "wsgiref", "xmlrpc"]
LATEST = "cpython-latest.json"


def _build_python():
    """A host Python 3.11 (this one, or python3.11 on PATH)."""
    for cand in (sys.executable, shutil.which("python3.11")):
        if cand and subprocess.run([cand, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 11))"]).returncode == 0:
            return cand
    raise BuildError("building CPython 3.11 needs a host Python 3.11 (python3.11 on PATH)")


# Run by the host Python 3.11: every module of Lib/ but the skipped, compiled (the file name in
# tracebacks is its place in the image), as timestamp-less .pyc files of a stored zip (the guest
# has no zlib). Refuses a host Python whose bytecode format is not the source's.
_ZIP = r"""
import importlib._bootstrap_external as be, os, re, sys, zipfile
lib, out, skip = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))
with open(os.path.join(lib, "importlib", "_bootstrap_external.py")) as f:
    magic = int(re.search(r"MAGIC_NUMBER = \((\d+)\)", f.read()).group(1))
if be.MAGIC_NUMBER != magic.to_bytes(2, "little") + b"\r\n":
    sys.exit("the host Python's bytecode %r is not the source's (%d)" % (be.MAGIC_NUMBER, magic))
n = 0
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    for root, dirs, files in os.walk(lib):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith(("config-", "plat-")))
        for name in sorted(files):
            if name.endswith(".py") and name not in skip:
                rel = os.path.relpath(os.path.join(root, name), lib)
                with open(os.path.join(root, name), "rb") as f:
                    co = compile(f.read(), "/.nanvix/python311.zip/" + rel, "exec", dont_inherit=True)
                z.writestr(zipfile.ZipInfo(rel[:-3] + ".pyc", (1980, 1, 1, 0, 0, 0)), be._code_to_timestamp_pyc(co, 0, 0))
                n += 1
print(n)
"""


def _make(src, dest, cc, py):
    shutil.copy(os.path.join(RECIPE, "Setup.local"), os.path.join(src, "Modules", "Setup.local"))
    readelf = shutil.which("readelf")
    if not readelf:
        raise BuildError("building CPython needs readelf (binutils)")
    env = dict(os.environ, CC=cc, READELF=readelf, **CONFIGURE_ENV)
    _run(["./configure", *CONFIGURE, "--with-build-python=" + py], "CPython configure", cwd=src, env=env)
    _run(["make", "-j" + JOBS, "libpython3.11.a"], "CPython make", cwd=src)
    os.makedirs(os.path.join(dest, "include"))
    shutil.copy(os.path.join(src, "libpython3.11.a"), dest)
    shutil.copytree(os.path.join(src, "Include"), os.path.join(dest, "include"), dirs_exist_ok=True)
    shutil.copy(os.path.join(src, "pyconfig.h"), os.path.join(dest, "include"))
    with open(os.path.join(src, "Makefile")) as f:
        libs = re.search(r"^LIBS=(.*)$", f.read(), re.M).group(1).split()
    n = int(_run([py, "-c", _ZIP, os.path.join(src, "Lib"), os.path.join(dest, "python311.zip"), ",".join(STDLIB_SKIP)],
                 "compiling the standard library").strip())
    with open(os.path.join(dest, "build.json"), "w") as f:
        json.dump({"libs": libs, "stdlib_modules": n}, f)


def interpreter():
    """The built interpreter's folder (libpython3.11.a, include/, python311.zip), built if needed."""
    tc = toolchain()
    cc = tc.cc()
    py = _build_python()
    return tc._build("cpython", "python3.11", [os.path.join(RECIPE, "Setup.local")],
                     lambda src, dest: _make(src, dest, cc, py),
                     cc, json.dumps([CONFIGURE, CONFIGURE_ENV, STDLIB_SKIP]), _run([py, "-V"], "python -V"), _ZIP)


def driver(lib):
    """The driver linked against the interpreter in lib: the static binary's path (cached)."""
    cc = toolchain().cc()
    out = os.path.join(cache_dir(), "cpython-driver-" + _digest(os.path.basename(lib), _files_digest(DRIVER_SOURCES), cc))
    binary = os.path.join(out, "cpython-nanvix")
    if os.path.exists(binary):
        return binary
    tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=".cpython-driver-")
    try:
        with open(os.path.join(lib, "build.json")) as f:
            libs = json.load(f)["libs"]
        obj = os.path.join(tmp, "cpython_nanvix.o")
        _run([cc, "-O2", "-I", os.path.join(lib, "include"), "-I", HERE, "-I", ABI_DIR, "-c", DRIVER_SOURCES[0],
              "-o", obj], "compiling the CPython driver")
        _run([cc, "-static", "-o", os.path.join(tmp, "cpython-nanvix"), obj, os.path.join(lib, "libpython3.11.a"),
              *libs, "-lm"], "linking the CPython driver")
        os.unlink(obj)
        left = syscall_sites(os.path.join(tmp, "cpython-nanvix"))
        if left:
            raise BuildError("the CPython driver holds %d syscall instructions" % len(left))
        try:
            os.replace(tmp, out)
        except OSError:   # another process published it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return binary


def build():
    """Build (or find cached) the interpreter and the driver; remember them for built()."""
    lib = interpreter()
    paths = {"driver": driver(lib), "stdlib": os.path.join(lib, "python311.zip")}
    with open(os.path.join(cache_dir(), LATEST + ".tmp"), "w") as f:
        json.dump({"lib": lib, **paths}, f)
    os.replace(os.path.join(cache_dir(), LATEST + ".tmp"), os.path.join(cache_dir(), LATEST))
    return paths


def built():
    """{"driver", "stdlib"} of the last `make cpython` if it is still in the cache, else None:
    no network, no build. The driver is relinked (seconds) if its sources changed since."""
    try:
        with open(os.path.join(cache_dir(), LATEST)) as f:
            last = json.load(f)
    except (OSError, ValueError):
        return None
    lib = last.get("lib", "")
    if not os.path.exists(os.path.join(lib, "source.json")):
        return None
    return {"driver": driver(lib), "stdlib": os.path.join(lib, "python311.zip")}


if __name__ == "__main__":
    from nanvix.impl.guest.linux import toolchain as T
    t0 = time.monotonic()
    paths = build()
    print(json.dumps({"paths": paths, "seconds": T.TIMES, "total_s": round(time.monotonic() - t0, 1)}, indent=1))
