"""The toolchain for Linux programs in user VMs, built from Debian source packages.

musl (the host's release), QuickJS and MicroPython (the next release's sources: this release has
neither) come from `apt-get source`, with a deb-src list derived from the host's own configured
Debian sources (no host name is written anywhere in the repository) and a private apt state under
the cache, so the host's apt configuration is never changed. The build then:

- patches musl's system call sites (one header, six .s files) into `call *NX_GPA_SYSCALL_VEC`, an
  indirect call through the info block's vector, and builds it with -mno-red-zone (the call pushes
  a return address where a red zone would be); the result holds no `syscall` instruction;
- builds QuickJS with a driver of ours (runtimes/qjs_nanvix.c) and MicroPython's unix port with a
  variant and a `nanvix` module of ours (runtimes/micropython/), both static, with that musl.

Every build is cached under $NANVIX_CACHE by the hash of its inputs (the source package's .dsc
checksum, the recipe files, the compiler), so it happens once; a lock keeps two processes from
building the same thing. The source versions resolved are recorded in the cache: loading a function
finds its runtime from that record without apt or the network; only `make install` (this module as a
program) asks the archive for its current versions. `python -m nanvix.impl.guest.linux.toolchain` builds all three and prints
how long each step took.
"""
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.dirname(HERE)
ABI_DIR = os.path.join(os.path.dirname(GUEST), "abi")
RUNTIMES = os.path.join(HERE, "runtimes")
NEXT_RELEASE = {"bookworm": "trixie", "trixie": "forky"}
# the source packages, and whose release they come from ("host" or "next")
PACKAGES = {"musl": "host", "quickjs": "next", "micropython": "next"}
SYSCALL_VEC = 0x11008           # NX_GPA_SYSCALL_VEC (checked against the header below)
JOBS = str(max(1, min(os.cpu_count() or 1, 4)))

try:
    from nanvix.impl.errors import BuildError
except ImportError:  # (run before the package is importable)
    class BuildError(Exception):
        pass


def cache_dir():
    d = os.environ.get("NANVIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nanvix")
    os.makedirs(d, exist_ok=True)
    return d


def _digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _files_digest(paths):
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(os.path.relpath(p, GUEST).encode())
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:20]


def _run(cmd, what, cwd=None, env=None):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        tail = (p.stdout + p.stderr)[-4000:]
        raise BuildError("%s failed (%s):\n%s" % (what, " ".join(cmd[:3]), tail))
    return p.stdout


@contextlib.contextmanager
def _lock(name):
    path = os.path.join(cache_dir(), ".%s.lock" % name)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


TIMES = {}


@contextlib.contextmanager
def _timed(step):
    t0 = time.monotonic()
    yield
    TIMES[step] = round(time.monotonic() - t0, 1)
    print("nanvix toolchain: %s in %.1f s" % (step, TIMES[step]), file=sys.stderr, flush=True)


# ---- sources --------------------------------------------------------------------------------

def _codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise BuildError("cannot tell this host's Debian release (/etc/os-release has no VERSION_CODENAME)")


def _host_debian_sources():
    """(URI, suite, components, signed-by) of each Debian archive the host uses, read from its
    apt configuration (deb822 .sources files and one-line lists)."""
    code = _codename()
    out = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in re.split(r"\n\s*\n", f.read()):
                fields = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        if suite == code:   # the release's main archive (not -security, -updates)
                            out.append((uri, suite, fields.get("components", "main").split(), fields.get("signed-by", "")))
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
                if m and m.group(3) == code:
                    signed = re.search(r"signed-by=(\S+?)[\s\]]", m.group(1) or "")
                    out.append((m.group(2), m.group(3), m.group(4).split(), signed.group(1) if signed else ""))
    if not out:
        raise BuildError("no Debian archive for %s in this host's apt sources: cannot fetch source packages" % code)
    return code, out


