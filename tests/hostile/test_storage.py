"""Storage, log and inode exhaustion: a tenant fills what its system VM keeps for it (file bytes,
one file, files and directories, keys and key-value bytes, one value, the log) past its limits.
Each request past a limit is refused before anything changes, with EDQUOT (a total), EFBIG (one
file) or E2BIG (one value); the system VM never crashes or restarts; the tenant's usage stays
within its limits and agrees with what is on disk; and it writes again once it deletes."""
import os

import pytest

from nanvix.impl.abi import ABI, E2BIG, EDQUOT, EFBIG, EINVAL, ENOENT, ENOTEMPTY
from nanvix.impl.channel.arena import CTL_LOG

from conftest import IO


def made(out):
    """(made, err) of a `files`/`kvkeys`/`dirs`/`wide` answer."""
    a, b = out.split()
    return int(a.split("=")[1]), int(b.split("=")[1])


def on_disk(att):
    """What the tenant's tree holds, counted by the host: (bytes of regular files, inodes)."""
    root = os.path.join(att.rt.home, "tenants", att.name, "files")
    size = inodes = 0
    for d, dirs, names in os.walk(root):
        inodes += len(dirs) + len(names)
        size += sum(os.lstat(os.path.join(d, n)).st_size for n in names)
    return size, inodes


def steady(att):
    """Its system VM never restarted, and its usage is what is on disk."""
    u = att.usage()
    assert att.sysvm.epoch == 1, "the system VM was restarted"
    assert (u["file_bytes"], u["files"]) == on_disk(att), (u, on_disk(att))
    return u


def test_file_bytes_past_the_limit(suite):
    att = suite.attacker("st-bytes", file_bytes=64 * 1024)
    assert made(att.ok("files 1000 4096 f")) == (16, -EDQUOT)
    assert att.ok("append f-0 4096 10") == "done=0 err=%d" % -EDQUOT          # growing one is refused too
    u = steady(att)
    assert u["file_bytes"] == 64 * 1024
    assert att.ok("fdel f-3;fwrite g x", path=IO) == "0;1"                   # room again after a delete
    steady(att)
    suite.contained(att)


def test_one_file_past_its_size(suite):
    """Past the largest file, at any offset (2^62, and near 2^63 where an off_t would wrap):
    EFBIG, and nothing is created or extended (no sparse file)."""
    att = suite.attacker("st-size", file_size=20_000)
    assert att.ok("write big 0 20001") == "ret=%d" % -EFBIG
    assert att.ok("write big 19999 2") == "ret=%d" % -EFBIG
    assert att.ok("write big %d 1" % (1 << 62)) == "ret=%d" % -EFBIG
    assert att.ok("write big %d 10" % ((1 << 63) - 5)) == "ret=%d" % -EFBIG
    assert att.ok("write big 19999 1") == "ret=1"
    assert att.ok("append big 1 1") == "done=0 err=%d" % -EFBIG
    assert att.ok("fsize big", path=IO) == "20000"
    assert steady(att)["file_bytes"] == 20_000
    suite.contained(att)


def test_sparse_files_count_at_their_size(suite):
    """One byte written at the end of a large offset counts the file's whole size: sparse files
    cannot hide bytes from the limit."""
    att = suite.attacker("st-sparse", file_bytes=100_000, file_size=40_000)
    assert att.ok("write s1 39999 1") == "ret=1"
    assert att.ok("write s2 39999 1") == "ret=1"
    assert att.ok("write s3 39999 1") == "ret=%d" % -EDQUOT
    assert steady(att)["file_bytes"] == 80_000
    suite.contained(att)


def test_files_past_the_inode_limit(suite):
    att = suite.attacker("st-files", files=30)
    assert made(att.ok("files 100 10 f")) == (30, -EDQUOT)
    assert steady(att)["files"] == 30
    assert att.ok("fdel f-0;fwrite again x", path=IO) == "0;1"
    suite.contained(att)


