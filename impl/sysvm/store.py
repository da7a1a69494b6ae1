"""A tenant's persistent state, as its system VM serves it: a file tree, a key-value store, a log.

Files are confined by the kernel: every path is opened with openat2(2) RESOLVE_BENEATH beneath the
tenant's root, so `..`, absolute paths and symlinks cannot leave it, whatever the string looks like.
The key-value store is SQLite in WAL mode with synchronous=FULL: a put is acknowledged only after
it is durable, so it survives a kill -9 of the system VM.

Each part keeps the tenant within its limits (nanvix.impl.limits.Limits): it counts what the
tenant holds when it opens (a restarted system VM counts again) and checks every request that
would grow it before doing anything, so a request past a limit changes nothing and gets EDQUOT
(a total), EFBIG (one file) or E2BIG (one value). The system VM is the only writer of the tree,
so its counts stay exact. A full disk is ENOSPC, never a crash.
"""
import ctypes
import errno
import os
import sqlite3
import stat
import struct
import time

from nanvix.impl.abi import (DELETE_DIR, EACCES, EDQUOT, EEXIST, EFBIG, EINVAL, EIO, ENOENT, ENOTEMPTY, E2BIG,
                             ENOSPC, FT_DIR, FT_FILE, WRITE_APPEND, WRITE_EXCL, WRITE_SETSIZE, WRITE_TRUNC)
from nanvix.impl.errors import StoreError
from nanvix.impl.limits import Limits

_libc = ctypes.CDLL(None, use_errno=True)
SYS_openat2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08


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
            errno.ENAMETOOLONG: E2BIG, errno.ENOSPC: ENOSPC, errno.EDQUOT: EDQUOT,
            errno.EFBIG: EFBIG, errno.EEXIST: EEXIST, errno.ENOTEMPTY: ENOTEMPTY}.get(e.errno, EIO)


