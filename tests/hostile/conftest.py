"""The hostile-tenant suite (issue 9): one host, a bystander tenant, attacker tenants, a summary.

Every attack runs as an attacker tenant on one shared host (`host`) beside a `bystander` tenant
that was given files, keys and a log line before any attack. An attack ends with
`contained(attacker)`: the attacker is still served by its own system VM, and the bystander is
still served (reads and writes) with everything it holds exactly as it was (its files, keys and
log; its system VM never restarted), so nothing of the attacker's crossed over. A test of this
suite that forgets to call it fails.

Each test module is one class of attack; the run ends with one summary line per class (see
pytest_terminal_summary). Slow attacks carry the `hostile_slow` marker: `make test` leaves them
out, `make test-hostile` runs the whole suite.
"""
import collections
import importlib.util
import os
import sqlite3
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Test modules in this folder import `conftest` and get this one (pytest keeps the nearest
# conftest under that name), so what tests/conftest.py offers them is offered here as well.
_spec = importlib.util.spec_from_file_location("nanvix_tests_conftest", os.path.join(os.path.dirname(HERE), "conftest.py"))
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)
KVM_SKIP, guest, example = _tests.KVM_SKIP, _tests.guest, _tests.example

ATTACK = os.path.join(HERE, "guests", "attack.c")
IO = guest("io.c")
PARK = guest("park.c")
NOISE = os.path.join(ROOT, "impl", "cli", "guests")   # the fairness bench's noisy neighbours
HANG_S = 60          # a failure bound that only catches a hang, never a time assertion

CLASSES = {          # module -> the class of attack it holds, in the order the issue lists them
    "test_paths": "path and name tricks",
    "test_ring": "ring and index corruption and replay",
    "test_hypercalls": "hypercall and port abuse",
    "test_instructions": "privileged and faulting instructions",
    "test_exhaustion": "memory, page, thread and invocation exhaustion",
    "test_storage": "storage, log and inode exhaustion",
    "test_full_disk": "full disk",
    "test_neighbours": "noisy neighbours",
    "test_kill": "kill -9 of system VMs and of the host",
    "test_jail": "a compromised system VM (the jail probe)",
}
OWN = set(CLASSES) - {"test_jail"}   # the modules held to contained() (the jail probe is the lead's)


# ---- the host and its tenants ------------------------------------------------------------------

def settle(cond, what, bound=HANG_S):
    """Wait until cond() holds (the host does some work off the invocation's path); fail only if
    it never does within a bound that catches a hang."""
    end = time.monotonic() + bound
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("never happened: %s" % what)
        time.sleep(0.01)


class Tenant:
    """An attacker tenant: runs commands of guests/attack.c (or any function) and checks that its
    own system VM still serves it."""

    def __init__(self, rt, name):
        self.rt, self.name = rt, name
        self.rt.system_vm(name)

    @property
    def sysvm(self):
        return self.rt.tenants[self.name].sysvm

    def run(self, command="ping", timeout_ms=10_000, path=ATTACK):
        if isinstance(command, str):
            command = command.encode()
        return self.rt.invoke(self.name, path, command, timeout_ms)

    def ok(self, command, timeout_ms=10_000, path=ATTACK):
        """Run a command that must end normally; returns its result."""
        rep = self.run(command, timeout_ms, path)
        assert rep["status"] == "ok", rep
        return rep["result"]

    def served(self):
        """A channel round trip (the clock) and a key lookup, answered by its own system VM."""
        assert self.sysvm.alive
        assert self.ok("ping") == "clock=1 get=-2"

    def usage(self):
        return self.rt.usage(self.name)

    def limit(self, **limits):
        self.rt.set_limits(self.name, **limits)
        return self


SECRET = b"bystander-secret-7f3a"


class Bystander:
    """A tenant minding its own business: a file, a key and a log line, written before any
    attack. check() says it is still served and holds exactly that, and nothing else."""

    name = "bystander"

    def __init__(self, rt):
        self.rt = rt
        self.root = os.path.join(rt.home, "tenants", self.name)
        rep = rt.invoke(self.name, IO, b"kvput secret " + SECRET + b";fwrite notes/secret.txt " + SECRET)
        assert rep["status"] == "ok" and rep["result"] == "%d;%d" % (len(SECRET), len(SECRET)), rep
        rep = rt.invoke(self.name, ATTACK, b"log 1 40 text")
        assert rep["status"] == "ok" and rep["result"] == "ok=1 err=0", rep
        self.epoch = rt.tenants[self.name].sysvm.epoch
        self.before = self.snapshot()
        assert self.before["files"] == {"notes/secret.txt": SECRET}
        assert self.before["kv"] == {b"secret": SECRET} and self.before["log"].count(b"\n") == 1

    def snapshot(self):
        """Everything the bystander holds, read by the host from its directory."""
        files = {}
        top = os.path.join(self.root, "files")
        for d, dirs, names in os.walk(top):
            for n in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
                p = os.path.join(d, n)
                with open(p, "rb") as f:
                    files[os.path.relpath(p, top)] = f.read()
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.root, "kv.sqlite3"), uri=True)
        try:
            kv = {bytes(k): bytes(v) for k, v in db.execute("SELECT key, value FROM kv")}
        finally:
            db.close()
        log = b""
        for n in ("log.1", "log"):
            try:
                with open(os.path.join(self.root, n), "rb") as f:
                    log += f.read()
            except FileNotFoundError:
                pass
        return {"files": files, "kv": kv, "log": log}

    def check(self, restarted_ok=False, readonly=False):
        """readonly: reads only (on a full disk, a write may rightly be refused)."""
        sv = self.rt.tenants[self.name].sysvm
        assert sv.alive, "the bystander's system VM is down"
        if not restarted_ok:
            assert sv.epoch == self.epoch, "the bystander's system VM was restarted"
        self.epoch = sv.epoch
        rep = self.rt.invoke(self.name, IO, b"kvget secret;fread notes/secret.txt;fsize notes/secret.txt")
        n = len(SECRET)
        assert rep["status"] == "ok", rep
        assert rep["result_bytes"] == b"%d:%s;%d:%s;%d" % (n, SECRET, n, SECRET, n), rep
        assert rep["log"] == [], rep
        if readonly:
            assert self.snapshot() == self.before, "the bystander's files, keys or log changed"
            return
        rep = self.rt.invoke(self.name, IO, b"kvput scratch x;kvget scratch;kvdel scratch;"
                                            b"fwrite scratch.txt y;fread scratch.txt;fdel scratch.txt")
        assert rep["status"] == "ok" and rep["result"] == "1;1:x;0;1;1:y;0", rep
        assert self.snapshot() == self.before, "the bystander's files, keys or log changed"


