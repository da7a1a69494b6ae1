"""Per-tenant limits on everything a tenant consumes.

A tenant is held to its limits where the resource lives: user VMs, pages and concurrent
invocations by the control plane; file bytes and inodes, key-value bytes and keys, the largest
value and the log by its system VM (nanvix.impl.sysvm.store); the system VM's memory, CPU and
processes by its cgroup (nanvix.impl.sysvm.jail); deployed functions by the host
(nanvix.impl.control.host). A request past a limit is refused with a clear
error (QuotaExceeded in the host, EDQUOT for a guest), never by crashing anything.

The host keeps each tenant's limits in its register (nanvix.impl.control.register); the control
plane hands a system VM its tenant's limits when it starts it.
"""
import dataclasses
import math

from nanvix.impl.errors import InvalidArgument

MiB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    user_vms: int = 64               # live user VMs (those kept ready count too)
    pages: int = 256                 # 2 MiB host pages: channels and pages a guest grows into
    invocations: int = 32            # invocations running at once
    file_bytes: int = 256 * MiB      # bytes in the tenant's file tree
    files: int = 10_000              # inodes in it (files and directories)
    file_size: int = 64 * MiB        # one file
    kv_bytes: int = 64 * MiB         # keys + values
    kv_keys: int = 100_000
    kv_value: int = 32 * 1024        # one value (the channel carries at most ~32 KiB anyway)
    log_bytes: int = 16 * MiB        # the tenant's log (two halves: log and log.1, rotated)
    sysvm_memory: int = 256 * MiB    # the system VM's memory (cgroup)
    sysvm_cpu: float = 1.0           # cores the system VM may use (cgroup CFS quota)
    sysvm_pids: int = 8              # tasks in the system VM's cgroup
    functions: int = 100             # deployed functions (each holds a snapshot, ready user VMs, an image)

    # what each limit is, for `nanvix limits` and the API's documentation
    DOC = {
        "user_vms": "live user VMs", "pages": "2 MiB host pages", "invocations": "concurrent invocations",
        "file_bytes": "bytes of files", "files": "files and directories", "file_size": "bytes of one file",
        "kv_bytes": "bytes of keys and values", "kv_keys": "keys", "kv_value": "bytes of one value",
        "log_bytes": "bytes of log", "sysvm_memory": "system VM memory (bytes)",
        "sysvm_cpu": "system VM cores", "sysvm_pids": "system VM tasks", "functions": "deployed functions",
    }

    def replace(self, **changes):
        """A copy with some limits changed; every value checked (InvalidArgument)."""
        for k, v in changes.items():
            if k not in self.DOC:
                raise InvalidArgument("no limit named %r (limits: %s)" % (k, ", ".join(self.DOC)))
            kind = float if k == "sysvm_cpu" else int
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (kind is int and v != int(v)):
                raise InvalidArgument("limit %s must be a number, got %r" % (k, v))
            if not v > 0 or v >= 1 << 62:
                raise InvalidArgument("limit %s must be positive (and sane), got %r" % (k, v))
            if k == "sysvm_memory" and v < 32 * MiB:
                raise InvalidArgument("limit sysvm_memory must be at least 32 MiB (a system VM's own size)")
            if k == "log_bytes" and v < 8192:
                raise InvalidArgument("limit log_bytes must be at least 8192 (two halves of a long line)")
            if k == "sysvm_pids" and v < 2:
                raise InvalidArgument("limit sysvm_pids must be at least 2 (the jail and the system VM)")
            changes[k] = kind(v)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.DOC}

    @classmethod
    def from_dict(cls, d):
        return cls().replace(**{k: v for k, v in d.items() if k in cls.DOC})
