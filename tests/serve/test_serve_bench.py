"""`nanvix bench --http` runs end to end against a real daemon and prints every HTTP figure
(values are never asserted: the machine is shared; the bench compares ratios in one run)."""
import json
import subprocess

import pytest

from serve_daemon import NANVIX

pytestmark = pytest.mark.kvm


def test_bench_http_prints_every_figure(kvm):
    p = subprocess.run([NANVIX, "bench", "--http", "-n", "3", "--seconds", "0.3", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    assert {"HTTP first echo of a fresh deployment", "HTTP warm echo", "floor: HTTP server answering in-process",
            "HTTP front door's share of a warm echo"} <= set(r["figures"]), r["figures"]
    assert all(f["p50"] > 0 for name, f in r["figures"].items() if "share" not in name), r["figures"]
    for clients in (1, 8, 64):
        assert r["values"]["http_invocations_per_s_%d_clients" % clients] > 0
        assert r["values"]["http_floor_requests_per_s_%d_clients" % clients] > 0
    assert set(r["targets"]) == {"http_first_echo_p50_us", "http_warm_echo_p50_us", "http_invocations_per_s_64_clients"}
    assert ("peer: runsc do echo (gVisor, ptrace)" in r["figures"]) != ("runsc" in r["skipped"])
    # the table a user reads renders from the same result (an --http run has no throughput,
    # memory or fairness section)
    from nanvix.impl.cli.bench import render
    table = render(r)
    assert "HTTP warm echo" in table and "http_invocations_per_s_64_clients" in table
