"""Grey Level Co-occurrence Matrix features of B images of one ROI at once (pyradiomics 3.0.1).

Method
------
For every angle ``a`` (pyradiomics' C ``build_angles``: one offset of each ``+o/-o`` pair,
Chebyshev distances in ``distances``, out-of-plane offsets dropped under ``force2D``) the
:class:`~hybridrad.features.engine.roi.Roi` neighbour table pairs each ROI voxel ``n`` with
the ROI voxel at ``coords[n] + o``. The co-occurrence matrices of all angles of one image
are then a single ``numpy.bincount`` of ``(a, rank[n], rank[nbr[n]])`` over the paired
indices, where ``rank`` is the voxel's grey level compacted to the levels present in that
image (pyradiomics deletes empty grey levels). B images share the pair table; their
matrices are stacked into a ``(B, Na, G, G)`` array (G = the largest number of present
levels; smaller images are zero-padded, which adds nothing to any sum) and every feature
is one vectorised expression over that stack.

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
expressible in torch as well. Images are processed in chunks of rows so that the dense
intermediates stay within a few tens of MB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hybridrad.errors import EngineUnsupportedError, ROITooSmallError
from hybridrad.features.engine._common import check_features
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

_EPS = float(np.spacing(1))
# Bytes one dense (rows, Na, G, G) float64 intermediate may take; a dozen live at once.
_CHUNK_BYTES = 4 * 2**20


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


def _matrices(
    rank: np.ndarray,
    g: int,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    na: int,
    symmetrical: bool,
) -> np.ndarray:
    """``(rows, G, G, Na)`` float64 co-occurrence counts (pyradiomics' axis order).

    Counted as ``(angle, i, j)`` (the angle term is then a per-pair constant) with 32-bit
    indices where they fit, then transposed to pyradiomics' ``(i, j, angle)``.
    """
    src, dst, ang = pairs
    rows = rank.shape[0]
    size = g * g * na
    small = size < 2**31
    itype = np.int32 if small else np.int64
    base = (ang * (g * g)).astype(itype)
    src_i = src.astype(itype) if small else src
    dst_i = dst.astype(itype) if small else dst
    out = np.empty((rows, na, g, g), dtype=np.float64)
    for r in range(rows):
        rr = rank[r].astype(itype)
        idx = (rr * g)[src_i]
        idx += rr[dst_i]
        idx += base
        out[r] = np.bincount(idx, minlength=size).reshape(na, g, g)
    mat = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
    if symmetrical:
        mat += mat.transpose(0, 2, 1, 3).copy()
    return mat


def _by_offset(p: np.ndarray, offset_index: np.ndarray, nbins: int) -> np.ndarray:
    """Sum ``p`` (rows, G, G, A) into bins ``offset_index`` (rows, G, G): ``(rows, nbins, A)``.

    bincount adds in C order, the order of pyradiomics' masked sums.
    """
    rows, _, _, na = p.shape
    idx = (offset_index + (np.arange(rows) * nbins)[:, None, None])[..., None] * na + np.arange(na)
    return np.bincount(idx.ravel(), weights=p.ravel(), minlength=rows * nbins * na).reshape(
        rows, nbins, na
    )


def _nanmean(x: np.ndarray) -> np.ndarray:
    """``nanmean`` over the last axis without warnings (NaN when nothing is finite)."""
    if x.shape[-1] == 0:
        return np.full(x.shape[:-1], np.nan)
    ok = ~np.isnan(x)
    n = ok.sum(axis=-1)
    s = np.where(ok, x, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, s / np.maximum(n, 1), np.nan))


def _mcc_from_eigvals(ev: np.ndarray) -> float:
    """pyradiomics' MCC from the eigenvalues ``(A, G)`` of one image's ``Q`` matrices.

    numpy returns real eigenvalues when all of them are real (then a negative second
    eigenvalue gives NaN under ``sqrt`` and is skipped by ``nanmean``), else complex ones.
    """
    if np.all(ev.imag == 0):
        lam = np.sort(ev.real, axis=-1)[:, -2]
        with np.errstate(invalid="ignore"):
            return float(_nanmean(np.sqrt(lam)[None, :])[0])
    lamc = np.sort(ev, axis=-1)[:, -2]
    return float(np.mean(np.sqrt(lamc)).real)


def _q_exact(p: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """pyradiomics' ``Q`` (1, G, G, A) accumulated over ``k`` in its order."""
    eps = _EPS
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
    eps = _EPS
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
        eps = _EPS
        p, px, py = self.matrix(row)
        hxy = (-1) * np.sum(p * np.log2(p + eps), (1, 2))
        hxy2 = (-1) * np.sum((px * py) * np.log2(px * py + eps), (1, 2))
        with np.errstate(invalid="ignore", over="ignore"):
            imc2 = (1 - np.e ** (-2 * (hxy2 - hxy))) ** 0.5
        imc2[hxy2 == hxy] = 0
        return float(_nanmean(imc2)[0])


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
    eps = _EPS
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
        out[name] = _nanmean(per_angle)

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
            put("InverseVariance", np.sum(pxsuby[:, 1:, :] / k[:, 1:, :] ** 2, 1))
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
    count = np.array([np.unique(row).size for row in levels])
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
    per_angle = np.bincount(pairs[2], minlength=na)
    weights = None
    keep = np.arange(na)
    if weighting_norm is not None:
        weights = angle_weights(offsets, roi.spacing[::-1], weighting_norm, glcm=True)
    elif na > 1:
        keep = np.flatnonzero(per_angle > 0)
    na_out = 1 if weights is not None else len(keep)
    result = {name: np.empty(nrows) for name in names}
    step = max(1, _CHUNK_BYTES // max(8 * na * g * g, 1))
    for r0 in range(0, nrows, step):
        sl = slice(r0, r0 + step)
        mat = _matrices(rank[sl], g, pairs, na, symmetrical)
        if weights is not None:
            mat = np.sum(mat * weights, 3, keepdims=True)
        elif len(keep) < na:
            mat = mat[..., keep]
        tot = np.sum(mat, (1, 2), keepdims=True)
        tot[tot == 0] = np.nan
        p = mat / tot
        assert p.shape[3] == na_out
        exact = _Exact(levels[sl], pairs, na, symmetrical, weights)
        part = _features_chunk(p, values[sl], count[sl], ngmax[sl], names, exact)
        for name in names:
            result[name][sl] = part[name]
    return result
