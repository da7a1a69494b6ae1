"""Deliberate implementation bugs, applied by the harness (never read by production code): each
name maps to a stepped runtime, or a stepped system VM, with one mistake. `nanvix check --plant
NAME` and the tests run the lock-step comparison against them to show it catches each one."""
from nanvix.impl.abi import EINVAL, ENOSYS
from nanvix.impl.control.pages import PagePool
from nanvix.refine.cplants import DropWhenFullRing
from nanvix.refine.guestplants import GUEST_BUGS
from nanvix.refine.stepped import SteppedRuntime, SteppedSystemVM
from nanvix.refine.sysvm import SteppedServer


class NoScrubPool(PagePool):
    """Freed pages are handed out again unscrubbed."""

    @staticmethod
    def scrub(page):
        pass


class ForeignSysvmRuntime(SteppedRuntime):
    """A new channel is joined to another tenant's system VM when one is running (its page taken
    from that tenant's arena)."""

    def serving_tenant(self, t):
        others = [o for o in self.tenants.values() if o is not t and o.sysvm.alive]
        return others[0] if others else super().serving_tenant(t)


def _server_plant(name):
    class PlantedSystemVM(SteppedSystemVM):
        plant = name

    class PlantedRuntime(SteppedRuntime):
        sysvm_class = PlantedSystemVM
    PlantedRuntime.__doc__ = SERVER_PLANTS[name].__doc__
    return PlantedRuntime


class DropWhenFullServer(SteppedServer):
    """take() with no room for the answer drops the request (it is never answered)."""
    ring_class = DropWhenFullRing


class LoopLostWakeServer(SteppedServer):
    """The loop answers a parked guest's request but loses the wake-up: the guest armed
    NOTIFY_ME and parked, and is never told its answer is there."""

    def wake(self, ch):
        pass


class EnosysAsEinvalServer(SteppedServer):
    """A request with an unknown opcode is answered EINVAL instead of ENOSYS."""

    def answer(self, ch, r):
        if r.error != ENOSYS:
            return super().answer(ch, r)
        ch.served += 1
        self.arena.served(ch.slot)
        return -EINVAL, ch.ring.complete(r, -EINVAL, b"")


SERVER_PLANTS = {"enosys_as_einval": EnosysAsEinvalServer, "drop_when_full": DropWhenFullServer, "loop_lost_wake": LoopLostWakeServer}
RUNTIMES = {
    "no_scrub": type("NoScrubRuntime", (SteppedRuntime,), {"page_pool_class": NoScrubPool,
                                                           "__doc__": NoScrubPool.__doc__}),
    "foreign_sysvm": ForeignSysvmRuntime,
}
RUNTIMES.update({name: _server_plant(name) for name in SERVER_PLANTS})
RUNTIMES.update({name: type("Planted_" + name, (SteppedRuntime,), {"guest_plant": name, "__doc__": bug[1]})
                 for name, bug in GUEST_BUGS.items()})
NAMES = tuple(sorted(RUNTIMES))


def runtime_class(plant):
    """The stepped runtime for a plant name (None: the honest one)."""
    if plant is None:
        return SteppedRuntime
    if plant not in RUNTIMES:
        raise ValueError("no plant %r (there are: %s)" % (plant, ", ".join(NAMES)))
    return RUNTIMES[plant]


def server_class(plant):
    """The stepped system VM's server class for a plant run in the system VM process."""
    return SERVER_PLANTS[plant]
