"""The control plane: tenants, their system VMs, user VMs, channels, the page pool, invocations.

An invocation: take a user VM of the tenant that is ready for the function (prepared ahead of time
from the function's snapshot template: VM, vCPU in the snapshot's state, memory slots, copy-on-write
memory, its channel handed out on the tenant's arena), write the input, activate the channel, run
the vCPU on the scheduler, return the function's result. After it, the user VM is reset to the
snapshot and made ready again for the same tenant and function (after a clean exit, or a stop at
its deadline; a crash destroys the VM), off the invocation's path. A user VM never moves to another
tenant. `state()` reports all of it in the spec's vocabulary.
"""
import collections
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
from nanvix.impl.channel import Arena, init_channel
from nanvix.impl.channel.arena import SHARDS_MAX
from nanvix.impl.control.pages import PagePool
from nanvix.impl.control.pools import VmPool
from nanvix.impl.control.register import Register
from nanvix.impl.control.report import state_report
from nanvix.impl.control.uvm import DEFAULT_RAM, SLOT_HOTADD, Template
from nanvix.impl.errors import InvalidArgument, NanvixError, NotFound, OutOfPages, QuotaExceeded, SystemVMDown
from nanvix.impl.guest.build import build_image
from nanvix.impl.guest.linux import image as linux_image
from nanvix.impl.kvm import Kvm
from nanvix.impl.limits import Limits
from nanvix.impl.sysvm.client import SystemVM
from nanvix.impl.sysvm.jail import place_host, sweep_cgroups, unplace_host
from nanvix.impl.threads import spawn

HDR_SQ_FLAGS, NEED_WAKEUP = ABI["HDR_SQ_FLAGS"], ABI["SQ_NEED_WAKEUP"]
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def tenant_name(name):
    """name, if it is a tenant's name (InvalidArgument otherwise: any other object included)."""
    if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
        raise InvalidArgument("tenant names are 1-32 of [a-z0-9_-], starting with a letter or digit; got %r" % (name,))
    return name
STATUS = {S.LEFT_EXIT: None, S.LEFT_CRASH: "crashed", S.LEFT_TIMEOUT: "timeout"}
WATCHDOG_S = 5.0
# A system VM that kept more than SYSVM_BUSY of a CPU busy over the last PACE_S gives way (its
# wake-ups stop preempting host threads) until it is under SYSVM_CALM again: see _pace_system_vms.
PACE_S = 0.025
SYSVM_BUSY, SYSVM_CALM = 0.5, 0.25
IDLE_WAIT_S = 2.0        # how long a teardown waits for the system VM to let go of a channel
RECYCLE_WAIT_S = 0.005   # how long a start waits for a user VM being reset rather than build one
LOCAL_SHARD = 0          # the control plane's own process is VMM shard 0


class Interrupted(KeyboardInterrupt):
    """An invocation stopped by Ctrl-C; .report is what it had done."""

    def __init__(self, report):
        super().__init__("interrupted")
        self.report = report


def default_home():
    return os.environ.get("NANVIX_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share", "nanvix")


class Tenant:
    """A tenant: its system VM, its channel arena (every channel page of the tenant, shared with
    its system VM only) with its doorbell and notify eventfds, its user VMs and their pools."""

    def __init__(self, name, tid, root, limits, uid, capacity, sysvm_class=SystemVM, shard=LOCAL_SHARD,
                 cgroup=None):
        self.name, self.id, self.root = name, tid, root
        self.limits = limits
        self.invocations = 0     # running now (against limits.invocations)
        self.sysvm_up = False    # started and not seen dying (the monitor watches its pidfd)
        self.sysvm_paced = None  # (monotonic ns, its cgroup's CPU ns) when last looked at
        self.sysvm_gives_way = False   # its system VM runs SCHED_BATCH (see Runtime._pace_system_vms)
        self.arena = Arena.create(capacity, "nanvix-arena-%s" % name)
        self.doorbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.notify = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.sysvm = sysvm_class(name, root, self.arena.fd, self.doorbell, {shard: self.notify}, uid,
                                 limits, cgroup)
        self.free_slots = list(range(capacity - 1, -1, -1))  # pop() hands out slot 0 first
        self.slot_page = {}      # slot -> its Page (made on the slot's first use)
        self.uvms = {}
        self.templates = {}
        self.retired = set()     # templates of functions forgotten, closed once no user VM has one
        self.ready = collections.defaultdict(collections.deque)  # digest -> user VMs ready to start
        self.lock = threading.RLock()
        self.ready_cond = threading.Condition(self.lock)

    @property
    def quota_uvms(self):
        return self.limits.user_vms

    @property
    def quota_pages(self):
        return self.limits.pages

    def ring(self):
        """Wake the system VM (it takes in channel changes, or acknowledges a release)."""
        try:
            os.eventfd_write(self.doorbell, 1)
        except OSError:
            pass

    def close(self):
        for tpl in list(self.templates.values()) + list(self.retired):
            tpl.close()
        self.arena.close()
        os.close(self.arena.fd)
        os.close(self.doorbell)
        os.close(self.notify)


class Channel:
    """The control plane's record of one channel: a slot of its serving tenant's arena."""

    def __init__(self, uvm, page, slot, serving, shard):
        self.id, self.uvm, self.page, self.slot = uvm.id, uvm, page, slot
        self.tenant = uvm.tenant
        self.sysvm = serving.name   # the tenant whose system VM serves it (its own, always)
        self.arena = serving.arena
        self.state = "open"
        self.shard = shard
        self.active = False
        self.used = False    # activated in the current generation (so the system VM may touch it)


