"""The concrete interpretation of the spec on readable examples, and agreement between the
concrete and the symbolic (Z3) interpretations of the same text on random states and operations."""
import random

import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from nanvix import spec as M
from nanvix.spec import api
from nanvix.spec.backend import Z3Bounded

CFG = M.Config(T=2, U=2, C=2, P=4, K=2, R=2, W=3, V=2, EW=2, hyp=1, quota_uvms=2, quota_pages=2)


@pytest.fixture
def m():
    return api.Model(CFG)


def run(m, s, *calls):
    outs = []
    for name, *args in calls:
        err, out, s = m.step(s, name, *args)
        outs.append((M.ERR_NAMES[err], out))
        assert m.violations(s) == [], (name, args)
    return s, outs


def boot(m):
    """Tenant 0 with user VM 0 running on core 0, channel 0 on page 1."""
    s = m.initial()
    s, outs = run(m, s, ("create_tenant", 0), ("start_sysvm", 0), ("create_uvm", 0, 0),
                  ("open_channel", 0, 0, 1), ("start_uvm", 0), ("schedule", 0, 0))
    assert [e for e, _ in outs] == ["OK"] * 6
    return s


def test_initial_state_satisfies_every_invariant(m):
    assert m.violations(m.initial()) == []


def test_request_round_trip_in_order(m):
    s = boot(m)
    s, outs = run(m, s, ("submit", 0, 1), ("submit", 0, 2), ("submit", 0, 3),
                  ("take", 0), ("take", 0), ("complete", 0, True), ("complete", 0, False),
                  ("deliver", 0), ("deliver", 0), ("deliver", 0))
    errs = [e for e, _ in outs]
    assert errs == ["OK", "OK", "EFULL", "OK", "OK", "OK", "OK", "OK", "OK", "EEMPTY"]
    assert outs[3][1] == (1, 0) and outs[4][1] == (2, 0)        # taken in order
    assert outs[7][1] == (1, 1) and outs[8][1] == (2, 0)        # answered in order, ok / error


def test_invalid_call_changes_nothing(m):
    s = boot(m)
    for call in [("take", 0), ("deliver", 1), ("start_sysvm", 0), ("create_uvm", 1, 0),  # u1 is tenant 1's
                 ("open_channel", 1, 0, 2), ("map_page", 0, 0), ("preempt", 1), ("wake", 0)]:
        err, out, s2 = m.step(s, *call)
        assert err != 0, call
        assert s2 == s and out == (0, 0)


def test_ring_indices_wrap_around(m):
    s = boot(m)
    for k in range(2 * (1 << CFG.W) + 1):          # several laps of the 3-bit indices
        s, outs = run(m, s, ("submit", 0, k % 4), ("take", 0), ("complete", 0, True), ("deliver", 0))
        assert outs[-1] == ("OK", (k % 4, 1))
    assert s["c_sqt"][0] == (2 * (1 << CFG.W) + 1) % (1 << CFG.W)


def test_restart_answers_in_service_requests_with_error(m):
    s = boot(m)
    s, outs = run(m, s, ("submit", 0, 1), ("submit", 0, 2), ("take", 0), ("crash_sysvm", 0),
                  ("take", 0), ("restart_sysvm", 0), ("take", 0), ("complete", 0, True),
                  ("deliver", 0), ("deliver", 0))
    assert outs[4][0] == "EDOWN"
    assert s["s_epoch"][0] == 1
    assert outs[8] == ("OK", (1, 0))              # in service at the crash: EIO, not retried
    assert outs[9] == ("OK", (2, 1))              # still queued at the crash: served after restart


def test_scribbled_indices_break_the_channel_not_the_system(m):
    s = boot(m)
    s, _ = run(m, s, ("scribble_sq_tail", 0, 7))
    assert s["c_honest"][0] is False
    err, out, s = m.step(s, "take", 0)
    assert err == 0 and out == (0, 1) and s["c_state"][0] == M.C_BROKEN
    assert m.violations(s) == []


def test_close_and_destroy_scrub_every_page(m):
    s = boot(m)
    s, outs = run(m, s, ("map_page", 3, 0), ("submit", 0, 1), ("exit_uvm", 0), ("destroy_uvm", 0),
                  ("close_channel", 0), ("destroy_uvm", 0))
    assert [e for e, _ in outs] == ["OK", "OK", "OK", "EBUSY", "OK", "OK"]
    assert all(s["p_scrub"]) and s["p_kind"][1:] == (M.P_FREE,) * 3
    assert not any(any(r) for r in s["p_mu"]) and s["k_busy"] == (False, False)


