"""Python functions on CPython 3.11 (the slow target, `make cpython`), on real KVM: the same
examples and the same handler contract as on MicroPython, with the same results. Skipped, with
the reason, when CPython is not built; `make test-slow` (or `pytest -m slow`) runs them."""
import json
import os

import pytest

from conftest import example, guest
import nanvix
from nanvix.impl.errors import GuestError
from nanvix.impl.guest.linux import cpython
from nanvix.impl.guest.linux.image import python_image

pytestmark = [pytest.mark.slow, pytest.mark.kvm,
              pytest.mark.skipif(cpython.built() is None,
                                 reason="CPython is not built: `make cpython` (the slow target) builds it")]
LINUX = guest("linux")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with nanvix.Host(home=str(tmp_path_factory.mktemp("cpython-home")), cores=2) as h:
        yield h


def image(path, runtime):
    """The function's built image folder for that runtime (what `nanvix run --runtime` runs)."""
    return os.path.dirname(python_image(path, runtime)["path"])


def run(host, tenant, path, data=b"", runtime="cpython"):
    return host.run(tenant, image(path, runtime), data, 30_000)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_the_examples_give_the_same_results_on_both_runtimes(host, runtime):
    t = "ex-" + runtime
    r = run(host, t, example("echo.py"), b"hi", runtime)
    assert r.ok and r.result == b"hi", r
    assert r.log and "echo.py got 2 bytes" in r.log[0], r.log     # print() went to the log
    assert run(host, t, example("hello.py"), runtime=runtime).result == b"hello"
    assert [run(host, t, example("counter.py"), b"visits", runtime).result for _ in range(3)] == [b"1", b"2", b"3"]
    r = run(host, t, example("json.py"), b'{"numbers": [1, 2, 4.5], "name": "ann"}', runtime)
    assert r.ok, r
    assert json.loads(r.result) == {"count": 3, "sum": 7.5, "mean": 2.5, "max": 4.5, "greeting": "hello, ann"}
    files = os.path.join(host.home, "tenants", t, "files")
    os.makedirs(files, exist_ok=True)
    with open(os.path.join(files, "notes.txt"), "w") as f:
        f.write("one two three\nfour five\nsix é\n")
    r = run(host, t, example("wordcount.py"), runtime=runtime)
    assert r.ok, r
    assert json.loads(r.result) == {"path": "notes.txt", "lines": 3, "words": 7, "bytes": 31}
    r = run(host, t, example("wordcount.py"), b"missing.txt", runtime)
    assert r.status == "error" and r.result == b"" and any("Errno 2" in line for line in r.log), r


def test_files_through_pythons_own_api(host):
    r = run(host, "files", os.path.join(LINUX, "files.py"), b"cp")
    assert r.ok, r
    got = json.loads(r.result)
    assert got == {"text": "hello\nworld\n", "listing": ["b.txt"], "size": 12, "missing": 2, "gone": True}


def test_the_nanvix_module_matches_micropythons(host, tmp_path):
    src = tmp_path / "kv.py"
    src.write_text("import nanvix\n"
                   "def handle(data):\n"
                   "    nanvix.kv_put('k', b'v1')\n"
                   "    got = nanvix.kv_get('k')\n"
                   "    n = nanvix.kv_add('n', 5)\n"
                   "    gone, again = nanvix.kv_delete('k'), nanvix.kv_delete('k')\n"
                   "    nanvix.log('from nanvix.log')\n"
                   "    return repr((got, n, gone, again, nanvix.kv_get('k')))\n")
    results = {}
    for runtime in ("cpython", "micropython"):
        r = run(host, "kv-" + runtime, str(src), runtime=runtime)
        assert r.ok and "from nanvix.log" in r.log, r
        results[runtime] = r.result
    assert results["cpython"] == results["micropython"] == b"(b'v1', 5, True, False, None)"


def test_a_raising_handler_is_an_error_with_its_traceback_in_the_log(host):
    r = run(host, "raise", os.path.join(LINUX, "raise.py"), b"zz")
    assert r.status == "error" and r.result == b""
    assert any("ValueError: bad input" in line for line in r.log), r.log
    again = run(host, "raise", example("echo.py"), b"fine")
    assert again.ok and again.result == b"fine"


def test_a_file_without_handle_is_refused_at_deploy(host):
    with pytest.raises(GuestError, match="defines no function handle"):
        host.deploy("nohandle", image(os.path.join(LINUX, "noentry.py"), "cpython"))


def test_a_deployed_cpython_function_runs_from_the_home_after_a_restart(tmp_path):
    """The image kept in the home keeps its meta (CPython's image needs its larger RAM)."""
    folder = image(example("counter.py"), "cpython")
    with nanvix.Host(home=str(tmp_path), cores=1) as h:
        h.deploy("t", folder, name="counter")
        assert h.invoke("t", "counter", b"c").result == b"1"
    with nanvix.Host(home=str(tmp_path), cores=1) as h:   # restored from the home
        r = h.invoke("t", "counter", b"c")
        assert r.ok and r.result == b"2", r


def test_random_is_seeded_afresh_per_invocation(host, tmp_path):
    src = tmp_path / "rand.py"
    src.write_text("import random\n\ndef handle(data):\n    return str(random.getrandbits(64))\n")
    got = {run(host, "rand", str(src)).result for _ in range(3)}
    assert len(got) == 3, got     # not the snapshot's one sequence
