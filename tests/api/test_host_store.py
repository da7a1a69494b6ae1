"""What a Host's deployments hold, and where it writes them: the registry's fsynced writes are never
made under the lock a reader on an event loop takes; an undeployed function gives back its
snapshot, the user VMs kept ready for it and (once no function has it) its image; deploy/undeploy
churn leaves nothing behind; a tenant's deployed functions are held to a limit."""
import os
import threading
import time

import pytest

from conftest import example
from nanvix.impl.errors import QuotaExceeded

pytestmark = pytest.mark.kvm


@pytest.fixture
def host(tmp_path):
    import nanvix
    with nanvix.Host(home=str(tmp_path), cores=1) as h:
        yield h


def settle(cond, what, limit_s=60):
    """Wait for the host's background threads (reaper, closer, filler) to do `what`; a hang
    guard, not a timing."""
    end = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < end, "the host did not " + what
        time.sleep(0.01)


def test_the_registry_is_written_without_the_readers_lock(host, monkeypatch):
    held = []
    for name in ("_record_function", "_forget_function", "_keep_image"):
        real = getattr(host, name)

        def watched(*a, _real=real, _name=name):
            held.append((_name, host._lock.locked()))
            # a reader (an event loop's function() or start()) is not held up by this write
            reader = threading.Thread(target=lambda: held.append(("read", host.functions("st") is not None)))
            reader.start()
            reader.join(30)   # (a hang guard: with the lock held, the reader waits for the write)
            if reader.is_alive():
                held.append(("read", False))
            return _real(*a)
        monkeypatch.setattr(host, name, watched)
    host.deploy("st", example("echo.c"), name="echo")
    host.undeploy("st", "echo")
    assert ("_record_function", False) in held and ("_forget_function", False) in held
    assert not any(locked for what, locked in held if what != "read")
    assert held.count(("read", True)) == 3


def test_undeploy_gives_back_what_the_function_held(host):
    rt = host.runtime
    a = host.deploy("rel", example("echo.c"), name="a")
    host.deploy("rel", example("echo.c"), name="b")   # the same image
    t = rt.tenants["rel"]
    assert host.invoke("rel", "a", b"x").ok
    settle(lambda: len(t.ready[a.digest]) >= 1, "keep a user VM ready")
    image_dir = os.path.join(host.home, "images", a.digest)
    host.undeploy("rel", "a")   # b still has the image: everything stays
    assert ("rel", a.digest) in rt.wanted and a.digest in t.templates and os.path.isdir(image_dir)
    tpl = t.templates[a.digest]
    host.undeploy("rel", "b")
    assert ("rel", a.digest) not in rt.wanted and a.digest not in t.templates and not t.ready.get(a.digest)
    assert not os.path.exists(image_dir)
    # (the last user VM's teardown closes the snapshot just after it leaves t.uvms)
    settle(lambda: not t.uvms and tpl.fd == -1 and not t.retired, "tear down the ready user VMs and close the snapshot")


def test_deploy_undeploy_churn_leaves_nothing_behind(host):
    rt = host.runtime
    sources = [example(n) for n in ("echo.c", "hello.c", "counter.c")]
    for i in range(6):
        fn = host.deploy("churn", sources[i % 3], name="f")   # a redeployment replaces the image too
        assert host.invoke("churn", "f", b"x").status in ("ok", "error")
    host.undeploy("churn", "f")
    t = rt.tenants["churn"]
    settle(lambda: not t.uvms and not t.retired, "release every user VM and snapshot")
    assert not t.templates and not any(t.ready.values())
    assert not [k for k in rt.wanted if k[0] == "churn"]
    assert os.listdir(os.path.join(host.home, "images")) == []
    assert fn.digest   # (the last one deployed)


def test_a_function_undeployed_during_a_pool_fill_leaves_no_snapshot(host):
    """The pool filler walks a copy of what is wanted; a function undeployed after the copy was
    taken must not have its snapshot made again by the filler (undeploy churn once left one)."""
    rt = host.runtime
    fn = host.deploy("race", example("echo.c"), name="f")
    assert host.invoke("race", "f", b"x").ok
    t = rt.tenants["race"]
    settle(lambda: len(t.ready[fn.digest]) >= 1, "keep a user VM ready")
    undeployed = threading.Event()

    class UndeployedAfterTheCopy(dict):
        def items(self):
            copy = list(super().items())
            if ("race", fn.digest) in self and not undeployed.is_set():
                undeployed.set()
                host.undeploy("race", "f")
            return copy
    rt.wanted = UndeployedAfterTheCopy(rt.wanted)
    rt.fill_event.set()
    settle(undeployed.is_set, "run a pool fill")
    rt.fill_event.set()   # (and one more pass, after the stale one)
    settle(lambda: not t.uvms and not t.retired, "release every user VM and snapshot")
    assert fn.digest not in t.templates and not t.ready.get(fn.digest)


def test_a_function_undeployed_while_its_user_vm_is_reset_leaves_nothing(host):
    """A user VM is reset for its next invocation off the invoker's path; a function undeployed
    in the middle of that reset must not get it back as a ready user VM (kept for ever, and its
    snapshot with it: undeploy churn once left one)."""
    rt = host.runtime
    fn = host.deploy("reset-race", example("echo.c"), name="f")
    t = rt.tenants["reset-race"]
    tpl = t.templates[fn.digest]
    undeployed = threading.Event()
    real = tpl.reset

    def reset_then_undeploy(mem, vcpu):
        real(mem, vcpu)
        if not undeployed.is_set():
            undeployed.set()
            host.undeploy("reset-race", "f")
    tpl.reset = reset_then_undeploy
    assert host.invoke("reset-race", "f", b"x").ok
    settle(undeployed.is_set, "reset the invoked user VM")
    settle(lambda: not t.uvms and not t.retired, "release every user VM and snapshot")
    assert fn.digest not in t.templates and not t.ready.get(fn.digest) and tpl.fd == -1


def test_a_tenants_deployed_functions_are_held_to_its_limit(host):
    host.set_limits("lim", functions=2)
    host.deploy("lim", example("echo.c"), name="a")
    host.deploy("lim", example("hello.c"), name="b")
    with pytest.raises(QuotaExceeded, match="limit of 2 deployed functions"):
        host.deploy("lim", example("echo.c"), name="c")
    host.deploy("lim", example("hello.c"), name="a")   # a redeployment replaces one: fine
    assert [f.name for f in host.functions("lim")] == ["a", "b"]
    u = host.usage("lim")
    assert u["functions"] == 2 and u["limits"]["functions"] == 2
    host.undeploy("lim", "b")
    host.deploy("lim", example("echo.c"), name="c")
    assert host.limits("other")["functions"] == 100
