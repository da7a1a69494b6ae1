"""User-VM images of Linux programs: a static ELF binary, the microkernel with its Linux-ABI layer,
and the files the program reads from /.nanvix/, laid out as one flat image from NX_GPA_RAM.

The program keeps its link address (musl's static default, 0x400000, is where guest RAM begins):
its PT_LOAD segments are copied to their addresses and the microkernel is linked, per image, just
above the program's end. The microkernel's entry builds the program's initial stack (argc, argv,
envp, auxv) and jumps to its ELF entry. A boot block generated here (struct nx_limage) tells it
where things are. Three kinds of image:

- a plain static program (`nanvix run ./prog`): stdin is the input, stdout the result, stderr the
  log; the snapshot is taken before the program starts;
- a Python function (handler.py, on MicroPython) and a JavaScript one (handler.js, on QuickJS):
  the interpreter and the function are loaded and the snapshot taken inside the driver, so an
  invocation pays only for handle(); stdout and stderr both go to the log.

A program built with nanvix's musl (`nanvix cc`) holds no `syscall` instruction. One built
elsewhere has its `syscall`s rewritten at build time where that is provably safe (zpoline.py), and
is refused with the reason otherwise.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile

from nanvix.impl.abi import ABI
from nanvix.impl.errors import BuildError, InvalidArgument
from nanvix.impl.guest import build as B
from nanvix.impl.guest.linux import zpoline
from nanvix.impl.guest.linux.toolchain import RUNTIMES, syscall_sites, toolchain

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = [("crt0.S", os.path.join(B.HERE, "crt0.S")), ("kernel.c", os.path.join(B.HERE, "kernel.c")),
           ("libc.c", os.path.join(B.HERE, "libc.c")), ("sdk.c", os.path.join(B.HERE, "sdk.c")),
           ("linux.c", os.path.join(HERE, "linux.c")), ("entry.S", os.path.join(HERE, "entry.S"))]
HEADERS = [os.path.join(B.HERE, "nanvix.h"), os.path.join(B.HERE, "link.ld"),
           os.path.join(B.ABI_DIR, "nanvix_abi.h"), os.path.join(HERE, "nanvix_linux.h")]
# The layer never touches vector registers (a system call preserves them), and its entry
# realigns the stack itself.
CFLAGS = B.CFLAGS + ["-mgeneral-regs-only", "-DNX_ENTRY=nx_linux_main"]
INCLUDES = B.INCLUDES + ["-I", HERE]

STDOUT_RESULT, SNAPSHOT_AT_ENTRY = 1, 2          # NX_LIMG_* (nanvix_linux.h)
STACK = 1 << 20
RAM = {"program": 16 << 20, "python": 32 << 20, "javascript": 32 << 20, "cpython": 64 << 20}
PYTHON_RUNTIMES = ("micropython", "cpython")   # micropython: the default; cpython: `make cpython`
PT_LOAD, PT_INTERP, PT_PHDR = 1, 3, 6
ELF_MAGIC = b"\x7fELF"
with open(zpoline.__file__, "rb") as _f:
    _ZPOLINE_DIGEST = hashlib.sha256(_f.read()).hexdigest()


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def build_runtime():
    """The microkernel with the Linux-ABI layer, compiled once (objects, cached by content)."""
    parts = [B._compiler_id(), " ".join(CFLAGS)]
    for name, path in SOURCES:
        with open(path, "rb") as f:
            parts += [name, f.read()]
    for path in HEADERS:
        with open(path, "rb") as f:
            parts += [os.path.basename(path), f.read()]
    out = os.path.join(B.cache_dir(), "linux-runtime-" + B._digest(parts))
    if os.path.isdir(out):
        return out
    tmp = tempfile.mkdtemp(dir=B.cache_dir(), prefix=".lrt-")
    for name, path in SOURCES:
        B._run([B.CC, *CFLAGS, *INCLUDES, "-c", path, "-o", os.path.join(tmp, name.rsplit(".", 1)[0] + ".o")],
               "compiling " + name)
    B._publish(tmp, out)
    return out


class Elf:
    """The parts of a static x86-64 ELF executable the loader needs, checked."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        self.path = path
        if len(d) < 64 or d[:4] != ELF_MAGIC:
            raise InvalidArgument("%s: not an ELF file" % path)
        if d[4] != 2 or d[5] != 1:
            raise InvalidArgument("%s: not a 64-bit little-endian ELF" % path)
        (e_type, e_machine, _, self.entry, phoff, _, _, _, phentsize, phnum) = struct.unpack_from("<HHIQQQIHHH", d, 16)
        if e_machine != 62:
            raise InvalidArgument("%s: not an x86-64 program (machine %d)" % (path, e_machine))
        if e_type == 3:
            raise InvalidArgument("%s: a position-independent executable or library: link it with -static "
                                  "-no-pie (a static, fixed-address program)" % path)
        if e_type != 2:
            raise InvalidArgument("%s: not an executable (ELF type %d)" % (path, e_type))
        if phentsize != 56 or phnum == 0 or phoff + phnum * 56 > len(d):
            raise InvalidArgument("%s: malformed program headers" % path)
        self.phoff, self.phnum, self.phent = phoff, phnum, phentsize
        self.loads, self.phdr = [], None
        for i in range(phnum):
            p_type, p_flags, p_off, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from("<IIQQQQQQ", d, phoff + 56 * i)
            if p_type == PT_INTERP:
                raise InvalidArgument("%s: dynamically linked; nanvix runs static programs (link with -static)" % path)
            if p_type == PT_PHDR:
                self.phdr = p_vaddr
            if p_type == PT_LOAD and p_memsz:
                if p_filesz > p_memsz or p_off + p_filesz > len(d):
                    raise InvalidArgument("%s: a malformed PT_LOAD segment" % path)
                self.loads.append((p_vaddr, p_off, p_filesz, p_memsz, p_flags))
        if not self.loads:
            raise InvalidArgument("%s: nothing to load" % path)
        self.loads.sort()
        self.lo = self.loads[0][0]
        self.hi = max(v + m for v, _, _, m, _ in self.loads)
        for (v1, _, _, m1, _), (v2, _, _, _, _) in zip(self.loads, self.loads[1:]):
            if v1 + m1 > v2:
                raise InvalidArgument("%s: overlapping segments" % path)
        if self.lo < ABI["GPA_RAM"] or self.hi > ABI["GPA_RAM"] + ABI["RAM_MAX"] // 2:
            raise InvalidArgument("%s: segments at [%#x, %#x): a program must be linked within [%#x, %#x) "
                                  "(the default static link address, 0x400000, is fine)"
                                  % (path, self.lo, self.hi, ABI["GPA_RAM"], ABI["GPA_RAM"] + ABI["RAM_MAX"] // 2))
        if self.phdr is None:   # the headers inside the first segment, as a static link leaves them
            for v, off, fs, _, _ in self.loads:
                if off <= phoff and phoff + phnum * 56 <= off + fs:
                    self.phdr = v + phoff - off
        if self.phdr is None:
            raise InvalidArgument("%s: its program headers are not loaded (no AT_PHDR to give it)" % path)

    def flat(self, size, data=None):
        """The loaded image from the lowest segment: file bytes (of data, the file's bytes as
        rewritten, if given) where they go, zeros elsewhere."""
        data = data or self.data
        out = bytearray(size)
        for v, off, fs, _, _ in self.loads:
            out[v - self.lo:v - self.lo + fs] = data[off:off + fs]
        return out


def _bytes_directive(b):
    return "\n".join("    .byte " + ",".join(str(x) for x in b[i:i + 32]) for i in range(0, len(b), 32)) or ""


def _boot_block(elf, flags, argv, env, files, stack, tmp):
    """The assembly of struct nx_limage and what it points to."""
    lines = ["    .section .rodata", "    .balign 8", "    .globl nx_linux_image", "nx_linux_image:",
             "    .quad %d, %d, %d, %d" % (elf.entry, elf.phdr, elf.phnum, elf.phent),
             "    .quad %d" % stack,
             "    .long %d, %d, %d, %d" % (flags, len(argv), len(env), len(files)),
             "    .quad nx_argv, nx_envp, nx_files", "    .balign 8", "nx_argv:"]
    lines += ["    .quad nx_s_a%d" % i for i in range(len(argv))] + ["    .quad 0", "nx_envp:"]
    lines += ["    .quad nx_s_e%d" % i for i in range(len(env))] + ["    .quad 0", "nx_files:"]
    for i, (name, path) in enumerate(files):
        lines.append("    .quad nx_s_f%d, nx_d_f%d, %d" % (i, i, os.path.getsize(path)))
    for prefix, strings in (("a", argv), ("e", env), ("f", [n for n, _ in files])):
        for i, s in enumerate(strings):
            lines += ["nx_s_%s%d:" % (prefix, i), _bytes_directive(s.encode() + b"\0")]
    for i, (name, path) in enumerate(files):
        local = os.path.join(tmp, "file%d.bin" % i)
        shutil.copy(path, local)
        lines += ["    .balign 16", "nx_d_f%d:" % i, '    .incbin "%s"' % local, "    .byte 0"]
    lines.append('    .section .note.GNU-stack, "", @progbits')
    return "\n".join(lines) + "\n"


def build(program, name, kind="program", files=(), argv=None, env=None, flags=None, stack=STACK):
    """A user-VM image of a static Linux program. files: [(name under /.nanvix/, host path)].
    Returns the image dict (as build.build_source does) with entry, ram and kind."""
    elf = Elf(program)
    runtime = build_runtime()
    argv = list(argv or [os.path.basename(program)])
    env = list(env if env is not None else ["HOME=/", "PATH=/", "LANG=C.UTF-8"])
    flags = (STDOUT_RESULT | SNAPSHOT_AT_ENTRY) if flags is None else flags
    # Keyed by the program as given and the rewriter's own source (what decides its rewriting),
    # so a cached image is found before objdump and zpoline run (a refused program is never cached).
    parts = [os.path.basename(runtime), hashlib.sha256(elf.data).hexdigest(), _ZPOLINE_DIGEST, kind, flags, stack,
             json.dumps(argv), json.dumps(env)]
    for n, p in files:
        with open(p, "rb") as f:
            parts += [n, f.read()]
    digest = B._digest(parts)
    out = os.path.join(B.cache_dir(), "image-" + digest)
    if not os.path.isdir(out):
        sites = syscall_sites(program)
        # built elsewhere: rewritten where that is safe, else refused with the reason
        patched = zpoline.rewrite(elf, sites) if sites else None
        tmp = tempfile.mkdtemp(dir=B.cache_dir(), prefix=".limg-")
        try:
            _link(tmp, elf, patched, runtime, name, kind, files, argv, env, flags, stack)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        B._publish(tmp, out)
    return load(out)


def load(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    meta["path"] = os.path.join(folder, "image.bin")
    meta["digest"] = os.path.basename(folder)[len("image-"):] if os.path.basename(folder).startswith("image-") \
        else os.path.basename(folder)
    return meta


def _link(tmp, elf, patched, runtime, name, kind, files, argv, env, flags, stack):
    base = (elf.hi + 0xFFFF) & ~0xFFFF
    boot = os.path.join(tmp, "boot.S")
    with open(boot, "w") as f:
        f.write(_boot_block(elf, flags, argv, env, files, stack, tmp))
    B._run([B.CC, *CFLAGS, "-c", boot, "-o", os.path.join(tmp, "boot.o")], "assembling the boot block")
    with open(os.path.join(B.HERE, "link.ld")) as f:
        script = f.read()
    if ". = 0x400000;" not in script:
        raise BuildError("link.ld no longer sets its base as expected")
    ld = os.path.join(tmp, "link.ld")
    with open(ld, "w") as f:
        f.write(script.replace(". = 0x400000;", ". = %#x;" % base))
    objs = [os.path.join(runtime, n.rsplit(".", 1)[0] + ".o") for n, _ in SOURCES]
    kelf = os.path.join(tmp, "kernel.elf")
    B._run([B.CC, *CFLAGS, "-static", "-Wl,--build-id=none", "-Wl,-T," + ld, "-o", kelf, *objs,
            os.path.join(tmp, "boot.o"), "-lgcc"], "linking the microkernel for " + name)
    kbin = os.path.join(tmp, "kernel.bin")
    B._run(["objcopy", "-O", "binary", kelf, kbin], "objcopy")
    syms = {}
    for line in subprocess.run(["nm", kelf], capture_output=True, text=True, check=True).stdout.splitlines():
        p = line.split()
        if len(p) == 3:
            syms[p[2]] = int(p[0], 16)
    with open(kbin, "rb") as f:
        kernel = f.read()
    if syms["_start"] != base:
        raise BuildError("the microkernel's entry is not at its base")
    end = syms["_end"]
    image = elf.flat(end - elf.lo, patched)
    image[base - elf.lo:base - elf.lo + len(kernel)] = kernel
    with open(os.path.join(tmp, "image.bin"), "wb") as f:
        f.write(image)
    for n in ("boot.S", "boot.o", "kernel.elf", "kernel.bin", "link.ld"):
        os.unlink(os.path.join(tmp, n))
    for n in os.listdir(tmp):
        if n.startswith("file"):
            os.unlink(os.path.join(tmp, n))
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump({"name": name, "end": end, "entry": base, "ram": RAM.get(kind, RAM["program"]), "kind": kind,
                   "zpoline": patched is not None, "program_end": elf.hi}, f)


def python_image(handler, runtime="micropython"):
    """A Python function: the interpreter (MicroPython, or CPython once `make cpython` built it),
    the driver script (the same for both) and the handler file."""
    boot = ("boot.py", os.path.join(RUNTIMES, "micropython", "boot.py"))
    if runtime == "micropython":
        mp = toolchain().micropython()
        return build(mp, os.path.basename(handler), "python", files=[boot, ("handler.py", handler)],
                     argv=["micropython", "-X", "heapsize=4M", "/.nanvix/boot.py"], flags=0)
    if runtime != "cpython":
        raise InvalidArgument("unknown Python runtime %r (one of: %s)" % (runtime, ", ".join(PYTHON_RUNTIMES)))
    from nanvix.impl.guest.linux import cpython
    cp = cpython.built()   # (a slow build: never started from here)
    if cp is None:
        raise InvalidArgument("CPython is not built: run `make cpython` first (a slow target, a few minutes, "
                              "once)")
    return build(cp["driver"], os.path.basename(handler), "cpython",
                 files=[boot, ("handler.py", handler), ("python311.zip", cp["stdlib"])], argv=["python3"], flags=0)


def javascript_image(handler):
    """A JavaScript function: QuickJS with its driver, and the handler file."""
    qjs = toolchain().quickjs()
    return build(qjs, os.path.basename(handler), "javascript", files=[("handler.js", handler)],
                 argv=["qjs-nanvix"], flags=0)
