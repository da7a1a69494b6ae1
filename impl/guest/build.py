"""Build user-VM images: the microkernel runtime plus one function, linked into a flat binary.

Freestanding gcc, no libc. Builds are cached by the hash of every input (sources, flags, the
compiler's version), so a function's C source is compiled once. This file imports nothing from
nanvix: setup.py runs it to pre-build the runtime before the package is installed.
"""
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ABI_DIR = os.path.join(os.path.dirname(HERE), "abi")   # nanvix_abi.h, the one layout header
RUNTIME_SOURCES = ("crt0.S", "kernel.c", "libc.c", "sdk.c")
HEADERS = ("nanvix.h", "link.ld", os.path.join(ABI_DIR, "nanvix_abi.h"))
CFLAGS = [
    "-O2", "-std=gnu11", "-ffreestanding", "-fno-builtin", "-nostdlib", "-fno-pic", "-fno-pie",
    "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-exceptions",
    "-mcmodel=small", "-Wall", "-Wno-unused-variable", "-Wno-unused-function",
]
CC = os.environ.get("NANVIX_CC", "gcc")
INCLUDES = ["-I", HERE, "-I", ABI_DIR]


try:
    from nanvix.impl.errors import BuildError
except ImportError:  # run by setup.py, before the package is importable
    class BuildError(Exception):
        """A function's source did not compile or link; the message carries gcc's output."""


def cache_dir():
    d = os.environ.get("NANVIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nanvix")
    os.makedirs(d, exist_ok=True)
    return d


@functools.lru_cache(maxsize=None)
def _compiler_id():
    """(Once per process: a cached load then runs no program at all.)"""
    out = subprocess.run([CC, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def _digest(parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def _runtime_digest(src=HERE):
    parts = [_compiler_id(), " ".join(CFLAGS)]
    for name in RUNTIME_SOURCES + HEADERS:
        with open(os.path.join(src, name), "rb") as f:
            parts += [os.path.basename(name), f.read()]
    return _digest(parts)


def _run(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BuildError("%s failed:\n%s%s" % (what, p.stdout, p.stderr))


def _publish(tmp, final):
    """Move a finished build into the cache atomically (parallel builders may race)."""
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(final):
            raise


def build_runtime(src=HERE):
    """Compile the microkernel and SDK once; returns the folder holding the objects. src: the
    folder of the runtime's sources (a copy with a deliberate bug, for the refinement harness)."""
    out = os.path.join(cache_dir(), "runtime-" + _runtime_digest(src))
    if os.path.isdir(out):
        return out
    tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=".rt-")
    for name in RUNTIME_SOURCES:
        obj = os.path.join(tmp, name.rsplit(".", 1)[0] + ".o")
        _run([CC, *CFLAGS, "-I", src, *INCLUDES, "-c", os.path.join(src, name), "-o", obj], "compiling " + name)
    _publish(tmp, out)
    return out


def build_image(path, name=None):
    """Compile one function's C source file and link it with the runtime (see build_source)."""
    with open(path, "rb") as f:
        return build_source(f.read(), name or os.path.basename(path))


def build_source(text, name="function.c", src=HERE):
    """Compile one function's C source text and link it with the runtime (built from src).
    Returns {"path": flat image, "end": guest address of _end, "name", "digest"}."""
    text = text.encode() if isinstance(text, str) else text
    runtime = build_runtime(src)
    digest = _digest([os.path.basename(runtime), text])
    out = os.path.join(cache_dir(), "image-" + digest)
    if not os.path.isdir(out):
        tmp = tempfile.mkdtemp(dir=cache_dir(), prefix=".img-")
        try:
            _link(tmp, text, name, runtime)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _publish(tmp, out)
    with open(os.path.join(out, "meta.json")) as f:
        meta = json.load(f)
    return {"path": os.path.join(out, "image.bin"), "end": meta["end"], "name": meta["name"],
            "digest": digest}


def _link(tmp, text, name, runtime):
    """Compile the function and link it with the runtime objects into tmp/."""
    src = os.path.join(tmp, "function.c")
    with open(src, "wb") as f:
        f.write(text)
    objs = [os.path.join(runtime, n.rsplit(".", 1)[0] + ".o") for n in RUNTIME_SOURCES]
    elf = os.path.join(tmp, "image.elf")
    _run([CC, *CFLAGS, *INCLUDES, "-c", src, "-o", os.path.join(tmp, "function.o")],
         "compiling " + name)
    _run([CC, *CFLAGS, "-static", "-Wl,--build-id=none", "-Wl,-T," + os.path.join(HERE, "link.ld"),
          "-o", elf, *objs, os.path.join(tmp, "function.o"), "-lgcc"], "linking " + name)
    _run(["objcopy", "-O", "binary", elf, os.path.join(tmp, "image.bin")], "objcopy " + name)
    syms = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    end = next(int(line.split()[0], 16) for line in syms.splitlines() if line.endswith(" _end"))
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump({"name": name, "end": end}, f)


if __name__ == "__main__":
    import sys

    print(build_runtime())
    for s in sys.argv[1:]:
        print(build_image(s))
