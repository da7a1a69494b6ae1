"""Helpers for mutants: wrap an operation of a Spec."""


def replace_op(spec, name, fn):
    spec = spec.copy()
    _, sorts, actor = spec.ops[name]
    spec.ops[name] = (fn, sorts, actor)
    return spec


def post_edit(spec, name, edit):
    """Mutate an operation by editing its post-state: edit(b, cfg, s, post, err, out, *args) ->
    (err, out, post)."""
    orig = spec.ops[name][0]

    def fn(b, cfg, s, *args):
        err, out, post = orig(b, cfg, s, *args)
        return edit(b, cfg, s, post, err, out, *args)
    return replace_op(spec, name, fn)


def keep(spec, name, *fields):
    """Mutate an operation so that it forgets to update `fields`: they keep their pre-state."""
    def edit(b, cfg, s, post, err, out, *args):
        post = dict(post)
        for f in fields:
            post[f] = s[f]
        return err, out, post
    return post_edit(spec, name, edit)
