"""The front door's own rules, driven as an ASGI app over a stand-in Host (no KVM, no sockets),
so each is checked by counting what the door did, never by timing it: a deployment refused from
its headers reads none of its body; the disk is written on threads, never on the event loop's;
at most one invocation begins on the loop's thread per turn of it, whoever's burst it is; the
admin routes have threads of their own."""
import asyncio
import io
import json
import os
import tarfile
import threading

import pytest

from nanvix.impl.control.host import Function, Invocation
from nanvix.impl.errors import NotFound, QuotaExceeded
from nanvix.impl.serve import app as door_app
from nanvix.impl.serve.app import FrontDoor
from nanvix.impl.serve.credentials import Credentials


class Done:
    """What Host.start returns for an invocation that ended on the caller's thread."""

    def __init__(self, inv):
        self.inv, self.done = inv, True

    def result(self, defer=None):
        return self.inv


class StandInHost:
    """The part of nanvix.Host the door calls, recording where and in which order."""

    def __init__(self, home, limit=100):
        self.home = home
        self.runtime = type("R", (), {"sched": type("S", (), {"ncores": 2})()})()
        self.fns = {}
        self.limit = limit
        self.events = []          # (what, tenant, thread name)
        self.block = None         # an Event deploy waits on, if set

    def _note(self, what, tenant):
        self.events.append((what, tenant, threading.current_thread().name))

    def function(self, tenant, name):
        if (tenant, name) not in self.fns:
            raise NotFound(name)
        return self.fns[(tenant, name)]

    def functions(self, tenant):
        return [f for (t, _), f in self.fns.items() if t == tenant]

    def room_for(self, tenant, name):
        self._note("room_for", tenant)
        if (tenant, name) not in self.fns and len(self.functions(tenant)) >= self.limit:
            raise QuotaExceeded("tenant %s has its limit of %d deployed functions" % (tenant, self.limit))

    def deploy(self, tenant, path, name, origin=None):
        self._note("deploy", tenant)
        if self.block is not None:
            self.block.wait()
        if (tenant, name) not in self.fns and len(self.functions(tenant)) >= self.limit:
            raise QuotaExceeded("tenant %s has its limit of %d deployed functions" % (tenant, self.limit))
        with open(os.path.join(path, "image.bin"), "rb") as f:
            digest = str(len(f.read()))
        fn = self.fns[(tenant, name)] = Function(tenant, name, digest, origin)
        return fn

    def undeploy(self, tenant, name):
        self._note("undeploy", tenant)
        return self.fns.pop((tenant, name))

    def _result(self, tenant, name, data):
        return Invocation(tenant, name, 1, "ok", 0, data)

    def start(self, tenant, name, data, timeout_ms, budget_us):
        self._note("inline", tenant)
        return Done(self._result(tenant, name, data))

    def invoke(self, tenant, name, data, timeout_ms):
        self._note("worker", tenant)
        return self._result(tenant, name, data)

    def limits(self, tenant):
        self._note("limits", tenant)
        return {"functions": self.limit}

    def set_limits(self, tenant, **changes):
        self._note("set_limits", tenant)
        return {"functions": self.limit}

    def usage(self, tenant):
        return {"tenant": tenant}


@pytest.fixture
def door(tmp_path):
    creds = Credentials(str(tmp_path))
    host = StandInHost(str(tmp_path))
    d = FrontDoor(host, creds, "admin-token")
    d.tokens = {t: creds.create(t) for t in ("acme", "beta")}
    yield d
    d.close()
    creds.close()


