"""The implementation, driven one spec operation at a time.

`Driver` owns a stepped Runtime (manual scheduler, system VMs that serve only when told) and a
stepper guest in every user VM. Each method is named after the spec operation it performs and
takes the spec's indices (tenant t, user VM u, channel c, page p, core k); where the
implementation makes a choice the spec leaves open (which runnable user VM a core takes, which
free page a channel gets) the method returns that choice so the spec can be given the same one.
Every method returns an Outcome: ok (bool) plus what was observed. It never raises for an
operation the implementation refuses: a refusal is an outcome to compare with the spec's error.
"""
import os
import shutil
import tempfile

from nanvix.impl import sched as S
from nanvix.impl.ring import ABI
from nanvix.impl.runtime import QuotaExceeded, Runtime
from nanvix.impl.sysvm import SystemVMDown

STEPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest", "stepper.c")
CMD_SUBMIT, CMD_DELIVER, CMD_SCRIBBLE, CMD_BLOCK, CMD_EXIT, CMD_CRASH, CMD_LOOP, CMD_GROW = range(1, 9)
SCRIBBLE_FIELDS = {"sq_tail": ABI["HDR_SQ_TAIL"], "cq_head": ABI["HDR_CQ_HEAD"],
                   "sq_head": ABI["HDR_SQ_HEAD"], "cq_tail": ABI["HDR_CQ_TAIL"]}


class Outcome(dict):
    """ok plus observations, e.g. Outcome(ok=True, u=3) or Outcome(ok=False, why="full")."""

    @property
    def ok(self):
        return self["ok"]


def yes(**kw):
    return Outcome(ok=True, **kw)


def no(why, **kw):
    return Outcome(ok=False, why=why, **kw)