_contained = [0]   # contained() calls so far (an attack that makes none fails)


def contained(bystander, *attackers, restarted_ok=False):
    """The attack is over: each attacker is still served, and the bystander is untouched."""
    _contained[0] += 1
    for a in attackers:
        a.served()
    bystander.check(restarted_ok=restarted_ok)


class Suite:
    def __init__(self, rt, bystander):
        self.rt, self.bystander = rt, bystander
        self.tenants = {}

    def attacker(self, name, **limits):
        """The attacker tenant `name` (made on first use), with these limits set now."""
        t = self.tenants.get(name)
        if t is None:
            t = self.tenants[name] = Tenant(self.rt, name)
        if limits:
            t.limit(**limits)
        return t

    def contained(self, *attackers, restarted_ok=False):
        contained(self.bystander, *attackers, restarted_ok=restarted_ok)


@pytest.fixture(scope="session")
def suite(tmp_path_factory):
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    from nanvix.impl.control.runtime import Runtime
    rt = Runtime(home=str(tmp_path_factory.mktemp("hostile-home")), cores=2, max_pages=2048,
                 fair_cores=True)   # (as the `nanvix` commands run a host)
    try:
        yield Suite(rt, Bystander(rt))
    finally:
        rt.close()


@pytest.fixture(autouse=True)
def _every_attack_is_contained(request):
    """Fail an attack of this suite that never checked that it was contained."""
    module = request.node.module.__name__.rsplit(".", 1)[-1]
    before = _contained[0]
    yield
    call = getattr(request.node, "hostile_call", None)
    if module in OWN and call is not None and call.passed and _contained[0] == before:
        pytest.fail("this attack never checked that it was contained (contained(...))")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.hostile_call = report   # (read by _every_attack_is_contained)
    return report


def run_all(calls, bound=HANG_S):
    """Run fn() for each fn in calls on threads of their own, at once; their results in order.
    (A call that never ends fails the test after `bound` seconds: a hang, never a timing.)"""
    out, errors = [None] * len(calls), []

    def go(i, fn):
        try:
            out[i] = fn()
        except BaseException as e:  # (re-raised below, on the test's thread)
            errors.append(e)
    threads = [threading.Thread(target=go, args=(i, fn), daemon=True) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    end = time.monotonic() + bound
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
        assert not t.is_alive(), "a call did not end within %d s: a hang" % bound
    if errors:
        raise errors[0]
    return out


# ---- the summary: one line per class of attack --------------------------------------------------

_outcomes = collections.defaultdict(collections.Counter)   # class -> Counter(held, xfail, failed, ...)
_attacks = collections.defaultdict(set)                    # class -> its test functions


def _class_of(nodeid):
    path = nodeid.split("::", 1)[0].replace(os.sep, "/")
    if "hostile/" not in path:
        return None
    return CLASSES.get(os.path.splitext(os.path.basename(path))[0])


def pytest_runtest_logreport(report):
    cls = _class_of(report.nodeid)
    if cls is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            kind = "xfail (finding)" if report.skipped else "xpass"
        elif report.passed:
            kind = "held"
        elif report.skipped:
            kind = "skipped"
        else:
            kind = "FAILED"
        _outcomes[cls][kind] += 1
        _attacks[cls].add(report.nodeid.split("[", 1)[0])
    elif report.when == "teardown" and report.failed:
        _outcomes[cls]["FAILED (teardown)"] += 1


def pytest_terminal_summary(terminalreporter):
    """One line per class of attack: its attacks (test functions), their cases (parameters) and
    how each case ended: held (the defence held), an xfail (a finding, with its reason), FAILED."""
    if not _outcomes:
        return
    w = terminalreporter
    w.section("hostile-tenant suite")
    total, attacks = collections.Counter(), 0
    order = [c for c in CLASSES.values() if c in _outcomes]
    for cls in order:
        c = _outcomes[cls]
        total.update(c)
        attacks += len(_attacks[cls])
        w.write_line("%-46s %3d attacks %4d cases: %s" % (cls, len(_attacks[cls]), sum(c.values()),
                                                         ", ".join("%d %s" % (v, k) for k, v in sorted(c.items()))))
    w.write_line("%-46s %3d attacks %4d cases: %s" % ("all %d classes" % len(order), attacks, sum(total.values()),
                                                     ", ".join("%d %s" % (v, k) for k, v in sorted(total.items()))))
