"""The implementation, driven one spec operation at a time.

`Driver` owns a stepped runtime (nanvix.refine.stepped: no threads, system VMs that serve only when
told), optionally with a planted bug (nanvix.refine.plants), and a stepper guest in every user VM. Each method is named after the spec operation it performs and
takes the spec's indices (tenant t, user VM u, channel c, page p, core k); where the
implementation makes a choice the spec leaves open (which runnable user VM a core takes, which
free page a channel gets) the method returns that choice so the spec can be given the same one.
Every method returns an Outcome: ok (bool) plus what was observed. It never raises for an
operation the implementation refuses: a refusal is an outcome to compare with the spec's error.
"""
import os
import shutil
import sqlite3
import tempfile

from nanvix.impl import sched as S
from nanvix.impl.abi import ABI
from nanvix.impl.errors import QuotaExceeded, SystemVMDown
from nanvix.refine.abstraction import ENTRY_FIELDS
from nanvix.refine.guestplants import stepper_image
from nanvix.spec.requests import FIELDS
from nanvix.refine.plants import runtime_class
from nanvix.refine.stepped import serving_by_loop

STEPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stepper.c")
# A command runs on its core until the guest asks for the next one: no time slice may cut it short
# (a slow one, e.g. growing by a page under nested paging, would otherwise look like a refusal).
STEP_NS = 30_000_000_000
CMD_SUBMIT, CMD_DELIVER, CMD_SCRIBBLE, CMD_BLOCK, CMD_EXIT, CMD_CRASH, CMD_LOOP, CMD_GROW = range(1, 9)
SCRIBBLE_FIELDS = {"sq_tail": ABI["HDR_SQ_TAIL"], "cq_head": ABI["HDR_CQ_HEAD"],
                   "sq_head": ABI["HDR_SQ_HEAD"], "cq_tail": ABI["HDR_CQ_TAIL"]}


class Outcome(dict):
    """ok plus observations, e.g. Outcome(ok=True, u=3), or a refusal named with the spec's error
    code: Outcome(ok=False, err="EFULL", why="the SQ holds 64 requests")."""

    @property
    def ok(self):
        return self["ok"]

    @property
    def err(self):
        return "OK" if self["ok"] else self["err"]


def yes(**kw):
    return Outcome(ok=True, **kw)


def no(err, why, **kw):
    return Outcome(ok=False, err=err, why=why, **kw)


def left_unnamed(how, crash_asked=False, **kw):
    """The refusal to report when a vCPU left its core in a way the spec has no name for (its
    STEP_NS slice ran out, its budget, a crash the harness did not ask for): reported as it is,
    e.g. LEFT_PREEMPT. None for any other way."""
    if how in (S.LEFT_PREEMPT, S.LEFT_TIMEOUT) or (how == S.LEFT_CRASH and not crash_asked):
        return no("LEFT_" + how.upper(), "the guest left its core (%s) before answering" % how, **kw)
    return None


