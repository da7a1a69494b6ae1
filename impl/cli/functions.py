"""`nanvix functions [delete NAME]`: a tenant's deployed functions."""
import urllib.parse

from nanvix.impl.cli.common import emit
from nanvix.impl.cli.target import add_target_args, client, embedded_host


def register(sub):
    p = sub.add_parser("functions", help="list a tenant's functions, or delete one")
    p.add_argument("action", nargs="?", choices=["list", "delete"], default="list")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--json", action="store_true")
    add_target_args(p)
    p.set_defaults(func=cmd_functions)


def cmd_functions(args):
    if (args.action == "delete") != (args.name is not None):
        raise SystemExit("nanvix functions: `delete` takes one function name; `list` none")
    c = client(args)
    if args.action == "delete":
        if c is not None:
            out = c.call("DELETE", "/v1/functions/" + urllib.parse.quote(args.name, safe=""))
        else:
            with embedded_host() as host:
                out = dict(host.undeploy(args.tenant or "default", args.name).to_dict(), deleted=True)
        emit(out, args.json, lambda o: "deleted %s of tenant %s" % (o["function"], o["tenant"]))
        return 0
    if c is not None:
        out = c.call("GET", "/v1/functions")
    else:
        with embedded_host() as host:
            tenant = args.tenant or "default"
            out = {"tenant": tenant, "functions": [f.to_dict() for f in host.functions(tenant)]}
    emit(out, args.json, lambda o: "\n".join("%-24s %s  %s" % (f["function"], f["digest"], f["source"])
                                            for f in o["functions"]) or "(no functions)")
    return 0
