"""The deployment-density model: the generator against its published fits, the Azure trace reader
on files in the trace's format, the engine against hand-computed cases, the inputs and the command."""
import csv
import json
import math
import os
import random
import statistics
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nanvix.model import density, designs as D, hosts as H, workload as W

NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


# -- the generator --------------------------------------------------------------------------------

def test_generator_matches_published_fits():
    rng = random.Random(7)
    mem = [W.burr_xii(rng) for _ in range(20000)]
    # published: median application memory about 140 MB, 90% at or below 400 MB
    assert 110 < statistics.median(mem) < 170
    assert sorted(mem)[int(0.9 * len(mem))] < 450
    rates = [W.app_rate_per_s(rng) * 3600 for _ in range(20000)]
    assert 0.40 < sum(r <= 1 for r in rates) / len(rates) < 0.50      # 45% at most hourly
    assert 0.76 < sum(r <= 60 for r in rates) / len(rates) < 0.86     # 81% at most per minute
    means = sorted(W.exec_seconds(rng) for _ in range(20000))
    assert 0.45 < sum(m < 1.0 for m in means) / len(means) < 0.62     # about half average under 1 s


def test_generator_is_deterministic_for_a_seed():
    a, b, c = W.generate(40, 0.2, 5), W.generate(40, 0.2, 5), W.generate(40, 0.2, 6)
    assert np.array_equal(a.start, b.start) and np.array_equal(a.duration, b.duration)
    assert not (len(a.start) == len(c.start) and np.array_equal(a.start, c.start))
    assert (np.diff(a.start) >= 0).all() and (a.duration <= W.MAX_DURATION_S).all()


# -- the engine -------------------------------------------------------------------------------------

def one_app(invocations, memory=100.0, seconds=600.0, warmup=60.0, tenant=0):
    s = [x[0] for x in invocations]
    d = [x[1] for x in invocations]
    return W.Workload([memory], [tenant], s, d, [0] * len(s), seconds, warmup, "hand-made")


def test_running_is_each_invocations_share_of_each_bin():
    g = H.Grid(one_app([(70.5, 2.75)]), dt=1)
    row = g.running[0]
    assert row[70] == pytest.approx(0.5) and row[71] == pytest.approx(1.0)
    assert row[72] == pytest.approx(1.0) and row[73] == pytest.approx(0.25)
    assert row.sum() == pytest.approx(2.75)
    assert g.arrivals[0].sum() == 1 and g.arrivals[0][70] == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 590), st.floats(0.001, 200)), min_size=1, max_size=30),
       st.sampled_from([1, 3, 10, 60]))
def test_occupancy_integrates_to_the_time_run(invocations, dt):
    g = H.Grid(one_app(invocations), dt=dt)
    expected = sum(min(s + d, 600.0) - s for s, d in invocations)
    assert g.running.sum() * dt == pytest.approx(expected, rel=1e-4, abs=1e-3)
    assert g.arrivals.sum() == len(invocations)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=50), st.integers(1, 60))
def test_window_max_is_the_max_of_the_trailing_window(xs, length):
    x = np.array([xs], dtype=np.float32)
    got = H.window_max(x, length)[0]
    for t in range(len(xs)):
        assert got[t] == max(xs[max(0, t - length + 1):t + 1])


def g0(**kw):
    g = {"dirty_fraction": 0.3, "cpu_share": 0.0, "host_gib": 1, "host_cores": 64}
    g.update(kw)
    return g


def test_keep_alive_holds_an_idle_application_and_nanvix_only_while_it_runs():
    # one 100 MB application invoked once for 1 s at t = 120 s
    grid = H.Grid(one_app([(120.0, 1.0)], seconds=900.0), dt=1)
    m = 100.0 / H.MB_PER_MIB
    inp = D.Inputs()
    inp.values.update(template_keep_s=60.0, keep_alive_s=600.0)
    ds = D.designs(inp)
    fc = H.evaluate(grid, ds["firecracker"], g0())["mem_mib"]
    nx = H.evaluate(grid, ds["nanvix"], g0())["mem_mib"]
    first = grid.first
    at = lambda series, t: float(series[t - first])
    # Firecracker: the instance (5 MiB + the written 30%) and the snapshot's 70% for 600 s after
    assert at(fc, 120) == pytest.approx(5.0 + m, rel=1e-4)
    assert at(fc, 120 + 600) == pytest.approx(5.0 + m, rel=1e-4) and at(fc, 122 + 600) == 0
    # nanvix: the user VM while it runs; the snapshot and ready user VMs for 60 s; its system VM always
    tpl = inp["template_kib"] / 1024 + 0.7 * m + 3 * inp["kib_per_ready_vm"] / 1024
    sysvm = inp["sysvm_kib"] / 1024
    assert at(nx, 120) == pytest.approx(inp["kib_per_user_vm"] / 1024 + 0.3 * m + tpl + sysvm, rel=1e-4)
    assert at(nx, 150) == pytest.approx(tpl + sysvm, rel=1e-4)
    assert at(nx, 300) == pytest.approx(sysvm, rel=1e-4)


