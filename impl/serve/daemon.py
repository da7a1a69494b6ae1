"""The daemon process: own the home, open the Host, listen, serve until SIGTERM/SIGINT, stop.

Start: take <home>/serve.lock exclusively (a second daemon, or embedded commands on the same
home, get a clear refusal), make or read <home>/admin.token (0600), bind the socket, open the Host,
write <home>/serve.json ({"pid", "url"}), serve. Stop (SIGTERM or SIGINT): stop accepting, let
requests in flight finish (an invocation ends by its own deadline at the latest), then stop every
system VM and close the Host. Everything acknowledged (a tenant, a deployment, what a function
wrote to its store) was on disk before its answer was sent, so a kill -9 loses none of it.
"""
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import threading

import uvicorn

from nanvix.impl.errors import InvalidArgument
from nanvix.impl.serve.app import FrontDoor
from nanvix.impl.serve.credentials import Credentials, HomeLock, admin_token
from nanvix.impl.serve.protocol import uvicorn_options

GRACE_S = 70   # longer than the longest invocation budget (60 s) plus the host's watchdog
CONNECTIONS_MAX = 4096   # client connections at once; past it a new one is answered 503 and closed
FD_RESERVE = 4096        # descriptors kept for the host itself: KVM VMs and vCPUs, memfds, system VMs
CONNECTIONS_MIN = 16


def fd_budget(want=CONNECTIONS_MAX):
    """Raise this process's soft RLIMIT_NOFILE to what `want` connections and the host need (up
    to the hard limit), and return how many connections it then has room for, so the door
    refuses the one past it (503) before accept() or a KVM call meets EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = want + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return want
    room = min(want, soft - FD_RESERVE)
    if room < CONNECTIONS_MIN:
        raise InvalidArgument("this process may open %d files (hard limit %d): the daemon needs at least %d "
                              "(raise `ulimit -Hn`)" % (soft, hard, FD_RESERVE + CONNECTIONS_MIN))
    return room


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgument("--listen takes ADDR:PORT, got %r" % text)
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(listen=None, socket_path=None):
    """The listening socket and the URL clients use."""
    if socket_path:
        path = os.path.abspath(socket_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)   # (we hold the home's lock: no live daemon of this home uses it)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, 0o660)
        url = "unix:" + path
    else:
        host, port = parse_listen(listen or "127.0.0.1:8790")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        port = s.getsockname()[1]
        url = "http://%s:%d" % ("[%s]" % host if family == socket.AF_INET6 else host, port)
    s.listen(2048)
    s.set_inheritable(False)
    return s, url


class _Server(uvicorn.Server):
    """uvicorn's server with our signal handling: SIGTERM and SIGINT stop it gracefully (a second
    one forces it), and the process then exits normally instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


class Daemon:
    """One daemon of one home: Daemon(home, listen=..., socket_path=...).run() serves until
    stopped; start() serves on a thread instead (the demo and the bench run one in-process)."""

    def __init__(self, home=None, listen=None, socket_path=None, host=None, **host_options):
        from nanvix.impl.cli.common import version
        from nanvix.impl.control.host import Host
        from nanvix.impl.control.runtime import default_home
        self.home = os.path.abspath(home or (host.home if host else default_home()))
        self.lock = HomeLock(self.home, exclusive=True)
        self.host = self.door = self.creds = self.server = self.thread = self.sock = None
        self.connections = 0
        self.url, self.owns_host = "", host is None
        try:
            self.connections = fd_budget()
            self.token = admin_token(self.home)
            self.sock, self.url = bind(listen, socket_path)
            self.creds = Credentials(self.home)
            self.host = host or Host(home=self.home, **host_options)
            self.door = FrontDoor(self.host, self.creds, self.token, version())
            config = uvicorn.Config(self.door, lifespan="on", timeout_keep_alive=30,
                                    limit_concurrency=self.connections,
                                    timeout_graceful_shutdown=GRACE_S, **uvicorn_options())
            self.server = _Server(config)
        except BaseException:
            self._release()
            raise

    def _write_info(self):
        path = os.path.join(self.home, "serve.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"pid": os.getpid(), "url": self.url}, f)
        os.replace(path + ".tmp", path)

    def run(self):
        """Serve until SIGTERM/SIGINT (or stop()), then shut down cleanly."""
        self._write_info()
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self._release()

    def start(self):
        """Serve on a thread; returns once the door is open."""
        self.thread = threading.Thread(target=self.run, name="nanvix-serve", daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the daemon did not start")
            self.thread.join(0.01)
        return self

    def stop(self):
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join()

    def _release(self):
        if self.url.startswith("unix:"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.url[5:])
        if self.door is not None:
            self.door.close()
        if self.host is not None and self.owns_host:
            self.host.close()
        if self.creds is not None:
            self.creds.close()
        if self.sock is not None:
            self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.home, "serve.json"))
        self.lock.release()
        self.door = self.host = self.creds = None


def serve(home=None, listen=None, socket_path=None, cores=0, announce=print, fair_cores=True):
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s nanvix serve: %(message)s")
    d = Daemon(home, listen, socket_path, cores=cores, fair_cores=fair_cores)
    announce("nanvix serve: %s, home %s (admin token in %s, pid %d)"
             % (d.url, d.home, os.path.join(d.home, "admin.token"), os.getpid()))
    d.run()
    announce("nanvix serve: stopped")
    return 0
