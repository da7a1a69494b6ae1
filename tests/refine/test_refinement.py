"""Refinement: the KVM implementation against the spec, step by step, under faults.

Every operation goes to both sides through nanvix.refine.Lockstep, which compares outcomes,
the abstracted state and every invariant after each step, and raises Divergence (with the
program so far) on the first difference.
"""
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, rule

from nanvix import spec as M
from nanvix.impl.abi import ABI, ENOENT
from nanvix.refine import abstraction as R
from nanvix.refine import scenarios
from nanvix.refine.lockstep import Divergence, Lockstep

pytestmark = pytest.mark.kvm

tenants = st.integers(0, R.T - 1)
cores = st.integers(0, R.K - 1)
slots = st.integers(0, R.CFG.R - 1)
u32 = st.integers(0, R.MASK32)
u64 = st.integers(0, 2 ** 64 - 1)


class LockstepMachine(RuleBasedStateMachine):
    """One rule per operation of the alphabet, spec operations and faults alike; hypothesis picks
    the operations and their arguments from the bundles."""
    tenants_b = Bundle("tenants")
    uvms = Bundle("uvms")
    channels = Bundle("channels")
    requests = Bundle("requests")

    def __init__(self):
        super().__init__()
        self.h = Lockstep(strict=True)

    def teardown(self):
        self.h.close()

    @initialize(target=tenants_b)
    def boot(self):
        """Tenant 0 exists with its system VM up; everything else is left to the rules."""
        self.h.create_tenant(0)
        self.h.start_sysvm(0)
        return 0

    def _index_near(self, c, which, delta):
        return (self.h.s[which][c] + delta) & R.MASK32

    # tenants and system VMs
    @rule(target=tenants_b, t=tenants)
    def create_tenant(self, t):
        return t if self.h.create_tenant(t).ok else multiple()

    @rule(t=tenants_b)
    def start_sysvm(self, t):
        self.h.start_sysvm(t)

    @rule(t=tenants_b)
    def crash_sysvm(self, t):
        self.h.crash_sysvm(t)

    @rule(t=tenants_b)
    def restart_sysvm(self, t):
        self.h.restart_sysvm(t)

    # user VMs
    @rule(targets=(uvms, channels), t=tenants_b, i=st.integers(0, R.SLOTS - 1))
    def create_uvm(self, t, i):
        u = R.slots_of(t)[i]
        return u if self.h.create_uvm(u, t).ok else multiple()

    @rule(u=uvms)
    def destroy_uvm(self, u):
        self.h.destroy_uvm(u)

    @rule(u=uvms)
    def recycle_uvm(self, u):
        self.h.recycle_uvm(u)

    @rule(u=uvms)
    def exit_uvm(self, u):
        self.h.exit_uvm(u)

    @rule(u=uvms)
    def crash_uvm(self, u):
        self.h.crash_uvm(u)

    @rule(u=uvms)
    def loop_past_budget(self, u):
        self.h.loop_past_budget(u)

    @rule(u=uvms)
    def map_page(self, u):
        self.h.map_page(u)

    # the scheduler
    @rule(k=cores)
    def schedule(self, k):
        self.h.schedule(k)

    @rule(k=cores)
    def preempt(self, k):
        self.h.preempt(k)

    @rule(k=cores)
    def block(self, k):
        self.h.block(k)

    @rule()
    def wake(self):
        self.h.wake()

    # channels
    @rule(target=requests, c=channels, v=u64, kind=st.sampled_from((0, 0, 1, 2, 3, 4)), n=st.integers(1, 70))
    def submit(self, c, v, kind, n):
        """n requests in a row (n up to 70: past a full ring)."""
        for j in range(n):
            if not self.h.submit(c, (v + j) % 2 ** 64, kind).ok:
                break
        return v

    @rule(c=channels, n=st.integers(1, 70))
    def take(self, c, n):
        for _ in range(n):
            if not self.h.take(c).ok:
                break

    @rule(c=channels, n=st.integers(1, 70))
    def complete(self, c, n):
        for _ in range(n):
            if not self.h.complete(c).ok:
                break

    @rule(c=channels, n=st.integers(1, 70))
    def deliver(self, c, n):
        for _ in range(n):
            if not self.h.deliver(c).ok:
                break

    @rule(c=channels)
    def spurious_doorbell(self, c):
        self.h.spurious_doorbell(c)

    # a hostile guest: arbitrary values, or lies close to the truth (off by a little, by a lap)
    @rule(c=channels, which=st.sampled_from(("c_sqt", "c_cqh", "c_psqh", "c_pcqt")),
          delta=st.integers(-66, 66), any_value=st.none() | u32)
    def scribble_index(self, c, which, delta, any_value):
        v = any_value if any_value is not None else self._index_near(c, which, delta)
        if which == "c_sqt":
            self.h.scribble_sq_tail(c, v)
        elif which == "c_cqh":
            self.h.scribble_cq_head(c, v)
        else:
            self.h.scribble_pub(c, 0 if which == "c_psqh" else 1, v)

    @rule(c=channels, slot=slots, v=requests | u64)
    def scribble_entry(self, c, slot, v):
        """Overwrite a payload, e.g. with an earlier request's (a replay)."""
        self.h.scribble_entry(c, slot, v)

    @rule(c=channels, slot=slots, field=st.sampled_from(sorted(R.ENTRY_FIELDS)), v=u32)
    def scribble_field(self, c, slot, field, v):
        self.h.scribble_field(c, slot, field, v)


