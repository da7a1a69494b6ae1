"""Random lock-step campaigns (nanvix check): spec-guided operations over episodes of a fresh
system."""
import collections
import random

from nanvix import spec as M
from nanvix.refine.coverage import BRANCHES, branches
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
        "recycle_uvm": 3,
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
        self.branches = collections.Counter()   # branch label (nanvix.refine.coverage) -> steps
        self.divergences = []
        self.in_episode = 0
        self.burst = None  # (operation, arguments, steps left): repeated while it succeeds
        self.plan = self.plan_out = None   # a running plan (a generator) and its last outcome

    def _fresh(self):
        self._retire()
        self.h = Lockstep(strict=self.strict, plant=self.plant, loop=self.loop)
        self.in_episode = 0
        self.burst = None
        self.plan = self.plan_out = None
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

    def _draw(self, op=None):
        """A random operation (or arguments for op) over the current state."""
        rng, s = self.rng, self.h.s
        ops = list(self.weights)
        op = op or rng.choices(ops, [self.weights[o] for o in ops])[0]
        live = [u for u in range(CFG.U) if s["u_state"][u] != M.U_FREE]
        running = [u for u in live if s["u_state"][u] == M.U_RUNNING]
        pick = lambda pool: rng.choice(pool) if pool and rng.random() < 0.95 else rng.randrange(CFG.U)
        t = rng.randrange(T)
        if op in ("create_tenant", "start_sysvm", "crash_sysvm", "restart_sysvm"):
            return op, (t,)
        if op == "create_uvm":   # now and then another tenant's slot (refused: ids are per tenant)
            return op, (rng.choice(slots_of(t)) if rng.random() < 0.97 else rng.randrange(CFG.U), t)
        if op in ("schedule", "preempt", "block"):
            return op, (rng.randrange(K),)
        if op == "wake":
            return op, ()
        if op in ("submit", "submit_block"):
            return op, (pick(running), rng.getrandbits(64), rng.choice((0, 0, 0, 1, 2, 3, 4)))
        if op in ("take", "complete", "destroy_uvm", "recycle_uvm", "spurious_doorbell"):
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

    # the spec step that decides an operation's outcome first (the others: see _enabled)
    FIRST = {"destroy_uvm": lambda a: ("close_channel", a[0]), "complete": lambda a: ("complete", a[0], True),
             "take": lambda a: ("take", a[0]), "submit": lambda a: ("submit", a[0], a[1]),
             "submit_block": lambda a: ("submit", a[0], a[1]),
             "create_uvm": lambda a: ("create_uvm",) + a, "exit_uvm": lambda a: ("exit_uvm",) + a,
             "deliver": lambda a: ("deliver",) + a, "preempt": lambda a: ("preempt",) + a,
             "create_tenant": lambda a: ("create_tenant",) + a, "start_sysvm": lambda a: ("start_sysvm",) + a,
             "crash_sysvm": lambda a: ("crash_sysvm",) + a, "restart_sysvm": lambda a: ("restart_sysvm",) + a,
             "recycle_uvm": lambda a: ("recycle_uvm",) + a}

    def _spec_error(self, op, args):
        name, *a = self.FIRST[op](args)
        return M.ERR_NAMES[self.h.m.step(self.h.s, name, *a)[0]]

    def _enabled(self, op, args):
        """Would the spec let this operation succeed now? (For the composite operations, their
        first spec step decides; a refusal further on is an error path too.)"""
        m, s = self.h.m, self.h.s
        ok = lambda name, *a: m.step(s, name, *a)[0] == 0
        if op == "schedule":
            return any(ok("schedule", args[0], u) for u in range(CFG.U))
        if op == "wake":
            return any(ok("wake", u) for u in range(CFG.U))
        if op in ("crash_uvm", "loop_past_budget"):
            return s["u_state"][args[0]] == M.U_RUNNING
        if op == "map_page":
            return s["u_state"][args[0]] == M.U_RUNNING
        if op == "scribble_field":
            return ok("scribble_entry", args[0], 0, 0)
        if op == "spurious_doorbell":
            return s["c_state"][args[0]] != M.C_FREE
        if op in self.FIRST:
            return self._spec_error(op, args) == "OK"
        return ok(op, *args)

    # -- plans: short directed programs, started now and then, that steer the campaign through
    # the branches a random walk reaches rarely (nanvix.refine.coverage). Each is a generator of
    # operations, sent the outcome of the last; every step is compared like any other.
    PLAN = 0.03        # the chance a step starts a plan while one of its branches is unreached
    PLAN_AGAIN = 0.004  # ... and once they all are

    def _drain(self, u):
        """Deliver, take, answer and deliver everything outstanding on u's channel."""
        for op in ("deliver", "take", "complete", "deliver"):
            for _ in range(CFG.R + 1):
                if not (yield op, (u,)).ok:
                    break

    def plan_ring(self, u):
        """u's channel through every ring boundary: the SQ to one short of full and full, taken
        to a CQ one short of full, answered, a lie on sq_tail against the full CQ, delivered:
        every index passes the ring's last slot."""
        yield from self._drain(u)
        for op in ("submit", "take", "complete"):
            for _ in range(CFG.R + 1):
                args = (u, self.rng.getrandbits(64), self.rng.choice((0, 0, 1, 3))) if op == "submit" else (u,)
                if not (yield op, args).ok:
                    break
        yield "scribble_sq_tail", (u, (self.h.s["c_sqt"][u] + 1) & MASK32)
        yield "take", (u,)
        for _ in range(CFG.R + 1):
            if not (yield "deliver", (u,)).ok:
                break

    MALFORMED = ((("opcode", 0xFFFF),), (("name_len", 5),), (("in_len", 400), ("name_len", 300)))

    def plan_malformed(self, u):
        """A request made malformed in each way the system VM tells apart (an unknown opcode, a
        name longer than the input, a name too long), taken, answered and delivered; and, while
        the tenant has no file "f", a stat of it (ENOENT)."""
        yield from self._drain(u)
        if "f" not in (self.h.d.tenant_data(u % T) or {}).get("files", {}):  # a stat of no file
            yield "submit", (u, self.rng.getrandbits(64), 3)
            for op in ("take", "complete", "deliver"):
                yield op, (u,)
        for fields in self.MALFORMED:
            slot = self.h.s["c_sqt"][u] % CFG.R
            if not (yield "submit", (u, self.rng.getrandbits(64), 1)).ok:
                return
            for field, v in fields:
                yield "scribble_field", (u, slot, field, v)
            for op in ("take", "complete", "deliver"):
                yield op, (u,)

    def plan_restart(self, u):
        """u's system VM dies with requests taken and not, while u waits (after a block refused
        because a completion was there); the restarted one answers them with EIO and wakes u.
        Now and then u first lies about its published cq_tail, so the restart breaks its channel,
        and a second restart keeps it broken."""
        t = u % T
        yield from self._drain(u)
        yield "submit", (u, self.rng.getrandbits(64), 0)
        yield "take", (u,)
        yield "complete", (u,)
        yield "block", (self.h.s["u_core"][u],)       # refused: a completion is there
        yield "deliver", (u,)
        for _ in range(3):
            yield "submit", (u, self.rng.getrandbits(64), 1)
        yield "take", (u,)
        yield "take", (u,)
        lie = self.rng.random() < 0.35
        if lie:
            yield "scribble_pub", (u, 1, (self.h.s["c_psqh"][u] + 5) & MASK32)
        yield "block", (self.h.s["u_core"][u],)
        yield "crash_sysvm", (t,)
        yield "take", (u,)                             # refused: the system VM is down
        yield "start_sysvm", (t,)                      # refused: a dead one is restarted
        yield "restart_sysvm", (t,)
        yield "wake", ()
        for _ in range(3):                             # u back on a core, to read its answers
            if self.h.s["u_state"][u] != M.U_RUNNABLE:
                break
            for k in range(K):
                if self.h.s["k_busy"][k]:
                    yield "preempt", (k,)
                yield "schedule", (k,)
        if self.h.s["u_state"][u] == M.U_RUNNING:
            for _ in range(4):
                yield "deliver", (u,)
        if lie:
            yield "crash_sysvm", (t,)
            yield "restart_sysvm", (t,)

    def plan_recycle(self, u):
        """u exits with requests queued, taken and answered but not delivered, and a page grown;
        its recycling is refused while its system VM is down and a crash is never recycled;
        once the system VM is back, u is recycled and runs again on a pristine channel."""
        t = u % T
        yield "map_page", (u,)
        for _ in range(3):
            yield "submit", (u, self.rng.getrandbits(64), self.rng.choice((0, 1)))
        yield "take", (u,)
        yield "complete", (u,)
        yield "take", (u,)
        yield "exit_uvm", (u,)
        if self.rng.random() < 0.5:
            yield "crash_sysvm", (t,)
            yield "recycle_uvm", (u,)                  # refused: the system VM is down
            yield "restart_sysvm", (t,)
        yield "recycle_uvm", (u,)
        yield "recycle_uvm", (u,)                      # refused: not a clean exit (it runs again)
        for k in range(K):
            if not self.h.s["k_busy"][k]:
                yield "schedule", (k,)
                break
        yield "deliver", (u,)                          # refused: nothing of the last invocation
        yield "crash_uvm", (u,)
        yield "recycle_uvm", (u,)                      # refused: a crash is never recycled

    PLANS = {
        "plan_recycle": ("error.recycle_uvm.",),
        "plan_ring": ("ring.", "error.take.EFULL"),
        "plan_malformed": ("completion.EINVAL", "completion.ENOSYS", "completion.E2BIG", "completion.ENOENT"),
        "plan_restart": ("restart.", "completion.EIO", "error.block.EBUSY", "error.take.EDOWN",
                         "error.start_sysvm.EINVAL"),
    }

    def plan_error(self, label):
        """One operation whose arguments the spec says it answers with an error not yet seen
        (drawn until one does, or given up)."""
        _, op, err = label.split(".")
        if op == "schedule":   # a busy core, while some user VM waits for one
            busy = [k for k in range(K) if self.h.s["k_busy"][k]]
            if busy and M.U_RUNNABLE in self.h.s["u_state"]:
                yield op, (self.rng.choice(busy),)
            return
        for _ in range(40):
            _, args = self._draw(op)
            if self._spec_error(op, args) == err:
                yield op, args
                return

    def plan_op(self, op):
        """One operation no step has yet seen succeed, with arguments the spec allows (drawn
        until some are, or given up)."""
        for _ in range(40):
            _, args = self._draw(op)
            if self._enabled(op, args):
                yield op, args
                return

    def _start_plan(self):
        if self.loop:    # (the plans take and answer on command; the loop serves by itself)
            return
        seen = set(self.spec_ops) | set(self.ops) | set(self.h.spec_ops) | set(self.h.ops)
        ops = [op for op in self.WEIGHTS if op in ALL_OPS and op not in seen]
        if ops and self.in_episode > 50 and self.rng.random() < self.PLAN:
            self.plan = self.plan_op(self.rng.choice(ops))
            self.plan_out = None
            return
        missing = self.branches_uncovered()
        errors = [b for b in missing if b.startswith("error.") and b.split(".")[1] in tuple(self.FIRST) + ("schedule",)]
        if errors and self.rng.random() < self.PLAN:
            self.plan = self.plan_error(self.rng.choice(errors))
            self.plan_out = None
            return
        s = self.h.s
        ready = [u for u in range(CFG.U) if s["u_state"][u] == M.U_RUNNING and s["c_state"][u] == M.C_OPEN
                 and s["s_state"][u % T] == M.S_UP]
        if not ready:
            return
        wanted = [p for p, labels in self.PLANS.items() if any(b.startswith(l) for b in missing for l in labels)]
        if wanted and self.rng.random() < self.PLAN:
            name = self.rng.choice(wanted)
        elif self.rng.random() < self.PLAN_AGAIN:
            name = self.rng.choice(sorted(self.PLANS))
        else:
            return
        self.plan = getattr(self, name)(self.rng.choice(ready))
        self.plan_out = None

    def _planned(self):
        """The plan's next operation, or None when it is over."""
        try:
            return self.plan.send(self.plan_out) if self.plan_out is not None else next(self.plan)
        except StopIteration:
            self.plan = None
            return None

    def step(self):
        if self.h is None or (self.in_episode >= self.episode and self.plan is None):
            self._fresh()
        h, rng = self.h, self.rng
        self.in_episode += 1
        if self.plan is None and self.burst is None:
            self._start_plan()
        planned = self._planned() if self.plan is not None else None
        if planned is not None:
            op, args = planned
        elif self.burst:
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
        pre = h.s
        out = getattr(h, op)(*args)
        self.branches.update(branches(op, args, pre, h.s, out))
        if planned is not None:
            self.plan_out = out
        elif not out.ok:
            self.burst = None

    def run(self, steps, progress=None, stop_first=False):
        """stop_first: end at the first divergence (a mutant is caught)."""
        while self.steps + (self.h.steps if self.h else 0) < steps:
            self.step()
            if stop_first and (self.divergences or self.h.divergences):
                break
            done = self.steps + self.h.steps
            if progress and done % 1000 == 0:
                progress(done)
        self._retire()

    def branches_uncovered(self):
        """Branches (nanvix.refine.coverage) no step took."""
        return [b for b in BRANCHES if not self.branches[b]]

    def uncovered(self):
        """Operations whose success path was never taken."""
        seen = set(self.spec_ops) | set(self.ops)
        return [op for op in ALL_OPS if op not in seen]