class Driver:
    def __init__(self, tenants=2, cores=2, pages=8, quota_uvms=4, quota_pages=4, home=None, plant=None,
                 loop=False):
        """loop: the system VMs serve by their own loop (take/complete are then theirs)."""
        self.home = home or tempfile.mkdtemp(prefix="nanvix-check-")
        self.own_home = home is None
        rtc = runtime_class(plant)
        self.rt = (serving_by_loop(rtc) if loop else rtc)(home=self.home, cores=cores, max_pages=pages,
                                       quota_uvms=quota_uvms, quota_pages=quota_pages, pool_size=0)
        self.image = stepper_image(STEPPER, self.rt.guest_plant)
        self.ntenants = tenants
        self.uvm = {}        # spec index u -> UserVM
        self.index = {}      # impl id -> spec index u

    # -- names -------------------------------------------------------------------------------------
    @staticmethod
    def tname(t):
        return "t%d" % t

    # -- tenants and system VMs ----------------------------------------------------------------
    def _tenant(self, t):
        return self.rt.tenants.get(self.tname(t))

    def create_tenant(self, t):
        if self._tenant(t) is not None:
            return no("EINVAL", "tenant exists")
        self.rt.tenant(self.tname(t))
        return yes()

    def start_sysvm(self, t):
        tn = self._tenant(t)
        if tn is None:
            return no("EINVAL", "no such tenant")
        if tn.sysvm.epoch > 0:
            return no("EINVAL", "already started (a dead one is restarted, not started)")
        self.rt.start_system_vm(self.tname(t))
        return yes()

    def crash_sysvm(self, t):
        tn = self._tenant(t)
        if tn is None or not tn.sysvm.alive:
            return no("EINVAL", "not running")
        self.rt.kill_system_vm(self.tname(t))
        return yes()

    def restart_sysvm(self, t):
        tn = self._tenant(t)
        if tn is None or tn.sysvm.alive or tn.sysvm.epoch == 0:
            return no("EINVAL", "not down")
        self.rt.restart_system_vm(self.tname(t))
        return yes()

    # -- user VMs and channels ----------------------------------------------------------------------
    def create_uvm(self, u, t):
        """create_uvm + open_channel + start_uvm: the implementation does them at once. Returns
        the channel's page."""
        if u % self.ntenants != t:  # a host picks user-VM ids: a tenant cannot name another's
            return no("EINVAL", "user VM slot %d is another tenant's" % u)
        if self._tenant(t) is None:
            return no("EINVAL", "no such tenant")
        if u in self.uvm:
            return no("EBUSY", "user VM slot in use")
        try:
            vm = self.rt.create_user_vm(self.tname(t), self.image, b"", 3_600_000)
        except SystemVMDown as e:
            return no("EDOWN", str(e))
        except QuotaExceeded as e:
            return no("EQUOTA", str(e))
        self.uvm[u] = vm
        self.index[vm.id] = u
        self.rt.start(vm)
        return yes(page=vm.channel.page.index)

    def destroy_uvm(self, u):
        """close_channel + destroy_uvm, for an exited or crashed user VM."""
        vm = self.uvm.get(u)
        if vm is None:
            return no("EINVAL", "no such user VM")
        if vm.state not in (S.EXITED, S.CRASHED):
            return no("EBUSY", "still live")
        self.rt.destroy(vm)
        del self.uvm[u], self.index[vm.id]
        return yes()

    def recycle_uvm(self, u):
        """recycle_uvm + start_uvm, for a user VM that exited cleanly: the runtime's own reset
        (Runtime.recycle_user_vm, which Runtime.reset uses after an invocation: memory back to the
        snapshot, the vCPU's state restored, grown pages freed, the channel page scrubbed and
        handed out again), then the next invocation takes it as production's does
        (create_user_vm hands out the ready VM)."""
        vm = self.uvm.get(u)
        if vm is None:
            return no("EINVAL", "no such user VM")
        if vm.state != S.EXITED:
            return no("EINVAL", "not a clean exit (only those are recycled)")
        tn = self.rt.tenants[vm.tenant]
        if not tn.sysvm.alive:
            return no("EDOWN", "system VM down")
        if not self.rt.recycle_user_vm(vm):
            return no("ESTUCK", "the system VM never let go of the channel")
        again = self.rt.create_user_vm(vm.tenant, self.image, b"", 3_600_000)
        if again is not vm:
            return no("EOTHER", "the next invocation got user VM %d, not the recycled %d" % (again.id, vm.id))
        self.rt.start(vm)
        return yes()

    def broken(self, u):
        vm = self.uvm.get(u)
        return vm is not None and vm.channel is not None and self.rt.channel_broken(vm.channel)

    # -- the guest's actions (its vCPU must be on a core) -----------------------------------------
    def _step(self, u, *commands):
        vm = self.uvm.get(u)
        if vm is None or vm.state != S.RUNNING:
            return None, no("EINVAL", "not running")
        vm.commands = list(commands)
        how = self.rt.sched.run_core(vm.core, STEP_NS)
        vm.commands = None
        unnamed = left_unnamed(how, crash_asked=commands[0][0] == CMD_CRASH)
        return (None, unnamed) if unnamed else (vm, how)

    def submit(self, u, v, kind=0):
        """kind 0: a no-op request; 1: kv_add("n", 1); 2: append "x" to file "f"; 3: stat "f";
        4: list the tenant's top directory (3 and 4 are the Linux-ABI layer's requests). An
        honest guest posts through the microkernel, which picks the request's user_data itself
        (returned: the implementation's choice); a hostile one (it scribbled) writes v raw."""
        vm, how = self._step(u, (CMD_SUBMIT, (v, kind)))
        if vm is None:
            return how
        a = vm.answers
        if a[0] == 1:
            return yes(left=how, user_data=a[1])
        if a[0] == 0:
            return no("EFULL", "64 requests outstanding", left=how)
        return no("EREFUSED", "the microkernel refused the request (not a full ring)", left=how)

    def deliver(self, u):
        vm, how = self._step(u, (CMD_DELIVER, ()))
        if vm is None:
            return how
        a = vm.answers
        if not a[0]:
            return no("EEMPTY", "no completion", left=how)
        res = a[2] - (1 << 64) if a[2] >= 1 << 63 else a[2]
        return yes(left=how, user_data=a[1], result=res)

    def scribble(self, u, field, value):
        """Write a 32-bit value over one of the ring's indices (sq_tail, cq_head, sq_head, cq_tail)."""
        vm, how = self._step(u, (CMD_SCRIBBLE, (SCRIBBLE_FIELDS[field], value & 0xFFFFFFFF, 4)))
        return how if vm is None else yes(left=how)

    def scribble_entry(self, u, slot, value, offset=8, width=8):
        """Write over SQ entry `slot`: by default its 64-bit user_data; any other offset/width
        reaches the fields the system VM validates (opcode, data offsets, lengths)."""
        off = ABI["SQ_OFF"] + 64 * slot + offset
        vm, how = self._step(u, (CMD_SCRIBBLE, (off, value, width)))
        return how if vm is None else yes(left=how)

    def submit_block(self, u, v, kind=0):
        """submit, then at once (in the same run of the guest) block: the guest parks unless the
        answer is already there. blocked: whether it parked."""
        vm, how = self._step(u, (CMD_SUBMIT, (v, kind)), (CMD_BLOCK, ()))
        if vm is None:
            return how
        # (block writes no answer: command_arg[] still holds the submit's when the guest parks
        # or asks for its next command)
        if vm.answers[0] != 1:
            return no("EFULL", "not posted", left=how, blocked=how == S.LEFT_BLOCK)
        return yes(left=how, user_data=vm.answers[1], blocked=how == S.LEFT_BLOCK)

    def block(self, u):
        vm, how = self._step(u, (CMD_BLOCK, ()))
        if vm is None:
            return how
        return yes(left=how) if how == S.LEFT_BLOCK else no("EBUSY", "a completion is there", left=how)

    def exit_uvm(self, u):
        vm, how = self._step(u, (CMD_EXIT, (0,)))
        return how if vm is None else yes(left=how)

    def crash_uvm(self, u):
        vm, how = self._step(u, (CMD_CRASH, ()))
        return how if vm is None else yes(left=how, status=vm.status)

    def loop_past_budget(self, u, budget_ms=20):
        """The guest computes forever; the host kicks it out when its budget is spent and the
        invocation ends with status timeout (for the spec: the host crashes the user VM)."""
        vm = self.uvm.get(u)
        if vm is None or vm.state != S.RUNNING:
            return no("EINVAL", "not running")
        vm.deadline_ns = S.now_ns() + budget_ms * 1_000_000
        vm.commands = [(CMD_LOOP, ())]
        how = self.rt.sched.run_core(vm.core, 2 * budget_ms * 1_000_000)
        vm.commands = None
        return yes(left=how, status=vm.status)

    def spurious_doorbell(self, u):
        """Ring the channel's doorbell with nothing posted: nothing may change."""
        vm = self.uvm.get(u)
        if vm is None or vm.channel is None or vm.channel.state != "open":
            return no("EINVAL", "no channel")
        self.rt.tenants[vm.channel.sysvm].ring()  # the tenant's doorbell, as the guest's `out` does
        return yes()

    def map_page(self, u):
        """The guest grows by one host page; returns the page the host gave it."""
        vm, how = self._step(u, (CMD_GROW, (1,)))
        if vm is None:
            return how
        if not vm.answers[0]:
            return no("EQUOTA", "refused", left=how)
        return yes(left=how, page=vm.pages[-1].index)

    # -- the system VM's side ---------------------------------------------------------------------
    def _sysvm_call(self, u, op):
        """The system VM's answer to op on u's channel. A broken channel is asked too: the system
        VM must refuse it (a restarted one that served it again would be a bug)."""
        vm = self.uvm.get(u)
        if vm is None or vm.channel is None or vm.channel.state != "open":
            return no("EINVAL", "no open channel")
        tn = self.rt.tenants[vm.channel.sysvm]
        if not tn.sysvm.alive:
            return no("EINVAL", "broken channel") if self.broken(u) else no("EDOWN", "system VM down")
        return tn.sysvm.call(op, slot=vm.channel.slot)

    def take(self, u):
        """out: the request's user_data; or broke=True when the guest-written indices were
        impossible and the channel is now broken (the spec: err 0, out (0, 1))."""
        r = self._sysvm_call(u, "take")
        if isinstance(r, Outcome):
            return r
        if r["broke"]:
            return yes(broke=True)
        if r["broken"] and not r["taken"]:
            return no("EINVAL", "broken channel")
        if not r["taken"]:
            return no("EEMPTY" if r["pending"] == 0 else "EFULL", "nothing taken")
        return yes(user_data=r["user_data"], broke=False, error=r["error"])

    def complete(self, u):
        r = self._sysvm_call(u, "complete")
        if isinstance(r, Outcome):
            return r
        if not r["completed"]:
            return no("EINVAL", "broken channel") if r["broken"] else no("EEMPTY", "nothing in service")
        return yes(user_data=r["user_data"], result=r["result"])

    def entry_fields(self, u, index):
        """The fields of SQ entry `index` (mod the ring's size) of u's channel, as the page holds
        them: {name: value} for spec.requests.FIELDS."""
        mem = self.uvm[u].channel.page.mem
        base = ABI["SQ_OFF"] + 64 * (index % ABI["RING_ENTRIES"])
        return {f: mem.u32(base + ENTRY_FIELDS[f]) for f in FIELDS}

    def cq_result(self, u, index):
        """The result field of CQ entry `index` (mod the ring's size) of u's channel."""
        v = self.uvm[u].channel.page.mem.u64(ABI["CQ_OFF"] + 64 * (index % ABI["RING_ENTRIES"]) + 8)
        return v - (1 << 64) if v >= 1 << 63 else v

    # -- the scheduler ----------------------------------------------------------------------------
    def schedule(self, k):
        """The core takes the next runnable user VM (the implementation's choice) and runs it
        until the guest waits for its next command."""
        if not any(self.rt.sched.queue_state()["queues"].values()):
            return no("EINVAL", "nothing runnable")
        if self.rt.sched.current[k] is not None:
            return no("EBUSY", "core busy")
        vm = self.rt.sched.dispatch(k)
        if vm is None:
            return no("EINVAL", "nothing runnable")
        how = self.rt.sched.run_core(k, STEP_NS)
        # (the spec's schedule leaves the user VM on core k: off it, it is no schedule)
        return left_unnamed(how, u=self.index[vm.id]) or yes(u=self.index[vm.id], left=how)

    def running_on(self, k):
        vm = self.rt.sched.current[k]
        return None if vm is None else self.index[vm.id]

    def preempt(self, k):
        vm = self.rt.sched.preempt(k)
        return no("EINVAL", "idle core") if vm is None else yes(u=self.index[vm.id])

    def wake(self):
        """Collect the completion signals: returns the user VMs made runnable."""
        woken = self.rt.sched.poll_wakeups(0)
        return yes(us=sorted(self.index[vm.id] for vm in woken))

    # -- tenants' persistent state (for noninterference) -------------------------------------------
    def tenant_data(self, t):
        """Tenant t's keys and files as its system VM's store holds them."""
        tn = self._tenant(t)
        if tn is None or not tn.sysvm.alive:
            return None
        kv = kv_items(os.path.join(tn.sysvm.root, "kv.sqlite3"))
        files = {}
        root = os.path.join(tn.sysvm.root, "files")
        for dirpath, _, names in os.walk(root):
            for n in names:
                with open(os.path.join(dirpath, n), "rb") as f:
                    files[os.path.relpath(os.path.join(dirpath, n), root)] = f.read().hex()
        return {"kv": kv, "files": files}

    # -- observation ------------------------------------------------------------------------------
    def state(self):
        return self.rt.state()

    def close(self):
        self.rt.close()
        if self.own_home:
            shutil.rmtree(self.home, ignore_errors=True)


def kv_items(path):
    """A tenant's key-value store as it is on disk (what its system VM has acknowledged)."""
    if not os.path.exists(path):
        return {}
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return {bytes(k).hex(): bytes(v).hex() for k, v in db.execute("SELECT key, value FROM kv ORDER BY key")}
    finally:
        db.close()
