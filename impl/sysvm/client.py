"""The control plane's handle on one tenant's system VM process: start it (jailed), call it, stop it.

Messages are JSON over a SOCK_SEQPACKET socket, with eventfds passed as SCM_RIGHTS; see server.py
for the other end. Before each start the control plane gives the tenant's directory to the
tenant's uid and makes its cgroup with the tenant's limits; the process jails itself
(jail.py) before it serves anything.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading

from nanvix.impl.errors import NanvixError, SystemVMDown
from nanvix.impl.limits import Limits
from nanvix.impl.sysvm.jail import Cgroup

MSG_MAX = 1 << 20


class SystemVM:
    module = "nanvix.impl.sysvm"  # what runs as the system VM (python -m)

    def __init__(self, tenant, root, arena_fd, doorbell_fd, notify_fds, uid, limits=Limits(), cgroup=None):
        """arena_fd: the tenant's channel arena; doorbell_fd: the eventfd its user VMs ring;
        notify_fds: {shard: eventfd} the system VM signals for completions (all kept by the
        control plane and handed to every incarnation of the process); uid: the tenant's own
        (also its gid); limits: the tenant's; cgroup: the tenant's cgroup's name."""
        self.tenant = tenant
        self.root = root
        self.uid = uid
        self.limits = limits
        self.cgroup = Cgroup(cgroup or "%s-%d" % (tenant, uid))
        self.jail = {}          # what the jail applied, as the system VM reported it
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

    @property
    def server_pid(self):
        """The host pid of the serving process (pid 1 of its namespaces; self.pid is its warden)."""
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                return int(f.read().split()[0])
        except (OSError, IndexError, ValueError, TypeError):
            return None

    def argv(self, cgroup_procs):
        return [sys.executable, "-m", self.module, "--tenant", self.tenant, "--root", self.root,
                "--arena", str(self.arena_fd), "--doorbell", str(self.doorbell_fd),
                "--uid", str(self.uid), "--limits", json.dumps(self.limits.to_dict())] + \
            ["--notify=%d:%d" % kv for kv in sorted(self.notify_fds.items())] + \
            ["--cgroup=%s" % p for p in cgroup_procs]

    def prepare(self):
        """The tenant's directory, owned by the tenant's uid (all of it, should an older host
        have left anything owned by another), and its cgroup. Returns the cgroup.procs files."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        st = os.stat(self.root)
        if (st.st_uid, st.st_gid) != (self.uid, self.uid):
            for d, dirs, files in os.walk(self.root):
                for n in dirs + files:
                    os.chown(os.path.join(d, n), self.uid, self.uid, follow_symlinks=False)
            os.chown(self.root, self.uid, self.uid)
        os.chmod(self.root, 0o700)
        if not self.cgroup.available:
            return []
        return self.cgroup.create(self.limits.sysvm_memory, self.limits.sysvm_cpu, self.limits.sysvm_pids)

    def start(self):
        procs = self.prepare()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PYTHONDONTWRITEBYTECODE": "1"}   # nothing of the host's environment
        # its own session: a Ctrl-C at the terminal is the control plane's to handle, not its
        self.proc = subprocess.Popen(self.argv(procs) + ["--fd", str(child.fileno())],
                                     pass_fds=[child.fileno(), self.arena_fd, self.doorbell_fd,
                                               *self.notify_fds.values()],
                                     env=env, close_fds=True, start_new_session=True)
        child.close()
        self.sock = parent
        self.sock.settimeout(30)
        self.epoch += 1
        hello = self._recv()
        if not hello.get("ok"):
            self.kill()
            raise SystemVMDown("system VM of %s failed to start: %s" % (self.tenant, hello.get("error", hello)))
        self.jail = hello.get("jail", {})
        return self

    def _recv(self):
        try:
            msg = self.sock.recv(MSG_MAX)
        except OSError as e:
            raise SystemVMDown("system VM of %s: %s" % (self.tenant, e))
        if not msg:
            raise SystemVMDown("system VM of %s is gone" % self.tenant)
        try:  # (it reads guest bytes: what it says is checked like what a guest writes)
            reply = json.loads(msg)
        except (ValueError, RecursionError):
            reply = None
        if not isinstance(reply, dict):
            raise SystemVMDown("system VM of %s sent a malformed reply" % self.tenant)
        return reply

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

    def give_way(self, on):
        """on: its threads run SCHED_BATCH, whose wake-ups preempt no host thread (only guest code
        at SCHED_IDLE); off: SCHED_OTHER again. Its share of the CPU is its cgroup's either way
        (see Runtime._pace_system_vms). Every thread of its cgroup, so none it made stays out."""
        tids = self.cgroup.tasks() if self.cgroup.available else []
        if not tids and self.alive:
            tids = [tid for tid in (self.pid, self.server_pid) if tid]
        policy = os.SCHED_BATCH if on else os.SCHED_OTHER
        for tid in tids:
            try:
                os.sched_setscheduler(tid, policy, os.sched_param(0))
            except OSError:   # (gone meanwhile)
                pass

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
            self.cgroup.remove()
