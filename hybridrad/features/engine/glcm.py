"""Grey Level Co-occurrence Matrix features of B images of one ROI at once (pyradiomics 3.0.1).

Method
------
For every angle ``a`` (pyradiomics' C ``build_angles``: one offset of each ``+o/-o`` pair,
Chebyshev distances in ``distances``, out-of-plane offsets dropped under ``force2D``) the
:class:`~hybridrad.features.engine.roi.Roi` neighbour table pairs each ROI voxel ``n`` with
the ROI voxel at ``coords[n] + o``; the pair lists are memoised on the ROI. The
co-occurrence counts of all angles of one image are then per-angle ``numpy.bincount`` s of
the cell code of ``(rank[n], rank[nbr[n]])`` over the paired indices, where ``rank`` is
the voxel's grey level compacted to the levels present in that image (pyradiomics deletes
empty grey levels). With ``symmetricalGLCM`` the unordered pair is counted on the upper
triangle (a lookup table maps ``(i, j)`` and ``(j, i)`` to one cell), which is
``P + P^T`` without a dense transpose.

The features are computed from the non-zero cells only (:func:`_sparse_features`): every
pyradiomics sum over ``(i, j)`` gets exact zeros from the empty cells, so it is a
weighted ``bincount`` over the non-zero cells of all images and angles of a chunk, keyed
by their (image, angle); ``p_x``, ``p_y``, ``p_{x-y}`` and ``p_{x+y}`` are bincounts as
well, and the cluster, contrast, difference and sum features small dense passes over the
latter. ``HXY2`` is factorised over the marginals' supports (within ``n_x n_y eps / ln 2``
of pyradiomics' ``eps``-shifted sum). Only the summation order differs from pyradiomics,
so the images whose value hinges on rounding (a single grey level in a marginal:
``Correlation``'s ``sigma_x sigma_y == 0`` and ``Imc1``'s ``max(HX, HY) == 0``; ``HXY2 -
HXY`` near 0 where ``Imc2``'s square root is steep; every matrix empty) are recomputed by
the dense path (:func:`_features_chunk`), which applies pyradiomics' own expressions, axis
order and reductions to the ``(rows, G, G, A)`` matrices (G = the largest number of
present levels in the chunk; padding adds exact zeros) and falls back to pyradiomics'
own matrix of one image (:class:`_Exact`) where even that is not bit-compatible. ``MCC``
(eigenvalues) always uses the dense matrices.

pyradiomics' semantics reproduced here:

* ``symmetricalGLCM``: ``P + P^T`` per angle;
* ``weightingNorm``: the angles' matrices are summed with weights
  ``exp(-||d||^2)`` (manhattan / euclidean / infinity norm of the offset in mm) or 1
  (``no_weighting``) into a single matrix;
* with more than one angle, angles without any pair are dropped (whether an angle has
  pairs depends only on the ROI geometry, so it is the same for all B images); a single
  empty matrix gives NaN features;
* features are computed per angle and averaged with ``nanmean`` (``JointAverage`` with
  ``mean``); ``eps = numpy.spacing(1)``; ``Correlation`` is 1 where ``sigma_x sigma_y =
  0``, ``Imc1`` 0 where ``max(HX, HY) = 0``, ``Imc2`` 0 where ``HXY2 = HXY``; ``MCC`` is
  the square root of the second largest eigenvalue of ``Q`` (``numpy.linalg.eigvals`` on
  the same compacted matrices, complex or real exactly as numpy returns them per image),
  1 for a single grey level;
* ``N_g`` in ``Idmn`` / ``Idn`` and the ``k`` ranges of ``p_{x+y}`` / ``p_{x-y}`` use the
  largest grey level of the image, ``i`` and ``j`` the actual level values.

The deprecated features (``Dissimilarity``, ``Homogeneity1``, ``Homogeneity2``,
``SumVariance``) get no value from pyradiomics; asking for them raises
:class:`~hybridrad.errors.EngineUnsupportedError`.

The construction only uses gathers, comparisons and bincount / scatter-add, so it is
expressible in torch as well. Images are processed in chunks of rows (grouped by their
number of grey levels, :func:`level_bands`) so that the count arrays and dense
intermediates stay within a few tens of MB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hybridrad.errors import EngineUnsupportedError, ROITooSmallError
from hybridrad.features.engine._common import EPS, check_features, nanmean_last
from hybridrad.features.engine.roi import Roi

__all__ = [
    "FEATURES",
    "angle_weights",
    "banded",
    "check_features",
    "compact_levels",
    "glcm_features",
    "level_bands",
]

FEATURES: tuple[str, ...] = (
    "Autocorrelation",
    "ClusterProminence",
    "ClusterShade",
    "ClusterTendency",
    "Contrast",
    "Correlation",
    "DifferenceAverage",
    "DifferenceEntropy",
    "DifferenceVariance",
    "Id",
    "Idm",
    "Idmn",
    "Idn",
    "Imc1",
    "Imc2",
    "InverseVariance",
    "JointAverage",
    "JointEnergy",
    "JointEntropy",
    "MCC",
    "MaximumProbability",
    "SumAverage",
    "SumEntropy",
    "SumSquares",
)
DEPRECATED: tuple[str, ...] = ("Dissimilarity", "Homogeneity1", "Homogeneity2", "SumVariance")
WEIGHTING_NORMS: tuple[str, ...] = ("manhattan", "euclidean", "infinity", "no_weighting")

# Bytes one dense (rows, Na, G, G) float64 intermediate may take; a dozen live at once.
_CHUNK_BYTES = 4 * 2**20
# Fewest padded grey levels G for the sparse feature path; measured no slower than the dense
# one for any G (LGG, 36 images: equal at G < 10, 2x at G ~ 50, 6x at G ~ 200).
_SPARSE_MIN_G = 1


def compact_levels(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compact each row's grey levels to the levels present in it.

    Parameters
    ----------
    levels
        ``(B, N)`` positive integer grey levels.

    Returns
    -------
    rank
        ``(B, N)`` int64, index of each voxel's level among its row's present levels.
    values
        ``(B, G)`` float64, the present level values of each row in ascending order, padded
        with 1.0 beyond the row's own count (G = the largest count).
    count
        ``(B,)`` int64, number of present levels per row.
    ngmax
        ``(B,)`` int64, the largest level of each row (pyradiomics' ``Ng``).

    Examples
    --------
    >>> r, v, c, m = compact_levels(np.array([[3, 1, 3], [2, 2, 2]]))
    >>> r.tolist(), v.tolist(), c.tolist(), m.tolist()
    ([[1, 0, 1], [0, 0, 0]], [[1.0, 3.0], [2.0, 1.0]], [2, 1], [3, 2])
    """
    levels = np.asarray(levels, dtype=np.int64)
    if levels.ndim != 2 or levels.shape[1] == 0:
        raise ValueError(f"levels must be a non-empty (B, N) array, got shape {levels.shape}")
    if levels.min() < 1:
        raise ValueError("grey levels must be >= 1 (pyradiomics' binned values)")
    b = levels.shape[0]
    top = int(levels.max())
    present = np.zeros((b, top + 1), dtype=bool)
    present[np.arange(b)[:, None], levels] = True
    lut = np.cumsum(present, axis=1) - 1
    rank = np.take_along_axis(lut, levels, axis=1)
    count = present.sum(axis=1)
    g = int(count.max())
    values = np.ones((b, g), dtype=np.float64)
    rows, lev = np.nonzero(present)
    values[rows, lut[rows, lev]] = lev
    ngmax = levels.max(axis=1)
    return rank, values, count.astype(np.int64), ngmax.astype(np.int64)


