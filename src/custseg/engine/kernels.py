"""The nearest-centre kernel every k-means pass shares: scores in vector registers, written in LLVM IR.

For each row ``x`` of a block and each centre ``c`` the kernel computes the score
``s(x, c) = Σ_f x_f · (-2 c_f)`` (one fused multiply-add per feature, in feature
order, in X's dtype) ``+ ‖c‖²``, which orders the centres as ``‖x - c‖²`` does,
and returns the first centre with the lowest score, its score and, on request, the
second-lowest score. Centres are taken in fixed groups of :data:`LANES`: the
``LANES`` scores of one row sit in one vector register, each feature is one
broadcast and one vector FMA, and :data:`ROWS` rows go through the features
together so that each group of centre coefficients is loaded once for them. The
arg-min is a horizontal minimum and the lowest lane equal to it.

numba's loops did not vectorise this product (one scalar FMA per centre and
feature, 22 ns a row at 17 features and 8 centres, against 4.8 ns here; see
``docs/scale.md``), so the kernel is an :func:`numba.extending.intrinsic` that
emits the vector IR itself. It is a module-level function with a fixed shape
(any number of rows, features and groups of centres), so the compiled functions
that call it are cached on disk by numba like any other (``cache=True``): it is
compiled once per machine, not per process, and not per (k, p).

numba keys the cache of a compiled function on its own source file only: after
changing the IR here, touch ``lloyd.py`` (or delete its ``__pycache__``) so that the
passes are compiled again with it.

The centres come in the padded form :func:`centres_for_kernel` makes: ``-2 Cᵀ``
with zero columns up to a multiple of :data:`LANES` centres, and ``‖c‖²`` with
``+inf`` for the padding, so a padding centre never wins.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Centres scored together in one vector register.
LANES = 8
#: Rows that go through the features together (each group of coefficients is loaded once for them).
ROWS = 4

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def centres_for_kernel(centres: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(-2 Cᵀ, ‖c‖²)`` in ``dtype``, padded to a multiple of :data:`LANES` centres.

    Parameters
    ----------
    centres : ndarray of shape (k, p), float64
    dtype : float32 or float64
        The dtype of the rows the kernel will score.

    Returns
    -------
    c2t : ndarray of shape (p, K)
        C-contiguous; columns ``k`` to ``K - 1`` are zero (``K``: ``k`` rounded up to ``LANES``).
    cn : ndarray of shape (K,)
        ``‖c‖²`` of each centre (computed in float64), ``+inf`` for the padding.
    """
    k, p = centres.shape
    K = -(-k // LANES) * LANES
    c2t = np.zeros((p, K), dtype=dtype)
    c2t[:, :k] = -2.0 * centres.T
    cn = np.full(K, np.inf, dtype=dtype)
    cn[:k] = np.einsum("ij,ij->i", centres, centres)
    return c2t, cn


def _row_addr(builder, array, row, stride):
    return builder.add(builder.ptrtoint(array.data, _I64), builder.mul(row, stride))


def _at(builder, array, i, size, ty):
    return builder.inttoptr(_row_addr(builder, array, i, _I64(size)), ty.as_pointer())


def _broadcast(builder, x, vty):
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, _I64(0))
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _select_min(builder, a, b):
    return builder.select(builder.fcmp_ordered("<", b, a), b, a)


def _lane_min(builder, s, vty):
    """The smallest lane of ``s`` in every lane (a butterfly of shuffles)."""
    for step in (4, 2, 1):
        swapped = builder.shuffle_vector(s, ir.Constant(vty, ir.Undefined),
                                         ir.Constant(ir.VectorType(_I32, LANES), [j ^ step for j in range(LANES)]))
        s = _select_min(builder, s, swapped)
    return s


