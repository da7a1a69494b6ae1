"""Path and name tricks: guest paths that try to leave the tenant's tree (`..`, absolute paths,
NUL bytes, overlong names, symlinks planted in its own tree) and host-API tenant, function and
limit names that try to reach another tenant or break the host. Every escape is refused with an
error (the guest gets EACCES, EINVAL or E2BIG; the API raises InvalidArgument or NotFound), and
nothing is created, read or changed outside the attacker's own tree."""
import os

import pytest

import nanvix
from nanvix.impl.abi import E2BIG, EACCES, EINVAL, ENOENT, OP_CODES
from nanvix.impl.errors import InvalidArgument, NanvixError, NotFound

from conftest import ATTACK, IO, Bystander, contained

EXITS = [b"../bystander/files/notes/secret.txt", b"../../bystander/files/notes/secret.txt",
         b"notes/../../../bystander/files/notes/secret.txt", b"a/b/../../../x", b"./../x", b"..",
         b"../kv.sqlite3", b"../log", b"../files/../kv.sqlite3"]


def tree(root):
    """Every path under root (relative), with its bytes for a file."""
    out = {}
    for d, dirs, names in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), root) + "/"] = None
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = open(p, "rb").read() if not os.path.islink(p) else os.readlink(p)
    return out


def io(att, cmds):
    """Run io.c commands (a list) as the attacker; the answers, one per command."""
    return att.ok(";".join(c.decode() if isinstance(c, bytes) else c for c in cmds), path=IO).split(";")


def own_state(att):
    root = os.path.join(att.rt.home, "tenants", att.name)
    return tree(root)


@pytest.mark.parametrize("path", EXITS, ids=[p.decode() for p in EXITS])
def test_dotdot_never_leaves_the_tree(suite, path):
    """Read, write, size and delete through `..`: EACCES, and neither the bystander's tree nor the
    attacker's own key-value store and log (beside its files, outside its tree) change."""
    att = suite.attacker("paths")
    att.ok("ping")
    before = own_state(att)
    p = path.decode()
    got = io(att, ["fread " + p, "fwrite %s ATTACKER" % p, "fappend %s ATTACKER" % p, "fsize " + p, "fdel " + p])
    assert got == [str(-EACCES)] * 5, got
    assert own_state(att) == before
    suite.contained(att)


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/shadow", "/", "/proc/self/environ", "/dev/kvm", "//x",
                                  "/tmp/attacker-was-here"])
def test_absolute_paths_are_refused(suite, path):
    att = suite.attacker("paths")
    got = io(att, ["fread " + path, "fwrite %s ATTACKER" % path, "fsize " + path, "fdel " + path])
    assert got == [str(-EACCES)] * 4, got
    assert not os.path.exists("/tmp/attacker-was-here")
    suite.contained(att)


def test_the_bystanders_absolute_path_is_refused(suite):
    att = suite.attacker("paths")
    theirs = os.path.join(suite.bystander.root, "files", "notes", "secret.txt")
    got = io(att, ["fread " + theirs, "fwrite %s ATTACKER" % theirs, "fdel " + theirs])
    assert got == [str(-EACCES)] * 3, got
    suite.contained(att)


def name_req(att, op, name):
    """A raw request with a name of any bytes (attack.c `name`): its result code."""
    out = att.ok("name %d %s" % (OP_CODES[op], name.hex()))
    assert out.startswith("ret="), out
    return int(out[4:])


@pytest.mark.parametrize("name", [b"ok\0../../x", b"\0", b"notes\0/secret.txt", b"a\0"])
def test_nul_bytes_in_a_path_are_refused(suite, name):
    """A NUL would cut the path short in any C API below: EINVAL, nothing created."""
    att = suite.attacker("paths")
    before = own_state(att)
    for op in ("file_write", "file_read", "file_size", "file_delete"):
        assert name_req(att, op, name) == -EINVAL, op
    assert own_state(att) == before
    suite.contained(att)


