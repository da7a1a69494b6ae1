"""What each design costs a host: the density model's inputs, each with where it comes from, and
the designs built from them (nanvix and four baselines, each with its published figures cited).

An input is measured on this machine (by `nanvix bench`, whose --json carries `density_inputs`,
or by `nanvix density` itself: nanvix.impl.cli.density_inputs), published (cited here), or
assumed (a value nobody measured: the sensitivity table shows what it moves). Inputs.sources says
which, for every value the model used.
"""
import json
import math

MIB = 1024.0   # KiB

# name: (default, where the default comes from, unit). Measured values replace them.
DEFAULTS = {
    "start_us": (600.0, "REFERENCE.md 5: create_user_vm p50 (Dec 2026)", "us"),
    "cpu_us_per_invocation": (1480.0, "assumed: issue 11's echo end-to-end p50, all of it CPU", "us"),
    "template_build_us": (5000.0, "assumed", "us"),
    "template_kib": (10240.0, "REFERENCE.md 5: the 10 MiB snapshot a start maps", "KiB"),
    "kib_per_user_vm": (740.0, "REFERENCE.md 5: host memory per live user VM that has run", "KiB"),
    "kib_per_ready_vm": (124.0, "issue 11: nanvix bench's figure for user VMs that never ran", "KiB"),
    "sysvm_kib": (30720.0, "assumed: one Python process (the previous model's 30 MiB)", "KiB"),
    "sysvm_start_us": (300000.0, "assumed", "us"),
    "ready_per_function": (3, "Runtime(ready_per_function=3), nanvix's default", ""),
    "live_ceiling": (20000, "nanvix bench --live 20000 (commit e30f9c0): user VMs held at once", "user VMs"),
    "spawn_us": (720.0, "REFERENCE.md 5: posix_spawn + wait of a static hello p50", "us"),
    "process_kib": (256.0, "assumed: a small static process's kernel and private memory", "KiB"),
    "gvisor_sandbox_kib": (20480.0, "assumed: not published (REFERENCE.md 2: 'not quantified')", "KiB"),
    "gvisor_start_us": (220000.0, "REFERENCE.md 5: runsc --platform=ptrace do echo p50 (81-280 ms published)", "us"),
}

SETTINGS = {"ready_per_function"}   # read from the implementation, not measured

# Workload and platform assumptions: the same for every design; nothing measures them.
ASSUMED = {
    "dirty_fraction": (0.3, "of an application's memory an invocation writes (the rest stays shared "
                            "with its snapshot, where a design has one)"),
    "cpu_share": (0.1, "of an invocation's execution time spent on a core (the trace has no CPU data)"),
    "app_init_ms": (100.0, "CPU to initialise an application's runtime where no snapshot holds it"),
    "host_gib": (256, "memory of a host"),
    "host_cores": (64, "cores of a host (4 GiB per core)"),
    "keep_alive_s": (600.0, "baselines' keep-alive after an invocation (AWS-like 10 min; Azure 20 min)"),
    "template_keep_s": (math.inf, "nanvix keeps a deployed function's snapshot and ready user VMs "
                                  "for ever (as implemented: nothing evicts them)"),
    "sysvm_keep_s": (math.inf, "nanvix keeps a tenant's system VM for ever once started (as implemented)"),
    "firecracker_shared": (1, "1: a restored microVM maps its snapshot MAP_PRIVATE, so clean pages are "
                              "shared by the page cache (Firecracker's snapshot docs); 0: each holds all"),
    "guest_os_mib": (0.0, "guest kernel memory in a Firecracker microVM beyond the application's "
                          "(not published; 0 favours Firecracker)"),
    "copy_gib_per_s": (4.0, "memcpy bandwidth of a Hyperlight-style restore of written pages"),
}

# Published figures of the baselines (REFERENCE.md sections 1-2).
PUBLISHED = {
    # Agache et al., "Firecracker: Lightweight Virtualization for Serverless Applications", NSDI'20:
    # VMM memory overhead < 5 MiB per microVM; boot to guest init <= 125 ms; 5 microVMs per core
    # per second. Firecracker's snapshot documentation: a snapshot loads in ~4-8 ms (guest memory
    # mapped MAP_PRIVATE from the snapshot file, so clean pages are shared by the page cache).
    "firecracker_vmm_mib": 5.0,
    "firecracker_restore_ms": 6.0,
    # Hyperlight (Microsoft, 2024; github.com/hyperlight-dev/hyperlight): 1-2 ms to create a
    # sandbox, 0.9 ms create + call + teardown, 0.088 ms to restore a small sandbox; a guest of
    # hundreds of KiB. Each sandbox is a KVM VM, so it pays this host's per-VM kernel cost too.
    "hyperlight_create_ms": 1.5,
    "hyperlight_restore_ms": 0.088,
    # Nanvix paper (arXiv 2604.11669): ~7 ms user VM start; its Rust prototype ~10 MB per instance,
    # ~10k instances per host. Quoted for comparison only: the model uses this machine's figures.
    "paper_start_ms": 7.0,
    "paper_instance_mib": 10.0,
    "paper_instances_per_host": 10000,
}


