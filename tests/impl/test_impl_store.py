"""The system VM's store, directly: files confined beneath the tenant's root by openat2
RESOLVE_BENEATH (even when the string pre-check is bypassed), and the SQLite key-value store."""
import errno
import os

import pytest

from nanvix.impl.abi import EACCES, EINVAL, ENOENT, WRITE_APPEND, WRITE_TRUNC
from nanvix.impl.errors import StoreError
from nanvix.impl.sysvm.store import KV, Files, openat2


@pytest.fixture
def tree(tmp_path):
    """(files, root, outside): a tenant root and a directory outside it with a secret."""
    root = tmp_path / "tenant" / "files"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    f = Files(str(root))
    os.symlink(str(outside), root / "linkdir")                 # absolute, to a directory outside
    os.symlink(str(outside / "secret"), root / "abslink")      # absolute, to a file outside
    os.symlink("../../outside/secret", root / "rellink")       # relative, climbing out
    (root / "sub").mkdir()
    os.symlink("../inside.txt", root / "sub" / "uplink")       # relative, staying inside
    yield f, root, outside
    f.close()


def code_of(fn, *args):
    with pytest.raises(StoreError) as ei:
        fn(*args)
    return ei.value.code


def test_write_read_size_delete_inside(tree):
    f, root, _ = tree
    assert f.write(b"a/b/c.txt", b"hello", 0, WRITE_TRUNC)[0] == 5
    assert (root / "a" / "b" / "c.txt").read_bytes() == b"hello"
    assert f.read(b"a/b/c.txt", 0, 100) == b"hello"
    assert f.read(b"a/b/c.txt", 2, 2) == b"ll"
    assert f.write(b"a/b/c.txt", b"!!", 0, WRITE_APPEND) == (2, 7)   # (7: the file's new size)
    assert f.size(b"a/b/c.txt") == 7
    assert f.delete(b"a/b/c.txt") == 0
    assert code_of(f.read, b"a/b/c.txt", 0, 1) == ENOENT
    assert code_of(f.delete, b"a/b/c.txt") == ENOENT


def test_offsets_beyond_off_t_refused(tree):
    """A guest's 64-bit offset past 2**63 - 1 is EINVAL (read) or EFBIG (write), never an
    internal error."""
    f, _, _ = tree
    f.write(b"x", b"data", 0, WRITE_TRUNC)
    assert code_of(f.read, b"x", 1 << 63, 4) == EINVAL
    assert code_of(f.read, b"x", 2 ** 64 - 1, 4) == EINVAL
    assert code_of(f.read, b"x", (1 << 63) - 1, 4) == EINVAL   # offset + count overflows off_t
    assert f.read(b"x", (1 << 63) - 5, 4) == b""
    assert code_of(f.write, b"x", b"y", 1 << 63, 0) == errno.EFBIG


@pytest.mark.parametrize("path", [b"..", b"../outside/secret", b"a/../../outside/secret", b"../../x",
                                  b"/etc/passwd", b"/", b"sub/../../outside/secret"])
def test_dotdot_and_absolute_paths_refused(tree, path):
    f, _, outside = tree
    assert code_of(f.read, path, 0, 100) == EACCES
    assert code_of(f.size, path) == EACCES
    assert code_of(f.write, path, b"pwned", 0, WRITE_TRUNC) == EACCES
    assert code_of(f.delete, path) == EACCES
    assert (outside / "secret").read_bytes() == b"not yours"


def test_empty_path_and_nul_refused(tree):
    f, _, _ = tree
    assert code_of(f.read, b"", 0, 1) == EINVAL
    assert code_of(f.read, b"a\0b", 0, 1) == EINVAL


@pytest.mark.parametrize("path", [b"abslink", b"rellink", b"linkdir/secret", b"linkdir/../outside/secret"])
def test_symlinks_out_of_the_tree_refused(tree, path):
    f, _, outside = tree
    assert code_of(f.read, path, 0, 100) == EACCES
    assert code_of(f.size, path) == EACCES
    assert code_of(f.write, path, b"pwned", 0, WRITE_TRUNC) == EACCES
    assert (outside / "secret").read_bytes() == b"not yours"


