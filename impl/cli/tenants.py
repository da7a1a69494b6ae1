"""`nanvix tenant create NAME` and `nanvix tenants`: tenants and their tokens (admin operations:
with a daemon, $NANVIX_TOKEN is the admin token of its home)."""
from nanvix.impl.cli.common import emit
from nanvix.impl.cli.target import add_target_args, client, home_lock


def register(sub):
    p = sub.add_parser("tenant", help="create a tenant and its token (shown once)")
    p.add_argument("action", choices=["create"])
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help='print {"tenant", "token"}')
    add_target_args(p, tenant=False)
    p.set_defaults(func=cmd_tenant)

    p = sub.add_parser("tenants", help="list the tenants")
    p.add_argument("--json", action="store_true")
    add_target_args(p, tenant=False)
    p.set_defaults(func=cmd_tenants)


def _credentials():
    from nanvix.impl.control.runtime import default_home
    from nanvix.impl.serve.credentials import Credentials
    return Credentials(default_home())


def cmd_tenant(args):
    c = client(args)
    if c is not None:
        out = c.call("POST", "/v1/tenants", {"tenant": args.name})
    else:
        with home_lock():
            creds = _credentials()
            try:
                out = {"tenant": args.name, "token": creds.create(args.name)}
            finally:
                creds.close()
    emit(out, args.json, lambda o: "tenant %s created; its token (shown only now):\n%s" % (o["tenant"], o["token"]))
    return 0


def cmd_tenants(args):
    c = client(args)
    if c is not None:
        out = c.call("GET", "/v1/tenants")
    else:
        with home_lock():
            creds = _credentials()
            try:
                out = {"tenants": creds.tenants()}
            finally:
                creds.close()
    emit(out, args.json, lambda o: "\n".join(t["tenant"] for t in o["tenants"]) or "(no tenants)")
    return 0
