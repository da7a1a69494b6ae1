"""The deployment-density model: calibrated, deterministic, and ordered as the design predicts."""
import statistics
import random

from nanvix.model import density


def test_generator_matches_published_fits():
    rng = random.Random(7)
    mem = [density.burr_xii(rng) for _ in range(20000)]
    # published: median application memory about 140 MB, 90% at or below 400 MB
    assert 110 < statistics.median(mem) < 170
    assert sorted(mem)[int(0.9 * len(mem))] < 450
    rates = [density.app_rate_per_s(rng) * 3600 for _ in range(20000)]
    assert 0.40 < sum(r <= 1 for r in rates) / len(rates) < 0.50      # 45% at most hourly
    assert 0.76 < sum(r <= 60 for r in rates) / len(rates) < 0.86     # 81% at most per minute


def test_same_seed_same_answer_and_nanvix_needs_no_more_hosts():
    a = density.run(apps=120, hours=0.25, seed=3, host_gib=16)
    b = density.run(apps=120, hours=0.25, seed=3, host_gib=16)
    assert a == b
    nx = a["designs"]["nanvix"]
    for name in ("firecracker", "gvisor"):
        other = a["designs"][name]
        assert nx["mean_gib"] < other["mean_gib"], (name, nx, other)
        assert nx["peak_hosts"] <= other["peak_hosts"], (name, nx, other)


def test_keep_alive_holds_memory_of_idle_apps():
    # one app invoked once: a keep-alive design holds it for the window, nanvix only while it runs
    meta = [(100.0, 0)]
    events = [(0.0, 1.0, 0)]
    keep = density.simulate(meta, events, 1200, dict(density.DESIGNS["firecracker"], host_gib=1))
    nx = density.simulate(meta, events, 1200, dict(density.DESIGNS["nanvix"], host_gib=1))
    assert keep["mean_gib"] > nx["mean_gib"]
    assert keep["peak_hosts"] == 1
