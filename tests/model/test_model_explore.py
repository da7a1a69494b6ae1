"""`nanvix explore`: exhaustive exploration of small instances of the concrete model."""
import json
import os
import subprocess
import sys

from nanvix.model import explore as E

NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


def test_small_instance_has_no_violation():
    r = E.explore(E.config(1, 1, None, 2, 1), progress=False)
    assert r["states"] > 100 and r["transitions"] > r["states"]
    assert r["violations"] == [] and r["deadlocks"] == 0 and r["liveness_violations"] == []


def test_hostile_guest_breaks_only_its_channel():
    r = E.explore(E.config(1, 1, None, 1, 1), hostile=True, progress=False)
    assert r["violations"] == [] and r["liveness_violations"] == []


def test_cli_json_two_tenants():
    p = subprocess.run([NANVIX, "explore", "--tenants", "2", "--user-vms", "2", "--ring", "1", "--cores", "1",
                        "--payloads", "1", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    d = json.loads(p.stdout)
    assert set(d) >= {"states", "transitions", "violations", "deadlocks", "liveness_violations", "seconds"}
    assert d["violations"] == [] and d["liveness_violations"] == [] and d["deadlocks"] == 0
    assert d["ni_violations"] == []


def test_invariant_violation_comes_with_a_shortest_trace():
    from nanvix.proofs.runner import load_spec
    r = E.explore(E.config(1, 1, None, 1, 1), spec=load_spec("no_scrub_on_close"), progress=False, liveness=False)
    v = [x for x in r["violations"] if x["invariant"] == "free_pages_scrubbed"]
    assert v and v[0]["trace"][-1].startswith("close_channel")
    assert v[0]["trace"][0] == "create_tenant(0)"


def test_liveness_violation_is_found():
    from nanvix.proofs.runner import load_spec
    r = E.explore(E.config(1, 1, None, 1, 1), spec=load_spec("take_only_running"), progress=False)
    assert r["liveness_violations"] and "block(0)" in r["liveness_violations"][0]["trace"]


def test_cross_tenant_arguments_and_quotas_below_capacity():
    """The alphabet pairs ids across tenants (the spec refuses them all) and a quota below the
    slots makes EQUOTA reachable; a mutant without its ownership check is caught at once."""
    from nanvix.proofs.runner import load_spec
    cfg = E.config(2, 2, 4, 1, 1, quota_pages=1)
    r = E.explore(cfg, cross=True, progress=False, liveness=False)
    assert r["violations"] == [] and r["cross_tenant"] and r["quotas"]["pages"] == 1
    assert r["ni_violations"] == []
    r = E.explore(cfg, cross=True, spec=load_spec("global_page_pool"), progress=False, liveness=False,
                  stop_first=True, noninterference=False)
    assert r["stopped_early"] and r["violations"][0]["invariant"] in ("no_cross_tenant_mapping", "page_share",
                                                                         "guest_maps_only_own", "quotas")
    # the noninterference check meets it first: tenant 0 taking a page of the one pool changes
    # what tenant 1 sees
    r = E.explore(cfg, cross=True, spec=load_spec("global_page_pool"), progress=False, liveness=False,
                  stop_first=True)
    assert r["stopped_early"] and r["ni_violations"][0]["check"] == "ni.map_page.local_respect"


def test_starving_tenant_is_a_liveness_violation():
    from nanvix.proofs.runner import load_spec
    r = E.explore(E.config(2, 2, None, 1, 1), spec=load_spec("schedule_unfair"), progress=False)
    assert any("tenant" in v for v in r["liveness_violations"])


def test_every_runnable_vcpu_runs():
    """One tenant, two vCPUs, one core: none waits runnable forever under the spec's order among
    a tenant's vCPUs; without it (the mutant) one does, and its ghost shows the second overtake."""
    from nanvix.proofs.runner import load_spec
    cfg = E.config(1, 2, None, 1, 1)
    assert E.explore(cfg, progress=False)["liveness_violations"] == []
    r = E.explore(cfg, spec=load_spec("schedule_vcpu_unfair"), progress=False)
    assert {v.get("uvm") for v in r["liveness_violations"]} == {0, 1}
    assert [v["invariant"] for v in r["violations"]] == ["vcpu_fair"]


def test_reduction_is_checked_against_the_spec():
    from nanvix.proofs.runner import load_spec
    cfg = E.config(1, 1, None, 2, 1)
    assert E.explore(cfg, progress=False, liveness=False, check_reduction=True)["reduction_unsound"] == []
    r = E.explore(cfg, spec=load_spec("take_no_wraparound"), progress=False, liveness=False, check_reduction=True)
    assert r["reduction_unsound"] and r["violations"] == []   # the reduction hides this bug...
    r = E.explore(cfg, spec=load_spec("take_no_wraparound"), progress=False, liveness=False, reduce=False)
    assert [v["invariant"] for v in r["violations"]] == ["honest_not_broken"]   # ...exploring without finds it


def test_noninterference_leaks_are_found():
    """Two spec mutants the proofs catch as leaks (a schedule whose errors reveal another
    tenant's queue; open_channel errors that tell a foreign channel from a free one): the
    explorer's check finds each with the states the tenant cannot tell apart."""
    from nanvix.proofs.runner import load_spec
    for mutant, check in (("schedule_leaks_queue", "ni.schedule.output_consistency"),
                          ("leaky_open_channel_errors", "ni.open_channel.output_consistency")):
        r = E.explore(E.config(2, 2, None, 1, 1), spec=load_spec(mutant), cross=True, progress=False,
                      liveness=False, stop_first=True)
        assert r["stopped_early"], mutant
        v = r["ni_violations"][0]
        assert v["check"] == check and v["other_trace"] and v["errors"][0] != v["errors"][1], v
