"""Refinement checking: the implementation and the spec, driven in lock-step.

`Lockstep` owns a stepped implementation (a `Driver`: real KVM user VMs running the stepper
guest, system VM processes, the scheduler) and the spec's concrete interpreter. Each public
method is one operation of the shared alphabet. It performs the operation on the implementation,
then on the spec (giving the spec whatever the implementation chose: which user VM a core took,
which page a channel got, whether an answer was a success), and checks, in order:

  1. the same outcome: success, or the same error code; and the same observations (payloads);
  2. the abstraction of the implementation's state (`abstract`) equals the spec's state;
  3. every spec invariant holds on the abstracted implementation state.

A failed check is a divergence. It carries the operations so far as a short runnable program.
With `strict=True` (the tests) it raises; otherwise (`nanvix check`) it is recorded, the spec is
re-synchronised to the abstraction and the run goes on.

The abstraction function is in abstraction.py; random campaigns in campaign.py.
"""
import collections
import time

from nanvix import spec as M
from nanvix.refine.abstraction import (CFG, ENTRY_FIELDS, K, MASK32, QUOTA_PAGES, QUOTA_UVMS, T, abstract,
                                      diff, tenant_of)
from nanvix.refine.driver import Driver, Outcome, no
from nanvix.impl.abi import ABI
from nanvix.spec import api
from nanvix.spec.requests import request_error


class Divergence(AssertionError):
    pass


