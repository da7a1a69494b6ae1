"""A real `nanvix serve` for the tests: a process on a free loopback port, on its own home."""
import os
import signal
import subprocess
import sys
import time

from nanvix.impl.serve.client import Client
from nanvix.impl.serve.floor import spawn_daemon

NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


class RunningDaemon:
    def __init__(self, home, cores=2):
        self.home = home
        self.proc, self.url, self.admin_token = spawn_daemon(home, cores)
        self._wait_health()

    def _wait_health(self):
        c = Client(self.url, "")
        end = time.monotonic() + 30
        while True:
            try:
                c.call("GET", "/v1/health")
                return
            except Exception:
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)

    def client(self, token):
        return Client(self.url, token, timeout=60)

    def admin(self):
        return self.client(self.admin_token)

    def tenant(self, name):
        """(token, Client) of a new tenant."""
        token = self.admin().call("POST", "/v1/tenants", {"tenant": name})["token"]
        return token, self.client(token)

    def env(self, token):
        return dict(os.environ, NANVIX_URL=self.url, NANVIX_TOKEN=token)

    def cli(self, token, *argv, check=True):
        p = subprocess.run([NANVIX, *argv], capture_output=True, text=True, env=self.env(token), timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("nanvix %s: %d\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
        return p

    def stop(self, sig=signal.SIGTERM, timeout=90):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self.proc.stdout.read().decode()
        self.proc.stdout.close()
        return self.proc.returncode, out


def start(tmp_path_factory, name="serve-home"):
    """A daemon on a new home, skipping where /dev/kvm is unusable."""
    import pytest
    from conftest import KVM_SKIP
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    return RunningDaemon(str(tmp_path_factory.mktemp(name)))