class Files:
    """The tenant's file tree. Paths are bytes from the guest: checked here for a clear error,
    and confined by openat2 whatever this check misses. `bytes` and `inodes` count what the tree
    holds (regular files' sizes; files and directories)."""

    def __init__(self, root, limits=Limits()):
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.root_fd = os.open(root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        self.limits = limits
        self.bytes = self.inodes = 0
        for _, dirs, names, dfd in os.fwalk(".", dir_fd=self.root_fd):
            self.inodes += len(dirs) + len(names)
            for n in names:
                try:
                    st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    self.bytes += st.st_size

    def usage(self):
        return {"file_bytes": self.bytes, "files": self.inodes}

    def _grow(self, new_inodes=0, new_bytes=0):
        """Refuse (EDQUOT) what would take the tree past its limits; nothing is changed yet."""
        if new_inodes > 0 and self.inodes + new_inodes > self.limits.files:
            raise StoreError(EDQUOT, "the tenant's %d files and directories are used" % self.limits.files)
        if new_bytes > 0 and self.bytes + new_bytes > self.limits.file_bytes:
            raise StoreError(EDQUOT, "the tenant's %d bytes of files would be exceeded" % self.limits.file_bytes)

    @staticmethod
    def check(path):
        if not path or b"\0" in path:
            raise StoreError(EINVAL, "empty path or NUL byte")
        if path.startswith(b"/"):
            raise StoreError(EACCES, "absolute path %r" % path)
        if b".." in path.split(b"/"):
            raise StoreError(EACCES, "path %r leaves the tenant's tree" % path)
        return path

    def _open(self, path, flags):
        path = self.check(path)
        try:
            return openat2(self.root_fd, path, flags)
        except OSError as e:
            raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))

    def _mkdirs(self, d):
        """mkdir -p, one component at a time, each parent opened beneath the root; each new
        directory counts against the tenant's inodes."""
        parts = [p for p in d.split(b"/") if p and p != b"."]
        parent = os.dup(self.root_fd)
        try:
            for p in parts:
                try:
                    os.stat(p, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    self._grow(new_inodes=1)
                    try:
                        os.mkdir(p, 0o700, dir_fd=parent)
                        self.inodes += 1
                    except FileExistsError:
                        pass
                    except OSError as e:
                        raise StoreError(_code(e), "%s: %s" % (p.decode(errors="replace"), e.strerror))
                except OSError:
                    pass  # (openat2 below gives the error that matters)
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
        """Write data at offset (or append, or truncate first): (the bytes written, the offset
        after them: an append's is the file's new size). The file's new size is known before
        anything is written, so a write past a limit changes nothing."""
        if flags & WRITE_SETSIZE:
            return self.set_size(path, offset, data), offset
        append, trunc = bool(flags & WRITE_APPEND), bool(flags & WRITE_TRUNC) and not flags & WRITE_APPEND
        if self.check(path).endswith(b"/"):   # never a file: refused before its parents are made
            raise StoreError(EINVAL, "a file's name cannot end in /")
        if offset + len(data) > self.limits.file_size:
            raise StoreError(EFBIG, "a file may hold at most %d bytes" % self.limits.file_size)
        try:
            fd = self._open(path, os.O_WRONLY)
            created = False
            if flags & WRITE_EXCL:
                os.close(fd)
                raise StoreError(EEXIST, "%s exists" % path.decode(errors="replace"))
        except StoreError as e:
            if e.code != ENOENT:
                raise
            if b"/" in path.rstrip(b"/"):
                self._mkdirs(path.rsplit(b"/", 1)[0])   # (its new directories count first)
            self._grow(new_inodes=1, new_bytes=(0 if append else offset) + len(data))
            fd = self._open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            created = True
            self.inodes += 1
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(EINVAL, "not a regular file")
            old = st.st_size
            new = old + len(data) if append else (offset + len(data) if trunc else max(old, offset + len(data)))
            if new > self.limits.file_size:
                raise StoreError(EFBIG, "a file may hold at most %d bytes" % self.limits.file_size)
            if not created:
                self._grow(new_bytes=new - old)
            try:
                if trunc:
                    os.ftruncate(fd, 0)
                n = os.pwrite(fd, data, old) if append else os.pwrite(fd, data, offset)
                if n < len(data):  # the disk filled part way: a write is all or nothing
                    os.ftruncate(fd, 0 if trunc else old)
                    raise OSError(errno.ENOSPC, "no space for all %d bytes" % len(data))
                os.fsync(fd)
            except OSError as e:
                raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))
            finally:
                self.bytes += os.fstat(fd).st_size - old  # what is really there, even after a failure
            return n, (old if append else offset) + n
        finally:
            os.close(fd)

    def set_size(self, path, size, data=b""):
        """truncate(2): the existing file's size becomes `size` (zeros if it grows)."""
        if data:
            raise StoreError(EINVAL, "a size change carries no data")
        if size > self.limits.file_size:
            raise StoreError(EFBIG, "a file may hold at most %d bytes" % self.limits.file_size)
        fd = self._open(path, os.O_WRONLY)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(EINVAL, "not a regular file")
            self._grow(new_bytes=size - st.st_size)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError as e:
                raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))
            finally:
                self.bytes += os.fstat(fd).st_size - st.st_size
            return 0
        finally:
            os.close(fd)

    def size(self, path):
        fd = self._open(path, os.O_RDONLY)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    STAT = struct.Struct("<QqII")   # struct nx_stat

    def stat(self, path):
        """A file's or directory's size, modification time and type (struct nx_stat)."""
        fd = self._open(path, os.O_PATH)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        kind = FT_DIR if stat.S_ISDIR(st.st_mode) else FT_FILE if stat.S_ISREG(st.st_mode) else 0
        return self.STAT.pack(st.st_size if kind == FT_FILE else 0, st.st_mtime_ns, kind, 0)

    def list(self, path, start, cap):
        """A directory's entries in name order from index `start`, packed as {u8 type, u8 len,
        name} while they fit in cap bytes: (count, packed). A stateless cursor: the guest asks
        again from start + count until it gets 0."""
        fd = self._open(path, os.O_DIRECTORY | os.O_RDONLY)
        try:
            with os.scandir(fd) as it:
                names = sorted((e.name, FT_DIR if e.is_dir(follow_symlinks=False) else
                                FT_FILE if e.is_file(follow_symlinks=False) else 0) for e in it)
        except OSError as e:
            raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))
        finally:
            os.close(fd)
        out, n = bytearray(), 0
        for name, kind in names[start:] if start < len(names) else ():
            b = os.fsencode(name)
            if len(b) > 255 or len(out) + 2 + len(b) > cap:
                break
            out += bytes((kind, len(b))) + b
            n += 1
        if n == 0 and start < len(names) and cap > 0:
            raise StoreError(EINVAL, "no room for the next entry")
        return n, bytes(out)

    def _parent(self, path):
        """(a descriptor of path's parent directory, opened beneath the root; the last name)."""
        path = self.check(path)
        parent, _, name = path.rstrip(b"/").rpartition(b"/")
        if name in (b"", b"."):
            raise StoreError(EINVAL, "%r names no entry" % path)
        return self._open(parent or b".", os.O_DIRECTORY | os.O_RDONLY), name

    def mkdir(self, path):
        """mkdir(2): one directory, whose parent exists; it counts against the inodes."""
        dfd, name = self._parent(path)
        try:
            self._grow(new_inodes=1)
            os.mkdir(name, 0o700, dir_fd=dfd)
        except OSError as e:
            raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))
        finally:
            os.close(dfd)
        self.inodes += 1
        return 0

    def rename(self, old, new):
        """rename(2) within the tree: a file or directory replaced at `new` is no longer counted."""
        ofd, oname = self._parent(old)
        try:
            nfd, nname = self._parent(new)
        except BaseException:
            os.close(ofd)
            raise
        try:
            try:
                gone = os.stat(nname, dir_fd=nfd, follow_symlinks=False)
            except FileNotFoundError:
                gone = None
            if gone is not None:   # renamed onto itself (or a hard link of it): nothing is gone
                src = os.stat(oname, dir_fd=ofd, follow_symlinks=False)
                if (src.st_dev, src.st_ino) == (gone.st_dev, gone.st_ino):
                    gone = None
            os.rename(oname, nname, src_dir_fd=ofd, dst_dir_fd=nfd)
        except OSError as e:
            raise StoreError(_code(e), "%s: %s" % (old.decode(errors="replace"), e.strerror))
        finally:
            os.close(ofd)
            os.close(nfd)
        if gone is not None:
            self.inodes -= 1
            if stat.S_ISREG(gone.st_mode) and gone.st_nlink <= 1:
                self.bytes -= gone.st_size
        return 0

    def delete(self, path, flags=0):
        """unlink(2), or rmdir(2) of an empty directory with DELETE_DIR."""
        dfd, name = self._parent(path)
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if flags & DELETE_DIR:
                os.rmdir(name, dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=dfd)
        except OSError as e:
            raise StoreError(_code(e), "%s: %s" % (path.decode(errors="replace"), e.strerror))
        finally:
            os.close(dfd)
        self.inodes -= 1
        if stat.S_ISREG(st.st_mode) and st.st_nlink <= 1:
            self.bytes -= st.st_size
        return 0

    def close(self):
        os.close(self.root_fd)


