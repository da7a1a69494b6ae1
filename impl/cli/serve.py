"""`nanvix serve`: the host daemon with its HTTP front door (see nanvix.impl.serve)."""
from nanvix.impl.cli.common import add_fair_cores, positive


def register(sub):
    p = sub.add_parser("serve", help="the host daemon: deploy once, invoke many times over HTTP")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--listen", metavar="ADDR:PORT", default=None,
                       help="TCP address to listen on (default 127.0.0.1:8790; port 0: any free port)")
    where.add_argument("--socket", metavar="PATH", default=None, help="listen on a unix socket instead")
    p.add_argument("--home", metavar="DIR", default=None,
                   help="the state folder this daemon owns (default $NANVIX_HOME); the admin token is "
                        "written to DIR/admin.token (mode 0600)")
    p.add_argument("--cores", type=positive, default=None, help="host threads running vCPUs (default: every CPU)")
    add_fair_cores(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args):
    from nanvix.impl.serve.daemon import serve
    return serve(args.home, args.listen, args.socket, cores=args.cores or 0, fair_cores=args.fair_cores)
