"""`nanvix run`, `nanvix demo` and `nanvix bench`: functions on the real KVM implementation."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from nanvix.impl.cli import emit

EXAMPLES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


def example(name):
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        raise SystemExit("nanvix: example %s not found (expected in %s)" % (name, EXAMPLES))
    return path


def register(sub):
    p = sub.add_parser("run", help="run one function in a fresh user VM")
    p.add_argument("path", help="a function's C source (built with the SDK, cached) or a built image")
    p.add_argument("--tenant", default="default")
    p.add_argument("--input", default="", help="the function's input (text)")
    p.add_argument("--timeout-ms", type=int, default=10_000)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("build", help="build a function's C source into an image (cached)")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("demo", help="the embedded default job: two tenants, several functions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="start time, invocation and I/O round trip against floors")
    p.add_argument("-n", type=int, default=30, help="repetitions per measurement")
    p.add_argument("--density", type=int, default=200, help="user VMs held at once for the memory figure")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def _runtime(**kw):
    from nanvix.impl.runtime import Runtime
    return Runtime(**kw)


def render_run(r):
    lines = ["status:      %s%s" % (r["status"], " (%s)" % r["detail"] if r.get("detail") else ""),
             "result:      %s" % r["result"]]
    for entry in r["log"]:
        lines.append("log:         %s" % entry)
    lines.append("tenant %s, user VM %s: start %.0f us, run %.0f us, %d I/O requests, %d exits"
                 % (r["tenant"], r["user_vm"], r["start_us"], r["run_us"] or 0, r["io_requests"], r["exits"]))
    return "\n".join(lines)


def cmd_run(args):
    from nanvix.impl.guest.build import BuildError
    try:
        with _runtime() as rt:
            r = rt.invoke(args.tenant, args.path, args.input.encode(), args.timeout_ms)
    except (BuildError, ValueError, OSError) as e:
        print("nanvix run: %s" % e, file=sys.stderr)
        return 2
    emit(r, args.json, render_run)
    return 0 if r["status"] == "ok" else 1


def cmd_build(args):
    from nanvix.impl.guest.build import BuildError, build_image
    try:
        img = build_image(args.path)
    except (BuildError, OSError) as e:
        print("nanvix build: %s" % e, file=sys.stderr)
        return 2
    img["image"] = os.path.dirname(img["path"])
    emit(img, args.json, lambda i: "%s: image %s (%d bytes of guest memory up to _end); run it with "
         "`nanvix run %s`" % (i["name"], i["image"], i["end"] - 0x400000, i["image"]))
    return 0


# ---- demo ----------------------------------------------------------------------------------------

def cmd_demo(args):
    out = []
    say = (lambda *a: None) if args.json else print

    def step(title, r):
        out.append(dict(r, step=title))
        say("  %-44s %-8s %s" % (title, r["status"], r["result"][:60]))
        return r

    with _runtime() as rt:
        say("nanvix demo: two tenants (alice, bob) on real KVM; state in %s" % rt.home)
        say("\n[1] first invocations (each tenant's system VM starts on first use)")
        step("alice hello", rt.invoke("alice", example("hello.c"), b"alice"))
        step("bob hello", rt.invoke("bob", example("hello.c"), b"bob"))
        step("alice echo", rt.invoke("alice", example("echo.c"), b"echo me"))

        say("\n[2] a kv counter that keeps counting: across invocations and a system VM restart")
        counts = [int(step("alice counter", rt.invoke("alice", example("counter.c")))["result"]) for _ in range(3)]
        old = rt.system_vm("alice").pid
        rt.kill_system_vm("alice")
        new = rt.system_vm("alice").pid
        say("  killed alice's system VM with SIGKILL (pid %d); restarted as pid %d" % (old, new))
        counts.append(int(step("alice counter (after restart)", rt.invoke("alice", example("counter.c")))["result"]))
        bob_count = step("bob counter (his own key space)", rt.invoke("bob", example("counter.c")))

        say("\n[3] a file written by one invocation and read by the next; invisible to the other tenant")
        step("alice note (append notes.txt)", rt.invoke("alice", example("note.c"), b"the quick brown fox"))
        wc = step("alice wordcount notes.txt", rt.invoke("alice", example("wordcount.c")))
        wc_bob = step("bob wordcount notes.txt", rt.invoke("bob", example("wordcount.c")))

        say("\n[4] containment: a crashing and a looping guest; the system VMs keep serving")
        crash = step("alice crash (null dereference)", rt.invoke("alice", example("crash.c")))
        loop = step("bob loop (200 ms budget)", rt.invoke("bob", example("loop.c"), timeout_ms=200))
        after = step("alice echo after both", rt.invoke("alice", example("echo.c"), b"still here"))

        say("\n[5] native guest speed and the I/O round trip")
        spin = step("alice spin (10^7 iterations)", rt.invoke("alice", example("spin.c")))
        ping = step("alice ping (1000 no-op requests)", rt.invoke("alice", example("ping.c"), b"1000"))

        say("\n[6] 16 concurrent invocations over %d cores" % rt.sched.ncores)
        par = []
        lock = threading.Lock()

        def one(i):
            r = rt.invoke("alice" if i % 2 else "bob", example("echo.c"), b"req-%d" % i)
            with lock:
                par.append(r)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        ok = sum(r["status"] == "ok" and r["result"].startswith("req-") for r in par)
        say("  %d/16 ok in %.1f ms" % (ok, wall * 1000))

        starts = [r["start_us"] for r in out if r["status"] in ("ok", "error")]
        pj = json.loads(ping["result"]) if ping["status"] == "ok" else {}
        summary = {
            "counter": counts, "counter_continued_across_restart": counts == list(range(counts[0], counts[0] + 4)),
            "bob_counter": bob_count["result"], "alice_wordcount": wc["result"],
            "bob_sees_alice_file": wc_bob["status"] == "ok",
            "crash_status": crash["status"], "loop_status": loop["status"],
            "served_after_faults": after["status"] == "ok",
            "start_us_median": round(statistics.median(starts), 1),
            "start_us_min": round(min(starts), 1),
            "io_round_trip_ns_mean": pj.get("mean_ns"), "io_round_trip_ns_best": pj.get("best_ns"),
            "spin": json.loads(spin["result"]) if spin["status"] == "ok" else None,
            "spin_run_us": spin["run_us"],
            "concurrent_ok": ok, "concurrent_wall_ms": round(wall * 1000, 1),
            "system_vm_restarts": [e for e in rt.sysvm_events],
        }
    ok_all = (summary["counter_continued_across_restart"] and not summary["bob_sees_alice_file"]
              and crash["status"] == "crashed" and loop["status"] == "timeout" and after["status"] == "ok"
              and spin["status"] == "ok" and ping["status"] == "ok" and ok == 16)
    summary["ok"] = ok_all
    if args.json:
        emit({"invocations": out, "summary": summary}, True, None)
    else:
        print("\nsummary")
        print("  counter values: %s (continued across the restart: %s)" % (counts, summary["counter_continued_across_restart"]))
        print("  bob can see alice's notes.txt: %s" % summary["bob_sees_alice_file"])
        print("  user VM start: median %.0f us, best %.0f us (system VM warm, VM from the pool, CoW snapshot)"
              % (summary["start_us_median"], summary["start_us_min"]))
        print("  I/O round trip (guest -> system VM -> guest): mean %s ns, best %s ns"
              % (summary["io_round_trip_ns_mean"], summary["io_round_trip_ns_best"]))
        if summary["spin"]:
            print("  spin: 10^7 iterations in %.1f ms of guest time (invocation run %.1f ms)"
                  % (summary["spin"]["guest_ns"] / 1e6, summary["spin_run_us"] / 1000))
        print("  demo %s" % ("OK" if ok_all else "FAILED"))
    return 0 if ok_all else 1


# ---- bench ---------------------------------------------------------------------------------------

def _floor_kvm(kvm, n):
    """Bare KVM: create a VM, map 2 MiB of copy-on-write memory, one vCPU, set registers, run to
    the first exit (a one-instruction 64-bit CPL3 guest). The floor any VM-per-invocation design
    pays; the nanvix start adds the channel, the system VM attach and the input, and saves the
    VM creation through its pool."""
    from nanvix.impl import uvm as U
    from nanvix.impl.kvm import Memory, memfd
    A = U.A
    times = []
    fd = memfd("floor", A["LOW_SIZE"] + A["PAGE_2M"])
    tpl = Memory(A["LOW_SIZE"] + A["PAGE_2M"], fd, True)
    lim = U.lay_out(tpl, A["PAGE_2M"], 1)
    tpl.write(A["LOW_SIZE"], bytes([0xE5, A["PORT_HYPERCALL"]]))  # in eax, port
    chan_fd = memfd("floor-chan", A["CHANNEL_SIZE"])
    chan = Memory(A["CHANNEL_SIZE"], chan_fd, True)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        vm = kvm.create_vm()
        mem = Memory(tpl.size, fd, False)
        vm.set_memory(0, 0, mem, 0, A["LOW_SIZE"])
        vm.set_memory(1, A["GPA_CHANNEL"], chan)
        vm.set_memory(2, A["GPA_RAM"], mem, A["LOW_SIZE"], A["PAGE_2M"])
        v = vm.create_vcpu(0)
        U.set_cpu_state(v, lim)
        v.set_regs(rip=A["GPA_RAM"], rflags=2)
        v.run_once()
        times.append((time.perf_counter_ns() - t0) / 1000)
        vm.close()  # destroying the VM is off the clock, as it is for an invocation
        mem.close()
    chan.close()
    tpl.close()
    os.close(fd)
    os.close(chan_fd)
    return times


def _floor_fork(n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        subprocess.run(["/bin/true"])
        times.append((time.perf_counter_ns() - t0) / 1000)
    return times


def _floor_pipe(n):
    """Round trip through a pipe pair to a forked process: the host IPC floor."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(a_w)
        os.close(b_r)
        while os.read(a_r, 1):
            os.write(b_w, b"x")
        os._exit(0)
    os.close(a_r)
    os.close(b_w)
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        os.write(a_w, b"x")
        os.read(b_r, 1)
        times.append(time.perf_counter_ns() - t0)
    os.close(a_w)
    os.waitpid(pid, 0)
    os.close(b_r)
    return times