def test_overlong_names_are_refused_at_the_boundary(suite):
    """A name longer than NAME_MAX never reaches a system call; one that fits the ring but not
    the kernel (a 256-byte component through a deep path) is an error, not a crash."""
    att = suite.attacker("paths")
    assert name_req(att, "file_write", b"a" * 256) == -E2BIG      # the ring's own bound
    assert name_req(att, "kv_put", b"k" * 256) == -E2BIG
    assert name_req(att, "file_write", b"b" * 255) == 1            # a 255-byte name is a name
    assert name_req(att, "file_delete", b"b" * 255) == 0
    deep = b"/".join([b"d"] * 127)                                 # 253 bytes, 126 directories
    assert name_req(att, "file_write", deep) == 1
    assert name_req(att, "file_read", deep + b"/" + b"c" * 1) == -ENOENT
    suite.contained(att)


@pytest.mark.parametrize("name", [b"", b".", b"/", b"notes/", b"a//b/", b"./.", b"dir-as-file"])
def test_degenerate_names(suite, name):
    """Empty, dot, slash-only, trailing-slash names and a directory used as a file: an error
    each, never a crash, and the tenant's root is never deleted or replaced."""
    att = suite.attacker("paths")
    assert io(att, ["fwrite dir-as-file/inner x"]) == ["1"]
    for op in ("file_write", "file_delete"):
        r = name_req(att, op, name)
        assert r in (-EINVAL, -EACCES, -ENOENT), (op, name, r)
    files = os.path.join(att.rt.home, "tenants", att.name, "files")
    assert os.path.isdir(files) and not os.path.exists(os.path.join(files, "a")), "a refused write made directories"
    assert io(att, ["fread dir-as-file/inner"]) == ["1:x"]
    suite.contained(att)


SYMLINKS = {   # planted in the attacker's own tree, as a host bug or an old host could leave them
    "to-secret": "BYSTANDER/files/notes/secret.txt",
    "to-their-dir": "BYSTANDER/files/notes",
    "up": "../../bystander/files/notes/secret.txt",
    "up-dir": "../../bystander/files",
    "to-own-kv": "../kv.sqlite3",
    "to-shadow": "/etc/shadow",
    "to-proc": "/proc/self/root",
    "loop-a": "loop-b",
    "loop-b": "loop-a",
}


def test_symlinks_planted_in_its_own_tree_lead_nowhere(suite):
    att = suite.attacker("paths-symlinks")
    att.ok("ping")
    files = os.path.join(att.rt.home, "tenants", att.name, "files")
    os.makedirs(files, exist_ok=True)
    for name, target in SYMLINKS.items():
        os.symlink(target.replace("BYSTANDER", suite.bystander.root), os.path.join(files, name))
    for name in SYMLINKS:
        for inner in ("", "/secret.txt", "/notes/secret.txt"):
            p = name + inner
            got = io(att, ["fread " + p, "fwrite %s ATTACKER" % p, "fappend %s ATTACKER" % p, "fsize " + p])
            assert all(int(g.split(":")[0]) in (-EACCES, -ENOENT, -EINVAL) for g in got), (p, got)
    # deleting a planted link removes the link itself, never what it points at
    assert io(att, ["fdel to-secret", "fdel up"]) == ["0", "0"]
    assert os.path.exists(os.path.join(suite.bystander.root, "files", "notes", "secret.txt"))
    suite.contained(att)


