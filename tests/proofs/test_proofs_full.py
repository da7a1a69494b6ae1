"""The parametric (`full`) tier: every obligation it covers is proved, and it does not prove a
broken spec (its quantified assumptions are not contradictory)."""
import pytest

from nanvix.proofs import full, runner


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
