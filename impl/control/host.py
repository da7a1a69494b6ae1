"""The public Python API of a nanvix host (re-exported as `nanvix.Host`).

    import nanvix
    with nanvix.Host() as host:
        echo = host.deploy("acme", "examples/echo.c")
        r = host.invoke("acme", "echo.c", b"hi")        # an Invocation
        assert r.ok and r.result == b"hi"

A Host owns one control plane (nanvix.impl.control.runtime.Runtime): the KVM layer, the
scheduler's cores, the page pool and one system VM per tenant, started on first use. `deploy`
builds a function once (C source against the SDK, or a built image) and boots its snapshot for the
tenant; `invoke` runs it in a fresh user VM and returns a typed result. Every error is a
nanvix.NanvixError (see nanvix.impl.errors).
"""
import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

from nanvix.impl.abi import ABI
from nanvix.impl.control.runtime import Interrupted, Runtime, load_image, tenant_name as _tenant
from nanvix.impl.errors import InvalidArgument, NotFound, QuotaExceeded

FUNCTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
IMAGE_DIGEST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def _function(name):
    if not isinstance(name, str):
        raise InvalidArgument("a function is named by a string (or given as a Function), got %r" % (name,))
    return name


@dataclass(frozen=True)
class Function:
    """A function deployed for one tenant."""
    tenant: str
    name: str
    digest: str          # the built image's content hash
    source: str = ""     # where it was deployed from

    def to_dict(self):
        """What the CLI and the HTTP API show of it: {"tenant", "function", "digest", "source"}."""
        return {"tenant": self.tenant, "function": self.name, "digest": self.digest, "source": self.source}


@dataclass
class Invocation:
    """The result of one invocation. status: ok | error (the function returned non-zero) |
    crashed (it faulted, or broke the ABI) | timeout (it ran past its budget)."""
    tenant: str
    function: str
    user_vm: int
    status: str
    exit_status: int
    result: bytes
    log: list = field(default_factory=list)
    start_us: float = 0.0
    run_us: float = 0.0
    io_requests: int = 0
    exits: int = 0
    pages_added: int = 0
    detail: str = ""

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def text(self):
        """The result decoded as UTF-8 (undecodable bytes replaced)."""
        return self.result.decode("utf-8", "replace")

    def to_dict(self):
        """A JSON-safe dict (the result as text): what `nanvix run --json` prints."""
        d = asdict(self)
        d["result"] = self.text
        return d

    @classmethod
    def from_report(cls, rep):
        return cls(tenant=rep["tenant"], function=rep["function"], user_vm=rep["user_vm"],
                   status=rep["status"], exit_status=rep["exit_status"], result=rep["result_bytes"],
                   log=list(rep["log"]), start_us=rep["start_us"], run_us=rep["run_us"] or 0.0,
                   io_requests=rep["io_requests"], exits=rep["exits"], pages_added=rep["pages_added"],
                   detail=rep["detail"])


@contextlib.contextmanager
def interrupted_as_invocation():
    """An invocation cut short by Ctrl-C: Interrupted carries it as an Invocation too."""
    try:
        yield
    except Interrupted as e:
        e.invocation = Invocation.from_report(e.report)
        raise


class Started:
    """An invocation Host.start began: done once it has ended; result() is its Invocation."""

    def __init__(self, runtime, uvm):
        self._runtime, self._uvm = runtime, uvm

    @property
    def done(self):
        return self._uvm.done.is_set()

    def result(self, defer=None):
        """(defer: see Runtime.finish)"""
        with interrupted_as_invocation():
            return Invocation.from_report(self._runtime.finish(self._uvm, defer))