class Apt:
    """apt-get with a private state folder and a deb-src list derived from the host's sources."""

    def __init__(self):
        self.root = os.path.join(cache_dir(), "apt")
        os.makedirs(os.path.join(self.root, "lists", "partial"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "cache", "archives", "partial"), exist_ok=True)
        self.code, archives = _host_debian_sources()
        self.suite = {"host": self.code, "next": NEXT_RELEASE.get(self.code, self.code)}
        lines = []
        for uri, suite, comps, signed in archives:
            opt = "[signed-by=%s] " % signed if signed else ""
            for s in sorted(set(self.suite.values())):
                lines.append("deb-src %s%s %s %s" % (opt, uri, s, "main"))
        self.list = os.path.join(self.root, "sources.list")
        with open(self.list, "w") as f:
            f.write("\n".join(dict.fromkeys(lines)) + "\n")
        self.opts = ["-o", "Dir::Etc::SourceList=" + self.list, "-o", "Dir::Etc::SourceParts=/dev/null",
                     "-o", "Dir::State::Lists=" + os.path.join(self.root, "lists"),
                     "-o", "Dir::Cache=" + os.path.join(self.root, "cache"), "-o", "APT::Sandbox::User=root",
                     "-o", "Debug::NoLocking=1"]
        self.updated = False

    def update(self):
        if not self.updated:
            _run(["apt-get", "-q", *self.opts, "update"], "apt-get update (deb-src)")
            self.updated = True

    def dsc_sha(self, pkg, release):
        """(version, checksum of the .dsc) of the source package in that release: the cache key."""
        self.update()
        with tempfile.TemporaryDirectory() as empty:   # (it skips what the folder already holds)
            out = _run(["apt-get", "-q", *self.opts, "source", "--print-uris", "%s/%s" % (pkg, self.suite[release])],
                       "apt-get source --print-uris " + pkg, cwd=empty)
        m = re.search(r"^'[^']+' (%s_(\S+)\.dsc) \d+ (?:SHA256:)?([0-9a-f]{64})" % re.escape(pkg), out, re.M)
        if not m:
            raise BuildError("source package %s not found in %s" % (pkg, self.suite[release]))
        return m.group(2), m.group(3)

    def source(self, pkg, release, dest):
        """Fetch and unpack (Debian's patches applied) pkg from the release into dest; returns
        the unpacked folder."""
        self.update()
        _run(["apt-get", "-q", *self.opts, "source", "%s/%s" % (pkg, self.suite[release])],
             "apt-get source " + pkg, cwd=dest)
        dirs = [d for d in glob.glob(os.path.join(dest, pkg + "-*")) if os.path.isdir(d)]
        if len(dirs) != 1:
            raise BuildError("apt-get source %s: expected one unpacked folder, found %s" % (pkg, dirs))
        return dirs[0]


# ---- builds ---------------------------------------------------------------------------------

def _compiler_id():
    return _run(["gcc", "--version"], "gcc --version").splitlines()[0]


def _check_vector():
    with open(os.path.join(ABI_DIR, "nanvix_abi.h")) as f:
        m = re.search(r"#define NX_GPA_SYSCALL_VEC (0x[0-9a-f]+)ull", f.read())
    if not m or int(m.group(1), 16) != SYSCALL_VEC:
        raise BuildError("toolchain.SYSCALL_VEC disagrees with nanvix_abi.h")


def patch_musl(src):
    """Every `syscall` instruction of musl's x86-64 port becomes `call *NX_GPA_SYSCALL_VEC`.
    The sites are counted: a musl with more or fewer than expected is refused, not half-patched."""
    call = "call *0x%x" % SYSCALL_VEC
    hdr = os.path.join(src, "arch", "x86_64", "syscall_arch.h")
    with open(hdr) as f:
        text = f.read()
    n = text.count('"syscall"')
    if n != 7:
        raise BuildError("musl's syscall_arch.h has %d syscall sites, expected 7 (__syscall0..6)" % n)
    with open(hdr, "w") as f:
        f.write(text.replace('"syscall"', '"%s"' % call))
    sites = 0
    for path in sorted(glob.glob(os.path.join(src, "src", "*", "x86_64", "*.s"))):
        with open(path) as f:
            lines = f.read().split("\n")
        changed = False
        for i, line in enumerate(lines):
            if re.match(r"\s*syscall\b", line):
                lines[i] = re.sub(r"syscall", call, line, count=1)
                sites += 1
                changed = True
        if changed:
            with open(path, "w") as f:
                f.write("\n".join(lines))
    if sites != 8:
        raise BuildError("musl's x86-64 assembly has %d syscall sites, expected 8" % sites)


SYSCALL_INSN = re.compile(r"^\s*([0-9a-f]+):\s+0f 05\s+syscall\s*$", re.M)


