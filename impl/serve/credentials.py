"""Who may call the front door: the admin (a token in <home>/admin.token, mode 0600) and each
tenant (a token made when the tenant is created, shown once, stored only as its SHA-256).

Tokens are 256 random bits, so one fast hash suffices (there is nothing to brute-force); lookups
compare digests, never the tokens. The tenant list lives in <home>/tenants.sqlite3 (synchronous
writes: a tenant whose token was shown exists after any crash). The home lock is here too: the
daemon holds it exclusively, a `nanvix` command working embedded holds it shared.
"""
import fcntl
import hashlib
import os
import secrets
import sqlite3
import threading
import time

from nanvix.impl.control.runtime import TENANT_NAME
from nanvix.impl.errors import InvalidArgument, NanvixError

TOKEN_PREFIX = "nvx_"


class Conflict(NanvixError):
    """The thing to create exists already."""


class HomeBusy(NanvixError):
    """Another process owns the home."""


def new_token():
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token):
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def admin_token(home):
    """The admin token of this home: read from <home>/admin.token, or made (mode 0600) if absent."""
    path = os.path.join(home, "admin.token")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        with open(path) as f:
            token = f.read().strip()
        if len(token) < 32:
            raise InvalidArgument("%s holds no usable token (delete it to make a new one)" % path)
        return token
    token = new_token()
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token


class Credentials:
    """The tenants of a home and the digests of their tokens."""

    def __init__(self, home):
        os.makedirs(home, mode=0o700, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(home, "tenants.sqlite3"), check_same_thread=False,
                                  isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, token_sha256 TEXT "
                        "NOT NULL UNIQUE, created REAL NOT NULL)")
        self.lock = threading.Lock()   # the writes (fsynced: never on an event loop's thread)
        # read from memory only, so an event loop never waits on the disk (or on a write's lock)
        self.by_digest, self.created = {}, {}
        for name, d, created in self.db.execute("SELECT name, token_sha256, created FROM tenants"):
            self.by_digest[d], self.created[name] = name, created

    def create(self, name):
        """A new tenant; returns its token (the only time it is shown). Writes to the disk."""
        if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
            raise InvalidArgument("tenant names are 1-32 of [a-z0-9_-], starting with a letter or digit; "
                                  "got %r" % (name,))
        token = new_token()
        created = time.time()
        with self.lock:
            try:
                self.db.execute("INSERT INTO tenants VALUES (?, ?, ?)", (name, digest(token), created))
            except sqlite3.IntegrityError:
                raise Conflict("tenant %s exists" % name)
            self.created = dict(self.created, **{name: created})
            self.by_digest[digest(token)] = name
        return token

    def tenant_of(self, token):
        """The tenant a token belongs to, or None."""
        return self.by_digest.get(digest(token))

    def tenants(self):
        return [{"tenant": n, "created": c} for n, c in sorted(self.created.items())]

    def close(self):
        self.db.close()


class HomeLock:
    """flock on <home>/serve.lock: exclusive for the daemon, shared for embedded commands.
    The daemon also writes <home>/serve.json (its pid and URL) for a clear refusal message."""

    def __init__(self, home, exclusive):
        os.makedirs(home, mode=0o700, exist_ok=True)
        self.home = home
        self.fd = os.open(os.path.join(home, "serve.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise HomeBusy(self.why_busy(exclusive))

    def why_busy(self, exclusive):
        info = read_info(self.home)
        if info and _alive(info.get("pid")):
            return ("a nanvix daemon (pid %s, %s) owns %s; talk to it with NANVIX_URL=%s"
                    % (info.get("pid"), info.get("url"), self.home, info.get("url")))
        if exclusive:
            return "%s is in use by another nanvix daemon or by embedded nanvix commands" % self.home
        return "a nanvix daemon owns %s" % self.home

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_info(home):
    import json
    try:
        with open(os.path.join(home, "serve.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