def test_as_implemented_nanvix_keeps_every_snapshot_for_ever():
    grid = H.Grid(one_app([(120.0, 1.0)]), dt=1)
    nx = H.evaluate(grid, D.designs(D.Inputs())["nanvix"], g0())["mem_mib"]
    assert nx.min() > 0.7 * 100 / H.MB_PER_MIB          # the snapshot never leaves
    assert float(nx[-1]) == pytest.approx(float(nx[0]))


def test_each_ceiling_binds_where_it_is_lowest():
    w = one_app([(100.0 + i * 0.01, 50.0) for i in range(400)], memory=1.0)
    grid = H.Grid(w, dt=1)
    inp = D.Inputs()
    inp.values.update(live_ceiling=100)
    nx = D.designs(inp)["nanvix"]
    h = H.hosts(grid, H.evaluate(grid, nx, g0(host_gib=256)), nx, g0(host_gib=256))
    # 400 running and 3 ready user VMs, 100 per host
    assert h["binding"] == "live VMs" and h["hosts_per_minute"].max() == 5
    # every running invocation on a core of its own, 8 cores a host: 50 hosts while they run
    inp.values.update(live_ceiling=10 ** 9)
    nx = D.designs(inp)["nanvix"]
    g = g0(host_gib=256, cpu_share=1.0, host_cores=8)
    h = H.hosts(grid, H.evaluate(grid, nx, g), nx, g)
    assert h["binding_minutes"]["cpu"] >= 1 and 50 <= h["hosts_per_minute"].max() <= 51   # (+ their starts)


def test_new_instances_are_counted_once_per_keep_alive_window():
    # invocations every 100 s: with a 600 s keep-alive one instance serves all, with 60 s each is new
    w = one_app([(60.0 + 100 * i, 1.0) for i in range(5)], seconds=600.0, warmup=60.0)
    grid = H.Grid(w, dt=1)
    inp = D.Inputs()
    for keep, new in ((600.0, 1), (60.0, 5)):
        inp.values["keep_alive_s"] = keep
        d = H.evaluate(grid, D.designs(inp)["firecracker"], g0())
        assert round(d["new_instances"]) == new


# -- the model ------------------------------------------------------------------------------------

def test_same_seed_same_answer_and_the_ratios_are_of_host_equivalents():
    a = density.run(apps=60, hours=0.25, seed=3, host_gib=16, with_sensitivity=False)
    b = density.run(apps=60, hours=0.25, seed=3, host_gib=16, with_sensitivity=False)
    a.pop("_series"), b.pop("_series")
    assert a == b
    nx = a["designs"]["nanvix"]["host_equivalents"]
    for name in density.BASELINES:
        assert a["hosts_saved_vs"][name] == pytest.approx(a["designs"][name]["host_equivalents"] / nx, abs=0.01)
    assert all(s.startswith(("default", "assumed", "option")) for s in (v["source"] for v in a["inputs"].values()))
    assert a["measured"] == []


def test_sensitivity_moves_as_the_design_predicts():
    r = density.run(apps=80, hours=0.25, seed=2, host_gib=16)
    rows = {(x["input"], x["value"]): x for x in r["sensitivity"]}
    fc = lambda key, value: rows[(key, value)]["ratios_memory_only"]["firecracker"]
    # a microVM's guest kernel counts against Firecracker; evicting nanvix's snapshots helps nanvix
    assert fc("guest_os_mib", "128") > fc("guest_os_mib", "32") > fc("guest_os_mib", "0")
    assert fc("template_keep_s", "60") > fc("template_keep_s", "for ever")
    assert fc("firecracker_shared", "0") > fc("firecracker_shared", "1")
    assert sum(x["base"] for x in r["sensitivity"] if x["input"] == "dirty_fraction") == 1
    for w in r["what_it_takes"].values():
        ratios = [s["ratio"] for s in w["steps"]]
        assert ratios == sorted(ratios) and w["best"] == ratios[-1]
        assert w["reached"]["20x"] == (w["best"] >= 20)


