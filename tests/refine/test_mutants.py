"""Implementation mutants (nanvix.refine.plants): the lock-step check catches them.

Every directed scenario runs clean on the honest implementation and diverges with each mutant it
is named for; a sample of the mutants the campaign catches is run as `nanvix check --mutants`
does. The whole table is `make mutants` (a few minutes)."""
import json
import os
import subprocess
import sys

import pytest

from nanvix.refine import mutants as MU
from nanvix.refine.plants import MUTANTS, NAMES
from nanvix.refine.scenarios import SCENARIOS

pytestmark = pytest.mark.kvm
NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


def test_the_registry_names_each_mutant_with_where_and_what():
    assert len(NAMES) >= 20
    for name, m in MUTANTS.items():
        assert m.where and m.doc, name
        assert m.runtime is not None
    assert set(SCENARIOS) <= set(MUTANTS)


@pytest.mark.parametrize("scenario", sorted({s.__name__ for s in SCENARIOS.values()}))
def test_a_scenario_runs_clean_on_the_honest_implementation(scenario):
    fn = next(s for s in SCENARIOS.values() if s.__name__ == scenario)
    assert MU.play(fn) is None


@pytest.mark.parametrize("mutant", sorted(SCENARIOS))
def test_a_mutant_diverges_in_its_scenario(mutant):
    e = MU.play(SCENARIOS[mutant], mutant)
    assert e is not None, "%s survives %s" % (mutant, SCENARIOS[mutant].__name__)


@pytest.mark.parametrize("mutant", ["broken_not_recorded", "channel_pages_uncounted", "timeout_is_exit"])
def test_a_campaign_catches_a_mutant(mutant):
    """A short campaign, stopped at its first divergence (as `nanvix check --mutants` runs it)."""
    got = MU.campaign(mutant, steps=1500, seed=0, episode=250)
    assert got is not None, mutant
    assert got[0].startswith("campaign (")


def test_check_mutants_prints_a_score_and_fails_on_a_survivor():
    """The command's contract on a sample: the table, the score, exit 1 with a survivor."""
    p = subprocess.run([NANVIX, "check", "--mutants", "--steps", "300", "--json",
                        "--only", "no_scrub,take_no_name_check"],
                       capture_output=True, text=True, timeout=600)
    d = json.loads(p.stdout)
    rows = {r["mutant"]: r for r in d["mutants"]}
    assert rows["no_scrub"]["caught"] and rows["no_scrub"]["by"]
    assert d["total"] == 2 and d["score"] == 100.0 * d["caught"] / 2
    assert p.returncode == (1 if d["survivors"] else 0)
