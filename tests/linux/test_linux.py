"""Linux programs in user VMs, on real KVM: each runtime's examples (static musl C, MicroPython,
QuickJS), the Linux-ABI layer's edge cases (bad pointers and lengths, unsupported calls), memory
calls that never leave the guest, threads, a crash that harms nothing else, and files that cannot
leave the tenant's tree."""
import json
import os
import subprocess

import pytest

from conftest import ROOT, example, guest
import nanvix
from nanvix.impl.errors import GuestError, InvalidArgument
from nanvix.impl.guest.linux.toolchain import toolchain

pytestmark = pytest.mark.kvm
LINUX = guest("linux")
INCLUDES = ["-I", os.path.join(ROOT, "impl", "abi"), "-I", os.path.join(ROOT, "impl", "guest", "linux")]
ERRNO = {"EFAULT": 14, "EINVAL": 22, "EBADF": 9, "ESPIPE": 29, "EAGAIN": 11, "ENOTDIR": 20, "ERANGE": 34,
         "ENOSYS": 38, "ENOMEM": 12, "ENOENT": 2, "EACCES": 13}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with nanvix.Host(home=str(tmp_path_factory.mktemp("linux-home")), cores=2) as h:
        yield h


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    """The test programs and the POSIX example, built with nanvix's musl (`nanvix cc`)."""
    out = tmp_path_factory.mktemp("bin")
    cc = toolchain().cc()
    built = {}
    for name, src in [("posix", example("posix.c"))] + [
            (n[:-2], os.path.join(LINUX, n)) for n in ("edge.c", "mem.c", "threads.c", "escape.c", "crash.c", "append.c", "sleep.c")]:
        built[name] = str(out / name)
        subprocess.run([cc, "-static", "-O2", *INCLUDES, src, "-o", built[name], "-lpthread"], check=True)
    return built


def lines(result):
    """"name value errno" lines -> {name: (value, errno)}."""
    out = {}
    for line in result.decode().splitlines():
        name, value, err = line.rsplit(" ", 2)
        out[name] = (int(value) if value.lstrip("-").isdigit() else value, int(err))
    return out


def run(host, tenant, path, data=b"", timeout_ms=10_000):
    return host.run(tenant, path, data, timeout_ms)


# ---- each runtime's examples ------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["py", "js"])
def test_echo_hello_counter_json(host, lang):
    r = run(host, "ex-" + lang, example("echo." + lang), b"hi")
    assert r.ok and r.result == b"hi", r
    assert r.log and "got 2" in r.log[0]            # print / console.log went to the log
    assert run(host, "ex-" + lang, example("hello." + lang)).result == b"hello"
    counts = [run(host, "ex-" + lang, example("counter." + lang), b"visits").result for _ in range(3)]
    assert counts == [b"1", b"2", b"3"]
    r = run(host, "ex-" + lang, example("json." + lang), b'{"numbers": [1, 2, 4.5], "name": "ann"}')
    assert r.ok, r
    assert json.loads(r.result) == {"count": 3, "sum": 7.5, "mean": 2.5, "max": 4.5, "greeting": "hello, ann"}


@pytest.mark.parametrize("lang", ["py", "js"])
def test_wordcount_reads_a_tenant_file_with_the_languages_own_api(host, lang):
    tenant = "wc-" + lang
    files = os.path.join(host.home, "tenants", tenant, "files")
    os.makedirs(files, exist_ok=True)
    with open(os.path.join(files, "notes.txt"), "w") as f:
        f.write("one two three\nfour five\nsix é\n")
    r = run(host, tenant, example("wordcount." + lang))
    assert r.ok, r
    assert json.loads(r.result) == {"path": "notes.txt", "lines": 3, "words": 7, "bytes": 31}
    r = run(host, tenant, example("wordcount." + lang), b"missing.txt")
    assert r.status == "error" and r.result == b"" and r.log, r   # the exception, in the log


@pytest.mark.parametrize("lang", ["py", "js"])
def test_files_through_the_languages_own_api(host, lang):
    r = run(host, "files-" + lang, os.path.join(LINUX, "files." + lang), lang.encode())
    assert r.ok, r
    got = json.loads(r.result)
    assert got["text"] == "hello\nworld\n" and got["listing"] == ["b.txt"] and got["size"] == 12
    assert got["missing"] in (2, True)
    assert not os.path.exists(os.path.join(host.home, "tenants", "files-" + lang, "files", lang))


RANDOM = {"py": "import random\n\ndef handle(data):\n    return str(random.getrandbits(30))\n",
          "js": "function handle(data) { return String(Math.random()); }\n"}


