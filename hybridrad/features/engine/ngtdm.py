"""Neighbouring Grey Tone Difference Matrix (NGTDM) features of B images of one ROI at once.

pyradiomics 3.0.1 (``radiomics.ngtdm`` with the C ``calculate_ngtdm``): for each ROI voxel
of grey level ``i``, the mean grey level ``A`` of its ROI neighbours (offsets of Chebyshev
distance in ``distances``, both directions, those that fit in the cropped box, in-plane
under ``force2D``) gives ``|i - A|`` (0 for a voxel without neighbours); ``n_i`` counts the
voxels of level ``i`` and ``s_i`` sums their differences. Grey levels with ``n_i = 0`` are
deleted and the features are pairwise sums over the remaining levels.

Here the neighbour sums and counts of all ``B`` rows come from the
:class:`~hybridrad.features.engine.roi.Roi` neighbour tables (one gather per offset, a zero
sentinel column standing for "outside the ROI"; the counts are shared by all rows),
``n_i`` and ``s_i`` are ``bincount``\\ s in voxel order (the C accumulation order), and the
pairwise sums run on the present levels of each row, masked exactly where pyradiomics
masks ``p_i = 0``, on groups of rows with similar present-level counts (each padded to
its group's largest count) that bound the ``(rows, Ng, Ng)`` intermediates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hybridrad.features.engine.glszm import (
    check_angles,
    check_features,
    check_levels,
    voxel_major,
)
from hybridrad.features.engine.roi import Roi

__all__ = ["NGTDM_FEATURES", "ngtdm_features"]

NGTDM_FEATURES: tuple[str, ...] = ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")

_PAIR_BUDGET = 2_000_000  # elements of one (rows, Ng, Ng) intermediate


def ngtdm_matrix(lv: np.ndarray, roi: Roi, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n_i`` and ``s_i`` of each row, dense over level values: two ``(B, max + 1)`` arrays.

    Parameters
    ----------
    lv
        ``(B, N)`` int64 grey levels.
    roi
        The ROI.
    offsets
        Bidirectional neighbour offsets.
    """
    b, n = lv.shape
    top = int(lv.max())
    t = voxel_major(lv, 0, top)  # sentinel 0: outside voxels add nothing to the sums
    total = np.zeros((n, b), np.int32 if top * len(offsets) < 2**31 else np.int64)
    count = np.zeros(n, np.int64)
    for o in offsets:
        nbr = roi.neighbours(o)
        total += np.take(t, nbr, axis=0)
        count += nbr >= 0
    # C: diff = image[i] - sum / count (sum accumulated exactly), 0 without neighbours
    mean = total / np.maximum(count, 1)[:, None]
    diff = np.abs(np.subtract(t[:n], mean, out=mean), out=mean)
    diff[count == 0] = 0.0
    gmax = top + 1
    code = (np.arange(b) * gmax + t[:n]).ravel()  # per bin, voxels in C (coords) order
    ni = np.bincount(code, minlength=b * gmax).reshape(b, gmax).astype(np.float64)
    si = np.bincount(code, weights=diff.ravel(), minlength=b * gmax).reshape(b, gmax)
    return ni, si