def test_no_file_created_or_deleted_through_a_symlinked_directory(tree):
    f, _, outside = tree
    assert code_of(f.write, b"linkdir/new.txt", b"x", 0, WRITE_TRUNC) == EACCES
    assert code_of(f.write, b"linkdir/deep/new.txt", b"x", 0, WRITE_TRUNC) == EACCES
    assert code_of(f.delete, b"linkdir/secret") == EACCES
    assert sorted(os.listdir(outside)) == ["secret"]


def test_symlink_that_stays_inside_is_followed(tree):
    f, root, _ = tree
    f.write(b"inside.txt", b"in", 0, WRITE_TRUNC)
    assert f.read(b"sub/uplink", 0, 10) == b"in"


@pytest.mark.parametrize("path", [b"../outside/secret", b"/etc/passwd", b"abslink", b"rellink",
                                  b"linkdir/secret", b"sub/../../outside/secret"])
def test_kernel_confines_even_without_the_precheck(tree, monkeypatch, path):
    """With Files.check disabled, openat2 RESOLVE_BENEATH alone still refuses every escape."""
    f, _, outside = tree
    monkeypatch.setattr(Files, "check", staticmethod(lambda p: p))
    for flags in (os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
        with pytest.raises(StoreError) as ei:
            fd = f._open(path, flags)
            os.close(fd)  # pragma: no cover - reached only if confinement failed
        assert ei.value.code == EACCES
    assert (outside / "secret").read_bytes() == b"not yours"
    assert sorted(os.listdir(outside)) == ["secret"]


def test_openat2_itself_refuses(tree):
    f, _, _ = tree
    for path, errs in ((b"../outside/secret", (errno.EXDEV,)), (b"/etc/passwd", (errno.EXDEV,)),
                       (b"abslink", (errno.EXDEV, errno.ELOOP)), (b"linkdir/secret", (errno.EXDEV, errno.ELOOP))):
        with pytest.raises(OSError) as ei:
            os.close(openat2(f.root_fd, path, os.O_RDONLY))
        assert ei.value.errno in errs, (path, ei.value)


def test_kv_put_get_delete_add_and_reopen(tmp_path):
    p = str(tmp_path / "kv.sqlite3")
    kv = KV(p)
    assert kv.put(b"k", b"v1") == 2
    assert kv.put(b"k", b"value2") == 6
    assert kv.get(b"k") == b"value2"
    assert kv.add(b"n", 5) == 5 and kv.add(b"n", -7) == -2
    with pytest.raises(StoreError) as ei:
        kv.add(b"k", 1)  # not an integer
    assert ei.value.code == EINVAL
    kv.put(b"big", str((1 << 63) - 1).encode())
    with pytest.raises(StoreError) as ei:
        kv.add(b"big", 1)  # would overflow a signed 64-bit value
    assert ei.value.code == EINVAL
    assert kv.get(b"big") == str((1 << 63) - 1).encode()
    assert kv.get(b"n") == b"-2"  # the failed adds changed nothing
    kv.delete(b"big")
    assert kv.delete(b"k") == 0
    with pytest.raises(StoreError) as ei:
        kv.get(b"k")
    assert ei.value.code == ENOENT
    with pytest.raises(StoreError) as ei:
        kv.delete(b"k")
    assert ei.value.code == ENOENT
    kv.put(b"stay", b"here")
    kv.close()  # reopened by a new process after a crash: everything acknowledged is there
    kv2 = KV(p)
    assert kv2.items() == {b"n": b"-2", b"stay": b"here"}
    kv2.close()


def test_a_file_renamed_onto_itself_stays_counted(tree):
    # rename(2) onto the same file changes nothing: it must not be counted as a file replaced
    # (a guest repeating it drove the tenant's counts negative, past its file and byte limits)
    f, _, _ = tree
    f.write(b"same.txt", b"12345", 0, WRITE_TRUNC)
    before = f.usage()
    for _ in range(3):
        assert f.rename(b"same.txt", b"same.txt") == 0
    assert f.usage() == before
    f.write(b"other.txt", b"xy", 0, WRITE_TRUNC)
    assert f.rename(b"other.txt", b"same.txt") == 0   # a real replacement: the old one is uncounted
    assert f.usage() == {"file_bytes": 2, "files": before["files"]}
