"""`nanvix bench` runs end to end and prints every figure (values are not asserted: the machines
are shared and noisy; the bench is for ratios measured in one run)."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kvm
NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


def test_bench_prints_every_figure():
    p = subprocess.run([NANVIX, "bench", "-n", "3", "--hold", "4", "--seconds", "0.3", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["measurements"] and all(v > 0 for v in r["measurements"].values()), r
    assert set(r["ratios"]) and all(v > 0 for v in r["ratios"].values()), r
    assert {"start_p50_us", "echo_p50_us", "invocations_per_s_2_cores", "io_polled_us",
            "kib_per_user_vm", "fairness_p99_ratio"} <= set(r["targets"]), r["targets"]
    # every percentile says how many samples back it; every section is in the JSON
    assert all(f["n"] > 0 for f in r["figures"].values()), r["figures"]
    assert set(r["throughput"]) >= {"1_core"} and all(t["per_s"] > 0 and t["cpu_us_per_invocation"] > 0
                                                         for t in r["throughput"].values()), r["throughput"]
    assert len(r["memory"]["rounds_kib"]) == 3 and r["memory"]["ready_never_run"]
    split = r["memory"]["split_kib_per_vm"]   # where a VM's memory went, by /proc/meminfo's kinds
    assert set(split) == {"made ready", "first run"} and all(
        {"slab", "vmalloc", "rest"} <= set(s) for s in split.values()), split
    f = r["fairness"]
    assert f["alone"]["n"] >= 20 and {"cpu spin", "exit storm", "doorbell storm", "I/O flood"} <= set(f), f
    for kind in ("cpu spin", "exit storm", "doorbell storm", "I/O flood"):
        lo, hi = f[kind]["p99_ratio_ci95"]
        assert f[kind]["n"] >= 20 and lo <= hi and f[kind]["deadline_overshoot_ms"]["n"] > 0, f[kind]


def test_bench_fairness_alone():
    p = subprocess.run([NANVIX, "bench", "--fairness", "-n", "3", "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["fairness"]["alone"]["n"] >= 20 and "fairness_p99_ratio" in r["targets"], r
