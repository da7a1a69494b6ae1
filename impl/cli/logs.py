"""`nanvix logs [INVOCATION]`: what invocations logged. With a daemon: its record of one
invocation, or of the tenant's recent ones; embedded: the tail of the tenant's log file."""
import os
import urllib.parse

from nanvix.impl.cli.common import emit, positive
from nanvix.impl.cli.target import add_target_args, client, home_lock


def register(sub):
    p = sub.add_parser("logs", help="the logs of a tenant's invocations")
    p.add_argument("invocation", nargs="?", default=None, help="one invocation's id (Nanvix-Invocation)")
    p.add_argument("--function", default=None, help="only this function's invocations")
    p.add_argument("--limit", type=positive, default=20)
    p.add_argument("--json", action="store_true")
    add_target_args(p)
    p.set_defaults(func=cmd_logs)


def render(out):
    recs = [out] if "invocation" in out else out.get("invocations")
    if recs is None:
        return "\n".join(out["log"]) or "(the log is empty)"
    lines = []
    for r in recs:
        lines.append("%s %s %s%s" % (r["invocation"], r["function"], r["status"],
                                    " (%s)" % r["detail"] if r.get("detail") else ""))
        lines += ["  " + entry for entry in r["log"]]
    return "\n".join(lines) or "(no invocations)"


def cmd_logs(args):
    c = client(args)
    if c is not None:
        if args.invocation:
            out = c.call("GET", "/v1/invocations/" + urllib.parse.quote(args.invocation, safe=""))
        else:
            q = {"limit": args.limit}
            if args.function:
                q["function"] = args.function
            out = c.call("GET", "/v1/logs?" + urllib.parse.urlencode(q))
    else:
        if args.invocation:
            raise SystemExit("nanvix logs: invocation ids are a daemon's (set NANVIX_URL); embedded, "
                             "`nanvix logs` shows the tenant's log file")
        from nanvix.impl.control.runtime import TENANT_NAME, default_home
        tenant = args.tenant or "default"
        if not TENANT_NAME.fullmatch(tenant):
            raise SystemExit("nanvix logs: no tenant %r" % tenant)
        with home_lock():
            path = os.path.join(default_home(), "tenants", tenant, "log")
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()[-args.limit:]
            except FileNotFoundError:
                lines = []
        out = {"tenant": tenant, "log": lines}
    emit(out, args.json, render)
    return 0