TestLockstep = LockstepMachine.TestCase
TestLockstep.settings = settings(max_examples=40, stateful_step_count=50, deadline=None,
                                 suppress_health_check=list(HealthCheck))


@pytest.mark.slow
def test_long_campaign():
    """The slow tier: NANVIX_CAMPAIGN_STEPS (default 10^5) steps from another seed."""
    import os
    from nanvix.refine.cli import run
    r = run(int(os.environ.get("NANVIX_CAMPAIGN_STEPS", 100_000)), seed=int(os.environ.get("NANVIX_SEED", 1)))
    assert r["divergences"] == 0, r["first_divergences"]
    assert r["uncovered"] == []
    assert r["branches_uncovered"] == []


def test_campaign_2000_steps_every_operation_and_branch_covered():
    """What CI runs: 2,000 lock-step steps on KVM, no divergence, every success path taken, and
    every branch (each operation's errors, each completion kind, each ring boundary and index
    wrap, each restart path: nanvix.refine.coverage)."""
    from nanvix.refine.cli import run
    from nanvix.refine.coverage import BRANCHES
    r = run(2000, seed=0)
    assert r["steps"] >= 2000
    assert r["divergences"] == 0, r["first_divergences"]
    assert r["uncovered"] == []
    assert all(n > 0 for n in r["operations"].values())
    assert r["branches_uncovered"] == []
    assert set(r["branches"]) == set(BRANCHES) and all(n > 0 for n in r["branches"].values())


# ---------------------------------------------------------------------------------------------
def test_linux_layer_requests_are_requests():
    """The Linux-ABI layer's requests (stat a file, list a directory) travel the channel like
    every other: taken, completed and delivered in lock step with the spec, answered by the
    real system VM (no file "f": ENOENT; the top directory lists)."""
    with Lockstep() as h:
        h.create_tenant(0)
        h.start_sysvm(0)
        h.create_uvm(0, 0)
        h.schedule(0)
        stat, ls = h.submit(0, 43, 3), h.submit(0, 44, 4)
        assert stat.ok and ls.ok
        for _ in range(2):
            assert h.take(0).ok and h.complete(0).ok
        got = {d["user_data"]: d["result"] for d in (h.deliver(0), h.deliver(0))}
    assert got[stat["user_data"]] == -ENOENT   # (the microkernel picks each request's user_data)
    assert got[ls["user_data"]] >= 0


