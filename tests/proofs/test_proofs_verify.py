"""`nanvix verify`: the fast tier proves every obligation, every mutant is caught, the JSON shapes
hold, and a failure explains itself with a counterexample."""
import json
import os
import subprocess
import sys

from nanvix.proofs import engine, runner

NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


def test_fast_tier_proves_every_obligation():
    results, _ = runner.run("fast")
    bad = [(r.name, r.status, r.detail) for r in results if r.status != "proved"]
    assert bad == []
    names = {r.name for r in results}
    # every (operation, invariant) pair, and noninterference for every operation
    for op in engine.Spec().ops:
        assert "ni.%s.local_respect" % op in names and "vacuity.%s" % op in names
        for inv in engine.Spec().invariants:
            assert "ind.%s.%s" % (op, inv) in names
    assert len(results) == len(engine.obligation_names())


def test_verify_cli_json_shape():
    p = subprocess.run([NANVIX, "verify", "--json", "--only", "ni.restart_sysvm.*,init.*"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    d = json.loads(p.stdout)
    assert set(d) >= {"tier", "seconds", "proved", "failed", "unknown", "obligations"}
    assert d["tier"] == "fast" and d["failed"] == 0 and d["proved"] == len(d["obligations"]) > 3
    assert all(set(o) >= {"name", "status", "seconds"} for o in d["obligations"])


def test_every_mutant_is_caught_by_a_named_obligation():
    p = subprocess.run([NANVIX, "verify", "--mutants", "--json"], capture_output=True, text=True, timeout=900)  # a hang guard, not a speed test
    d = json.loads(p.stdout)
    assert len(d["mutants"]) >= 30
    missed = [m["name"] for m in d["mutants"] if not m["caught"] or not m["caught_by"]]
    assert missed == []
    assert d["score"] == 100.0 and d["survivors"] == []
    assert p.returncode == 0


def test_verify_mutants_fails_on_a_survivor(capsys):
    """The score counts a mutant no obligation catches, and the command fails on it."""
    import types
    from nanvix.proofs import cli

    class Runner:
        mutant_names = staticmethod(lambda: ["caught", "survives"])
        run_mutant = staticmethod(lambda name, jobs=None: {
            "name": name, "caught": name == "caught", "caught_by": ["ind.x.y"] if name == "caught" else [],
            "description": ""})
    assert cli._mutants(types.SimpleNamespace(json=True, jobs=1), Runner) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["score"] == 50.0 and d["survivors"] == ["survives"]


def test_a_failure_prints_a_counterexample():
    spec = runner.load_spec("no_scrub_on_close")
    rs = engine.run_group(("ind", "close_channel"), ["ind.close_channel.free_pages_scrubbed"], spec)
    assert rs[0].status == "failed"
    assert "counterexample" in rs[0].detail and "p_kind[0]: 3 -> 0" in rs[0].detail


def test_noninterference_failure_names_the_tenants():
    spec = runner.load_spec("restart_resets_all")
    rs = engine.run_group(("ni", "restart_sysvm"), ["ni.restart_sysvm.local_respect"], spec)
    assert rs[0].status == "failed" and "observes" in rs[0].detail
