"""Implementation mutants: deliberate bugs, applied by the harness (never read by production code).

Each mutant is the real implementation with one realistic mistake, made by the one mechanism a
stepped runtime already has: a subclass replacing one piece (the page pool, the scheduler, the user
VM class, a method of the runtime) or, inside the system VM process, the server class and its
ring (`python -m nanvix.refine.sysvm --plant NAME`). The mistakes needing typed access to the ring
or the scheduler are in cplants.pyx.

`nanvix check --plant NAME` runs a campaign against one; `nanvix check --mutants` runs every one
(nanvix.refine.mutants) and prints which check caught it: a lock-step campaign, or, where the
campaign does not reach the mistake, the named directed scenario (nanvix.refine.scenarios, run by
tests/refine/test_mutants.py too). The mistakes in the microkernel's own channel code are built
from a patched copy of kernel.c (guestplants.py); those in the system VM's serving loop are
checked by a campaign in which the loop serves (`nanvix check --loop`).
"""
from nanvix.impl.abi import EINVAL, ENOSYS
from nanvix.impl import sched as S
from nanvix.impl.control.pages import PagePool
from nanvix.impl.control.uvm import SLOT_HOTADD
from nanvix.refine.cplants import MutantRing, MutantScheduler
from nanvix.refine.guestplants import GUEST_BUGS
from nanvix.refine.stepped import SteppedRuntime, SteppedSystemVM, SteppedUserVM
from nanvix.refine.sysvm import SteppedServer


class Mutant:
    """One mistake: where it is (the operation it breaks), what it is, how it is made."""

    def __init__(self, name, where, doc, runtime=None, server=None, loop=False):
        """loop: the mistake is in the system VM's serving loop, which only a campaign in which
        the loop serves reaches."""
        self.name, self.where, self.doc = name, where, doc
        self.server, self.loop = server, loop
        self.runtime = runtime or self._server_runtime()

    def _server_runtime(self):
        class PlantedSystemVM(SteppedSystemVM):
            plant = self.name

        return type("Planted_" + self.name, (SteppedRuntime,), {"sysvm_class": PlantedSystemVM,
                                                                "__doc__": self.doc})


# -- the system VM's ring (cplants.MutantRing), in the system VM process ------------------------------
def ring_server(bug):
    ring = type("Ring_" + bug, (MutantRing,), {"BUG": bug})
    return type("Server_" + bug, (SteppedServer,), {"ring_class": ring})


RING_BUGS = {
    "drop_when_full": ("take", "take() with no room in the CQ for the answer drops the request "
                               "instead of leaving it"),
    "pending_unbounded": ("take", "pending() trusts the guest's sq_tail: no bound (at most 64 ahead) "
                                  "breaks the channel; stale slots are served"),
    "cq_head_unchecked": ("take", "cq_free() reads an impossible guest cq_head as a full CQ instead "
                                  "of breaking the channel"),
    "cq_free_ignores_reserved": ("take", "cq_free() forgets the requests taken and not yet answered: "
                                         "more are taken than the CQ can hold"),
    "sq_slot_mod63": ("take", "take() computes the SQ slot modulo 63 (one short of the ring's size): "
                              "from index 63 on it reads the wrong entry"),
    "take_no_name_check": ("take (validation)", "take() does not check name_len against in_len: "
                                                "a malformed request is served"),
    "complete_success_always": ("complete", "complete() writes a failed request's result as 0: the "
                                            "guest is told it succeeded"),
    "complete_wrong_slot": ("complete", "complete() writes the answer of the CQ's last slot into slot "
                                        "0 (the wrap of cq_tail mishandled)"),
    "recover_none": ("restart_sysvm", "a restarted system VM never answers the requests its "
                                      "predecessor had taken"),
    "recover_replays": ("restart_sysvm", "a restarted system VM takes again the requests its "
                                         "predecessor had taken: each runs twice"),
    "recover_success": ("restart_sysvm", "a restarted system VM answers the requests its predecessor "
                                         "had taken with success instead of EIO"),
    "adopt_unchecked": ("restart_sysvm", "a restarted system VM adopts impossible published indices "
                                         "instead of breaking the channel"),
    "restart_unbreaks": ("restart_sysvm", "a restarted system VM serves again a channel its "
                                          "predecessor had found broken (the arena's verdict ignored)"),
}


# -- the system VM's server, in the system VM process ----------------------------------------------
class RestartNoWake(SteppedServer):
    """A restarted system VM does not wake the guests of the channels it adopted: a guest blocked
    on a request its predecessor had taken waits forever for the EIO it was answered."""

    def _adopt(self, *args):
        self.adopting = True
        try:
            return super()._adopt(*args)
        finally:
            self.adopting = False

    def wake(self, ch):
        if not getattr(self, "adopting", False):
            super().wake(ch)