def test_recycle_makes_a_clean_exit_pristine_in_its_tenant(m):
    s = boot(m)
    s, outs = run(m, s, ("map_page", 3, 0), ("submit", 0, 1), ("submit", 0, 2), ("take", 0),
                  ("complete", 0, True), ("take", 0), ("recycle_uvm", 0), ("exit_uvm", 0), ("recycle_uvm", 0))
    assert [e for e, _ in outs] == ["OK"] * 6 + ["EINVAL", "OK", "OK"]   # running: not an exit
    assert s["u_state"][0] == M.U_CREATED and s["u_tenant"][0] == 0
    assert s["p_kind"][3] == M.P_FREE and s["p_scrub"][3] and not any(s["p_mu"][3])   # grown page freed
    assert s["c_state"][0] == M.C_OPEN and s["c_page"][0] == 1 and s["p_mu"][1][0] and s["p_ms"][1][0]
    assert all(s[f][0] == 0 for f in ("c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh", "c_pcqt", "c_ndl"))
    assert not any(s["c_runs"][0]) and not any(s["c_ok"][0]) and not s["c_any"][0]
    # the next invocation on it: nothing of the last one is delivered, its own requests are served
    s, outs = run(m, s, ("start_uvm", 0), ("schedule", 0, 0), ("deliver", 0), ("submit", 0, 3),
                  ("take", 0), ("complete", 0, False), ("deliver", 0))
    assert outs[2][0] == "EEMPTY" and outs[4] == ("OK", (3, 0)) and outs[6] == ("OK", (3, 0))


def test_recycle_refuses_a_crash_a_down_system_vm_and_a_scribbled_channel_comes_back_honest(m):
    s = boot(m)
    s, _ = run(m, s, ("crash_uvm", 0))
    assert m.step(s, "recycle_uvm", 0)[0] == M.EINVAL          # a crashed VM is never recycled
    s = boot(m)
    s, _ = run(m, s, ("scribble_sq_tail", 0, 7), ("exit_uvm", 0), ("crash_sysvm", 0))
    assert m.step(s, "recycle_uvm", 0)[0] == M.EDOWN
    s, _ = run(m, s, ("restart_sysvm", 0), ("recycle_uvm", 0))
    assert s["c_honest"][0] and s["c_state"][0] == M.C_OPEN and s["c_sqt"][0] == 0
    assert m.step(m.initial(), "recycle_uvm", 1)[0] == M.EINVAL   # a FREE slot


def test_tenants_cannot_touch_each_other(m):
    s = boot(m)
    s, _ = run(m, s, ("create_tenant", 1), ("start_sysvm", 1), ("create_uvm", 1, 1))
    # tenant 1 cannot use tenant 0's page, nor open tenant 0's channel slot
    assert m.step(s, "open_channel", 1, 1, 1)[0] == M.EINVAL
    assert m.step(s, "open_channel", 0, 1, 2)[0] == M.EINVAL
    before = m.observe(s, 0)
    s, _ = run(m, s, ("open_channel", 1, 1, 2), ("crash_sysvm", 1), ("restart_sysvm", 1))
    assert m.observe(s, 0) == before


def test_block_and_wake(m):
    s = boot(m)
    s, outs = run(m, s, ("submit", 0, 1), ("block", 0), ("wake", 0), ("take", 0), ("complete", 0, True),
                  ("wake", 0), ("schedule", 1, 0), ("block", 1))
    assert [e for e, _ in outs] == ["OK", "OK", "EEMPTY", "OK", "OK", "OK", "OK", "EBUSY"]


# ---------------------------------------------------------------------------------------------
# symbolic vs concrete agreement

def _random_state(rng, cfg):
    n = cfg.sizes()

    def leaf(kind):
        if kind == "bool":
            return rng.random() < 0.5
        if kind[0] == "bv":
            return rng.randrange(1 << kind[1])
        if kind[0] == "id":
            return rng.randrange(n[kind[1]])
        if kind[0] == "enum":
            return rng.randrange(kind[1])
        return rng.randrange(kind[1] + 1)

    def build(dims, kind):
        if not dims:
            return leaf(kind)
        return tuple(build(dims[1:], kind) for _ in range(n[dims[0]]))
    return {f: build(d, k) for f, (d, k) in M.fields(cfg).items()}