def test_directories_past_the_inode_limit(suite):
    """Nested (a directory per level) and wide (a directory per file): each directory counts;
    refused at the limit with EDQUOT, never past it."""
    att = suite.attacker("st-dirs", files=40)
    deep, err = made(att.ok("dirs 100 deep"))
    assert err == -EDQUOT and 0 < deep < 40
    held = steady(att)["files"]
    wide, err = made(att.ok("wide 100 w"))
    assert (wide, err) == ((40 - held) // 2, -EDQUOT)   # (a directory and its file each)
    assert steady(att)["files"] <= 40
    # and the tenant can give its directories back: a non-empty one is refused, an empty one goes
    assert att.ok("rmdir deep") == "made=0 err=%d" % -ENOTEMPTY
    root = os.path.join(att.rt.home, "tenants", att.name, "files")
    files, dirs = [], []
    for d, ds, names in os.walk(root, topdown=False):   # the deepest first
        files += [os.path.relpath(os.path.join(d, n), root) for n in names]
        dirs += [os.path.relpath(os.path.join(d, n), root) for n in ds]
    assert len(files) + len(dirs) == steady(att)["files"]
    if files:
        assert att.ok(";".join("fdel " + p for p in files), path=IO) == ";".join(["0"] * len(files))
    assert att.ok("rmdir " + " ".join(dirs)) == "made=%d err=0" % len(dirs)
    assert steady(att)["files"] == 0
    assert made(att.ok("dirs 10 again")) == (10, 0)
    assert made(att.ok("wide 100 w")) == (15, -EDQUOT)   # 30 inodes left: 15 directories and their files
    assert steady(att)["files"] == 40
    suite.contained(att)


def test_keys_past_the_limit(suite):
    att = suite.attacker("st-keys", kv_keys=25)
    assert made(att.ok("kvkeys 100 10 k")) == (25, -EDQUOT)
    assert att.ok("kvput k-0 changed;kvput new x", path=IO) == "7;%d" % -EDQUOT   # replacing is fine
    assert att.usage()["kv_keys"] == 25
    suite.contained(att)


def test_key_value_bytes_past_the_limit(suite):
    att = suite.attacker("st-kvbytes", kv_bytes=10_000, kv_value=2000)
    n, err = made(att.ok("kvkeys 100 1000 k"))
    assert err == -EDQUOT and n == 9
    u = att.usage()
    assert u["kv_bytes"] <= 10_000
    assert att.ok("kvbig 1000") == "ret=%d" % -EDQUOT                           # 1,003 more bytes: refused
    assert att.ok("kvdel k-0", path=IO) == "0"
    assert att.ok("kvbig 1000") == "ret=1000"                                   # room after a delete
    suite.contained(att)


def test_a_value_larger_than_the_limit(suite):
    """A value past kv_value is E2BIG (checked by the system VM, not only the SDK); one past
    what a request can carry is E2BIG from the microkernel; neither is stored."""
    att = suite.attacker("st-value", kv_value=1000)
    assert att.ok("kvbig 1001") == "ret=%d" % -E2BIG
    assert att.ok("kvbig 30000") == "ret=%d" % -E2BIG
    assert att.ok("kvbig %d" % (ABI["DATA_SLOT"] - 3)) == "ret=%d" % -E2BIG
    assert att.ok("kvget big", path=IO) == str(-ENOENT)
    assert att.ok("kvbig 1000") == "ret=1000"
    suite.contained(att)


def test_kv_add_past_a_64_bit_integer(suite):
    att = suite.attacker("st-add")
    assert att.ok("kvadd n %d" % ((1 << 63) - 1)) == "ret=%d" % ((1 << 63) - 1)
    assert att.ok("kvadd n 1") == "ret=%d" % -EINVAL
    assert att.ok("kvput word abc;kvadd word 1", path=IO) == "3;%d" % -EINVAL
    assert att.ok("kvget n", path=IO) == "19:%d" % ((1 << 63) - 1)
    suite.contained(att)


def log_files(att):
    root = os.path.join(att.rt.home, "tenants", att.name)
    return [os.path.join(root, n) for n in ("log.1", "log") if os.path.exists(os.path.join(root, n))]


def test_a_log_flood_stays_within_the_log_limit(suite):
    """2,000 lines of 1,000 bytes into a 64 KiB log: every call is answered, the log rotates
    within its bytes, the invocation's report keeps only what fits, and the system VM's memory
    does not grow with the log."""
    att = suite.attacker("st-log", log_bytes=64 * 1024)
    mem = att.usage()["sysvm_memory"]
    rep = att.run("log 2000 1000 text")
    assert rep["status"] == "ok" and rep["result"] == "ok=2000 err=0", rep
    assert sum(len(l) + 1 for l in rep["log"]) <= CTL_LOG and rep["log_dropped"] > 0
    sizes = [os.path.getsize(p) for p in log_files(att)]
    assert sum(sizes) <= 64 * 1024 and max(sizes) <= 32 * 1024, sizes
    u = att.usage()
    assert u["log_bytes"] == sum(sizes) and u["sysvm_memory"] < mem + (16 << 20), (u, mem)
    assert att.sysvm.epoch == 1
    suite.contained(att)


def test_huge_and_binary_log_lines(suite):
    """The issue's finding: ~35 KiB of non-UTF-8 bytes in one log call killed the system VM.
    Each call is one escaped line (at most 4 KiB kept, the rest counted), for any bytes."""
    att = suite.attacker("st-logbin")
    rep = att.run("log 20 30000 bin")
    assert rep["status"] == "ok" and rep["result"] == "ok=20 err=0", rep
    lines = b"".join(open(p, "rb").read() for p in log_files(att)).splitlines()
    assert len(lines) == 20 and all(b"more bytes]" in l and len(l) < 4096 + 200 for l in lines)
    assert all(32 <= c < 127 for l in lines for c in l), "an unescaped byte in the log"
    assert att.sysvm.epoch == 1
    suite.contained(att)


def test_a_log_call_cannot_forge_a_line(suite):
    """A message holding a newline, a fake timestamp and a terminal escape: one line per call,
    the newline and escape as \\x0a and \\x1b, no line starting with the forged timestamp."""
    att = suite.attacker("st-logforge")
    rep = att.run("log 3 0 forge")
    assert rep["status"] == "ok" and len(rep["log"]) == 3, rep
    lines = b"".join(open(p, "rb").read() for p in log_files(att)).splitlines()
    assert len(lines) == 3 and not any(l.startswith(b"2026-01-01") for l in lines)
    assert all(b"innocent\\x0a2026-01-01T00:00:00Z sysvm forged line\\x0d\\x1b[2K" in l for l in lines), lines
    suite.contained(att)


def test_create_and_delete_churn_keeps_the_counts_exact(suite):
    """Create, grow, shrink, delete the same files 300 times: the counts the limits are checked
    against stay equal to what is on disk (a drift would open a way past the limits), also after
    the system VM counts afresh on a restart."""
    att = suite.attacker("st-churn", files=10, file_bytes=50_000)
    for i in range(30):
        out = att.ok("fwrite a/b/c xxxxxxxxxx;fappend a/b/c yy;fwrite a/b/c z;fdel a/b/c;"
                     "fwrite d %s;fwrite d short;fappend e 12345;fdel e;kvput k v;kvdel k" % ("q" * 100),
                     path=IO)
        assert out == "10;2;1;0;100;5;5;0;1;0", out
    u = steady(att)
    assert (u["files"], u["file_bytes"], u["kv_keys"], u["kv_bytes"]) == (3, 5, 0, 0), u   # a/, a/b/, d
    att.rt.kill_system_vm(att.name)
    u = att.usage()
    assert (u["files"], u["file_bytes"]) == (3, 5) == (on_disk(att)[1], on_disk(att)[0])
    suite.contained(att)


def test_at_its_limits_the_bystander_is_fully_served(suite):
    """One tenant sits at every storage limit at once; the bystander (default limits) writes and
    reads as ever."""
    att = suite.attacker("st-all", files=5, file_bytes=5000, kv_keys=5, kv_bytes=5000, log_bytes=8192)
    att.ok("files 10 1000 f"), att.ok("kvkeys 10 10 k"), att.ok("log 100 100 text")
    rep = suite.rt.invoke("bystander", IO, b"kvput tmp 1;fwrite tmp.txt 1;kvdel tmp;fdel tmp.txt")
    assert rep["status"] == "ok" and rep["result"] == "1;1;0;0", rep
    suite.contained(att)


def test_limits_lowered_below_what_it_holds(suite):
    """The operator lowers a tenant's limits below what it already holds (files, bytes, keys,
    key bytes, log): its system VM takes the new limits at once (no restart), nothing it holds is
    lost, every growth is EDQUOT, every shrink works, and once back under, it grows again."""
    att = suite.attacker("st-lower")
    assert made(att.ok("files 20 1000 f")) == (20, 0) and made(att.ok("kvkeys 20 100 k")) == (20, 0)
    att.ok("log 50 200 text")
    u = att.usage()
    att.limit(files=10, file_bytes=5000, kv_keys=10, kv_bytes=1000, log_bytes=8192)
    assert att.usage()["files"] == u["files"] == 20 and att.usage()["kv_keys"] == 20
    out = att.ok("fwrite new x;fappend f-0 y;fwrite f-1 short;fsize f-2;kvput new v;kvput k-0 %s;kvput k-1 v;kvget k-2"
                 % ("v" * 200), path=IO)
    assert out.split(";") == [str(-EDQUOT), str(-EDQUOT), "5", "1000", str(-EDQUOT), str(-EDQUOT), "1",
                              "100:" + "x" * 0 + out.split(";")[7].split(":", 1)[1]], out
    att.ok("log 100 200 text")
    assert sum(os.path.getsize(p) for p in log_files(att)) <= 8192
    assert att.ok(";".join("fdel f-%d" % i for i in range(2, 20)) + ";" +
                  ";".join("kvdel k-%d" % i for i in range(2, 20)), path=IO) == ";".join(["0"] * 36)
    assert att.ok("fwrite new x;kvput new v", path=IO) == "1;1"
    u = steady(att)
    assert (u["files"], u["kv_keys"]) == (3, 3) and u["kv_bytes"] <= 1000, u
    suite.contained(att)
