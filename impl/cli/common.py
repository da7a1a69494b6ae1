"""What every `nanvix` subcommand shares: argument types, output, and the one-line error."""
import argparse
import json
import sys


def positive(text):
    """An argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % v)
    return v


def power_of_two(text):
    """An argparse type: a power of two >= 1."""
    v = positive(text)
    if v & (v - 1):
        raise argparse.ArgumentTypeError("must be a power of two, got %d" % v)
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be more than 0, got %s" % text)
    return v


def add_fair_cores(p):
    """--no-fair-cores, for a command that runs guests in its own process."""
    p.add_argument("--no-fair-cores", dest="fair_cores", action="store_false",
                   help="leave this process in its own cpu cgroup (by default it joins the system VMs' "
                        "parent group, nanvix/, so a waking system VM or host thread takes a core from "
                        "guest code at once: see the README's \"Fair cores\")")


def version():
    from importlib.metadata import PackageNotFoundError, version as v
    try:
        return v("nanvix")
    except PackageNotFoundError:
        return "unknown"


def emit(obj, as_json, text):
    """Print obj as one JSON object, or as the text the command renders."""
    if as_json:
        print(json.dumps(obj, indent=None, sort_keys=False))
    else:
        print(text(obj) if callable(text) else text)
    sys.stdout.flush()


def fail(command, err):
    """A user's error: one line on stderr, exit code 2."""
    msg = str(err).strip().splitlines()
    print("nanvix %s: %s" % (command, msg[0] if msg else type(err).__name__), file=sys.stderr)
    if len(msg) > 1:  # a build error carries gcc's output: show it, after the one-line summary
        print("\n".join(msg[1:]), file=sys.stderr)
    return 2