class AnswerDropsNotify(SteppedServer):
    """answer() drops the ring's 'the guest asked to be notified': a guest that blocked waiting for
    this answer is never woken."""

    def answer(self, ch, r):
        return super().answer(ch, r)[0], False


class BrokenNotRecorded(SteppedServer):
    """A channel found broken is only logged, not recorded in the arena: the control plane (and a
    restarted system VM) go on treating it as open."""

    def record_broken(self, ch):
        self.log.write("sysvm", "channel of uvm-%s broken: %s" % (ch.uvm, ch.ring.broken_reason))


class ErrorAnsweredSuccess(SteppedServer):
    """A request that failed validation is answered with success (result 0) instead of its error."""

    def answer(self, ch, r):
        if r.error:
            ch.served += 1
            self.arena.served(ch.slot)
            return 0, ch.ring.complete(r, 0, b"")
        return super().answer(ch, r)


class EnosysAsEinval(SteppedServer):
    """A request with an unknown opcode is answered EINVAL instead of ENOSYS."""

    def answer(self, ch, r):
        if r.error != ENOSYS:
            return super().answer(ch, r)
        ch.served += 1
        self.arena.served(ch.slot)
        return -EINVAL, ch.ring.complete(r, -EINVAL, b"")


class LoopLostWake(SteppedServer):
    """The loop answers a parked guest's request but loses the wake-up: the guest armed
    NOTIFY_ME and parked, and is never told its answer is there."""

    def wake(self, ch):
        pass


SERVERS = {
    "enosys_as_einval": ("complete (validation)", EnosysAsEinval),
    "restart_no_wake": ("restart_sysvm", RestartNoWake),
    "answer_drops_notify": ("complete", AnswerDropsNotify),
    "broken_not_recorded": ("take", BrokenNotRecorded),
    "error_answered_success": ("complete (validation)", ErrorAnsweredSuccess),
}


# -- the control plane (in the harness's own process) ---------------------------------------------
class NoScrubPool(PagePool):
    """Freed pages are handed out again unscrubbed."""

    @staticmethod
    def scrub(page, keep=False):
        pass


class ChannelPagesUncounted(PagePool):
    """A tenant's pages in use counts only the RAM pages it grew into, not its channel pages: the
    page quota lets it hold more than its share."""

    def in_use(self, tenant=None):
        return sum(1 for p in self.pages if p.owner is not None and p.kind == "ram"
                   and (tenant is None or p.tenant == tenant))


class ForeignSysvm(SteppedRuntime):
    """A new channel is joined to another tenant's system VM when one is running (its page taken
    from that tenant's arena)."""

    def serving_tenant(self, t):
        others = [o for o in self.tenants.values() if o is not t and o.sysvm.alive]
        return others[0] if others else super().serving_tenant(t)


class UvmQuotaOffByOne(SteppedRuntime):
    """The user-VM quota is checked with > instead of >=: a tenant gets one user VM more."""

    def _make_room(self, t, pages=1, wait=False):
        if pages == 1 and len(t.uvms) == t.quota_uvms:
            return self.pages.in_use(t.name) + pages <= t.quota_pages
        return super()._make_room(t, pages, wait)


class GrowIgnoresQuota(SteppedRuntime):
    """NX_HC_GROW hands out pages without checking the tenant's page quota (only the host's
    supply)."""

    def grow(self, uvm, n):
        t = self.tenants[uvm.tenant]
        quota = t.limits.pages
        t.limits = t.limits.replace(pages=1 << 30)
        try:
            return super().grow(uvm, n)
        finally:
            t.limits = t.limits.replace(pages=quota)


class CreateWhenSysvmDown(SteppedRuntime):
    """A user VM is created (its channel handed to the arena) while its tenant's system VM is
    down: nobody will serve it."""

    def system_vm(self, tenant):
        return self.tenant(tenant).sysvm


class DestroyLeaksGrown(SteppedRuntime):
    """Destroying a user VM unmaps the pages it grew into but never frees them."""

    def _drop_grown(self, uvm):
        for i, page in enumerate(uvm.pages):
            if uvm.vm is not None and not uvm.vm.closed:
                uvm.vm.delete_memory(SLOT_HOTADD + i)
            self.pages.unmap(page, ("uvm", uvm.id))
        uvm.pages = []