# -- the Azure Functions 2019 trace's format ---------------------------------------------------------

def write_trace(d, day=1, rows=None, durations=True, memory=True):
    inv = os.path.join(d, W.FILES["invocations"] % day)
    rows = rows if rows is not None else [
        ("o1", "a1", "f1", "http", {30: 2, 31: 1, 45: 3}),
        ("o1", "a1", "f2", "timer", {30: 1}),
        ("o1", "a2", "f3", "queue", {40: 4}),
        ("o2", "a3", "f4", "event", {59: 1}),
        ("o3", "a4", "f5", "http", {}),           # never invoked
    ]
    with open(inv, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["HashOwner", "HashApp", "HashFunction", "Trigger"] + [str(i) for i in range(1, 1441)])
        for o, a, fn, trig, counts in rows:
            wr.writerow([o, a, fn, trig] + [counts.get(m, 0) for m in range(1440)])
    if durations:
        with open(os.path.join(d, W.FILES["durations"] % day), "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum", "Maximum"]
                        + ["percentile_Average_%d" % p for p in W.DURATION_POINTS])
            wr.writerow(["o1", "a1", "f1", 150, 6, 100, 200, 100, 100, 120, 150, 180, 200, 200])
            wr.writerow(["o1", "a2", "f3", 2000, 4, 1000, 3000, 1000, 1000, 1500, 2000, 2500, 3000, 3000])
    if memory:
        with open(os.path.join(d, W.FILES["memory"] % day), "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb"]
                        + ["AverageAllocatedMb_pct%d" % p for p in (1, 5, 25, 50, 75, 95, 99, 100)])
            wr.writerow(["o1", "a1", 10, 120] + [120] * 8)
            wr.writerow(["o1", "a2", 10, 300] + [300] * 8)
    return inv


def test_the_trace_reader_keeps_every_invocation_in_its_minute(tmp_path):
    write_trace(str(tmp_path))
    files = W.trace_files(str(tmp_path))
    w = W.read_azure(files["invocations"], files["durations"], files["memory"], warmup_s=1200.0)
    assert w.apps == 3 and w.tenants == 2                 # a4 never ran; owners are tenants
    by_app = {k: i for i, k in enumerate(w.names)}
    a1, a2, a3 = by_app[("o1", "a1")], by_app[("o1", "a2")], by_app[("o2", "a3")]
    assert w.tenant[a1] == w.tenant[a2] != w.tenant[a3]
    assert w.memory_mb[a1] == 120 and w.memory_mb[a2] == 300
    minutes = lambda a: sorted((w.start[w.app == a] // 60).astype(int).tolist())
    assert minutes(a1) == [30, 30, 30, 31, 45, 45, 45] and minutes(a2) == [40] * 4 and minutes(a3) == [59]
    d2 = w.duration[w.app == a2]
    assert ((d2 >= 1.0) & (d2 <= 3.0)).all()              # within f3's percentiles (ms -> s)
    assert any("no memory row" in n for n in w.notes)       # a3 drawn from the fit, and said so
    assert any("no duration row" in n for n in w.notes)     # f2 and f4 likewise
    again = W.read_azure(files["invocations"], files["durations"], files["memory"], warmup_s=1200.0)
    assert np.array_equal(w.start, again.start)             # deterministic for a seed
    one = W.read_azure(files["invocations"], apps=1, seed=4, warmup_s=1200.0)
    assert one.apps == 1


@pytest.mark.parametrize("header,row,message", [
    (["HashOwner", "HashApp", "Trigger", "1"], ["o", "a", "http", "1"], "missing column"),
    (["HashOwner", "HashApp", "HashFunction", "Trigger", "1", "3"], ["o", "a", "f", "http", "1", "2"], "in order"),
    (["HashOwner", "HashApp", "HashFunction", "Trigger", "1"], ["o", "a", "f", "http", "-1"], "must be finite"),
    (["HashOwner", "HashApp", "HashFunction", "Trigger", "1"], ["o", "a", "f", "http", "x"], "not a number"),
    (["HashOwner", "HashApp", "HashFunction", "Trigger", "1"], ["o", "a", "f"], "3 fields"),
])
def test_a_malformed_trace_is_refused_with_its_file_and_line(tmp_path, header, row, message):
    p = tmp_path / "inv.csv"
    with open(p, "w", newline="") as f:
        csv.writer(f).writerows([header, row])
    with pytest.raises(W.TraceError, match=message):
        W.read_azure(str(p))


# -- inputs ---------------------------------------------------------------------------------------------

def test_inputs_from_bench_json_are_marked_measured(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"values": {"start_p50_us": 90}, "density_inputs": {
        "values": {"kib_per_user_vm": 700.0, "sysvm_kib": 20000.0, "ready_per_function": 3, "bogus": 1,
                   "cpu_us_per_invocation": -5},
        "how": {"kib_per_user_vm": "memory charged per user VM"}, "notes": ["runsc absent"]}}))
    live = tmp_path / "live.json"
    inp = D.Inputs()
    inp.load(str(bench))
    # a scale test that held all it was asked for shows a floor of the ceiling, one that fell short the ceiling
    for asked, held, ceiling in ((2000, 2000, 20000), (30000, 30000, 30000), (30000, 19990, 19990)):
        live.write_text(json.dumps({"live": asked, "values": {"live_user_vms": held, "kib_per_user_vm": 650.0}}))
        inp.load(str(live))
        assert inp["live_ceiling"] == ceiling
    assert inp["sysvm_kib"] == 20000.0 and inp["kib_per_user_vm"] == 700.0   # the cgroup's count kept
    assert inp.sources["sysvm_kib"].startswith("measured") and inp.sources["ready_per_function"].startswith("setting")
    assert inp["cpu_us_per_invocation"] == D.DEFAULTS["cpu_us_per_invocation"][0]   # a negative is not taken
    assert "bogus" not in inp.values and any("runsc absent" in n for n in inp.notes)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        inp.load(str(bad))
    bad.write_text(json.dumps({"values": {}}))
    with pytest.raises(ValueError, match="no density inputs"):
        inp.load(str(bad))