def test_the_recycled_lifecycle_in_lock_step():
    """A user VM that grew a page and left requests answered, in service and queued exits
    cleanly and is recycled by the runtime's own reset: the same VM (same tenant, same slot) runs
    again on a channel the spec and the implementation both find empty, with its grown page
    back in the pool; it is recycled again and again, and its requests are served each time. A
    recycle while its system VM is down, of a VM still running, or of a crashed one is refused
    on both sides."""
    with Lockstep() as h:
        scenarios.running_guest(h)
        vm = h.d.uvm[0]
        for n in range(3):
            assert h.map_page(0).ok
            for v in range(3):
                assert h.submit(0, v, v % 2).ok
            assert h.take(0).ok and h.complete(0).ok and h.take(0).ok
            assert h.exit_uvm(0).ok
            if n == 1:
                assert h.crash_sysvm(0).ok
                assert h.recycle_uvm(0).err == "EDOWN"
                assert h.restart_sysvm(0).ok
            assert h.recycle_uvm(0).ok
            assert h.d.uvm[0] is vm and vm.invocations == n + 2
            assert h.s["u_state"][0] == M.U_RUNNABLE and h.s["p_kind"].count(M.P_UVM) == 0
            assert (h.s["c_sqt"][0], h.s["c_cqh"][0], h.s["c_sqh"][0], h.s["c_cqt"][0]) == (0, 0, 0, 0)
            assert h.recycle_uvm(0).err == "EINVAL"          # it runs again: not an exit
            assert h.schedule(0).ok
            assert h.deliver(0).err == "EEMPTY"              # nothing of the last invocation
            sub = h.submit(0, 9, 1)
            assert sub.ok and h.take(0).ok and h.complete(0).ok
            assert h.deliver(0)["user_data"] == sub["user_data"]
        assert h.crash_uvm(0).ok
        assert h.recycle_uvm(0).err == "EINVAL"              # a crash is never recycled
        assert h.destroy_uvm(0).ok
        assert h.ops["recycle_uvm"] == 3 and not h.divergences


# planted bugs: the implementation mutants and their scenarios are in tests/refine/test_mutants.py


def test_divergence_is_a_runnable_program():
    """The program a divergence prints reproduces it."""
    with Lockstep(plant="foreign_sysvm") as h, pytest.raises(Divergence) as e:
        scenarios.foreign_sysvm(h)
    program = str(e.value).split("after:\n", 1)[1]
    assert program.startswith("from nanvix.refine import Lockstep\nh = Lockstep(plant='foreign_sysvm')")
    ns = {}
    with pytest.raises(Divergence):
        try:
            exec(program, ns)
        finally:
            if "h" in ns:
                ns["h"].close()


def test_abstraction_sees_a_corrupted_completion():
    """Non-vacuity: a completion changed behind both sides' backs (as a system VM bug would)
    is a divergence."""
    with Lockstep() as h:
        h.create_tenant(0)
        h.start_sysvm(0)
        h.create_uvm(0, 0)
        h.schedule(0)
        v = h.submit(0, 77)["user_data"]
        h.take(0)
        h.complete(0)
        h.d.uvm[0].channel.page.mem.set_u64(ABI["CQ_OFF"], v + 1)  # CQ slot 0's user_data
        with pytest.raises(Divergence, match=r"c_cqv\[0\]\[0\]: impl %d, spec %d" % (v + 1, v)):
            h.sync()
        with pytest.raises(Divergence, match="delivered"):
            h.deliver(0)


def test_abstraction_reads_kvm_memory_slots():
    """Non-vacuity: which user VM maps a page is read from KVM's slot table. Another user VM's
    channel page slipped into a VM behind the control plane's back is a divergence."""
    from nanvix.impl.control.uvm import SLOT_HOTADD
    with Lockstep() as h:
        h.create_tenant(0)
        h.start_sysvm(0)
        h.create_uvm(0, 0)
        h.create_uvm(2, 0)
        vm0, page2 = h.d.uvm[0].vm, h.d.uvm[2].channel.page
        vm0.set_memory(SLOT_HOTADD + 60, ABI["GPA_HOTADD"] + 60 * ABI["PAGE_2M"], page2.mem)
        with pytest.raises(Divergence, match=r"p_mu\[\d\]\[0\]: impl True, spec False"):
            h.sync()


# ---------------------------------------------------------------------------------------------
# noninterference, tested on the implementation

# Tenant A: a kv_add and a file append; it blocks for the second answer and is woken by it.
A_PROGRAM = [("create_uvm", 0), ("submit", 0, 11, 1), ("submit", 0, 12, 2), ("take", 0), ("complete", 0),
             ("deliver", 0), ("block", 0), ("take", 0), ("complete", 0), ("wake",), ("deliver", 0),
             ("submit", 0, 13, 1), ("take", 0), ("complete", 0), ("deliver", 0), ("map_page", 0)]

