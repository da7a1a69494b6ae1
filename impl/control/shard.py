"""VMM shards: user VMs held by worker processes of their own.

One process cannot hold many user VMs here: it may open at most 20,000 files (two per VM: the VM
and its vCPU), map at most 65,530 ranges, and KVM_CREATE_VM and mmap slow down as the VMs of one
process (one mm) accumulate. So beyond what the control plane's own process holds (shard 0), user
VMs live in shard processes, each a VMM of its own: KVM, a scheduler with its cores' threads, the
user VMs and their pools (ShardRuntime, the control plane's Runtime without tenants' system VMs of
its own). A shard is handed, once per tenant, the tenant's channel arena, doorbell and a notify
eventfd of its own (also handed to the tenant's system VM, which posts this shard's wake-ups on
the arena's wake ring for this shard), the channel slots it may use, and the tenant's sealed
snapshots with their vCPU state. Nothing crosses tenants in a shard either: every user VM is its
tenant's, on its tenant's arena, from its tenant's snapshot.

The control plane talks to a shard over a SOCK_SEQPACKET socket: JSON requests, descriptors as
SCM_RIGHTS (ShardClient below).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from nanvix.impl import sched as S
from nanvix.impl.channel import Arena
from nanvix.impl.limits import Limits
from nanvix.impl.control.runtime import Runtime, Tenant
from nanvix.impl.control.uvm import Template
from nanvix.impl.errors import NanvixError, NotFound, SystemVMDown

MSG_MAX = 1 << 20


class RemoteSystemVM:
    """A tenant's system VM as a shard sees it: another process's, always assumed running (the
    control plane restarts it; the arena carries everything the shard needs from it)."""
    alive = True
    epoch = 1
    pid = None

    def call(self, op, **args):
        raise NanvixError("a shard does not talk to system VMs")

    def stop(self):
        pass


class ShardTenant(Tenant):
    """A tenant's share of a shard: its arena and eventfds (handed in), the slots it may use."""

    def __init__(self, name, arena_fd, doorbell, notify, quota_uvms, quota_pages):
        import collections
        self.name, self.id, self.root = name, 0, None
        self.limits = Limits(user_vms=quota_uvms, pages=quota_pages)
        self.invocations = 0
        self.arena = Arena(arena_fd)
        self.doorbell, self.notify = doorbell, notify
        self.sysvm = RemoteSystemVM()
        self.sysvm_up = True     # (the control plane watches and restarts the system VM)
        self.free_slots = []
        self.slot_page = {}
        self.uvms = {}
        self.templates = {}
        self.retired = set()
        self.ready = collections.defaultdict(collections.deque)
        self.lock = threading.RLock()
        self.ready_cond = threading.Condition(self.lock)


class ShardRuntime(Runtime):
    """The VMM of one shard process."""

    def __init__(self, shard_id, **kw):
        import itertools
        self.shard_id = shard_id
        super().__init__(home=tempfile.mkdtemp(prefix="nanvix-shard-"), ready_per_function=0, **kw)
        self.ids = itertools.count(shard_id * 1_000_000_000 + 1)  # user VM ids unique host-wide

    def tenant(self, name, create=False):
        with self.lock:
            t = self.tenants.get(name)
        if t is None:
            raise NotFound("shard %d has no tenant %r" % (self.shard_id, name))
        return t

    def system_vm(self, tenant):
        return self.tenant(tenant).sysvm

    def _pace_system_vms(self):
        pass   # (the control plane's monitor paces the system VMs: a shard owns none)

    def template(self, t, image):
        tpl = t.templates.get(image["digest"])
        if tpl is None:
            raise NotFound("shard %d has no snapshot %s of tenant %s" % (self.shard_id, image["digest"], t.name))
        return tpl

    # -- requests from the control plane --------------------------------------------------------
    def command(self, req, fds):
        op = req.get("op")
        if op == "tenant":
            arena, doorbell, notify = fds
            t = ShardTenant(req["tenant"], arena, doorbell, notify, req["quota_uvms"], req["quota_pages"])
            with self.lock:
                self.tenants[t.name] = t
            self.sched.watch(t.name, notify, t.arena, self.shard_id)
            return {}
        if op == "template":
            t = self.tenant(req["tenant"])
            image = req["image"]
            t.templates[image["digest"]] = Template.adopt(fds[0], image, req["ram_size"], bytes.fromhex(req["state"]))
            return {}
        if op == "slots":
            t = self.tenant(req["tenant"])
            with t.lock:
                t.free_slots.extend(int(s) for s in req["slots"] if 0 <= int(s) < t.arena.nslots)
            return {"free": len(t.free_slots)}
        if op == "hold":
            return self.hold(req["tenant"], req["image"], int(req["n"]), bytes.fromhex(req.get("input", "")),
                             int(req.get("timeout_ms", 3_600_000)))
        if op == "invoke":
            rep = self.invoke(req["tenant"], req["image"], bytes.fromhex(req.get("input", "")),
                              int(req.get("timeout_ms", 10_000)))
            rep["result_bytes"] = rep["result_bytes"].hex()
            return {"report": rep}
        if op == "forget":
            self.forget(req["tenant"], str(req["digest"]))
            return {}
        if op == "drop":
            self.held = []
            for uvm in list(self.uvms.values()):
                self.destroy(uvm, wait=False)
            return {}
        if op == "stats":
            states = {}
            for u in list(self.uvms.values()):
                states[u.state] = states.get(u.state, 0) + 1
            return {"user_vms": len(self.uvms), "fds": len(os.listdir("/proc/self/fd")),
                    "mappings": sum(1 for _ in open("/proc/self/maps")), "pid": os.getpid(),
                    "states": states, "templates": self.templates_held()}
        raise ValueError("unknown op %r" % op)

    def forget(self, tenant, digest):
        """The control plane forgot the tenant's function: its snapshot here is retired as there
        (closed once no user VM here uses it), and the held user VMs of it that have ended are
        destroyed (nothing runs in them again); those still running or parked keep it until dropped."""
        super().forget(tenant, digest)
        ended = [u for u in self.held if u.tenant == tenant and u.digest == digest and u.state in (S.EXITED, S.CRASHED)]
        gone = {id(u) for u in ended}
        self.held = [u for u in self.held if id(u) not in gone]
        for uvm in ended:
            self.destroy(uvm, wait=False)

    def hold(self, tenant, image, n, data, timeout_ms):
        return {"states": hold_here(self, tenant, image, n, data, timeout_ms)}