@pytest.mark.kvm
def test_the_bench_measures_every_input_the_model_reads():
    from nanvix.impl.cli import density_inputs
    r = density_inputs.measure(small=True)
    v = r["values"]
    for k in ("start_us", "cpu_us_per_invocation", "template_build_us", "template_kib", "kib_per_user_vm",
              "kib_per_ready_vm", "sysvm_kib", "sysvm_start_us", "spawn_us", "process_kib"):
        assert v[k] > 0, (k, v)
    assert v["sysvm_kib"] >= v["sysvm_uss_kib"] > 0 and v["sysvm_rss_kib"] >= v["sysvm_pss_kib"] >= v["sysvm_uss_kib"] / 2
    assert 1 <= v["fds_per_user_vm"] <= 3 and v["live_ceiling_per_process"] > 1000
    assert r["limits"]["nofile"] > 0 and set(r["how"]) <= set(v)
    inp = D.Inputs()
    inp.take(r, "test")
    assert {"kib_per_user_vm", "sysvm_kib", "cpu_us_per_invocation"} <= set(inp.measured())


# -- the command ------------------------------------------------------------------------------------------

def test_the_command_prints_json_and_writes_its_plot(tmp_path):
    png = tmp_path / "hosts.png"
    p = subprocess.run([NANVIX, "density", "--defaults", "--apps", "60", "--hours", "0.25", "--json",
                        "--plot", str(png), "--set", "template_keep_s=inf"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert set(r["designs"]) == {"nanvix"} | set(density.BASELINES)
    assert {"mean_hosts", "peak_hosts", "mean_gib", "peak_gib", "host_equivalents", "binding"} <= set(r["designs"]["nanvix"])
    assert set(r["hosts_saved_vs"]) == set(density.BASELINES) and r["sensitivity"] and r["what_it_takes"]
    assert r["plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert r["inputs"]["template_keep_s"]["source"] == "option --set"
    assert r["measured"] == []


def test_the_command_reads_a_trace_and_refuses_a_bad_one(tmp_path):
    write_trace(str(tmp_path))
    p = subprocess.run([NANVIX, "density", "--defaults", "--trace", str(tmp_path), "--no-plot", "--no-sensitivity"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Azure Functions 2019 trace" in p.stdout and "3 applications, 2 tenants" in p.stdout
    p = subprocess.run([NANVIX, "density", "--defaults", "--trace", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "invocations_per_function_md" in p.stderr
    p = subprocess.run([NANVIX, "density", "--set", "nothing=1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "NAME=VALUE" in p.stderr