@pytest.mark.parametrize("lang", ["py", "js"])
def test_every_invocation_draws_fresh_random_numbers(host, lang, tmp_path):
    # each invocation resumes the one snapshot: a generator seeded before it would repeat one
    # sequence for every invocation of the function (guessable by anyone who saw one result)
    src = tmp_path / ("rand." + lang)
    src.write_text(RANDOM[lang])
    got = {run(host, "rand-" + lang, str(src)).result for _ in range(4)}
    assert len(got) == 4, got


@pytest.mark.parametrize("lang", ["py", "js"])
def test_a_raising_handler_is_an_error_with_its_traceback_in_the_log(host, lang):
    r = run(host, "raise-" + lang, os.path.join(LINUX, "raise." + lang), b"zz")
    assert r.status == "error" and r.result == b""
    assert any("bad input" in line for line in r.log), r.log
    again = run(host, "raise-" + lang, example("echo." + lang), b"fine")   # nothing else harmed
    assert again.ok and again.result == b"fine"


BOOT_PRINT = {"py": "print('said while booting')\n\ndef handle(data):\n    raise ValueError('no')\n",
              "js": "console.log('said while booting');\nfunction handle(data) { throw new Error('no'); }\n"}


@pytest.mark.parametrize("lang", ["py", "js"])
def test_what_the_boot_printed_is_no_invocations_result(host, lang, tmp_path):
    # the snapshot is taken after the file's top level ran: its output must not be in the result
    # area every invocation resumes with
    src = tmp_path / ("boot." + lang)
    src.write_text(BOOT_PRINT[lang])
    r = run(host, "boot-" + lang, str(src))
    assert r.status == "error" and b"booting" not in r.result, r


def test_a_deployed_runtimes_image_keeps_its_meta_in_the_home(host):
    fn = host.deploy("meta", example("echo.py"))
    with open(os.path.join(host.home, "images", fn.digest, "meta.json")) as f:
        kept = json.load(f)
    built = host.runtime.load(example("echo.py"))
    assert kept["ram"] == built["ram"] and kept["kind"] == "python" and kept["entry"] == built["entry"]


def test_a_python_file_without_handle_is_refused_at_deploy(host):
    with pytest.raises(GuestError, match="defines no function handle"):
        host.deploy("nohandle", os.path.join(LINUX, "noentry.py"))


def test_the_posix_example(host, binaries):
    tenant = "posix"
    for n in (1, 2):
        r = run(host, tenant, binaries["posix"], b"some words")
        assert r.ok, r
        got = json.loads(r.result)
        assert got["journal_lines"] == n and got["journal_bytes"] == 11 * n and got["files"] == 1
        assert r.log and r.log[0].startswith("posix: appended 10 bytes")
    with open(os.path.join(host.home, "tenants", tenant, "files", "journal.txt")) as f:
        assert f.read() == "some words\nsome words\n"


# ---- the layer's edge cases -------------------------------------------------------------------

def test_bad_pointers_and_lengths_are_errors_not_crashes(host, binaries):
    r = run(host, "edge", binaries["edge"])
    assert r.ok, r
    got = lines(r.result)
    want = {
        "read_null": "EFAULT", "read_low": "EFAULT", "write_far": "EFAULT", "write_negative_len": "EINVAL",
        "read_bad_fd": "EBADF", "read_huge_fd": "EBADF", "open_null_path": "EFAULT", "open_far_path": "EFAULT",
        "clock_null": "EFAULT", "clock_bad_id": "EINVAL", "nanosleep_bad_ns": "EINVAL",
        "mmap_zero_len": "EINVAL", "mmap_huge": "EINVAL", "mmap_too_much": "ENOMEM",
        "munmap_unaligned": "EINVAL", "munmap_huge": "EINVAL", "madvise_huge": "ENOMEM",
        "mremap_not_mapped": "EFAULT", "lseek_negative": "EINVAL",
        "lseek_log": "ESPIPE", "futex_null": "EFAULT", "futex_value_changed": "EAGAIN",
        "writev_negative_count": "EINVAL", "writev_bad_buffer": "EFAULT", "getdents_on_stdin": "ENOTDIR",
        "getcwd_small": "ERANGE", "request_file_opcode": "EINVAL", "request_bad_pointer": "EFAULT",
        "request_bad_key": "EFAULT", "result_bad_pointer": "EFAULT",
    }
    for name, err in want.items():
        assert got[name] == (-1, ERRNO[err]), (name, got[name], err)
    assert got["brk_huge"] == (0, 0)                    # refused: the break stays where it was
    assert got["alive"] == (1, 0)


