"""The host's register of tenants: each tenant's limits and the uid its system VM runs as.

Kept in `<home>/host/tenants.json`, written only by the control plane (never inside a tenant's
tree, which its system VM can write), so both survive a restart of the host.
"""
import json
import os
import threading
import zlib

from nanvix.impl.errors import InvalidArgument, QuotaExceeded
from nanvix.impl.limits import Limits

# A system VM runs as a uid of its own per tenant: from a range per host home (two homes on one
# machine, as in tests, do not share uids), one uid per tenant, kept in the register.
UID_BASE = 0x10000000
UID_SPAN = 1 << 16


def uid_range(home):
    slot = zlib.crc32(os.path.realpath(home).encode()) % 4096
    base = UID_BASE + slot * UID_SPAN
    return base, base + UID_SPAN


class Register:
    """The host's tenants: name -> {"uid", "limits"}, persisted atomically under <home>/host."""

    def __init__(self, home, defaults=Limits()):
        self.dir = os.path.join(home, "host")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(self.dir, "tenants.json")
        self.defaults = defaults
        self.lo, self.hi = uid_range(home)
        self.lock = threading.Lock()
        self.tenants = {}
        try:
            with open(self.path) as f:
                data = json.load(f)
            for name, rec in data.get("tenants", {}).items():
                self.tenants[name] = {"uid": int(rec["uid"]), "limits": dict(rec.get("limits", {}))}
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidArgument("%s is malformed (%s): fix or remove it" % (self.path, e))

    def _save(self, tenants):
        """Write `tenants` as the register, or change nothing (a full disk: QuotaExceeded)."""
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump({"tenants": tenants}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise QuotaExceeded("the host cannot write its register of tenants (%s)" % e.strerror)
        self.tenants = tenants

    def ensure(self, name):
        """The tenant's record, made (with a fresh uid and no limits of its own) on first use."""
        with self.lock:
            rec = self.tenants.get(name)
            if rec is None:
                used = {r["uid"] for r in self.tenants.values()}
                uid = next((u for u in range(self.lo, self.hi) if u not in used), None)
                if uid is None:
                    raise InvalidArgument("this host has no uid left for another tenant")
                rec = {"uid": uid, "limits": {}}
                self._save(dict(self.tenants, **{name: rec}))
            return dict(rec)

    def limits(self, name):
        with self.lock:
            own = self.tenants.get(name, {}).get("limits", {})
        return self.defaults.replace(**own)

    def set_limits(self, name, **changes):
        """Change some of a tenant's limits (checked); returns the tenant's limits."""
        new = self.limits(name).replace(**changes)
        with self.lock:
            rec = dict(self.tenants[name])
            rec["limits"] = {k: v for k, v in new.to_dict().items() if v != getattr(self.defaults, k)}
            self._save(dict(self.tenants, **{name: rec}))
        return new
