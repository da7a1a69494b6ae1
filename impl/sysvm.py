"""The system VM: one long-lived process per tenant that serves every channel of that tenant.

It is the macro-kernel half of nanvix: it owns the tenant's persistent state (files, key-value
store, log; see store.py) and answers the requests user VMs post on their channels. On this machine
a full guest kernel cannot run under the nested KVM, so the system VM is a sandboxed host process
whose kernel is the host's; its boundary is the same as a VM's: channel pages in, answers out.

Run as `python -m nanvix.impl.sysvm` by the control plane (SystemVM below), which talks to it over
a SOCK_SEQPACKET socket: JSON messages, with channel memfds and eventfds passed as SCM_RIGHTS.
Channels are served round-robin, a few requests each per round, so a busy user VM cannot starve
the others. A malformed request gets an error completion; nothing a guest writes can stop the loop.
"""
import argparse
import collections
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from nanvix.impl.kvm import Memory
from nanvix.impl.ring import ABI, EINVAL, EIO, ENOSYS, OP_CODES, Ring
from nanvix.impl.store import KV, Files, Log, StoreError

BATCH = 8               # requests per channel per round: fairness between channels
POLL_NS = 50_000        # keep polling this long after the last request before sleeping
LOG_KEEP = 256          # log lines kept per channel for the invocation's report
MSG_MAX = 1 << 20

OP = OP_CODES
PLANT = os.environ.get("NANVIX_PLANT", "")  # planted bugs for the refinement tests only


class Channel:
    __slots__ = ("id", "uvm", "mem", "ring", "doorbell", "notify", "log", "served", "in_service",
                 "recorded")

    def __init__(self, cid, uvm, memfd, doorbell, notify):
        self.id, self.uvm = cid, uvm
        self.mem = Memory(ABI["CHANNEL_SIZE"], memfd, True)
        os.close(memfd)  # the mapping keeps the pages; no descriptor lingers
        self.ring = Ring(self.mem, True)
        self.ring.plant_drop_when_full = PLANT == "drop_when_full"
        self.doorbell, self.notify = doorbell, notify
        self.log = []
        self.served = 0
        self.in_service = collections.deque()  # taken, not yet answered (manual stepping only)
        self.recorded = False  # its broken verdict is on disk

    def close(self):
        self.mem.close()
        os.close(self.doorbell)
        os.close(self.notify)


