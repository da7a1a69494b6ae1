"""A compromised system VM cannot reach past its tenant (issue 9, the jail probe).

Tenant `probe`'s system VM runs tests/hostile/jail_probe.py: the real system VM program, jailed by
the same code path as every tenant's, that also obeys an `attack` message. Each attack is one way
out: another tenant's files and key-value store, host secrets, /dev/kvm, other processes, the
network, new privileges, exec, new namespaces. Each must be refused, with an errno or by seccomp
killing the process, while tenant `victim`, set up beside it, is still served with its data intact.
"""
import os
import signal
import sys
import threading
import time

import pytest

from nanvix.impl.control.runtime import Runtime
from nanvix.impl.errors import SystemVMDown
from nanvix.impl.sysvm.client import SystemVM
from nanvix.impl.sysvm.jail import Cgroup

from conftest import KVM_SKIP, guest

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail_probe.py")
KILLED = 128 + signal.SIGSYS   # the warden's status when seccomp killed the system VM
IO = guest("io.c")
SECRET = b"victim's secret"


class ProbeSystemVM(SystemVM):
    def argv(self, cgroup_procs):
        return [sys.executable, PROBE] + super().argv(cgroup_procs)[3:]


def system_vm_for(name, *args):
    return (ProbeSystemVM if name == "probe" else SystemVM)(name, *args)


class ProbeRuntime(Runtime):
    sysvm_class = staticmethod(system_vm_for)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    rt = ProbeRuntime(home=str(tmp_path_factory.mktemp("jail-home")), cores=1, restart_system_vms=False,
                      fair_cores=True)   # (as the `nanvix` commands run a host: see the spin test)
    rep = rt.invoke("victim", IO, b"kvput secret " + SECRET + b";fwrite secret.txt " + SECRET)
    assert rep["status"] == "ok" and rep["result"] == "%d;%d" % (len(SECRET), len(SECRET)), rep
    rt.system_vm("probe")
    yield rt
    rt.close()


def attack(rt, name, **args):
    """Run one attack in the probe's system VM: its answer, or {"killed": True} when seccomp
    killed the process (then a fresh probe is started for the next attack)."""
    sv = rt.system_vm("probe")
    try:
        return sv.call("attack", name=name, args=args)
    except SystemVMDown:
        code = sv.proc.wait(10)
        rt.restart_system_vm("probe")
        return {"killed": True, "status": code}


def victim_intact(rt):
    t = rt.tenants["victim"]
    rep = rt.invoke("victim", IO, b"kvget secret;fread secret.txt")
    assert rep["status"] == "ok" and rep["result"] == "%d:%s;%d:%s" % (
        len(SECRET), SECRET.decode(), len(SECRET), SECRET.decode()), rep
    assert sorted(os.listdir(os.path.join(t.root, "files"))) == ["secret.txt"]
    return True


def test_the_probe_is_jailed_as_a_system_vm_is(host):
    sv = host.system_vm("probe")
    facts = sv.jail
    assert facts["uid"] != 0 and facts["pid_ns_pid"] == 1 and facts["seccomp"] and facts["landlock_abi"] >= 1
    ids = attack(host, "ids")
    assert ids["uid"] == ids["gid"] == host.register.ensure("probe")["uid"] != host.register.ensure("victim")["uid"]
    assert ids["pid"] == 1 and ids["groups"] == []
    with open("/proc/%d/status" % sv.server_pid) as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines())
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[cap].strip(), 16) == 0, cap
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
    # its warden (the parent outside its pid namespace, which only waits for it) holds nothing either
    with open("/proc/%d/status" % sv.pid) as f:
        warden = dict(line.split(":", 1) for line in f.read().splitlines())
    assert warden["Uid"].split() == [str(ids["uid"])] * 4 and warden["NoNewPrivs"].strip() == "1"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(warden[cap].strip(), 16) == 0, ("warden", cap)
    for ns in ("mnt", "pid", "ipc", "uts", "net", "cgroup"):
        assert os.readlink("/proc/%d/ns/%s" % (sv.server_pid, ns)) != os.readlink("/proc/self/ns/" + ns), ns
    assert attack(host, "hostname")["hostname"] == "nanvix-sysvm"
    # the control: its own tree is there and writable, and it sees nothing else
    assert attack(host, "write_own")["written"] == 4
    assert set(attack(host, "listdir", path="/")["entries"]) <= {"files", "kv.sqlite3.reserve", "kv.sqlite3",
                                                                "kv.sqlite3-wal", "kv.sqlite3-shm", "log", "log.1"}


def test_another_tenants_files_and_keys_cannot_be_read_or_written(host):
    victim = host.tenants["victim"].root
    for path in (os.path.join(victim, "kv.sqlite3"), os.path.join(victim, "files", "secret.txt")):
        assert attack(host, "open", path=path) == {"ok": True, "errno": 2}
        assert attack(host, "open", path=path, flags=os.O_WRONLY | os.O_CREAT)["errno"] in (2, 13)
    rest = os.path.relpath(os.path.join(victim, "files", "secret.txt"), "/")
    assert attack(host, "climb", rest=rest)["errno"] == 2
    assert attack(host, "symlink_out", target=os.path.join(victim, "files"))["errno"] in (1, 13)
    assert victim_intact(host)


