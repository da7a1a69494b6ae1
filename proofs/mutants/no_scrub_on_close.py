"""close_channel hands the channel's page back to the pool without scrubbing it."""
from nanvix.proofs.mutants._util import post_edit

TARGETS = ["ind.close_channel.*"]


def mutate(spec):
    def edit(b, cfg, s, post, err, out, c):
        post = dict(post)
        post["p_scrub"] = s["p_scrub"]
        return err, out, post
    return post_edit(spec, "close_channel", edit)
