"""The front door: a bare ASGI application over one embedded nanvix.Host.

Routes (v1; every error is JSON {"error": {"code", "message"}} with a stable code):

    GET    /v1/health                          anyone      {"status", "version", "uptime_s"}
    GET    /metrics                            admin       Prometheus text
    POST   /v1/tenants          {"tenant": N}  admin       201 {"tenant", "token"} (the token, once)
    GET    /v1/tenants                         admin       {"tenants": [{"tenant", "created"}]}
    GET|PUT /v1/tenants/<t>/limits {...}       admin       {"tenant", "limits"}: the tenant's limits, or
                                                           some changed (Host.set_limits)
    GET    /v1/usage                           tenant      the tenant's usage (Host.usage) and the door's
                                                           counts of it ("door")
    GET    /v1/functions                       tenant      {"tenant", "functions": [...]}
    PUT|POST /v1/functions/<name>              tenant      deploy: the body is C source, or a built
                                                           image as application/x-tar; 201 {"tenant", "function", ...}
    GET    /v1/functions/<name>                tenant      the function
    DELETE /v1/functions/<name>                tenant      undeploy
    POST   /v1/functions/<name>/invoke         tenant      body = input; response body = result
    GET    /v1/invocations/<id>                tenant      one invocation and its log
    GET    /v1/logs[?function=F&limit=N]       tenant      recent invocations and their logs

A tenant is whoever its bearer token belongs to: every tenant route acts on the caller's own
tenant, so there is no way to name another. A function or invocation outside the caller's tenant
(another tenant's, or none at all: the two are answered alike, so nothing leaks) is 403.

Invoke answers the result as the body (binary safe) with the invocation in headers: Nanvix-Status
(ok | error | crashed | timeout), Nanvix-Invocation, Nanvix-Exit-Status, Nanvix-Start-Us,
Nanvix-Run-Us, Nanvix-Io-Requests, Nanvix-Host-Us (the invocation's time on its thread). With `Accept: application/json` the body is instead the JSON
object `nanvix run --json` prints. `?timeout_ms=N` sets the budget (default 10000, at most 60000).

Invocations and deployments block (KVM, gcc, the system VM): they run on threads, each tenant on
threads of its own, so the event loop never waits on them and one tenant's work never queues
behind another's. The exception is an invocation that can begin at once (a user VM of it ready, a
core idle): it begins on the event loop's thread and, if it has not ended after INLINE_US, goes
on on a worker. One such start per turn of the event loop at most (the others of that turn go to
workers), so a request, whoever's burst it arrives in, waits for at most one of them (INLINE_US
and the start of its user VM). Every tenant has at most PENDING_MAX requests in the door at once,
DEPLOYS_MAX of them deployments (429 past it); a request is admitted, and a deployment checked
against the tenant's limit of functions, from its headers, before any of its body is read. The
disk (a deployment's upload, the registry's fsynced writes) is written on threads, never on the
event loop's, and the admin routes have threads of their own, so neither a slow disk nor a slow
build holds up anyone's invocations or the limits.
"""
import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from nanvix.impl.abi import ABI
from nanvix.impl.control.host import FUNCTION_NAME
from nanvix.impl.errors import (BuildError, GuestError, InvalidArgument, NanvixError, NotFound,
                                QuotaExceeded, SystemVMDown)
from nanvix.impl.serve import jail
from nanvix.impl.serve.credentials import Conflict, digest

log = logging.getLogger("nanvix.serve")