def syscall_sites(path):
    """Addresses of the `syscall` instructions objdump finds in an object, archive or binary."""
    out = _run(["objdump", "-d", "-w", path], "objdump " + os.path.basename(path))
    return [int(m.group(1), 16) for m in SYSCALL_INSN.finditer(out)]


class Toolchain:
    def __init__(self, resolve=False):
        self.resolve = resolve
        self.apt = None
        self.cc_id = None

    def _apt(self):
        if self.apt is None:
            self.apt = Apt()
        return self.apt

    def _recorded(self):
        """The source versions last resolved, {pkg: [version, .dsc checksum]} (a local file)."""
        try:
            with open(os.path.join(cache_dir(), "toolchain-sources.json")) as f:
                known = json.load(f)
            return known if isinstance(known, dict) else {}
        except (OSError, ValueError):
            return {}

    def _resolve(self, pkg):
        """(version, .dsc checksum) of pkg in the archive now (apt, the network), recorded; the
        recorded one if the archive cannot be reached."""
        known = self._recorded()
        try:
            ver, sha = self._apt().dsc_sha(pkg, PACKAGES[pkg])
        except BuildError:
            if not isinstance(known.get(pkg), list) or len(known[pkg]) != 2:
                raise
            return known[pkg]   # offline: the last version resolved
        known[pkg] = [ver, sha]
        memo = os.path.join(cache_dir(), "toolchain-sources.json")
        with open(memo + ".%d.tmp" % os.getpid(), "w") as f:
            json.dump(known, f)
        os.replace(memo + ".%d.tmp" % os.getpid(), memo)
        return ver, sha

    def _out(self, name, pkg, sha, recipe, extra):
        """A build's folder, named by its cache key: the .dsc checksum, the recipe, the compiler."""
        self.cc_id = self.cc_id or _compiler_id()
        return os.path.join(cache_dir(), "%s-%s" % (name, _digest(pkg, sha, _files_digest(recipe), self.cc_id, *extra)))

    def _build(self, name, pkg, recipe, make, *extra):
        """Build into its final folder (musl's wrapper names its own prefix), under the lock;
        the build is there once its source.json is. The key is first computed from the recorded
        source version (no apt, no network: loading a function finds its runtime offline); apt
        is asked only when that build is missing, or when `resolve` asks for the archive's
        current version (`python -m nanvix.impl.guest.linux.toolchain`, i.e. `make install`)."""
        recorded = self._recorded().get(pkg)
        if not self.resolve and isinstance(recorded, list) and len(recorded) == 2:
            out = self._out(name, pkg, recorded[1], recipe, extra)
            if os.path.exists(os.path.join(out, "source.json")):
                return out
        ver, sha = self._resolve(pkg)
        out = self._out(name, pkg, sha, recipe, extra)
        done = os.path.join(out, "source.json")
        if os.path.exists(done):
            return out
        with _lock(name):
            if os.path.exists(done):
                return out
            shutil.rmtree(out, ignore_errors=True)
            work = tempfile.mkdtemp(dir=cache_dir(), prefix=".%s-" % name)
            try:
                with _timed("%s: fetch %s %s" % (name, pkg, ver)):
                    src = self._apt().source(pkg, PACKAGES[pkg], work)
                os.makedirs(out)
                with _timed("%s: build" % name):
                    make(src, out)
                with open(done + ".tmp", "w") as f:
                    json.dump({"package": pkg, "version": ver, "release": self._apt().suite[PACKAGES[pkg]],
                               "build_s": TIMES.get("%s: build" % name)}, f)
                os.replace(done + ".tmp", done)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return out

    # -- musl --------------------------------------------------------------------------------
    MUSL_RECIPE = [__file__, os.path.join(ABI_DIR, "nanvix_abi.h")]

    def musl(self):
        """The patched musl's prefix (bin/musl-gcc, lib/libc.a, include/)."""
        _check_vector()

        def make(src, dest):
            patch_musl(src)
            env = dict(os.environ, CFLAGS="-O2 -mno-red-zone")
            _run(["./configure", "--prefix=" + dest, "--disable-shared", "--enable-wrapper=gcc"], "musl configure",
                 cwd=src, env=env)
            _run(["make", "-j" + JOBS], "musl make", cwd=src)
            _run(["make", "install"], "musl install", cwd=src)
            left = syscall_sites(os.path.join(dest, "lib", "libc.a"))
            if left:
                raise BuildError("the patched musl still holds %d syscall instructions" % len(left))
        return self._build("musl", "musl", self.MUSL_RECIPE, make)

    def cc(self):
        return os.path.join(self.musl(), "bin", "musl-gcc")

    # -- QuickJS -------------------------------------------------------------------------------
    def quickjs(self):
        """The QuickJS driver (runtimes/qjs_nanvix.c), static: the path of the binary."""
        cc = self.cc()
        recipe = self.MUSL_RECIPE + [os.path.join(RUNTIMES, "qjs_nanvix.c"), os.path.join(HERE, "nanvix_linux.h")]

        def make(src, dest):
            with open(os.path.join(src, "VERSION")) as f:
                version = f.read().strip()
            # Math.random is seeded when a context is made, i.e. before the snapshot: give the
            # driver a way to reseed it per invocation (the state is private to quickjs.c).
            with open(os.path.join(src, "quickjs.c"), "a") as f:
                f.write("\nvoid JS_NanvixReseed(JSContext *ctx, uint64_t seed) { ctx->random_state = seed ? seed : 1; }\n")
            flags = ["-O2", "-D_GNU_SOURCE", '-DCONFIG_VERSION="%s"' % version, "-I", src, "-I", HERE,
                     "-I", ABI_DIR, "-w"]
            objs = []
            for c in ["quickjs.c", "dtoa.c", "libregexp.c", "libunicode.c", "cutils.c", "quickjs-libc.c",
                      os.path.join(RUNTIMES, "qjs_nanvix.c")]:
                o = os.path.join(src, os.path.basename(c) + ".o")
                objs.append((c, o))
            procs = []
            for c, o in objs:   # (in parallel: quickjs.c alone is most of the time)
                procs.append((c, subprocess.Popen([cc, *flags, "-c", os.path.join(src, c), "-o", o],
                                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
                if len([p for _, p in procs if p.poll() is None]) >= int(JOBS):
                    procs[0][1].wait()
            for c, p in procs:
                out = p.communicate()[0]
                if p.returncode:
                    raise BuildError("compiling %s failed:\n%s" % (c, out.decode(errors="replace")[-3000:]))
            _run([cc, "-static", "-o", os.path.join(dest, "qjs-nanvix"), *[o for _, o in objs], "-lm"], "linking QuickJS")
        return os.path.join(self._build("quickjs", "quickjs", recipe, make, cc), "qjs-nanvix")

    # -- MicroPython ---------------------------------------------------------------------------
    def micropython(self):
        """MicroPython's unix port with our variant and `nanvix` module, static."""
        cc = self.cc()
        mp = os.path.join(RUNTIMES, "micropython")
        recipe = self.MUSL_RECIPE + [os.path.join(HERE, "nanvix_linux.h")] + \
            [p for p in glob.glob(os.path.join(mp, "*", "**"), recursive=True) if os.path.isfile(p)]  # (not boot.py:
        # the driver script goes into each image, not into the binary)

        def make(src, dest):
            port = os.path.join(src, "ports", "unix")
            args = ["make", "-j" + JOBS, "-C", port, "VARIANT_DIR=" + os.path.join(mp, "variant"),
                    "USER_C_MODULES=" + os.path.join(mp, "modules"), "CC=" + cc, "LD=" + cc,
                    "STRIP=true", "CFLAGS_EXTRA=-I%s -I%s" % (HERE, ABI_DIR), "LDFLAGS_EXTRA=-static",
                    "BUILD=" + os.path.join(src, "build-nanvix"), "PROG=micropython"]
            _run(args, "building MicroPython")
            shutil.copy(os.path.join(src, "build-nanvix", "micropython"), os.path.join(dest, "micropython"))
        return os.path.join(self._build("micropython", "micropython", recipe, make, cc), "micropython")

    def all(self):
        return {"musl": self.musl(), "quickjs": self.quickjs(), "micropython": self.micropython()}


_TOOLCHAIN = Toolchain()


def toolchain():
    return _TOOLCHAIN


if __name__ == "__main__":
    t0 = time.monotonic()
    paths = Toolchain(resolve=True).all()   # (install time: pick up the archive's current versions)
    print(json.dumps({"paths": paths, "seconds": TIMES, "total_s": round(time.monotonic() - t0, 1)}, indent=1))