class RecycleKeepsGrown(SteppedRuntime):
    """Recycling a user VM resets it to its snapshot but leaves the pages it grew into mapped and
    counted against its tenant: the next invocation finds the last one's memory there."""

    def _recycle(self, uvm):
        grown, uvm.pages = uvm.pages, []
        super()._recycle(uvm)
        uvm.pages = grown


class TimeoutIsExit(SteppedRuntime):
    """A user VM stopped for running past its budget is recorded as having exited cleanly."""

    def finished(self, uvm, how, detail):
        super().finished(uvm, S.LEFT_EXIT if how == S.LEFT_TIMEOUT else how, detail)
        if how == S.LEFT_TIMEOUT:
            uvm.status = "ok"


class WakeWithoutCompletion(SteppedUserVM):
    """A wake-up signal wakes a blocked user VM without a look at its ring (a restarted system VM
    signals every channel it adopted, a completion there or not)."""

    def completions_ready(self):
        return self.state == S.BLOCKED or super().completions_ready()


def sched_runtime(bug, doc):
    sched = type("Scheduler_" + bug, (MutantScheduler,), {"BUG": bug})

    def scheduler(self, cores, slice_ns):
        return sched(self, cores, slice_ns, commands=True)
    return type("Planted_" + bug, (SteppedRuntime,), {"scheduler": scheduler, "__doc__": doc})


def runtime(name, doc, **attrs):
    return type("Planted_" + name, (SteppedRuntime,), dict(attrs, __doc__=doc))


MUTANTS = {}


def _add(m):
    MUTANTS[m.name] = m


for _name, (_where, _doc) in RING_BUGS.items():
    _add(Mutant(_name, _where, _doc, server=ring_server(_name)))
for _name, (_where, _cls) in SERVERS.items():
    _add(Mutant(_name, _where, _cls.__doc__, server=_cls))
_add(Mutant("loop_lost_wake", "wake (the serving loop)", LoopLostWake.__doc__, server=LoopLostWake, loop=True))
for _name, (_where, _doc, *_) in GUEST_BUGS.items():
    _add(Mutant(_name, _where, _doc, runtime=runtime(_name, _doc, guest_plant=_name)))
for _name, _where, _cls in (
        ("foreign_sysvm", "create_uvm (open_channel)", ForeignSysvm),
        ("uvm_quota_off_by_one", "create_uvm (quota)", UvmQuotaOffByOne),
        ("grow_ignores_quota", "map_page (quota)", GrowIgnoresQuota),
        ("create_when_sysvm_down", "create_uvm", CreateWhenSysvmDown),
        ("destroy_leaks_grown", "destroy_uvm", DestroyLeaksGrown),
        ("recycle_keeps_grown", "recycle_uvm", RecycleKeepsGrown),
        ("timeout_is_exit", "crash_uvm (budget)", TimeoutIsExit)):
    _add(Mutant(_name, _where, _cls.__doc__, runtime=_cls))
for _name, _where, _attr, _cls in (
        ("no_scrub", "destroy_uvm (scrub)", "page_pool_class", NoScrubPool),
        ("channel_pages_uncounted", "create_uvm (quota)", "page_pool_class", ChannelPagesUncounted),
        ("wake_without_completion", "wake", "uvm_class", WakeWithoutCompletion)):
    _add(Mutant(_name, _where, _cls.__doc__, runtime=runtime(_name, _cls.__doc__, **{_attr: _cls})))
for _name, _where, _doc in (
        ("no_tenant_rotation", "schedule (tenant rotation)",
         "The scheduler takes the first tenant in its order with work every time: the order never "
         "turns, a tenant behind a busy one starves"),
        ("vcpu_queue_lifo", "schedule (order in a tenant)",
         "The scheduler takes a tenant's newest queued vCPU, not its oldest: a vCPU that waits is "
         "overtaken again and again by its own tenant's"),
        ("block_keeps_core", "block",
         "A vCPU that waits for a completion is parked, but its core is never given back: nothing "
         "else runs there"),
        ("preempt_loses_vcpu", "preempt",
         "A preempted vCPU is taken off its core and marked runnable, but put in no queue: it never "
         "runs again")):
    _add(Mutant(_name, _where, _doc, runtime=sched_runtime(_name, _doc)))

NAMES = tuple(sorted(MUTANTS))


def runtime_class(plant):
    """The stepped runtime for a mutant's name (None: the honest one)."""
    if plant is None:
        return SteppedRuntime
    if plant not in MUTANTS:
        raise ValueError("no mutant %r (there are: %s)" % (plant, ", ".join(NAMES)))
    return MUTANTS[plant].runtime


def server_class(plant):
    """The stepped system VM's server class for a mutant run in the system VM process."""
    return MUTANTS[plant].server