KV_RESERVE = 1 << 20      # disk kept back beside the database, for deletes on a full disk
KV_CHECKPOINT = 128       # WAL pages between checkpoints: what a checkpoint may add to the database


class KV:
    """Durable key-value store: each acknowledged write is committed and fsynced first. `bytes`
    counts keys and values, `keys` the keys; the database file itself is capped too (SQLite's
    max_page_count), so even a miscount could not fill the disk.

    On a full disk SQLite cannot even delete (a delete appends to the WAL, which cannot be
    checkpointed into a database that cannot grow), so a tenant that filled the disk with keys
    could never free it. The store therefore holds KV_RESERVE bytes of disk allocated in a file of
    its own: a delete that finds the disk full gives them up, folds the WAL into the database and
    goes through; a put takes them back first (ENOSPC while it cannot), so puts never eat the room
    deletes need, and to find that room it first gives the pages of deleted keys back to the disk
    (auto_vacuum=INCREMENTAL, for a database made since). KV_CHECKPOINT keeps the WAL small
    enough for the reserve to absorb."""

    def __init__(self, path, limits=Limits()):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA temp_store=MEMORY")          # no temporary files outside the tree
        self.db.execute("PRAGMA journal_size_limit=%d" % (4 << 20))
        self.db.execute("PRAGMA wal_autocheckpoint=%d" % KV_CHECKPOINT)
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")     # (a new database: deleted pages can go back)
        self.reserve_path = path + ".reserve"
        self.reserved = self._hold_reserve()
        self.set_limits(limits)
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")
        self.keys, self.bytes = self.db.execute(
            "SELECT count(*), coalesce(sum(length(key) + length(value)), 0) FROM kv").fetchone()

    def set_limits(self, limits):
        self.limits = limits
        page = self.db.execute("PRAGMA page_size").fetchone()[0]
        self.db.execute("PRAGMA max_page_count=%d" % ((2 * limits.kv_bytes + (8 << 20)) // page))

    def usage(self):
        return {"kv_bytes": self.bytes, "kv_keys": self.keys}

    def _sql(self, *args):
        try:
            return self.db.execute(*args)
        except sqlite3.Error as e:
            full = "full" in str(e)  # SQLITE_FULL: the disk, or the database's own cap
            raise StoreError(ENOSPC if full else EIO, "key-value store: %s" % e)

    def get(self, key):
        row = self._sql("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StoreError(ENOENT, "no key %r" % key)
        return bytes(row[0])

    def _set(self, key, value):
        """Insert or replace within the limits (inside the caller's transaction, if any)."""
        if len(value) > self.limits.kv_value:
            raise StoreError(E2BIG, "a value may hold at most %d bytes" % self.limits.kv_value)
        row = self._sql("SELECT length(value) FROM kv WHERE key = ?", (key,)).fetchone()
        grow = len(value) - row[0] if row else len(key) + len(value)
        if row is None and self.keys + 1 > self.limits.kv_keys:
            raise StoreError(EDQUOT, "the tenant's %d keys are used" % self.limits.kv_keys)
        if grow > 0 and self.bytes + grow > self.limits.kv_bytes:
            raise StoreError(EDQUOT, "the tenant's %d bytes of keys and values would be exceeded"
                             % self.limits.kv_bytes)
        self._sql("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  (key, value))
        return grow, row is None

    def _account(self, grow, new):
        self.bytes += grow
        self.keys += new

    def _hold_reserve(self):
        """Allocate the reserve (True), or say the disk has no room for it (False)."""
        try:
            fd = os.open(self.reserve_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            return False
        try:
            os.posix_fallocate(fd, 0, KV_RESERVE)
            return True
        except OSError:
            os.ftruncate(fd, 0)   # (some file systems keep what a failed fallocate got)
            return False
        finally:
            os.close(fd)

    def _writable(self):
        """A write that could grow the store first takes back the reserve."""
        if not self.reserved:
            self.reserved = self._hold_reserve()
        if not self.reserved:   # the pages of deleted keys back to the disk, and again
            try:
                self.db.execute("PRAGMA incremental_vacuum").fetchall()
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass
            self.reserved = self._hold_reserve()
        if not self.reserved:
            raise StoreError(ENOSPC, "key-value store: the disk is full")

    def put(self, key, value):
        self._writable()
        self._account(*self._set(key, value))
        return len(value)

    def delete(self, key):
        row = self._sql("SELECT length(key) + length(value) FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StoreError(ENOENT, "no key %r" % key)
        try:
            gone = self._sql("DELETE FROM kv WHERE key = ?", (key,)).rowcount
        except StoreError as e:
            if e.code != ENOSPC or not self.reserved:
                raise
            self._give_up_reserve()
            gone = self._sql("DELETE FROM kv WHERE key = ?", (key,)).rowcount
        if gone == 0:
            raise StoreError(ENOENT, "no key %r" % key)
        self._account(-row[0], -1)
        return 0

    def _give_up_reserve(self):
        """The disk is full: free the reserve and fold the WAL into the database (truncating
        it), so that deletes have room."""
        self.reserved = False
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)
        except OSError:
            pass
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    def add(self, key, delta):
        """Atomic read-add-write of a decimal integer value."""
        self._writable()
        self._sql("BEGIN IMMEDIATE")
        try:
            row = self._sql("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            try:
                cur = int(bytes(row[0])) if row else 0
            except ValueError:
                raise StoreError(EINVAL, "value of %r is not an integer" % key)
            new = cur + delta
            if not -(1 << 63) <= new < (1 << 63):
                raise StoreError(EINVAL, "overflow")
            change = self._set(key, str(new).encode())
            self._sql("COMMIT")
        except BaseException:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self._account(*change)
        return new

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
    """The tenant's log: one escaped line per message, in two halves (log, then log.1 once log
    holds half the tenant's log bytes), so it never holds more than its limit. Writing it never
    raises: a line that cannot be written (a full disk) is dropped and counted."""

    def __init__(self, path, limits=Limits()):
        self.path, self.old = path, path + ".1"
        self.set_limits(limits)
        self.dropped = 0
        self.fd = None
        self._open()

    def set_limits(self, limits):
        self.half = limits.log_bytes // 2   # (Limits keeps it at 4 KiB or more)

    def _open(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size

    def usage(self):
        try:
            old = os.stat(self.old).st_size
        except OSError:
            old = 0
        return {"log_bytes": self.size + old, "log_dropped": self.dropped}

    def write(self, who, msg):
        if isinstance(msg, str):
            msg = msg.encode("utf-8", "backslashreplace")
        line = ("%s %s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), who,
                                escape_line(msg))).encode("utf-8", "backslashreplace")
        if len(line) > self.half:   # (4,096 characters may be more bytes than a half holds)
            line = line[:self.half - 1].decode("utf-8", "ignore").encode() + b"\n"
        try:
            if self.fd is None:  # (a rotation failed half way: start again where we can)
                self._open()
            if self.size + len(line) > self.half:
                os.replace(self.path, self.old)
                os.close(self.fd)
                self.fd = None
                self._open()
            os.write(self.fd, line)
            self.size += len(line)
            return True
        except OSError:
            self.dropped += 1
            return False

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
