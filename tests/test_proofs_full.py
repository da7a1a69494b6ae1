"""The parametric (`full`) tier: every obligation it covers is proved, and it still tells a broken
spec from the real one (its quantified assumptions are not contradictory)."""
import pytest

from nanvix.proofs import full, runner


def test_full_tier_proves_what_it_covers():
    results, secs = runner.run("full")
    assert [r.name for r in results if r.status != "proved"] == []
    assert len(results) == len(full.obligation_names()) > 300


@pytest.mark.parametrize("mutant,obligation", [
    ("no_scrub_on_close", "ind.close_channel.free_pages_scrubbed"),
    ("schedule_running_twice", "ind.schedule.sched"),
    ("chan_to_other_sysvm", "ind.open_channel.channel_join"),
])
def test_full_tier_does_not_prove_a_mutant(mutant, obligation, monkeypatch):
    monkeypatch.setattr(full, "TIMEOUT_MS", 3000)
    spec = runner.load_spec(mutant)
    key = tuple(obligation.split(".")[:2])
    (r,) = full.run_group(key, [obligation], spec)
    assert r.status != "proved"
