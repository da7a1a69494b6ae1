"""A full disk: the host's home is a small tmpfs (mounted here, as root), and a tenant whose limits
exceed the disk fills it. It gets ENOSPC (never a crash, never a restart loop of its system VM),
a bystander on the same disk can still read everything it has, a new tenant is refused with a
clear error, and once the filler deletes, everyone writes again."""
import os
import signal
import subprocess

import pytest

from nanvix.impl.abi import ENOSPC
from nanvix.impl.control.register import Register
from nanvix.impl.errors import NanvixError

from conftest import IO, KVM_SKIP, Bystander, Tenant, contained, settle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def mount_tmpfs(path, options):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)


def unmount(path):
    if subprocess.run(["umount", path]).returncode != 0:
        subprocess.run(["umount", "-l", path], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A host whose home is a tmpfs of `size` (and `inodes`), with a bystander seeded on it."""
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    from nanvix.impl.control.runtime import Runtime
    made = []

    def make(options):
        home = str(tmp_path / ("disk%d" % len(made)))
        mount_tmpfs(home, options)
        rt = Runtime(home=home, cores=1)
        made.append((home, rt))
        return rt, Bystander(rt)
    yield make
    for home, rt in made:
        rt.close()
        unmount(home)


def df(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_favail


def test_a_tenant_fills_the_disk(small_disk):
    rt, bystander = small_disk("size=24m,mode=0755")
    filler = Tenant(rt, "filler")                       # file_bytes 256 MiB: more than the disk
    assert filler.ok("kvput before 1", path=IO) == "1"
    out = filler.ok("append big 32000 2000")
    done, err = (int(x.split("=")[1]) for x in out.split())
    assert err == -ENOSPC and 0 < done < 2000, out
    assert df(rt.home)[0] < 64 * 1024, df(rt.home)       # the disk is full indeed

    # the filler: ENOSPC for every write, answers for every read, its system VM up all along
    got = filler.ok("kvput k v;fwrite f x;kvget before;fsize big", path=IO).split(";")
    assert got[0] in ("1", str(-ENOSPC)) and got[1] in ("1", str(-ENOSPC)), got   # (a block may be left)
    assert got[2] == "1:1" and int(got[3]) == done * 32000, got   # every append whole, or not at all
    assert filler.ok("log 200 500 text") == "ok=200 err=0"   # log lines dropped, never an error
    filler.served()
    assert filler.sysvm.epoch == 1 and not [e for e in rt.sysvm_events if e[0] == "filler"], rt.sysvm_events

    # the bystander: everything it has is readable; a write is ENOSPC, never a crash
    bystander.check(readonly=True)
    rep = rt.invoke("bystander", IO, b"kvput more 1;fappend notes/more.txt 1")
    assert rep["status"] == "ok" and all(r in ("1", str(-ENOSPC)) for r in rep["result"].split(";")), rep
    rt.invoke("bystander", IO, b"kvdel more;fdel notes/more.txt")
    assert rt.tenants["bystander"].sysvm.epoch == 1

    # a tenant that would start now: a clear error, and the host's register is intact
    with pytest.raises(NanvixError) as refused:
        rt.invoke("newcomer", IO, b"kvput a 1")
    print("a new tenant on the full disk:", refused.value)
    assert sorted(Register(rt.home).tenants) in (["bystander", "filler"], ["bystander", "filler", "newcomer"])
    assert not os.path.exists(os.path.join(rt.home, "host", "tenants.json.tmp"))

    # a delete gives the space back: everyone writes again
    assert filler.ok("fdel big", path=IO) == "0"
    assert filler.ok("kvput after 1;fwrite f x", path=IO) == "1;1"
    assert filler.usage()["file_bytes"] == 1
    contained(bystander, filler)


def test_a_tenant_takes_every_inode(small_disk):
    """The same with inodes: a tmpfs of 80 inodes, a tenant creates files until ENOSPC."""
    rt, bystander = small_disk("size=64m,nr_inodes=80,mode=0755")
    filler = Tenant(rt, "filler")
    out = filler.ok("files 1000 1 f")
    n, err = (int(x.split("=")[1]) for x in out.split())
    assert err == -ENOSPC and 0 < n < 80, out
    filler.served()
    bystander.check(readonly=True)
    assert filler.ok("fdel f-0;fdel f-1;fwrite g x", path=IO) == "0;0;1"
    assert filler.sysvm.epoch == 1 and rt.tenants["bystander"].sysvm.epoch == 1
    contained(bystander, filler)


def test_a_tenant_fills_the_disk_with_keys(small_disk):
    """The same through the key-value store: SQLite finds the disk full (ENOSPC for the guest,
    never a corrupt store or a dead system VM); every key acknowledged before is still there,
    and after the filler deletes keys, puts work again."""
    rt, bystander = small_disk("size=24m,mode=0755")
    filler = Tenant(rt, "filler")
    out = filler.ok("kvkeys 5000 30000 k")
    n, err = (int(x.split("=")[1]) for x in out.split())
    assert err == -ENOSPC and n > 100, out
    filler.served()
    bystander.check(readonly=True)
    assert filler.ok("kvget k-0;kvget k-%d" % (n - 1), path=IO).startswith("30000:")
    freed = filler.ok(";".join("kvdel k-%d" % i for i in range(0, n, 2)), path=IO)
    assert set(freed.split(";")) == {"0"}, freed
    assert filler.ok("kvput after 1", path=IO) == "1"
    assert filler.sysvm.epoch == 1
    contained(bystander, filler)


@pytest.mark.parametrize("how", ["file", "keys"])
def test_system_vms_killed_on_a_full_disk_come_back(small_disk, how):
    """A system VM must start on a full disk (the issue found one in a crash loop there): the
    filler fills the disk (with a file, or with keys), then its system VM and the bystander's are
    killed -9. Each is restarted once, opens its store (SQLite recovers its WAL), and serves reads;
    once the filler deletes, both write again."""
    rt, bystander = small_disk("size=24m,mode=0755")
    filler = Tenant(rt, "filler")
    out = filler.ok("append big 32000 2000" if how == "file" else "kvkeys 5000 30000 k")
    n, err = (int(x.split("=")[1]) for x in out.split())
    assert err == -ENOSPC and n > 100, out
    for t in ("filler", "bystander"):
        sv = rt.tenants[t].sysvm
        epoch = sv.epoch
        os.kill(sv.server_pid, signal.SIGKILL)
        settle(lambda: not sv.alive or sv.epoch > epoch, "the system VM of %s died" % t)
        settle(lambda: rt.system_vm(t).epoch > epoch and rt.tenants[t].sysvm.alive, "%s's system VM restarted" % t)
    filler.served()
    bystander.check(restarted_ok=True, readonly=True)
    if how == "file":
        assert int(filler.ok("fsize big", path=IO)) == n * 32000
        assert filler.ok("fdel big", path=IO) == "0"
    else:
        assert filler.ok("kvget k-0;kvget k-%d" % (n - 1), path=IO).startswith("30000:")
        freed = filler.ok(";".join("kvdel k-%d" % i for i in range(0, n, 2)), path=IO)
        assert set(freed.split(";")) == {"0"}, freed
    assert filler.ok("kvput after 1;fwrite f x", path=IO) == "1;1"
    assert [e for e in rt.sysvm_events if e[1] != "died" and e[1] != "restarted"] == [], rt.sysvm_events
    assert filler.sysvm.epoch == 2 and rt.tenants["bystander"].sysvm.epoch == 2, rt.sysvm_events
    contained(bystander, filler, restarted_ok=True)
