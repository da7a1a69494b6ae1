"""kill -9 of system VMs and of the host process during writes. A system VM killed while its
tenant writes is restarted; requests it had taken fail with EIO (never applied twice), the rest
are served by its successor; no acknowledged kv put or file append is lost. A host process killed
while it writes leaves no system VM behind, and a new host on the same home finds every write
it acknowledged. A frozen system VM costs its tenant's invocations their deadlines, no more."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import HANG_S, HERE, IO, Bystander, Tenant, contained, run_all, settle


def served(att):
    """Requests answered so far on the tenant's running user VM's channel (the system VM's
    account in the arena, kept across its restarts): how far a writer has got."""
    for u in list(att.rt.uvms.values()):
        if u.tenant == att.name and u.channel is not None and u.channel.active:
            return u.channel.arena.account(u.channel.slot)[0]
    return 0


def kill_during(att, run, kills=4, every=40):
    """Run `run` while killing the tenant's system VM `kills` times, each after another `every`
    requests were served (the warden or the serving process, in turn), each once its successor
    is up. Returns run's result and the kills done."""
    done = threading.Event()
    killed = []

    def up(epoch):
        sv = att.rt.system_vm(att.name)   # (started here should the monitor have let it be)
        return sv.epoch > epoch and sv.alive

    def killer():
        mark = 0
        for k in range(kills):
            while not done.is_set() and served(att) < mark + every:
                time.sleep(0.002)
            if done.is_set():
                return
            mark = served(att)
            sv = att.sysvm
            epoch = sv.epoch
            pid = sv.pid if k % 2 == 0 else sv.server_pid
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            settle(lambda: up(epoch), "the system VM restarted")

    def runner():
        try:
            return run()
        finally:
            done.set()
    out, _ = run_all([runner, killer])
    return out, len(killed)


def lines_of(att, name):
    path = os.path.join(att.rt.home, "tenants", att.name, "files", name)
    with open(path, "rb") as f:
        return f.read().splitlines()


def check_durable(att, tag, digits, read_kv):
    """Every acknowledged put is there with its value; every acknowledged append is there exactly
    once; nothing is there twice; the appends are in order."""
    lines = lines_of(att, tag + ".log") if any(d in "23" for d in digits) else []
    assert len(set(lines)) == len(lines), "an append applied twice"
    assert lines == sorted(lines, key=int), "appends out of order"
    present = {int(x) for x in lines}
    for i, d in enumerate(digits):
        if int(d) & 1:
            assert read_kv("%s-%d" % (tag, i)) == b"%d\n" % i, (tag, i)
        if int(d) & 2:
            assert i in present, "acknowledged append %d of %s lost" % (i, tag)


def kv_reader(rt, tenant):
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(rt.home, "tenants", tenant, "kv.sqlite3"), uri=True)
    items = {bytes(k): bytes(v) for k, v in db.execute("SELECT key, value FROM kv")}
    db.close()
    return lambda key: items.get(key.encode())


