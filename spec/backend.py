"""The two interpretations of the spec.

Every operation, invariant and the observation function in nanvix.spec.model is written ONCE
against the small API below and run under either backend:

- `Concrete`: Python ints / bools / tuples. The executable reference model (explore, refinement).
- `Z3Bounded`: the same tuples, but whose leaves are Z3 terms; `sel`/`upd` with a symbolic index
  become if-then-else chains, `tab`/`all`/`any`/`count` unroll over the finite sort. Everything
  stays quantifier-free (the `fast` tier).

State values are nested tuples indexed by finite sorts (T tenants, U user VMs, C channels, P pages,
K cores, R ring slots, H = 2**W history positions). Scalars are bools, small enums/ids and
fixed-width bit-vectors (ring indices wrap modulo 2**W).
"""


class Sparse:
    """An immutable array of n cells, most holding `default`: the concrete history array when the
    ring index is as wide as the implementation's (W = 32, so H = 2**32 cells). Equal and hashed
    by content, so states holding one compare like states holding tuples."""
    __slots__ = ("n", "default", "cells", "_hash")

    def __init__(self, n, default, cells=None):
        self.n, self.default = n, default
        self.cells = cells or {}
        self._hash = None

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.cells.get(i, self.default)

    def set(self, i, v):
        if not 0 <= i < self.n:
            raise IndexError(i)
        cells = dict(self.cells)
        if v == self.default:
            cells.pop(i, None)
        else:
            cells[i] = v
        return Sparse(self.n, self.default, cells)

    def __eq__(self, other):
        if isinstance(other, Sparse):
            return (self.n, self.default, self.cells) == (other.n, other.default, other.cells)
        return NotImplemented

    def __hash__(self):
        if self._hash is None:
            self._hash = hash((self.n, self.default, frozenset(self.cells.items())))
        return self._hash

    def __repr__(self):
        return "Sparse(%d, %r, %r)" % (self.n, self.default, dict(sorted(self.cells.items())))


SPARSE_FROM = 1 << 16   # arrays over sorts at least this large are Sparse
NOBODY = 255            # the actor of an operation on an idle core: an id no tenant has


class Concrete:
    symbolic = False

    def __init__(self, cfg):
        self.cfg = cfg
        self.size = cfg.sizes()

    # logic
    @staticmethod
    def ite(c, a, b):
        return a if c else b

    @staticmethod
    def and_(*xs):
        for x in xs:
            if not x:
                return False
        return True

    @staticmethod
    def or_(*xs):
        for x in xs:
            if x:
                return True
        return False

    @staticmethod
    def not_(x):
        return not x

    @staticmethod
    def implies(a, b):
        return (not a) or bool(b)

    @staticmethod
    def eq(a, b):
        return a == b

    @staticmethod
    def ne(a, b):
        return a != b

    # fixed-width bit-vectors (unsigned)
    @staticmethod
    def add(x, y, w):
        return (x + y) & ((1 << w) - 1)

    @staticmethod
    def sub(x, y, w):
        return (x - y) & ((1 << w) - 1)

    @staticmethod
    def ult(x, y):
        return x < y

    @staticmethod
    def ule(x, y):
        return x <= y

    @staticmethod
    def band(x, m):
        return x & m

    # arrays over finite sorts
    @staticmethod
    def sel(arr, i):
        return arr[i]

    @staticmethod
    def upd(arr, i, v):
        if isinstance(arr, Sparse):
            return arr.set(i, v)
        return arr[:i] + (v,) + arr[i + 1:]

    def tab(self, sort, fn):
        return tuple(fn(k) for k in range(self.size[sort]))

    def all(self, sort, fn):
        for k in range(self.size[sort]):
            if not fn(k):
                return False
        return True

    def any(self, sort, fn):
        for k in range(self.size[sort]):
            if fn(k):
                return True
        return False

    def count(self, sort, fn):
        return sum(1 for k in range(self.size[sort]) if fn(k))

    @staticmethod
    def ite_state(ok, new, old):
        return new if ok else old

    def fill(self, sort, v, width=None):
        """The array over `sort` holding v everywhere."""
        n = self.size[sort]
        return Sparse(n, v) if n >= SPARSE_FROM else (v,) * n

    def fill2(self, s1, s2, v, width=None):
        return (self.fill(s2, v),) * self.size[s1]

    def fill_id(self, sort, of):
        """The array over `sort` holding a fixed id of sort `of` (0)."""
        return (0,) * self.size[sort]

    @staticmethod
    def nobody():
        return NOBODY

    @staticmethod
    def mask(c, v):
        """v where c holds, else the zero of v's type (False / 0)."""
        if c:
            return v
        return False if isinstance(v, bool) else 0

    @staticmethod
    def first(pairs, ok_code=0):
        """pairs = [(condition that must hold, error code if it does not), ...]."""
        for cond, code in pairs:
            if not cond:
                return code
        return ok_code


