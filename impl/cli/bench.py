"""`nanvix bench`: start time, invocation and I/O round trip, each beside a floor measured in the
same run (floors.py). Figures are medians; compare the ratios, not the absolute values."""
import json
import statistics
import tempfile
import time

from nanvix.impl.cli import floors as F
from nanvix.impl.cli.common import emit, positive
from nanvix.impl.cli.run import example


def register(sub):
    p = sub.add_parser("bench", help="start time, invocation and I/O round trip against floors")
    p.add_argument("-n", type=positive, default=30, help="repetitions per measurement")
    p.add_argument("--density", type=positive, default=200, help="user VMs held at once for the memory figure")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def memory_per_vm(rt, image, count):
    """Host memory per live user VM: MemAvailable before and after `count` user VMs exist
    (created, memory mapped, channel attached; not yet run). Kernel and user memory alike."""
    before = F.mem_available_kib()
    vms = [rt.create_user_vm("density", image, b"x") for _ in range(count)]
    after = F.mem_available_kib()
    for vm in vms:
        rt.destroy(vm)
    return max(0, before - after) / count


def cmd_bench(args):
    from nanvix.impl.control.runtime import Runtime
    n = max(3, args.n)
    med = statistics.median
    with tempfile.TemporaryDirectory(prefix="nanvix-bench-") as home, \
            Runtime(home=home, quota_uvms=10_000, quota_pages=10_000) as rt:
        hello = rt.load(example("hello.c"))
        rt.invoke("bench", hello)  # warm: system VM, template
        starts, totals = [], []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            r = rt.invoke("bench", hello, b"x")
            totals.append((time.perf_counter_ns() - t0) / 1000)
            starts.append(r["start_us"])
        ping = json.loads(rt.invoke("bench", example("ping.c"), b"%d" % (n * 100))["result"])
        floor_vm = F.bare_kvm(rt.kvm, n)
        rt.invoke("density", hello)
        per_vm_kib = memory_per_vm(rt, hello, args.density)
    floor_fork = F.fork_exec(n)
    pipe = F.pipe_round_trip(n * 100)
    rows = [
        ("user VM start (warm system VM)", med(starts), "us"),
        ("invocation: start+run+teardown (hello)", med(totals), "us"),
        ("floor: bare KVM create+run to first exit", med(floor_vm), "us"),
        ("floor: fork+exec /bin/true", med(floor_fork), "us"),
        ("I/O round trip, mean (ping)", ping["mean_ns"] / 1000, "us"),
        ("I/O round trip, best (ping)", ping["best_ns"] / 1000, "us"),
        ("floor: pipe round trip to a process", med(pipe) / 1000, "us"),
    ]
    density = {"user_vms": args.density, "host_kib_per_user_vm": round(per_vm_kib, 1),
               "user_vms_per_gib": int(1024 * 1024 / per_vm_kib) if per_vm_kib else None}
    ratios = {
        "start_over_bare_kvm": round(med(starts) / med(floor_vm), 2),
        "invocation_over_fork_exec": round(med(totals) / med(floor_fork), 2),
        "io_rtt_over_pipe_rtt": round(ping["mean_ns"] / med(pipe), 2),
    }
    result = {"n": n, "measurements": {name: round(v, 2) for name, v, _ in rows}, "unit": "us",
              "ratios": ratios, "density": density}
    if args.json:
        emit(result, True, None)
    else:
        print("%-44s %12s" % ("measurement (median of %d)" % n, "us"))
        for name, v, _ in rows:
            print("%-44s %12.1f" % (name, v))
        for k, v in ratios.items():
            print("ratio %-38s %12.2f" % (k, v))
        print("host memory per live user VM (%d VMs)          %8.0f KiB" % (args.density, per_vm_kib))
        print(json.dumps(result))
    return 0