@pytest.mark.parametrize("rounds,kills", [(250, 4), pytest.param(1500, 24, marks=pytest.mark.hostile_slow)])
def test_kill_minus_9_of_a_system_vm_during_writes(suite, rounds, kills):
    att = suite.attacker("kill-writes")
    att.ok("ping")
    tag = "dw%d" % rounds
    rep, killed = kill_during(att, lambda: att.run("durable %d %s" % (rounds, tag), timeout_ms=600_000),
                              kills=kills, every=rounds * 2 // (kills + 2))
    assert rep["status"] == "ok" and len(rep["result"]) == rounds, rep
    assert killed >= 2 and att.sysvm.epoch > killed
    digits = rep["result"]
    assert digits.count("3") > rounds * 2 // 5, digits     # most rounds went through whole
    check_durable(att, tag, digits, kv_reader(att.rt, att.name))
    suite.contained(att)


def test_kill_minus_9_during_atomic_adds(suite):
    """kv_add is not idempotent: each one acknowledged is applied exactly once, and each that
    failed with EIO (taken by a system VM that then died) at most once."""
    att = suite.attacker("kill-adds")
    att.ok("kvput ctr 0", path=IO)
    rep, kills = kill_during(att, lambda: att.run("adds 300 ctr", timeout_ms=120_000))
    assert rep["status"] == "ok", rep
    ok, eio, other, last = (int(x.split("=")[1]) for x in rep["result"].split())
    assert kills >= 2 and other == 0 and ok + eio == 300, rep
    final = int(att.ok("kvget ctr", path=IO).split(":")[1])
    assert ok <= final <= ok + eio and final >= last, (rep, final)
    suite.contained(att)


def test_a_system_vm_killed_again_while_it_starts(suite):
    """The system VM is killed during writes, and its successor is killed before it has
    started (before its hello): a third one is started while the invocation waits, which then
    ends normally, its writes durable, well before its deadline would have ended it."""
    att = suite.attacker("kill-restart")
    att.ok("ping")
    t = suite.rt.tenants[att.name]

    def killer():
        settle(lambda: t.invocations == 1, "the writer running")
        time.sleep(0.2)
        epoch = t.sysvm.epoch
        os.kill(t.sysvm.pid, signal.SIGKILL)
        settle(lambda: t.sysvm.epoch > epoch, "the monitor starting the next one", bound=10)
        os.kill(t.sysvm.pid, signal.SIGKILL)           # (before it said hello, most often)
        return epoch
    rep, epoch = run_all([lambda: att.run("durable 300 ks", timeout_ms=60_000), killer])
    assert rep["status"] == "ok" and len(rep["result"]) == 300, rep
    # The third one is started by the monitor while the invocation waits on it; or, when the
    # writer had finished before the kills landed (a fast run), by the tenant's next invocation.
    att.ok("ping")
    assert t.sysvm.alive and t.sysvm.epoch >= epoch + 2, (t.sysvm.epoch, epoch)
    check_durable(att, "ks", rep["result"], kv_reader(att.rt, att.name))
    suite.contained(att)


def test_the_bystanders_system_vm_survives_its_neighbours_deaths(suite):
    """The attacker's system VM dies over and over while the bystander works: the bystander's
    system VM is never restarted and all its invocations are served."""
    att = suite.attacker("kill-writes")
    stop = threading.Event()

    def bystander():
        reps = []
        while not stop.is_set() or len(reps) < 10:
            reps.append(suite.rt.invoke("bystander", IO, b"kvget secret;kvput tmp 1;kvdel tmp"))
        return reps

    def kills():
        try:
            return kill_during(att, lambda: att.run("durable 300 dn", timeout_ms=60_000), kills=6, every=30)
        finally:
            stop.set()
    reps, (rep, n) = run_all([bystander, kills])
    assert n >= 2 and rep["status"] == "ok", (n, rep)
    assert all(r["status"] == "ok" and r["result"].endswith(";1;0") for r in reps), reps
    suite.contained(att)


def test_a_frozen_system_vm_costs_only_deadlines(suite):
    """SIGSTOP on a system VM while its guest waits on I/O: that invocation ends at its deadline
    (the scheduler's timeout, never a hang), the bystander is served meanwhile; after SIGCONT the
    tenant is served again, by the same system VM."""
    att = suite.attacker("kill-frozen")
    att.ok("ping")
    pid, epoch = att.sysvm.server_pid, att.sysvm.epoch
    os.kill(pid, signal.SIGSTOP)
    try:
        reps = run_all([lambda: att.run("ping", timeout_ms=800) for _ in range(3)] +
                       [lambda: suite.rt.invoke("bystander", IO, b"kvget secret")])
    finally:
        os.kill(pid, signal.SIGCONT)
    assert all(r["status"] == "timeout" and "budget" in r["detail"] for r in reps[:3]), reps[:3]
    assert reps[3]["status"] == "ok"
    assert att.sysvm.epoch == epoch and att.sysvm.server_pid == pid
    suite.contained(att)


def processes_of(home):
    """Pids of processes whose command line names this home (its system VMs and wardens)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if home.encode() in f.read():
                        out.append(int(p))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("rounds", [2, pytest.param(12, marks=pytest.mark.hostile_slow)])
def test_kill_minus_9_of_the_host_process_during_writes(tmp_path, rounds):
    """A host in a process of its own writes for tenant "writer" (beside a bystander seeded
    before); it is killed with SIGKILL mid-stream. Its system VMs go too (no orphan keeps the
    tenant's files); a new host on the same home finds every acknowledged put and append, and
    the bystander exactly as it was."""
    from conftest import KVM_SKIP
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    from nanvix.impl.control.runtime import Runtime
    home = str(tmp_path / "home")
    rt = Runtime(home=home, cores=1)
    bystander = Bystander(rt)
    rt.close()
    acks = []
    for round_ in range(rounds):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "host_under_kill.py"), home, "r%d" % round_],
                                stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(HERE)))
        try:
            assert proc.stdout.readline().startswith("READY")
            want = len(acks) + 8
            while len(acks) < want:
                line = proc.stdout.readline()
                assert line, "the host process ended by itself"
                _, tag, digits = line.split()
                acks.append((tag, digits))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(HANG_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        settle(lambda: not processes_of(home), "every system VM of the killed host exited")
    rt = Runtime(home=home, cores=1)
    try:
        writer = rt.tenants.get("writer") or rt.tenant("writer")
        read = kv_reader(rt, "writer")

        class W:
            pass
        w = W()
        w.rt, w.name = rt, "writer"
        for tag, digits in acks:
            assert digits == "33333", (tag, digits)   # (no system VM died under these)
            check_durable(w, tag, digits, read)
        bystander.rt = rt
        bystander.epoch = rt.system_vm("bystander").epoch
        contained(bystander, Tenant(rt, "writer"))
    finally:
        rt.close()