class Z3Bounded:
    """Bounded finite sorts, quantifier-free. Leaves are Z3 terms (or Python constants)."""
    symbolic = True
    ID_WIDTH = 8

    def __init__(self, cfg):
        import z3
        self.z3 = z3
        self.cfg = cfg
        self.size = cfg.sizes()

    def _isz(self, x):
        return isinstance(x, self.z3.ExprRef)

    def ite(self, c, a, b):
        z3 = self.z3
        if a is b:
            return a
        if isinstance(c, bool):
            return a if c else b
        if isinstance(a, tuple):
            return tuple(self.ite(c, x, y) for x, y in zip(a, b))
        if self._isz(a) or self._isz(b):
            if self._isz(a) and self._isz(b) and a.eq(b):
                return a
            return z3.If(c, *self._same_sort(a, b))
        if isinstance(a, bool) and isinstance(b, bool):
            return a if a == b else z3.If(c, z3.BoolVal(a), z3.BoolVal(b))
        if a == b:
            return a
        return z3.If(c, z3.BitVecVal(a, self.ID_WIDTH), z3.BitVecVal(b, self.ID_WIDTH))

    def _same_sort(self, a, b):
        """Two branches of an If, one of them a term: Z3 lifts a Python constant itself."""
        return a, b

    def and_(self, *xs):
        out = []
        for x in xs:
            if isinstance(x, bool):
                if not x:
                    return False
                continue
            out.append(x)
        if not out:
            return True
        return out[0] if len(out) == 1 else self.z3.And(*out)

    def or_(self, *xs):
        out = []
        for x in xs:
            if isinstance(x, bool):
                if x:
                    return True
                continue
            out.append(x)
        if not out:
            return False
        return out[0] if len(out) == 1 else self.z3.Or(*out)

    def not_(self, x):
        if isinstance(x, bool):
            return not x
        return self.z3.Not(x)

    def implies(self, a, b):
        return self.or_(self.not_(a), b)

    def eq(self, a, b):
        if isinstance(a, tuple):
            return self.and_(*[self.eq(x, y) for x, y in zip(a, b)])
        return a == b  # a Python bool for constants, a Z3 term otherwise

    def ne(self, a, b):
        return self.not_(self.eq(a, b))

    def _bv(self, x, w):
        return x if self._isz(x) else self.z3.BitVecVal(x, w)

    def add(self, x, y, w):
        if not self._isz(x) and not self._isz(y):
            return (x + y) & ((1 << w) - 1)
        return self._bv(x, w) + self._bv(y, w)

    def sub(self, x, y, w):
        if not self._isz(x) and not self._isz(y):
            return (x - y) & ((1 << w) - 1)
        return self._bv(x, w) - self._bv(y, w)

    def ult(self, x, y):
        if not self._isz(x) and not self._isz(y):
            return x < y
        return self.z3.ULT(x, y)

    def ule(self, x, y):
        if not self._isz(x) and not self._isz(y):
            return x <= y
        return self.z3.ULE(x, y)

    def band(self, x, m):
        return x & m

    def sel(self, arr, i):
        if not self._isz(i):
            return arr[i]
        r = arr[-1]
        for k in range(len(arr) - 2, -1, -1):
            r = self.ite(i == k, arr[k], r)
        return r

    def upd(self, arr, i, v):
        if not self._isz(i):
            return arr[:i] + (v,) + arr[i + 1:]
        return tuple(self.ite(i == k, v, arr[k]) for k in range(len(arr)))

    def tab(self, sort, fn):
        return tuple(fn(k) for k in range(self.size[sort]))

    def all(self, sort, fn):
        return self.and_(*[fn(k) for k in range(self.size[sort])])

    def any(self, sort, fn):
        return self.or_(*[fn(k) for k in range(self.size[sort])])

    def count(self, sort, fn):
        z3 = self.z3
        terms = []
        const = 0
        for k in range(self.size[sort]):
            c = fn(k)
            if isinstance(c, bool):
                const += int(c)
            else:
                terms.append(z3.If(c, z3.BitVecVal(1, self.ID_WIDTH), z3.BitVecVal(0, self.ID_WIDTH)))
        if not terms:
            return const
        return z3.BitVecVal(const, self.ID_WIDTH) + z3.Sum(terms) if len(terms) > 1 or const else terms[0]

    def ite_state(self, ok, new, old):
        return {f: self.ite(ok, new[f], old[f]) for f in old}

    def mask(self, c, v):
        isb = isinstance(v, bool) or (self._isz(v) and self.z3.is_bool(v))
        return self.ite(c, v, False if isb else 0)

    def fill(self, sort, v, width=None):
        return (v,) * self.size[sort]

    def fill2(self, s1, s2, v, width=None):
        return ((v,) * self.size[s2],) * self.size[s1]

    def fill_id(self, sort, of):
        return (0,) * self.size[sort]

    @staticmethod
    def nobody():
        return NOBODY

    def first(self, pairs, ok_code=0):
        err = ok_code
        for cond, code in reversed(pairs):
            err = self.ite(cond, err, code)
        return err