def _mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def _density(rt, image, count):
    """Host memory per live user VM: MemAvailable before and after `count` user VMs exist
    (created, memory mapped, channel attached; not yet run). Kernel and user memory alike."""
    before = _mem_available_kib()
    vms = [rt.create_user_vm("density", image, b"x") for _ in range(count)]
    after = _mem_available_kib()
    for vm in vms:
        rt.destroy(vm)
    return max(0, before - after) / count


def cmd_bench(args):
    n = max(3, args.n)
    med = statistics.median
    with tempfile.TemporaryDirectory(prefix="nanvix-bench-") as home, \
            _runtime(home=home, quota_uvms=10_000, quota_pages=10_000) as rt:
        hello = rt.load(example("hello.c"))
        rt.invoke("bench", hello)  # warm: system VM, template
        starts, totals = [], []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            r = rt.invoke("bench", hello, b"x")
            totals.append((time.perf_counter_ns() - t0) / 1000)
            starts.append(r["start_us"])
        ping = json.loads(rt.invoke("bench", example("ping.c"), b"%d" % (n * 100))["result"])
        floor_vm = _floor_kvm(rt.kvm, n)
        rt.invoke("density", hello)
        per_vm_kib = _density(rt, hello, args.density)
    floor_fork = _floor_fork(n)
    pipe = _floor_pipe(n * 100)
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
