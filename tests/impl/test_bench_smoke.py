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
            "kib_per_user_vm"} <= set(r["targets"]), r["targets"]
