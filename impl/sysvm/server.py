"""The system VM: one long-lived process per tenant that serves every channel of that tenant.

It is the macro-kernel half of nanvix: it owns the tenant's persistent state (files, key-value
store, log; see store.py) and answers the requests user VMs post on their channels. On this machine
a full guest kernel cannot run under the nested KVM, so the system VM is a sandboxed host process
whose kernel is the host's; its boundary is the same as a VM's: channel pages in, answers out.

Run as `python -m nanvix.impl.sysvm` by the control plane (client.SystemVM). It is handed the
tenant's channel arena (nanvix.impl.channel.arena: every channel page of the tenant plus a control
region), the tenant's doorbell eventfd (every user VM of the tenant rings it; so does the VMM when
it hands a channel out or takes one back) and a notify eventfd per VMM shard. Channels come and go
through the arena's change rings, so attaching one costs no message and no descriptor, and the loop
serves only the active ones, round-robin, a few requests each per round, so a busy user VM cannot
starve the others. A control socket (SOCK_SEQPACKET, JSON) carries only the hello, `state` and
`ping`. A malformed request gets an error completion; nothing a guest writes can stop the loop.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

from nanvix.impl.abi import ABI, EINVAL, EIO, ENOSYS, OP_CODES, WRITE_APPEND
from nanvix.impl.channel import Arena, Ring, spin, wait
from nanvix.impl.channel.arena import SHARDS_MAX
from nanvix.impl.errors import StoreError
from nanvix.impl.limits import Limits
from nanvix.impl.sysvm import jail
from nanvix.impl.sysvm.store import KV, Files, Log, escape_line

BATCH = 8               # requests per channel per round: fairness between channels
SPIN_BUDGET = 256       # nops and clock reads the C polling answers before this loop runs a round
POLL_NS = 50_000        # keep polling this long after the last request before sleeping
STORM_WAKES = 8         # doorbells in a row that brought no work: a storm, throttled ...
STORM_MAX_S = 0.005     # ... up to this long a wake-up (the storming tenant's own latency only)
MSG_MAX = 1 << 20       # a control message either way (the SOCK_SEQPACKET datagram)

OP = OP_CODES
END = struct.Struct("<Q")   # FILE_WRITE with NX_WRITE_APPEND: the file's size after it


class ServedChannel:
    """The system VM's end of one active channel slot: its ring over the slot's page."""
    __slots__ = ("slot", "gen", "uvm", "shard", "ring", "served", "in_service")

    def __init__(self, slot, gen, uvm, shard, ring):
        self.slot, self.gen, self.uvm, self.shard = slot, gen, uvm, shard
        self.ring = ring
        self.served = 0
        self.in_service = []   # taken, not yet answered (only a stepped server leaves any)


class Server:
    """Serves every channel of one tenant. `ring_class` is the channel's ring (the refinement
    harness plants bugs by handing in another); `auto` serves the rings in the loop (a stepped
    server serves only when told)."""
    ring_class = Ring
    auto = True

    def __init__(self, tenant, root, sock, arena_fd, doorbell, notify, limits=Limits()):
        """notify: {shard: eventfd} the server signals after posting on that shard's wake ring;
        limits: the tenant's (its storage is kept within them)."""
        self.tenant = tenant
        self.sock = sock
        self.limits = limits
        self.files = Files(os.path.join(root, "files"), limits)
        self.kv = KV(os.path.join(root, "kv.sqlite3"), limits)
        self.log = Log(os.path.join(root, "log"), limits)
        self.arena = Arena(arena_fd)
        self.doorbell = doorbell
        self.notify = dict(notify)
        self.channels = {}     # slot -> ServedChannel, the active slots
        self.hot = {}          # the ones worth polling: running vCPUs, and what they left behind
        self.root = root
        self.idle_since = time.monotonic_ns()
        self.empty_wakes = 0   # wake-ups in a row that found no work (a doorbell storm?)
        self.epoll = select.epoll()
        self.epoll.register(sock.fileno(), select.EPOLLIN)
        self.epoll.register(doorbell, select.EPOLLIN)
        self.rescan()  # a restarted system VM adopts the slots its predecessor was serving

    # -- channels, from the arena ------------------------------------------------------------------
    def rescan(self):
        for slot in range(self.arena.nslots):
            self.refresh(slot)

    def sync(self):
        """Take in every slot the VMM handed out or took back since the last look (only the
        shards this tenant's user VMs are on post changes: this process's notify set)."""
        for shard in self.notify:
            changed = self.arena.changes(shard)
            if changed and changed[0] == -1:
                self.rescan()
                changed = changed[1:]
            for slot in changed:
                self.refresh(slot)

    def refresh(self, slot):
        """Bring the server's view of one slot up to date with the VMM's: serve it while it is
        active in its current generation; acknowledge it idle once it is not. Only a running
        vCPU can submit, so only those channels are polled (hot); a channel whose vCPU left its
        core is polled until what it submitted is served, then armed (NEED_WAKEUP) and left
        alone: its guest rings the doorbell should it submit again before the VMM says it runs."""
        gen, active, shard, uvm, running = self.arena.state(slot)
        ch = self.channels.get(slot)
        if ch is not None and (not active or ch.gen != gen):
            del self.channels[slot]
            self.hot.pop(slot, None)
            ch = None
        if not active:
            self.arena.seen(slot, gen, idle=True)
            return
        if ch is None:
            ch = self._adopt(slot, gen, shard, uvm)
            if ch is None:
                return
        self.hot[slot] = ch  # (running, or just stopped: one more look)

    def _adopt(self, slot, gen, shard, uvm):
        # The same generation as the last server's: a restart; adopt the indices it published,
        # after checking them, and fail what it had taken (retrying could apply a request twice).
        adopt = self.arena.state_seen(slot) == gen
        if not self.arena.claim(slot, gen):  # taken back before we touched it: never served
            return None
        ring = self.ring_class(self.arena.page(slot), adopt)
        ch = ServedChannel(slot, gen, uvm, shard, ring)
        self.channels[slot] = ch
        if adopt and self.arena.broken(slot):
            ring.mark_broken("broken before this system VM started")
        elif ring.broken:  # the published indices it adopted are impossible
            self.record_broken(ch)
        if adopt:
            # Wake it whatever recover() failed: the predecessor may have died between posting
            # a completion and waking its parked guest, a wake-up nobody else owes it (the VMM
            # wakes a guest only when a completion is there to read).
            ring.recover()
            self.wake(ch)
        return ch

    def cool(self):
        """Drop from the hot set the channels whose vCPU is off its core and that have nothing
        left to take, arming their doorbell first (and looking once more after arming)."""
        for slot, ch in list(self.hot.items()):
            if self.arena.state(slot)[4]:
                continue
            ch.ring.set_need_wakeup(True)
            if not self.takeable(ch):
                del self.hot[slot]

    def wake(self, ch):
        """Tell the VMM shard holding ch's user VM that its guest has completions to read."""
        self.arena.wake(ch.shard, ch.slot)
        fd = self.notify.get(ch.shard)
        if fd is not None:
            try:
                os.eventfd_write(fd, 1)
            except OSError:
                pass

    # -- one request ---------------------------------------------------------------------------
    def handle(self, ch, r):
        """Serve one validated request: (result, output bytes)."""
        op = r.opcode
        if op == OP["nop"]:
            return 0, b""
        if op == OP["log"]:
            self.log.write("uvm-%s" % ch.uvm, r.value)
            self.arena.log(ch.slot, escape_line(r.value))
            return len(r.value), b""
        if op == OP["clock"]:
            return time.time_ns(), b""
        if op == OP["file_read"]:
            data = self.files.read(r.name, r.arg, r.out_cap)
            return len(data), data
        if op == OP["file_write"]:
            n, end = self.files.write(r.name, r.value, r.arg, r.flags)
            # an append's offset after it, where the guest left room for it (its file offset)
            return n, (END.pack(end) if r.flags & WRITE_APPEND and r.out_cap >= END.size else b"")
        if op == OP["file_size"]:
            return self.files.size(r.name), b""
        if op == OP["file_delete"]:
            return self.files.delete(r.name, r.flags), b""
        if op == OP["file_stat"]:
            out = self.files.stat(r.name)
            return len(out), out
        if op == OP["file_list"]:
            return self.files.list(r.name, r.arg, r.out_cap)
        if op == OP["file_mkdir"]:
            return self.files.mkdir(r.name), b""
        if op == OP["file_rename"]:
            return self.files.rename(r.name, r.value), b""
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
        asked to be notified). The account (served) is written before the answer, so once the
        guest has its answer the account includes it."""
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
        self.arena.served(ch.slot)
        return res, ch.ring.complete(r, res, out)

    def take(self, ch):
        """The next request of the channel (None: empty, no room, or broken)."""
        r = ch.ring.take()
        if ch.ring.broken and not self.arena.broken(ch.slot):
            self.record_broken(ch)
        return r

    def record_broken(self, ch):
        """Record the verdict in the arena, which outlives this process, before anyone is told:
        a restarted system VM keeps the channel broken."""
        self.arena.set_broken(ch.slot)
        self.log.write("sysvm", "channel of uvm-%s broken: %s" % (ch.uvm, ch.ring.broken_reason))

    def serve(self, ch, budget):
        """Serve up to budget requests of one channel. Returns how many. Nops and clock reads
        are answered by the ring itself, in C (Ring.serve_simple: the same checks as take())."""
        n = 0
        notify = False
        while n < budget:
            k, woke, more = ch.ring.serve_simple(self.arena, ch.slot, budget - n)
            n += k
            notify |= woke
            if not more or n >= budget:
                if ch.ring.broken and not self.arena.broken(ch.slot):
                    self.record_broken(ch)
                break
            r = self.take(ch)
            if r is None:
                break
            n += 1
            notify |= self.answer(ch, r)[1]
        if notify:
            self.wake(ch)
        return n

    def serve_round(self):
        return sum(self.serve(ch, BATCH) for ch in list(self.hot.values()))

    @staticmethod
    def takeable(ch):
        """The channel has a request this system VM can take now: one is pending and its answer
        has room in the CQ. (A full CQ or a broken channel is no work: waiting on it must not
        spin; the guest's next doorbell, or its delivery, wakes us.) pending() and cq_free()
        may themselves find the channel broken, hence the last test."""
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
            for fd in fds:   # those command() did not take or close (never one twice: its number may be reused)
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
        if op != "shard":  # only a shard's notify eventfd is kept; nothing else comes with fds
            while fds:     # (popped: what is left in the list is the caller's to close, once)
                os.close(fds.pop())
        if op == "state":
            self.sync()
            return {"ok": True, "pid": os.getpid(), "tenant": self.tenant,
                    "channels": {str(s): self._channel_state(ch) for s, ch in self.channels.items()}}
        if op == "shard":  # a new VMM shard holds user VMs of this tenant: its notify eventfd
            shard = req.get("shard")
            if not isinstance(shard, int) or not 0 <= shard < SHARDS_MAX or len(fds) != 1:
                raise ValueError("bad shard message")
            old = self.notify.pop(shard, None)
            if old is not None:
                os.close(old)
            self.notify[shard] = fds.pop()
            return {"ok": True}
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "usage":
            return {"ok": True, "usage": self.usage()}
        if op == "limits":  # the control plane changed the tenant's limits
            self.set_limits(Limits.from_dict(req.get("limits", {})))
            return {"ok": True}
        raise ValueError("unknown op %r" % op)

    def set_limits(self, limits):
        self.limits = self.files.limits = limits
        self.kv.set_limits(limits)
        self.log.set_limits(limits)

    def usage(self):
        """What the tenant holds in its system VM, and its limits there."""
        out = dict(self.files.usage(), **self.kv.usage(), **self.log.usage())
        out["channels_active"] = len(self.channels)
        return out

    @staticmethod
    def _channel_state(ch):
        r = ch.ring
        return {"uvm": ch.uvm, "slot": ch.slot, "gen": ch.gen, "served": ch.served + r.simple, "taken": r.taken,
                "completed": r.completed, "in_service_user_data": [r.user_data for r in ch.in_service],
                "rejected": r.rejected, "sq_head": r.sq_head, "cq_tail": r.cq_tail,
                "broken": r.broken, "broken_reason": r.broken_reason}

    # -- the loop -------------------------------------------------------------------------------
    def run(self):
        """Serve until the control plane goes away. Nothing a guest writes raises out of a step
        (requests are answered, bad ones with errors); should anything else, it is logged and the
        loop goes on, after a pause so a fault that repeats cannot spin a core."""
        self.idle_since = time.monotonic_ns()
        while True:
            try:
                self.step()
            except (SystemExit, KeyboardInterrupt):
                raise
            except Exception as e:
                self.log.write("sysvm", "loop error: %s: %s" % (type(e).__name__, str(e)[:200]))
                time.sleep(0.01)

    def step(self):
        """One round of the loop: take in channel changes, serve, then wait for doorbells and
        control messages (not at all while work arrived within the last POLL_NS)."""
        self.sync()
        if self.auto and self.serve_round():
            self.idle_since = time.monotonic_ns()
            self.empty_wakes = 0
            timeout = 0
            self.poll_hot()
        elif self.auto and time.monotonic_ns() - self.idle_since < POLL_NS:
            timeout = 0
            self.poll_hot()
        else:
            if self.auto:
                self.cool()
            # Arm the doorbells, then look once more: a request posted before the flag was
            # visible would otherwise wait for the next one.
            for ch in self.hot.values():
                ch.ring.set_need_wakeup(True)
            pending = self.auto and any(self.takeable(ch) for ch in self.hot.values())
            timeout = 0 if pending else -1
            if not pending and self.empty_wakes >= STORM_WAKES:
                # A guest rings with nothing posted, again and again: this tenant's own system VM
                # slows down (no request is lost: the rings are armed and looked at after this)
                # instead of taking the cores from every other tenant's.
                time.sleep(min(STORM_MAX_S, 25e-6 * (1 << min(self.empty_wakes - STORM_WAKES, 8))))
        if timeout == 0:
            self.dispatch(self.epoll.poll(0))
            return
        hot = list(self.hot.values()) if self.auto else []
        events, notify, answered = wait(self.epoll.fileno(), [(ch.ring, ch.slot) for ch in hot], self.arena, BATCH)
        for i in notify:
            self.wake(hot[i])
        self.dispatch(events)
        for ch in self.hot.values():
            ch.ring.set_need_wakeup(False)
        self.idle_since = time.monotonic_ns()
        if answered:
            self.empty_wakes = 0
        else:
            self.empty_wakes += 1  # (reset as soon as a round serves something)

    def poll_hot(self):
        """Poll the hot channels in C until one needs this loop, a channel changes, or POLL_NS
        pass with nothing to answer (see channel.ring.spin)."""
        hot = list(self.hot.values())
        i, notify, last = spin([(ch.ring, ch.slot) for ch in hot], self.arena, list(self.notify),
                               self.idle_since, POLL_NS, BATCH, SPIN_BUDGET)
        if last:
            self.idle_since = last
            self.empty_wakes = 0
        if notify:
            self.wake(hot[i])

    def dispatch(self, events):
        for fd, _ in events:
            if fd == self.sock.fileno():
                self.control()
            elif fd == self.doorbell:
                try:
                    os.eventfd_read(fd)
                except OSError:
                    pass


def main(argv=None, server_class=Server):
    ap = argparse.ArgumentParser(prog="nanvix-sysvm")
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--root", required=True, help="the tenant's directory (its whole filesystem, jailed)")
    ap.add_argument("--fd", type=int, required=True, help="the control socket")
    ap.add_argument("--arena", type=int, required=True, help="the tenant's channel arena (memfd)")
    ap.add_argument("--doorbell", type=int, required=True, help="the tenant's doorbell eventfd")
    ap.add_argument("--notify", action="append", default=[], metavar="SHARD:FD",
                    help="a VMM shard's notify eventfd")
    ap.add_argument("--uid", type=int, required=True, help="the tenant's uid (and gid)")
    ap.add_argument("--cgroup", action="append", default=[], metavar="PROCS",
                    help="a cgroup.procs file of the tenant's cgroup, to join")
    ap.add_argument("--limits", default="{}", help="the tenant's limits (JSON)")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the control plane decides when we stop
    sock = socket.socket(fileno=a.fd)
    notify = {int(s): int(f) for s, f in (n.split(":") for n in a.notify)}
    try:
        limits = Limits.from_dict(json.loads(a.limits))
        # Confined before a single guest byte is read; from here on this process is pid 1 of its
        # own namespaces, with the tenant's directory as "/".
        facts = jail.enter(a.root, a.uid, a.uid, a.cgroup, file_size=limits.file_size,
                           nofile=128 + SHARDS_MAX)
        server = server_class(a.tenant, "/", sock, a.arena, a.doorbell, notify, limits)
    except Exception as e:
        hello(sock, {"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
        sys.exit(1)
    hello(sock, {"ok": True, "pid": os.getpid(), "jail": facts})
    server.run()


def hello(sock, msg):
    """The first message; a control plane already gone (Ctrl-C while starting us) ends us quietly."""
    try:
        sock.send(json.dumps(msg).encode())
    except OSError:
        sys.exit(0)
