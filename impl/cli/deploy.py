"""`nanvix deploy PATH [--name N]`: build a function once and deploy it for a tenant."""
import io
import os
import tarfile
import urllib.parse

from nanvix.impl.cli.common import add_fair_cores, emit
from nanvix.impl.cli.target import add_target_args, client, embedded_host


def register(sub):
    p = sub.add_parser("deploy", help="deploy a function (C source or a built image) for a tenant")
    p.add_argument("path", help="a function's C source, or a built image folder (`nanvix build`)")
    p.add_argument("--name", default=None, help="the function's name (default: the file's name)")
    p.add_argument("--json", action="store_true", help='print {"tenant", "function", "digest", "source"}')
    add_target_args(p)
    add_fair_cores(p)
    p.set_defaults(func=cmd_deploy)


def render(fn):
    return "deployed %s for tenant %s (image %s)" % (fn["function"], fn["tenant"], fn["digest"])


def upload(path):
    """(body, content type) of a function for the daemon: C source as it is, a built image as a
    tar of image.bin and meta.json."""
    from nanvix.impl.control.runtime import load_image
    if path.endswith(".c"):
        with open(path, "rb") as f:
            return f.read(), "text/x-c"
    image = load_image(path)   # a clear error for anything else
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = os.path.dirname(image["path"])
        for name in ("image.bin", "meta.json"):
            tar.add(os.path.join(d, name), arcname=name)
    return buf.getvalue(), "application/x-tar"


def deploy_remote(c, path, name):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file or directory", path)
    body, ctype = upload(path)
    name = name or os.path.basename(os.path.normpath(path))
    return c.call("PUT", "/v1/functions/" + urllib.parse.quote(name, safe=""), body=body,
                  headers={"Content-Type": ctype})


def cmd_deploy(args):
    c = client(args)
    if c is not None:
        out = deploy_remote(c, args.path, args.name)
    else:
        with embedded_host(fair_cores=args.fair_cores) as host:
            out = host.deploy(args.tenant or "default", args.path, args.name).to_dict()
    emit(out, args.json, render)
    return 0