class Server:
    def __init__(self, tenant, root, sock):
        self.tenant = tenant
        self.sock = sock
        self.files = Files(os.path.join(root, "files"))
        self.kv = KV(os.path.join(root, "kv.sqlite3"))
        self.log = Log(os.path.join(root, "log"))
        self.channels = {}
        self.by_fd = {}
        # A channel whose guest wrote impossible indices stays broken across restarts: the
        # verdict is recorded under root, outside the guest's reach, before anyone is told of it.
        self.root = root
        os.makedirs(broken_mark(root, ""), mode=0o700, exist_ok=True)
        self.auto = True
        self.epoll = select.epoll()
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    # -- one request ---------------------------------------------------------------------------
    def handle(self, ch, r):
        """Serve one validated request: (result, output bytes)."""
        op = r.opcode
        if op == OP["nop"]:
            return 0, b""
        if op == OP["log"]:
            self.log.write("uvm-%s" % ch.uvm, r.value)
            if len(ch.log) < LOG_KEEP:
                ch.log.append(r.value.decode("utf-8", "replace"))
            return len(r.value), b""
        if op == OP["clock"]:
            return time.time_ns(), b""
        if op == OP["file_read"]:
            data = self.files.read(r.name, r.arg, r.out_cap)
            return len(data), data
        if op == OP["file_write"]:
            return self.files.write(r.name, r.value, r.arg, r.flags), b""
        if op == OP["file_size"]:
            return self.files.size(r.name), b""
        if op == OP["file_delete"]:
            return self.files.delete(r.name), b""
        if not r.name:
            raise StoreError(EINVAL, "empty key")
        if op == OP["kv_get"]:
            v = self.kv.get(r.name)
            return len(v), v
        if op == OP["kv_put"]:
            return self.kv.put(r.name, r.value), b""
        if op == OP["kv_delete"]:
            return self.kv.delete(r.name), b""
        if op == OP["kv_add"]:
            delta = r.arg - (1 << 64) if r.arg >= 1 << 63 else r.arg
            return self.kv.add(r.name, delta), b""
        raise StoreError(ENOSYS, "opcode %d" % op)

    def answer(self, ch, r):
        """Handle one taken request and post its completion. Returns (result, whether the guest
        asked to be notified)."""
        if r.error:
            res, out = -r.error, b""
        else:
            try:
                res, out = self.handle(ch, r)
            except StoreError as e:
                res, out = -e.code, b""
            except Exception as e:  # never let one request take the system VM down
                self.log.write("sysvm", ("internal error: %r" % e).encode())
                res, out = -EIO, b""
        ch.served += 1
        return res, ch.ring.complete(r, res, out)

    def take(self, ch):
        """The next request of the channel (None: empty, no room, or broken)."""
        r = ch.ring.take()
        if ch.ring.broken and not ch.recorded:
            self.record_broken(ch)
        return r

    def record_broken(self, ch):
        with open(broken_mark(self.root, ch.id), "w") as f:
            f.write(ch.ring.broken_reason + "\n")
        ch.recorded = True
        self.log.write("sysvm", ("channel %s broken: %s" % (ch.id, ch.ring.broken_reason)).encode())

    def serve(self, ch, budget):
        """Serve up to budget requests of one channel. Returns how many."""
        n = 0
        notify = False
        while n < budget:
            r = self.take(ch)
            if r is None:
                break
            n += 1
            notify |= self.answer(ch, r)[1]
        if notify:
            os.eventfd_write(ch.notify, 1)
        return n

    def serve_round(self):
        return sum(self.serve(ch, BATCH) for ch in list(self.channels.values()))

    # -- control messages --------------------------------------------------------------------
    def control(self):
        try:
            msg, fds, _, _ = socket.recv_fds(self.sock, MSG_MAX, 8)
        except OSError:
            msg, fds = b"", []
        if not msg:
            raise SystemExit(0)  # the control plane is gone: so are we
        try:
            req = json.loads(msg)
            reply = self.command(req, fds)
        except Exception as e:
            for fd in fds:
                os.close(fd)
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        self.sock.send(json.dumps(reply).encode())

    def command(self, req, fds):
        op = req.get("op")
        if op == "attach":
            cid = req["chan"]
            if cid in self.channels or len(fds) != 3:
                raise ValueError("bad attach of channel %r" % cid)
            ch = Channel(cid, req["uvm"], *fds)
            if os.path.exists(broken_mark(self.root, cid)):
                ch.ring.mark_broken("broken before this system VM started")
                ch.recorded = True
            elif ch.ring.broken:  # the published indices it adopted are impossible
                self.record_broken(ch)
            self.channels[cid] = ch
            self.by_fd[ch.doorbell] = ch
            self.epoll.register(ch.doorbell, select.EPOLLIN)
            recovered = ch.ring.recover()
            if recovered:
                os.eventfd_write(ch.notify, 1)
            return {"ok": True, "recovered": recovered, "broken": ch.ring.broken}
        if op == "detach":
            ch = self.channels.pop(req["chan"], None)
            if ch is None:
                return {"ok": False, "error": "no channel %r" % req["chan"]}
            self.epoll.unregister(ch.doorbell)
            del self.by_fd[ch.doorbell]
            info = self._channel_state(ch)
            info.update(ok=True, log=ch.log)
            ch.close()
            return info
        if op == "serve":  # manual stepping (lock-step tests)
            ch = self.channels.get(req["chan"])
            if ch is None:
                return {"ok": False, "error": "no channel %r" % req["chan"]}
            return {"ok": True, "served": self.serve(ch, int(req.get("max", 1)))}
        if op in ("take", "complete"):  # manual stepping: the two halves of serve, apart
            ch = self.channels.get(req["chan"])
            if ch is None:
                return {"ok": False, "error": "no channel %r" % req["chan"]}
            was_broken = ch.ring.broken
            if op == "take":
                r = self.take(ch)
                if r is not None:
                    ch.in_service.append(r)
                return {"ok": True, "taken": r is not None, "broken": ch.ring.broken,
                        "broke": ch.ring.broken and not was_broken,
                        "pending": 0 if ch.ring.broken else ch.ring.pending(),
                        "user_data": r.user_data if r is not None else None,
                        "error": r.error if r is not None else 0}
            if was_broken or not ch.in_service:
                return {"ok": True, "completed": False, "broken": was_broken}
            r = ch.in_service.popleft()
            res, notify = self.answer(ch, r)
            if notify:
                os.eventfd_write(ch.notify, 1)
            return {"ok": True, "completed": True, "user_data": r.user_data, "result": res}
        if op == "auto":
            self.auto = bool(req["on"])
            return {"ok": True}
        if op == "state":
            return {"ok": True, "pid": os.getpid(), "tenant": self.tenant, "auto": self.auto,
                    "channels": {str(c): self._channel_state(ch) for c, ch in self.channels.items()}}
        if op == "kv_items":
            return {"ok": True, "items": {k.hex(): v.hex() for k, v in self.kv.items().items()}}
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        raise ValueError("unknown op %r" % op)

    @staticmethod
    def _channel_state(ch):
        r = ch.ring
        return {"uvm": ch.uvm, "served": ch.served, "taken": r.taken, "completed": r.completed,
                "in_service_user_data": [r.user_data for r in ch.in_service],
                "rejected": r.rejected, "sq_head": r.sq_head, "cq_tail": r.cq_tail,
                "broken": r.broken, "broken_reason": r.broken_reason}

    # -- the loop -------------------------------------------------------------------------------
    def run(self):
        idle_since = time.monotonic_ns()
        while True:
            if self.auto and self.serve_round():
                idle_since = time.monotonic_ns()
                timeout = 0
            elif self.auto and time.monotonic_ns() - idle_since < POLL_NS:
                timeout = 0
            else:
                # Arm the doorbells, then look once more: a request posted before the flag was
                # visible would otherwise wait for the next one.
                for ch in self.channels.values():
                    ch.ring.set_need_wakeup(True)
                pending = self.auto and any(ch.ring.pending() for ch in self.channels.values())
                timeout = 0 if pending else -1
            for fd, _ in self.epoll.poll(timeout):
                if fd == self.sock.fileno():
                    self.control()
                else:
                    try:
                        os.eventfd_read(fd)
                    except BlockingIOError:
                        pass
            if timeout != 0:
                for ch in self.channels.values():
                    ch.ring.set_need_wakeup(False)
                idle_since = time.monotonic_ns()


