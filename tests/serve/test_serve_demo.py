"""`nanvix demo` runs against a daemon it starts itself, over HTTP, and says so."""
import json
import os
import subprocess

import pytest

from serve_daemon import NANVIX

pytestmark = pytest.mark.kvm


def test_the_demo_runs_over_its_own_daemon(kvm):
    env = dict(os.environ)
    env.pop("NANVIX_URL", None)
    p = subprocess.run([NANVIX, "demo", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    summary = json.loads(p.stdout)["summary"]
    assert summary["ok"] and summary["http_url"].startswith("http://127.0.0.1:")
    assert summary["foreign_token_status"] == 403 and summary["concurrent_ok"] == 16