class UserVM:
    """One VM of a tenant, for one function; recycled from invocation to invocation of that same
    tenant and function. The scheduler reads and writes state, core and exits."""

    def __init__(self, uid, tenant, image, template):
        self.id, self.tenant, self.image = uid, tenant, image["name"]
        self.digest, self.tpl = image["digest"], template
        self.pages = []          # pages added on NX_HC_GROW
        self.vm = self.vcpu = self.mem = self.channel = None
        self.awaiting_command = False  # read by the scheduler only when it serves NX_HC_COMMAND
        self.invocations = 0
        self.new_invocation()

    def new_invocation(self, timeout_ms=10_000):
        """Everything per invocation, fresh (the VM itself is reset by Template.reset)."""
        self.timeout_ms = timeout_ms
        self.state = S.CREATED
        self.core = None
        self.exits = 0
        self.exit_status = None
        self.status = None
        self.detail = ""
        self.evict = ""          # why the host is taking it off its core (the scheduler reads it)
        self.left = None         # how its run on a core ended (S.LEFT_*), once it has
        if getattr(self, "done", None) is None:
            self.done = threading.Event()
        else:  # (one Event per user VM: the last invocation's waiter has returned)
            self.done.clear()
        self.t_create = time.monotonic_ns()
        self.t_ready = self.t_run = self.t_end = 0
        self.deadline_ns = 0
        self.wake_ns = 0         # parked with a sleeping thread: when the scheduler wakes it (ns)
        self.t_queued = 0        # runnable since (ns; the scheduler's, for its latencies)
        self.invocation = None

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
    """A function image from a path: C source (built with the SDK, cached), a Python (*.py) or
    JavaScript (*.js) function, a static Linux program (an ELF binary), or a built image (its
    folder or its image.bin). Raises NotFound or InvalidArgument with a one-line reason."""
    if not isinstance(path, str) or not os.path.exists(path):
        raise NotFound("%s: no such file or directory" % path)
    if path.endswith((".c", ".py", ".js")) or linux_image.is_elf(path):
        if not os.path.isfile(path):
            raise InvalidArgument("%s: not a file" % path)
        if path.endswith(".py"):
            return linux_image.python_image(path)
        if path.endswith(".js"):
            return linux_image.javascript_image(path)
        if path.endswith(".c"):
            return build_image(path)
        return linux_image.build(path, os.path.basename(path))
    d = path if os.path.isdir(path) else os.path.dirname(path) or "."
    meta_path = os.path.join(d, "meta.json")
    if not (os.path.isfile(meta_path) and os.path.isfile(os.path.join(d, "image.bin"))):
        raise InvalidArgument("%s: neither C source (*.c), a Python or JavaScript function (*.py, *.js), "
                              "a static Linux program, nor a built image (a folder with image.bin and "
                              "meta.json, from `nanvix build`)" % path)
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        image = {"path": os.path.join(d, "image.bin"), "end": int(meta["end"]), "name": str(meta["name"]),
                 "digest": os.path.basename(os.path.abspath(d))}
        for key, kind in (("entry", int), ("ram", int), ("kind", str), ("zpoline", bool)):
            if key in meta:
                image[key] = kind(meta[key])
        return image
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument("%s: a malformed meta.json (%s)" % (meta_path, e))