def image_tar(size=1000):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("image.bin", b"\x90" * size), ("meta.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Request:
    """One request to the door: its body arrives in `pieces`; counts the door's receive() calls."""

    def __init__(self, method, path, token=None, body=b"", pieces=1, headers=()):
        self.scope = {"type": "http", "method": method, "path": path, "query_string": b"",
                      "headers": [(b"content-length", b"%d" % len(body))] + list(headers)}
        if token:
            self.scope["headers"].append((b"authorization", b"Bearer " + token.encode()))
        step = max(1, -(-len(body) // pieces))
        self.parts = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
        self.pieces, self.reads = len(self.parts), 0
        self.sent = []

    async def receive(self):
        self.reads += 1
        part = self.parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": bool(self.parts)}

    async def send(self, msg):
        self.sent.append(msg)

    async def run(self, door):
        await door(self.scope, self.receive, self.send)
        return self

    @property
    def status(self):
        return self.sent[0]["status"]

    @property
    def json(self):
        return json.loads(self.sent[1]["body"])


def run(coro):
    return asyncio.run(coro)


# -- 1: refused from the headers, before the body ----------------------------------------------------

def test_a_deployment_refused_from_its_headers_reads_none_of_its_body(door):
    tok = door.tokens["acme"]
    big = image_tar(4 << 20)
    tar = [(b"content-type", b"application/x-tar")]

    async def go():
        # the tenant at its requests in flight
        acme = door.tenant({"headers": [(b"authorization", b"Bearer " + tok.encode())]})
        acme.pending = door_app.PENDING_MAX
        r = await Request("PUT", "/v1/functions/f", tok, big, pieces=64, headers=tar).run(door)
        assert (r.status, r.json["error"]["code"], r.reads) == (429, "quota_exceeded", 0)
        acme.pending = 0
        # the tenant at its deployments in flight
        acme.deploys_pending = door_app.DEPLOYS_MAX
        r = await Request("PUT", "/v1/functions/f", tok, big, pieces=64, headers=tar).run(door)
        assert (r.status, r.json["error"]["code"], r.reads) == (429, "quota_exceeded", 0)
        acme.deploys_pending = 0
        # the tenant at its limit of functions (a new name; a redeployment is fine)
        door.host.fns[("acme", "old")] = Function("acme", "old", "x")
        door.host.limit = 1
        r = await Request("PUT", "/v1/functions/f", tok, big, pieces=64, headers=tar).run(door)
        assert (r.status, r.json["error"]["code"], r.reads) == (429, "quota_exceeded", 0)
        assert "limit of 1 deployed functions" in r.json["error"]["message"]
        r = await Request("PUT", "/v1/functions/old", tok, big, pieces=64, headers=tar).run(door)
        assert r.status == 201 and r.reads == r.pieces
        # the admin's token, a stranger's, and a body announced past the limit
        r = await Request("PUT", "/v1/functions/f", "admin-token", big, pieces=64, headers=tar).run(door)
        assert (r.status, r.reads) == (403, 0)
        r = await Request("PUT", "/v1/functions/f", "nvx_nobody", big, pieces=64, headers=tar).run(door)
        assert (r.status, r.reads) == (401, 0)
        r = Request("PUT", "/v1/functions/f", tok, b"x", headers=tar)
        r.scope["headers"][0] = (b"content-length", b"%d" % (door_app.IMAGE_MAX + 1))
        assert ((await r.run(door)).status, r.reads) == (413, 0)
        # an invocation refused for the tenant's requests in flight reads none of its input
        acme.pending = door_app.PENDING_MAX
        r = await Request("POST", "/v1/functions/old/invoke", tok, b"x" * 1000).run(door)
        assert (r.status, r.reads) == (429, 0)
        acme.pending = 0
    run(go())


def test_an_uploaded_image_goes_to_disk_in_batches_and_deploys(door, monkeypatch):
    monkeypatch.setattr(door_app, "UPLOAD_BATCH", 64 << 10)
    writes = []
    real = door.storage.submit

    def counted(fn, *args, **kw):
        if getattr(fn, "__name__", "") == "writelines":
            writes.append(sum(len(c) for c in args[0]))
        return real(fn, *args, **kw)
    monkeypatch.setattr(door.storage, "submit", counted)
    body = image_tar(1 << 20)

    async def go():
        return await Request("PUT", "/v1/functions/big", door.tokens["acme"], body, pieces=256,
                             headers=[(b"content-type", b"application/x-tar")]).run(door)
    r = run(go())
    assert r.status == 201, r.sent
    assert r.json["digest"] == str(1 << 20)            # the image the host got is the one sent
    # written in batches: the loop held at most one batch (and one piece) of it at a time
    assert sum(writes) == len(body) and len(writes) > 1 and max(writes) < (64 << 10) + len(body) // 256 + 1
    assert os.listdir(door.scratch) == []              # the upload's folder is gone


# -- 2: the disk is written on threads -----------------------------------------------------------------

def test_undeploy_and_tenant_creation_write_off_the_event_loop(door, monkeypatch):
    threads = []
    real = door.creds.create
    monkeypatch.setattr(door.creds, "create", lambda name: threads.append(threading.current_thread().name)
                        or real(name))

    async def go():
        loop_thread = threading.current_thread().name
        door.host.fns[("acme", "f")] = Function("acme", "f", "x")
        r = await Request("DELETE", "/v1/functions/f", door.tokens["acme"]).run(door)
        assert r.status == 200 and r.json["deleted"] is True
        r = await Request("POST", "/v1/tenants", "admin-token", b'{"tenant": "gamma"}').run(door)
        assert r.status == 201
        return loop_thread
    loop_thread = run(go())
    undeploys = [th for what, _, th in door.host.events if what == "undeploy"]
    assert undeploys and loop_thread not in undeploys and loop_thread not in threads
    assert {"tenant": "gamma"}.items() <= door.creds.tenants()[-1].items()


# -- 5: one inline start per turn of the loop --------------------------------------------------------

def test_a_burst_of_one_tenant_delays_another_by_at_most_one_inline_start(door):
    async def go():
        burst = [Request("POST", "/v1/functions/echo/invoke", door.tokens["acme"], b"a%d" % i) for i in range(16)]
        other = Request("POST", "/v1/functions/echo/invoke", door.tokens["beta"], b"b")
        order = []
        real = door.run_invocation

        async def noted(d, name, data, timeout_ms):
            order.append(("handled", d.name))   # the request's turn on the loop: it waited for the starts before it
            return await real(d, name, data, timeout_ms)
        door.run_invocation = noted
        door.host.start = (lambda start: lambda *a: order.append(("inline", a[0])) or start(*a))(door.host.start)
        await asyncio.gather(*(r.run(door) for r in burst + [other]))
        return burst, other, order
    door.host.fns[("acme", "echo")] = Function("acme", "echo", "x")
    door.host.fns[("beta", "echo")] = Function("beta", "echo", "x")
    burst, other, order = run(go())
    assert all(r.status == 200 for r in burst + [other])
    assert [r.sent[1]["body"] for r in burst] == [b"a%d" % i for i in range(16)] and other.sent[1]["body"] == b"b"
    inline_before_other = order[:order.index(("handled", "beta"))].count(("inline", "acme"))
    assert order.count(("inline", "acme")) + order.count(("inline", "beta")) == 1, order
    assert inline_before_other <= 1
    # the rest ran on the tenants' own threads
    assert sum(1 for what, _, _ in door.host.events if what == "worker") == 16


# -- 6: the admin routes have threads of their own -----------------------------------------------------

def test_limits_are_answered_while_every_builder_is_busy(door):
    door.host.block = threading.Event()

    async def go():
        # two slow builds hold both builders
        builds = [asyncio.ensure_future(Request("PUT", "/v1/functions/f%d" % i, door.tokens[t], image_tar(),
                                                headers=[(b"content-type", b"application/x-tar")]).run(door))
                  for i, t in enumerate(("acme", "beta"))]
        try:
            while sum(1 for what, *_ in door.host.events if what == "deploy") < 2:
                await asyncio.sleep(0.001)
            # (a hang guard, not a timing: with the builders' threads, these wait for the builds)
            get = await asyncio.wait_for(Request("GET", "/v1/tenants/acme/limits", "admin-token").run(door), 60)
            put = await asyncio.wait_for(Request("PUT", "/v1/tenants/acme/limits", "admin-token",
                                                 b'{"functions": 5}').run(door), 60)
        finally:
            door.host.block.set()
            await asyncio.gather(*builds)
        return get, put
    get, put = run(go())
    assert get.status == 200 and get.json == {"tenant": "acme", "limits": {"functions": 100}}
    assert put.status == 200
    ran = {what: th for what, _, th in door.host.events if what in ("limits", "set_limits")}
    assert set(ran) == {"limits", "set_limits"} and not any(th.startswith("nanvix-build") for th in ran.values())