def _codegen(with_second: bool):
    def codegen(context, builder, signature, args):
        arrays = [context.make_array(t)(context, builder, value=v) for t, v in zip(signature.args, args)]
        xa, ca, na, ba, la = arrays[:5]
        dtype = signature.args[0].dtype
        size = dtype.bitwidth // 8
        fty = context.get_value_type(dtype)
        vty = ir.VectorType(fty, LANES)
        m, p = cgutils.unpack_tuple(builder, xa.shape)
        xstride, fstride = cgutils.unpack_tuple(builder, xa.strides)
        cstride = cgutils.unpack_tuple(builder, ca.strides)[0]
        groups = builder.udiv(cgutils.unpack_tuple(builder, ca.shape)[1], _I64(LANES))
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                             f"llvm.fma.v{LANES}f{dtype.bitwidth}")
        mask_ty = ir.IntType(LANES)
        cttz = cgutils.get_or_insert_function(builder.module, ir.FunctionType(mask_ty, [mask_ty, ir.IntType(1)]),
                                              f"llvm.cttz.i{LANES}")
        inf = ir.Constant(fty, float("inf"))
        zero = ir.Constant(vty, [0.0] * LANES)

        def score_rows(first, count):
            best = [cgutils.alloca_once(builder, _I64) for _ in range(count)]
            low = [cgutils.alloca_once(builder, fty) for _ in range(count)]
            second = [cgutils.alloca_once(builder, fty) for _ in range(count)]
            acc = [cgutils.alloca_once(builder, vty) for _ in range(count)]
            rows = [_row_addr(builder, xa, builder.add(first, _I64(i)), xstride) for i in range(count)]
            for i in range(count):
                builder.store(_I64(0), best[i])
                builder.store(inf, low[i])
                builder.store(inf, second[i])
            with cgutils.for_range(builder, groups) as group:
                col = builder.mul(group.index, _I64(LANES))
                for a in acc:
                    builder.store(zero, a)
                coefs = builder.add(builder.ptrtoint(ca.data, _I64), builder.mul(col, _I64(size)))
                with cgutils.for_range(builder, p) as feature:
                    f = feature.index
                    cv = builder.load(builder.inttoptr(builder.add(coefs, builder.mul(f, cstride)), vty.as_pointer()),
                                      align=size)
                    offset = builder.mul(f, fstride)
                    for i in range(count):
                        x = builder.load(builder.inttoptr(builder.add(rows[i], offset), fty.as_pointer()))
                        builder.store(builder.call(fma, [_broadcast(builder, x, vty), cv, builder.load(acc[i])]), acc[i])
                norms = builder.load(_at(builder, na, col, size, vty), align=size)
                for i in range(count):
                    s = builder.fadd(builder.load(acc[i]), norms)
                    smallest = _lane_min(builder, s, vty)
                    # a row with a NaN score has no lane equal to its minimum: lane 0, and it never wins
                    lane = builder.call(cttz, [builder.bitcast(builder.fcmp_ordered("==", s, smallest), mask_ty),
                                               ir.IntType(1)(0)])
                    lane = builder.and_(lane, mask_ty(LANES - 1))
                    v = builder.extract_element(smallest, _I64(0))
                    old = builder.load(low[i])
                    closer = builder.fcmp_ordered("<", v, old)
                    if with_second:
                        # second lowest of the group: its lowest lane taken out; then merged with the rows' so far
                        rest = builder.insert_element(s, inf, lane)
                        rest = builder.extract_element(_lane_min(builder, rest, vty), _I64(0))
                        hi = builder.select(closer, old, v)
                        builder.store(_select_min(builder, _select_min(builder, builder.load(second[i]), rest), hi),
                                      second[i])
                    builder.store(builder.select(closer, builder.add(col, builder.zext(lane, _I64)),
                                                 builder.load(best[i])), best[i])
                    builder.store(builder.select(closer, v, old), low[i])
            for i in range(count):
                r = builder.add(first, _I64(i))
                builder.store(builder.load(best[i]), _at(builder, ba, r, 8, _I64))
                builder.store(builder.load(low[i]), _at(builder, la, r, size, fty))
                if with_second:
                    builder.store(builder.load(second[i]), _at(builder, arrays[5], r, size, fty))

        whole = builder.udiv(m, _I64(ROWS))
        with cgutils.for_range(builder, whole) as loop:
            score_rows(builder.mul(loop.index, _I64(ROWS)), ROWS)
        done = builder.mul(whole, _I64(ROWS))
        with cgutils.for_range(builder, builder.sub(m, done)) as loop:
            score_rows(builder.add(done, loop.index), 1)
        return context.get_dummy_value()

    return codegen


def _check(X, c2t, cn, best, low, *rest):
    floats = (types.float32, types.float64)
    if not (isinstance(X, types.Array) and X.ndim == 2 and X.dtype in floats):
        raise TypeError("X must be a 2-D float32 or float64 array")
    if not (c2t.ndim == 2 and c2t.layout == "C" and cn.ndim == 1 and cn.layout == "C"
            and c2t.dtype == cn.dtype == X.dtype):
        raise TypeError("the centres must be C-contiguous, in X's dtype (see centres_for_kernel)")
    if best.dtype != types.int64 or any(a.dtype != X.dtype for a in (low, *rest)):
        raise TypeError("best must be int64, low and second in X's dtype")


@intrinsic
def nearest_block(typingctx, X, c2t, cn, best, low):
    """Nearest centre of each row of ``X`` into ``best`` (int64) and its score into ``low``.

    ``X`` is any 2-D float array (rows may be strided); ``c2t``, ``cn`` from
    :func:`centres_for_kernel` in X's dtype; ``best`` and ``low`` hold at least
    ``len(X)`` values (contiguous). The first centre of equal lowest scores wins.
    """
    _check(X, c2t, cn, best, low)
    return types.void(X, c2t, cn, best, low), _codegen(with_second=False)


@intrinsic
def nearest_two_block(typingctx, X, c2t, cn, best, low, second):
    """:func:`nearest_block`, and the second-lowest score of each row into ``second`` (``+inf`` when k = 1)."""
    _check(X, c2t, cn, best, low, second)
    return types.void(X, c2t, cn, best, low, second), _codegen(with_second=True)
