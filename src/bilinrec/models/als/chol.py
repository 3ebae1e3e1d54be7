"""Compiled exact (Cholesky) solvers of the ALS normal equations and of stacked SPD systems.

``cholesky_solve_rows`` (``ALS(solver="cholesky")``) handles one row at a time, reading its cells
from the CSR arrays (as the CG kernel of :mod:`.cg` does). The row's factor vectors are gathered
(unweighted and weighted, zero-padded, at most ``_CELL_CHUNK`` cells at a time), the upper
triangle of its normal matrix is accumulated from them in register tiles (6 rows x two AVX
vectors: the tile stays in registers over all of the row's cells), and factorised in place by a
left-looking Cholesky by panels of 4 rows whose updates use the same tiles; the right-hand side
rides along as an extra column (so the factorisation also does the forward solve), and a
backward solve finishes the row. The tiles are emitted as LLVM IR (``_tile_intrinsic``): LLVM
does not produce them from Python loops, and the plain loops' short, varying trip counts (rank-4
updates of a triangle, dot products of length j) run mostly in scalar remainders (this is about
2x faster than those loops on MovieLens-100K with k = 100). Per thread there are a few padded
k x (k + 16) buffers, and no Python call per row or batch: at ALS sizes (k ~ 100) this beats a
batched GEMM followed by a loop of LAPACK ``posv`` calls, whose blocking pays off only for large
matrices (see ``docs/benchmarks-performance.md``). ``spd_solve`` (stacked dense systems) uses
the left-looking (Crout) Cholesky of ``_factor_solve``, two columns by four rows at a time."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ..fastmath import FASTMATH
from .threads import kernel_threads, kernel_workers

#: Interleaved parts per thread (as in :mod:`.cg`).
_PARTS_PER_THREAD = 8


@numba.njit(cache=True, fastmath=FASTMATH, nogil=True, inline="always")
def _factor_solve(L, z):  # pragma: no cover - compiled
    # In place: the lower triangle of L becomes its Cholesky factor and z the solution of L L^T x = z;
    # False if L is not positive definite. Loops run from 0 over slices (no index wraparound), so
    # they vectorise.
    k = L.shape[0]
    j = 0
    while j < k:  # columns j and j + 1 together: their dot products share the loads of L[i, :j]
        lj = L[j, :j]
        s = L[j, j]
        for t in range(j):
            s -= lj[t] * lj[t]
        if not s > 0:
            return False
        d = np.sqrt(s)
        L[j, j] = d
        if j + 1 == k:
            break
        lk = L[j + 1, :j]
        s = L[j + 1, j]
        for t in range(j):
            s -= lk[t] * lj[t]
        e = s / d
        L[j + 1, j] = e
        s = L[j + 1, j + 1] - e * e
        for t in range(j):
            s -= lk[t] * lk[t]
        if not s > 0:
            return False
        d1 = np.sqrt(s)
        L[j + 1, j + 1] = d1
        i = j + 2
        while i + 4 <= k:  # L[i:i+4, j:j+2]
            l0, l1, l2, l3 = L[i, :j], L[i + 1, :j], L[i + 2, :j], L[i + 3, :j]
            s0, s1, s2, s3 = L[i, j], L[i + 1, j], L[i + 2, j], L[i + 3, j]
            r0, r1, r2, r3 = L[i, j + 1], L[i + 1, j + 1], L[i + 2, j + 1], L[i + 3, j + 1]
            for t in range(j):
                v, x = lj[t], lk[t]
                s0 -= l0[t] * v
                s1 -= l1[t] * v
                s2 -= l2[t] * v
                s3 -= l3[t] * v
                r0 -= l0[t] * x
                r1 -= l1[t] * x
                r2 -= l2[t] * x
                r3 -= l3[t] * x
            s0, s1, s2, s3 = s0 / d, s1 / d, s2 / d, s3 / d
            L[i, j], L[i + 1, j], L[i + 2, j], L[i + 3, j] = s0, s1, s2, s3
            L[i, j + 1], L[i + 1, j + 1] = (r0 - s0 * e) / d1, (r1 - s1 * e) / d1
            L[i + 2, j + 1], L[i + 3, j + 1] = (r2 - s2 * e) / d1, (r3 - s3 * e) / d1
            i += 4
        while i < k:
            li = L[i, :j]
            s0, r0 = L[i, j], L[i, j + 1]
            for t in range(j):
                s0 -= li[t] * lj[t]
                r0 -= li[t] * lk[t]
            s0 /= d
            L[i, j], L[i, j + 1] = s0, (r0 - s0 * e) / d1
            i += 1
        j += 2
    for i in range(k):  # L y = z, by rows of L
        li, zi = L[i, :i], z[:i]
        s = z[i]
        for t in range(i):
            s -= li[t] * zi[t]
        z[i] = s / L[i, i]
    for i in range(k - 1, -1, -1):  # L^T x = y, by columns of L^T (rows of L)
        c = z[i] / L[i, i]
        z[i] = c
        li, zi = L[i, :i], z[:i]
        for t in range(i):
            zi[t] -= li[t] * c
    return True


@numba.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _solve_stack(A, b, x):  # pragma: no cover - compiled
    # x[r] solves A[r] x[r] = b[r] (lower triangles); returns the first r that is not positive
    # definite, or -1.
    k = A.shape[1]
    L = np.zeros((k, k), A.dtype)
    z = np.empty(k, A.dtype)
    for r in range(A.shape[0]):
        for i in range(k):
            src, dst = A[r, i, :i + 1], L[i, :i + 1]
            for t in range(i + 1):
                dst[t] = src[t]
        z[:] = b[r]
        if not _factor_solve(L, z):
            return r
        x[r, :] = z
    return -1


def _tile_intrinsic(rows, subtract, vectors=2):
    """Compiled ``tile(A, Y, n0, n1, f0, t0, B, out)``:
    ``out[f0 + q, t0 + t] = B[f0 + q, t0 + t] + sum_{n0 <= n < n1} A[n, f0 + q] * Y[n, t0 + t]``
    (``-`` if ``subtract``) for ``q < rows`` and ``t < vectors * lanes`` (``lanes = 32 //
    itemsize``: ``vectors`` 256-bit vectors per tile row); all arrays 2-D with contiguous rows, of
    one float dtype, and the tile in bounds (not checked). The ``rows * vectors`` accumulators are
    loop-carried vector values, so they stay in registers for the whole loop over ``n`` (per ``n``:
    ``vectors`` loads of ``Y``, ``rows`` broadcasts of ``A``, ``rows * vectors`` FMAs) and ``B`` and
    ``out`` are touched once, after it (``B`` may be ``out``). Written in LLVM IR because LLVM does
    not produce this register tiling from Python loops: its loop vectoriser vectorises over ``n``
    instead (gathers), its SLP vectoriser leaves the accumulators scalar, and with ``out`` updated
    inside the loop it cannot keep the tile in registers (no alias information)."""

    @intrinsic
    def tile(typingctx, A, Y, n0, n1, f0, t0, src, out):
        sig = types.void(A, Y, n0, n1, f0, t0, src, out)

        def codegen(context, builder, signature, args):
            st = signature.args
            dtype = st[0].dtype
            elem = context.get_value_type(dtype)
            size = dtype.bitwidth // 8
            vec = ir.VectorType(elem, 32 // size)
            i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()
            a, y, o, r = (context.make_array(st[i])(context, builder, args[i]) for i in (0, 1, 7, 6))
            n0v, n1v, f0v, t0v = (context.cast(builder, args[i], st[i], types.int64) for i in (2, 3, 4, 5))
            astr, ystr, ostr, rstr = (builder.extract_value(x.strides, 0) for x in (a, y, o, r))
            adata, ydata, odata, rdata = (builder.bitcast(x.data, i8p) for x in (a, y, o, r))
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 f"llvm.fmuladd.v{vec.count}f{dtype.bitwidth}")
            splat = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
            undef = ir.Constant(vec, ir.Undefined)
            pre = builder.basic_block
            head = builder.append_basic_block("tile.head")
            body = builder.append_basic_block("tile.body")
            done = builder.append_basic_block("tile.done")
            builder.branch(head)
            builder.position_at_end(head)
            n = builder.phi(i64)
            n.add_incoming(n0v, pre)
            acc = []
            for _ in range(vectors * rows):
                acc.append(builder.phi(vec))
                acc[-1].add_incoming(ir.Constant(vec, [0.0] * vec.count), pre)
            builder.cbranch(builder.icmp_signed("<", n, n1v), body, done)
            builder.position_at_end(body)
            yrow = builder.gep(ydata, [builder.add(builder.mul(n, ystr), builder.mul(t0v, ir.Constant(i64, size)))])
            yv = []
            for h in range(vectors):
                ld = builder.load(builder.bitcast(builder.gep(yrow, [ir.Constant(i64, 32 * h)]), vec.as_pointer()))
                ld.align = size
                yv.append(ld)
            arow = builder.gep(adata, [builder.add(builder.mul(n, astr), builder.mul(f0v, ir.Constant(i64, size)))])
            new = []
            for q in range(rows):
                b = builder.load(builder.bitcast(builder.gep(arow, [ir.Constant(i64, size * q)]), elem.as_pointer()))
                b = builder.insert_element(undef, b, ir.Constant(ir.IntType(32), 0))
                b = builder.shuffle_vector(b, undef, splat)
                new += [builder.call(fma, [b, yv[h], acc[vectors * q + h]]) for h in range(vectors)]
            n.add_incoming(builder.add(n, ir.Constant(i64, 1)), builder.basic_block)
            for phi, v in zip(acc, new):
                phi.add_incoming(v, builder.basic_block)
            builder.branch(head)
            builder.position_at_end(done)
            col = builder.mul(t0v, ir.Constant(i64, size))
            orow = builder.gep(odata, [builder.add(builder.mul(f0v, ostr), col)])
            rrow = builder.gep(rdata, [builder.add(builder.mul(f0v, rstr), col)])

            def vector_at(row, stride, q, h):  # pointer to vector h of tile row q
                offset = builder.add(builder.mul(ir.Constant(i64, q), stride), ir.Constant(i64, 32 * h))
                return builder.bitcast(builder.gep(row, [offset]), vec.as_pointer())

            for q in range(rows):
                for h in range(vectors):
                    old = builder.load(vector_at(rrow, rstr, q, h))
                    old.align = size
                    tile_sum = acc[vectors * q + h]
                    res = builder.fsub(old, tile_sum) if subtract else builder.fadd(old, tile_sum)
                    builder.store(res, vector_at(orow, ostr, q, h)).align = size
            return context.get_dummy_value()

        return sig, codegen

    return tile


#: Rows of a register tile of the normal matrix (x two AVX vectors of columns: 6 x 16 in float32,
#: 12 accumulators + 2 operands + 1 broadcast = 15 of the 16 ymm registers) and of a Cholesky
#: panel (measured best on MovieLens-100K, k = 100: 6 x 16 tiles 1.33x faster than 4 x 16 for the
#: normal matrix; panels of 4 rows ahead of 2, 3 and 6). The one-vector tiles end a tile row
#: when at most half a tile of columns is left.
_GRAM_ROWS, _PANEL_ROWS = 6, 4
_gram_tile = _tile_intrinsic(_GRAM_ROWS, False)
_panel_tile = _tile_intrinsic(_PANEL_ROWS, True)
_gram_tile1 = _tile_intrinsic(_GRAM_ROWS, False, 1)
_panel_tile1 = _tile_intrinsic(_PANEL_ROWS, True, 1)
#: Cells of a row gathered at a time (bounds the per-thread gather buffers; they stay in L2).
_CELL_CHUNK = 128


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _solve_cells(out, rows, indptr, indices, conf, target, shift, other, gram, reg, base, n_parts,
                 bad):  # pragma: no cover - compiled
    # Row u = rows[j] solves (gram + reg_u I + sum_n (c_n - base) y_n y_n^T) x = sum_n c_n (p_n - shift_i) y_n
    # over its cells n (column i = indices[n], y_n = other[i]). Part c takes rows c, c + n_parts, ...
    # (balances skewed row costs); a row that is not positive definite is left as it is and the
    # first such index j of the part is written to bad[c].
    #
    # The arithmetic is in register tiles (_tile_intrinsic) over zero-padded buffers with contiguous
    # rows, so the bulk of the work has no loop with a short, varying trip count (which LLVM's
    # vectorised loops leave to long scalar remainders). Per row: its cells are gathered, at most
    # _CELL_CHUNK at a time (Yg[n] = y_n, Ag[n] = (c_n - base) y_n), and the upper triangle of its
    # normal matrix is formed row-major in U (rows of U = columns of the lower triangle) as
    # gram + Ag^T Yg (the first chunk's tiles read gram, later ones U; gram is copied only for a
    # row without cells), in 6 x T tiles that start on the diagonal (a tile's entries below the
    # diagonal are computed and never read; columns past k only ever feed columns past k).
    # Column k of U holds the right-hand side z, so the left-looking Cholesky A = U^T U also
    # performs the forward solve U^T y = z: by panels of 4 rows of U, each
    # first updated with all the rows above it in 4 x T tiles (U[j0:j0+4, t0:t0+T] -=
    # U[:j0, j0:j0+4]^T U[:j0, t0:t0+T]), then factorised by row operations. The backward solve
    # U x = y goes 8 rows at a time (8 dot products sharing the loads of x). The sums run in
    # another order than LAPACK's: results agree to rounding.
    k = other.shape[1]
    T = 64 // other.itemsize  # columns of a tile: two AVX vectors
    kr = max((k + _GRAM_ROWS - 1) // _GRAM_ROWS * _GRAM_ROWS,  # rows: whole tiles cover the first k
             (k + _PANEL_ROWS - 1) // _PANEL_ROWS * _PANEL_ROWS)
    kp = (k + T + 7) // 8 * 8  # tiles start at any column <= k and are T wide
    G = np.zeros((kr, kp), other.dtype)  # gram, both triangles, zero-padded
    for f in range(k):
        for t in range(f + 1):
            G[f, t] = gram[f, t]
            G[t, f] = gram[f, t]
    maxn = 1
    for j in range(rows.shape[0]):
        maxn = max(maxn, min(_CELL_CHUNK, indptr[rows[j] + 1] - indptr[rows[j]]))
    for c in numba.prange(n_parts):
        U = np.zeros((kr, kp), other.dtype)
        Ag = np.zeros((maxn, kp), other.dtype)
        Yg = np.zeros((maxn, kp), other.dtype)
        x = np.zeros(kp, other.dtype)
        z = np.zeros(k, other.dtype)
        for j in range(c, rows.shape[0], n_parts):
            u = rows[j]
            z[:] = 0.0
            n0, stop = indptr[u], indptr[u + 1]
            if n0 == stop:
                for f0 in range(0, k, _GRAM_ROWS):  # U = gram (from column f0 of each tile row)
                    for f in range(f0, f0 + _GRAM_ROWS):
                        src, dst = G[f, f0:kp], U[f, f0:kp]
                        for t in range(kp - f0):
                            dst[t] = src[t]
            B = G  # U = B + Ag^T Yg: from gram for the first chunk
            while n0 < stop:  # chunks of the row's cells
                m = min(_CELL_CHUNK, stop - n0)
                for n in range(m):
                    cn = conf[n0 + n]
                    w = other.dtype.type(cn - base)
                    p = other.dtype.type(cn * (target[n0 + n] - shift[indices[n0 + n]]))
                    y, yg, ag = other[indices[n0 + n]], Yg[n, :k], Ag[n, :k]
                    for f in range(k):
                        yg[f] = y[f]
                        ag[f] = w * y[f]
                        z[f] += p * y[f]
                for f0 in range(0, k, _GRAM_ROWS):
                    for t0 in range(f0, k, T):
                        if k - t0 > T // 2:
                            _gram_tile(Ag, Yg, 0, m, f0, t0, B, U)
                        else:
                            _gram_tile1(Ag, Yg, 0, m, f0, t0, B, U)
                n0 += m
                B = U
            for f in range(k):
                U[f, f] += reg[u]
                U[f, k] = z[f]
            ok = True
            for j0 in range(0, k, _PANEL_ROWS):
                for t0 in range(j0, k + 1, T):  # U[j0:j0+4, t0:t0+T] -= U[:j0, j0:j0+4]^T U[:j0, t0:t0+T]
                    if k + 1 - t0 > T // 2:
                        _panel_tile(U, U, 0, j0, j0, t0, U, U)
                    else:
                        _panel_tile1(U, U, 0, j0, j0, t0, U, U)
                for i in range(j0, min(j0 + _PANEL_ROWS, k)):  # the panel, by row operations
                    ui = U[i, i:k + 1]
                    for h in range(j0, i):
                        uh = U[h, i:k + 1]
                        e = uh[0]
                        for t in range(k + 1 - i):
                            ui[t] -= e * uh[t]
                    d = ui[0]
                    if not d > 0:  # also NaN
                        ok = False
                        break
                    d = np.sqrt(d)
                    r = 1 / d
                    for t in range(k + 1 - i):
                        ui[t] *= r
                    ui[0] = d
                if not ok:
                    break
            if not ok:
                if bad[c] < 0:
                    bad[c] = j
                continue
            i1 = k  # U x = y (y = U[:, k]), by blocks of 8 rows from the bottom
            while i1 > 0:
                i0 = max(i1 - 8, 0)
                if i1 - i0 == 8:  # 8 dot products with the solved part, sharing the loads of x
                    u0, u1, u2, u3 = U[i0, i1:k], U[i0 + 1, i1:k], U[i0 + 2, i1:k], U[i0 + 3, i1:k]
                    u4, u5, u6, u7 = U[i0 + 4, i1:k], U[i0 + 5, i1:k], U[i0 + 6, i1:k], U[i0 + 7, i1:k]
                    xs = x[i1:k]
                    s0, s1, s2, s3 = U[i0, k], U[i0 + 1, k], U[i0 + 2, k], U[i0 + 3, k]
                    s4, s5, s6, s7 = U[i0 + 4, k], U[i0 + 5, k], U[i0 + 6, k], U[i0 + 7, k]
                    for t in range(k - i1):
                        v = xs[t]
                        s0 -= u0[t] * v
                        s1 -= u1[t] * v
                        s2 -= u2[t] * v
                        s3 -= u3[t] * v
                        s4 -= u4[t] * v
                        s5 -= u5[t] * v
                        s6 -= u6[t] * v
                        s7 -= u7[t] * v
                    x[i0], x[i0 + 1], x[i0 + 2], x[i0 + 3] = s0, s1, s2, s3
                    x[i0 + 4], x[i0 + 5], x[i0 + 6], x[i0 + 7] = s4, s5, s6, s7
                else:
                    for i in range(i0, i1):
                        ui, xs = U[i, i1:k], x[i1:k]
                        s = U[i, k]
                        for t in range(k - i1):
                            s -= ui[t] * xs[t]
                        x[i] = s
                for i in range(i1 - 1, i0 - 1, -1):  # the block's triangle
                    ui, xs = U[i, i + 1:i1], x[i + 1:i1]
                    s = x[i]
                    for t in range(i1 - 1 - i):
                        s -= ui[t] * xs[t]
                    x[i] = s / U[i, i]
                i1 = i0
            out[u, :] = x[:k]


def cholesky_solve_rows(
    out: np.ndarray,
    rows: np.ndarray,
    csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    other: np.ndarray,
    base: float,
    reg: np.ndarray,
    target_shift: np.ndarray | None = None,
    workers: int = 1,
) -> None:
    """Update ``out[rows]`` in place by solving each row's normal equations exactly.

    Row ``u`` solves ``(base * Y^T Y + sum_i (c_ui - base) y_i y_i^T + reg_u I) x_u = sum_i c_ui (p_ui - shift_i) y_i``
    over its stored cells ``i`` (``csr`` = (indptr, indices, conf, target)) with ``Y = other``
    (C-contiguous, same dtype as ``out``; arithmetic in that dtype). ``target_shift[i]``
    (optional) is subtracted from the targets of column ``i``. Rows run in ``workers`` threads;
    each row is solved independently, so results do not depend on their number.
    """
    indptr, indices, conf, target = csr
    dtype = other.dtype
    other = np.ascontiguousarray(other)
    gram = np.ascontiguousarray(base * (other.T @ other), dtype=dtype)
    shift = np.zeros(other.shape[0]) if target_shift is None else np.asarray(target_shift, np.float64)
    rows = np.asarray(rows, np.int64)
    n_parts = max(1, min(rows.size, kernel_threads(workers) * _PARTS_PER_THREAD))
    bad = np.full(n_parts, -1, np.int64)
    with kernel_workers(workers):
        _solve_cells(out, rows, indptr, indices, conf, target, shift, other, gram, reg.astype(dtype),
                     float(base), n_parts, bad)
    if (bad >= 0).any():
        raise np.linalg.LinAlgError(
            f"the normal matrix of row {rows[bad[bad >= 0].min()]} is not positive definite; "
            "increase regularization"
        )


def spd_solve(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Solutions ``x[r]`` of ``A[r] x[r] = b[r]`` (lower triangles are read, ``A`` is not written)
    and the index of the first system that is not positive definite (-1: none)."""
    x = np.empty(b.shape, A.dtype)
    bad = _solve_stack(np.ascontiguousarray(A), np.ascontiguousarray(b, A.dtype), x)
    return x, int(bad)


def solve_spd_rows(A: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Solve stacked symmetric positive-definite systems ``A x = b`` by Cholesky (lower triangles
    read, ``A`` not written); ``rows`` names the systems in the error message.

    One compiled call for the whole stack: a loop of LAPACK ``posv`` calls, one per system, was
    slower at ALS sizes."""
    x, bad = spd_solve(A, b)
    if bad >= 0:
        raise np.linalg.LinAlgError(
            f"the normal matrix of row {rows[bad]} is not positive definite; increase regularization"
        )
    return x
