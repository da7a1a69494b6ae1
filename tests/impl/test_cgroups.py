"""Tenant cgroups are not leaked: a host removes its own as it closes, and a host that starts
removes those of hosts that were killed (kill -9), never one a live host uses or has claimed to
use, nor one that still has a task (jail.Owners)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nanvix.impl.sysvm.jail import Cgroup, Owners, sweep_cgroups

HANG_S = 60   # a bound that only catches a hang, never a time assertion

# A host in a process of its own: starts one tenant's system VM, prints its cgroup's directories,
# and closes when its stdin ends.
HOST = """
import json, sys
from nanvix.impl.control.runtime import Runtime
with Runtime(home=sys.argv[1], cores=1) as rt:
    print(json.dumps(rt.system_vm(sys.argv[2]).cgroup.dirs), flush=True)
    sys.stdin.read()
"""

# A process that claims a cgroup and makes it, as a host does before its system VM joins it.
CLAIM = """
import sys
from nanvix.impl.sysvm.jail import Cgroup
Cgroup(sys.argv[1]).create(64 << 20, 0.5, 4)
print("made", flush=True)
sys.stdin.read()
"""


def _cgroup_reason():
    if os.geteuid() != 0:
        return "cgroups are made by root only"
    if not Cgroup("probe").available:
        return "no writable cgroup hierarchy with a nanvix/ group here"
    return None


pytestmark = pytest.mark.skipif(_cgroup_reason() is not None, reason=_cgroup_reason() or "")


def spawn(script, *args):
    p = subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line, "the process ended before it made its cgroup"
    return p, line


def tasks(dirs):
    out = []
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                out += f.read().split()
        except FileNotFoundError:
            pass
    return out


def until(pred, what):
    end = time.monotonic() + HANG_S
    while not pred():
        assert time.monotonic() < end, "timed out: " + what
        time.sleep(0.02)


@pytest.mark.kvm
def test_a_new_host_removes_a_killed_hosts_cgroups_and_no_live_ones(tmp_path):
    dead, dead_line = spawn(HOST, str(tmp_path / "dead-home"), "gone")
    live, live_line = spawn(HOST, str(tmp_path / "live-home"), "kept")
    dead_dirs, live_dirs = json.loads(dead_line), json.loads(live_line)
    # claimed by this (live) process and made, no task in it yet: a group about to be used
    pending = Cgroup("pending-%d" % os.getpid())
    pending.create(64 << 20, 0.5, 4)
    try:
        assert all(os.path.isdir(d) for d in dead_dirs + live_dirs + pending.dirs)
        assert tasks(dead_dirs) and tasks(live_dirs) and not tasks(pending.dirs)
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        # its system VM ends with it (EOF on its control socket); until then rmdir would refuse
        until(lambda: not tasks(dead_dirs), "the killed host's system VM ended")
        assert all(os.path.isdir(d) for d in dead_dirs)   # left behind by the kill

        from nanvix.impl.control.runtime import Runtime
        with Runtime(home=str(tmp_path / "new-home"), cores=1) as rt:
            assert os.path.basename(dead_dirs[0]) in rt.swept_cgroups
        assert not any(os.path.exists(d) for d in dead_dirs)
        assert not os.path.exists(os.path.join(Owners.REGISTRY, os.path.basename(dead_dirs[0])))
        assert all(os.path.isdir(d) for d in live_dirs) and tasks(live_dirs)   # served on
        assert all(os.path.isdir(d) for d in pending.dirs)

        # a normal close removes the host's own
        live.stdin.close()
        assert live.wait(HANG_S) == 0
        assert not any(os.path.exists(d) for d in live_dirs)
    finally:
        for p in (dead, live):
            if p.poll() is None:
                p.kill()
                p.wait()
        pending.remove()
    assert not any(os.path.exists(d) for d in pending.dirs)


def test_a_dead_claimants_cgroup_with_a_task_stays_until_it_is_empty(tmp_path):
    """rmdir is the last guard: a group its claimant left with a task in it is not removed (the
    kernel refuses), and goes at the first sweep after the task has left."""
    name = "orphan-%d" % os.getpid()
    claimant, _ = spawn(CLAIM, name)
    dirs = Cgroup(name).dirs
    task = subprocess.Popen(["sleep", "600"])
    try:
        for d in dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(task.pid))
        claimant.kill()
        claimant.wait()
        assert name not in sweep_cgroups()
        assert all(os.path.isdir(d) for d in dirs) and tasks(dirs)
        task.kill()
        task.wait()
        until(lambda: not tasks(dirs), "the task left its cgroup")
        assert name in sweep_cgroups()
        assert not any(os.path.exists(d) for d in dirs)
    finally:
        for p in (claimant, task):
            if p.poll() is None:
                p.kill()
                p.wait()
        with Owners() as owners:   # (should the test fail half-way: nothing left behind)
            if not owners.live(name):
                owners.remove_dirs(name, dirs)


def test_a_group_two_runtimes_of_one_process_claim_goes_with_the_last():
    """Two runtimes of one process on one home make the same group: the first to stop its
    system VM does not take it from the other."""
    name = "twice-%d" % os.getpid()
    first, second = Cgroup(name), Cgroup(name)
    first.create(64 << 20, 0.5, 4)
    second.create(64 << 20, 0.5, 4)
    try:
        first.remove()
        assert all(os.path.isdir(d) for d in second.dirs)
        assert name not in sweep_cgroups()   # (still claimed by this live process)
        second.remove()
        assert not any(os.path.exists(d) for d in second.dirs)
        assert not os.path.exists(os.path.join(Owners.REGISTRY, name))
    finally:
        first.remove()
        second.remove()
