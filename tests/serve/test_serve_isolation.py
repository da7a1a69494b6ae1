"""Credentials at the door: a tenant's token acts on its own tenant only. Another tenant's token
on A's function, invocation or logs is refused (403, answered exactly as for a function nobody
has, so nothing about A leaks) and changes nothing; no token or an unknown one is 401; the admin
token runs no function and a tenant's token does no admin operation (403)."""
import json

import pytest

from conftest import example
from serve_daemon import start

pytestmark = pytest.mark.kvm


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = start(tmp_path_factory, "serve-isolation")
    yield d
    d.stop()


def error(answer):
    status, _, body = answer
    return status, json.loads(body)["error"]["code"]


def test_another_tenants_token_is_refused_and_changes_nothing(daemon):
    a_token, a = daemon.tenant("alice")
    b_token, b = daemon.tenant("bob")
    with open(example("counter.c"), "rb") as f:
        counter = f.read()
    with open(example("echo.c"), "rb") as f:
        echo = f.read()
    a.call("PUT", "/v1/functions/echo", body=echo)
    a.call("PUT", "/v1/functions/counter", body=counter)
    before = a.call("GET", "/v1/functions")
    status, r, body = a.request("POST", "/v1/functions/counter/invoke", b"")
    count, a_iid = int(body), r.getheader("nanvix-invocation")

    # bob, with his own valid token, on every route that names alice's things
    assert error(b.request("POST", "/v1/functions/echo/invoke", b"hi")) == (403, "forbidden")
    assert error(b.request("POST", "/v1/functions/counter/invoke", b"")) == (403, "forbidden")
    assert error(b.request("GET", "/v1/functions/echo")) == (403, "forbidden")
    assert error(b.request("DELETE", "/v1/functions/echo")) == (403, "forbidden")
    assert error(b.request("GET", "/v1/invocations/" + a_iid)) == (403, "forbidden")
    # ... answered as for a name nobody has: bob cannot tell alice's functions apart
    assert b.request("GET", "/v1/functions/echo")[2].replace(b"echo", b"X") == \
        b.request("GET", "/v1/functions/nothing")[2].replace(b"nothing", b"X")
    assert b.call("GET", "/v1/functions") == {"tenant": "bob", "functions": []}
    assert b.call("GET", "/v1/logs")["invocations"] == []
    assert b.call("GET", "/v1/usage")["door"]["invocations_total"] == 0
    # bob deploying "echo" makes bob's own echo; alice's is untouched
    b.call("PUT", "/v1/functions/echo", body=counter)

    # no token, an unknown token, a malformed header
    for token in ("", "nvx_" + "A" * 43, a_token + "x", a_token[:-1]):
        c = daemon.client(token)
        assert error(c.request("POST", "/v1/functions/echo/invoke", b"hi")) == (401, "unauthorized")
        assert error(c.request("GET", "/v1/functions")) == (401, "unauthorized")
    assert error(daemon.client("").request("GET", "/v1/functions", headers={"Authorization": "Basic " + a_token})) \
        == (401, "unauthorized")
    # the admin runs no function; a tenant does no admin operation
    assert error(daemon.admin().request("POST", "/v1/functions/echo/invoke", b"hi")) == (403, "forbidden")
    assert error(b.request("POST", "/v1/tenants", b'{"tenant": "mallory"}')) == (403, "forbidden")
    assert error(b.request("GET", "/v1/tenants")) == (403, "forbidden")
    assert error(b.request("GET", "/metrics")) == (403, "forbidden")
    assert error(b.request("PUT", "/v1/tenants/alice/limits", b'{"user_vms": 1}')) == (403, "forbidden")
    assert error(b.request("PUT", "/v1/tenants/bob/limits", b'{"user_vms": 999}')) == (403, "forbidden")
    assert "mallory" not in [t["tenant"] for t in daemon.admin().call("GET", "/v1/tenants")["tenants"]]

    # nothing of alice's changed: her functions, her counter (bob's refused calls ran nothing)
    assert a.call("GET", "/v1/functions") == before
    assert a.request("POST", "/v1/functions/echo/invoke", b"still mine")[2] == b"still mine"
    assert int(a.request("POST", "/v1/functions/counter/invoke", b"")[2]) == count + 1
    assert a.call("GET", "/v1/usage")["door"]["invocations"] == {"ok": 3}
    # and bob's echo (a counter) counts in bob's store, not alice's
    assert b.request("POST", "/v1/functions/echo/invoke", b"")[2] == b"1"
