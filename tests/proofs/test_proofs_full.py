"""The parametric (`full`) tier: every obligation it covers is proved, and it does not prove a
broken spec (its quantified assumptions are not contradictory)."""
import pytest

from nanvix.proofs import full, runner
from nanvix.proofs.engine import Result


def test_full_tier_proves_what_it_covers():
    results, _ = runner.run("full")
    assert [r.name for r in results if r.status != "proved"] == []
    assert len(results) == len(full.obligation_names()) > 300


@pytest.mark.parametrize("mutant,obligation", [
    ("no_scrub_on_close", "ind.close_channel.free_pages_scrubbed"),
    ("schedule_running_twice", "ind.schedule.sched"),
    ("chan_to_other_sysvm", "ind.open_channel.channel_join"),
    ("restart_replays_taken", "ind.restart_sysvm.at_most_once"),
    ("schedule_leaks_queue", "ni.schedule.output_consistency"),
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