def angle_weights(
    offsets: np.ndarray, spacing_zyx: Sequence[float], norm: str, *, glcm: bool
) -> np.ndarray:
    """pyradiomics' distance weights of the angles (GLCM: ``exp(-d^2)``, GLRLM: ``d``)."""
    if norm not in WEIGHTING_NORMS:
        raise EngineUnsupportedError(
            f"weightingNorm {norm!r} is not one of {list(WEIGHTING_NORMS)}: use engine: pyradiomics"
        )
    mm = np.abs(offsets) * np.asarray(spacing_zyx, dtype=np.float64)[None, :]
    if norm == "no_weighting":
        return np.ones(len(offsets))
    if glcm:
        if norm == "infinity":
            return np.asarray(np.exp(-(mm.max(axis=1) ** 2)))
        if norm == "euclidean":
            return np.asarray(np.exp(-np.sum(mm**2, axis=1)))
        return np.asarray(np.exp(-(np.sum(mm, axis=1) ** 2)))
    if norm == "infinity":
        return np.asarray(mm.max(axis=1))
    if norm == "euclidean":
        return np.asarray(np.sqrt(np.sum(mm**2, axis=1)))
    return np.asarray(np.sum(mm, axis=1))


def _pairs(roi: Roi, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(src, dst, angle)`` of every ROI voxel pair over the angles."""
    table = roi.neighbour_table(offsets)
    ang, src = np.nonzero(table >= 0)
    return src, table[ang, src], ang


def _cells(g: int, symmetrical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Grey-level ranks ``(i, j)`` of each cell code of :func:`_counts`.

    Examples
    --------
    >>> [a.tolist() for a in _cells(3, True)]
    [[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]]
    """
    if symmetrical:
        hi = np.repeat(np.arange(g), np.arange(1, g + 1))
        return np.arange(len(hi)) - (hi * (hi + 1)) // 2, hi
    ij = np.arange(g * g)
    return ij // g, ij % g


def _pair_index(
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray], na: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(src, dst)`` as int32 (when they fit) and the ``(Na + 1,)`` bounds of each angle's
    pairs (:func:`_pairs` lists them grouped by angle)."""
    src, dst, ang = pairs
    itype = np.int32 if len(src) and int(src.max(initial=0)) < 2**31 else np.int64
    return src.astype(itype), dst.astype(itype), np.searchsorted(ang, np.arange(na + 1))


def _counts(
    rank: np.ndarray,
    g: int,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    na: int,
    symmetrical: bool,
) -> np.ndarray:
    """``(rows, Na, T)`` int64 co-occurrence counts per cell code.

    Not symmetrical: ``P`` with cell ``i G + j`` (``T = G^2``). Symmetrical: the count of
    unordered pairs on the upper triangle, cell ``j (j + 1) / 2 + i`` for ``i <= j``
    (``T = G (G + 1) / 2``), i.e. ``P + P^T`` off the diagonal and half of it on the
    diagonal (:func:`_full` expands it). ``pairs`` is ``(src, dst, bounds)`` of
    :func:`_pair_index`.
    """
    src_i, dst_i, bounds = pairs
    rows = rank.shape[0]
    t = g * (g + 1) // 2 if symmetrical else g * g
    itype = np.int32 if g * g < 2**31 else np.int64
    lut = None
    fold = None
    if symmetrical:
        lo, hi = _cells(g, True)
        if g * g * na < len(src_i):
            # few cells for many pairs: count P, then fold P + P^T onto the upper triangle
            fold = (lo * g + hi, hi * g + lo, lo == hi)
        else:
            # many cells: map (i, j) and (j, i) to one cell per pair
            lut = np.empty(g * g, dtype=itype)
            lut[lo * g + hi] = np.arange(t)
            lut[hi * g + lo] = np.arange(t)
    out = np.empty((rows, na, t), dtype=np.int64)
    idx = np.empty(len(src_i), dtype=itype)
    tmp = np.empty(len(src_i), dtype=itype)
    for r in range(rows):
        rr = rank[r].astype(itype)
        np.take(rr * g, src_i, out=idx)  # np.take: about twice as fast as fancy indexing
        idx += np.take(rr, dst_i, out=tmp)
        if lut is not None:
            np.take(lut, idx, out=tmp)
            idx, tmp = tmp, idx
        if fold is not None:
            for a in range(na):
                full = np.bincount(idx[bounds[a] : bounds[a + 1]], minlength=g * g)
                cell = full[fold[0]] + full[fold[1]]
                cell[fold[2]] //= 2
                out[r, a] = cell
            continue
        for a in range(na):
            out[r, a] = np.bincount(idx[bounds[a] : bounds[a + 1]], minlength=t)
    return out


def _full(cnt: np.ndarray, g: int, symmetrical: bool) -> np.ndarray:
    """The ``(rows, Na, G, G)`` int64 matrices (``P + P^T`` when symmetrical) of
    :func:`_counts`."""
    rows, na, _ = cnt.shape
    if not symmetrical:
        return cnt.reshape(rows, na, g, g)
    lo, hi = _cells(g, True)
    full = np.zeros((rows, na, g, g), dtype=np.int64)
    full[:, :, lo, hi] = cnt
    return np.asarray(full + full.transpose(0, 1, 3, 2))


def _dense_p(cnt: np.ndarray, weights: np.ndarray | None, keep: np.ndarray) -> np.ndarray:
    """Normalised ``(rows, G, G, A)`` matrices in pyradiomics' axis order and operations
    (weighted angle sum, empty angles dropped, division by the per-angle total)."""
    mat = np.ascontiguousarray(cnt.transpose(0, 2, 3, 1), dtype=np.float64)
    if weights is not None:
        mat = np.sum(mat * weights, 3, keepdims=True)
    elif len(keep) < cnt.shape[1]:
        mat = mat[..., keep]
    tot = np.sum(mat, (1, 2), keepdims=True)
    tot[tot == 0] = np.nan
    return np.asarray(mat / tot)


def _by_offset(p: np.ndarray, offset_index: np.ndarray, nbins: int) -> np.ndarray:
    """Sum ``p`` (rows, G, G, A) into bins ``offset_index`` (rows, G, G): ``(rows, nbins, A)``.

    bincount adds in C order, the order of pyradiomics' masked sums.
    """
    rows, _, _, na = p.shape
    idx = (offset_index + (np.arange(rows) * nbins)[:, None, None])[..., None] * na + np.arange(na)
    return np.bincount(idx.ravel(), weights=p.ravel(), minlength=rows * nbins * na).reshape(
        rows, nbins, na
    )


def _mcc_from_eigvals(ev: np.ndarray) -> float:
    """pyradiomics' MCC from the eigenvalues ``(A, G)`` of one image's ``Q`` matrices.

    numpy returns real eigenvalues when all of them are real (then a negative second
    eigenvalue gives NaN under ``sqrt`` and is skipped by ``nanmean``), else complex ones.
    """
    if np.all(ev.imag == 0):
        lam = np.sort(ev.real, axis=-1)[:, -2]
        with np.errstate(invalid="ignore"):
            return float(nanmean_last(np.sqrt(lam)[None, :])[0])
    lamc = np.sort(ev, axis=-1)[:, -2]
    return float(np.mean(np.sqrt(lamc)).real)


def _q_exact(p: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """pyradiomics' ``Q`` (1, G, G, A) accumulated over ``k`` in its order."""
    eps = EPS
    q = (p[:, :, None, 0, :] * p[:, None, :, 0, :]) / (
        px[:, :, None, 0, :] * py[:, None, :, 0, :] + eps
    )
    for k in range(1, p.shape[1]):
        q += (p[:, :, None, k, :] * p[:, None, :, k, :]) / (
            px[:, :, None, 0, :] * py[:, None, :, k, :] + eps
        )
    return q


def _mcc(
    p: np.ndarray, px: np.ndarray, py: np.ndarray, count: np.ndarray, exact: _Exact
) -> np.ndarray:
    """MCC of each row: eigvals of ``Q`` per image as pyradiomics.

    ``Q`` is formed with one batched matmul; where the outcome hinges on rounding (a
    second eigenvalue within 1e-9 of 0, where pyradiomics' real/complex and NaN handling
    flips), the row is recomputed on pyradiomics' own matrix (:class:`_Exact`).
    """
    rows, _, _, na = p.shape
    out = np.full(rows, np.nan)
    eps = EPS
    pt = p.transpose(0, 3, 1, 2)  # (rows, A, G, G)
    den = px.transpose(0, 3, 1, 2) * py.transpose(0, 3, 1, 2) + eps  # (rows, A, G, G)
    q = (pt / den) @ pt.transpose(0, 1, 3, 2)
    finite = np.isfinite(q).reshape(rows, -1).all(axis=1)
    for gb in np.unique(count):
        sel = np.flatnonzero((count == gb) & finite)
        if len(sel) == 0:
            continue
        if gb < 2:
            out[sel] = 1.0  # pyradiomics: a flat region (whatever the angles)
            continue
        if na == 0:
            continue
        ev = np.linalg.eigvals(np.ascontiguousarray(q[sel][:, :, :gb, :gb]))
        for k, row in enumerate(sel):
            e = ev[k]
            lam2 = np.sort(e.real, axis=-1)[:, -2]
            if np.any(np.abs(lam2) < 1e-9):
                pe, pxe, pye = exact.matrix(int(row))
                qe = _q_exact(pe, pxe, pye)
                e = np.linalg.eigvals(qe.transpose((0, 3, 1, 2)))[0]
            out[row] = _mcc_from_eigvals(e)
    return out


class _Exact:
    """pyradiomics' own normalised matrix of one image, for the rare rounding-sensitive cases.

    Built from the full ``(1, Ng, Ng, Na)`` count matrix with the same numpy operations
    pyradiomics applies (deleting empty levels, symmetrising, weighting, deleting empty
    angles, normalising), so the memory layout and hence every reduction's rounding is
    the same as pyradiomics'.
    """

    def __init__(
        self,
        levels: np.ndarray,
        pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
        na: int,
        symmetrical: bool,
        weights: np.ndarray | None,
    ) -> None:
        self.levels = levels
        self.pairs = pairs
        self.na = na
        self.symmetrical = symmetrical
        self.weights = weights

    def matrix(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(P, px, py)`` of image ``row`` exactly as pyradiomics holds them."""
        lev = self.levels[row]
        ng = int(lev.max())
        src, dst, ang = self.pairs
        na = self.na
        idx = ((lev[src] - 1) * ng + (lev[dst] - 1)) * na + ang
        mat = np.bincount(idx, minlength=ng * ng * na).astype(np.float64).reshape(1, ng, ng, na)
        present = set(np.unique(lev).tolist())
        empty = np.array(list(set(range(1, ng + 1)) - present), dtype=int)
        mat = np.delete(mat, empty - 1, 1)
        mat = np.delete(mat, empty - 1, 2)
        if self.symmetrical:
            mat += np.transpose(mat, (0, 2, 1, 3)).copy()
        if self.weights is not None:
            mat = np.sum(mat * self.weights[None, None, None, :], 3, keepdims=True)
        tot = np.sum(mat, (1, 2))
        if mat.shape[3] > 1:
            gone = np.where(np.sum(tot, 0) == 0)
            if len(gone[0]) > 0:
                mat = np.delete(mat, gone, 3)
                tot = np.delete(tot, gone, 1)
        tot[tot == 0] = np.nan
        mat /= tot[:, None, None, :]
        return mat, mat.sum(2, keepdims=True), mat.sum(1, keepdims=True)

    def imc2(self, row: int) -> float:
        """pyradiomics' Imc2 of image ``row``."""
        eps = EPS
        p, px, py = self.matrix(row)
        hxy = (-1) * np.sum(p * np.log2(p + eps), (1, 2))
        hxy2 = (-1) * np.sum((px * py) * np.log2(px * py + eps), (1, 2))
        with np.errstate(invalid="ignore", over="ignore"):
            imc2 = (1 - np.e ** (-2 * (hxy2 - hxy))) ** 0.5
        imc2[hxy2 == hxy] = 0
        return float(nanmean_last(imc2)[0])


def _difference_features(
    pxsuby: np.ndarray,
    k: np.ndarray,
    ng: np.ndarray,
    want: set[str],
    put: Callable[[str, np.ndarray], None],
) -> None:
    """The features of the ``|i - j|`` histogram ``pxsuby`` (``k`` along axis 1), in
    pyradiomics' expressions; shared by the dense and the sparse path."""
    eps = EPS
    if want & {"DifferenceAverage", "DifferenceVariance"}:
        davg = np.sum(k * pxsuby, 1, keepdims=True)
        if "DifferenceAverage" in want:
            put("DifferenceAverage", davg[:, 0])
        if "DifferenceVariance" in want:
            put("DifferenceVariance", np.sum(pxsuby * ((k - davg) ** 2), 1))
    if "DifferenceEntropy" in want:
        put("DifferenceEntropy", (-1) * np.sum(pxsuby * np.log2(pxsuby + eps), 1))
    if "Idm" in want:
        put("Idm", np.sum(pxsuby / (1 + (k**2)), 1))
    if "Idmn" in want:
        put("Idmn", np.sum(pxsuby / (1 + ((k**2) / (ng**2))), 1))
    if "Id" in want:
        put("Id", np.sum(pxsuby / (1 + k), 1))
    if "Idn" in want:
        put("Idn", np.sum(pxsuby / (1 + (k / ng)), 1))
    if "InverseVariance" in want:
        put("InverseVariance", np.sum(pxsuby[:, 1:] / k[:, 1:] ** 2, 1))


def _features_chunk(
    p: np.ndarray,
    values: np.ndarray,
    count: np.ndarray,
    ngmax: np.ndarray,
    names: list[str],
    exact: _Exact,
) -> dict[str, np.ndarray]:
    """Features of normalised matrices ``p`` (rows, G, G, A); A may be 0 (all NaN).

    The expressions follow pyradiomics' own (same axis order, same reductions) so that
    the quantities compared exactly (``HXY2 == HXY``, ``sigma_x sigma_y == 0``) are
    bit-identical; padded grey levels only add exact zeros to sequential sums.
    """
    eps = EPS
    want = set(names)
    out: dict[str, np.ndarray] = {}
    rows, _, _, na = p.shape
    i = values[:, :, None, None]  # (rows, G, 1, 1)
    j = values[:, None, :, None]  # (rows, 1, G, 1)
    px = p.sum(2, keepdims=True)  # (rows, G, 1, A)
    py = p.sum(1, keepdims=True)  # (rows, 1, G, A)
    ux = np.sum(i * p, (1, 2), keepdims=True)  # (rows, 1, 1, A)
    uy = np.sum(j * p, (1, 2), keepdims=True)

    def put(name: str, per_angle: np.ndarray) -> None:
        out[name] = nanmean_last(per_angle)

    if "Autocorrelation" in want:
        put("Autocorrelation", np.sum(p * (i * j), (1, 2)))
    if "JointAverage" in want:
        out["JointAverage"] = ux.mean((1, 2, 3)) if na else np.full(rows, np.nan)
    if want & {"ClusterProminence", "ClusterShade", "ClusterTendency"}:
        s = (i + j) - ux - uy
        s2 = s * s
        if "ClusterTendency" in want:
            put("ClusterTendency", np.sum(p * s2, (1, 2)))
        if "ClusterShade" in want:
            put("ClusterShade", np.sum(p * (s2 * s), (1, 2)))
        if "ClusterProminence" in want:
            put("ClusterProminence", np.sum(p * (s2 * s2), (1, 2)))
    if "Contrast" in want:
        put("Contrast", np.sum(p * (np.abs(i - j) ** 2), (1, 2)))
    if want & {"Correlation", "SumSquares"}:
        dx2 = (i - ux) ** 2
        ssx = np.sum(p * dx2, (1, 2), keepdims=True)
        if "SumSquares" in want:
            put("SumSquares", ssx[:, 0, 0])
        if "Correlation" in want:
            sigx = ssx**0.5
            sigy = np.sum(p * ((j - uy) ** 2), (1, 2), keepdims=True) ** 0.5
            corm = np.sum(p * (i - ux) * (j - uy), (1, 2), keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = corm / (sigx * sigy + eps)
            corr[sigx * sigy == 0] = 1
            put("Correlation", corr[:, 0, 0])
    diff_names = {
        "DifferenceAverage",
        "DifferenceEntropy",
        "DifferenceVariance",
        "Id",
        "Idm",
        "Idmn",
        "Idn",
    }
    if want & (diff_names | {"InverseVariance"}):
        kd = int(ngmax.max())
        diff = np.abs(values[:, :, None] - values[:, None, :]).astype(np.int64)
        pxsuby = _by_offset(p, diff, kd)  # (rows, K, A)
        k = np.arange(kd, dtype=np.float64)[None, :, None]
        ng = ngmax.astype(np.float64)[:, None, None]
        _difference_features(pxsuby, k, ng, want, put)
    if want & {"SumAverage", "SumEntropy"}:
        ks = 2 * int(ngmax.max()) + 1
        tot = (values[:, :, None] + values[:, None, :]).astype(np.int64)
        pxaddy = _by_offset(p, tot, ks)
        if "SumAverage" in want:
            kv = np.arange(ks, dtype=np.float64)[None, :, None]
            put("SumAverage", np.sum(kv * pxaddy, 1))
        if "SumEntropy" in want:
            put("SumEntropy", (-1) * np.sum(pxaddy * np.log2(pxaddy + eps), 1))
    if "JointEnergy" in want:
        put("JointEnergy", np.sum(p**2, (1, 2)))
    hxy = np.empty(0)
    if want & {"JointEntropy", "Imc1", "Imc2"}:
        hxy = (-1) * np.sum(p * np.log2(p + eps), (1, 2))
        if "JointEntropy" in want:
            put("JointEntropy", hxy)
    if "Imc1" in want:
        hx = (-1) * np.sum(px * np.log2(px + eps), (1, 2))
        hy = (-1) * np.sum(py * np.log2(py + eps), (1, 2))
        hxy1 = (-1) * np.sum(p * np.log2(px * py + eps), (1, 2))
        div = np.fmax(hx, hy)
        imc1 = hxy - hxy1
        nz = div != 0
        imc1[nz] /= div[nz]
        imc1[div == 0] = 0
        put("Imc1", imc1)
    if "Imc2" in want:
        hxy2 = (-1) * np.sum((px * py) * np.log2(px * py + eps), (1, 2))
        with np.errstate(invalid="ignore", over="ignore"):
            imc2 = (1 - np.e ** (-2 * (hxy2 - hxy))) ** 0.5
        imc2[hxy2 == hxy] = 0
        put("Imc2", imc2)
        # pyradiomics' value depends on the rounding of HXY2 - HXY near 0 (0, NaN or ~1e-8)
        close = np.abs(hxy2 - hxy) <= 1e-12 * np.fmax(np.abs(hxy), 1.0)
        for row in np.flatnonzero(close.any(axis=1)):
            out["Imc2"][row] = exact.imc2(int(row))
    if "MaximumProbability" in want:
        put("MaximumProbability", np.amax(p, (1, 2)) if na else np.empty((rows, 0)))
    if "MCC" in want:
        out["MCC"] = _mcc(p, px, py, count, exact)
    return {name: out[name] for name in names}


def _sparse_features(
    cnt: np.ndarray,
    values: np.ndarray,
    ngmax: np.ndarray,
    names: list[str],
    symmetrical: bool,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features from the non-zero entries of the ``(rows, A, G, G)`` matrices ``cnt``.

    Every pyradiomics sum over ``(i, j)`` only gets exact zeros from the empty cells, so it
    is a weighted ``bincount`` over the non-zero cells keyed by their (row, angle)
    segment; ``p_x``, ``p_y``, ``p_{x-y}`` and ``p_{x+y}`` are bincounts too, and the
    features built on the latter (cluster, contrast, difference and sum features) are
    small dense passes over them. ``HXY2`` is factorised,
    ``-(sum_i p_x log2 p_x) - (sum_j p_y log2 p_y)`` over the supports, which is within
    ``n_x n_y eps / ln 2`` of pyradiomics' ``sum p_x p_y log2(p_x p_y + eps)``.

    Only the summation order differs from pyradiomics, so the rows whose value hinges on
    rounding are returned in ``redo`` for the dense path: a (row, angle) with a single
    grey level in ``p_x`` or ``p_y`` (``Correlation``'s ``sigma_x sigma_y == 0``,
    ``Imc1``'s ``max(HX, HY) == 0``) and ``HXY2 - HXY`` within ``1e7`` times its error
    bound of 0 (``Imc2``'s square root is steep there).

    Returns
    -------
    features, redo
        Name -> ``(rows,)`` and the ``(rows,)`` bool mask of rows to recompute.
    """
    eps = EPS
    want = set(names)
    rows, na, t = cnt.shape
    g = values.shape[1]
    nseg = rows * na
    out: dict[str, np.ndarray] = {}
    flat = cnt.reshape(-1)
    nz = np.flatnonzero(flat)
    if len(nz) == 0:
        # every matrix empty (whether a matrix is empty only depends on the ROI): NaN
        # matrices, whose p_{x-y} / p_{x+y} are 0 off the (i, j) offsets: the dense path
        return {name: np.full(rows, np.nan) for name in names}, np.ones(rows, bool)
    c = flat[nz].astype(np.float64)
    seg = nz // t
    cell = nz - seg * t
    lut_i, lut_j = _cells(g, symmetrical)
    ri = lut_i[cell]
    rj = lut_j[cell]
    segrow = np.repeat(np.arange(rows), na)
    vseg = values[segrow]  # (nseg, G)
    xi = seg * g + ri
    yj = seg * g + rj
    if symmetrical:
        # an upper-triangle cell (i < j) stands for (i, j) and (j, i); the diagonal of
        # P + P^T is twice the pair count
        off = ri != rj
        c[~off] *= 2
        mult = np.where(off, 2.0, 1.0)
        tot = np.bincount(seg, weights=c * mult, minlength=nseg)
        p = c / tot[seg]
        pw = p * mult
        px = np.bincount(xi, weights=p, minlength=nseg * g)
        px += np.bincount((seg * g + rj)[off], weights=p[off], minlength=nseg * g)
        px = px.reshape(nseg, g)
        py = px
    else:
        tot = np.bincount(seg, weights=c, minlength=nseg)
        p = c / tot[seg]
        pw = p
        px = np.bincount(xi, weights=p, minlength=nseg * g).reshape(nseg, g)
        py = np.bincount(yj, weights=p, minlength=nseg * g).reshape(nseg, g)
    valid = tot > 0
    vflat = vseg.reshape(-1)
    vi = vflat[xi]
    vj = vflat[yj]
    ux = np.sum(px * vseg, 1)
    uy = np.sum(py * vseg, 1)
    redo = np.zeros(nseg, dtype=bool)

    def ssum(w: np.ndarray) -> np.ndarray:
        return np.bincount(seg, weights=w, minlength=nseg)

    def put(name: str, per_seg: np.ndarray) -> None:
        out[name] = nanmean_last(np.where(valid, per_seg, np.nan).reshape(rows, na))

    if "Autocorrelation" in want:
        put("Autocorrelation", ssum(pw * (vi * vj)))
    if "JointAverage" in want:
        out["JointAverage"] = np.where(valid, ux, np.nan).reshape(rows, na).mean(1)
    kd = int(ngmax.max())
    ng = ngmax.astype(np.float64)[segrow][:, None]
    if want & {"ClusterProminence", "ClusterShade", "ClusterTendency", "SumAverage", "SumEntropy"}:
        ks = 2 * kd + 1
        sk = (vi + vj).astype(np.int64) + seg * ks
        pxaddy = np.bincount(sk, weights=pw, minlength=nseg * ks).reshape(nseg, ks)
        kv = np.arange(ks, dtype=np.float64)[None, :]
        if want & {"ClusterProminence", "ClusterShade", "ClusterTendency"}:
            sv = kv - ux[:, None] - uy[:, None]
            s2 = sv * sv
            if "ClusterTendency" in want:
                put("ClusterTendency", np.sum(pxaddy * s2, 1))
            if "ClusterShade" in want:
                put("ClusterShade", np.sum(pxaddy * (s2 * sv), 1))
            if "ClusterProminence" in want:
                put("ClusterProminence", np.sum(pxaddy * (s2 * s2), 1))
        if "SumAverage" in want:
            put("SumAverage", np.sum(kv * pxaddy, 1))
        if "SumEntropy" in want:
            put("SumEntropy", (-1) * np.sum(pxaddy * np.log2(pxaddy + eps), 1))
    diff_names = {"Contrast", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance"}
    diff_names |= {"Id", "Idm", "Idmn", "Idn", "InverseVariance"}
    if want & diff_names:
        dk = np.abs(vi - vj).astype(np.int64) + seg * kd
        pxsuby = np.bincount(dk, weights=pw, minlength=nseg * kd).reshape(nseg, kd)
        k = np.arange(kd, dtype=np.float64)[None, :]
        if "Contrast" in want:
            put("Contrast", np.sum(pxsuby * (k**2), 1))
        _difference_features(pxsuby, k, ng, want, put)
    if want & {"Correlation", "Imc1"}:
        single = ((px > 0).sum(1) <= 1) | ((py > 0).sum(1) <= 1)
        redo |= single & valid
    if want & {"Correlation", "SumSquares"}:
        ssx = np.sum(px * (vseg - ux[:, None]) ** 2, 1)
        if "SumSquares" in want:
            put("SumSquares", ssx)
        if "Correlation" in want:
            sig = ssx**0.5 * np.sum(py * (vseg - uy[:, None]) ** 2, 1) ** 0.5
            corm = ssum(pw * (vi - ux[seg]) * (vj - uy[seg]))
            corr = corm / (sig + eps)
            corr[sig == 0] = 1
            put("Correlation", corr)
    if "JointEnergy" in want:
        put("JointEnergy", ssum(pw * p))
    hxy = np.empty(0)
    if want & {"JointEntropy", "Imc1", "Imc2"}:
        hxy = (-1) * ssum(pw * np.log2(p + eps))
        if "JointEntropy" in want:
            put("JointEntropy", hxy)
    if "Imc1" in want:
        hx = (-1) * np.sum(px * np.log2(px + eps), 1)
        hy = (-1) * np.sum(py * np.log2(py + eps), 1)
        hxy1 = (-1) * ssum(pw * np.log2(px.reshape(-1)[xi] * py.reshape(-1)[yj] + eps))
        div = np.fmax(hx, hy)
        imc1 = hxy - hxy1
        nzd = div != 0
        imc1[nzd] /= div[nzd]
        imc1[div == 0] = 0
        put("Imc1", imc1)
    if "MaximumProbability" in want:
        first = np.flatnonzero(np.diff(seg, prepend=-1))
        mp = np.full(nseg, np.nan)
        mp[seg[first]] = np.maximum.reduceat(p, first)
        put("MaximumProbability", mp)
    if "Imc2" in want:
        npx = (px > 0).sum(1)
        npy = (py > 0).sum(1)
        lx = np.sum(px * np.log2(np.where(px > 0, px, 1.0)), 1)
        ly = np.sum(py * np.log2(np.where(py > 0, py, 1.0)), 1)
        hxy2 = (-1) * (lx * np.sum(py, 1) + np.sum(px, 1) * ly)
        dif = hxy2 - hxy
        bound = npx * npy * (eps / np.log(2.0)) + 1e-12 * (np.abs(hxy2) + np.abs(hxy))
        redo |= valid & (dif < 1e7 * bound)
        with np.errstate(invalid="ignore", over="ignore"):
            put("Imc2", (1 - np.e ** (-2 * dif)) ** 0.5)
    if "MCC" in want:
        out["MCC"] = np.full(rows, np.nan)  # filled by the caller from the dense matrices
    return {name: out[name] for name in names}, np.asarray(redo.reshape(rows, na).any(1))


def level_bands(levels: np.ndarray, ratio: float = 1.3) -> list[np.ndarray]:
    """Row indices grouped by their number of grey levels (within ``ratio`` of the
    smallest in the group), so that dense per-row matrices of a group are padded little.

    Examples
    --------
    >>> [b.tolist() for b in level_bands(np.array([[1, 2], [1, 1], [1, 9]]))]
    [[1, 0, 2]]
    >>> lv = np.vstack([np.arange(1, 101), np.ones(100, int), np.arange(1, 101) % 10 + 1])
    >>> [b.tolist() for b in level_bands(lv)]
    [[1, 2], [0]]
    """
    count = np.array([np.count_nonzero(np.bincount(row)) for row in levels])
    order = np.argsort(count, kind="stable")
    bands: list[np.ndarray] = []
    start = 0
    for k in range(1, len(order) + 1):
        if k == len(order) or count[order[k]] > ratio * max(int(count[order[start]]), 10):
            bands.append(order[start:k])
            start = k
    return bands


def banded(
    levels: np.ndarray,
    names: Sequence[str],
    compute: Callable[[np.ndarray], dict[str, np.ndarray]],
) -> dict[str, np.ndarray] | None:
    """``compute`` on each :func:`level_bands` group of rows, results put back in row
    order; None when all rows are one band (compute them at once)."""
    bands = level_bands(levels)
    if len(bands) == 1:
        return None
    result = {name: np.empty(len(levels)) for name in names}
    for band in bands:
        part = compute(levels[band])
        for name in names:
            result[name][band] = part[name]
    return result


def glcm_features(
    levels: np.ndarray,
    roi: Roi,
    *,
    distances: Sequence[int],
    symmetrical: bool,
    weighting_norm: str | None,
    force2d_dimension: int | None,
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """pyradiomics' GLCM features of B images of one ROI.

    Parameters
    ----------
    levels
        ``(B, N)`` int binned grey levels in ``roi.coords`` order.
    roi
        The texture ROI.
    distances
        pyradiomics ``distances``.
    symmetrical
        pyradiomics ``symmetricalGLCM``.
    weighting_norm
        pyradiomics ``weightingNorm`` (None, 'manhattan', 'euclidean', 'infinity',
        'no_weighting').
    force2d_dimension
        The axis held fixed under ``force2D``, or None.
    features
        pyradiomics GLCM feature names.

    Returns
    -------
    dict
        Name -> ``(B,)`` float64.

    Raises
    ------
    EngineUnsupportedError
        For an unknown or deprecated feature name or an unknown weighting norm.
    """
    names = check_features(features, FEATURES, "GLCM", DEPRECATED)
    levels = np.asarray(levels, dtype=np.int64)
    if levels.ndim != 2 or levels.shape[1] != roi.n:
        raise ValueError(f"levels must have shape (B, {roi.n}), got {levels.shape}")
    nrows = levels.shape[0]
    if not names or nrows == 0:
        return {name: np.empty(nrows) for name in names}
    split = banded(
        levels,
        names,
        lambda sub: glcm_features(
            sub,
            roi,
            distances=distances,
            symmetrical=symmetrical,
            weighting_norm=weighting_norm,
            force2d_dimension=force2d_dimension,
            features=names,
        ),
    )
    if split is not None:
        return split
    offsets = roi.angles(distances, force2d_dimension=force2d_dimension)
    na = len(offsets)
    if na == 0:
        raise ROITooSmallError(
            f"no GLCM angle fits the ROI box {roi.shape} (force2D dimension {force2d_dimension}); "
            "pyradiomics fails on it too ('Error getting angle count')"
        )
    rank, values, count, ngmax = compact_levels(levels)
    g = values.shape[1]
    pairs = roi.memo(("glcm-pairs", offsets.tobytes()), lambda: _pairs(roi, offsets))
    index = roi.memo(("glcm-pair-index", offsets.tobytes()), lambda: _pair_index(pairs, na))
    per_angle = np.diff(index[2])
    weights = None
    keep = np.arange(na)
    if weighting_norm is not None:
        weights = angle_weights(offsets, roi.spacing[::-1], weighting_norm, glcm=True)
    elif na > 1:
        keep = np.flatnonzero(per_angle > 0)
    na_out = 1 if weights is not None else len(keep)
    result = {name: np.empty(nrows) for name in names}
    step = max(1, _CHUNK_BYTES // max(8 * na * g * g, 1))
    sparse = g >= _SPARSE_MIN_G
    for r0 in range(0, nrows, step):
        sl = slice(r0, r0 + step)
        cnt = _counts(rank[sl], g, index, na, symmetrical)
        exact = _Exact(levels[sl], pairs, na, symmetrical, weights)
        if not sparse:
            p = _dense_p(_full(cnt, g, symmetrical), weights, keep)
            assert p.shape[3] == na_out
            part = _features_chunk(p, values[sl], count[sl], ngmax[sl], names, exact)
        else:
            if weights is not None:
                sc = np.tensordot(cnt, weights, axes=([1], [0]))[:, None]
            else:
                sc = cnt[:, keep] if len(keep) < na else cnt
            part, redo = _sparse_features(sc, values[sl], ngmax[sl], names, symmetrical)
            if "MCC" in part:
                p = _dense_p(_full(cnt, g, symmetrical), weights, keep)
                px = p.sum(2, keepdims=True)
                py = p.sum(1, keepdims=True)
                part["MCC"] = _mcc(p, px, py, count[sl], exact)
            if redo.any():
                # rows whose values hinge on rounding: pyradiomics' own operations
                sub = np.flatnonzero(redo)
                rows_exact = _Exact(levels[sl][sub], pairs, na, symmetrical, weights)
                fix = _features_chunk(
                    _dense_p(_full(cnt[sub], g, symmetrical), weights, keep),
                    values[sl][sub],
                    count[sl][sub],
                    ngmax[sl][sub],
                    [n for n in names if n != "MCC"],
                    rows_exact,
                )
                for name, val in fix.items():
                    part[name][sub] = val
        for name in names:
            result[name][sl] = part[name]
    return result
