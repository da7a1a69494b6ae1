"""Per-tenant limits: checked when set, kept by the host across restarts, enforced by the store
before anything changes (EDQUOT, EFBIG, E2BIG), counted again by a restarted system VM, and
reported as usage."""
import os

import pytest

from nanvix.impl.abi import E2BIG, EDQUOT, EFBIG, EINVAL, WRITE_APPEND, WRITE_TRUNC
from nanvix.impl.control.register import Register, uid_range
from nanvix.impl.errors import InvalidArgument, QuotaExceeded, StoreError
from nanvix.impl.limits import Limits
from nanvix.impl.sysvm.store import KV, Files, Log

from conftest import guest

IO = guest("io.c")


def code_of(fn, *args):
    with pytest.raises(StoreError) as ei:
        fn(*args)
    return ei.value.code


def test_limits_are_checked_when_set():
    lim = Limits()
    assert lim.replace(files=5).files == 5 and lim.files == Limits().files
    for bad in (dict(nope=1), dict(files=0), dict(files=-3), dict(files=1.5), dict(files="9"),
                dict(files=True), dict(sysvm_memory=1 << 20), dict(sysvm_pids=1), dict(kv_keys=1 << 70)):
        with pytest.raises(InvalidArgument):
            lim.replace(**bad)
    assert Limits.from_dict(lim.replace(sysvm_cpu=0.5).to_dict()) == lim.replace(sysvm_cpu=0.5)


def test_files_stay_within_bytes_inodes_and_file_size(tmp_path):
    f = Files(str(tmp_path / "files"), Limits(file_bytes=100, files=4, file_size=60))
    assert f.write(b"a", b"x" * 50, 0, WRITE_TRUNC)[0] == 50
    assert code_of(f.write, b"b", b"y" * 51, 0, WRITE_TRUNC) == EDQUOT    # 101 > 100 bytes
    assert not (tmp_path / "files" / "b").exists()                         # refused: nothing made
    assert code_of(f.write, b"a", b"y" * 11, 0, WRITE_APPEND) == EFBIG     # 61 > 60 for one file
    assert f.write(b"a", b"z" * 10, 0, WRITE_APPEND)[0] == 10                 # exactly 60
    assert f.usage() == {"file_bytes": 60, "files": 1}
    assert f.write(b"d/e", b"", 0, 0)[0] == 0                                 # a directory and a file
    assert code_of(f.write, b"d/g/h", b"", 0, 0) == EDQUOT                 # 2 more inodes: only 1 left
    assert f.usage() == {"file_bytes": 60, "files": 4}                     # (d/g was made, not h)
    assert f.write(b"a", b"q", 0, WRITE_TRUNC)[0] == 1                        # truncation frees bytes
    assert f.usage()["file_bytes"] == 1
    f.delete(b"a")
    assert f.usage() == {"file_bytes": 0, "files": 3}
    f.close()
    again = Files(str(tmp_path / "files"), Limits(file_bytes=100, files=4, file_size=60))
    assert again.usage() == {"file_bytes": 0, "files": 3}                  # counted afresh


def test_kv_stays_within_keys_bytes_and_value_size(tmp_path):
    path = str(tmp_path / "kv.sqlite3")
    kv = KV(path, Limits(kv_bytes=40, kv_keys=3, kv_value=16))
    assert code_of(kv.put, b"k", b"v" * 17) == E2BIG
    assert kv.put(b"k1", b"v" * 16) == 16 and kv.put(b"k2", b"v" * 16) == 16     # 36 bytes
    assert code_of(kv.put, b"k3", b"vvv") == EDQUOT                               # 41 > 40
    assert kv.put(b"k2", b"v") == 1                                               # shrinking is fine
    assert kv.add(b"n", 7) == 7                                                   # 3rd key
    assert code_of(kv.add, b"m", 1) == EDQUOT                                     # a 4th key
    assert code_of(kv.get, b"m") == 2                                             # nothing written
    assert kv.usage() == {"kv_keys": 3, "kv_bytes": 18 + 3 + 2}
    kv.delete(b"k1")
    assert kv.usage() == {"kv_keys": 2, "kv_bytes": 3 + 2}
    kv.close()
    assert KV(path, Limits()).usage() == {"kv_keys": 2, "kv_bytes": 5}


def test_the_log_rotates_within_its_bytes(tmp_path):
    log = Log(str(tmp_path / "log"), Limits(log_bytes=16384))
    for i in range(2000):
        assert log.write("uvm-1", b"line %d " % i + b"x" * 40)
    sizes = [os.path.getsize(tmp_path / n) for n in ("log", "log.1")]
    assert max(sizes) <= 8192 and sum(sizes) <= 16384 and log.usage()["log_bytes"] == sum(sizes)
    assert (tmp_path / "log").read_bytes().rstrip().endswith(b"line 1999 " + b"x" * 40)


def test_the_log_keeps_its_smallest_limit_with_its_longest_lines(tmp_path):
    """4,096 characters of four bytes each are more than a half of the smallest log: such a
    line is cut (whole characters, one line), and the log stays within its limit."""
    log = Log(str(tmp_path / "log"), Limits().replace(log_bytes=8192))
    for i in range(10):
        assert log.write("uvm-1", "\U0001f600".encode() * 5000 + b"\n" + b"forged")
    data = [(tmp_path / n).read_bytes() for n in ("log", "log.1")]
    assert sum(map(len, data)) <= 8192 and log.usage()["log_bytes"] == sum(map(len, data))
    for d in data:
        d.decode("utf-8")
        assert d.count(b"\n") == 1 and d.endswith(b"\n") and b"forged" not in d
    with pytest.raises(InvalidArgument):
        Limits().replace(log_bytes=8191)


