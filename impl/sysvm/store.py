"""A tenant's persistent state, as its system VM serves it: a file tree, a key-value store, a log.

Files are confined by the kernel: every path is opened with openat2(2) RESOLVE_BENEATH beneath the
tenant's root, so `..`, absolute paths and symlinks cannot leave it, whatever the string looks like.
The key-value store is SQLite in WAL mode with synchronous=FULL: a put is acknowledged only after
it is durable, so it survives a kill -9 of the system VM.
"""
import ctypes
import errno
import os
import sqlite3
import stat
import time

from nanvix.impl.abi import EACCES, EINVAL, EIO, ENOENT, E2BIG, ENOSPC, WRITE_APPEND, WRITE_TRUNC
from nanvix.impl.errors import StoreError

_libc = ctypes.CDLL(None, use_errno=True)
SYS_openat2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
MAX_FILE = 64 << 20  # a file may not grow past 64 MiB through the channel


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode=0o600):
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0,
                   RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(ctypes.c_long(SYS_openat2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return fd


def _code(e):
    """Map a host errno to the guest's error code; escapes become EACCES."""
    return {errno.ENOENT: ENOENT, errno.EXDEV: EACCES, errno.ELOOP: EACCES, errno.EACCES: EACCES,
            errno.EPERM: EACCES, errno.EISDIR: EINVAL, errno.ENOTDIR: ENOENT,
            errno.ENAMETOOLONG: E2BIG, errno.ENOSPC: ENOSPC, errno.EDQUOT: ENOSPC}.get(e.errno, EIO)


class Files:
    """The tenant's file tree. Paths are bytes from the guest: checked here for a clear error,
    and confined by openat2 whatever this check misses."""

    def __init__(self, root):
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.root_fd = os.open(root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)

    @staticmethod
    def check(path):
        if not path or b"\0" in path:
            raise StoreError(EINVAL, "empty path or NUL byte")
        if path.startswith(b"/"):
            raise StoreError(EACCES, "absolute path %r" % path)
        if b".." in path.split(b"/"):
            raise StoreError(EACCES, "path %r leaves the tenant's tree" % path)
        return path

    def _open(self, path, flags, create_parents=False):
        path = self.check(path)
        try:
            return openat2(self.root_fd, path, flags)
        except OSError as e:
            if e.errno == errno.ENOENT and create_parents and b"/" in path.rstrip(b"/"):
                self._mkdirs(path.rsplit(b"/", 1)[0])
                return self._open(path, flags)
            raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))

    def _mkdirs(self, d):
        """mkdir -p, one component at a time, each parent opened beneath the root."""
        parts = [p for p in d.split(b"/") if p and p != b"."]
        parent = os.dup(self.root_fd)
        try:
            for p in parts:
                try:
                    os.mkdir(p, 0o700, dir_fd=parent)
                except FileExistsError:
                    pass
                try:
                    fd = openat2(parent, p, os.O_DIRECTORY | os.O_RDONLY)
                except OSError as e:
                    raise StoreError(_code(e), "%s: %s" % (p.decode(errors="replace"), e.strerror))
                os.close(parent)
                parent = fd
        finally:
            os.close(parent)

    def read(self, path, offset, cap):
        if offset + cap >= 1 << 63:  # the guest's u64 becomes an off_t: it must not overflow
            raise StoreError(EINVAL, "offset %d out of range" % offset)
        fd = self._open(path, os.O_RDONLY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(EINVAL, "not a regular file")
            return os.pread(fd, cap, offset)
        finally:
            os.close(fd)

    def write(self, path, data, offset, flags):
        mode = os.O_WRONLY | os.O_CREAT
        if flags & WRITE_APPEND:
            mode |= os.O_APPEND
        elif flags & WRITE_TRUNC:
            mode |= os.O_TRUNC
        if offset + len(data) > MAX_FILE:
            raise StoreError(ENOSPC, "file would exceed %d bytes" % MAX_FILE)
        fd = self._open(path, mode, create_parents=True)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(EINVAL, "not a regular file")
            if flags & WRITE_APPEND:
                if os.fstat(fd).st_size + len(data) > MAX_FILE:
                    raise StoreError(ENOSPC, "file would exceed %d bytes" % MAX_FILE)
                n = os.write(fd, data)
            else:
                n = os.pwrite(fd, data, offset)
            os.fsync(fd)
            return n
        finally:
            os.close(fd)

    def size(self, path):
        fd = self._open(path, os.O_RDONLY)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def delete(self, path):
        path = self.check(path)
        parent, _, name = path.rstrip(b"/").rpartition(b"/")
        if name in (b"", b"."):
            raise StoreError(EINVAL, "cannot delete %r" % path)
        dfd = self._open(parent or b".", os.O_DIRECTORY | os.O_RDONLY)
        try:
            os.unlink(name, dir_fd=dfd)
        except OSError as e:
            raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))
        finally:
            os.close(dfd)
        return 0

    def close(self):
        os.close(self.root_fd)


class KV:
    """Durable key-value store: each acknowledged write is committed and fsynced first."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")

    def get(self, key):
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StoreError(ENOENT, "no key %r" % key)
        return bytes(row[0])

    def put(self, key, value):
        self.db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, value))
        return len(value)

    def delete(self, key):
        if self.db.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount == 0:
            raise StoreError(ENOENT, "no key %r" % key)
        return 0

    def add(self, key, delta):
        """Atomic read-add-write of a decimal integer value."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            try:
                cur = int(bytes(row[0])) if row else 0
            except ValueError:
                raise StoreError(EINVAL, "value of %r is not an integer" % key)
            new = cur + delta
            if not -(1 << 63) <= new < (1 << 63):
                raise StoreError(EINVAL, "overflow")
            self.db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            (key, str(new).encode()))
            self.db.execute("COMMIT")
            return new
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def items(self):
        return {bytes(k): bytes(v) for k, v in self.db.execute("SELECT key, value FROM kv ORDER BY key")}

    def close(self):
        self.db.close()


LINE_MAX = 4096  # characters of one log line (the rest is counted, not kept)


def escape_line(msg, limit=LINE_MAX):
    """A guest's log message as one printable line: UTF-8 text as it is, every other byte and
    every control character (newlines included) as a \\xNN escape and a backslash as \\\\, so
    one log call is exactly one line and no message can forge another. At most `limit`
    characters are kept; the rest is counted."""
    out, n, used = [], 0, 0
    for ch in msg[:limit * 4].decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xdc80 <= o <= 0xdcff:            # a byte that is not UTF-8
            piece, size = "\\x%02x" % (o - 0xdc00), 1
        elif o < 0x20 or o == 0x7f or 0x80 <= o < 0xa0:
            piece, size = "\\x%02x" % o, len(ch.encode())
        elif ch == "\\":
            piece, size = "\\\\", 1
        else:
            piece, size = ch, len(ch.encode())
        if n + len(piece) > limit:
            break
        out.append(piece)
        n += len(piece)
        used += size
    text = "".join(out)
    return text if used == len(msg) else text + " ...[%d more bytes]" % (len(msg) - used)


class Log:
    """The tenant's log: one escaped line per message. Writing it never raises: a log that
    cannot be written (a full disk, its quota) drops the line and counts it."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.dropped = 0

    def write(self, who, msg):
        if isinstance(msg, str):
            msg = msg.encode("utf-8", "backslashreplace")
        line = "%s %s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), who, escape_line(msg))
        try:
            os.write(self.fd, line.encode("utf-8", "backslashreplace"))
            return True
        except OSError:
            self.dropped += 1
            return False

    def close(self):
        os.close(self.fd)
