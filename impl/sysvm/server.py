"""The system VM: one long-lived process per tenant that serves every channel of that tenant.

It is the macro-kernel half of nanvix: it owns the tenant's persistent state (files, key-value
store, log; see store.py) and answers the requests user VMs post on their channels. On this machine
a full guest kernel cannot run under the nested KVM, so the system VM is a sandboxed host process
whose kernel is the host's; its boundary is the same as a VM's: channel pages in, answers out.

Run as `python -m nanvix.impl.sysvm` by the control plane (client.SystemVM), which talks to it
over a SOCK_SEQPACKET socket: JSON messages, with channel memfds and eventfds passed as SCM_RIGHTS.
Channels are served round-robin, a few requests each per round, so a busy user VM cannot starve
the others. A malformed request gets an error completion; nothing a guest writes can stop the loop.
"""
import argparse
import json
import os
import resource
import select
import signal
import socket
import time

from nanvix.impl.abi import ABI, EINVAL, EIO, ENOSYS, OP_CODES
from nanvix.impl.channel import Ring
from nanvix.impl.errors import StoreError
from nanvix.impl.kvm import Memory
from nanvix.impl.sysvm.store import KV, Files, Log, broken_mark, escape_line

BATCH = 8               # requests per channel per round: fairness between channels
POLL_NS = 50_000        # keep polling this long after the last request before sleeping
LOG_KEEP = 16 << 10     # bytes of escaped log lines kept per channel for the invocation's report
MSG_MAX = 1 << 20       # a control message either way (the SOCK_SEQPACKET datagram)

OP = OP_CODES


class ServedChannel:
    """The system VM's end of one user VM's channel: the ring, its two eventfds, its account."""
    __slots__ = ("id", "uvm", "mem", "ring", "doorbell", "notify", "log", "log_bytes", "log_dropped",
                 "served", "in_service", "recorded")

    def __init__(self, cid, uvm, memfd, doorbell, notify, ring_class=Ring):
        self.id, self.uvm = cid, uvm
        self.mem = Memory(ABI["CHANNEL_SIZE"], memfd, True)
        os.close(memfd)  # the mapping keeps the pages; no descriptor lingers
        self.ring = ring_class(self.mem, True)
        self.doorbell, self.notify = doorbell, notify
        self.log = []           # escaped lines for the report, at most LOG_KEEP bytes
        self.log_bytes = 0
        self.log_dropped = 0
        self.served = 0
        self.in_service = []   # taken, not yet answered (only a stepped server leaves any)
        self.recorded = False  # its broken verdict is on disk

    def close(self):
        self.mem.close()
        os.close(self.doorbell)
        os.close(self.notify)


class Server:
    """Serves every channel of one tenant. `ring_class` is the channel's ring (the refinement
    harness plants bugs by handing in another); `auto` serves the rings in the loop (a stepped
    server serves only when told)."""
    ring_class = Ring
    auto = True

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
        self.idle_since = time.monotonic_ns()
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
            line = escape_line(r.value)
            if ch.log_bytes + len(line) <= LOG_KEEP:
                ch.log.append(line)
                ch.log_bytes += len(line)
            else:
                ch.log_dropped += 1
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
                self.log.write("sysvm", "internal error: %s" % type(e).__name__)  # (never raises)
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
        """Write the channel's broken verdict to disk (it outlives this process). If the disk
        refuses, the channel is still broken for this process, and the write is retried at the
        next look."""
        try:
            with open(broken_mark(self.root, ch.id), "w") as f:
                f.write(ch.ring.broken_reason + "\n")
            ch.recorded = True
        except OSError:
            return
        self.log.write("sysvm", "channel %s broken: %s" % (ch.id, ch.ring.broken_reason))

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

    @staticmethod
    def takeable(ch):
        """The channel has a request this system VM can take now: one is pending and its answer
        has room in the CQ. (A full CQ or a broken channel is no work: waiting on it must not
        spin; the guest's next doorbell, or its delivery, wakes us.)"""
        r = ch.ring
        return not r.broken and r.pending() > 0 and r.cq_free() > 0 and not r.broken

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
            if not isinstance(req, dict):
                raise ValueError("a control message is a JSON object")
            reply = self.command(req, fds)
        except Exception as e:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, str(e)[:200])}
        self.reply(reply)

    def reply(self, reply):
        data = json.dumps(reply).encode()
        if len(data) > MSG_MAX:  # cannot happen with the bounds above; never let it kill us
            data = json.dumps({"ok": False, "error": "reply of %d bytes is too large" % len(data)}).encode()
        try:
            self.sock.send(data)
        except OSError:
            raise SystemExit(0)  # the control plane is gone

    def command(self, req, fds):
        op = req.get("op")
        if op == "attach":
            cid = req["chan"]
            if cid in self.channels or len(fds) != 3:
                raise ValueError("bad attach of channel %r" % cid)
            ch = ServedChannel(cid, req["uvm"], *fds, ring_class=self.ring_class)
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
            info.update(ok=True, log=ch.log, log_dropped=ch.log_dropped)
            ch.close()
            return info
        if op == "state":
            return {"ok": True, "pid": os.getpid(), "tenant": self.tenant,
                    "channels": {str(c): self._channel_state(ch) for c, ch in self.channels.items()}}
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
        self.idle_since = time.monotonic_ns()
        while True:
            self.step()

    def step(self):
        """One round of the loop: serve, then wait for doorbells and control messages (not at all
        while work arrived within the last POLL_NS)."""
        if self.auto and self.serve_round():
            self.idle_since = time.monotonic_ns()
            timeout = 0
        elif self.auto and time.monotonic_ns() - self.idle_since < POLL_NS:
            timeout = 0
        else:
            # Arm the doorbells, then look once more: a request posted before the flag was
            # visible would otherwise wait for the next one.
            for ch in self.channels.values():
                ch.ring.set_need_wakeup(True)
            pending = self.auto and any(self.takeable(ch) for ch in self.channels.values())
            timeout = 0 if pending else -1
        self.dispatch(self.epoll.poll(timeout))
        if timeout != 0:
            for ch in self.channels.values():
                ch.ring.set_need_wakeup(False)
            self.idle_since = time.monotonic_ns()

    def dispatch(self, events):
        for fd, _ in events:
            if fd == self.sock.fileno():
                self.control()
            elif fd in self.by_fd:
                # (an event of a doorbell that a detach earlier in this batch closed is stale:
                # by_fd no longer has it, and its number may even belong to a new channel)
                try:
                    os.eventfd_read(fd)
                except OSError:
                    pass


def sandbox(root):
    """Confine the process: its own session, no new privileges, no core dumps, a private umask,
    and only the tenant's directory as its working directory."""
    if os.getsid(0) != os.getpid():  # (the control plane starts it as a session leader)
        os.setsid()
    os.umask(0o077)
    os.chdir(root)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        import ctypes
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except OSError:
        pass


def main(argv=None, server_class=Server):
    ap = argparse.ArgumentParser(prog="nanvix-sysvm")
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--fd", type=int, required=True)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the control plane decides when we stop
    sock = socket.socket(fileno=a.fd)
    sandbox(a.root)
    server = server_class(a.tenant, a.root, sock)
    sock.send(json.dumps({"ok": True, "pid": os.getpid()}).encode())
    server.run()