def test_the_register_keeps_uids_and_limits(tmp_path):
    r = Register(str(tmp_path))
    a, b = r.ensure("a")["uid"], r.ensure("b")["uid"]
    lo, hi = uid_range(str(tmp_path))
    assert a != b and lo <= a < hi and lo <= b < hi and a != 0
    r.set_limits("a", files=7)
    r2 = Register(str(tmp_path))
    assert r2.ensure("a")["uid"] == a and r2.limits("a").files == 7 and r2.limits("b") == Limits()


def test_limits_apply_live_and_survive_a_restart_of_the_host(rt, invoke, tmp_path):
    t = "limited"
    assert invoke(t, IO, "kvput a 1234")["result"] == "4"
    rt.set_limits(t, kv_keys=1, files=1, file_bytes=10)
    assert invoke(t, IO, "kvput b 1;kvput a 99;fwrite f1 0123456789;fwrite f2 x;fappend f1 y")["result"] == \
        "%d;2;10;%d;%d" % (-EDQUOT, -EDQUOT, -EDQUOT)
    u = rt.usage(t)
    assert (u["kv_keys"], u["files"], u["file_bytes"]) == (1, 1, 10)
    assert u["limits"]["kv_keys"] == 1 and u["sysvm_memory"] and u["user_vms"] >= 0
    rt.kill_system_vm(t)                      # a restarted system VM counts again
    u = rt.usage(t)
    assert (u["kv_keys"], u["files"], u["file_bytes"]) == (1, 1, 10)
    assert Register(rt.home).limits(t).kv_keys == 1   # kept by the host


def test_concurrent_invocations_past_the_limit_are_refused(rt):
    t = "busy"
    rt.invoke(t, IO, b"kvput a 1")
    rt.set_limits(t, invocations=1)
    tt = rt.tenant(t)
    with tt.lock:
        tt.invocations += 1   # one is running
    try:
        with pytest.raises(QuotaExceeded, match="limit of 1 invocations"):
            rt.invoke(t, IO, b"kvget a")
    finally:
        with tt.lock:
            tt.invocations -= 1
    assert rt.invoke(t, IO, b"kvget a")["result"] == "1:1"


def test_the_linux_layers_file_operations_are_confined_and_counted(tmp_path):
    """stat, list, mkdir, rename, truncate, exclusive create and rmdir (the Linux-ABI layer's
    requests): within the tree, within the limits, and counted as the tree changes."""
    from nanvix.impl.abi import DELETE_DIR, EACCES, EEXIST, ENOENT, ENOTEMPTY, FT_DIR, FT_FILE, WRITE_EXCL, WRITE_SETSIZE
    root = tmp_path / "files"
    f = Files(str(root), Limits(file_bytes=100, files=4, file_size=60))
    assert f.mkdir(b"d") == 0 and f.usage() == {"file_bytes": 0, "files": 1}
    assert code_of(f.mkdir, b"d") == EEXIST
    assert code_of(f.mkdir, b"no/such") == ENOENT                    # (mkdir(2): no parents made)
    assert f.write(b"d/a", b"", 0, WRITE_EXCL)[0] == 0
    assert code_of(f.write, b"d/a", b"", 0, WRITE_EXCL) == EEXIST
    assert f.write(b"d/a", b"", 40, WRITE_SETSIZE)[0] == 0               # ftruncate up: 40 zero bytes
    assert f.usage() == {"file_bytes": 40, "files": 2}
    assert code_of(f.write, b"d/a", b"", 61, WRITE_SETSIZE) == EFBIG
    size, mtime, kind, _ = f.STAT.unpack(f.stat(b"d/a"))
    assert (size, kind) == (40, FT_FILE) and mtime > 0
    assert f.STAT.unpack(f.stat(b"d"))[2] == FT_DIR and f.STAT.unpack(f.stat(b"."))[2] == FT_DIR
    assert f.write(b"b", b"y" * 30, 0, 0)[0] == 30
    n, packed = f.list(b".", 0, 4096)
    assert n == 2 and packed == bytes((FT_FILE, 1)) + b"b" + bytes((FT_DIR, 1)) + b"d"
    assert f.list(b".", 1, 4096) == (1, bytes((FT_DIR, 1)) + b"d") and f.list(b".", 2, 4096) == (0, b"")
    assert code_of(f.list, b".", 0, 2) == EINVAL                     # no room for one entry
    assert f.rename(b"b", b"d/a") == 0                                # replaces d/a: its 40 bytes go
    assert f.usage() == {"file_bytes": 30, "files": 2}
    assert code_of(f.delete, b"d", DELETE_DIR) == ENOTEMPTY
    f.delete(b"d/a")
    assert f.delete(b"d", DELETE_DIR) == 0 and f.usage() == {"file_bytes": 0, "files": 0}
    # nothing leaves the tree: "..", absolute paths, a symlink out
    os.symlink("/etc", str(root / "out"))
    for op, args in ((f.stat, (b"../x",)), (f.stat, (b"/etc",)), (f.stat, (b"out/passwd",)),
                     (f.list, (b"out", 0, 4096)), (f.list, (b"..", 0, 4096)), (f.mkdir, (b"../x",)),
                     (f.mkdir, (b"out/x",)), (f.rename, (b"out", b"../stolen")), (f.rename, (b"../x", b"y")),
                     (f.delete, (b"out/passwd", 0)), (f.write, (b"out/x", b"", 0, WRITE_EXCL))):
        assert code_of(op, *args) == EACCES, (op.__name__, args)
    assert not (tmp_path / "stolen").exists() and not (tmp_path / "x").exists()
