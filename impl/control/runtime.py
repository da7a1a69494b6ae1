"""The control plane: tenants, their system VMs, user VMs, channels, the page pool, invocations.

An invocation: pick (or start) the tenant's system VM, create a user VM for the function from its
snapshot template (into a VM created ahead of time by the pool), open a channel between the two,
run the vCPU on the scheduler, return the function's result; then detach the channel, destroy the
VM and scrub its pages. `state()` reports all of it in the spec's vocabulary.
"""
import itertools
import json
import os
import queue
import re
import select
import threading
import time

from nanvix.impl import sched as S
from nanvix.impl.abi import ABI
from nanvix.impl.channel import init_channel
from nanvix.impl.control.pages import PagePool
from nanvix.impl.control.pools import VmPool
from nanvix.impl.control.report import state_report
from nanvix.impl.control.uvm import DEFAULT_RAM, SLOT_HOTADD, Template
from nanvix.impl.errors import InvalidArgument, NanvixError, NotFound, OutOfPages, QuotaExceeded, SystemVMDown
from nanvix.impl.guest.build import build_image
from nanvix.impl.kvm import Kvm
from nanvix.impl.sysvm.client import SystemVM
from nanvix.impl.sysvm.store import broken_mark
from nanvix.impl.threads import spawn

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
WATCHDOG_S = 5.0


class Interrupted(KeyboardInterrupt):
    """An invocation stopped by Ctrl-C; .report is what it had done."""

    def __init__(self, report):
        super().__init__("interrupted")
        self.report = report
STATUS = {S.LEFT_EXIT: None, S.LEFT_CRASH: "crashed", S.LEFT_TIMEOUT: "timeout"}


def default_home():
    return os.environ.get("NANVIX_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share", "nanvix")


class Tenant:
    def __init__(self, name, tid, root, quota_uvms, quota_pages, sysvm_class=SystemVM):
        self.name, self.id, self.root = name, tid, root
        self.quota_uvms, self.quota_pages = quota_uvms, quota_pages
        self.sysvm = sysvm_class(name, root)
        self.uvms = {}
        self.templates = {}
        self.lock = threading.Lock()


class Channel:
    """The control plane's record of one channel: its page, its two eventfds and its state."""

    def __init__(self, cid, uvm, page, doorbell_fd, notify_fd):
        self.id, self.uvm, self.page = cid, uvm, page
        self.tenant = uvm.tenant
        self.sysvm = uvm.tenant  # the tenant whose system VM serves it (set at attach)
        self.doorbell_fd, self.notify_fd = doorbell_fd, notify_fd
        self.state = "open"
        self.report = None  # the system VM's account at detach: served, log


class UserVM:
    """One invocation's VM. The scheduler reads and writes state, core and exits."""

    def __init__(self, uid, tenant, image, timeout_ms):
        self.id, self.tenant, self.image = uid, tenant, image
        self.timeout_ms = timeout_ms
        self.state = S.CREATED
        self.core = None
        self.exits = 0
        self.exit_status = None
        self.status = None
        self.detail = ""
        self.pages = []          # pages added on NX_HC_GROW
        self.vm = self.vcpu = self.mem = self.channel = None
        self.notify_fd = -1
        self.done = threading.Event()
        self.t_create = time.perf_counter_ns()
        self.t_ready = self.t_end = None
        self.deadline_ns = 0
        self.awaiting_command = False  # read by the scheduler only when it serves NX_HC_COMMAND
        self.evict = ""          # why the host is taking it off its core (the scheduler reads it)

    def completions_ready(self):
        ch = self.channel
        if ch is None:
            return False
        m = ch.page.mem
        return m.u32(ABI["HDR_CQ_TAIL"]) != m.u32(ABI["HDR_CQ_HEAD"])

    def result_bytes(self):
        info = ABI["GPA_INFO"]
        n = min(self.mem.u32(info + ABI["INFO_RESULT_LEN"]), ABI["RESULT_MAX"])
        return self.mem.read(info + ABI["INFO_RESULT"], n)