class Z3Full(Z3Bounded):
    """Parametric interpretation: the id sorts are uninterpreted (any number of tenants, user
    VMs/channels, pages, cores), fields are Z3 arrays, `tab` is a lambda, `all`/`any` are
    quantifiers. Ring slots and history positions stay W-bit bit-vectors (R and W are fixed).
    C and U are one sort here (the implementation has one channel per user VM, id = user VM id).
    `count` is the cardinality of a set (see count() and card_axioms()), an unbounded Int.
    The logic and bit-vector operations are Z3Bounded's; the arrays and sorts are its own."""

    def __init__(self, cfg):
        import z3
        self.z3 = z3
        self.cfg = cfg
        u = z3.DeclareSort("UVM")
        self.sorts = {"T": z3.DeclareSort("Tenant"), "U": u, "C": u, "P": z3.DeclareSort("Page"),
                      "K": z3.DeclareSort("Core"), "R": z3.BitVecSort(cfg.W), "H": z3.BitVecSort(cfg.W)}
        self._n = 0
        self._nobody = z3.Const("nobody", self.sorts["T"])
        self._card = {}      # Z3 sort name -> (Card function, its axioms)

    def _fresh(self, sort):
        self._n += 1
        return self.z3.Const("_x%d" % self._n, self.sorts[sort])

    def _coerce(self, v, sort):
        z3 = self.z3
        if self._isz(v):
            return v
        if isinstance(v, bool):
            return z3.BoolVal(v)
        if z3.is_bv_sort(sort):
            return z3.BitVecVal(v, sort.size())
        if v == 0 and sort.kind() == z3.Z3_UNINTERPRETED_SORT:
            return self._zero(sort)       # "0" of an id sort: the fixed id used for cleared fields
        raise TypeError("cannot coerce %r to %s" % (v, sort))

    def _same_sort(self, a, b):
        """Uninterpreted sorts have no Python constants: lift the constant to the term's sort."""
        if not self._isz(a):
            a = self._coerce(a, b.sort())
        if not self._isz(b):
            b = self._coerce(b, a.sort())
        return a, b

    def sel(self, arr, i):
        if not self._isz(i):
            i = self._coerce(i, arr.domain())
        return arr[i]

    def upd(self, arr, i, v):
        if not self._isz(i):
            i = self._coerce(i, arr.domain())
        return self.z3.Store(arr, i, self._coerce(v, arr.range()))

    def tab(self, sort, fn):
        x = self._fresh(sort)
        body = fn(x)
        if not self._isz(body):
            raise TypeError("tab needs a term body")
        return self.z3.Lambda([x], body)

    def all(self, sort, fn):
        x = self._fresh(sort)
        body = fn(x)
        return body if isinstance(body, bool) else self.z3.ForAll([x], body)

    def any(self, sort, fn):
        x = self._fresh(sort)
        body = fn(x)
        return body if isinstance(body, bool) else self.z3.Exists([x], body)

    # ---- counting -------------------------------------------------------------------------
    # count(sort, fn) = Card_sort(the set {x | fn(x)}), Card_sort an uninterpreted function from
    # Array(sort, Bool) to Int. Int, not a bit-vector: with any number of user VMs or pages a
    # fixed-width count could wrap (a tenant over its quota would look under it); quotas are
    # compared as the unsigned values they are (ult/ule below). Equal sets give equal counts
    # (congruence); what a count is otherwise is card_axioms()'s: facts true of |A| for every
    # finite set A. The sorts stand for finitely many tenants, user VMs, pages and cores, so each
    # fact holds in every instance (its witness functions chosen by the instance): adding them
    # never makes a false obligation provable.

    def count(self, sort, fn):
        z3 = self.z3
        x = self._fresh(sort)
        body = fn(x)
        body = z3.BoolVal(body) if isinstance(body, bool) else body
        return self._card_fn(sort)(z3.Lambda([x], body))

    def _card_fn(self, sort):
        name = self.sorts[sort].name()      # U and C are one sort: one Card
        if name not in self._card:
            self._card[name] = self._declare_card(sort)
        return self._card[name][0]

    def _declare_card(self, sort):
        """Card over sets of `sort` and what every finite set's size satisfies. Each fact is a
        first-order clause whose existential part is a named witness function (Skolem form), with
        the Card terms as its trigger, so Z3 instantiates it for the counts an obligation has
        (and pairs of them), nothing more:
          - a size is >= 0, and 0 unless the set has a member Some(A);
          - |A| <= |B| unless A has a member Out(A, B) outside B (A included in B: no more);
            with (B, A) as well, sets that agree everywhere have the same size;
          - |A| <= |B| + 1 unless A has two distinct members Out1, Out2 outside B (an operation
            that adds at most one element adds at most one to the count)."""
        z3 = self.z3
        S, name = self.sorts[sort], self.sorts[sort].name()
        Set = z3.ArraySort(S, z3.BoolSort())
        card = z3.Function("Card_%s" % name, Set, z3.IntSort())
        some = z3.Function("Card_some_%s" % name, Set, S)
        out = z3.Function("Card_out_%s" % name, Set, Set, S)
        o1 = z3.Function("Card_out1_%s" % name, Set, Set, S)
        o2 = z3.Function("Card_out2_%s" % name, Set, Set, S)
        A, B = z3.Const("Card_A_%s" % name, Set), z3.Const("Card_B_%s" % name, Set)
        outside = lambda w: z3.And(A[w], z3.Not(B[w]))
        axioms = [
            z3.ForAll([A], z3.And(card(A) >= 0, z3.Or(card(A) == 0, A[some(A)])), patterns=[card(A)]),
            z3.ForAll([A, B], z3.Or(card(A) <= card(B), outside(out(A, B))),
                      patterns=[z3.MultiPattern(card(A), card(B))]),
            z3.ForAll([A, B], z3.Or(card(A) <= card(B) + 1,
                                    z3.And(outside(o1(A, B)), outside(o2(A, B)), o1(A, B) != o2(A, B))),
                      patterns=[z3.MultiPattern(card(A), card(B))]),
        ]
        return card, axioms

    def card_axioms(self):
        """The facts about the counts this backend has built so far (add them to a solver after
        building every term it checks)."""
        return [a for _, axioms in self._card.values() for a in axioms]

    def _num(self, x, y):
        """A count (Int) against a quota (an unsigned bit-vector or a constant): both as Ints."""
        z3 = self.z3
        lift = lambda v: z3.BV2Int(v, is_signed=False) if self._isz(v) and z3.is_bv(v) else \
            (z3.IntVal(v) if not self._isz(v) else v)
        if any(self._isz(v) and z3.is_int(v) for v in (x, y)):
            return lift(x), lift(y), True
        return x, y, False

    def ult(self, x, y):
        x, y, ints = self._num(x, y)
        return x < y if ints else Z3Bounded.ult(self, x, y)

    def ule(self, x, y):
        x, y, ints = self._num(x, y)
        return x <= y if ints else Z3Bounded.ule(self, x, y)

    def fill(self, sort, v, width=None):
        z3 = self.z3
        if isinstance(v, bool):
            val = z3.BoolVal(v)
        else:
            val = z3.BitVecVal(v, width or self.ID_WIDTH)
        return z3.K(self.sorts[sort], val)

    def fill2(self, s1, s2, v, width=None):
        return self.z3.K(self.sorts[s1], self.fill(s2, v, width))

    def fill_id(self, sort, of):
        return self.z3.K(self.sorts[sort], self._zero(self.sorts[of]))

    def nobody(self):
        return self._nobody

    def _zero(self, sort):
        z3 = self.z3
        if sort.kind() == z3.Z3_BOOL_SORT:
            return z3.BoolVal(False)
        if sort.kind() == z3.Z3_BV_SORT:
            return z3.BitVecVal(0, sort.size())
        if sort.kind() == z3.Z3_ARRAY_SORT:
            return z3.K(sort.domain(), self._zero(sort.range()))
        return z3.Const("zero_%s" % sort.name(), sort)

    def mask(self, c, v):
        if isinstance(v, bool):
            return self.ite(c, v, False)
        if isinstance(v, int):
            return self.ite(c, v, 0)
        return self.ite(c, v, self._zero(v.sort()))