def test_unsupported_calls_are_enosys(host, binaries):
    got = lines(run(host, "edge", binaries["edge"]).result)
    for name in ("socket", "fork", "execve", "pipe", "symlink", "unknown_999"):
        assert got[name] == (-1, ERRNO["ENOSYS"]), (name, got[name])


def test_memory_calls_never_leave_the_guest(host, binaries):
    """20,000 mallocs and frees, 2,000 mmap/mremap/madvise/munmap, brk: thousands of system
    calls, none of which leaves the VM (the layer counts each call that made a request or a
    hypercall); the only output is the result, in guest memory."""
    rep = host.runtime.invoke("mem", host.runtime.load(binaries["mem"]), b"")
    assert rep["status"] == "ok" and rep["result"].startswith("ok "), rep
    assert rep["syscalls"] > 4000, rep
    assert rep["syscalls_left_guest"] == 0 and rep["io_requests"] == 0 and rep["pages_added"] == 0, rep


def test_only_io_leaves_the_guest(host, binaries):
    rep = host.runtime.invoke("posix", host.runtime.load(binaries["posix"]), b"x")
    assert rep["status"] == "ok", rep
    assert 0 < rep["syscalls_left_guest"] <= rep["io_requests"] < rep["syscalls"], rep


def test_an_append_is_one_request_and_leaves_the_offset_at_the_end(host, binaries):
    """O_APPEND writes land at the file's end (another descriptor moved it) and leave the
    descriptor's offset there, from the write's own answer: ten more appends cost exactly ten
    more requests (no size request per write)."""
    reps = {}
    for n in (10, 20):
        reps[n] = host.runtime.invoke("append", host.runtime.load(binaries["append"]), b"%d" % n)
        assert reps[n]["status"] == "ok", reps[n]
        assert reps[n]["result"] == "first 10 last %d size %d\n" % (8 + 2 * n, 8 + 2 * n), reps[n]
    assert reps[20]["io_requests"] - reps[10]["io_requests"] == 10, (reps[10]["io_requests"], reps[20]["io_requests"])


def test_a_sleeper_parks_its_vcpu_instead_of_spinning(host, binaries):
    """A thread asleep (nanosleep) parks the vCPU in the host until its deadline (NX_HC_WAIT with
    a time limit): sleeping ten times longer costs no more VM exits (a vCPU spinning on its clock
    leaves KVM_RUN at every slice of the scheduler, so its exits grow with the sleep). It wakes
    no earlier than asked (the guest's own clock says)."""
    reps = [host.runtime.invoke("sleep", host.runtime.load(binaries["sleep"]), b"%d" % ms) for ms in (100, 1000)]
    for rep in reps:
        assert rep["status"] == "ok" and rep["result"] == "slept\n", rep
    assert reps[1]["exits"] <= reps[0]["exits"] + 2, [r["exits"] for r in reps]


def test_threads_mutex_condvar_tls_and_sleep(host, binaries):
    r = run(host, "threads", binaries["threads"])
    assert r.ok, r
    assert r.result == b"total 4000 tls 4 main_tls 1\n"


def test_a_crash_harms_only_its_own_user_vm(host, binaries):
    r = run(host, "crash", binaries["crash"])
    assert r.status == "crashed", r
    ok = run(host, "crash", example("echo.py"), b"still here")
    assert ok.ok and ok.result == b"still here"


def test_files_cannot_leave_the_tenants_tree(host, binaries, tmp_path):
    tenant = "escape"
    files = os.path.join(host.home, "tenants", tenant, "files")
    os.makedirs(files, exist_ok=True)
    os.symlink("/etc", os.path.join(files, "evil"))     # planted on the host, pointing out
    before = set(os.listdir(host.home))
    r = run(host, tenant, binaries["escape"])
    assert r.ok, r
    got = lines(r.result)
    assert got["open_dotdot"] == (-1, ERRNO["ENOENT"])   # ".." stops at the tenant's root
    assert got["open_abs"] == (-1, ERRNO["ENOENT"])      # "/" is the tenant's root
    assert got["chdir_up"] == (0, 0) and got["cwd"] == ("/", 0)
    assert got["mkdir_up"] == (0, 0) and got["stat_made"] == (0, 0)
    assert got["rename_up"] == (0, 0) and got["stat_moved"] == (0, 0)
    for name in ("open_symlink_out", "stat_symlink_out", "opendir_symlink_out"):
        assert got[name] == (-1, ERRNO["EACCES"]), (name, got[name])
    assert got["open_proc"] == (-1, ERRNO["ENOENT"])
    assert sorted(os.listdir(files)) == ["evil", "moved.txt", "outside"]
    assert set(os.listdir(host.home)) == before          # nothing appeared beside the tenants