def sandbox(root):
    """Confine the process: its own session, no new privileges, no core dumps, a private umask,
    and only the tenant's directory as its working directory."""
    os.setsid()
    os.umask(0o077)
    os.chdir(root)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        import ctypes
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except OSError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(prog="nanvix-sysvm")
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--fd", type=int, required=True)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the control plane decides when we stop
    sock = socket.socket(fileno=a.fd)
    sandbox(a.root)
    server = Server(a.tenant, a.root, sock)
    sock.send(json.dumps({"ok": True, "pid": os.getpid()}).encode())
    server.run()


# ------------------------------------------------------------------------------------------------
# The control plane's handle on one system VM.

class SystemVMDown(Exception):
    """The system VM process died or stopped answering."""


def broken_mark(root, cid):
    """The file recording that a tenant's system VM found channel cid broken (the folder, for
    cid "")."""
    return os.path.join(root, "broken", str(cid))


class SystemVM:
    def __init__(self, tenant, root):
        self.tenant = tenant
        self.root = root
        self.proc = None
        self.sock = None
        self.epoch = 0          # how many times it was started
        self.lock = threading.Lock()

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        if self.epoch == 0:  # verdicts of an earlier runtime name channel ids it no longer has
            shutil.rmtree(broken_mark(self.root, ""), ignore_errors=True)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nanvix.impl.sysvm", "--tenant", self.tenant, "--root", self.root,
             "--fd", str(child.fileno())], pass_fds=[child.fileno()], env=env, close_fds=True)
        child.close()
        self.sock = parent
        self.sock.settimeout(30)
        self.epoch += 1
        hello = self._recv()
        if not hello.get("ok"):
            raise SystemVMDown("system VM of %s failed to start: %r" % (self.tenant, hello))
        return self

    def _recv(self):
        try:
            msg = self.sock.recv(MSG_MAX)
        except OSError as e:
            raise SystemVMDown("system VM of %s: %s" % (self.tenant, e))
        if not msg:
            raise SystemVMDown("system VM of %s is gone" % self.tenant)
        return json.loads(msg)

    def call(self, op, fds=(), **args):
        with self.lock:
            if not self.alive:
                raise SystemVMDown("system VM of %s is not running" % self.tenant)
            msg = json.dumps(dict(args, op=op)).encode()
            try:
                if fds:
                    socket.send_fds(self.sock, [msg], list(fds))
                else:
                    self.sock.send(msg)
            except OSError as e:
                raise SystemVMDown("system VM of %s: %s" % (self.tenant, e))
            reply = self._recv()
        if not reply.get("ok"):
            raise RuntimeError("system VM %s: %s" % (op, reply.get("error")))
        return reply

    def kill(self, sig=signal.SIGKILL):
        if self.alive:
            self.proc.send_signal(sig)
            self.proc.wait()

    def stop(self):
        if self.proc is not None:
            if self.alive:
                self.sock.close()  # EOF on its control socket: it exits
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.kill()
            else:
                self.sock.close()
            self.proc = None


if __name__ == "__main__":
    main()