class Driver:
    def __init__(self, tenants=2, cores=2, pages=8, quota_uvms=4, quota_pages=4, home=None):
        self.home = home or tempfile.mkdtemp(prefix="nanvix-check-")
        self.own_home = home is None
        self.rt = Runtime(home=self.home, cores=cores, max_pages=pages, manual=True,
                          quota_uvms=quota_uvms, quota_pages=quota_pages, pool_size=0)
        self.image = self.rt.load(STEPPER)
        self.ntenants = tenants
        self.uvm = {}        # spec index u -> UserVM
        self.index = {}      # impl id -> spec index u

    # -- names -------------------------------------------------------------------------------------
    @staticmethod
    def tname(t):
        return "t%d" % t

    def tenant_index(self, name):
        return int(name[1:])

    # -- tenants and system VMs ----------------------------------------------------------------
    def create_tenant(self, t):
        if self.tname(t) in self.rt.tenants:
            return no("exists")
        self.rt.tenant(self.tname(t))
        return yes()

    def start_sysvm(self, t):
        if self.tname(t) not in self.rt.tenants:
            return no("no tenant")
        try:
            self.rt.start_system_vm(self.tname(t))
        except ValueError:
            return no("running")
        return yes()

    def crash_sysvm(self, t):
        tn = self.rt.tenants.get(self.tname(t))
        if tn is None or not tn.sysvm.alive:
            return no("not running")
        self.rt.kill_system_vm(self.tname(t))
        return yes()

    def restart_sysvm(self, t):
        tn = self.rt.tenants.get(self.tname(t))
        if tn is None or tn.sysvm.alive or tn.sysvm.epoch == 0:
            return no("not down")
        self.rt.restart_system_vm(self.tname(t))
        return yes()

    # -- user VMs and channels ----------------------------------------------------------------------
    def create_uvm(self, u, t):
        """create_uvm + open_channel: the implementation does both at once. Returns the page."""
        if u in self.uvm:
            return no("in use")
        if self.tname(t) not in self.rt.tenants:
            return no("no tenant")
        try:
            vm = self.rt.create_user_vm(self.tname(t), self.image, b"", 3_600_000)
        except (QuotaExceeded, SystemVMDown) as e:
            return no(type(e).__name__)
        except Exception as e:  # the pool is out of pages
            return no("%s: %s" % (type(e).__name__, e))
        self.uvm[u] = vm
        self.index[vm.id] = u
        self.rt.start(vm)
        return yes(page=vm.channel.page.index)

    def destroy_uvm(self, u):
        """close_channel + destroy_uvm, for an exited or crashed user VM."""
        vm = self.uvm.get(u)
        if vm is None or vm.state not in (S.EXITED, S.CRASHED):
            return no("not finished")
        self.rt.destroy(vm)
        del self.uvm[u], self.index[vm.id]
        return yes()

    # -- the guest's actions (its vCPU must be on a core) -----------------------------------------
    def _step(self, u, cmd, *args):
        vm = self.uvm.get(u)
        if vm is None or vm.state != S.RUNNING:
            return None, no("not running")
        vm.commands = [(cmd, args)]
        how = self.rt.sched.run_core(vm.core)
        vm.commands = None
        return vm, how

    def submit(self, u, v):
        vm, how = self._step(u, CMD_SUBMIT, v)
        if vm is None:
            return how
        return yes(left=how) if vm.answers[0] else no("full", left=how)

    def deliver(self, u):
        vm, how = self._step(u, CMD_DELIVER)
        if vm is None:
            return how
        a = vm.answers
        if not a[0]:
            return no("empty", left=how)
        res = a[2] - (1 << 64) if a[2] >= 1 << 63 else a[2]
        return yes(left=how, user_data=a[1], result=res)

    def scribble(self, u, field, value):
        vm, how = self._step(u, CMD_SCRIBBLE, SCRIBBLE_FIELDS[field], value)
        return how if vm is None else yes(left=how)

    def scribble_entry(self, u, slot, value):
        vm, how = self._step(u, CMD_SCRIBBLE, ABI["SQ_OFF"] + 64 * slot + 8, value)  # user_data
        return how if vm is None else yes(left=how)

    def block(self, u):
        vm, how = self._step(u, CMD_BLOCK)
        if vm is None:
            return how
        return yes(left=how) if how == S.LEFT_BLOCK else no("completions pending", left=how)

    def exit_uvm(self, u):
        vm, how = self._step(u, CMD_EXIT, 0)
        return how if vm is None else yes(left=how)

    def crash_uvm(self, u):
        vm, how = self._step(u, CMD_CRASH)
        return how if vm is None else yes(left=how)

    def loop_past_budget(self, u, budget_ms=20):
        """The guest computes forever; the host kicks it out when its budget is spent and the
        invocation ends with status timeout (for the spec: the host crashes the user VM)."""
        vm = self.uvm.get(u)
        if vm is None or vm.state != S.RUNNING:
            return no("not running")
        vm.deadline_ns = S.now_ns() + budget_ms * 1_000_000
        vm.commands = [(CMD_LOOP, ())]
        how = self.rt.sched.run_core(vm.core, 2 * budget_ms * 1_000_000)
        vm.commands = None
        return yes(left=how, status=vm.status)

    def spurious_doorbell(self, u):
        """Ring the channel's doorbell with nothing posted: nothing may change."""
        vm = self.uvm.get(u)
        if vm is None or vm.channel is None or vm.channel.doorbell_fd < 0:
            return no("no channel")
        os.eventfd_write(vm.channel.doorbell_fd, 1)
        return yes()

    def map_page(self, u):
        """The guest grows by one host page; returns the page the host gave it."""
        vm, how = self._step(u, CMD_GROW, 1)
        if vm is None:
            return how
        if not vm.answers[0]:
            return no("refused", left=how)
        return yes(left=how, page=vm.pages[-1].index)

    # -- the system VM's side ---------------------------------------------------------------------
    def _sysvm_call(self, u, op):
        vm = self.uvm.get(u)
        if vm is None or vm.channel is None or vm.channel.state != "open":
            return None
        tn = self.rt.tenants[vm.channel.sysvm]
        if not tn.sysvm.alive:
            return None
        return tn.sysvm.call(op, chan=vm.channel.id)

    def take(self, u):
        r = self._sysvm_call(u, "take")
        if r is None:
            return no("no system VM")
        if not r["taken"]:
            return no("broken" if r["broken"] else "empty")
        return yes(user_data=r["user_data"])

    def complete(self, u):
        r = self._sysvm_call(u, "complete")
        if r is None:
            return no("no system VM")
        return yes(user_data=r["user_data"]) if r["completed"] else no("nothing in service")

    # -- the scheduler ----------------------------------------------------------------------------
    def schedule(self, k):
        """The core takes the next runnable user VM (the implementation's choice) and runs it
        until the guest waits for its next command."""
        if self.rt.sched.current[k] is not None:
            return no("busy")
        vm = self.rt.sched.dispatch(k)
        if vm is None:
            return no("nothing runnable")
        how = self.rt.sched.run_core(k)
        return yes(u=self.index[vm.id], left=how)

    def preempt(self, k):
        vm = self.rt.sched.preempt(k)
        return no("idle") if vm is None else yes(u=self.index[vm.id])

    def wake(self):
        """Collect the completion signals: returns the user VMs made runnable."""
        woken = self.rt.sched.poll_wakeups(0)
        return yes(us=sorted(self.index[vm.id] for vm in woken))

    # -- observation ------------------------------------------------------------------------------
    def state(self):
        return self.rt.state()

    def close(self):
        self.rt.close()
        if self.own_home:
            shutil.rmtree(self.home, ignore_errors=True)