def test_static_programs_are_checked_before_they_run(host, tmp_path):
    dyn = tmp_path / "dyn"
    src = tmp_path / "hello.c"
    src.write_text("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
    subprocess.run(["gcc", "-O2", str(src), "-o", str(dyn)], check=True)
    with pytest.raises(InvalidArgument, match="dynamically linked|position-independent"):
        host.run("checks", str(dyn))
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\0" * 12)
    with pytest.raises(InvalidArgument, match="64-bit|ELF"):
        host.run("checks", str(junk))


def test_a_foreign_static_binary_is_rewritten_where_safe_and_refused_where_not(host, tmp_path):
    """glibc's static hello (its own syscall instructions) runs after zpoline-style rewriting;
    one whose syscall sits in a function keeping data in the red zone is refused, and so is a
    stripped one (nothing to check its functions with)."""
    src = tmp_path / "hello.c"
    src.write_text("#include <stdio.h>\nint main(void) { char b[64]; size_t n = fread(b, 1, 63, stdin);"
                   " b[n] = 0; printf(\"glibc says %s\\n\", b); return 0; }\n")
    glibc = tmp_path / "glibc"
    subprocess.run(["gcc", "-O2", "-static", str(src), "-o", str(glibc)], check=True)
    r = host.run("foreign", str(glibc), b"hi")
    assert r.ok and r.result == b"glibc says hi\n", r
    red = tmp_path / "red.c"
    red.write_text("static long leaf(long n) { long keep = n * 3; long r;\n"
                   "  __asm__ volatile(\"syscall\" : \"=a\"(r) : \"a\"(39L) : \"rcx\", \"r11\", \"memory\");\n"
                   "  return r + keep; }\nint main(int c, char **v) { return (int)leaf(c); }\n")
    subprocess.run(["gcc", "-O0", "-static", str(red), "-o", str(tmp_path / "red")], check=True)
    with pytest.raises(InvalidArgument, match="in leaf, and it keeps data below %rsp"):
        host.run("foreign", str(tmp_path / "red"))
    subprocess.run(["strip", str(glibc), "-o", str(tmp_path / "stripped")], check=True)
    with pytest.raises(InvalidArgument, match="stripped"):
        host.run("foreign", str(tmp_path / "stripped"))


def test_bench_runtimes_section_prints_every_runtime():
    """`nanvix bench --runtimes` runs end to end (values are not asserted: shared machines)."""
    import sys
    nanvix_cmd = os.path.join(os.path.dirname(sys.executable), "nanvix")
    p = subprocess.run([nanvix_cmd, "bench", "--runtimes", "-n", "3", "--json"], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for kind in ("C SDK", "static musl C", "JavaScript", "Python"):
        for what in ("hello", "echo"):
            assert r["figures"]["%s %s" % (kind, what)]["p50"] > 0
        assert r["snapshot_kib"][kind]["echo"] > 0
    assert set(r["targets"]) == {"javascript_echo_p50_ms", "python_echo_p50_ms", "memory_syscalls_left_guest"}
    assert r["syscalls"]["memchurn (memory calls only)"]["syscalls"] > 1000


def test_a_cached_load_runs_no_apt_and_no_objdump(tmp_path, monkeypatch):
    """Loading a Python, JavaScript or foreign static program whose image is cached asks neither
    apt (the runtime's source version: recorded locally) nor objdump/zpoline (the image is keyed
    by the program as given): a fresh process's toolchain runs `gcc --version` at most."""
    from nanvix.impl.guest.linux import image as L, toolchain as T
    src = tmp_path / "hello.c"
    src.write_text("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
    glibc = str(tmp_path / "glibc")
    subprocess.run(["gcc", "-O2", "-static", str(src), "-o", glibc], check=True)
    loads = [lambda: L.python_image(example("echo.py")), lambda: L.javascript_image(example("echo.js")),
             lambda: L.build(glibc, "glibc")]
    first = [load() for load in loads]   # (built or found: cached from here on)
    assert first[2]["zpoline"]
    ran = []

    class Spy(subprocess.Popen):
        def __init__(self, args, *a, **k):
            ran.append(list(args) if isinstance(args, (list, tuple)) else [args])
            super().__init__(args, *a, **k)
    monkeypatch.setattr(subprocess, "Popen", Spy)
    monkeypatch.setattr(T, "_TOOLCHAIN", T.Toolchain())   # as a new process finds it
    assert [load() for load in loads] == first
    assert all(cmd[1:] == ["--version"] for cmd in ran), ran