def test_host_secrets_devices_and_processes_are_out_of_sight(host):
    for path in ("/etc/shadow", "/etc/passwd", "/dev/kvm", "/proc/1/environ", "/root",
                 os.path.join(host.home, "host", "tenants.json"), "/sys/fs/cgroup"):
        assert attack(host, "open", path=path)["errno"] == 2, path
    assert attack(host, "listdir", path="/proc")["errno"] == 2
    assert victim_intact(host)


def test_limits_cannot_be_raised_nor_files_grown_past_them(host):
    assert attack(host, "raise_nofile")["errno"] == 1
    assert attack(host, "big_file", offset=host.limits("probe").file_size + 1)["errno"] == 27  # EFBIG
    assert attack(host, "mmap_exec") == {"killed": True, "status": KILLED}


@pytest.mark.parametrize("name", ["signal", "ptrace", "process_vm_readv"])
def test_other_processes_cannot_be_signalled_traced_or_read(host, name):
    victim = host.tenants["victim"].sysvm
    pid = victim.server_pid
    got = attack(host, name, pid=pid)
    assert got == {"killed": True, "status": KILLED}, got
    assert victim.alive and victim.server_pid == pid
    assert victim_intact(host)


@pytest.mark.parametrize("name", ["socket_inet", "exec", "fork", "mount_proc", "chroot", "setuid0",
                                  "unshare_user", "mknod_kvm", "memfd", "bpf", "io_uring", "setns"])
def test_no_network_exec_privilege_or_namespace(host, name):
    assert attack(host, name) == {"killed": True, "status": KILLED}
    assert victim_intact(host)


def test_an_ioctl_on_what_it_holds_is_refused(host):
    t = host.tenants["probe"]
    assert attack(host, "ioctl_arena", fd=t.arena.fd) == {"killed": True, "status": KILLED}
    assert victim_intact(host)


def test_a_spinning_system_vm_takes_no_more_than_its_cpu_limit(host):
    """Every system VM runs before guest code (the guests' vCPUs run at SCHED_IDLE, the host beside
    the system VMs' cgroup: jail.place_host). A compromised one that spins still gets no more than
    its cgroup's CPU limit, and another tenant's guests and system VM are served meanwhile. (A CPU
    bound the kernel enforces, checked against the CPU accounted: no wall-clock time asserted.)"""
    usage = host.usage("probe")
    if usage.get("sysvm_cpu_ns") is None:
        pytest.skip("the host accounts no CPU per cgroup here")
    limit = 0.25
    host.set_limits("probe", sysvm_cpu=limit)
    try:
        before, out, served = host.usage("probe")["sysvm_cpu_ns"], {}, []
        spin = threading.Thread(target=lambda: out.update(attack(host, "spin", seconds=1.5)))
        t0 = time.monotonic_ns()
        spin.start()
        while spin.is_alive() or not served:
            served.append(host.invoke("victim", IO, b"kvget secret"))
        spin.join()
        wall_ns = time.monotonic_ns() - t0
        used_ns = host.usage("probe")["sysvm_cpu_ns"] - before
    finally:
        host.set_limits("probe", sysvm_cpu=1.0)
    assert out.get("loops", 0) > 0, out
    # the CFS quota: `limit` of each 100 ms period, the period under way included
    assert used_ns <= limit * 100e6 * (wall_ns / 100e6 + 2), (used_ns, wall_ns)
    assert all(r["status"] == "ok" and r["result"] == "%d:%s" % (len(SECRET), SECRET.decode()) for r in served), served
    assert victim_intact(host)


@pytest.mark.skipif(not Cgroup.is_v1(), reason="the host's placement is made in cgroup v1's cpu hierarchy only")
def test_the_host_sits_beside_the_system_vms_whose_cores_are_capped(host):
    """The host's threads share the system VMs' parent cpu group (there a waking system VM or host
    thread takes a core from a computing guest at once); the system VMs together may use at most
    3/4 of the cores, so however many spin, guest code keeps the rest."""
    with open("/proc/self/cgroup") as f:
        cpu = [line.rstrip("\n").split(":", 2)[2] for line in f if "cpu" in line.split(":")[1].split(",")]
    assert cpu == ["/nanvix"], cpu
    probe = host.tenants["probe"].sysvm
    assert "/cpu/nanvix/sysvm/" in probe.cgroup.dirs[1]
    with open("/proc/%d/cgroup" % probe.server_pid) as f:
        theirs = [line.rstrip("\n").split(":", 2)[2] for line in f if "cpu" in line.split(":")[1].split(",")]
    assert theirs == ["/nanvix/sysvm/" + probe.cgroup.name], theirs
    with open(os.path.join(os.path.dirname(probe.cgroup.dirs[1]), "cpu.cfs_quota_us")) as f:
        assert int(f.read()) == int(Cgroup.SYSVMS_CORES * os.cpu_count() * 100_000)
