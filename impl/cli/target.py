"""Where a `nanvix` command runs: against a daemon (--host URL or $NANVIX_URL, with the token in
$NANVIX_TOKEN), or embedded in the command's own process (a Host on $NANVIX_HOME, which it opens
sharing the home's lock: a daemon owning that home makes it refuse, with the daemon's URL)."""
import contextlib

from nanvix.impl.serve.client import Client, daemon_url


def add_target_args(p, tenant=True):
    p.add_argument("--host", metavar="URL", help="the daemon to talk to (default $NANVIX_URL; "
                   "none: work embedded); its token is $NANVIX_TOKEN")
    if tenant:
        p.add_argument("--tenant", default=None, help="the tenant, when embedded (default: default); "
                       "with a daemon the tenant is the token's")


def client(args):
    """A Client when a daemon is named, else None."""
    url = daemon_url(args)
    if url is None:
        return None
    if getattr(args, "tenant", None):
        raise SystemExit("nanvix %s: --tenant is for embedded use; with a daemon the tenant is the one "
                         "$NANVIX_TOKEN belongs to" % args.command)
    return Client(url)


@contextlib.contextmanager
def home_lock(home=None):
    """Share the home with other embedded commands; refuse if a daemon owns it."""
    from nanvix.impl.control.runtime import default_home
    from nanvix.impl.serve.credentials import HomeLock
    lock = HomeLock(home or default_home(), exclusive=False)
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def embedded_host(**options):
    from nanvix.impl.control.host import Host
    with home_lock(), Host(**options) as host:
        yield host
