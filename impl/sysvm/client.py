"""The control plane's handle on one tenant's system VM process: start it, call it, stop it.

Messages are JSON over a SOCK_SEQPACKET socket, with channel memfds and eventfds passed as
SCM_RIGHTS; see server.py for the other end.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading

from nanvix.impl.errors import NanvixError, SystemVMDown

MSG_MAX = 1 << 20


class SystemVM:
    module = "nanvix.impl.sysvm"  # what runs as the system VM (python -m)

    def __init__(self, tenant, root, arena_fd, doorbell_fd, notify_fds):
        """arena_fd: the tenant's channel arena; doorbell_fd: the eventfd its user VMs ring;
        notify_fds: {shard: eventfd} the system VM signals for completions (all kept by the
        control plane and handed to every incarnation of the process)."""
        self.tenant = tenant
        self.root = root
        self.arena_fd, self.doorbell_fd = arena_fd, doorbell_fd
        self.notify_fds = dict(notify_fds)
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

    def argv(self):
        return [sys.executable, "-m", self.module, "--tenant", self.tenant, "--root", self.root,
                "--arena", str(self.arena_fd), "--doorbell", str(self.doorbell_fd)] + \
            ["--notify=%d:%d" % kv for kv in sorted(self.notify_fds.items())]

    def start(self):
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        # its own session: a Ctrl-C at the terminal is the control plane's to handle, not its
        self.proc = subprocess.Popen(self.argv() + ["--fd", str(child.fileno())],
                                     pass_fds=[child.fileno(), self.arena_fd, self.doorbell_fd,
                                               *self.notify_fds.values()],
                                     env=env, close_fds=True, start_new_session=True)
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
            raise NanvixError("system VM %s: %s" % (op, reply.get("error")))
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
