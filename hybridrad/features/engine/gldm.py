"""Grey Level Dependence Matrix (GLDM) features of B images of one ROI at once.

pyradiomics 3.0.1 (``radiomics.gldm`` with the C ``calculate_gldm``) counts, for each ROI
voxel, its *dependent* neighbours: ROI voxels at one of the offsets of Chebyshev
distance in ``distances`` (both directions, those that fit in the cropped box, in-plane
under ``force2D``) whose grey level differs from the centre's by at most ``gldm_a``
(alpha, an integer: the C wrapper parses it with ``"i"``). ``P(i, j)`` counts the voxels
of grey level ``i`` with ``j - 1`` dependent neighbours.

Here the dependence counts of all ``B`` rows are accumulated offset by offset from the
:class:`~hybridrad.features.engine.roi.Roi` neighbour tables (one gather of ``levels``
per offset, a sentinel column standing for "outside the ROI"), ``P`` is a ``bincount``
of ``(row, level, count)`` codes, and the features are evaluated on its non-zero
entries with :func:`hybridrad.features.engine.glszm.matrix_entry_features` (the GLDM
formulas are the GLSZM ones with the dependence size as ``j``).

pyradiomics' two deprecated GLDM features (``GrayLevelNonUniformityNormalized``,
``DependencePercentage``) raise ``DeprecationWarning`` there and are left out of its
output; they are listed in :data:`GLDM_DEPRECATED` and refused here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hybridrad.errors import EngineUnsupportedError
from hybridrad.features.engine.glszm import (
    check_angles,
    check_features,
    check_levels,
    matrix_entry_features,
    voxel_major,
)
from hybridrad.features.engine.roi import Roi

__all__ = ["GLDM_DEPRECATED", "GLDM_FEATURES", "gldm_features"]

GLDM_FEATURES: tuple[str, ...] = (
    "SmallDependenceEmphasis",
    "LargeDependenceEmphasis",
    "GrayLevelNonUniformity",
    "DependenceNonUniformity",
    "DependenceNonUniformityNormalized",
    "GrayLevelVariance",
    "DependenceVariance",
    "DependenceEntropy",
    "LowGrayLevelEmphasis",
    "HighGrayLevelEmphasis",
    "SmallDependenceLowGrayLevelEmphasis",
    "SmallDependenceHighGrayLevelEmphasis",
    "LargeDependenceLowGrayLevelEmphasis",
    "LargeDependenceHighGrayLevelEmphasis",
)
GLDM_DEPRECATED: tuple[str, ...] = ("GrayLevelNonUniformityNormalized", "DependencePercentage")

_GLDM_FORMULA: dict[str, str] = {
    "SmallDependenceEmphasis": "SE",
    "LargeDependenceEmphasis": "LE",
    "GrayLevelNonUniformity": "GLN",
    "DependenceNonUniformity": "SN",
    "DependenceNonUniformityNormalized": "SNN",
    "GrayLevelVariance": "GLV",
    "DependenceVariance": "SV",
    "DependenceEntropy": "E",
    "LowGrayLevelEmphasis": "LGLE",
    "HighGrayLevelEmphasis": "HGLE",
    "SmallDependenceLowGrayLevelEmphasis": "SLGLE",
    "SmallDependenceHighGrayLevelEmphasis": "SHGLE",
    "LargeDependenceLowGrayLevelEmphasis": "LLGLE",
    "LargeDependenceHighGrayLevelEmphasis": "LHGLE",
}

_DENSE_BUDGET = 8_000_000  # bincount bins before falling back to np.unique


def _alpha(alpha: float) -> int:
    a = float(alpha)
    if not a.is_integer():
        raise EngineUnsupportedError(
            f"GLDM: gldm_a = {alpha!r} is not an integer (pyradiomics' C core takes an int); "
            "use engine: pyradiomics"
        )
    return int(a)


def dependence_counts(lv: np.ndarray, roi: Roi, offsets: np.ndarray, alpha: int) -> np.ndarray:
    """Number of dependent neighbours of every voxel of every row, ``(N, B)`` (voxel-major).

    Parameters
    ----------
    lv
        ``(B, N)`` int64 grey levels (``>= 1``).
    roi
        The ROI.
    offsets
        Bidirectional neighbour offsets.
    alpha
        Largest absolute grey-level difference of a dependent neighbour.
    """
    b, n = lv.shape
    cdt = np.int16 if len(offsets) < 2**15 else np.int64
    dep = np.zeros((n, b), cdt)
    if alpha < 0:
        return dep  # |difference| >= 0 > alpha: nothing is dependent
    top = int(lv.max())
    alpha = min(alpha, top)  # any alpha >= the level range behaves the same
    # sentinel row (outside the ROI) more than alpha below every level (>= 1)
    t = voxel_major(lv, -(alpha + 1), top + alpha + 1)
    inner = t[:n]
    if alpha == 0:
        for o in offsets:
            dep += inner == np.take(t, roi.neighbours(o), axis=0)
        return dep
    diff = np.empty_like(inner)
    for o in offsets:
        np.subtract(inner, np.take(t, roi.neighbours(o), axis=0), out=diff)
        np.abs(diff, out=diff)
        dep += diff <= alpha
    return dep


def gldm_features(
    levels: np.ndarray,
    roi: Roi,
    *,
    distances: Sequence[int],
    alpha: float,
    force2d_dimension: int | None,
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """pyradiomics' GLDM features of ``B`` images of one ROI.

    Parameters
    ----------
    levels
        ``(B, N)`` int64 binned grey levels of the ROI voxels in ``roi.coords`` order.
    roi
        The texture ROI (mask cropped to its bounding box).
    distances
        Chebyshev neighbour distances (pyradiomics ``distances``).
    alpha
        ``gldm_a``: the largest grey-level difference of a dependent neighbour (an
        integer value; pyradiomics rejects others).
    force2d_dimension
        None for 3D, else the array axis held fixed (pyradiomics ``force2D``).
    features
        pyradiomics GLDM feature names (see :data:`GLDM_FEATURES`).

    Returns
    -------
    dict
        Feature name -> ``(B,)`` float64.

    Examples
    --------
    >>> m = np.ones((1, 2, 3), bool)
    >>> roi = Roi(m, (1.0, 1.0, 1.0))
    >>> lv = np.array([[1, 1, 2, 1, 2, 2]])
    >>> out = gldm_features(lv, roi, distances=[1], alpha=0, force2d_dimension=None,
    ...                     features=["DependenceNonUniformity"])
    >>> out["DependenceNonUniformity"].round(6)
    array([6.])
    """
    names = list(features)
    deprecated = [f for f in names if f in GLDM_DEPRECATED]
    if deprecated:
        raise EngineUnsupportedError(
            f"GLDM feature(s) {deprecated} are deprecated in pyradiomics, which raises "
            "DeprecationWarning and leaves them out of its output; drop them from the config"
        )
    names = check_features(names, GLDM_FEATURES, "GLDM")
    a = _alpha(alpha)
    lv = check_levels(levels, roi, "GLDM")
    n_rows = lv.shape[0]
    if not names or n_rows == 0:
        return {f: np.empty(n_rows) for f in names}
    offsets = roi.angles(distances, force2d_dimension=force2d_dimension, bidirectional=True)
    check_angles(offsets, roi, "GLDM")
    dep = dependence_counts(lv, roi, offsets, a)
    # P entries: (row, level, dependence size j = count + 1)
    ncol = len(offsets) + 2
    gmax = int(lv.max()) + 1
    code = (np.arange(n_rows) * gmax + lv.T) * ncol + (dep + 1)
    if n_rows * gmax * ncol <= _DENSE_BUDGET:
        dense = np.bincount(code.ravel(), minlength=n_rows * gmax * ncol)
        uniq = np.flatnonzero(dense)
        cnt = dense[uniq]
    else:
        uniq, cnt = np.unique(code, return_counts=True)
    rest = uniq // ncol
    return matrix_entry_features(
        rest // gmax,
        rest % gmax,
        uniq % ncol,
        cnt,
        n_rows,
        {f: _GLDM_FORMULA[f] for f in names},
    )
