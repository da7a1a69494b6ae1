"""User VMs held over VMM shard processes: each holds its share, at most two descriptors per user
VM, on its tenant's arena and snapshot; the tenant's system VM serves them all (their wake-ups go
to the right shard); the control plane keeps serving invocations; dropping them frees the slots."""
import pytest

from conftest import ROOT, example
from nanvix.impl.control.runtime import Runtime

pytestmark = pytest.mark.kvm
PARK = ROOT + "/impl/cli/guests/park.c"
IO = ROOT + "/tests/guests/io.c"


def test_user_vms_held_over_shards(nanvix_home):
    with Runtime(home=nanvix_home, cores=1, quota_uvms=96, arena_slots=96, quota_pages=200) as r:
        assert r.invoke("sharded", example("echo.c"), b"x")["status"] == "ok"
        placed = r.hold("sharded", r.load(PARK), 30, per_shard=10)
        assert sum(sum(v.values()) for v in placed.values()) == 30
        assert all(set(v) == {"blocked"} for v in placed.values()), placed  # every one ran and parked
        stats = r.shard_stats()
        assert len(stats) >= 3
        for shard, s in stats.items():
            if shard:  # a shard process: its descriptors are its user VMs' two, plus a few
                assert s["fds"] <= 2 * s["user_vms"] + 24, (shard, s)
        # the system VM serves user VMs in the shards, and their wake-ups reach the right shard:
        # 20 guests over two more shards each add 1 to a key and end
        done = r.hold("sharded", r.load(IO), 20, b"kvadd hits 1", per_shard=10)
        assert sum(sum(v.values()) for s, v in done.items() if s) == 20, done
        new = [s for s in r.shards if str(s.id) in map(str, done)]
        # each ran until it ended or parked waiting for its answer; every one ends (woken in
        # its own shard once the system VM has answered)
        wait_until(lambda: sum(s.call("stats")["states"].get("exited", 0) for s in new) == 20)
        assert r.invoke("sharded", IO, b"kvget hits")["result"] == "2:20"
        given = {s for shard in r.shards for v in shard.slots.values() for s in v}
        r.drop_held()
        t = r.tenants["sharded"]
        assert given <= set(t.free_slots)  # the shards' slots are back, scrubbed by the shards
        wait_until(lambda: not [u for u in r.uvms.values() if u.state != "created"])  # (ready ones stay)
        assert r.invoke("sharded", example("echo.c"), b"after")["result"] == "after"


def wait_until(pred, timeout=10.0):
    import time
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_forgotten_function_leaves_no_snapshot_in_the_shards(nanvix_home):
    """forget() reaches the shards: a shard drops the tenant's snapshot of the function at once
    where the user VMs it held of it have ended, and once the last one is dropped where they
    still run; the shard's status (a read-only request) shows what it still holds."""
    with Runtime(home=nanvix_home, cores=1, quota_uvms=32, arena_slots=32, quota_pages=100,
                 ready_per_function=0) as r:
        io, park = r.load(IO), r.load(PARK)
        # two user VMs here and two in a first shard, each adds 1 to a key and ends
        ended = r.hold("forgets", io, 4, b"kvadd n 1", per_shard=2)
        assert sorted(ended) == [0, 1], ended
        first = r.shards[0]
        wait_until(lambda: first.call("stats")["states"].get("exited", 0) == 2)
        # two more in a second shard, parked for good
        parked = r.hold("forgets", park, 2, per_shard=2)
        assert sorted(parked) == [2] and parked[2] == {"blocked": 2}, parked
        second = r.shards[1]

        def held(shard):
            return [tuple(x) for x in shard.call("stats")["templates"]]
        assert held(first) == [("forgets", io["digest"], "live")]
        assert held(second) == [("forgets", park["digest"], "live")]

        r.forget("forgets", io["digest"])
        wait_until(lambda: held(first) == [])   # (closed by the shard's reaper, after its user VMs)
        assert first.call("stats")["user_vms"] == 0
        assert ("forgets", io["digest"]) not in first.templates

        r.forget("forgets", park["digest"])
        assert held(second) == [("forgets", park["digest"], "retired")]   # its user VMs still park
        assert second.call("stats")["user_vms"] == 2
        second.call("drop")   # the shard lets its held user VMs go
        wait_until(lambda: held(second) == [])
        assert r.invoke("forgets", IO, b"kvget n")["result"] == "1:4"   # (its length, its value: all 4 added; the tenant is served on)