def _pair_chunks(ngp: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Rows grouped by their number of present levels (ascending), each group with the
    largest count in it: the ``(rows, k, k)`` pairwise arrays of a group are padded little
    and stay within the element budget."""
    order = np.argsort(ngp, kind="stable")
    out: list[tuple[np.ndarray, int]] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end < len(order):
            k = int(ngp[order[end]])
            small = k <= 1.3 * max(int(ngp[order[start]]), 8)
            if small and (end - start + 1) * k * k <= _PAIR_BUDGET:
                continue
        out.append((order[start:end], max(int(ngp[order[end - 1]]), 1)))
        start = end
    return out


def _pairwise(
    p: np.ndarray, s: np.ndarray, iv: np.ndarray, ok: np.ndarray, nvp: np.ndarray
) -> dict[str, np.ndarray]:
    """Contrast numerator, busyness denominator, complexity and strength numerator."""
    both = ok[:, :, None] & ok[:, None, :]
    d = iv[:, :, None] - iv[:, None, :]
    d2 = d * d
    contrast = (p[:, :, None] * p[:, None, :] * d2).sum((1, 2))
    ip = iv * p
    absdiff = np.where(both, np.abs(ip[:, :, None] - ip[:, None, :]), 0.0).sum((1, 2))
    ps = p * s
    num = np.where(both, ps[:, :, None] + ps[:, None, :], 0.0)
    div = p[:, :, None] + p[:, None, :]
    div[div == 0] = 1
    complexity = (np.abs(d) * num / div).sum((1, 2)) / nvp
    strength = np.where(both, (p[:, :, None] + p[:, None, :]) * d2, 0.0).sum((1, 2))
    return {
        "contrast": contrast,
        "absdiff": absdiff,
        "complexity": complexity,
        "strength": strength,
    }


def ngtdm_features(
    levels: np.ndarray,
    roi: Roi,
    *,
    distances: Sequence[int],
    force2d_dimension: int | None,
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """pyradiomics' NGTDM features of ``B`` images of one ROI.

    Parameters
    ----------
    levels
        ``(B, N)`` int64 binned grey levels of the ROI voxels in ``roi.coords`` order.
    roi
        The texture ROI (mask cropped to its bounding box).
    distances
        Chebyshev neighbour distances (pyradiomics ``distances``).
    force2d_dimension
        None for 3D, else the array axis held fixed (pyradiomics ``force2D``).
    features
        pyradiomics NGTDM feature names (see :data:`NGTDM_FEATURES`).

    Returns
    -------
    dict
        Feature name -> ``(B,)`` float64.

    Examples
    --------
    >>> m = np.ones((1, 2, 3), bool)
    >>> roi = Roi(m, (1.0, 1.0, 1.0))
    >>> lv = np.array([[1, 1, 2, 1, 2, 2]])
    >>> out = ngtdm_features(lv, roi, distances=[1], force2d_dimension=None,
    ...                      features=["Coarseness"])
    >>> out["Coarseness"].round(6)
    array([0.789474])
    """
    names = check_features(features, NGTDM_FEATURES, "NGTDM")
    lv = check_levels(levels, roi, "NGTDM")
    n_rows = lv.shape[0]
    if not names or n_rows == 0:
        return {f: np.empty(n_rows) for f in names}
    offsets = roi.angles(distances, force2d_dimension=force2d_dimension, bidirectional=True)
    check_angles(offsets, roi, "NGTDM")
    ni, si = ngtdm_matrix(lv, roi, offsets)

    # present grey levels of each row, left-aligned and zero-padded to the largest count
    present = ni > 0
    ngp = present.sum(1)
    k = int(ngp.max())
    rr, cc = np.nonzero(present)
    pos = np.arange(len(rr)) - np.repeat(np.cumsum(ngp) - ngp, ngp)
    n_c = np.zeros((n_rows, k))
    s_c = np.zeros((n_rows, k))
    i_c = np.zeros((n_rows, k))
    ok = np.zeros((n_rows, k), bool)
    n_c[rr, pos] = ni[rr, cc]
    s_c[rr, pos] = si[rr, cc]
    i_c[rr, pos] = cc
    ok[rr, pos] = True

    nvp = n_c.sum(1)
    p = n_c / nvp[:, None]
    sum_s = s_c.sum(1)
    sum_ps = (p * s_c).sum(1)
    want = set(names)
    out: dict[str, np.ndarray] = {}
    if "Coarseness" in want:
        coarse = sum_ps.copy()
        nonzero = coarse != 0
        coarse[nonzero] = 1 / coarse[nonzero]
        coarse[~nonzero] = 1e6
        out["Coarseness"] = coarse
    if want & {"Contrast", "Busyness", "Complexity", "Strength"}:
        pw = {key: np.empty(n_rows) for key in ("contrast", "absdiff", "complexity", "strength")}
        for rows, kr in _pair_chunks(ngp):
            part = _pairwise(p[rows, :kr], s_c[rows, :kr], i_c[rows, :kr], ok[rows, :kr], nvp[rows])
            for key, value in part.items():
                pw[key][rows] = value
        div = (ngp * (ngp - 1)).astype(np.float64)
        contrast = pw["contrast"] * sum_s / nvp
        contrast = np.divide(contrast, div, out=np.zeros(n_rows), where=div != 0)
        out["Contrast"] = contrast
        absdiff = pw["absdiff"]
        out["Busyness"] = np.divide(sum_ps, absdiff, out=np.zeros(n_rows), where=absdiff != 0)
        out["Complexity"] = pw["complexity"]
        out["Strength"] = np.divide(pw["strength"], sum_s, out=np.zeros(n_rows), where=sum_s != 0)
    return {f: out[f] for f in names}