B_OPS = st.one_of(
    st.tuples(st.sampled_from(("crash_sysvm", "restart_sysvm"))),
    st.tuples(st.just("create_uvm"), st.sampled_from(R.slots_of(1))),
    st.tuples(st.sampled_from(("take", "complete", "deliver", "exit_uvm", "crash_uvm", "map_page",
                               "spurious_doorbell", "destroy_uvm", "block")), st.sampled_from(R.slots_of(1))),
    st.tuples(st.just("fill"), st.sampled_from(R.slots_of(1)), st.integers(1, 70)),
    st.tuples(st.just("submit"), st.sampled_from(R.slots_of(1)), u64, st.sampled_from((0, 1, 2))),
    st.tuples(st.just("scribble"), st.sampled_from(R.slots_of(1)), u32),
    st.tuples(st.just("loop_past_budget"), st.sampled_from(R.slots_of(1))),
)


def on_core(h, u):
    """Put user VM u on a core, taking others off as needed (cores are outside what a tenant
    observes: which core and when is a declared timing channel). Returns the core or None."""
    for _ in range(4 * R.CFG.U):
        if h.s["u_state"][u] == M.U_RUNNING:
            return h.s["u_core"][u]
        if h.s["u_state"][u] != M.U_RUNNABLE:
            return None
        k = next((k for k in range(R.K) if not h.s["k_busy"][k]), None)
        if k is None:
            h.preempt(0)
            k = 0
        h.schedule(k)
    return None


def run_b(h, op):
    name, *args = op
    u = args[0] if args else None
    if name in ("crash_sysvm", "restart_sysvm"):
        h.crash_sysvm(1) if name == "crash_sysvm" else h.restart_sysvm(1)
    elif name == "create_uvm":
        h.create_uvm(u, 1)
    elif name in ("take", "complete", "spurious_doorbell", "destroy_uvm"):
        getattr(h, name)(u)
    elif name == "fill":
        if on_core(h, u) is not None:
            for j in range(args[1]):
                if not h.submit(u, j).ok:
                    break
    elif name == "block":
        k = on_core(h, u)
        if k is not None:
            h.block(k)
    elif on_core(h, u) is not None:
        if name == "submit":
            h.submit(u, args[1], args[2])
        elif name == "scribble":
            h.scribble_sq_tail(u, args[1])
        else:
            getattr(h, name)(u)


def run_a(h, op):
    """One of tenant A's operations; returns what A observes of it."""
    name, *args = op
    if name == "create_uvm":
        out = h.create_uvm(0, 0)
    elif name in ("take", "complete"):
        out = getattr(h, name)(0)
    elif name == "wake":
        return 0 in h.wake()["us"]
    else:
        k = on_core(h, 0)
        if k is None:
            return None
        out = h.block(k) if name == "block" else getattr(h, name)(*args)
    # what the guest sees; not how its vCPU left the core, nor the host's page index
    return {key: v for key, v in out.items() if key not in ("left", "page")}


def run_pair(b_ops, strict=True, plant=None):
    """Tenant A's program interleaved with B's operations; A's observations."""
    obs = []
    with Lockstep(strict=strict, plant=plant) as h:
        for t in range(2):
            h.create_tenant(t)
            h.start_sysvm(t)
        for i, op in enumerate(A_PROGRAM):
            obs.append((op, run_a(h, op)))
            for b in b_ops[i::len(A_PROGRAM)]:
                run_b(h, b)
        # Where the scheduler has A's vCPU (which core; on one or queued, after B's work took
        # the cores) is the declared scheduling channel: put it on a core, then look.
        on_core(h, 0)
        o = h.observe(0, cores=False)
        obs.append(("observe", o["spec"], o["data"]))
    return obs


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(B_OPS, max_size=24), st.lists(B_OPS, max_size=24))
def test_noninterference_of_the_implementation(b1, b2):
    """Tenant A runs the same program twice while tenant B does two different things: A's
    results, its keys and files and its ring (the spec's observation of A) are the same."""
    assume(b1 != b2)
    one, two = run_pair(b1), run_pair(b2)
    assert one == two
    assert one[-1][2]["kv"] == {"6e": "32"}  # A's two kv_add requests ran: "n" = 2


def test_noninterference_test_sees_a_leak():
    """Non-vacuity: with tenant B's channels served by A's system VM (a planted bug), what A
    observes depends on what B does."""
    assert run_pair([], strict=False, plant="foreign_sysvm") != \
        run_pair([("create_uvm", 1)], strict=False, plant="foreign_sysvm")