INPUT_MAX = ABI["INPUT_MAX"]
JSON_MAX = 64 << 10
IMAGE_MAX = 64 << 20
BODY_TIMEOUT_S = 30.0
TIMEOUT_MS_DEFAULT, TIMEOUT_MS_MAX = 10_000, 60_000
# Invocations of one tenant running at once, per core of the host; more wait for a thread, holding
# no user VM. (Past a few per core they only queue inside the runtime, where each holds a user VM
# of the tenant's quota: measured, 16 at once on 2 cores ran a tenant out of its 64.)
INVOKERS_PER_CORE = 2
# How long an invocation begun on the event loop's thread may run there before a worker takes it
# on (about the longest another request waits for it): an echo's vCPU needs ~100-150 us.
INLINE_US = 1000
PENDING_MAX = 256
DEPLOYS_MAX = 2           # a tenant's deployments in the door at once (one builds, one uploads)
UPLOAD_BATCH = 1 << 20    # an upload is written to its file in batches of this size, off the loop
BUILDERS = 2
RECORDS_PER_TENANT = 1000
PREFIX = b"/v1/"


class ApiError(Exception):
    def __init__(self, status, code, message, close=False):
        super().__init__(message)
        self.status, self.code, self.close = status, code, close


class ClientGone(Exception):
    """The client disconnected before its request was read."""


# Exceptions of the Host as HTTP answers: (status, stable code).
ERRORS = ((InvalidArgument, 400, "bad_request"), (BuildError, 422, "build_failed"),
          (GuestError, 422, "bad_image"), (QuotaExceeded, 429, "quota_exceeded"),
          (SystemVMDown, 503, "system_vm_down"), (Conflict, 409, "conflict"),
          (NotFound, 404, "not_found"), (NanvixError, 500, "internal"))

JSON_HEADERS = [(b"content-type", b"application/json")]


@contextlib.contextmanager
def host_errors():
    """The Host's errors as HTTP answers."""
    try:
        yield
    except ApiError:
        raise
    except NanvixError as e:
        for cls, status, code in ERRORS:
            if isinstance(e, cls):
                raise ApiError(status, code, str(e).strip()[:16000])
        raise


def json_body(obj):
    return json.dumps(obj).encode()


class TenantDoor:
    """What the door keeps per tenant: its threads, its requests in flight, its counters and its
    recent invocations."""

    def __init__(self, name, cores):
        self.name = name
        self.invokers = ThreadPoolExecutor(max(2, INVOKERS_PER_CORE * cores), thread_name_prefix="nanvix-invoke-" + name)
        self.deploying = asyncio.Lock()
        self.pending = 0
        self.deploys_pending = 0
        self.counts = collections.Counter()      # invocation status -> count
        self.deploys = 0
        self.bytes_in = self.bytes_out = 0
        self.seconds = 0.0
        self.records = collections.OrderedDict()  # invocation id -> record (newest last)