class Host:
    def __init__(self, home=None, cores=0, **options):
        """home: the state folder (default $NANVIX_HOME or ~/.local/share/nanvix); cores: host
        threads running vCPUs (default: every CPU); options: Runtime's (quota_uvms, quota_pages,
        max_pages, pool_size, slice_ms, ram_size, fair_cores: move this process beside the
        system VMs' cpu cgroup, as the `nanvix` commands do)."""
        self.runtime = Runtime(home=home, cores=cores, **options)
        self._functions = {}   # (tenant, name) -> (Function, image; None until first used)
        self._lock = threading.Lock()        # _functions (held briefly: an event loop takes it)
        self._store_lock = threading.Lock()  # the registry and images on disk (slow: fsync)
        self._registry = None
        self._restore_functions()

    @property
    def home(self):
        return self.runtime.home

    def deploy(self, tenant, source, name=None, origin=None):
        """Build `source` (a C file, or a built image folder) once and deploy it for `tenant` as
        `name` (default: the file's name). Its snapshot is booted now, so the first invocation
        pays only for the start. Deploying a name again replaces it. The deployment is on disk
        (in the home) before this returns: a host opened later on the same home has it.
        origin: what to record as its source (default: the path)."""
        _tenant(tenant)
        image = load_image(source)
        name = name or os.path.basename(os.path.normpath(source))
        if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
            raise InvalidArgument("function names are 1-64 of [A-Za-z0-9_.-], starting with a letter or "
                                  "digit; got %r" % (name,))
        self.room_for(tenant, name)   # (before the snapshot's cost: checked again below)
        self.runtime.prepare(tenant, image)
        self.runtime.system_vm(tenant)   # started now too, so user VMs are made ready before the first call
        fn = Function(tenant, name, image["digest"], origin or os.path.abspath(source))
        # The store's writes (an image copied, a row fsynced) hold _store_lock only: readers on an
        # event loop (function, start) take _lock, and never wait for a disk.
        with self._store_lock:
            self.room_for(tenant, name)
            with self._lock:
                old = self._functions.get((tenant, name))
            image = self._keep_image(image)
            self._record_function(fn)
            with self._lock:
                self._functions[(tenant, name)] = (fn, image)
            if old is not None and old[0].digest != fn.digest:
                self._release(tenant, old[0].digest)
        return fn

    def room_for(self, tenant, name):
        """QuotaExceeded if deploying a function `name` now would take the tenant past its limit
        of deployed functions (a redeployment replaces one), so a caller can refuse before it
        reads or builds anything. Never waits for a disk."""
        _tenant(tenant), _function(name)
        limit = self.runtime.register.limits(tenant).functions   # (the register: no tenant started)
        with self._lock:
            if (tenant, name) in self._functions:
                return
            held = sum(1 for t, _ in self._functions if t == tenant)
        if held >= limit:
            raise QuotaExceeded("tenant %s has its limit of %d deployed functions: undeploy one first"
                                % (tenant, limit))

    def undeploy(self, tenant, name):
        """Forget a deployed function (on disk too), and what it held: the user VMs kept ready
        for it, its snapshot and, once no function uses it, its image. Returns the Function it was."""
        _tenant(tenant), _function(name)
        with self._store_lock:
            with self._lock:
                got = self._functions.get((tenant, name))
            if got is None:
                raise NotFound("tenant %s has no function %r" % (tenant, name))
            self._forget_function(tenant, name)
            with self._lock:
                del self._functions[(tenant, name)]
            self._release(tenant, got[0].digest)
        return got[0]

    def _release(self, tenant, digest):
        """After a function of `digest` left the tenant (_store_lock held): the runtime's
        snapshot and ready user VMs of it, unless another function of the tenant has the same
        image; the image in the home, unless any function has it."""
        with self._lock:
            users = [t for (t, _), (fn, _) in self._functions.items() if fn.digest == digest]
        if tenant not in users:
            self.runtime.forget(tenant, digest)
        if not users:
            shutil.rmtree(self._image_dir(digest), ignore_errors=True)

    def function(self, tenant, name):
        return self._deployed(tenant, name)[0]

    def _deployed(self, tenant, function):
        """(Function, its image or None if not loaded yet) of a deployed function (a Function or
        its name), both names checked first; NotFound if the tenant has none of that name."""
        name = _function(function.name if isinstance(function, Function) else function)
        _tenant(tenant)
        with self._lock:
            got = self._functions.get((tenant, name))
        if got is None:
            raise NotFound("tenant %s has no function %r" % (tenant, name))
        return got

    def functions(self, tenant):
        _tenant(tenant)
        with self._lock:
            return sorted((fn for (t, _), (fn, _) in self._functions.items() if t == tenant),
                          key=lambda f: f.name)

    def invoke(self, tenant, function, input=b"", timeout_ms=10_000):
        """Run a deployed function (a Function or its name) once, in a fresh user VM."""
        fn, image = self._deployed(tenant, function)
        return self._invoke(tenant, image or self._load_deployed(fn), input, timeout_ms)

    def start(self, tenant, function, input=b"", timeout_ms=10_000, budget_us=1000):
        """invoke() begun without blocking, for a caller that must not wait (an event loop's
        thread): only when the function's image is loaded, a user VM of it is ready and its
        system VM runs. It then runs on this thread while a core is idle, for at most budget_us.
        Returns None when it cannot start so (nothing done: invoke() it on a thread instead), else
        a Started: .done tells whether it has ended, .result() gives its Invocation (blocking
        until it ends, if it has not)."""
        _, image = self._deployed(tenant, function)
        data = self._checked(input, timeout_ms)
        if image is None:
            return None
        uvm = self.runtime.begin(tenant, image, data, timeout_ms, ready_only=True, budget_ns=int(budget_us * 1000))
        return None if uvm is None else Started(self.runtime, uvm)

    def run(self, tenant, source, input=b"", timeout_ms=10_000):
        """Build (cached) and run `source` once for `tenant`, without deploying it."""
        return self._invoke(_tenant(tenant), self.runtime.load(source), input, timeout_ms)

    def _invoke(self, tenant, image, data, timeout_ms):
        data = self._checked(data, timeout_ms)
        with interrupted_as_invocation():
            return Invocation.from_report(self.runtime.invoke(tenant, image, data, timeout_ms))

    @staticmethod
    def _checked(data, timeout_ms):
        if isinstance(data, str):
            data = data.encode()
        elif isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
        else:  # (bytes(12) would be twelve NUL bytes)
            raise InvalidArgument("an input is bytes or text, got %s" % type(data).__name__)
        if len(data) > ABI["INPUT_MAX"]:
            raise InvalidArgument("input of %d bytes exceeds the %d an invocation takes" % (len(data), ABI["INPUT_MAX"]))
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
            raise InvalidArgument("timeout_ms must be a positive number of milliseconds, got %r" % (timeout_ms,))
        return data

    # -- limits and usage ----------------------------------------------------------------------
    def limits(self, tenant):
        """The tenant's limits (nanvix.impl.limits.Limits) as a dict."""
        return self.runtime.limits(_tenant(tenant)).to_dict()

    def set_limits(self, tenant, **limits):
        """Change some of the tenant's limits (InvalidArgument for an unknown or bad one); they
        are kept by the host and take effect at once. Returns all of the tenant's limits."""
        return self.runtime.set_limits(_tenant(tenant), **limits).to_dict()

    def usage(self, tenant):
        """What the tenant holds now (user VMs, pages, running invocations, file bytes, files,
        kv bytes and keys, log bytes, its system VM's memory, CPU and tasks, deployed functions),
        with "limits"."""
        out = self.runtime.usage(_tenant(tenant))
        out["functions"] = len(self.functions(tenant))
        return out

    def close(self):
        self.runtime.close()
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    # -- deployments kept in the home, so they outlive this process --------------------------------
    # <home>/functions.sqlite3 lists them; <home>/images/<digest>/ holds each deployed image (a
    # copy: the build cache may be cleared). Restored lazily: an image is loaded and its snapshot
    # booted on the function's first invocation after a restart.

    def _restore_functions(self):
        os.makedirs(os.path.join(self.home, "images"), mode=0o700, exist_ok=True)
        db = self._registry = sqlite3.connect(os.path.join(self.home, "functions.sqlite3"),
                                              check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS functions (tenant TEXT NOT NULL, name TEXT NOT NULL, "
                   "digest TEXT NOT NULL, source TEXT NOT NULL, deployed REAL NOT NULL, "
                   "PRIMARY KEY (tenant, name))")
        for tenant, name, digest, source in db.execute("SELECT tenant, name, digest, source FROM functions"):
            self._functions[(tenant, name)] = (Function(tenant, name, digest, source), None)

    def _record_function(self, fn):
        self._registry.execute("INSERT OR REPLACE INTO functions VALUES (?, ?, ?, ?, ?)",
                               (fn.tenant, fn.name, fn.digest, fn.source, time.time()))

    def _forget_function(self, tenant, name):
        self._registry.execute("DELETE FROM functions WHERE tenant = ? AND name = ?", (tenant, name))

    def _image_dir(self, digest):
        if not isinstance(digest, str) or not IMAGE_DIGEST.fullmatch(digest):
            raise InvalidArgument("a malformed image digest %r" % (digest,))
        return os.path.join(self.home, "images", digest)

    def _keep_image(self, image):
        """Copy a deployed image into the home (once per digest, atomically); returns it as loaded
        from there."""
        d = self._image_dir(image["digest"])
        if not os.path.isdir(d):
            tmp = tempfile.mkdtemp(dir=os.path.dirname(d), prefix=".img-")
            shutil.copyfile(image["path"], os.path.join(tmp, "image.bin"))
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                # all of its meta (a Linux runtime's image asks for more RAM, "ram"), but where it was
                json.dump({k: v for k, v in image.items() if k not in ("path", "digest")}, f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.rename(tmp, d)
            except OSError:   # another deployment of the same image got there first
                shutil.rmtree(tmp, ignore_errors=True)
        return dict(image, path=os.path.join(d, "image.bin"))

    def _load_deployed(self, fn):
        """A function restored from the home: load its image and boot its snapshot (once)."""
        image = load_image(self._image_dir(fn.digest))
        self.runtime.prepare(fn.tenant, image)
        with self._lock:
            if self._functions.get((fn.tenant, fn.name), (None,))[0] == fn:
                self._functions[(fn.tenant, fn.name)] = (fn, image)
        return image

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
