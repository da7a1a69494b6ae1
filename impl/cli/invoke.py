"""`nanvix invoke NAME`: run a deployed function once."""
from nanvix.impl.cli.common import add_fair_cores, emit, positive
from nanvix.impl.cli.target import add_target_args, client, embedded_host


def register(sub):
    p = sub.add_parser("invoke", help="invoke a deployed function")
    p.add_argument("name")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", default="", help="the function's input (text)")
    src.add_argument("--input-file", default=None, help="read the input (bytes) from this file")
    p.add_argument("--timeout-ms", type=positive, default=10_000)
    p.add_argument("--json", action="store_true", help="print the JSON object `nanvix run --json` prints")
    add_target_args(p)
    add_fair_cores(p)
    p.set_defaults(func=cmd_invoke)


def cmd_invoke(args):
    from nanvix.impl.cli.run import render_run
    data = args.input.encode()
    if args.input_file:
        with open(args.input_file, "rb") as f:
            data = f.read()
    c = client(args)
    if c is not None:
        r, _ = c.invoke(args.name, data, args.timeout_ms)
    else:
        with embedded_host(fair_cores=args.fair_cores) as host:
            r = host.invoke(args.tenant or "default", args.name, data, args.timeout_ms).to_dict()
    emit(r, args.json, render_run)
    return 0 if r["status"] == "ok" else 1