class FrontDoor:
    def __init__(self, host, credentials, admin_token, version="unknown"):
        self.host, self.creds = host, credentials
        self.admin_digest = digest(admin_token)
        self.version = version
        self.doors = {}
        self.builders = ThreadPoolExecutor(BUILDERS, thread_name_prefix="nanvix-build")
        self.storage = ThreadPoolExecutor(2, thread_name_prefix="nanvix-store")   # uploads, undeploys
        self.admins = ThreadPoolExecutor(2, thread_name_prefix="nanvix-admin")    # tenants, limits
        self.inline_free = True   # no invocation has begun on the loop's thread in this turn yet
        self.scratch = os.path.join(host.home, "builds")
        shutil.rmtree(self.scratch, ignore_errors=True)   # what a killed daemon left
        os.makedirs(self.scratch, mode=0o700, exist_ok=True)
        self.started = time.time()
        self.boot = "%x" % int(self.started)
        self.ids = itertools.count(1)
        self.responses = collections.Counter()   # HTTP status -> count
        self.closing = False

    # -- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            return await self.lifespan(receive, send)
        if kind != "http":
            return
        try:
            status, headers, body = await self.route(scope, receive)
        except ApiError as e:
            status, headers, body = e.status, list(JSON_HEADERS), json_body(
                {"error": {"code": e.code, "message": str(e)}})
            if e.close:
                headers.append((b"connection", b"close"))
        except ClientGone:
            return
        except Exception:   # a bug of ours: logged, answered 500, the daemon goes on
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            status, headers, body = 500, list(JSON_HEADERS), json_body(
                {"error": {"code": "internal", "message": "internal error (see the daemon's log)"}})
        self.responses[status] += 1
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive, send):
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.closing = True
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self):
        """After the server stopped: let every invocation and build in flight end."""
        self.closing = True
        for door in self.doors.values():
            door.invokers.shutdown(wait=True)
        for pool in (self.builders, self.storage, self.admins):
            pool.shutdown(wait=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- routing -----------------------------------------------------------------------------------
    async def route(self, scope, receive):
        method, path = scope["method"], scope["path"]
        parts = path.split("/")   # "", "v1", resource, ...
        if self.closing and path != "/v1/health":
            raise ApiError(503, "unavailable", "the daemon is shutting down", close=True)
        if len(parts) >= 3 and parts[1] == "v1":
            res, rest = parts[2], parts[3:]
            if res == "functions":
                tenant = self.tenant(scope)
                if len(rest) == 2 and rest[1] == "invoke" and method == "POST":
                    return await self.invoke(scope, receive, tenant, rest[0])
                if not rest or rest == [""]:
                    return self.allow(method, "GET") or self.list_functions(tenant)
                if len(rest) == 1:
                    if method in ("PUT", "POST"):
                        return await self.deploy(scope, receive, tenant, rest[0])
                    if method == "GET":
                        return self.ok(self.owned_function(tenant, rest[0]).to_dict())
                    if method == "DELETE":
                        return await self.undeploy(tenant, rest[0])
                    raise self.not_allowed(method)
            elif res == "invocations" and len(rest) == 1:
                tenant = self.tenant(scope)
                self.allow(method, "GET")
                return self.ok(self.record(tenant, rest[0]))
            elif res == "logs" and not rest:
                tenant = self.tenant(scope)
                self.allow(method, "GET")
                return self.logs(tenant, scope)
            elif res == "usage" and not rest:
                tenant = self.tenant(scope)
                self.allow(method, "GET")
                return self.ok(await self.usage(tenant))
            elif res == "tenants":
                self.admin(scope)
                if not rest:
                    if method == "POST":
                        return await self.create_tenant(scope, receive)
                    self.allow(method, "GET")
                    return self.ok({"tenants": self.creds.tenants()})
                if len(rest) == 2 and rest[1] == "limits":
                    self.allow(method, "GET", "PUT")
                    return await self.limits(scope, receive, method, rest[0])
            elif res == "health" and not rest:
                self.allow(method, "GET")
                return self.ok({"status": "stopping" if self.closing else "ok", "version": self.version,
                                "uptime_s": round(time.time() - self.started, 1)})
        elif path == "/metrics":
            self.admin(scope)
            self.allow(method, "GET")
            return 200, [(b"content-type", b"text/plain; version=0.0.4")], self.metrics().encode()
        raise ApiError(404, "not_found", "no such route: %s %s" % (method, path[:200]))

    @staticmethod
    def ok(obj, status=200):
        return status, list(JSON_HEADERS), json_body(obj)

    @staticmethod
    def not_allowed(method):
        return ApiError(405, "method_not_allowed", "method %s is not allowed here" % method[:16])

    def allow(self, method, *allowed):
        if method not in allowed:
            raise self.not_allowed(method)

    # -- who is calling ------------------------------------------------------------------------------
    @staticmethod
    def bearer(scope):
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return token.strip()
                break
        raise ApiError(401, "unauthorized", "send a token: Authorization: Bearer <token>")

    def tenant(self, scope):
        """The caller's tenant (401 for no token, or one nobody holds; 403 for the admin's)."""
        token = self.bearer(scope)
        tenant = self.creds.tenant_of(token)
        if tenant is None:
            if digest(token) == self.admin_digest:
                raise ApiError(403, "forbidden", "the admin token acts on no tenant's functions: use a tenant's token")
            raise ApiError(401, "unauthorized", "unknown token")
        door = self.doors.get(tenant)
        if door is None:
            door = self.doors[tenant] = TenantDoor(tenant, self.host.runtime.sched.ncores)
        return door

    def admin(self, scope):
        token = self.bearer(scope)
        if digest(token) != self.admin_digest:
            if self.creds.tenant_of(token) is not None:
                raise ApiError(403, "forbidden", "this needs the admin token")
            raise ApiError(401, "unauthorized", "unknown token")

    def owned_function(self, door, name):
        try:
            return self.host.function(door.name, name)
        except NotFound:
            raise ApiError(403, "forbidden", "tenant %s has no function %r" % (door.name, name[:64]))

    # -- bodies --------------------------------------------------------------------------------------
    @staticmethod
    def announced(scope, limit):
        """413 now if the request's Content-Length is past `limit` (before anything is read)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    raise ApiError(400, "bad_request", "a malformed Content-Length", close=True)
                if int(value) > limit:
                    raise ApiError(413, "payload_too_large", "the body of %s bytes is past the %d this takes"
                                   % (int(value), limit), close=True)
                return

    async def chunks(self, scope, receive, limit):
        """The body's chunks as they arrive: at most `limit` bytes (413 past it), within
        BODY_TIMEOUT_S (408), ClientGone if the client left."""
        self.announced(scope, limit)
        size, deadline = 0, asyncio.get_running_loop().time() + BODY_TIMEOUT_S
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    msg = await receive()
            except TimeoutError:
                raise ApiError(408, "request_timeout", "the body did not arrive within %d s" % BODY_TIMEOUT_S,
                               close=True)
            if msg["type"] == "http.disconnect":
                raise ClientGone()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "payload_too_large", "the body is past the %d bytes this takes" % limit,
                               close=True)
            yield chunk
            if not msg.get("more_body"):
                return

    async def body(self, scope, receive, limit):
        chunks = [c async for c in self.chunks(scope, receive, limit)]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def upload(self, scope, receive, limit, folder):
        """The body written to <folder>/body, in batches on the storage threads (the loop never
        writes to a disk, and holds at most UPLOAD_BATCH of it); returns (path, size)."""
        loop = asyncio.get_running_loop()
        path = os.path.join(folder, "body")
        f = await loop.run_in_executor(self.storage, open, path, "wb")
        try:
            batch, held, size = [], 0, 0
            async for chunk in self.chunks(scope, receive, limit):
                batch.append(chunk)
                held += len(chunk)
                size += len(chunk)
                if held >= UPLOAD_BATCH:
                    await loop.run_in_executor(self.storage, f.writelines, batch)
                    batch, held = [], 0
            if batch:
                await loop.run_in_executor(self.storage, f.writelines, batch)
        finally:
            await loop.run_in_executor(self.storage, f.close)
        return path, size

    async def json_request(self, scope, receive):
        raw = await self.body(scope, receive, JSON_MAX)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "bad_request", "the body is not JSON")
        if not isinstance(obj, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        return obj

    async def blocking(self, pool, fn, *args):
        """Run a blocking call of the Host on `pool`; its errors become HTTP answers."""
        with host_errors():
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def admit(self, door):
        if door.pending >= PENDING_MAX:
            raise ApiError(429, "quota_exceeded", "tenant %s has %d requests in flight already"
                           % (door.name, PENDING_MAX))
        door.pending += 1

    # -- invoke ----------------------------------------------------------------------------------------
    async def invoke(self, scope, receive, door, name):
        timeout_ms, as_json = TIMEOUT_MS_DEFAULT, False
        if scope["query_string"]:
            q = parse_qs(scope["query_string"].decode("latin-1"))
            if "timeout_ms" in q:
                v = q["timeout_ms"][0]
                if not v.isdigit() or not 1 <= int(v) <= TIMEOUT_MS_MAX:
                    raise ApiError(400, "bad_request", "timeout_ms must be 1-%d" % TIMEOUT_MS_MAX)
                timeout_ms = int(v)
        for hname, value in scope["headers"]:
            if hname == b"accept" and b"application/json" in value:
                as_json = True
        self.owned_function(door, name)
        self.announced(scope, INPUT_MAX)
        self.admit(door)   # (before the body is read: a refused request costs nothing)
        t0 = time.perf_counter()
        try:
            data = await self.body(scope, receive, INPUT_MAX)
            r, host_us = await self.run_invocation(door, name, data, timeout_ms)
        except ApiError as e:
            if e.status == 404:   # undeployed while we waited: as for any function not its own
                raise ApiError(403, "forbidden", "tenant %s has no function %r" % (door.name, name[:64]))
            raise
        finally:
            door.pending -= 1
        iid = "%s-%d" % (self.boot, next(self.ids))
        door.counts[r.status] += 1
        door.seconds += time.perf_counter() - t0
        door.bytes_in += len(data)
        door.bytes_out += len(r.result)
        door.records[iid] = {"invocation": iid, "function": name, "status": r.status, "exit_status": r.exit_status,
                             "time": time.time(), "start_us": r.start_us, "run_us": r.run_us,
                             "detail": r.detail, "log": r.log}
        if len(door.records) > RECORDS_PER_TENANT:
            door.records.popitem(last=False)
        if as_json:
            return 200, [(b"content-type", b"application/json"), (b"nanvix-invocation", iid.encode()),
                         (b"nanvix-status", r.status.encode())], json_body(r.to_dict())
        return 200, [(b"content-type", b"application/octet-stream"), (b"nanvix-invocation", iid.encode()),
                     (b"nanvix-status", r.status.encode()),
                     (b"nanvix-exit-status", b"%d" % (r.exit_status if r.exit_status is not None else -1)),
                     (b"nanvix-start-us", b"%.1f" % r.start_us), (b"nanvix-run-us", b"%.1f" % r.run_us),
                     (b"nanvix-io-requests", b"%d" % r.io_requests), (b"nanvix-host-us", b"%.1f" % host_us)], r.result

    async def run_invocation(self, door, name, data, timeout_ms):
        """The invocation and its time on the threads that ran it. Begun on the event loop's own
        thread when that cannot block (Host.start: a user VM of the function ready, its system VM
        running, a core idle), which saves a hand-off to a thread and one back (~100 us each
        here); its vCPU then stays at most INLINE_US on this thread before a worker takes it on.
        Else, and for the rest of a longer invocation, on the tenant's threads."""
        t0 = time.perf_counter_ns()
        loop = asyncio.get_running_loop()
        started = None
        if self.inline_free:   # one start on this thread per turn of the loop (see the module's doc)
            with host_errors():
                started = self.host.start(door.name, name, data, timeout_ms, INLINE_US)
            if started is not None:
                self.inline_free = False
                loop.call_soon(self._inline_again)   # after every callback ready now has run
                if started.done:   # (its user VM is released once we have answered)
                    with host_errors():
                        return started.result(loop.call_soon), (time.perf_counter_ns() - t0) / 1000
        if started is None:
            return await self.blocking(door.invokers, self._invoke, door.name, name, data, timeout_ms)
        r = await self.blocking(door.invokers, started.result)
        return r, (time.perf_counter_ns() - t0) / 1000

    def _inline_again(self):
        self.inline_free = True

    def _invoke(self, tenant, name, data, timeout_ms):
        """On a tenant's thread: the invocation, and the time it took there (what the door adds
        is the rest of the request's time)."""
        t0 = time.perf_counter_ns()
        r = self.host.invoke(tenant, name, data, timeout_ms)
        return r, (time.perf_counter_ns() - t0) / 1000

    # -- functions -------------------------------------------------------------------------------------
    def list_functions(self, door):
        return self.ok({"tenant": door.name, "functions": [f.to_dict() for f in self.host.functions(door.name)]})

    async def deploy(self, scope, receive, door, name):
        if not FUNCTION_NAME.fullmatch(name):
            raise ApiError(400, "bad_request", "function names are 1-64 of [A-Za-z0-9_.-], starting with a "
                           "letter or digit")
        ctype = b""
        for hname, value in scope["headers"]:
            if hname == b"content-type":
                ctype = value.split(b";")[0].strip().lower()
        is_image = ctype == b"application/x-tar"
        limit = IMAGE_MAX if is_image else jail.SOURCE_MAX
        # refused from the headers alone, before any of the body is read
        self.announced(scope, limit)
        if door.deploys_pending >= DEPLOYS_MAX:
            raise ApiError(429, "quota_exceeded", "tenant %s has %d deployments in flight already"
                           % (door.name, DEPLOYS_MAX), close=True)
        with host_errors():
            self.host.room_for(door.name, name)
        self.admit(door)
        door.deploys_pending += 1
        loop = asyncio.get_running_loop()
        folder = None
        try:
            folder = await loop.run_in_executor(self.storage, lambda: tempfile.mkdtemp(dir=self.scratch,
                                                                                      prefix=door.name + "-"))
            if is_image:
                body, size = await self.upload(scope, receive, limit, folder)
            else:
                body = await self.body(scope, receive, limit)
                size = len(body)
            if not size:
                raise ApiError(400, "bad_request", "the body is empty: send the function's C source, or its "
                               "built image as application/x-tar")
            async with door.deploying:   # one deployment of a tenant at a time; builds of BUILDERS tenants at once
                fn = await self.blocking(self.builders, self._deploy, door.name, name, body, size, folder)
        finally:
            door.pending -= 1
            door.deploys_pending -= 1
            if folder is not None:
                await loop.run_in_executor(self.storage, shutil.rmtree, folder, True)
        door.deploys += 1
        return self.ok(fn.to_dict(), 201)

    def _deploy(self, tenant, name, body, size, scratch):
        """body: C source (bytes), or the path of an uploaded image's tar."""
        if isinstance(body, str):
            path, origin = unpack_image(body, scratch), "image upload"
        else:
            path, origin = os.path.dirname(jail.build_jailed(body, name, scratch)["path"]), "source upload"
        return self.host.deploy(tenant, path, name, origin="%s (%d bytes)" % (origin, size))

    async def undeploy(self, door, name):
        self.owned_function(door, name)
        try:   # (on a thread: it writes the registry, fsynced, and removes files)
            fn = await asyncio.get_running_loop().run_in_executor(self.storage, self.host.undeploy, door.name, name)
        except NotFound:
            raise ApiError(403, "forbidden", "tenant %s has no function %r" % (door.name, name[:64]))
        return self.ok(dict(fn.to_dict(), deleted=True))

    # -- logs and usage ----------------------------------------------------------------------------------
    def record(self, door, iid):
        rec = door.records.get(iid)
        if rec is None:
            raise ApiError(403, "forbidden", "tenant %s has no invocation %r (the last %d are kept)"
                           % (door.name, iid[:64], RECORDS_PER_TENANT))
        return rec

    def logs(self, door, scope):
        q = parse_qs(scope["query_string"].decode("latin-1"))
        fn = q.get("function", [None])[0]
        limit = q.get("limit", ["50"])[0]
        if not limit.isdigit() or not 1 <= int(limit) <= RECORDS_PER_TENANT:
            raise ApiError(400, "bad_request", "limit must be 1-%d" % RECORDS_PER_TENANT)
        out = [r for r in reversed(door.records.values()) if fn is None or r["function"] == fn][:int(limit)]
        return self.ok({"tenant": door.name, "invocations": out})

    async def usage(self, door):
        """The host's account of the tenant (what `nanvix usage --json` prints: what it holds,
        beside its limits) and, under "door", what the front door counted."""
        out = await self.blocking(door.invokers, self.host.usage, door.name)
        out["door"] = {"invocations": dict(door.counts), "invocations_total": sum(door.counts.values()),
                       "invocation_seconds": round(door.seconds, 3), "deploys": door.deploys,
                       "input_bytes": door.bytes_in, "result_bytes": door.bytes_out, "in_flight": door.pending,
                       "functions": len(self.host.functions(door.name))}
        return out

    # -- admin ---------------------------------------------------------------------------------------------
    async def create_tenant(self, scope, receive):
        req = await self.json_request(scope, receive)
        name = req.get("tenant")
        try:   # (on a thread: the credentials are written to the disk, fsynced)
            token = await asyncio.get_running_loop().run_in_executor(self.admins, self.creds.create, name)
        except InvalidArgument as e:
            raise ApiError(400, "bad_request", str(e))
        except Conflict as e:
            raise ApiError(409, "conflict", str(e))
        return self.ok({"tenant": name, "token": token}, 201)

    async def limits(self, scope, receive, method, tenant):
        """A tenant's limits (GET), or some of them changed (PUT {"name": value, ...})."""
        if tenant not in {t["tenant"] for t in self.creds.tenants()}:
            raise ApiError(404, "not_found", "no tenant %r" % tenant[:64])
        if method == "GET":
            return self.ok({"tenant": tenant, "limits": await self.blocking(self.admins, self.host.limits, tenant)})
        req = await self.json_request(scope, receive)
        got = await self.blocking(self.admins, lambda: self.host.set_limits(tenant, **req))
        return self.ok({"tenant": tenant, "limits": got})

    def metrics(self):
        rt = self.host.runtime
        lines = ["# TYPE nanvix_uptime_seconds gauge", "nanvix_uptime_seconds %.1f" % (time.time() - self.started),
                 "# TYPE nanvix_tenants gauge", "nanvix_tenants %d" % len(self.creds.tenants()),
                 "# TYPE nanvix_user_vms gauge", "nanvix_user_vms %d" % len(rt.uvms),
                 "# TYPE nanvix_system_vms gauge",
                 "nanvix_system_vms %d" % sum(t.sysvm.alive for t in list(rt.tenants.values())),
                 "# TYPE nanvix_http_responses_total counter"]
        lines += ['nanvix_http_responses_total{code="%d"} %d' % kv for kv in sorted(self.responses.items())]
        lines.append("# TYPE nanvix_invocations_total counter")
        for name, door in sorted(self.doors.items()):
            lines += ['nanvix_invocations_total{tenant="%s",status="%s"} %d' % (name, s, n)
                      for s, n in sorted(door.counts.items())]
        for metric, kind, get in (("invocation_seconds_total", "counter", lambda d: "%.6f" % d.seconds),
                                  ("deploys_total", "counter", lambda d: d.deploys),
                                  ("in_flight", "gauge", lambda d: d.pending)):
            lines.append("# TYPE nanvix_%s %s" % (metric, kind))
            lines += ['nanvix_%s{tenant="%s"} %s' % (metric, name, get(d)) for name, d in sorted(self.doors.items())]
        return "\n".join(lines) + "\n"


def unpack_image(tar_path, scratch):
    """A built image sent as a tar of image.bin and meta.json (what `nanvix build` makes): only
    those two regular files are read (copied in pieces, never whole into memory), never
    extracted by their names."""
    tmp = tempfile.mkdtemp(dir=scratch, prefix="upload-")
    h, got = hashlib.sha256(), set()
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            members = {}
            for m in tar.getmembers():
                base = os.path.basename(m.name)
                if base in ("image.bin", "meta.json") and m.isreg() and base not in members:
                    members[base] = m
            # named by its content: the folder's name is the digest of image.bin, NUL, meta.json
            for i, base in enumerate(b for b in ("image.bin", "meta.json") if b in members):
                if i:
                    h.update(b"\0")
                src = tar.extractfile(members[base])
                with open(os.path.join(tmp, base), "wb") as f:
                    while piece := src.read(1 << 20):
                        h.update(piece)
                        f.write(piece)
                got.add(base)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidArgument("not a tar of a built image: %s" % e)
    if got != {"image.bin", "meta.json"}:
        raise InvalidArgument("a built image is a tar holding image.bin and meta.json")
    d = os.path.join(scratch, "upload-" + h.hexdigest()[:24])
    os.rename(tmp, d)
    return d
