"""The README's daemon example runs as written (on a free port and a temporary home): curl
deploys and invokes, and the contract's commands print the contract's JSON."""
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from conftest import KVM_SKIP, ROOT

pytestmark = pytest.mark.kvm


def readme_daemon_example():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("## The daemon", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_the_readme_daemon_example_runs(tmp_path):
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    script = readme_daemon_example().replace("127.0.0.1:8790", "127.0.0.1:%d" % free_port()) \
        .replace("/tmp/nanvix-daemon", str(tmp_path / "home"))
    env = dict(os.environ)
    env.pop("NANVIX_URL", None)
    p = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180,
                       env=dict(env, PATH=os.path.dirname(sys.executable) + ":" + env["PATH"]))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [line for line in p.stdout.splitlines() if not line.startswith("nanvix serve:")]
    deployed, invoked = json.loads(lines[0]), json.loads(lines[1])
    assert deployed["tenant"] == "acme" and deployed["function"] == "echo"
    assert invoked["status"] == "ok" and invoked["result"] == "hi"
    assert lines[2] == "hi"   # curl's invoke: the result is the body
    hello = json.loads(lines[3])
    assert hello["function"] == "hello" and hello["tenant"] == "acme"
    logs = json.loads(lines[4])
    assert logs["tenant"] == "acme" and [r["function"] for r in logs["invocations"]] == ["echo", "echo"]
    assert "stopped" in p.stdout + p.stderr