class Lockstep:
    def __init__(self, strict=True, home=None, plant=None, loop=False, quiet_s=10.0):
        """plant: the name of a deliberate implementation bug (nanvix.refine.plants), or None.
        loop: the system VMs serve by their own loop; the harness does not take or complete,
        it waits after every operation for a quiet point (no request in flight, every parked
        guest with an answer woken; at most quiet_s seconds) and gives the spec what was served."""
        self.strict = strict
        self.plant = plant
        self.loop = loop
        self.quiet_s = quiet_s
        self.stuck_channels, self.stuck_uvms = set(), set()  # stuck quiet points already reported
        self.verdicts = {}  # (channel, SQ index) taken -> the errno spec.requests gives it (0: none)
        self.m = api.Model(CFG)
        self.s = self.m.initial()
        self.d = Driver(tenants=T, cores=K, pages=CFG.P, quota_uvms=QUOTA_UVMS,
                        quota_pages=QUOTA_PAGES, home=home, plant=plant, loop=loop)
        self.page_slot = list(range(CFG.P))   # implementation page index -> spec page
        self.program = []
        self.ops = collections.Counter()       # operations that succeeded on both sides
        self.spec_ops = collections.Counter()  # spec operations that succeeded (incl. composites)
        self.divergences = []
        self.steps = 0
        self.outcomes = collections.Counter()  # (operation, implementation's outcome)
        self.current = None

    def close(self):
        self.d.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the check after every step -------------------------------------------------------------
    def abstraction(self):
        return abstract(self.d.state(), self.d.index, self.page_slot, self.s)

    def _diverge(self, what):
        prog = self.script()
        self.divergences.append({"step": self.steps, "what": what, "program": prog,
                                 "calls": list(self.program)})
        if self.strict:
            raise Divergence("%s\nafter:\n%s" % (what, prog))

    def sync(self):
        """Compare the abstracted implementation state with the spec state, and check every
        invariant on it (serving by the loop: at the next quiet point)."""
        if self.loop:
            self.quiet()
        a, problems = self.abstraction()
        if problems:
            self._diverge("abstraction: " + "; ".join(problems))
        d = diff(a, self.s)
        if d:
            self._diverge("state differs: " + "; ".join(d) + self._why_ended(a))
        bad = self.m.violations(a)
        if bad:
            self._diverge("invariants violated by the implementation: " + ", ".join(bad))
        if d or bad or problems:
            self.s = a  # go on from where the implementation is

    def _why_ended(self, a):
        """What the implementation says of a user VM it ended that the spec has live (a crash
        or a timeout the harness did not ask for: the divergence then says why)."""
        out = []
        for u, st in enumerate(a["u_state"]):
            vm = self.d.uvm.get(u)
            if st != self.s["u_state"][u] and st in (M.U_CRASHED, M.U_EXITED) and vm is not None:
                out.append("user VM %d: %s %r" % (u, getattr(vm, "status", "?"), getattr(vm, "detail", "")))
        return " (the implementation: %s)" % "; ".join(out) if out else ""

    # -- serving by the system VM's own loop --------------------------------------------------------
    def _in_flight(self, a, c):
        """Channel c has a request its system VM has taken and not answered, or one it could
        take now (spec: take would succeed)."""
        return a["c_state"][c] == M.C_OPEN and a["s_state"][a["c_sysvm"][c]] == M.S_UP and (
            a["c_sqh"][c] != a["c_cqt"][c] or self.m.step(a, "take", c)[0] == 0)

    def _unwoken(self):
        """Parked user VMs the spec would wake (an answer is there) that are still parked."""
        return [u for u in range(CFG.U) if self.s["u_state"][u] == M.U_BLOCKED and
                self.m.step(self.s, "wake", u)[0] == 0]

    def quiet(self):
        """Wait until the loops have served all they can (no request in flight), replay what they
        served into the spec (take, then complete with the answer's success, per request, in
        order), then collect wake-ups until every parked guest with an answer is woken. A loop
        that leaves a request unserved, or a parked guest unwoken, past quiet_s is a stuck quiet
        point: a divergence that says which."""
        deadline = time.monotonic() + self.quiet_s
        while True:
            a, _ = self.abstraction()
            busy = [c for c in range(CFG.C) if self._in_flight(a, c) and c not in self.stuck_channels]
            if not busy:
                break
            if time.monotonic() > deadline:
                self.stuck_channels.update(busy)   # reported once: not waited for again
                self._diverge("stuck quiet point: channel(s) %s still have requests to serve after %.0f s "
                              "(sq_tail %s, system VM's sq_head %s, cq_tail %s, need_wakeup armed: %s)" % (
                                  busy, self.quiet_s, [a["c_sqt"][c] for c in busy], [a["c_sqh"][c] for c in busy],
                                  [a["c_cqt"][c] for c in busy], [self._need_wakeup(c) for c in busy]))
                break
            time.sleep(0.002)
        for c in range(CFG.C):
            self._served(a, c)
        while True:
            woken = self.d.wake()["us"]
            for u in woken:
                err, _, s2 = self.m.step(self.s, "wake", u)
                if err:
                    self._diverge("quiet point: the loop woke user VM %d, spec %s" % (u, M.ERR_NAMES[err]))
                    continue
                self.s = s2
                self.spec_ops["wake"] += 1
            left = [u for u in self._unwoken() if u not in self.stuck_uvms]
            if not left:
                break
            if time.monotonic() > deadline:
                self.stuck_uvms.update(left)
                self._diverge("stuck quiet point: user VM(s) %s parked with an answer there, never woken "
                              "(a lost wake-up) after %.0f s" % (left, self.quiet_s))
                break
            time.sleep(0.002)

    def _served(self, a, c):
        """Give the spec what the loop served on channel c since the last quiet point."""
        s = self.s
        if s["c_state"][c] != M.C_OPEN:
            return
        n = (a["c_cqt"][c] - s["c_cqt"][c]) & MASK32
        if a["c_state"][c] == M.C_BROKEN:
            n += 1   # the take that found the channel broken
        for _ in range(min(n, CFG.R + 1)):
            verdict, fields = self._verdict(c)
            err, out, s2 = self.m.step(self.s, "take", c)
            if err:
                self._diverge("quiet point: channel %d: the loop served a request, spec take %s" % (c, M.ERR_NAMES[err]))
                return
            self.s = s2
            self.spec_ops["take"] += 1
            if out[1]:   # the spec found it broken too
                return
            ok = a["c_cqr"][c][s2["c_cqt"][c] % CFG.R]
            res = self.d.cq_result(c, s2["c_cqt"][c])
            if verdict and res != -verdict:
                self._diverge("quiet point: channel %d: a malformed request (spec: errno %d, fields %s) "
                              "answered %d" % (c, verdict, fields, res))
            err, _, s3 = self.m.step(self.s, "complete", c, ok)
            if err:
                self._diverge("quiet point: channel %d: spec complete %s" % (c, M.ERR_NAMES[err]))
                return
            self.s = s3
            self.spec_ops["complete"] += 1

    def _need_wakeup(self, c):
        vm = self.d.uvm.get(c)
        if vm is None or vm.channel is None:
            return None
        return bool(vm.channel.page.mem.u32(ABI["HDR_SQ_FLAGS"]) & ABI["SQ_NEED_WAKEUP"])

    def script(self, program=None):
        """The operations so far, as a program that replays them (and raises the same
        Divergence)."""
        return script(self.program if program is None else program, self.plant, self.loop)

    def _spec(self, steps):
        """Run spec operations in sequence; stop at the first error. (err name, outs, state)."""
        s, outs = self.s, []
        for op, *args in steps:
            err, out, s2 = self.m.step(s, op, *args)
            if err:
                return M.ERR_NAMES[err], outs, self.s
            outs.append(out)
            s = s2
        return "OK", outs, s

    def _check(self, name, impl, steps, same=None):
        """One operation: compare impl's outcome with the spec's over `steps`; on success,
        `same(spec_outs)` returns a mismatch description or None."""
        self._outcome(impl)
        err, outs, s2 = self._spec(steps)
        if impl.err != err:
            self._diverge("%s: implementation %s (%s), spec %s" % (name, impl.err, impl.get("why", ""), err))
        elif err == "OK" and same is not None:
            why = same(outs)
            if why:
                self._diverge("%s: %s" % (name, why))
        if err == "OK" and impl.ok:
            self.s = s2
            self.ops[name] += 1
            for op, *_ in steps:
                self.spec_ops[op] += 1
        self.sync()
        return impl

    def _call(self, name, *args):
        self.steps += 1
        self.program.append((name, args))
        self.current = name

    def _outcome(self, impl):
        self.outcomes[(self.current, impl.err)] += 1

    # -- tenants and system VMs -----------------------------------------------------------------
    def create_tenant(self, t):
        self._call("create_tenant", t)
        return self._check("create_tenant", self.d.create_tenant(t), [("create_tenant", t)])

    def start_sysvm(self, t):
        self._call("start_sysvm", t)
        return self._check("start_sysvm", self.d.start_sysvm(t), [("start_sysvm", t)])

    def crash_sysvm(self, t):
        """SIGKILL the tenant's system VM (what it had taken is answered EIO on its restart)."""
        self._call("crash_sysvm", t)
        self.verdicts = {k: v for k, v in self.verdicts.items() if tenant_of(k[0]) != t}
        return self._check("crash_sysvm", self.d.crash_sysvm(t), [("crash_sysvm", t)])

    def restart_sysvm(self, t):
        self._call("restart_sysvm", t)
        return self._check("restart_sysvm", self.d.restart_sysvm(t), [("restart_sysvm", t)])

    # -- user VMs ---------------------------------------------------------------------------------
    def _page_for(self, t, impl_page=None):
        """The spec page standing for the implementation page just handed to tenant t: always
        the lowest free page of t's share, so which spec page a tenant gets depends on that
        tenant alone (the host page index is the pool's business, invisible to the guest). The
        implementation page takes that spec page's place; the free page that stood there takes
        the old one's (the spec cannot tell free pages apart). impl_page None: refused."""
        share = [p for p in range(CFG.P) if self.s["p_tenant"][p] == t]
        free = [p for p in share if self.s["p_kind"][p] == M.P_FREE]
        if not free:
            return share[0]  # the spec will refuse: the implementation gave more than t's share
        q = free[0]
        if impl_page is not None:
            p, j = self.page_slot[impl_page], self.page_slot.index(q)
            self.page_slot[impl_page], self.page_slot[j] = q, p
        return q

    def create_uvm(self, u, t):
        """A user VM of tenant t in slot u, with its channel c = u, started (runnable)."""
        self._call("create_uvm", u, t)
        impl = self.d.create_uvm(u, t)
        p = self._page_for(t, impl.get("page"))
        return self._check("create_uvm", impl, [("create_uvm", u, t), ("open_channel", u, u, p), ("start_uvm", u)])

    def destroy_uvm(self, u):
        self._call("destroy_uvm", u)
        return self._check("destroy_uvm", self.d.destroy_uvm(u), [("close_channel", u), ("destroy_uvm", u)])

    def recycle_uvm(self, u):
        """A user VM that exited cleanly, reset by the runtime and started again (the next
        invocation on the same VM, same tenant)."""
        self._call("recycle_uvm", u)
        return self._check("recycle_uvm", self.d.recycle_uvm(u), [("recycle_uvm", u), ("start_uvm", u)])

    def _on_core(self, u):
        return self.s["u_state"][u] == M.U_RUNNING

    def _refused(self, name, impl, err):
        """A guest action whose guest is not on a core: the implementation must refuse it."""
        self._outcome(impl)
        if impl.err != err:
            self._diverge("%s: implementation %s, expected %s (not on a core)" % (name, impl.err, err))
        self.sync()
        return impl

    def exit_uvm(self, u):
        self._call("exit_uvm", u)
        return self._check("exit_uvm", self.d.exit_uvm(u), [("exit_uvm", u)])

    def crash_uvm(self, u):
        """The guest triple-faults (a null dereference with no IDT)."""
        self._call("crash_uvm", u)
        return self._guest_ended("crash_uvm", u, self.d.crash_uvm(u), "crashed")

    def loop_past_budget(self, u):
        """The guest spins until its budget runs out and the host ends it."""
        self._call("loop_past_budget", u)
        return self._guest_ended("loop_past_budget", u, self.d.loop_past_budget(u), "timeout")

    def _guest_ended(self, name, u, impl, status):
        """A guest that crashed or was stopped: crash_uvm for the spec, with the invocation's
        status as the implementation reports it. The guest must have been on a core (the spec's
        crash_uvm also covers the host killing a user VM that is not running)."""
        if not self._on_core(u):
            return self._refused(name, impl, "EINVAL")
        return self._check(name, impl, [("crash_uvm", u)],
                           same=lambda _: None if impl["status"] == status else "status %r" % impl["status"])

    def map_page(self, u):
        self._call("map_page", u)
        impl = self.d.map_page(u)
        p = self._page_for(tenant_of(u), impl.get("page"))
        return self._check("map_page", impl, [("map_page", p, u)])

    # -- the channel: guest side ----------------------------------------------------------------
    def submit(self, u, v, kind=0):
        """The guest posts a request. An honest guest's microkernel picks its user_data (the
        spec is given that payload); v is the payload a hostile guest writes itself."""
        self._call("submit", u, v, kind)
        impl = self.d.submit(u, v, kind)
        return self._check("submit", impl, [("submit", u, impl.get("user_data", v))])

    def deliver(self, u):
        self._call("deliver", u)
        impl = self.d.deliver(u)

        def same(outs):
            payload, ok = outs[0]
            if (payload, ok) != (impl["user_data"], int(impl["result"] >= 0)):
                return "delivered (%d, %d), spec (%d, %d)" % (impl["user_data"], impl["result"] >= 0, payload, ok)
        return self._check("deliver", impl, [("deliver", u)], same=same)

    def submit_block(self, u, v, kind=0):
        """submit, then block at once in the same run of the guest (serving by the loop: the
        loop's answer races the park; either order is checked, and a parked guest must be woken)."""
        self._call("submit_block", u, v, kind)
        k = self.s["u_core"][u]
        impl = self.d.submit_block(u, v, kind)
        if not impl.ok and impl.get("blocked"):   # refused (a full ring), then parked all the same
            err = M.ERR_NAMES[self.m.step(self.s, "submit", u, v)[0]]
            if err != impl.err:
                self._diverge("submit_block: implementation %s (%s), spec %s" % (impl.err, impl["why"], err))
            return self._check("submit_block", Outcome(ok=True, left=impl["left"], blocked=True), [("block", k)])
        steps = [("submit", u, impl.get("user_data", v))] + ([("block", k)] if impl.get("blocked") else [])
        self._check("submit_block", impl, steps)
        if impl.ok and not impl["blocked"] and self.m.step(self.s, "block", k)[0] != M.ERR_NAMES.index("EBUSY"):
            self._diverge("submit_block: the guest did not park, yet the spec has no answer for it")
        return impl

    def scribble_sq_tail(self, u, v):
        self._call("scribble_sq_tail", u, v)
        return self._check("scribble_sq_tail", self.d.scribble(u, "sq_tail", v),
                           [("scribble_sq_tail", u, v & MASK32)])

    def scribble_cq_head(self, u, v):
        self._call("scribble_cq_head", u, v)
        return self._check("scribble_cq_head", self.d.scribble(u, "cq_head", v),
                           [("scribble_cq_head", u, v & MASK32)])

    def scribble_pub(self, u, which, v):
        """which 0: the published sq_head, 1: the published cq_tail (the system VM's to write)."""
        self._call("scribble_pub", u, which, v)
        impl = self.d.scribble(u, "sq_head" if which == 0 else "cq_tail", v)
        return self._check("scribble_pub", impl, [("scribble_pub", u, which, v & MASK32)])

    def scribble_entry(self, u, slot, v):
        self._call("scribble_entry", u, slot, v)
        return self._check("scribble_entry", self.d.scribble_entry(u, slot, v),
                           [("scribble_entry", u, slot, v)])

    def scribble_field(self, u, slot, field, v):
        """Arbitrary bytes in a field the spec does not model (opcode, data offsets, lengths):
        for the spec the entry's payload is unchanged but the guest is no longer honest."""
        self._call("scribble_field", u, slot, field, v)
        impl = self.d.scribble_entry(u, slot, v & MASK32, offset=ENTRY_FIELDS[field], width=4)
        return self._check("scribble_field", impl, [("scribble_entry", u, slot, self.s["c_sq"][u][slot])])

    def spurious_doorbell(self, u):
        """The doorbell rung with nothing posted: no spec operation, nothing may change."""
        self._call("spurious_doorbell", u)
        impl = self.d.spurious_doorbell(u)
        self._outcome(impl)
        exists = self.s["c_state"][u] != M.C_FREE
        if impl.ok != exists:
            self._diverge("spurious_doorbell: implementation %s, channel %s" % (impl.err, "open" if exists else "free"))
        elif impl.ok:
            self.ops["spurious_doorbell"] += 1
        self.sync()
        return impl

    # -- the channel: system VM side --------------------------------------------------------------
    def _verdict(self, u):
        """The spec's verdict (spec.requests) on the request u's system VM takes next: 0 or the
        errno it must be answered with, and the fields it was given."""
        fields = self.d.entry_fields(u, self.s["c_sqh"][u])
        return request_error(**fields), fields

    def take(self, u):
        """The system VM takes a request: the same one as the spec, validated as spec.requests
        says (a wrong errno, or a malformed request accepted, is a divergence)."""
        if self.loop:
            raise ValueError("the system VMs serve by their own loop: no take on command")
        self._call("take", u)
        index = self.s["c_sqh"][u]
        verdict, fields = self._verdict(u) if u in self.d.uvm and self.d.uvm[u].channel else (0, {})
        impl = self.d.take(u)

        def same(outs):
            got = (0, 1) if impl["broke"] else (impl["user_data"], 0)
            if got != tuple(outs[0]):
                return "took %r, spec %r" % (got, tuple(outs[0]))
            if not impl["broke"] and impl["error"] != verdict:
                return "the system VM validated the request as %s, spec %s (fields %s)" % (
                    impl["error"] or "well-formed", verdict or "well-formed", fields)
        r = self._check("take", impl, [("take", u)], same=same)
        if impl.ok and not impl["broke"]:
            self.verdicts[(u, index)] = verdict
        return r

    def complete(self, u):
        """The system VM answers the oldest request in service: a malformed one with exactly the
        errno spec.requests gives it (and, so, as a failure)."""
        if self.loop:
            raise ValueError("the system VMs serve by their own loop: no complete on command")
        self._call("complete", u)
        verdict = self.verdicts.pop((u, self.s["c_cqt"][u]), 0)
        impl = self.d.complete(u)
        ok = impl.ok and impl["result"] >= 0  # the answer's success is the system VM's to decide
        same = None
        if verdict:
            same = lambda _: None if impl["result"] == -verdict else \
                "a malformed request (spec: errno %d) answered %d" % (verdict, impl["result"])
        return self._check("complete", impl, [("complete", u, ok)], same=same)

    # -- the scheduler ----------------------------------------------------------------------------
    def schedule(self, k):
        """Core k takes the user VM the implementation picks; the spec checks it was allowed."""
        self._call("schedule", k)
        impl = self.d.schedule(k)
        if impl.ok:
            return self._check("schedule", impl, [("schedule", k, impl["u"])])
        self._outcome(impl)
        errs = {M.ERR_NAMES[self.m.step(self.s, "schedule", k, u)[0]] for u in range(CFG.U)}
        want = "EBUSY" if self.s["k_busy"][k] and "OK" not in errs and "EBUSY" in errs else "EINVAL"
        if "OK" in errs or impl.err != want:
            self._diverge("schedule(%d): implementation %s (%s), spec allows %s" % (k, impl.err, impl["why"], sorted(errs)))
        self.sync()
        return impl

    def preempt(self, k):
        self._call("preempt", k)
        impl = self.d.preempt(k)
        return self._check("preempt", impl, [("preempt", k)],
                           same=lambda _: None if impl["u"] == self.s["k_cur"][k] else "took %d off" % impl["u"])

    def block(self, k):
        """The vCPU on core k waits for a completion."""
        self._call("block", k)
        u = self.d.running_on(k)
        impl = self.d.block(u) if u is not None else no("EINVAL", "idle core")
        return self._check("block", impl, [("block", k)])

    def wake(self):
        """Deliver completion signals. Each user VM woken must be one the spec may wake; and
        every blocked user VM with a completion waiting must be woken (no lost wake-up)."""
        self._call("wake")
        impl = self.d.wake()
        self._outcome(Outcome(ok=bool(impl["us"]), err="EEMPTY"))
        for u in impl["us"]:
            err, _, s2 = self.m.step(self.s, "wake", u)
            if err:
                self._diverge("wake: implementation woke %d, spec %s" % (u, M.ERR_NAMES[err]))
                break
            self.s = s2
            self.spec_ops["wake"] += 1
        if impl["us"]:
            self.ops["wake"] += 1
        for u in range(CFG.U):
            if u not in impl["us"] and self.s["u_state"][u] == M.U_BLOCKED and \
                    self.m.step(self.s, "wake", u)[0] == 0:
                self._diverge("wake: user VM %d has a completion but was not woken" % u)
        self.sync()
        return impl

    # -- tenants' view (noninterference) --------------------------------------------------------
    def observe(self, t, cores=True):
        """What tenant t can see: the spec's observation of the abstracted state, plus its keys
        and files as its system VM holds them. cores=False leaves out which core runs its user
        VMs: where the scheduler puts a vCPU is the declared timing channel (proofs/LEAKS.md)."""
        a, _ = self.abstraction()
        if not cores:
            a = dict(a, u_core=(0,) * CFG.U)
        return {"spec": self.m.observe(a, t), "data": self.d.tenant_data(t)}


def script(program, plant=None, loop=False):
    """[(operation, args)] as a Python program over Lockstep."""
    opts = ", ".join(["plant=%r" % plant] * bool(plant) + ["loop=True"] * bool(loop))
    return "\n".join(["from nanvix.refine import Lockstep", "h = Lockstep(%s)" % opts] +
                     ["h.%s(%s)" % (op, ", ".join(map(repr, args))) for op, args in program])


def replay(program, plant=None, loop=False):
    """Run [(operation, args)] on a fresh system; the Divergence it raises, or None."""
    with Lockstep(strict=True, plant=plant, loop=loop) as h:
        try:
            for op, args in program:
                getattr(h, op)(*args)
        except Divergence as e:
            return e
    return None
