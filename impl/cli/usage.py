"""`nanvix usage` and `nanvix limits`: what a tenant holds beside its limits, and setting them.

Embedded: they open the host's home (`$NANVIX_HOME`) as `nanvix run` does; the system VM of the
tenant is started to count its storage. With a daemon (--host or $NANVIX_URL): `usage` is the
tenant of $NANVIX_TOKEN's, `limits --tenant T` an admin operation (the admin token).
"""
from nanvix.impl.cli.common import emit
from nanvix.impl.limits import Limits

# usage figure -> the limit it is held to
HELD_TO = {"user_vms": "user_vms", "pages": "pages", "invocations": "invocations",
           "file_bytes": "file_bytes", "files": "files", "kv_bytes": "kv_bytes", "kv_keys": "kv_keys",
           "log_bytes": "log_bytes", "sysvm_memory": "sysvm_memory", "sysvm_tasks": "sysvm_pids",
           "functions": "functions"}


def register(sub):
    from nanvix.impl.cli.target import add_target_args
    p = sub.add_parser("usage", help="what a tenant holds now, beside its limits")
    p.add_argument("--json", action="store_true")
    add_target_args(p)
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("limits", help="a tenant's limits; --set NAME=VALUE changes them (kept by the host)")
    p.add_argument("--tenant", default="default")
    p.add_argument("--host", metavar="URL", help="the daemon to talk to (default $NANVIX_URL; none: work "
                   "embedded); its admin token is $NANVIX_TOKEN")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="one of: " + ", ".join("%s (%s)" % kv for kv in Limits.DOC.items()))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_limits)


def parse_settings(items):
    from nanvix.impl.errors import InvalidArgument
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq:
            raise InvalidArgument("--set takes NAME=VALUE, got %r" % item)
        try:
            out[name] = float(value) if name == "sysvm_cpu" else int(value, 0)
        except ValueError:
            raise InvalidArgument("limit %s: %r is not a number" % (name, value))
    return out


def render_usage(u):
    lim = u["limits"]
    lines = ["tenant %s" % u["tenant"], "%-14s %16s %16s %6s" % ("", "used", "limit", "%")]
    for name, limit in HELD_TO.items():
        used = u.get(name)
        if used is None:
            continue
        pct = "%5.1f" % (100.0 * used / lim[limit]) if lim.get(limit) else ""
        lines.append("%-14s %16s %16s %6s" % (name, used, lim[limit], pct))
    if u.get("sysvm_cpu_ns") is not None:
        lines.append("%-14s %16.1f %14.2f c" % ("sysvm_cpu_ms", u["sysvm_cpu_ns"] / 1e6, lim["sysvm_cpu"]))
    if u.get("log_dropped"):
        lines.append("log lines dropped (disk full): %d" % u["log_dropped"])
    return "\n".join(lines)


def render_limits(d):
    return "\n".join("%-14s %16s  %s" % (k, v, Limits.DOC[k]) for k, v in d["limits"].items())


def cmd_usage(args):
    from nanvix.impl.cli.target import client, home_lock
    from nanvix.impl.control.host import Host
    c = client(args)
    if c is not None:
        emit(c.call("GET", "/v1/usage"), args.json, render_usage)
        return 0
    with home_lock(), Host() as host:
        emit(host.usage(args.tenant or "default"), args.json, render_usage)
    return 0


def cmd_limits(args):
    from nanvix.impl.control.host import Host
    settings = parse_settings(args.set)
    Limits().replace(**settings)  # a bad name or value is answered before any host starts
    from nanvix.impl.serve.client import Client, daemon_url
    url = daemon_url(args)
    if url is not None:
        import urllib.parse
        path = "/v1/tenants/%s/limits" % urllib.parse.quote(args.tenant, safe="")
        c = Client(url)
        out = c.call("PUT", path, settings) if settings else c.call("GET", path)
        emit(out, args.json, render_limits)
        return 0
    from nanvix.impl.cli.target import home_lock
    with home_lock(), Host() as host:
        lim = host.set_limits(args.tenant, **settings) if settings else host.limits(args.tenant)
    emit({"tenant": args.tenant, "limits": lim}, args.json, render_limits)
    return 0