def test_keys_named_after_the_bystanders_stay_in_the_attackers_store(suite):
    """Keys are not paths: the bystander's key names, with path tricks, are the attacker's own."""
    att = suite.attacker("paths")
    keys = ["secret", "../secret", "bystander/secret", "../bystander/kv.sqlite3", "bystander:secret"]
    got = io(att, ["kvput %s ATTACKER" % k for k in keys] + ["kvget %s" % k for k in keys])
    assert got == ["8"] * len(keys) + ["8:ATTACKER"] * len(keys)
    assert name_req(att, "kv_put", b"secret\0tail") == 1       # a NUL is a byte of a key
    assert io(att, ["kvget secret"]) == ["8:ATTACKER"]
    suite.contained(att)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A host of its own, used through the public API, with a bystander of its own."""
    host = nanvix.Host(home=str(tmp_path_factory.mktemp("api-home")), cores=1)
    try:
        host.deploy("owner", IO, name="io")
        yield host, Bystander(host.runtime)
    finally:
        host.close()


BAD_TENANTS = ["", "..", "../bystander", "bystander/../x", "Bystander", "bystander\n", "bystander\0",
               " bystander", "bystander ", "x" * 33, "b\u0443stander", "-x", "_x", "a.b", "a/b",
               None, 5, b"bystander", ("bystander",), ["bystander"], {"bystander": 1}]


@pytest.mark.parametrize("name", BAD_TENANTS, ids=[repr(n)[:20] for n in BAD_TENANTS])
def test_host_api_tenant_names(api, name):
    """A tenant name that is not exactly a tenant name is refused by every entry point of the
    public API with a NanvixError (InvalidArgument or NotFound), and makes no tenant."""
    host, bystander = api
    home = os.path.join(host.home, "tenants")
    before = sorted(os.listdir(home)), set(host.runtime.tenants), dict(host.runtime.register.tenants)
    calls = [lambda: host.invoke(name, "io", b"kvget secret"), lambda: host.deploy(name, IO),
             lambda: host.run(name, IO, b"kvget secret"), lambda: host.usage(name),
             lambda: host.limits(name), lambda: host.set_limits(name, files=1),
             lambda: host.functions(name), lambda: host.function(name, "io"), lambda: host.undeploy(name, "io")]
    for call in calls:
        with pytest.raises((InvalidArgument, NotFound)):
            call()
    assert (sorted(os.listdir(home)), set(host.runtime.tenants), dict(host.runtime.register.tenants)) == before
    contained(bystander)


BAD_FUNCTIONS = ["../io", "", "a/b", ".hidden", "x" * 65, "io\n", None, ["io"], 7]


@pytest.mark.parametrize("fn", BAD_FUNCTIONS, ids=[repr(n)[:20] for n in BAD_FUNCTIONS])
def test_host_api_function_names(api, fn):
    host, bystander = api
    if fn not in (None, ""):   # (no name: the file's own name, which is fine)
        with pytest.raises(InvalidArgument):
            host.deploy("owner", ATTACK, name=fn)
    with pytest.raises((NotFound, InvalidArgument)):
        host.invoke("owner", fn)
    with pytest.raises((NotFound, InvalidArgument)):
        host.function("owner", fn)
    with pytest.raises((NotFound, InvalidArgument)):
        host.undeploy("owner", fn)
    assert {f.name for f in host.functions("owner")} <= {"io", "attack.c"}
    assert host.invoke("owner", "io", b"kvput a 1").ok
    contained(bystander)


@pytest.mark.parametrize("limits", [dict(files=-1), dict(bogus=1), dict(files=True), dict(files="9"),
                                    dict(files=float("nan")), dict(files=float("inf")), dict(files=1 << 70),
                                    dict(sysvm_cpu=float("nan")), dict(sysvm_cpu=float("inf")),
                                    dict(sysvm_memory=1), dict(kv_value=None), dict(log_bytes=4096)],
                         ids=lambda d: "%s=%r" % next(iter(d.items())))
def test_host_api_limit_values(api, limits):
    """A limit that is not a sane positive number is refused (InvalidArgument, a NanvixError) and
    changes nothing."""
    host, bystander = api
    before = host.limits("owner")
    with pytest.raises(InvalidArgument):
        host.set_limits("owner", **limits)
    assert host.limits("owner") == before
    contained(bystander)


@pytest.mark.parametrize("data", [12, None, [1, 2], 3.5, object()], ids=repr)
def test_host_api_inputs_that_are_not_bytes(api, data):
    """An input must be bytes or text: anything else is InvalidArgument (an int is not 12 NUL
    bytes), and never reaches a guest; so is a timeout that is not a positive int."""
    host, bystander = api
    with pytest.raises(InvalidArgument):
        host.invoke("owner", "io", data)
    for t in (True, 0, -5, 1.5, "10", None):
        with pytest.raises(InvalidArgument):
            host.invoke("owner", "io", b"kvget a", timeout_ms=t)
    assert host.invoke("owner", "io", b"kvput a 1").result == b"1"
    contained(bystander)