def _random_reachable(rng, m, steps):
    s = m.initial()
    names = list(M.OPS)
    for _ in range(steps):
        name = rng.choice(names)
        args = _random_args(rng, m.cfg, name)
        err, _, s2 = m.step(s, name, *args)
        if err == 0:
            s = s2
    return s


def _random_args(rng, cfg, name):
    n = cfg.sizes()
    out = []
    for sort in M.OPS[name][1]:
        out.append({"V": lambda: rng.randrange(1 << cfg.V), "B": lambda: rng.random() < 0.5,
                    "I": lambda: rng.randrange(1 << cfg.W), "S": lambda: rng.randrange(cfg.R),
                    "2": lambda: rng.randrange(2)}.get(sort, lambda: rng.randrange(n.get(sort, 1)))())
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 32 - 1), op=st.sampled_from(sorted(M.OPS)), reachable=st.booleans())
def test_symbolic_and_concrete_interpretations_agree(seed, op, reachable):
    from nanvix.spec.symbolic import to_z3, enc_value, arg_kind, concrete_of
    rng = random.Random(seed)
    m = api.Model(CFG)
    s = _random_reachable(rng, m, rng.randrange(60)) if reachable else _random_state(rng, CFG)
    args = _random_args(rng, CFG, op)
    err, out, post = m.step(s, op, *args)
    zb = Z3Bounded(CFG)
    zargs = [enc_value(a, arg_kind(CFG, sort)) for a, sort in zip(args, M.OPS[op][1])]
    zerr, zout, zpost = M.OPS[op][0](zb, CFG, to_z3(CFG, s), *zargs)
    assert concrete_of(zerr) == err
    assert concrete_of(zout) == out
    assert {f: concrete_of(v) for f, v in zpost.items()} == post
    # invariants and observation agree too
    zs = to_z3(CFG, s)
    for name, f in M.INVARIANTS.items():
        assert concrete_of(f(zb, CFG, zs)) == f(m.b, CFG, s), name
    assert concrete_of(M.observe(zb, CFG, zs, 1)) == m.observe(s, 1)


def test_spec_runs_at_the_implementations_widths():
    """32-bit ring indices (a 2**32-cell history, held sparsely) and 64-bit payloads: the widths
    the refinement harness uses. Indices wrap at 2**32 exactly as the implementation's do."""
    from nanvix.spec.backend import Sparse
    cfg = api.Config(T=1, U=1, C=1, P=2, K=1, R=64, W=32, V=64, EW=32, hyp=0, quota_uvms=1, quota_pages=1)
    m = api.Model(cfg)
    s = m.initial()
    for op, *a in [("create_tenant", 0), ("start_sysvm", 0), ("create_uvm", 0, 0), ("open_channel", 0, 0, 0),
                   ("start_uvm", 0), ("schedule", 0, 0)]:
        err, _, s = m.step(s, op, *a)
        assert err == 0, op
    assert isinstance(s["c_hist"][0], Sparse) and len(s["c_hist"][0]) == 2 ** 32
    # a hostile guest moves every index to just below the wrap; an honest run then crosses it
    for op, v in [("scribble_sq_tail", 2 ** 32 - 2), ("scribble_cq_head", 2 ** 32 - 2)]:
        err, _, s = m.step(s, op, 0, v)
        assert err == 0
    err, _, s = m.step(s, "restart_sysvm", 0)   # not down: refused
    assert err != 0
    err, _, s = m.step(s, "submit", 0, 2 ** 64 - 1)
    assert err == 0 and s["c_sqt"][0] == 2 ** 32 - 1 and s["c_hist"][0][2 ** 32 - 2] == 2 ** 64 - 1
    err, _, s = m.step(s, "submit", 0, 5)
    assert err == 0 and s["c_sqt"][0] == 0 and s["c_hist"][0][2 ** 32 - 1] == 5
    err, out, _ = m.step(s, "take", 0)   # sq_head 0, sq_tail 0 now: the guest's lie left it empty
    assert (err, out) == (M.EEMPTY, (0, 0))
    a, b = Sparse(4, 0).set(1, 7), Sparse(4, 0).set(1, 7).set(2, 0)
    assert a == b and hash(a) == hash(b) and a[1] == 7 and a[3] == 0


def test_field_doc_names_every_field():
    """api.FIELD_DOC, the state's documentation for users of the oracle, matches the fields."""
    assert set(api.FIELD_DOC) == set(M.fields(api.Config()))
