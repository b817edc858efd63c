"""Grey Level Run Length Matrix features of B images of one ROI at once (pyradiomics 3.0.1).

Method
------
A run along angle ``o`` is a maximal chain of ROI voxels ``c, c+o, c+2o, ...`` with one
grey level; a voxel outside the ROI or a different level ends it (pyradiomics' C
``calculate_glrlm`` walks every line of the bounding box the same way). The geometry is
shared by all B images, so once per angle the ROI voxels are sorted along their lines
(key: the line's anchor voxel ``c - t o`` and the position ``t`` along it), and the
neighbour table tells which consecutive voxels in that order are linked (``c + o`` in the
ROI); both are memoised on the ROI. For every image, a run then ends wherever the link is
missing or the level changes: one int32 gather (``np.take``) and one vectorised comparison
over ``(B, N)`` per angle; run lengths are differences of the end positions, and each
angle's ``(B, G, L)`` matrix is one bincount of ``(image, level rank, length - 1)``.

pyradiomics' semantics reproduced here: empty grey levels and empty run lengths are
dropped (both only remove zero entries); ``weightingNorm`` sums the angles' matrices
weighted by the offset's norm in mm (manhattan, euclidean, infinity) or 1
(``no_weighting``); features are computed per angle with ``Nr`` the number of runs, then
averaged with ``nanmean``; ``eps = numpy.spacing(1)``. An angle never lacks runs (every
ROI voxel lies in one run), so no angle is dropped.

Only sorting, gathers, comparisons and bincount are used (expressible in torch); images
are processed in chunks of rows to bound the dense intermediates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from hybridrad.errors import ROITooSmallError
from hybridrad.features.engine._common import EPS, check_features, nanmean_last
from hybridrad.features.engine.glcm import (
    angle_weights,
    banded,
    compact_levels,
)
from hybridrad.features.engine.roi import Roi

__all__ = ["FEATURES", "glrlm_features"]

FEATURES: tuple[str, ...] = (
    "GrayLevelNonUniformity",
    "GrayLevelNonUniformityNormalized",
    "GrayLevelVariance",
    "HighGrayLevelRunEmphasis",
    "LongRunEmphasis",
    "LongRunHighGrayLevelEmphasis",
    "LongRunLowGrayLevelEmphasis",
    "LowGrayLevelRunEmphasis",
    "RunEntropy",
    "RunLengthNonUniformity",
    "RunLengthNonUniformityNormalized",
    "RunPercentage",
    "RunVariance",
    "ShortRunEmphasis",
    "ShortRunHighGrayLevelEmphasis",
    "ShortRunLowGrayLevelEmphasis",
)

_ROW_ELEMENTS = 2**21  # (rows, N) temporaries per chunk
_CHUNK_BYTES = 4 * 2**20  # one dense (rows, A, G, L) float64 matrix per chunk


def _line_order(roi: Roi, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """ROI voxels sorted along the lines of ``offset`` and where consecutive ones are not linked.

    Returns
    -------
    order
        ``(N,)`` int32 (int64 for huge ROIs) voxel indices, line by line, each line in
        increasing position.
    broken
        ``(N - 1,)`` bool, True where ``order[k + 1]`` is not the ROI voxel at
        ``coords[order[k]] + offset`` (a run always ends at ``order[k]`` there).
    multi
        Whether some line holds two or more ROI voxels (not necessarily adjacent):
        pyradiomics' C core zeroes the matrix of an angle where none does.
    """
    coords = roi.coords
    shape = np.array(roi.shape, dtype=np.int64)
    d0 = int(np.flatnonzero(offset)[0])
    t = coords[:, d0] * offset[d0]  # position along the line (offset[d0] is +-1)
    reach = int(shape.max())
    anchor = coords - t[:, None] * offset[None, :] + reach  # in [0, shape + 2 * reach)
    key = np.ravel_multi_index(tuple(anchor.T), tuple(shape + 2 * reach))
    span = int(shape[d0])
    order = np.argsort(key * (2 * span) + (t + span), kind="stable")
    nxt = roi.neighbours(offset.tolist())
    broken = nxt[order[:-1]] != order[1:]
    line = key[order]
    idt = np.int32 if roi.n < 2**31 else np.int64
    return order.astype(idt), broken, bool(np.any(line[1:] == line[:-1]))


def _run_counts(
    rank: np.ndarray, g: int, geometry: list[tuple[np.ndarray, np.ndarray, bool]]
) -> np.ndarray:
    """Run-length counts of the images ``rank`` (rows, N): ``(angles, rows, G, L)`` int64.

    Per angle the levels are gathered in line order; a run ends where the level changes or
    the link to the next voxel is broken (and at each row's last voxel). Its length is the
    distance to the previous end, and ``(row, rank, length - 1)`` is counted.
    """
    rows, n = rank.shape
    dt = np.int32 if rows * g < 2**31 else np.int64
    code = rank.astype(dt)
    code += (np.arange(rows, dtype=dt) * dt(g))[:, None]
    lev = np.empty((rows, n), dt)
    flat = lev.reshape(-1)
    end = np.empty((rows, n), dtype=bool)
    end[:, -1] = True
    per_angle = []
    for order, broken, _ in geometry:
        np.take(code, order, axis=1, out=lev)
        np.not_equal(lev[:, 1:], lev[:, :-1], out=end[:, :-1])
        end[:, :-1] |= broken
        ends = np.flatnonzero(end)  # row-major: each row's last voxel ends a run
        short = np.empty_like(ends)  # length - 1
        short[0] = ends[0]
        np.subtract(ends[1:], ends[:-1], out=short[1:])
        short[1:] -= 1
        per_angle.append((np.take(flat, ends), short))
    lmax = max(int(short.max()) for _, short in per_angle) + 1
    size = rows * g * lmax
    counts = np.empty((len(geometry), size), np.int64)
    for a, (c, short) in enumerate(per_angle):
        short += c.astype(np.int64) * lmax
        counts[a] = np.bincount(short, minlength=size)
    return counts.reshape(len(geometry), rows, g, lmax)


def _features_chunk(mat: np.ndarray, values: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Features of run-length matrices ``mat`` (rows, G, L, A) (pyradiomics' axis order)."""
    eps = EPS
    want = set(names)
    out: dict[str, np.ndarray] = {}
    lmax = mat.shape[2]
    pr = np.sum(mat, 1)  # (rows, L, A)
    pg = np.sum(mat, 2)  # (rows, G, A)
    nr = np.sum(mat, (1, 2))  # (rows, A)
    nr[nr == 0] = np.nan
    iv = values[:, :, None]  # (rows, G, 1)
    jv = np.arange(1, lmax + 1, dtype=np.float64)[None, :, None]  # (1, L, 1)

    def put(name: str, per_angle: np.ndarray) -> None:
        out[name] = nanmean_last(per_angle)

    if "ShortRunEmphasis" in want:
        put("ShortRunEmphasis", np.sum(pr / (jv**2), 1) / nr)
    if "LongRunEmphasis" in want:
        put("LongRunEmphasis", np.sum(pr * (jv**2), 1) / nr)
    if "GrayLevelNonUniformity" in want:
        put("GrayLevelNonUniformity", np.sum(pg**2, 1) / nr)
    if "GrayLevelNonUniformityNormalized" in want:
        put("GrayLevelNonUniformityNormalized", np.sum(pg**2, 1) / (nr**2))
    if "RunLengthNonUniformity" in want:
        put("RunLengthNonUniformity", np.sum(pr**2, 1) / nr)
    if "RunLengthNonUniformityNormalized" in want:
        put("RunLengthNonUniformityNormalized", np.sum(pr**2, 1) / nr**2)
    if "RunPercentage" in want:
        put("RunPercentage", nr / np.sum(pr * jv, 1))
    if "GrayLevelVariance" in want:
        pgn = pg / nr[:, None, :]
        u_i = np.sum(pgn * iv, 1, keepdims=True)
        put("GrayLevelVariance", np.sum(pgn * (iv - u_i) ** 2, 1))
    if "RunVariance" in want:
        prn = pr / nr[:, None, :]
        u_j = np.sum(prn * jv, 1, keepdims=True)
        put("RunVariance", np.sum(prn * (jv - u_j) ** 2, 1))
    if "RunEntropy" in want:
        p = mat / nr[:, None, None, :]
        put("RunEntropy", -np.sum(p * np.log2(p + eps), (1, 2)))
    if "LowGrayLevelRunEmphasis" in want:
        put("LowGrayLevelRunEmphasis", np.sum(pg / (iv**2), 1) / nr)
    if "HighGrayLevelRunEmphasis" in want:
        put("HighGrayLevelRunEmphasis", np.sum(pg * (iv**2), 1) / nr)
    i4 = values[:, :, None, None] ** 2  # (rows, G, 1, 1)
    j4 = jv[:, None, :, :] ** 2  # (1, 1, L, 1)
    if "ShortRunLowGrayLevelEmphasis" in want:
        put("ShortRunLowGrayLevelEmphasis", np.sum(mat / (i4 * j4), (1, 2)) / nr)
    if "ShortRunHighGrayLevelEmphasis" in want:
        put("ShortRunHighGrayLevelEmphasis", np.sum(mat * i4 / j4, (1, 2)) / nr)
    if "LongRunLowGrayLevelEmphasis" in want:
        put("LongRunLowGrayLevelEmphasis", np.sum(mat * j4 / i4, (1, 2)) / nr)
    if "LongRunHighGrayLevelEmphasis" in want:
        put("LongRunHighGrayLevelEmphasis", np.sum(mat * (j4 * i4), (1, 2)) / nr)
    return {name: out[name] for name in names}


def glrlm_features(
    levels: np.ndarray,
    roi: Roi,
    *,
    weighting_norm: str | None,
    force2d_dimension: int | None,
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """pyradiomics' GLRLM features of B images of one ROI.

    Parameters
    ----------
    levels
        ``(B, N)`` int binned grey levels in ``roi.coords`` order.
    roi
        The texture ROI.
    weighting_norm
        pyradiomics ``weightingNorm`` (None, 'manhattan', 'euclidean', 'infinity',
        'no_weighting').
    force2d_dimension
        The axis held fixed under ``force2D``, or None.
    features
        pyradiomics GLRLM feature names.

    Returns
    -------
    dict
        Name -> ``(B,)`` float64.

    Raises
    ------
    EngineUnsupportedError
        For an unknown feature name or weighting norm.
    ROITooSmallError
        When no angle fits the ROI box (pyradiomics fails there too).
    """
    names = check_features(features, FEATURES, "GLRLM")
    levels = np.asarray(levels, dtype=np.int64)
    if levels.ndim != 2 or levels.shape[1] != roi.n:
        raise ValueError(f"levels must have shape (B, {roi.n}), got {levels.shape}")
    nrows = levels.shape[0]
    if not names or nrows == 0:
        return {name: np.empty(nrows) for name in names}
    split = banded(
        levels,
        names,
        lambda sub: glrlm_features(
            sub,
            roi,
            weighting_norm=weighting_norm,
            force2d_dimension=force2d_dimension,
            features=names,
        ),
    )
    if split is not None:  # rows padded to one matrix size per band, not the batch's largest
        return split
    offsets = roi.angles((1,), force2d_dimension=force2d_dimension)
    na = len(offsets)
    if na == 0:
        raise ROITooSmallError(
            f"no GLRLM angle fits the ROI box {roi.shape} (force2D dimension {force2d_dimension}); "
            "pyradiomics fails on it too ('Error getting angle count')"
        )
    weights = None
    if weighting_norm is not None:
        weights = angle_weights(offsets, roi.spacing[::-1], weighting_norm, glcm=False)
    rank, values, _, _ = compact_levels(levels)
    g = values.shape[1]
    geometry = [
        roi.memo(("glrlm-lines", tuple(int(v) for v in o)), functools.partial(_line_order, roi, o))
        for o in offsets
    ]
    # pyradiomics zeroes angles along which no line holds two ROI voxels, then (unweighted,
    # several angles) drops them as empty; weighted, they add nothing to the sum
    keep = [a for a in range(na) if geometry[a][2]]
    if weights is not None:
        weights = weights[keep]
    if not keep:
        # pyradiomics: no run left. Several unweighted angles are all dropped (NaN); a single
        # (or weighted) all-zero matrix loses every run-length column, and the two features
        # that sum over that empty axis without dividing by Nr = NaN come out 0
        single = weights is not None or na == 1
        zero = {"RunEntropy", "RunVariance"} if single else set()
        return {name: np.full(nrows, 0.0 if name in zero else np.nan) for name in names}
    geometry = [geometry[a] for a in keep]
    na = len(keep)
    result = {name: np.empty(nrows) for name in names}
    step = max(1, _ROW_ELEMENTS // roi.n)
    for r0 in range(0, nrows, step):
        allmat = _run_counts(rank[r0 : r0 + step], g, geometry)
        rows, lmax = allmat.shape[1], allmat.shape[3]
        sub = max(1, _CHUNK_BYTES // (8 * g * lmax * na))
        for s0 in range(0, rows, sub):
            s1 = min(rows, s0 + sub)
            mat = allmat[:, s0:s1].transpose(1, 2, 3, 0).astype(np.float64)
            if weights is not None:
                mat = np.sum(mat * weights, 3, keepdims=True)
            part = _features_chunk(mat, values[r0 + s0 : r0 + s1], names)
            for name in names:
                result[name][r0 + s0 : r0 + s1] = part[name]
    return result
