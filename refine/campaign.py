"""Random lock-step campaigns (nanvix check): spec-guided operations over episodes of a fresh
system."""
import collections
import random

from nanvix import spec as M
from nanvix.refine.abstraction import CFG, ENTRY_FIELDS, FAULT_OPS, K, MASK32, SPEC_OPS, T, ALL_OPS, slots_of
from nanvix.refine.lockstep import Lockstep


class Campaign:
    """Random operations over episodes of a fresh system (so creating tenants and starting system
    VMs are exercised again and again). The spec guides the drawing: most of the time an operation
    is redrawn until the spec says it can succeed, so runs go deep (full rings, restarts with
    requests in service) while every error path is still taken now and then. Some operations
    start a burst: repeated while they succeed, which fills and drains rings."""

    WEIGHTS = {
        "create_uvm": 5, "destroy_uvm": 4, "schedule": 8, "preempt": 3, "block": 4, "wake": 4,
        "submit": 12, "take": 10, "complete": 10, "deliver": 9, "exit_uvm": 2, "crash_uvm": 1,
        "loop_past_budget": 0.3, "map_page": 2, "crash_sysvm": 0.6, "restart_sysvm": 2,
        "scribble_sq_tail": 1, "scribble_cq_head": 1, "scribble_pub": 1, "scribble_entry": 1,
        "scribble_field": 1, "spurious_doorbell": 1, "create_tenant": 0.3, "start_sysvm": 0.3,
    }
    BURSTS = {"submit": 0.08, "take": 0.08, "complete": 0.08, "deliver": 0.06}
    GUIDED = 0.85   # the chance that a step insists on an operation the spec allows

    def __init__(self, seed=0, episode=250, strict=False, plant=None, loop=False):
        """loop: the system VMs serve by their own loop (no take/complete on command; submit_block
        races the loop's answer against the guest's park)."""
        self.plant = plant
        self.loop = loop
        self.weights = dict(self.WEIGHTS, take=0, complete=0, submit_block=6) if loop else self.WEIGHTS
        self.rng = random.Random(seed)
        self.seed = seed
        self.episode = episode
        self.strict = strict
        self.h = None
        self.steps = 0
        self.ops = collections.Counter()
        self.spec_ops = collections.Counter()
        self.outcomes = collections.Counter()
        self.divergences = []
        self.in_episode = 0
        self.burst = None  # (operation, arguments, steps left): repeated while it succeeds

    def _fresh(self):
        self._retire()
        self.h = Lockstep(strict=self.strict, plant=self.plant, loop=self.loop)
        self.in_episode = 0
        self.burst = None
        for t in range(T):  # most episodes start with both tenants up; some leave it to chance
            if self.rng.random() < 0.8:
                self.h.create_tenant(t)
                self.h.start_sysvm(t)

    def _retire(self):
        if self.h is not None:
            self.steps += self.h.steps
            self.ops.update(self.h.ops)
            self.spec_ops.update(self.h.spec_ops)
            self.outcomes.update(self.h.outcomes)
            self.divergences += self.h.divergences
            self.h.close()
            self.h = None

    def close(self):
        self._retire()

    # -- drawing ----------------------------------------------------------------------------------
    def _index(self, s, c):
        """A value near one of the channel's indices (an off-by-some lie), or any 32-bit value."""
        if self.rng.random() < 0.15:
            return self.rng.getrandbits(32)
        base = s[self.rng.choice(("c_sqt", "c_cqh", "c_psqh", "c_pcqt"))][c]
        return (base + self.rng.randint(-3, 3) + self.rng.choice((0, 0, 64, -64, 65, -65))) & MASK32

    def _draw(self):
        rng, s = self.rng, self.h.s
        ops = list(self.weights)
        op = rng.choices(ops, [self.weights[o] for o in ops])[0]
        live = [u for u in range(CFG.U) if s["u_state"][u] != M.U_FREE]
        running = [u for u in live if s["u_state"][u] == M.U_RUNNING]
        pick = lambda pool: rng.choice(pool) if pool and rng.random() < 0.95 else rng.randrange(CFG.U)
        t = rng.randrange(T)
        if op in ("create_tenant", "start_sysvm", "crash_sysvm", "restart_sysvm"):
            return op, (t,)
        if op == "create_uvm":
            return op, (rng.choice(slots_of(t)), t)
        if op in ("schedule", "preempt", "block"):
            return op, (rng.randrange(K),)
        if op == "wake":
            return op, ()
        if op in ("submit", "submit_block"):
            return op, (pick(running), rng.getrandbits(64), rng.choice((0, 0, 0, 1, 2, 3, 4)))
        if op in ("take", "complete", "destroy_uvm", "spurious_doorbell"):
            return op, (pick(live),)
        u = pick(running)
        if op in ("scribble_sq_tail", "scribble_cq_head"):
            return op, (u, self._index(s, u))
        if op == "scribble_pub":
            return op, (u, rng.randrange(2), self._index(s, u))
        if op == "scribble_entry":
            return op, (u, rng.randrange(CFG.R), rng.getrandbits(64))
        if op == "scribble_field":
            return op, (u, rng.randrange(CFG.R), rng.choice(sorted(ENTRY_FIELDS)),
                        rng.choice((rng.getrandbits(32), rng.randrange(300), MASK32)))
        return op, (u,)   # deliver, exit_uvm, crash_uvm, loop_past_budget, map_page

    def _enabled(self, op, args):
        """Would the spec let this operation succeed now? (For the composite operations, their
        first spec step decides; a refusal further on is an error path too.)"""
        m, s = self.h.m, self.h.s
        ok = lambda name, *a: m.step(s, name, *a)[0] == 0
        if op == "schedule":
            return any(ok("schedule", args[0], u) for u in range(CFG.U))
        if op == "wake":
            return any(ok("wake", u) for u in range(CFG.U))
        if op == "destroy_uvm":
            return ok("close_channel", *args)
        if op in ("crash_uvm", "loop_past_budget"):
            return s["u_state"][args[0]] == M.U_RUNNING
        if op == "map_page":
            return s["u_state"][args[0]] == M.U_RUNNING
        if op == "scribble_field":
            return ok("scribble_entry", args[0], 0, 0)
        if op == "spurious_doorbell":
            return s["c_state"][args[0]] != M.C_FREE
        if op == "complete":
            return ok("complete", args[0], True)
        if op == "take":
            return ok("take", args[0])
        if op in ("submit", "submit_block"):
            return ok("submit", args[0], args[1])
        return ok(op, *args)

    def step(self):
        if self.h is None or self.in_episode >= self.episode:
            self._fresh()
        h, rng = self.h, self.rng
        self.in_episode += 1
        if self.burst:
            op, args, left = self.burst
            self.burst = (op, args, left - 1) if left > 1 else None
            if op == "submit":
                args = (args[0], rng.getrandbits(64), args[2])
        else:
            guided = rng.random() < self.GUIDED
            for _ in range(8):
                op, args = self._draw()
                if not guided or self._enabled(op, args):
                    break
            if rng.random() < self.BURSTS.get(op, 0):
                self.burst = (op, args, rng.randint(2, 80))
        out = getattr(h, op)(*args)
        if not out.ok:
            self.burst = None

    def run(self, steps, progress=None):
        while self.steps + (self.h.steps if self.h else 0) < steps:
            self.step()
            done = self.steps + self.h.steps
            if progress and done % 1000 == 0:
                progress(done)
        self._retire()

    def uncovered(self):
        """Operations whose success path was never taken."""
        seen = set(self.spec_ops) | set(self.ops)
        return [op for op in ALL_OPS if op not in seen]
