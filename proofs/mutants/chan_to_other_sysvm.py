"""open_channel joins the user VM to a fixed (tenant 0's) system VM: one shared I/O server."""
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.open_channel.*", "ni.open_channel.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c, u, p):
        ok = b.eq(err, 0)
        post = dict(post)
        post["c_sysvm"] = b.ite(ok, b.upd(post["c_sysvm"], c, 0), post["c_sysvm"])
        post["p_ms"] = b.ite(ok, b.upd(s["p_ms"], p, b.upd(b.sel(s["p_ms"], p), 0, True)), post["p_ms"])
        return err, out, post
    return post_edit(spec, "open_channel", edit)
