"""The `nanvix` command line.

Each subcommand lives with the part of the project it exercises; this module only assembles them:
run, demo and bench here (impl), verify in nanvix.proofs.cli, explore in nanvix.model.cli, check in
nanvix.impl.check. A module registers its subcommand with `register(subparsers)` and sets `func`.
"""
import argparse
import importlib
import json
import sys

SUBCOMMAND_MODULES = ("nanvix.impl.commands", "nanvix.proofs.cli", "nanvix.model.cli", "nanvix.model.density",
                      "nanvix.impl.check")


def build_parser():
    ap = argparse.ArgumentParser(prog="nanvix", description="Nanvix on KVM: serverless functions in "
                                 "per-invocation user VMs served by per-tenant system VMs, plus its formal model.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # the module exists but something it needs does not
                raise
            continue
        mod.register(sub)
    return ap


def emit(obj, as_json, text):
    """Print obj as one JSON object, or as the text the command renders."""
    if as_json:
        print(json.dumps(obj, indent=None, sort_keys=False))
    else:
        print(text(obj) if callable(text) else text)
    sys.stdout.flush()


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    return sys.exit(code or 0)


if __name__ == "__main__":
    main()