class Inputs:
    """Every input of the model: value and source. Measured values (from bench JSON, a
    density_inputs JSON, or a measurement now) override the documented defaults; options
    override either."""

    def __init__(self):
        self.values = {k: v for k, (v, _, _) in DEFAULTS.items()}
        self.sources = {k: "default: " + s for k, (_, s, _) in DEFAULTS.items()}
        for k, (v, why) in ASSUMED.items():
            self.values[k] = v
            self.sources[k] = "assumed: " + why
        self.notes = []

    def __getitem__(self, k):
        return self.values[k]

    def set(self, k, v, source):
        self.values[k] = v
        self.sources[k] = source

    def measured(self):
        return sorted(k for k, s in self.sources.items() if s.startswith("measured"))

    def take(self, found, origin):
        """Adopt the measured figures in `found` (a density_inputs dict: values, how, notes)."""
        how = found.get("how", {})
        for k, v in found.get("values", {}).items():
            if k in DEFAULTS and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and math.isfinite(v):
                detail = ": " + how[k] if isinstance(how.get(k), str) else ""
                self.set(k, v, ("setting (%s)%s" if k in SETTINGS else "measured (%s)%s") % (origin, detail))
        per_process = found.get("values", {}).get("live_ceiling_per_process")
        if isinstance(per_process, int):
            self.notes.append("%s: live user VMs one process can hold: %d (%s); the model's ceiling per host "
                              "is the live_ceiling input" % (origin, per_process, how.get("live_ceiling_per_process", "")))
        for n in found.get("notes", []):
            self.notes.append("%s: %s" % (origin, n))

    def load(self, path):
        """Read a `nanvix bench --json`, `nanvix bench --live N --json` or density-inputs JSON."""
        try:
            with open(path) as f:
                obj = json.load(f)
        except OSError as e:
            raise ValueError("%s: %s" % (path, e.strerror or e))
        except json.JSONDecodeError as e:
            raise ValueError("%s: not JSON (%s)" % (path, e))
        if not isinstance(obj, dict):
            raise ValueError("%s: not a JSON object" % path)
        used = False
        if isinstance(obj.get("density_inputs"), dict):
            self.take(obj["density_inputs"], path)
            used = True
        elif isinstance(obj.get("values"), dict) and "cpu_us_per_invocation" in obj["values"]:   # measure()'s own
            self.take(obj, path)
            used = True
        if "live" in obj and isinstance(obj.get("values"), dict):   # the scale test
            v = obj["values"]
            held, asked = v.get("live_user_vms"), obj.get("live")
            if isinstance(held, int) and held > 0:
                # fewer held than asked: the ceiling was met; all held: at least that many fit
                if isinstance(asked, int) and held < asked:
                    self.set("live_ceiling", held, "measured (%s: %d of %d user VMs held)" % (path, held, asked))
                elif held > self["live_ceiling"]:
                    self.set("live_ceiling", held, "measured (%s: all %d user VMs held)" % (path, held))
                else:
                    self.notes.append("%s: %d user VMs held, no more than the ceiling used" % (path, held))
                used = True
            # (its per-VM memory is MemAvailable's, which other processes move: second to the cgroup's)
            kib = v.get("kib_per_user_vm")
            if isinstance(kib, (int, float)) and kib > 0 and not self.sources["kib_per_user_vm"].startswith("measured"):
                self.set("kib_per_user_vm", kib, "measured (%s: MemAvailable, %d held)" % (path, held or 0))
        if not used:
            raise ValueError("%s: no density inputs in it (expected `nanvix bench --json` output)" % path)

    def rows(self):
        """(name, value, unit, source) of every input, measured first."""
        units = {k: u for k, (_, _, u) in DEFAULTS.items()}
        keys = sorted(self.values, key=lambda k: (not self.sources[k].startswith("measured"), k))
        return [(k, self.values[k], units.get(k, ""), self.sources[k]) for k in keys]


