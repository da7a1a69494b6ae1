"""The daemon end to end over HTTP: the issue's contract (CLI names, JSON shapes, curl), deploy,
invoke (binary safe, up to the channel's limit), logs, usage, metrics, health, and the refusal of a
second daemon on the same home."""
import json
import os
import subprocess
import urllib.request

import pytest

from conftest import example
from serve_daemon import NANVIX, start
from nanvix.impl.abi import ABI

pytestmark = pytest.mark.kvm


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = start(tmp_path_factory)
    yield d
    code, out = d.stop()
    assert code == 0, out


def test_the_contract_from_the_shell(daemon):
    created = json.loads(daemon.cli(daemon.admin_token, "tenant", "create", "acme", "--json").stdout)
    assert set(created) == {"tenant", "token"} and created["tenant"] == "acme"
    token = created["token"]
    mode = os.stat(os.path.join(daemon.home, "admin.token")).st_mode & 0o777
    assert mode == 0o600
    deployed = json.loads(daemon.cli(token, "deploy", example("echo.c"), "--name", "echo", "--json").stdout)
    assert deployed["tenant"] == "acme" and deployed["function"] == "echo"
    got = json.loads(daemon.cli(token, "invoke", "echo", "--input", "hi", "--json").stdout)
    embedded = subprocess.run([NANVIX, "run", example("echo.c"), "--input", "hi", "--json"],
                              capture_output=True, text=True, check=True, env=dict(os.environ, NANVIX_URL=""))
    want = json.loads(embedded.stdout)
    assert set(got) == set(want) and got["status"] == "ok" and got["result"] == "hi"
    curl = urllib.request.Request(daemon.url + "/v1/functions/echo/invoke", data=b"hi",
                                  headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(curl) as r:
        assert r.read() == b"hi" and r.headers["Nanvix-Status"] == "ok" and r.headers["Nanvix-Invocation"]
    listed = json.loads(daemon.cli(token, "functions", "--json").stdout)
    assert [f["function"] for f in listed["functions"]] == ["echo"]
    # `nanvix run` with a daemon: deployed under the file's name, then invoked there
    ran = json.loads(daemon.cli(token, "run", example("hello.c"), "--input", "x", "--json").stdout)
    assert ran["status"] == "ok" and ran["tenant"] == "acme"


def test_invoke_is_binary_safe_up_to_the_channel_limit(daemon):
    _, c = daemon.tenant("bin")
    with open(example("echo.c"), "rb") as f:
        c.call("PUT", "/v1/functions/echo", body=f.read())
    for data in (b"", bytes(range(256)), os.urandom(ABI["INPUT_MAX"])):
        status, r, body = c.request("POST", "/v1/functions/echo/invoke", data)
        assert status == 200 and r.getheader("nanvix-status") == "ok" and body == data
    status, _, body = c.request("POST", "/v1/functions/echo/invoke", b"x" * (ABI["INPUT_MAX"] + 1))
    assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"


def test_logs_usage_metrics_health_and_undeploy(daemon):
    _, c = daemon.tenant("obs")
    with open(example("hello.c"), "rb") as f:
        c.call("PUT", "/v1/functions/hello", body=f.read())
    status, r, _ = c.request("POST", "/v1/functions/hello/invoke", b"obs")
    iid = r.getheader("nanvix-invocation")
    rec = c.call("GET", "/v1/invocations/" + iid)
    assert rec["invocation"] == iid and rec["function"] == "hello" and rec["status"] == "ok"
    assert c.call("GET", "/v1/logs")["invocations"][0]["invocation"] == iid
    usage = c.call("GET", "/v1/usage")
    assert usage["tenant"] == "obs" and usage["door"]["invocations"] == {"ok": 1} and usage["door"]["functions"] == 1
    assert usage["limits"]["user_vms"] >= 1 and usage["kv_keys"] == 0
    metrics = daemon.admin().request("GET", "/metrics")[2].decode()
    assert 'nanvix_invocations_total{tenant="obs",status="ok"} 1' in metrics
    assert daemon.client("").call("GET", "/v1/health")["status"] == "ok"
    c.call("DELETE", "/v1/functions/hello")
    status, _, body = c.request("POST", "/v1/functions/hello/invoke", b"")
    assert status == 403
    # a built image deploys too (what `nanvix build` makes, as a tar)
    d = daemon.cli("", "build", example("hello.c"), "--json").stdout
    image = json.loads(d)["image"]
    deployed = json.loads(daemon.cli(c.token, "deploy", image, "--name", "hello2", "--json").stdout)
    assert deployed["function"] == "hello2"
    assert c.request("POST", "/v1/functions/hello2/invoke", b"")[1].getheader("nanvix-status") == "ok"


def test_a_second_daemon_on_the_same_home_is_refused(daemon):
    p = subprocess.run([NANVIX, "serve", "--listen", "127.0.0.1:0", "--home", daemon.home],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "owns" in p.stderr and daemon.url in p.stderr
    # and an embedded command on that home points at the daemon instead of opening a second host
    p = subprocess.run([NANVIX, "functions", "--json"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, NANVIX_HOME=daemon.home, NANVIX_URL=""))
    assert p.returncode == 2 and daemon.url in p.stderr


def test_a_source_build_reads_nothing_of_the_host(daemon, tmp_path):
    _, c = daemon.tenant("snoop")
    secret = os.path.join(daemon.home, "admin.token")
    for src in ('#include "%s"\n' % secret,
                'asm(".incbin \\"%s\\"");\nint nx_main(const char *i, unsigned long n) { return 0; }\n' % secret):
        status, _, body = c.request("PUT", "/v1/functions/snoop", src.encode())
        err = json.loads(body)["error"]
        assert status == 422 and err["code"] == "build_failed", body
        assert daemon.admin_token not in err["message"]


def test_limits_and_usage_through_the_door(daemon):
    token, c = daemon.tenant("limited")
    with open(example("loop.c"), "rb") as f:
        c.call("PUT", "/v1/functions/loop", body=f.read())
    admin = daemon.admin()
    got = admin.call("PUT", "/v1/tenants/limited/limits", {"invocations": 1})
    assert got["tenant"] == "limited" and got["limits"]["invocations"] == 1
    assert admin.call("GET", "/v1/tenants/limited/limits")["limits"]["invocations"] == 1
    assert c.call("GET", "/v1/usage")["limits"]["invocations"] == 1
    status, _, body = admin.request("PUT", "/v1/tenants/limited/limits", b'{"no_such_limit": 1}')
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"
    assert admin.request("PUT", "/v1/tenants/nobody/limits", b'{"invocations": 2}')[0] == 404
    # two invocations at once against a limit of one: one runs, one is refused with 429
    import threading
    answers = []

    def call():
        answers.append(daemon.client(token).request("POST", "/v1/functions/loop/invoke?timeout_ms=800", b""))
    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200, 429], statuses
    refused = json.loads(next(a[2] for a in answers if a[0] == 429))["error"]
    assert refused["code"] == "quota_exceeded"
    # the CLI, as the admin, through the daemon
    out = json.loads(daemon.cli(daemon.admin_token, "limits", "--tenant", "limited", "--set", "invocations=2",
                                "--json").stdout)
    assert out["limits"]["invocations"] == 2
    assert json.loads(daemon.cli(token, "usage", "--json").stdout)["tenant"] == "limited"
