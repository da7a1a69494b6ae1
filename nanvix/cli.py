"""The `nanvix` command line: a thin client of the public API (nanvix.Host) and of the checkers.

Each subcommand lives with the part of the project it exercises: run, build, serve, tenant(s),
deploy, invoke, functions, logs, demo and bench in nanvix.impl.cli (the daemon's client commands
talk to $NANVIX_URL when set, and work embedded otherwise); verify in nanvix.proofs.cli; explore in nanvix.model.cli; density in
nanvix.model.density; check in nanvix.refine.cli. A module registers its subcommand with
`register(subparsers)` and sets `func`. A user's mistake (a missing file, a bad argument, a
refused request) is answered with one line on stderr and exit code 2, never a traceback.
"""
import argparse
import importlib
import sys

from nanvix.impl.cli.common import fail, version

SUBCOMMAND_MODULES = ("nanvix.impl.cli.run", "nanvix.impl.cli.serve", "nanvix.impl.cli.tenants",
                      "nanvix.impl.cli.deploy", "nanvix.impl.cli.invoke", "nanvix.impl.cli.functions",
                      "nanvix.impl.cli.logs", "nanvix.impl.cli.usage", "nanvix.impl.cli.demo", "nanvix.impl.cli.bench",
                      "nanvix.proofs.cli", "nanvix.model.cli", "nanvix.model.density", "nanvix.refine.cli")


class Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr (exit code 2), with a pointer to --help."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def build_parser():
    ap = Parser(prog="nanvix", description="Nanvix on KVM: serverless functions in "
                                 "per-invocation user VMs served by per-tenant system VMs, plus its formal model.")
    ap.add_argument("--version", action="version", version="nanvix %s" % version())
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return ap


def main(argv=None):
    try:   # (loading every subcommand's modules takes a while: Ctrl-C then is no traceback either)
        from nanvix.impl.errors import NanvixError
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return sys.exit(130)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    except (NanvixError, OSError) as e:
        code = fail(args.command, e)
    return sys.exit(code or 0)


if __name__ == "__main__":
    main()