class Runtime:
    """The control plane of one host. A subclass may replace the pieces named by the class
    attributes (the refinement harness builds a stepped runtime that way).

    ready_per_function: user VMs kept ready per (tenant, function) once it has been used or
    deployed (0: build each one on demand); recycle: reset a user VM that exited cleanly and make it
    ready again (else it is destroyed after each invocation)."""
    page_pool_class = PagePool
    sysvm_class = SystemVM
    uvm_class = UserVM
    stepped = False   # True: nothing runs by itself (no worker threads, no monitor, no pools)
    shard_id = LOCAL_SHARD

    def __init__(self, home=None, cores=0, max_pages=4096, pool_size=4, slice_ms=10,
                 quota_uvms=64, quota_pages=256, ram_size=DEFAULT_RAM, restart_system_vms=True,
                 ready_per_function=3, recycle=True, arena_slots=256, limits=None, fair_cores=False):
        """limits: the default Limits of a tenant (quota_uvms and quota_pages set its user_vms and
        pages); a tenant's own limits, once set (set_limits), are kept in the host's register.
        fair_cores: move this whole process, until close(), into the cpu cgroup that holds the
        system VMs' group (jail.place_host), so a waking system VM or host thread takes a core
        from computing guest code at once (see the README's "Fair cores"); self.placed says
        whether it was made. Off by default: a library does not move its caller's process
        unasked. The `nanvix` commands that run guests turn it on (--no-fair-cores: off)."""
        self.home = home or default_home()
        os.makedirs(os.path.join(self.home, "tenants"), mode=0o700, exist_ok=True)
        if os.geteuid() != 0:
            raise SystemVMDown("a nanvix host jails each tenant's system VM (its own uid, namespaces, "
                               "cgroup): it must run as root")
        # the tenant cgroups of hosts that were killed (never one a live host claims: jail.Owners)
        self.swept_cgroups = sweep_cgroups()
        defaults = (limits or Limits()).replace(user_vms=quota_uvms, pages=quota_pages)
        self.register = Register(self.home, defaults)
        self.kvm = Kvm()
        self.pages = self.page_pool_class(max_pages)
        self.vm_pool = VmPool(self.kvm, 0 if self.stepped else pool_size)
        self.sched = self.scheduler(cores, slice_ms * 1_000_000)
        self.ram_size = ram_size
        self.arena_slots = arena_slots
        self.restart_system_vms = restart_system_vms
        self.ready_per_function = 0 if self.stepped else ready_per_function
        self.recycle = recycle and not self.stepped
        self.tenants = {}
        self.uvms = {}
        self.channels = {}
        self.ids = itertools.count(1)
        self.invocation_ids = itertools.count(1)
        self.lock = threading.RLock()
        self.closing = False
        self.images = {}
        self.wanted = {}          # (tenant, digest) -> image: functions whose pools are kept filled
        self.fill_event = threading.Event()
        self.monitor_epoll = select.epoll()
        self.monitored = {}
        self.sysvm_events = []   # (tenant, what) history: crashes, restarts
        self.monitor = self.filler = None
        self.held = []            # user VMs started by hold()
        self.shards = []          # VMM shard processes (ShardClient), shard ids 1..
        self.reap_lock = threading.Condition()
        self.reap_queue = collections.deque()   # (user VM, recycle?) after an invocation
        self.recycling = collections.Counter()  # (tenant, digest) -> user VMs being reset
        self.reaping = collections.Counter()    # tenant -> its user VMs queued for the reaper
        self.close_queue = queue.SimpleQueue()  # VMs to close: KVM takes ~15 ms for some
        self.reaper = spawn("nanvix-reaper", self._reaper)
        self.closer = spawn("nanvix-vm-closer", self._closer)
        if not self.stepped:
            self.sched.start()
            self.monitor = spawn("nanvix-sysvm-monitor", self._monitor)
            self.filler = spawn("nanvix-uvm-pool", self._filler)
        self.placed = fair_cores and place_host() is not None

    def scheduler(self, cores, slice_ns):
        return S.Scheduler(self, cores, slice_ns)

    # -- tenants and system VMs ----------------------------------------------------------------
    def tenant(self, name, create=True):
        with self.lock:
            t = self.tenants.get(name)
            if t is None:
                if not create:
                    raise NotFound("no tenant %r" % name)
                tenant_name(name)
                uid = self.register.ensure(name)["uid"]
                limits = self.register.limits(name)
                t = Tenant(name, len(self.tenants), os.path.join(self.home, "tenants", name), limits, uid,
                           max(limits.user_vms, self.arena_slots), self.sysvm_class)
                self.tenants[name] = t
                self.sched.watch(name, t.notify, t.arena, self.shard_id)
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
                raise InvalidArgument("system VM of %s is already running" % tenant)
            self._start_sysvm(t)
        return t.sysvm

    def _start_sysvm(self, t):
        """Start (or restart) t's system VM. A restarted one finds its channels in the arena: it
        adopts every active one and fails, with EIO, the requests its predecessor had taken."""
        restarted = t.sysvm.epoch > 0
        t.sysvm_up = False
        t.sysvm.stop()
        t.sysvm.start()
        t.sysvm_paced, t.sysvm_gives_way = None, False   # (a new process, SCHED_OTHER)
        t.sysvm_up = True
        with self.lock:
            pidfd = os.pidfd_open(t.sysvm.pid)
            self.monitored[pidfd] = (t, t.sysvm.epoch)
            self.monitor_epoll.register(pidfd, select.EPOLLIN)
        if restarted:
            self.sysvm_events.append((t.name, "restarted", t.sysvm.epoch))

    def _monitor(self):
        """Restart a system VM that died (kill -9, crash). A restart that fails (it died again
        while starting) is tried again, backing off, while invocations of its tenant wait on it;
        with none waiting, the tenant's next invocation starts it."""
        retry = {}   # tenant -> (when, backoff)
        pace_failed = False
        while not self.closing:
            now = time.monotonic()
            for fd, _ in self.monitor_epoll.poll(min([PACE_S] + [max(0.0, w - now) for w, _ in retry.values()])):
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
                    t.sysvm_up = False
                    self.sysvm_events.append((t.name, "died", epoch))
                    if self.restart_system_vms and not self._restart(t):
                        retry[t.name] = (time.monotonic() + 0.05, 0.05)
            for name, (when, backoff) in list(retry.items()):
                t = self.tenants[name]
                if time.monotonic() < when:
                    continue
                with t.lock:
                    if self.closing or t.sysvm.alive or not t.invocations or self._restart(t):
                        del retry[name]
                    else:
                        backoff = min(2 * backoff, 5.0)
                        retry[name] = (time.monotonic() + backoff, backoff)
            try:
                self._pace_system_vms()
            except Exception as e:   # (pacing is a nicety: restarting system VMs is this thread's duty)
                if not pace_failed:
                    self.sysvm_events.append(("", "pacing system VMs failed: %s: %s" % (type(e).__name__, e), 0))
                pace_failed = True

    def _pace_system_vms(self):
        """Every PACE_S, on the monitor: a system VM that kept more than SYSVM_BUSY of a CPU busy
        since the last look runs SCHED_BATCH until it is under SYSVM_CALM. Its share of the CPU
        is still its cgroup's; what it loses is preempting at its wake-ups, which a flooded one
        has thousands of a second (each fsync's end, each doorbell): traced beside an I/O
        flood, the quiet tenant's invoker and core, runnable on the same CPU, got it in turns
        of ~100 us between them for milliseconds. A SCHED_BATCH thread still preempts guest code at
        SCHED_IDLE at once, its own tenant's too. A system VM that mostly sleeps keeps
        preempting: it is what a waiting guest, spinning on host priority, needs at once (made
        SCHED_BATCH, a quiet tenant's system VM doubled its p50). Only tenants with an invocation
        running, guests that ran in the last 100 ms, or a system VM giving way are looked at.
        (Two 30 s runs each beside an I/O flood, the flooding tenant's system VM SCHED_BATCH by
        hand: quiet p50 600/635 us, p99 1765/1824 us; left SCHED_OTHER: 717/763, 2041/2154.)"""
        now = time.monotonic_ns()
        active = set(self.sched.active_tenants())
        for t in list(self.tenants.values()):
            if not t.sysvm_up or not (t.invocations or t.sysvm_gives_way or t.name in active):
                t.sysvm_paced = None
                continue
            used = t.sysvm.cgroup.cpu_ns()
            last, t.sysvm_paced = t.sysvm_paced, (now, used)
            if used is None or last is None or used < last[1] or now <= last[0]:
                continue
            busy = (used - last[1]) / (now - last[0])
            if busy > SYSVM_BUSY and not t.sysvm_gives_way or busy < SYSVM_CALM and t.sysvm_gives_way:
                t.sysvm_gives_way = not t.sysvm_gives_way
                t.sysvm.give_way(t.sysvm_gives_way)

    def _restart(self, t):
        """Start t's system VM again (t.lock held); False when it failed to start."""
        try:
            self._start_sysvm(t)
            return True
        except (SystemVMDown, OSError) as e:
            self.sysvm_events.append((t.name, "restart failed: %s" % e, t.sysvm.epoch))
            return False

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
                ram = max(self.ram_size, image.get("ram", 0))   # (a Linux runtime asks for more)
                tpl = t.templates[image["digest"]] = Template(self.kvm, image, ram)
            return tpl

    def prepare(self, tenant, image):
        """Keep user VMs ready for this tenant's function from now on (boots its snapshot now)."""
        t = self.tenant(tenant)
        self.template(t, image)
        if self.ready_per_function and (tenant, image["digest"]) not in self.wanted:
            self.wanted[(tenant, image["digest"])] = image
            self.fill_event.set()

    def forget(self, tenant, digest):
        """The tenant deploys no function of this image any more: keep no user VMs ready for it,
        destroy those that were, and drop its snapshot (closed once no user VM of it is left; a
        later use makes everything again). The VMM shards that were given the snapshot drop
        theirs too, on the same terms."""
        t = self.tenants.get(tenant)
        self.wanted.pop((tenant, digest), None)
        for shard in list(self.shards):
            if (tenant, digest) in shard.templates:
                shard.templates.discard((tenant, digest))   # (a later hold hands it over anew)
                try:
                    shard.call("forget", tenant=tenant, digest=digest)
                except (OSError, ValueError, NanvixError):
                    pass   # (a shard that is gone holds nothing)
        if t is None:
            return
        with t.lock:
            ready = t.ready.pop(digest, ())
            tpl = t.templates.pop(digest, None)
            if tpl is not None:
                t.retired.add(tpl)
            if not self.recycling[(tenant, digest)]:
                del self.recycling[(tenant, digest)]
        for uvm in ready:
            self.destroy(uvm, wait=False)
        self._close_retired(t)

    def templates_held(self):
        """[tenant, digest, "live" or "retired"] for every snapshot this process holds open."""
        out = []
        for t in list(self.tenants.values()):
            with t.lock:
                out += [[t.name, d, "live"] for d in t.templates]
                out += [[t.name, tpl.image["digest"], "retired"] for tpl in t.retired]
        return sorted(out)

    def _close_retired(self, t):
        """Close the retired templates of t that no user VM of t uses any more."""
        with t.lock:
            with self.lock:
                used = {id(uvm.tpl) for uvm in t.uvms.values()}
            done = [tpl for tpl in t.retired if id(tpl) not in used]
            t.retired.difference_update(done)
        for tpl in done:
            tpl.close()

    # -- user VMs and channels -------------------------------------------------------------------
    def create_user_vm(self, tenant, image, input_bytes=b"", timeout_ms=10_000, wait=True):
        """A user VM of the tenant for this function, with the input written, ready to start:
        one kept ready if there is one, else one built now. Starts the system VM on first use.
        wait=False: only one kept ready, with no wait (else None)."""
        t0 = time.monotonic_ns()
        t = self.tenant(tenant)
        if wait and (not t.sysvm_up or self.stepped):  # (asking the process itself costs a waitpid)
            self.system_vm(tenant)
        if len(input_bytes) > ABI["INPUT_MAX"]:
            raise InvalidArgument("input of %d bytes exceeds %d" % (len(input_bytes), ABI["INPUT_MAX"]))
        key = (tenant, image["digest"])
        with t.lock:
            ready = t.ready[image["digest"]]
            if wait and not ready and self.recycling[key]:  # one is being reset: sooner than a new one
                t.ready_cond.wait_for(lambda: ready or not self.recycling[key], RECYCLE_WAIT_S)
            uvm = ready.popleft() if ready else None
        if uvm is None:
            if not wait:
                return None
            uvm = self._build(t, image)
        if self.ready_per_function:
            if key not in self.wanted:
                self.prepare(tenant, image)
            elif len(ready) + self.recycling[key] < self.ready_per_function:
                self.fill_event.set()
        uvm.new_invocation(timeout_ms)
        uvm.t_create = t0
        uvm.invocation = next(self.invocation_ids)
        uvm.invocations += 1
        Template.write_input(uvm.mem, input_bytes)
        uvm.t_ready = time.monotonic_ns()
        return uvm

    def _build(self, t, image, tpl=None):
        """A new user VM of t for image (from tpl, default the tenant's snapshot of it, made if
        missing), its channel handed out (not yet active)."""
        tpl = tpl or self.template(t, image)
        serving = self.serving_tenant(t)
        with t.lock:
            if not self._make_room(t, wait=True):
                raise QuotaExceeded("tenant %s is at its quota (%d user VMs, %d pages)"
                                    % (t.name, t.quota_uvms, t.quota_pages))
            with self.lock:
                uvm = self.uvm_class(next(self.ids), t.name, image, tpl)
                t.uvms[uvm.id] = uvm
                self.uvms[uvm.id] = uvm
        try:
            with serving.lock:
                if not serving.free_slots:
                    raise QuotaExceeded("tenant %s has no free channel (%d)" % (serving.name, serving.arena.nslots))
                slot = serving.free_slots.pop()
                page = serving.slot_page.get(slot)
                if page is None:
                    try:
                        page = serving.slot_page[slot] = self.pages.channel_page(t.name, serving.arena, slot)
                    except OutOfPages:
                        serving.free_slots.append(slot)
                        raise
                self.pages.claim(page, ("channel", uvm.id))
            ch = Channel(uvm, page, slot, serving, self.shard_id)
            uvm.channel = ch
            self.channels[ch.id] = ch
            init_channel(page.mem)
            serving.arena.hand_out(slot, uvm.id, self.shard_id)
            uvm.vm = self.vm_pool.take()
            uvm.mem, uvm.vcpu = tpl.instantiate(uvm.vm, page.mem, serving.doorbell)
            self.pages.map(page, ("uvm", uvm.id))
            self.pages.map(page, ("sysvm", serving.name))
            self.sched.attach(uvm, serving.name, slot)
        except BaseException:
            self._teardown(uvm)
            raise
        return uvm

    def _make_room(self, t, pages=1, wait=False):
        """Make room, within t's quotas, for one more user VM holding `pages` pages (0: only
        pages). User VMs kept ready count against the quotas, but never refuse real work: one of
        them (another function's first) is given up instead. wait: while t's own user VMs of
        finished invocations are still with the reaper, wait for what they hold (up to
        IDLE_WAIT_S) rather than refuse the tenant's next invocation (t.lock is held)."""
        def full():
            return (pages == 1 and len(t.uvms) >= t.quota_uvms) or self.pages.in_use(t.name) + pages > t.quota_pages
        end = time.monotonic() + IDLE_WAIT_S
        while full():
            victims = sorted(((d, q) for d, q in t.ready.items() if q), key=lambda dq: -len(dq[1]))
            if victims:
                self._discard(victims[0][1].popleft())
                continue
            left = end - time.monotonic()
            if not wait or not self.reaping[t.name] or left <= 0:
                return False
            t.ready_cond.wait(left)
        return True

    def _discard(self, uvm):
        """Tear a user VM down now, but close its VM on the closer thread (KVM can take ~15 ms)."""
        self._teardown(uvm, close=False)
        if uvm.vm is not None:
            self.close_queue.put(uvm.vm)
            uvm.vm = None

    def serving_tenant(self, t):
        """The tenant whose system VM (and arena) serves a new channel of tenant t: t, always."""
        return t

    def start(self, uvm):
        uvm.deadline_ns = S.now_ns() + uvm.timeout_ms * 1_000_000
        self._activate(uvm, True)
        self.sched.submit(uvm)

    def _activate(self, uvm, on):
        ch = uvm.channel
        if ch is not None and ch.state == "open" and ch.active != on:
            ch.active = on
            ch.used = True
            if not ch.arena.set_active(ch.slot, on, ch.shard):
                pass  # the change ring was full: the system VM rescans every slot instead
            if not on and ch.arena.claimed(ch.slot) and ch.page.mem.u32(HDR_SQ_FLAGS) & NEED_WAKEUP:
                self.tenants[ch.sysvm].ring()  # it sleeps: wake it, so it lets go of the page soon

    def wait(self, uvm, timeout=None):
        if not uvm.done.wait(timeout):
            raise TimeoutError("user VM %d did not finish" % uvm.id)
        return self.report(uvm)

    def report(self, uvm):
        ch = uvm.channel
        served, log, dropped = 0, [], 0
        if ch is not None and ch.state == "open":
            served, log, dropped, _ = ch.arena.account(ch.slot)
        result = uvm.result_bytes() if uvm.mem is not None and uvm.status in ("ok", "error") else b""
        info = ABI["GPA_INFO"]
        syscalls = (uvm.mem.u64(info + ABI["INFO_LINUX_SYSCALLS"]), uvm.mem.u64(info + ABI["INFO_LINUX_SYSCALLS_OUT"])) \
            if uvm.mem is not None else (0, 0)
        return {
            "tenant": uvm.tenant, "function": uvm.image, "user_vm": uvm.id, "invocation": uvm.invocation,
            "status": uvm.status, "exit_status": uvm.exit_status,
            "result": result.decode("utf-8", "replace"), "result_bytes": result,
            "log": log, "log_dropped": dropped,
            "start_us": round(((uvm.t_run or uvm.t_end or uvm.t_ready) - uvm.t_create) / 1000, 1),
            "run_us": round((uvm.t_end - uvm.t_run) / 1000, 1) if uvm.t_end and uvm.t_run else None,
            "io_requests": served, "exits": uvm.exits, "pages_added": len(uvm.pages),
            "syscalls": syscalls[0], "syscalls_left_guest": syscalls[1],   # (Linux programs only)
            "detail": uvm.detail,
        }

    def destroy(self, uvm, wait=True):
        """Tear the user VM down: off the scheduler and its channel deactivated; then (waiting for
        its system VM to let go of the channel) the VM closed, its pages unmapped and scrubbed and
        its memory unmapped. With wait=False the second half runs on the reaper thread, off the
        invocation's path."""
        self._detach(uvm)
        if wait or self.stepped:
            self._teardown(uvm)
        else:
            self._reap(uvm, False)

    def release(self, uvm):
        """After an invocation: a user VM that exited cleanly or was stopped at its deadline
        (reusable) is reset and made ready again (its tenant and function only); any other is
        destroyed. A reset whose channel the system VM
        has already let go of (always so when the guest did no I/O) is done here, in the
        invoker's thread (~60 us: cheaper than waking another thread for it); the rest on the
        reaper thread."""
        self._detach(uvm)
        key = (uvm.tenant, uvm.digest)
        t = self.tenants[uvm.tenant]
        with t.lock:
            recycle = (self.recycle and self.reusable(uvm) and not uvm.pages
                       and len(t.ready[uvm.digest]) + self.recycling[key] < max(self.ready_per_function, 1) * 2)
            if recycle:
                self.recycling[key] += 1
        if recycle and self._released(uvm.channel):
            with t.lock:
                self.reaping[uvm.tenant] += 1   # (_reap_one counts it down, as for the reaper's)
            self._reap_one(uvm, True)
        else:
            self._reap(uvm, recycle)

    @staticmethod
    def reusable(uvm):
        """Whether release() may reset uvm for its function's next invocation rather than destroy
        it: it exited cleanly, or the scheduler stopped it at its deadline. That stop is the one
        a preemption makes (the core kicked out of KVM_RUN between two guest instructions), only
        never resumed, so the VM's state is as sane as that of any VM the host resumes, and the
        reset replaces all of it. (Measured beside a neighbour whose invocations all ran out
        their 300 ms: destroying each and building its replacement cost the host ~1.5 ms of
        CPU per invocation, bursts that kept a quiet tenant's core and invoker off their CPU;
        its p99 2.4 ms, 1.8 ms with the reset.) A crash never is: its state is not known to be
        sane. In the spec a stop is crash_uvm, and its reset destroy_uvm, create_uvm and
        open_channel within the tenant (recycle_uvm, which the harness drives, is the clean
        exit's)."""
        return uvm.state == S.EXITED or uvm.left == S.LEFT_TIMEOUT   # (not the watchdog's stop: left unset)

    def reset(self, uvm):
        """release(), done now in this thread: a user VM that exited cleanly is reset and made
        ready again once its system VM has let go of the channel (else it is destroyed)."""
        self._detach(uvm)
        if not (self.recycle and uvm.state == S.EXITED and not uvm.pages and self.recycle_user_vm(uvm)):
            self._teardown(uvm)

    def recycle_user_vm(self, uvm):
        """Reset a user VM that exited cleanly to its snapshot and make it ready again (see
        _recycle), now in this thread: off the scheduler, its channel deactivated, then reset once
        its system VM has let go of the channel. False if the system VM never lets go: nothing is
        reset (the caller tears the VM down). Whether to recycle at all (the recycle switch, how
        many are kept ready) is the caller's choice; a crashed VM never is (its state is not known
        to be sane)."""
        if uvm.state != S.EXITED:
            raise ValueError("user VM %d did not exit cleanly: only such a VM is recycled" % uvm.id)
        self._detach(uvm)
        if not self._let_go(uvm.channel):
            return False
        self._recycle(uvm)
        return True

    def _reap(self, uvm, recycle):
        if uvm is not None:
            t = self.tenants[uvm.tenant]
            with t.lock:
                self.reaping[uvm.tenant] += 1
        with self.reap_lock:
            self.reap_queue.append((uvm, recycle))
            self.reap_lock.notify()

    def _detach(self, uvm, why="destroyed by the host"):
        self.sched.remove(uvm, why)
        self._activate(uvm, False)
        if uvm.state not in (S.EXITED, S.CRASHED):
            uvm.state = S.CRASHED
            uvm.status = uvm.status or "crashed"
            uvm.detail = uvm.detail or why

    def _let_go(self, ch, timeout=IDLE_WAIT_S):
        """Wait until the serving system VM no longer touches ch's page (see _released)."""
        end = time.monotonic() + timeout
        delay = 20e-6
        while not self._released(ch):
            if time.monotonic() > end:
                t = self.tenants[ch.sysvm]
                self.sysvm_events.append((t.name, "did not let go of channel %d" % ch.id, t.sysvm.epoch))
                return False
            self.tenants[ch.sysvm].ring()
            time.sleep(delay)
            delay = min(delay * 2, 2e-3)
        return True

    def _released(self, ch):
        """The serving system VM no longer touches ch's page: it acknowledged the deactivation,
        or never claimed this generation (see Arena.released), or is not running."""
        return not ch.used or ch.arena.released(ch.slot) or not self.tenants[ch.sysvm].sysvm.alive

    def _teardown(self, uvm, close=True):
        ch = uvm.channel
        if ch is not None and ch.state == "open":
            self._let_go(ch)
        self.sched.detach(uvm)
        if uvm.vm is not None and close:
            uvm.vm.close()
        self._drop_grown(uvm)
        if ch is not None and ch.state == "open":
            ch.state = "closed"
            self.pages.unmap(ch.page, ("uvm", uvm.id))
            self.pages.unmap(ch.page, ("sysvm", ch.sysvm))
            self.pages.release(ch.page)
            serving = self.tenants[ch.sysvm]
            with serving.lock:
                serving.free_slots.append(ch.slot)
            self.channels.pop(ch.id, None)
        if uvm.mem is not None:
            uvm.mem.close()
            uvm.mem = None
        with self.lock:
            self.tenants[uvm.tenant].uvms.pop(uvm.id, None)
            self.uvms.pop(uvm.id, None)
        if uvm.tpl in self.tenants[uvm.tenant].retired:   # (the last user VM of a forgotten function)
            self._close_retired(self.tenants[uvm.tenant])

    def _drop_grown(self, uvm):
        for i, page in enumerate(uvm.pages):
            if uvm.vm is not None and not uvm.vm.closed:
                uvm.vm.delete_memory(SLOT_HOTADD + i)
            self.pages.unmap(page, ("uvm", uvm.id))
            self.pages.release(page)
        uvm.pages = []

    def _recycle(self, uvm):
        """Reset a user VM that exited cleanly to its snapshot and make it ready again: memory
        reverted to the snapshot, the vCPU's whole state restored, the pages it grew into freed,
        its channel page scrubbed and handed out again (a new generation), within its tenant. Its
        system VM has let go of the channel (see _reaper). One of a function forgotten meanwhile
        (its template retired) is torn down instead."""
        t = self.tenants[uvm.tenant]
        with t.lock:
            stale = t.templates.get(uvm.digest) is not uvm.tpl
        if stale:
            return self._discard(uvm)
        ch = uvm.channel
        uvm.tpl.reset(uvm.mem, uvm.vcpu)
        self._drop_grown(uvm)
        self.pages.scrub(ch.page, keep=True)
        init_channel(ch.page.mem)
        ch.arena.hand_out(ch.slot, uvm.id, ch.shard)
        ch.used = False
        uvm.new_invocation()
        with t.lock:   # (forgotten during the reset: it would be kept ready for nothing, for ever)
            keep = t.templates.get(uvm.digest) is uvm.tpl
            if keep:
                t.ready[uvm.digest].append(uvm)
                t.ready_cond.notify_all()
        if not keep:
            self._discard(uvm)

    def _reaper(self):
        """Recycle or tear down user VMs after their invocation, each as soon as its system VM
        has let go of its channel; one slow system VM holds up only its own tenant's VMs."""
        pending = []   # (user VM, recycle?, give-up time)
        delay = 20e-6
        while True:
            with self.reap_lock:
                if not self.reap_queue and not pending:
                    self.reap_lock.wait()
                while self.reap_queue:
                    uvm, recycle = self.reap_queue.popleft()
                    if uvm is None:
                        for u, _, _ in pending:
                            self._reap_one(u, False)
                        return
                    pending.append((uvm, recycle, time.monotonic() + IDLE_WAIT_S))
            now = time.monotonic()
            waiting, late = [], set()
            for uvm, recycle, until in pending:
                ch = uvm.channel
                if ch is None or ch.state != "open" or self._released(ch):
                    self._reap_one(uvm, recycle)
                elif now > until:
                    self.sysvm_events.append((uvm.tenant, "did not let go of channel %d" % ch.id, 0))
                    self._reap_one(uvm, False)
                else:
                    waiting.append((uvm, recycle, until))
                    late.add(ch.sysvm)
            delay = 20e-6 if len(waiting) < len(pending) else min(delay * 2, 1e-3)
            pending = waiting
            if pending:
                for name in late:
                    self.tenants[name].ring()
                with self.reap_lock:  # (a new VM to reap cuts the wait short)
                    if not self.reap_queue:
                        self.reap_lock.wait(delay)

    def _reap_one(self, uvm, recycle):
        t = self.tenants[uvm.tenant]
        try:
            if recycle:
                self._recycle(uvm)
            else:
                self._discard(uvm)
        except Exception as e:  # a failed reset must not stop the reaper: drop that VM
            self.sysvm_events.append((uvm.tenant, "reaping user VM %d failed: %s" % (uvm.id, e), 0))
            try:
                self._teardown(uvm)
            except Exception:
                pass
        finally:
            with t.lock:
                if recycle:
                    self.recycling[(uvm.tenant, uvm.digest)] -= 1
                self.reaping[uvm.tenant] -= 1
                t.ready_cond.notify_all()   # (a start may wait for what this VM held)

    def _closer(self):
        while True:
            vm = self.close_queue.get()
            if vm is None:
                return
            vm.close()

    def _filler(self):
        """Keep ready_per_function user VMs ready for every function a tenant has used, within
        the tenant's quota, off every invocation's path."""
        while not self.closing:
            self.fill_event.wait(0.5)
            self.fill_event.clear()
            for (tenant, digest), image in list(self.wanted.items()):
                if self.closing:
                    return
                t = self.tenants.get(tenant)
                while t is not None and not self.closing and t.sysvm.alive:
                    with t.lock:  # (ready VMs never take the last of a quota: leave room for work)
                        if len(t.ready[digest]) + self.recycling[(tenant, digest)] >= self.ready_per_function \
                                or len(t.uvms) + 2 > t.quota_uvms or self.pages.in_use(tenant) + 2 > t.quota_pages:
                            break
                        # Only from the snapshot there is: one forgotten since this pass began
                        # is not made again (an undeploy would find it left behind).
                        tpl = t.templates.get(digest)
                        if tpl is None or self.wanted.get((tenant, digest)) is not image:
                            break
                    try:
                        uvm = self._build(t, image, tpl)
                        uvm.tpl.prefault(uvm.mem)  # off the path, so the start does not fault it in
                    except Exception:
                        break
                    with t.lock:
                        keep = self.wanted.get((tenant, digest)) is image and t.templates.get(digest) is uvm.tpl
                        if keep:
                            t.ready[digest].append(uvm)
                    if not keep:   # forgotten while it was built
                        self.destroy(uvm, wait=False)
                        break

    # -- user VMs held at once, over VMM shards ----------------------------------------------------
    def hold(self, tenant, image, n, input_bytes=b"", timeout_ms=3_600_000, per_shard=1000):
        """Start n user VMs of a function and let each run until it parks (blocks) or ends, and
        hold them: this process takes up to per_shard of them, VMM shard processes the rest,
        per_shard each (see shard.py). Returns {shard: {state: count}}."""
        from nanvix.impl.control.shard import ShardClient, hold_here
        t = self.tenant(tenant)
        self.system_vm(tenant)
        tpl = self.template(t, image)
        out = {}
        local = min(n, max(0, per_shard - len(self.uvms)))
        if local:
            out[self.shard_id] = hold_here(self, tenant, image, local, input_bytes, timeout_ms)
        n -= local
        while n > 0:
            shard = next((s for s in self.shards if s.held < per_shard), None)
            if shard is None:
                if len(self.shards) + 1 >= SHARDS_MAX:
                    raise QuotaExceeded("all %d VMM shards are full" % SHARDS_MAX)
                shard = ShardClient(len(self.shards) + 1, cores=self.sched.ncores, max_pages=per_shard + 64)
                self.shards.append(shard)
            k = min(n, per_shard - shard.held)
            self._shard_tenant(shard, t, tpl, k)
            out[shard.id] = shard.call("hold", tenant=tenant, image=tpl.image, n=k, input=input_bytes.hex(),
                                       timeout_ms=timeout_ms)["states"]
            shard.held += k
            n -= k
        return out

    def _shard_tenant(self, shard, t, tpl, slots):
        """Give a shard what it needs to hold user VMs of t: the arena, the doorbell, a notify
        eventfd of its own (also handed to t's system VM), the snapshot, and `slots` channel slots."""
        if t.name not in shard.tenants:
            notify = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            t.sysvm.notify_fds[shard.id] = notify  # (handed to every later incarnation too)
            t.sysvm.call("shard", fds=[notify], shard=shard.id)
            shard.call("tenant", fds=[t.arena.fd, t.doorbell, notify], tenant=t.name,
                       quota_uvms=t.quota_uvms, quota_pages=t.quota_pages)
            shard.tenants[t.name] = notify
        if (t.name, tpl.image["digest"]) not in shard.templates:
            shard.call("template", fds=[tpl.fd], tenant=t.name, image=tpl.image, ram_size=tpl.ram_size,
                       state=tpl.state.to_bytes().hex())
            shard.templates.add((t.name, tpl.image["digest"]))
        with t.lock:
            if len(t.free_slots) < slots:
                raise QuotaExceeded("tenant %s has %d free channels" % (t.name, len(t.free_slots)))
            given = [t.free_slots.pop() for _ in range(slots)]
        shard.slots.setdefault(t.name, []).extend(given)
        shard.call("slots", tenant=t.name, slots=given)

    def drop_held(self):
        """Destroy every held user VM, here and in the shards (which then exit)."""
        for uvm in self.held:
            self.destroy(uvm, wait=False)
        self.held = []
        for shard in self.shards:
            shard.close()
            for name, slots in shard.slots.items():  # scrubbed by the shard as it tore down
                t = self.tenants[name]
                with t.lock:
                    t.free_slots.extend(slots)
                t.sysvm.notify_fds.pop(shard.id, None)
        self.shards = []

    def shard_stats(self):
        """Per shard: user VMs, open files, mappings of its process, the snapshots it holds."""
        out = {self.shard_id: {"user_vms": len(self.uvms), "fds": len(os.listdir("/proc/self/fd")),
                               "mappings": sum(1 for _ in open("/proc/self/maps")), "pid": os.getpid(),
                               "templates": self.templates_held()}}
        for s in self.shards:
            r = s.call("stats")
            out[s.id] = {k: r[k] for k in ("user_vms", "fds", "mappings", "pid", "templates")}
        return out

    def invoke(self, tenant, path, input_bytes=b"", timeout_ms=10_000):
        """Run one function to completion; returns its report (see report()). The scheduler ends
        an invocation at its deadline; should it not, the watchdog here does, WATCHDOG_S later.
        Interrupted (Ctrl-C), the user VM is stopped and Interrupted carries its report. A tenant
        running its limit of invocations already is refused (QuotaExceeded)."""
        return self.finish(self.begin(tenant, path, input_bytes, timeout_ms))

    def begin(self, tenant, path, input_bytes=b"", timeout_ms=10_000, ready_only=False, budget_ns=0):
        """The first half of invoke(): a user VM made ready and started, on this thread while a
        core is idle (for at most budget_ns, default a slice), else by a worker; finish(uvm) ends
        it. ready_only (a caller that must not block, such as an event loop): only a user VM kept
        ready and a system VM already running will do; else None, and nothing was done."""
        image = self.load(path) if isinstance(path, str) else path
        if ready_only:
            t = self.tenants.get(tenant)
            if t is None or not t.sysvm.alive or not t.ready[image["digest"]]:
                return None
        else:
            t = self.tenant(tenant)
        with t.lock:
            if t.invocations >= t.limits.invocations:
                raise QuotaExceeded("tenant %s is running its limit of %d invocations" % (tenant, t.limits.invocations))
            t.invocations += 1
        uvm = None
        try:
            uvm = self.create_user_vm(tenant, image, input_bytes, timeout_ms, wait=not ready_only)
            if uvm is not None:
                uvm.deadline_ns = S.now_ns() + uvm.timeout_ms * 1_000_000
                self._activate(uvm, True)
                if not self.sched.run_here(uvm, budget_ns):  # no idle core: a worker runs it when one frees
                    self.sched.submit(uvm)
        except BaseException as e:
            with t.lock:
                t.invocations -= 1
            if uvm is not None:
                self._stopped(uvm, e)
            raise
        if uvm is None:
            with t.lock:
                t.invocations -= 1
        return uvm

    def finish(self, uvm, defer=None):
        """The second half of invoke(): wait for the user VM begin() started to end (at once if
        uvm.done is set), release it and return its report. defer(fn, *args), if given, runs
        the release a little later instead (an event loop's call_soon: after it has answered)."""
        t = self.tenants[uvm.tenant]
        try:
            try:
                if not uvm.done.wait(uvm.timeout_ms / 1000 + WATCHDOG_S):
                    self._detach(uvm, "no end %.0f s past its deadline: stopped by the host's watchdog" % WATCHDOG_S)
                    uvm.status = "timeout"
            except BaseException as e:
                self._stopped(uvm, e)
                raise
            rep = self.report(uvm)
            if defer is None:
                self.release(uvm)
            else:
                defer(self.release, uvm)
            return rep
        finally:
            with t.lock:
                t.invocations -= 1

    def _stopped(self, uvm, e):
        """An invocation cut short by an exception: its user VM destroyed; a Ctrl-C becomes
        Interrupted, carrying the report."""
        if isinstance(e, KeyboardInterrupt):
            self._detach(uvm, "interrupted (SIGINT)")
            rep = self.report(uvm)
            self.destroy(uvm)
            raise Interrupted(rep)
        self.destroy(uvm)

    # -- scheduler callbacks (on a core's thread) ------------------------------------------------
    def grow(self, uvm, n):
        """NX_HC_GROW: hand the guest n more host pages, mapped at the hot-add window."""
        t = self.tenants[uvm.tenant]
        if not 1 <= n <= ABI["HOTADD_MAX"] - len(uvm.pages):
            return 0
        got = []
        with t.lock:
            self._make_room(t, pages=n)
        for _ in range(n):  # all or nothing: the guest takes a non-zero answer as n pages
            try:
                if self.pages.in_use(t.name) >= t.quota_pages:
                    raise QuotaExceeded(t.name)
                got.append(self.pages.alloc(("uvm", uvm.id), t.name))
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
        uvm.t_end = time.monotonic_ns()
        uvm.left = how
        if how == S.LEFT_EXIT:
            uvm.status = "ok" if uvm.exit_status == 0 else "error"
            uvm.state = S.EXITED
        else:
            uvm.status = STATUS[how]
            uvm.state = S.CRASHED
        uvm.detail = detail
        uvm.done.set()

    # -- limits and usage ------------------------------------------------------------------------
    def limits(self, tenant):
        return self.tenant(tenant).limits

    def set_limits(self, tenant, **changes):
        """Change some of a tenant's limits (checked; kept in the register). The control plane's
        take effect at once; the system VM's storage limits through a message, its cgroup's by
        rewriting it; a larger largest-file restarts the system VM (its jail's file-size limit
        can only be lowered from inside)."""
        t = self.tenant(tenant)
        with t.lock:
            old = t.limits
            new = t.limits = self.register.set_limits(tenant, **changes)
            t.sysvm.limits = new
            if t.sysvm.alive:
                if new.file_size > old.file_size:
                    self._start_sysvm(t)
                else:
                    if t.sysvm.cgroup.available:
                        t.sysvm.cgroup.create(new.sysvm_memory, new.sysvm_cpu, new.sysvm_pids)
                    t.sysvm.call("limits", limits=new.to_dict())
        self.fill_event.set()
        return new

    def usage(self, tenant):
        """What the tenant holds now, beside its limits: user VMs, pages and running invocations
        (the control plane's count), files, keys and log (its system VM's, started if need be), its
        system VM's memory, CPU and tasks (its cgroup's)."""
        t = self.tenant(tenant)
        with t.lock:
            out = {"tenant": tenant, "user_vms": len(t.uvms), "pages": self.pages.in_use(tenant),
                   "invocations": t.invocations}
        sysvm = self.system_vm(tenant)
        theirs = sysvm.call("usage").get("usage")
        if not isinstance(theirs, dict):
            raise SystemVMDown("system VM of %s sent a malformed usage" % tenant)
        # its own counts only: numbers, under names the control plane does not answer for
        out.update({k: v for k, v in theirs.items() if k not in out and type(v) is int and k != "limits"})
        out.update(sysvm.cgroup.usage())
        out["limits"] = t.limits.to_dict()
        return out

    # -- the state report ---------------------------------------------------------------------------
    def state(self):
        """Everything in the spec's vocabulary, as plain data (see report.py)."""
        return state_report(self)

    def channel_broken(self, ch):
        """The serving system VM found the channel's guest-written indices impossible (its
        verdict in the arena, which outlives the process)."""
        return ch.state == "open" and ch.arena.broken(ch.slot)

    def close(self):
        self.closing = True
        if self.shards or self.held:
            self.drop_held()
        self.fill_event.set()
        if self.filler:
            self.filler.join(5)
        for uvm in list(self.uvms.values()):
            if uvm.vm is not None:
                self.destroy(uvm, wait=False)
        self._reap(None, False)
        self.reaper.join()
        self.close_queue.put(None)
        self.closer.join()
        self.sched.stop()
        for t in self.tenants.values():
            t.sysvm.stop()
        if self.monitor:
            self.monitor.join(2)
        for fd in list(self.monitored):
            os.close(fd)
        self.monitored = {}
        self.monitor_epoll.close()
        for t in self.tenants.values():
            t.close()
        self.vm_pool.close()
        self.pages.close()
        if self.placed:
            self.placed = False
            unplace_host()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
