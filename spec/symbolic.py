"""The one Z3 encoding of the spec: symbolic states and arguments for both tiers (bounded:
Z3Bounded, tuples of terms; parametric: Z3Full, arrays over uninterpreted sorts), and conversion
between concrete values and Z3 terms (used by the proofs, counterexamples and the agreement
tests)."""
import z3

from nanvix import spec as M
from nanvix.spec.backend import Z3Bounded

IDW = Z3Bounded.ID_WIDTH


def _leaf(kind, cfg, name):
    if kind == "bool":
        return z3.Bool(name), []
    if kind[0] == "bv":
        return z3.BitVec(name, kind[1]), []
    x = z3.BitVec(name, IDW)
    if kind[0] == "id":
        return x, [z3.ULT(x, cfg.sizes()[kind[1]])]
    if kind[0] == "enum":
        return x, [z3.ULT(x, kind[1])]
    if kind[0] == "int":
        return x, [z3.ULE(x, kind[1])]
    raise ValueError(kind)


def _build(dims, kind, cfg, name, cons):
    if not dims:
        v, c = _leaf(kind, cfg, name)
        cons.extend(c)
        return v
    n = cfg.sizes()[dims[0]]
    return tuple(_build(dims[1:], kind, cfg, "%s_%d" % (name, i), cons) for i in range(n))


def sym_state(cfg, prefix, only=None):
    """A fresh symbolic state: (state dict, typing constraints)."""
    cons = []
    s = {}
    for f, (dims, kind) in M.fields(cfg).items():
        if only is not None and f not in only:
            continue
        s[f] = _build(dims, kind, cfg, "%s.%s" % (prefix, f), cons)
    return s, cons


def arg_kind(cfg, sort):
    return {"T": ("id", "T"), "U": ("id", "U"), "C": ("id", "C"), "P": ("id", "P"), "K": ("id", "K"),
            "V": ("bv", cfg.V), "B": "bool", "I": ("bv", cfg.W), "S": ("id", "R"),
            "2": ("enum", 2)}[sort]


def sym_args(cfg, op, prefix):
    cons = []
    out = []
    for i, sort in enumerate(M.OPS[op][1]):
        v, c = _leaf(arg_kind(cfg, sort), cfg, "%s.%s%d" % (prefix, sort, i))
        out.append(v)
        cons.extend(c)
    return out, cons


def to_z3(cfg, s):
    """Encode a concrete state as Z3 constants of the right sorts."""
    out = {}
    for f, (dims, kind) in M.fields(cfg).items():
        out[f] = _enc(s[f], kind)
    return out


def enc_value(v, kind):
    return _enc(v, kind)


def _enc(v, kind):
    if isinstance(v, tuple):
        return tuple(_enc(x, kind) for x in v)
    if kind == "bool":
        return z3.BoolVal(bool(v))
    if kind[0] == "bv":
        return z3.BitVecVal(v, kind[1])
    return z3.BitVecVal(v, IDW)


def value(model, t):
    """A term (or nested tuple of terms) evaluated in a model, as Python values."""
    if isinstance(t, tuple):
        return tuple(value(model, x) for x in t)
    if isinstance(t, (bool, int)):
        return t
    v = model.eval(t, model_completion=True)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    return v.as_long()


def state_value(model, s):
    return {f: value(model, v) for f, v in s.items()}


def concrete_of(t):
    """A ground term (no variables) as a Python value."""
    if isinstance(t, tuple):
        return tuple(concrete_of(x) for x in t)
    if isinstance(t, (bool, int)):
        return t
    v = z3.simplify(t)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    return v.as_long()


# ---- the parametric tier (Z3Full) ----------------------------------------------------------------

def _leaf_sort(b, kind):
    if kind == "bool":
        return z3.BoolSort()
    if kind[0] == "bv":
        return z3.BitVecSort(kind[1])
    if kind[0] == "id":
        return b.sorts[kind[1]]
    return z3.BitVecSort(IDW)


# Int fields bounded by a size (a tenant's quotas: at most U user VMs, P pages): with parametric
# sorts there is no such size, so in the full tier a quota is any IDW-bit value.
SIZE_BOUNDED = ("t_qu", "t_qp")


def full_state(b, cfg, prefix, only=None):
    """A fresh symbolic state for the parametric tier (Z3Full): one Z3 array per field, over
    uninterpreted sorts; enum and int bounds (but SIZE_BOUNDED's) as quantified constraints."""
    s, cons = {}, []
    for f, (dims, kind) in M.fields(cfg).items():
        if only is not None and f not in only:
            continue
        rng = _leaf_sort(b, kind)
        for d in reversed(dims):
            rng = z3.ArraySort(b.sorts[d], rng)
        a = z3.Const("%s.%s" % (prefix, f), rng)
        s[f] = a
        if kind != "bool" and kind[0] in ("enum", "int") and len(dims) == 1 and f not in SIZE_BOUNDED:
            x = z3.Const("%s.%s.x" % (prefix, f), b.sorts[dims[0]])
            bound = z3.ULT(a[x], kind[1]) if kind[0] == "enum" else z3.ULE(a[x], kind[1])
            cons.append(z3.ForAll([x], bound))
    return s, cons


def full_args(b, cfg, op, prefix):
    out, cons = [], []
    for i, sort in enumerate(M.OPS[op][1]):
        name = "%s.%s%d" % (prefix, sort, i)
        if sort in ("T", "U", "C", "P", "K"):
            v = z3.Const(name, b.sorts[sort])
        elif sort == "V":
            v = z3.BitVec(name, cfg.V)
        elif sort == "I":
            v = z3.BitVec(name, cfg.W)
        elif sort == "B":
            v = z3.Bool(name)
        elif sort == "S":
            v = z3.BitVec(name, cfg.W)
            cons.append(z3.ULT(v, cfg.R))
        else:
            v = z3.BitVec(name, IDW)
            cons.append(z3.ULT(v, 2))
        out.append(v)
    return out, cons