class Design:
    """How a design holds an application (all memory in MiB, CPU in ms):
    per_invocation: an instance lives only while its invocation runs (else it stays keep_s after);
    shared: the application's clean pages live once per function in a snapshot its instances map
        copy-on-write (each instance then holds only the written share, `dirty_fraction`);
    instance_mib: what a live instance costs beyond the application's memory;
    template_mib: what a resident snapshot costs beyond the application's shared pages;
    template_keep_s: how long a snapshot (and `pool` ready instances of ready_mib each) stays
        after its function's last invocation (None: as long as an instance lives);
    tenant_mib, tenant_keep_s: a per-tenant process (nanvix's system VM);
    invoke_cpu_ms: per invocation; cold_cpu_ms: per new instance; template_cpu_ms: per snapshot
        rebuilt; tenant_cpu_ms: per tenant process started;
    live_ceiling: live instances one host can hold (None: none known)."""

    def __init__(self, name, label, **kw):
        self.name, self.label = name, label
        self.per_invocation = kw.pop("per_invocation", False)
        self.keep_s = kw.pop("keep_s", 0.0)
        self.shared = kw.pop("shared", False)
        self.instance_mib = kw.pop("instance_mib")
        self.template_mib = kw.pop("template_mib", 0.0)
        self.template_keep_s = kw.pop("template_keep_s", None)
        self.pool = kw.pop("pool", 0)
        self.ready_mib = kw.pop("ready_mib", 0.0)
        self.tenant_mib = kw.pop("tenant_mib", 0.0)
        self.tenant_keep_s = kw.pop("tenant_keep_s", math.inf)
        self.invoke_cpu_ms = kw.pop("invoke_cpu_ms", 0.0)
        self.invoke_cpu_per_dirty_mb = kw.pop("invoke_cpu_per_dirty_mb", 0.0)
        self.cold_cpu_ms = kw.pop("cold_cpu_ms", 0.0)
        self.template_cpu_ms = kw.pop("template_cpu_ms", 0.0)
        self.tenant_cpu_ms = kw.pop("tenant_cpu_ms", 0.0)
        self.live_ceiling = kw.pop("live_ceiling", None)
        self.basis = kw.pop("basis", "")
        if kw:
            raise TypeError("unknown design parameter(s): %s" % ", ".join(kw))

    def describe(self):
        return {k: v for k, v in vars(self).items() if k not in ("name",)}


def designs(inp):
    """nanvix and the baselines, from the inputs."""
    init = inp["app_init_ms"]
    keep = inp["keep_alive_s"]
    uvm_mib = inp["kib_per_user_vm"] / MIB
    nanvix = Design(
        "nanvix", "nanvix (user VM per invocation, system VM per tenant)", per_invocation=True, shared=True,
        instance_mib=uvm_mib, template_mib=inp["template_kib"] / MIB, template_keep_s=inp["template_keep_s"],
        pool=int(inp["ready_per_function"]), ready_mib=inp["kib_per_ready_vm"] / MIB,
        tenant_mib=inp["sysvm_kib"] / MIB, tenant_keep_s=inp["sysvm_keep_s"],
        invoke_cpu_ms=inp["cpu_us_per_invocation"] / 1000.0,
        template_cpu_ms=inp["template_build_us"] / 1000.0 + init, tenant_cpu_ms=inp["sysvm_start_us"] / 1000.0,
        live_ceiling=inp["live_ceiling"],
        basis="measured on this machine where the inputs say so; a snapshot per function CoW-shared "
              "by its user VMs; a start's latency (start_us) is reported, its CPU counted in "
              "cpu_us_per_invocation")
    firecracker = Design(
        "firecracker", "Firecracker: microVM per instance, snapshot restore, keep-alive", keep_s=keep,
        shared=bool(inp["firecracker_shared"]),
        instance_mib=PUBLISHED["firecracker_vmm_mib"] + inp["guest_os_mib"],
        cold_cpu_ms=PUBLISHED["firecracker_restore_ms"],
        basis="NSDI'20: < 5 MiB VMM overhead; snapshot load ~4-8 ms; restored guest memory "
              "MAP_PRIVATE from the snapshot file (clean pages shared, as nanvix's)")
    gvisor = Design(
        "gvisor", "gVisor: sandbox per instance, keep-alive", keep_s=keep,
        instance_mib=inp["gvisor_sandbox_kib"] / MIB, cold_cpu_ms=inp["gvisor_start_us"] / 1000.0 + init,
        basis="runsc create+start 81-280 ms (published), ~220 ms here; no snapshot: each sandbox "
              "initialises and holds its application")
    process = Design(
        "process", "process per invocation (fork+exec, initialised each time)", per_invocation=True,
        instance_mib=inp["process_kib"] / MIB, invoke_cpu_ms=inp["spawn_us"] / 1000.0 + init,
        basis="the paper's weakest-isolation baseline: nothing kept between invocations")
    hyperlight = Design(
        "hyperlight", "Hyperlight-like pool: KVM sandboxes per function, restored after each call",
        keep_s=keep, instance_mib=uvm_mib, cold_cpu_ms=PUBLISHED["hyperlight_create_ms"] + init,
        invoke_cpu_ms=PUBLISHED["hyperlight_restore_ms"],
        invoke_cpu_per_dirty_mb=1000.0 / (inp["copy_gib_per_s"] * 1024.0),
        live_ceiling=inp["live_ceiling"],
        basis="Hyperlight (2024): create 1-2 ms, restore 0.088 ms (small heap; here plus a copy of "
              "the written pages); a pool kept as long as a keep-alive; each sandbox a KVM VM "
              "(this host's per-VM cost and ceiling)")
    return {d.name: d for d in (nanvix, firecracker, gvisor, process, hyperlight)}
