"""The parametric (`full`) tier: every obligation it covers is proved, and it does not prove a
broken spec (its quantified assumptions are not contradictory)."""
import itertools

import pytest
import z3

from nanvix.proofs import full, runner
from nanvix.proofs.engine import Result
from nanvix.spec.backend import Z3Full


def test_full_tier_proves_what_it_covers():
    results, _ = runner.run("full")
    assert [r.name for r in results if r.status != "proved"] == []
    assert len(results) == len(full.obligation_names()) > 300


COUNTED = ["init.quotas", "ind.create_uvm.quotas", "ind.map_page.quotas", "ind.open_channel.quotas",
           "ind.destroy_uvm.quotas", "ind.close_channel.quotas", "ind.unmap_page.quotas"] + [
    "ni.%s.%s" % (op, w) for op in ("create_uvm", "open_channel", "map_page")
    for w in ("output_consistency", "step_consistency")]


def test_full_tier_covers_the_quotas_and_the_counting_operations():
    """Counts have a parametric meaning (the size of a set): the quota invariant and the
    noninterference of the operations whose quota guards count are obligations of this tier,
    and proved."""
    assert set(COUNTED) <= set(full.obligation_names())
    results, _ = runner.run("full", ",".join(COUNTED))
    assert sorted((r.name, r.status) for r in results) == sorted((n, "proved") for n in COUNTED)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_counting_facts_hold_of_true_sizes(n):
    """What the full tier assumes of a count is true of the real size of every set in a universe
    of n pages (each fact instantiated at every subset or pair of subsets, its witnesses left to
    the solver): so it cannot make a false obligation provable. Not vacuously: a count one too
    large for the whole universe contradicts them."""
    def facts_with(sizes):
        b = Z3Full(full.FULL_CFG)
        card = b.count("P", lambda p: True).decl()
        page = b.sorts["P"]
        es = [z3.Const("e%d" % i, page) for i in range(n)]
        x = z3.Const("x", page)
        sv = z3.Solver()
        sv.add(z3.ForAll([x], z3.Or([x == e for e in es])))
        if n > 1:
            sv.add(z3.Distinct(*es))
        sets = []
        for members in itertools.product((False, True), repeat=n):
            a = z3.K(page, False)
            for e in itertools.compress(es, members):
                a = z3.Store(a, e, True)
            sv.add(card(a) == sizes(members))
            sets.append(a)
        for q in b.card_axioms():
            for vals in itertools.product(sets, repeat=q.num_vars()):
                sv.add(z3.substitute_vars(q.body(), *reversed(vals)))
        return sv.check()
    assert facts_with(sum) == z3.sat
    assert facts_with(lambda m: sum(m) + all(m)) == z3.unsat


@pytest.mark.parametrize("mutant,obligation", [
    ("no_scrub_on_close", "ind.close_channel.free_pages_scrubbed"),
    ("schedule_running_twice", "ind.schedule.sched"),
    ("chan_to_other_sysvm", "ind.open_channel.channel_join"),
    ("restart_replays_taken", "ind.restart_sysvm.at_most_once"),
    ("schedule_leaks_queue", "ni.schedule.output_consistency"),
    # the quotas: a count must not make these provable
    ("create_uvm_no_quota", "ind.create_uvm.quotas"),
    ("global_page_pool", "ind.map_page.quotas"),
    ("global_uvm_quota", "ni.create_uvm.output_consistency"),
    ("global_uvm_quota", "ni.create_uvm.step_consistency"),
    ("global_page_pool", "ni.map_page.output_consistency"),
    ("leaky_open_channel_errors", "ni.open_channel.output_consistency"),
    ("leaky_map_page_probe", "ni.map_page.output_consistency"),
])
def test_full_tier_refutes_a_mutant(mutant, obligation, monkeypatch):
    """The parametric solver rarely finds a model of a quantified formula (it answers unknown),
    so the tier hands what it does not prove to the bounded search beside it, which shows a
    concrete counterexample: the mutant is `failed`, never `proved` (as it would be if the
    quantified assumptions were contradictory) nor merely `unknown`. A short parametric budget
    is enough here."""
    monkeypatch.setattr(full, "TIMEOUT_MS", 1000)
    spec = runner.load_spec(mutant)
    key = tuple(obligation.split(".")[:2])
    (r,) = full.run_group(key, [obligation], spec)
    assert r.status == "failed", r
    assert "bounded counterexample at size" in r.detail


def test_a_timed_out_obligation_is_tried_again_with_more_time(monkeypatch):
    """Z3's limit is wall-clock: a loaded machine must not turn a proof into `unknown`. What timed
    out is tried once more with three times the time; what the quantifiers leave undecided is
    not (it goes to the bounded search as before)."""
    calls = []

    def parametric(key, names, spec, cfg, explain, timeout_ms=None):
        calls.append((list(names), timeout_ms))
        if timeout_ms is None:
            return [Result(names[0], "unknown", 1.0, "  z3: unknown (timeout)"),
                    Result(names[1], "unknown", 1.0, "  z3: unknown (incomplete quantifiers)")]
        return [Result(n, "proved", 1.0, "") for n in names]
    monkeypatch.setattr(full, "_parametric", parametric)
    monkeypatch.setattr(full, "_search", lambda key, r, spec: r)
    out = full.run_group(("ni", "schedule"), ["a", "b"])
    assert calls == [(["a", "b"], None), (["a"], 3 * full.TIMEOUT_MS)]
    assert [(r.name, r.status) for r in out] == [("a", "proved"), ("b", "unknown")]
