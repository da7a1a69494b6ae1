"""The public Python API (nanvix.Host) and the `nanvix` command line as a user meets them: the
README's example runs as written, errors are typed, and a user's mistake is one line, exit 2."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, example

README = os.path.join(ROOT, "README.md")
NANVIX = os.path.join(os.path.dirname(sys.executable), "nanvix")


def readme_python_example():
    text = open(README).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has no Python example"
    return blocks[0]


@pytest.mark.kvm
def test_the_readme_python_example_runs(monkeypatch, nanvix_home):
    monkeypatch.chdir(ROOT)  # the example uses repository-relative paths, as a reader would
    code = readme_python_example()
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    r = ns["r"]
    assert r.ok and r.result == b"hi" and r.io_requests == 0
    assert r.to_dict()["result"] == "hi"


@pytest.mark.kvm
def test_host_api_types_and_errors(nanvix_home):
    import nanvix
    with nanvix.Host(cores=1) as host:
        fn = host.deploy("api-a", example("counter.c"), name="counter")
        assert isinstance(fn, nanvix.Function) and host.functions("api-a") == [fn]
        first = host.invoke("api-a", "counter")
        second = host.invoke("api-a", fn)
        assert isinstance(first, nanvix.Invocation)
        assert int(second.result) == int(first.result) + 1
        with pytest.raises(nanvix.NotFound):
            host.invoke("api-b", "counter")        # deployed for api-a only
        with pytest.raises(nanvix.NotFound):
            host.deploy("api-a", "/no/such/file.c")
        with pytest.raises(nanvix.InvalidArgument):
            host.deploy("Bad Tenant", example("echo.c"))
        with pytest.raises(nanvix.InvalidArgument):
            host.invoke("api-a", "counter", timeout_ms=0)
        with pytest.raises(nanvix.InvalidArgument):
            host.invoke("api-a", "counter", b"x" * (1 << 20))
        with pytest.raises(nanvix.BuildError):
            host.run("api-a", _broken_source(nanvix_home))


def _broken_source(home):
    path = os.path.join(home, "broken.c")
    with open(path, "w") as f:
        f.write("int nx_main(const char *in, size_t n) { return undefined_symbol; }\n")
    return path


def test_every_error_is_a_nanvix_error():
    import nanvix
    for name in ("BuildError", "GuestError", "InvalidArgument", "KvmError", "NotFound", "OutOfPages",
                 "QuotaExceeded", "StoreError", "SystemVMDown"):
        assert issubclass(getattr(nanvix, name), nanvix.NanvixError), name


def nanvix_cli(*args):
    return subprocess.run([NANVIX, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, says", [
    (("run", "/no/such.c"), "no such file"),
    (("run", README), "neither C source"),
    (("run", example("echo.c"), "--timeout-ms", "0"), "must be at least 1"),
    (("run", example("echo.c"), "--timeout-ms", "-5"), "must be at least 1"),
    (("run", example("echo.c"), "--tenant", "NOT OK"), "tenant names"),
    (("check", "--steps", "-5"), "must be at least 1"),
    (("density", "--apps", "0"), "must be at least 1"),
    (("explore", "--ring", "3"), "power of two"),
    (("explore", "--mutant", "no_such_mutant"), "no mutant"),
    (("build", "/no/such.c"), "no such file"),
])
def test_a_user_mistake_is_one_line_and_exit_2(args, says):
    p = nanvix_cli(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert says in p.stderr


def test_version():
    p = nanvix_cli("--version")
    assert p.returncode == 0 and re.fullmatch(r"nanvix \d+\.\d+\.\d+\n", p.stdout), p.stdout


@pytest.mark.kvm
def test_host_start_begins_only_what_cannot_block(nanvix_home):
    """Host.start (the front door's way to invoke from its event loop): None, with nothing done,
    until a user VM of the function is ready and its system VM runs; then it runs there, and
    what it gives is what invoke() gives. A vCPU still running at its budget goes on on a worker."""
    import time
    import nanvix
    from nanvix.impl.abi import ABI
    with nanvix.Host(cores=2, ready_per_function=0, recycle=False) as host:   # no user VM is ever kept ready
        host.deploy("api-start", example("echo.c"), name="echo")
        for _ in range(3):
            assert host.start("api-start", "echo", b"hi") is None
            assert host.invoke("api-start", "echo", b"hi").result == b"hi"
        assert host.runtime.tenants["api-start"].invocations == 0
    with nanvix.Host(cores=2) as host:
        host.deploy("api-start", example("spin.c"), name="spin")
        with pytest.raises(nanvix.NotFound):
            host.start("api-start", "nope", b"hi")
        with pytest.raises(nanvix.InvalidArgument):
            host.start("api-start", "echo", b"x" * (ABI["INPUT_MAX"] + 1))
        assert host.invoke("api-start", "echo", b"hi").result == b"hi"   # user VMs of it kept ready
        # Whether echo ends inside its budget on this thread is the machine's load: a start that
        # did not is finished by a worker, and its result must be as good. Some start must end here.
        ended_here = begun = 0
        for _ in range(400):
            started = host.start("api-start", "echo", b"hello", budget_us=10_000)
            if started is None:
                time.sleep(0.01)
                continue
            begun += 1
            ended_here += started.done
            r = started.result()
            assert r.ok and r.result == b"hello" and r.tenant == "api-start"
            assert host.runtime.tenants["api-start"].invocations == 0
            if ended_here:
                break
        assert ended_here == 1, "none of %d starts ended on the calling thread" % begun
        # a longer one: past its 100 us here it is a worker's, and result() waits for it
        assert host.invoke("api-start", "spin", b"100").ok
        for _ in range(200):
            started = host.start("api-start", "spin", b"20000000", budget_us=100)
            if started is not None:
                break
            time.sleep(0.01)
        assert started is not None and not started.done
        r = started.result()
        assert r.ok and b'"iterations": 20000000' in r.result, r
        assert host.runtime.tenants["api-start"].invocations == 0