def load_image(path):
    """A function image from a path: C source (built with the SDK, cached) or a built image
    (its folder or its image.bin). Raises NotFound or InvalidArgument with a one-line reason."""
    if not isinstance(path, str) or not os.path.exists(path):
        raise NotFound("%s: no such file or directory" % path)
    if path.endswith(".c"):
        if not os.path.isfile(path):
            raise InvalidArgument("%s: not a file" % path)
        return build_image(path)
    d = path if os.path.isdir(path) else os.path.dirname(path) or "."
    meta_path = os.path.join(d, "meta.json")
    if not (os.path.isfile(meta_path) and os.path.isfile(os.path.join(d, "image.bin"))):
        raise InvalidArgument("%s: neither C source (*.c) nor a built image (a folder with image.bin "
                              "and meta.json, from `nanvix build`)" % path)
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        return {"path": os.path.join(d, "image.bin"), "end": int(meta["end"]), "name": str(meta["name"]),
                "digest": os.path.basename(os.path.abspath(d))}
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument("%s: a malformed meta.json (%s)" % (meta_path, e))


class Runtime:
    """The control plane of one host. A subclass may replace the pieces named by the class
    attributes (the refinement harness builds a stepped runtime that way)."""
    page_pool_class = PagePool
    sysvm_class = SystemVM
    uvm_class = UserVM
    stepped = False   # True: nothing runs by itself (no worker threads, no monitor, no pool)

    def __init__(self, home=None, cores=0, max_pages=4096, pool_size=4, slice_ms=10,
                 quota_uvms=64, quota_pages=256, ram_size=DEFAULT_RAM, restart_system_vms=True):
        self.home = home or default_home()
        os.makedirs(os.path.join(self.home, "tenants"), mode=0o700, exist_ok=True)
        self.kvm = Kvm()
        self.pages = self.page_pool_class(max_pages)
        self.vm_pool = VmPool(self.kvm, 0 if self.stepped else pool_size)
        self.sched = self.scheduler(cores, slice_ms * 1_000_000)
        self.ram_size = ram_size
        self.quota_uvms, self.quota_pages = quota_uvms, quota_pages
        self.restart_system_vms = restart_system_vms
        self.tenants = {}
        self.uvms = {}
        self.channels = {}
        self.ids = itertools.count(1)
        self.lock = threading.RLock()
        self.closing = False
        self.images = {}
        self.monitor_epoll = select.epoll()
        self.monitored = {}
        self.sysvm_events = []   # (tenant, what) history: crashes, restarts
        self.monitor = None
        self.reaper_queue = queue.SimpleQueue()
        self.reaper = spawn("nanvix-reaper", self._reaper)
        if not self.stepped:
            self.sched.start()
            self.monitor = spawn("nanvix-sysvm-monitor", self._monitor)

    def scheduler(self, cores, slice_ns):
        return S.Scheduler(self, cores, slice_ns)

    # -- tenants and system VMs ----------------------------------------------------------------
    def tenant(self, name, create=True):
        with self.lock:
            t = self.tenants.get(name)
            if t is None:
                if not create:
                    raise NotFound("no tenant %r" % name)
                if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
                    raise InvalidArgument("tenant names are 1-32 of [a-z0-9_-], starting with a letter "
                                          "or digit; got %r" % (name,))
                t = Tenant(name, len(self.tenants), os.path.join(self.home, "tenants", name),
                           self.quota_uvms, self.quota_pages, self.sysvm_class)
                self.tenants[name] = t
            return t

    def system_vm(self, tenant):
        """The tenant's system VM, started on first use (and after a crash). Stepped runtimes
        start system VMs only when told to (start_system_vm), as the spec does."""
        t = self.tenant(tenant)
        with t.lock:
            if not t.sysvm.alive:
                if self.stepped:
                    raise SystemVMDown("system VM of %s %s" % (tenant, "is down" if t.sysvm.epoch else "was never started"))
                self._start_sysvm(t)
            return t.sysvm

    def start_system_vm(self, tenant):
        t = self.tenant(tenant)
        with t.lock:
            if t.sysvm.alive:
                raise ValueError("system VM of %s is already running" % tenant)
            self._start_sysvm(t)
        return t.sysvm

    def _start_sysvm(self, t):
        restarted = t.sysvm.epoch > 0
        t.sysvm.stop()
        t.sysvm.start()
        with self.lock:
            pidfd = os.pidfd_open(t.sysvm.pid)
            self.monitored[pidfd] = (t, t.sysvm.epoch)
            self.monitor_epoll.register(pidfd, select.EPOLLIN)
        if restarted:
            self.sysvm_events.append((t.name, "restarted", t.sysvm.epoch))
            for ch in [c for c in self.channels.values() if c.sysvm == t.name and c.state == "open"]:
                self._attach(t.sysvm, ch)
                os.eventfd_write(ch.notify_fd, 1)  # a blocked guest re-checks its ring

    def _monitor(self):
        """Restart a system VM that died (kill -9, crash); its channels are re-attached."""
        while not self.closing:
            for fd, _ in self.monitor_epoll.poll(0.5):
                with self.lock:
                    t, epoch = self.monitored.pop(fd, (None, None))
                    self.monitor_epoll.unregister(fd)
                os.close(fd)
                if t is None or self.closing:
                    continue
                with t.lock:
                    # The pidfd fired: that process is gone. (Popen.poll() is no witness here:
                    # it answers None while another thread sits in Popen.wait().)
                    if t.sysvm.epoch != epoch:
                        continue
                    self.sysvm_events.append((t.name, "died", epoch))
                    if self.restart_system_vms:
                        try:
                            self._start_sysvm(t)
                        except (SystemVMDown, OSError) as e:
                            self.sysvm_events.append((t.name, "restart failed: %s" % e, epoch))

    def kill_system_vm(self, tenant, wait_restart=True, timeout=10.0):
        """SIGKILL the tenant's system VM (for demos and tests); the monitor restarts it."""
        t = self.tenant(tenant)
        old = t.sysvm.epoch
        t.sysvm.kill()
        if self.stepped:
            return t.sysvm  # stepped: the caller restarts it (restart_system_vm)
        if wait_restart:
            end = time.monotonic() + timeout
            while not (t.sysvm.epoch > old and t.sysvm.alive):
                if time.monotonic() > end:
                    raise SystemVMDown("system VM of %s did not come back" % tenant)
                time.sleep(0.005)
        return t.sysvm

    def restart_system_vm(self, tenant):
        t = self.tenant(tenant)
        with t.lock:
            self._start_sysvm(t)
        return t.sysvm

    # -- images ----------------------------------------------------------------------------------
    def load(self, path):
        """A function: C source (built with the SDK, cached) or a built image folder/binary."""
        key = os.path.abspath(path)
        if key not in self.images:
            self.images[key] = load_image(path)
        return self.images[key]

    def template(self, t, image):
        with t.lock:
            tpl = t.templates.get(image["digest"])
            if tpl is None:
                tpl = t.templates[image["digest"]] = Template(self.kvm, image, self.ram_size)
            return tpl

    # -- user VMs and channels -------------------------------------------------------------------
    def create_user_vm(self, tenant, image, input_bytes=b"", timeout_ms=10_000):
        """A user VM of the tenant, ready to run (not yet runnable). Starts the system VM."""
        t = self.tenant(tenant)
        sysvm = self.serving_system_vm(t)
        tpl = self.template(t, image)
        with self.lock:
            if len(t.uvms) >= t.quota_uvms:
                raise QuotaExceeded("tenant %s already runs %d user VMs" % (tenant, len(t.uvms)))
            uvm = self.uvm_class(next(self.ids), tenant, image["name"], timeout_ms)
            uvm.t_create = time.perf_counter_ns()
            t.uvms[uvm.id] = uvm
            self.uvms[uvm.id] = uvm
        try:
            page = self._alloc_page(t, ("channel", uvm.id))
            init_channel(page.mem)
            doorbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            notify = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            ch = Channel(uvm.id, uvm, page, doorbell, notify)
            uvm.channel, uvm.notify_fd = ch, notify
            self.channels[ch.id] = ch
            uvm.vm = self.vm_pool.take()
            uvm.mem, uvm.vcpu = tpl.instantiate(uvm.vm, page.mem, input_bytes, doorbell)
            self.pages.map(page, ("uvm", uvm.id))
            self._attach(sysvm, ch)
            self.sched.attach(uvm)
        except BaseException:
            self.destroy(uvm)
            raise
        uvm.t_ready = time.perf_counter_ns()
        return uvm

    def serving_system_vm(self, t):
        """The system VM a new channel of tenant t joins: t's own, always."""
        return self.system_vm(t.name)

    def _alloc_page(self, t, owner):
        with self.lock:
            if self.pages.in_use(t.name) >= t.quota_pages:
                raise QuotaExceeded("tenant %s holds its %d pages" % (t.name, t.quota_pages))
            return self.pages.alloc(owner, t.name)

    def _attach(self, sysvm, ch):
        sysvm.call("attach", fds=[ch.page.fd, ch.doorbell_fd, ch.notify_fd], chan=ch.id, uvm=ch.uvm.id)
        ch.page.shared_out = True
        ch.sysvm = sysvm.tenant
        self.pages.map(ch.page, ("sysvm", sysvm.tenant))

    def start(self, uvm):
        uvm.deadline_ns = S.now_ns() + uvm.timeout_ms * 1_000_000
        self.sched.submit(uvm)

    def wait(self, uvm, timeout=None):
        if not uvm.done.wait(timeout):
            raise TimeoutError("user VM %d did not finish" % uvm.id)
        return self.report(uvm)

    def report(self, uvm):
        ch = uvm.channel
        rep = ch.report if ch is not None and ch.report else {}
        result = uvm.result_bytes() if uvm.mem is not None and uvm.status in ("ok", "error") else b""
        return {
            "tenant": uvm.tenant, "function": uvm.image, "user_vm": uvm.id, "status": uvm.status,
            "exit_status": uvm.exit_status, "result": result.decode("utf-8", "replace"), "result_bytes": result,
            "log": rep.get("log", []), "start_us": round((uvm.t_ready - uvm.t_create) / 1000, 1),
            "run_us": round((uvm.t_end - uvm.t_ready) / 1000, 1) if uvm.t_end else None,
            "io_requests": rep.get("served", 0), "exits": uvm.exits, "pages_added": len(uvm.pages),
            "detail": uvm.detail,
        }

    def destroy(self, uvm, wait=True):
        """Tear the user VM down: off the scheduler and its channel detached from the system VM
        (whose account of it, requests served and log lines, is kept); then the VM is closed, its
        pages unmapped and scrubbed and its memory unmapped. KVM takes ~14 ms to destroy a VM on
        this machine, so with wait=False that second half runs on the reaper thread, off the
        invocation's path (the pages stay owned by the user VM until then)."""
        self._detach(uvm)
        if wait or self.stepped:
            self._teardown(uvm)
        else:
            self.reaper_queue.put(uvm)

    def _detach(self, uvm, why="destroyed by the host"):
        self.sched.remove(uvm, why)
        if uvm.notify_fd >= 0:
            self.sched.detach(uvm)
        ch = uvm.channel
        if ch is not None and ch.state == "open":
            ch.state = "closed"
            t = self.tenants[ch.sysvm]
            if ("sysvm", ch.sysvm) in ch.page.mapped_by:
                try:
                    ch.report = t.sysvm.call("detach", chan=ch.id)
                except NanvixError as e:
                    ch.report = {"served": 0, "log": [], "error": str(e)}
                self.pages.unmap(ch.page, ("sysvm", ch.sysvm))  # detached, or its process died
            try:  # the channel id is done with: so is any verdict about it
                os.unlink(broken_mark(t.sysvm.root, ch.id))
            except FileNotFoundError:
                pass
        if uvm.state not in (S.EXITED, S.CRASHED):
            uvm.state = S.CRASHED
            uvm.status = uvm.status or "crashed"
            uvm.detail = uvm.detail or "destroyed by the host"

    def _teardown(self, uvm):
        ch = uvm.channel
        if uvm.vm is not None:
            uvm.vm.close()
        for page in ([ch.page] if ch is not None else []) + uvm.pages:
            self.pages.unmap(page, ("uvm", uvm.id))
            if page.owner is not None:
                self.pages.release(page)
        uvm.pages = []
        if ch is not None and ch.doorbell_fd >= 0:
            for fd in (ch.doorbell_fd, ch.notify_fd):
                os.close(fd)
            ch.doorbell_fd = ch.notify_fd = -1
            self.channels.pop(ch.id, None)
        uvm.notify_fd = -1
        self.release_memory(uvm)
        with self.lock:
            self.tenants[uvm.tenant].uvms.pop(uvm.id, None)
            self.uvms.pop(uvm.id, None)

    def _reaper(self):
        while True:
            uvm = self.reaper_queue.get()
            if uvm is None:
                return
            self._teardown(uvm)

    def release_memory(self, uvm):
        if uvm.mem is not None:
            uvm.mem.close()
            uvm.mem = None

    def invoke(self, tenant, path, input_bytes=b"", timeout_ms=10_000):
        """Run one function to completion; returns its report (see report()). The scheduler ends
        an invocation at its deadline; should it not, the watchdog here does, WATCHDOG_S later.
        Interrupted (Ctrl-C), the user VM is stopped and Interrupted carries its report."""
        image = self.load(path) if isinstance(path, str) else path
        uvm = self.create_user_vm(tenant, image, input_bytes, timeout_ms)
        try:
            self.start(uvm)
            if not uvm.done.wait(timeout_ms / 1000 + WATCHDOG_S):
                self._detach(uvm, "no end %.0f s past its deadline: stopped by the host's watchdog" % WATCHDOG_S)
                uvm.status = "timeout"
        except KeyboardInterrupt:
            self._detach(uvm, "interrupted (SIGINT)")
            rep = self.report(uvm)
            self.destroy(uvm)
            raise Interrupted(rep)
        except BaseException:
            self.destroy(uvm)
            raise
        self._detach(uvm)
        rep = self.report(uvm)
        self.destroy(uvm, wait=False)
        return rep

    # -- scheduler callbacks (on a core's thread) ------------------------------------------------
    def grow(self, uvm, n):
        """NX_HC_GROW: hand the guest n more host pages, mapped at the hot-add window."""
        t = self.tenants[uvm.tenant]
        if not 1 <= n <= ABI["HOTADD_MAX"] - len(uvm.pages):
            return 0
        got = []
        for _ in range(n):  # all or nothing: the guest takes a non-zero answer as n pages
            try:
                got.append(self._alloc_page(t, ("uvm", uvm.id)))
            except (QuotaExceeded, OutOfPages):
                for page in got:
                    self.pages.release(page)
                return 0
        first = None
        for page in got:
            idx = len(uvm.pages)
            gpa = ABI["GPA_HOTADD"] + idx * ABI["PAGE_2M"]
            uvm.vm.set_memory(SLOT_HOTADD + idx, gpa, page.mem)
            self.pages.map(page, ("uvm", uvm.id))
            uvm.pages.append(page)
            first = first or gpa
        return first

    def finished(self, uvm, how, detail):
        uvm.t_end = time.perf_counter_ns()
        if how == S.LEFT_EXIT:
            uvm.status = "ok" if uvm.exit_status == 0 else "error"
            uvm.state = S.EXITED
        else:
            uvm.status = STATUS[how]
            uvm.state = S.CRASHED
        uvm.detail = detail
        uvm.done.set()

    # -- the state report ---------------------------------------------------------------------------
    def state(self):
        """Everything in the spec's vocabulary, as plain data (see report.py)."""
        return state_report(self)

    def channel_broken(self, ch):
        """The serving system VM found the channel's guest-written indices impossible (its
        recorded verdict, which outlives the process)."""
        if ch.sysvm is None or ch.state != "open":
            return False
        return os.path.exists(broken_mark(self.tenants[ch.sysvm].sysvm.root, ch.id))

    def close(self):
        self.closing = True
        for uvm in list(self.uvms.values()):
            if uvm.vm is not None and uvm.channel is not None and uvm.channel.state == "open":
                self.destroy(uvm, wait=False)
        self.reaper_queue.put(None)
        self.reaper.join()
        self.sched.stop()
        for t in self.tenants.values():
            t.sysvm.stop()
            for tpl in t.templates.values():
                tpl.close()
        if self.monitor:
            self.monitor.join(2)
        for fd in list(self.monitored):
            os.close(fd)
        self.monitored = {}
        self.monitor_epoll.close()
        self.vm_pool.close()
        self.pages.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
