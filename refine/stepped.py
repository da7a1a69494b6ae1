"""The stepped implementation: the real runtime with nothing running by itself.

The refinement harness builds this (never a production host): no worker threads (it dispatches and
runs cores one step at a time), no system VM monitor (it crashes and restarts system VMs itself),
no VM pool, system VMs that serve only when told (nanvix.refine.sysvm), and a scheduler that
serves the stepper guest's NX_HC_COMMAND hypercall.
"""
from nanvix.impl import sched as S
from nanvix.impl.abi import ABI
from nanvix.impl.control.runtime import Runtime, UserVM
from nanvix.impl.sysvm.client import SystemVM


class SteppedSystemVM(SystemVM):
    module = "nanvix.refine.sysvm"
    plant = None  # a planted bug of the system VM process, passed as --plant
    loop = False  # serve by the server's own loop (--loop), not only when told

    def argv(self, cgroup_procs):
        return super().argv(cgroup_procs) + (["--plant", self.plant] if self.plant else []) + \
            (["--loop"] if self.loop else [])


def serving_by_loop(runtime_class):
    """The stepped runtime whose system VMs serve by their real loop (polling, arming
    NEED_WAKEUP, sleeping on the doorbell, waking parked guests)."""
    sysvm = type("Loop" + runtime_class.sysvm_class.__name__, (runtime_class.sysvm_class,), {"loop": True})
    return type("Loop" + runtime_class.__name__, (runtime_class,), {"sysvm_class": sysvm})


class SteppedUserVM(UserVM):
    def __init__(self, *args):
        super().__init__(*args)
        self.commands = None     # queue of (command, args) for NX_HC_COMMAND
        self.answers = None      # the command_arg[] words after the last command


class SteppedRuntime(Runtime):
    stepped = True
    guest_plant = None  # a planted bug of the microkernel the stepper links (nanvix.refine.guestplants)
    sysvm_class = SteppedSystemVM
    uvm_class = SteppedUserVM

    def scheduler(self, cores, slice_ns):
        return S.Scheduler(self, cores, slice_ns, commands=True)

    def command(self, uvm):
        """NX_HC_COMMAND: record what the last command left in command_arg[], then hand out the
        next scripted command, or None (the vCPU yields its core)."""
        base = ABI["GPA_INFO"] + ABI["INFO_COMMAND_ARG"]
        uvm.answers = [uvm.mem.u64(base + 8 * i) for i in range(4)]
        if uvm.commands:
            op, args = uvm.commands.pop(0)
            for i, a in enumerate(list(args)[:4]):
                uvm.mem.set_u64(base + 8 * i, a & 0xFFFFFFFFFFFFFFFF)
            return op
        return None
