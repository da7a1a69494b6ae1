"""`nanvix run`, `nanvix build` and `nanvix cc`: one function, from its source or a built image."""
import argparse
import os
import subprocess

from nanvix.impl.cli.common import add_fair_cores, emit, positive
from nanvix.impl.cli.target import add_target_args, client, home_lock

EXAMPLES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))


def example(name):
    """The path of one of the repository's examples."""
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        raise SystemExit("nanvix: example %s not found (expected in %s)" % (name, EXAMPLES))
    return path


def register(sub):
    p = sub.add_parser("run", help="run one function in a fresh user VM")
    p.add_argument("path", help="a function: C source (built with the SDK, cached), a Python or JavaScript "
                   "file defining handle(data), a static Linux program, or a built image")
    p.add_argument("--input", default="", help="the function's input (text)")
    p.add_argument("--timeout-ms", type=positive, default=10_000)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_runtime_arg(p)
    add_target_args(p)   # with a daemon: deployed under the file's name, then invoked
    add_fair_cores(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("cc", help="compile a plain POSIX C program into a static binary for nanvix "
                       "(gcc with nanvix's musl; any gcc arguments)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="gcc's arguments, e.g. prog.c -o prog")
    p.set_defaults(func=cmd_cc)

    p = sub.add_parser("build", help="build a function's C source into an image (cached)")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    add_runtime_arg(p)
    p.set_defaults(func=cmd_build)


def add_runtime_arg(p):
    p.add_argument("--runtime", choices=["micropython", "cpython"], default="micropython",
                   help="the interpreter of a Python function: micropython (the default) or cpython "
                   "(CPython 3.11, once the slow `make cpython` has built it)")


def function_path(args):
    """The path to load: a Python function for CPython becomes its built image (folder)."""
    if args.runtime == "micropython":
        return args.path
    if not args.path.endswith(".py") or not os.path.isfile(args.path):
        raise SystemExit("nanvix: --runtime %s takes a Python function (a *.py file); got %s" % (args.runtime, args.path))
    from nanvix.impl.guest.linux.image import python_image
    return os.path.dirname(python_image(args.path, args.runtime)["path"])


def render_run(r):
    lines = ["status:      %s%s" % (r["status"], " (%s)" % r["detail"] if r.get("detail") else ""),
             "result:      %s" % r["result"]]
    for entry in r["log"]:
        lines.append("log:         %s" % entry)
    lines.append("tenant %s, user VM %s: start %.0f us, run %.0f us, %d I/O requests, %d exits"
                 % (r["tenant"], r["user_vm"], r["start_us"], r["run_us"] or 0, r["io_requests"], r["exits"]))
    return "\n".join(lines)


def cmd_run(args):
    from nanvix.impl.control.host import Host
    from nanvix.impl.control.runtime import load_image
    from nanvix.impl.control.runtime import Interrupted
    c = client(args)
    path = function_path(args)
    if c is not None:
        from nanvix.impl.cli.deploy import deploy_remote
        fn = deploy_remote(c, path, None if path == args.path else os.path.basename(args.path))
        r, _ = c.invoke(fn["function"], args.input.encode(), args.timeout_ms)
        emit(r, args.json, render_run)
        return 0 if r["status"] == "ok" else 1
    load_image(path)  # a bad path or a failed build is answered before any VM exists
    with home_lock(), Host(fair_cores=args.fair_cores) as host:
        try:
            r = host.run(args.tenant or "default", path, args.input.encode(), args.timeout_ms)
        except Interrupted as e:  # Ctrl-C: the user VM was stopped; show what it had done
            emit(e.invocation.to_dict(), args.json, render_run)
            return 130
    emit(r.to_dict(), args.json, render_run)
    return 0 if r.ok else 1


def cmd_build(args):
    from nanvix.impl.control.runtime import load_image
    img = dict(load_image(function_path(args)))
    img["image"] = os.path.dirname(img["path"])
    emit(img, args.json, lambda i: "%s: image %s (%d bytes of guest memory up to _end); run it with "
         "`nanvix run %s`" % (i["name"], i["image"], i["end"] - 0x400000, i["image"]))
    return 0


def cmd_cc(args):
    """gcc with nanvix's musl (built from its Debian source package on first use), static."""
    from nanvix.impl.guest.linux.toolchain import toolchain
    if not args.args:
        raise SystemExit("nanvix cc: give gcc's arguments, e.g. `nanvix cc prog.c -o prog`")
    return subprocess.run([toolchain().cc(), "-static", "-O2", *args.args]).returncode