def hold_here(rt, tenant, image, n, data, timeout_ms):
    """Start n user VMs of the function on rt and let each run until it blocks (parks) or ends:
    live user VMs that have run, held until dropped. Returns {state: count}."""
    held = []
    for _ in range(n):
        uvm = rt.create_user_vm(tenant, image, data, timeout_ms)
        rt.start(uvm)
        held.append(uvm)
    end = time.monotonic() + 60
    while time.monotonic() < end and any(u.state in (S.CREATED, S.RUNNABLE, S.RUNNING) for u in held):
        time.sleep(0.005)
    states = {}
    for u in held:
        states[u.state] = states.get(u.state, 0) + 1
    rt.held.extend(held)
    return states


def serve(sock, rt):
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, MSG_MAX, 8)
        except OSError:
            return
        if not msg:
            return
        try:
            req = json.loads(msg)
            reply = dict(rt.command(req, fds), ok=True)
        except Exception as e:
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sock.send(json.dumps(reply).encode())


def main(argv=None):
    ap = argparse.ArgumentParser(prog="nanvix-shard")
    ap.add_argument("--shard", type=int, required=True)
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--cores", type=int, default=0)
    ap.add_argument("--max-pages", type=int, default=4096)
    a = ap.parse_args(argv)
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the control plane decides when we stop
    sock = socket.socket(fileno=a.fd)
    with ShardRuntime(a.shard, cores=a.cores, max_pages=a.max_pages, pool_size=2) as rt:
        sock.send(json.dumps({"ok": True, "pid": os.getpid()}).encode())
        serve(sock, rt)


class ShardClient:
    """The control plane's handle on one shard process."""

    def __init__(self, shard_id, cores=0, max_pages=4096):
        self.id = shard_id
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nanvix.impl.control.shard", "--shard", str(shard_id), "--fd", str(child.fileno()),
             "--cores", str(cores), "--max-pages", str(max_pages)],
            pass_fds=[child.fileno()], close_fds=True, start_new_session=True)
        child.close()
        self.sock = parent
        self.lock = threading.Lock()
        self.tenants = {}     # tenant -> its notify eventfd for this shard
        self.templates = set()
        self.slots = {}       # tenant -> the channel slots given to this shard
        self.held = 0
        hello = self._recv()
        if not hello.get("ok"):
            raise NanvixError("shard %d failed to start: %r" % (shard_id, hello))

    def _recv(self):
        msg = self.sock.recv(MSG_MAX)
        if not msg:
            raise SystemVMDown("shard %d is gone" % self.id)
        return json.loads(msg)

    def call(self, op, fds=(), **args):
        with self.lock:
            msg = json.dumps(dict(args, op=op)).encode()
            if fds:
                socket.send_fds(self.sock, [msg], list(fds))
            else:
                self.sock.send(msg)
            reply = self._recv()
        if not reply.get("ok"):
            raise NanvixError("shard %d %s: %s" % (self.id, op, reply.get("error")))
        return reply

    def close(self):
        if self.proc.poll() is None:
            self.sock.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in self.tenants.values():
            os.close(fd)
        self.tenants = {}


if __name__ == "__main__":
    main()
