"""First-order features of B images at once: pyradiomics 3.0.1's ``RadiomicsFirstOrder``.

Every statistic is a reduction along the voxel axis of the ``(B, N)`` arrays of ROI
values (intensity features) or binned levels (histogram features: entropy,
uniformity), so one numpy call per statistic serves every image type of a case.

Order statistics (minimum, percentiles, median, maximum) come from one sort of each
row and numpy's ``linear`` quantile interpolation applied to the sorted rows (the
values ``numpy.nanpercentile`` gives on NaN-free rows). Means are
``sum(axis=1) / N`` as ``numpy.nanmean`` computes them, so the flat-region special
cases (skewness, kurtosis) see the same rounding. Higher central moments use products
instead of ``numpy.power`` except in rows whose values are all equal, where the
rounding residue *is* the pyradiomics result and ``numpy.power`` is used as there.

The histogram ``p(i)`` is a ``bincount`` of ``row * (Ng_max + 1) + level``; empty bins
contribute exactly zero to entropy and uniformity, as the absent levels of
pyradiomics' ``numpy.unique`` do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hybridrad.errors import EngineUnsupportedError

FIRSTORDER_FEATURES = (
    "Energy",
    "TotalEnergy",
    "Entropy",
    "Minimum",
    "10Percentile",
    "90Percentile",
    "Maximum",
    "Mean",
    "Median",
    "InterquartileRange",
    "Range",
    "MeanAbsoluteDeviation",
    "RobustMeanAbsoluteDeviation",
    "RootMeanSquared",
    "StandardDeviation",
    "Skewness",
    "Kurtosis",
    "Variance",
    "Uniformity",
)
"""pyradiomics' first-order feature names (StandardDeviation is deprecated there)."""

_CHUNK_ELEMENTS = 2_000_000  # rows per chunk * N: keeps each float64 temporary <= 16 MB


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """numpy's ``_lerp`` (quantile interpolation), the same expression."""
    diff_b_a = b - a
    if t >= 0.5:
        return np.asarray(b - diff_b_a * (1 - t))
    return np.asarray(a + diff_b_a * t)


def _quantile_sorted(srt: np.ndarray, q: float) -> np.ndarray:
    """``numpy.quantile(row, q)`` (method ``linear``) of each row of the sorted array."""
    n = srt.shape[1]
    # numpy's "linear" method: get_virtual_index = (n - 1) * q (not the general
    # alpha/beta expression, which differs in the last bit: n = 30861, q = 0.1 gives
    # 3086.0000000000005 against 3086.0, and a voxel at the 10th percentile then leaves
    # RobustMeanAbsoluteDeviation's range)
    virtual = (n - 1) * q
    lo = int(np.floor(virtual))
    gamma = float(virtual - lo)
    lo = min(max(lo, 0), n - 1)
    hi = min(lo + 1, n - 1)
    if lo == hi:
        return srt[:, lo].copy()
    return _lerp(srt[:, lo], srt[:, hi], gamma)


def _median_sorted(srt: np.ndarray) -> np.ndarray:
    """``numpy.median`` of each row of the sorted array (mean of the middle pair)."""
    n = srt.shape[1]
    half = n // 2
    if n % 2:
        return srt[:, half].copy()
    return np.asarray(np.mean(srt[:, half - 1 : half + 1], axis=1))


def _chunk(
    values: np.ndarray,
    levels: np.ndarray,
    voxel_volume: float,
    shift: float,
    need: set[str],
) -> dict[str, np.ndarray]:
    b, n = values.shape
    out: dict[str, np.ndarray] = {}
    if need & {"Energy", "TotalEnergy", "RootMeanSquared"}:
        shifted = values + shift
        energy = np.sum(shifted * shifted, axis=1)
        out["Energy"] = energy
        out["TotalEnergy"] = energy * voxel_volume
        out["RootMeanSquared"] = np.sqrt(energy / n)

    if need & {"Entropy", "Uniformity"}:
        lv = levels.astype(np.int64, copy=False)
        width = int(lv.max()) + 1
        hist = np.bincount(
            (lv + (np.arange(b, dtype=np.int64) * width)[:, None]).ravel(), minlength=b * width
        ).reshape(b, width)
        p = hist / float(n)
        eps = np.spacing(1)
        out["Entropy"] = -1.0 * np.sum(p * np.log2(p + eps), axis=1)
        out["Uniformity"] = np.sum(p * p, axis=1)

    order_stats = {"Minimum", "Maximum", "Range", "10Percentile", "90Percentile", "Median",
                   "InterquartileRange", "RobustMeanAbsoluteDeviation"}  # fmt: skip
    flat = np.zeros(b, dtype=bool)
    if need & order_stats:
        srt = np.sort(values, axis=1)
        out["Minimum"] = srt[:, 0].copy()
        out["Maximum"] = srt[:, -1].copy()
        out["Range"] = out["Maximum"] - out["Minimum"]
        p10 = _quantile_sorted(srt, 0.1)
        p90 = _quantile_sorted(srt, 0.9)
        out["10Percentile"] = p10
        out["90Percentile"] = p90
        out["Median"] = _median_sorted(srt)
        out["InterquartileRange"] = _quantile_sorted(srt, 0.75) - _quantile_sorted(srt, 0.25)
        if "RobustMeanAbsoluteDeviation" in need:
            inside = (values - p10[:, None] >= 0) & (values - p90[:, None] <= 0)
            count = np.sum(inside, axis=1)
            sub_mean = np.sum(np.where(inside, values, 0.0), axis=1) / count
            dev = np.where(inside, np.abs(values - sub_mean[:, None]), 0.0)
            out["RobustMeanAbsoluteDeviation"] = np.sum(dev, axis=1) / count
        flat = srt[:, 0] == srt[:, -1]
    else:
        flat = np.all(values == values[:, :1], axis=1)

    moments = {"Mean", "MeanAbsoluteDeviation", "StandardDeviation", "Variance", "Skewness",
               "Kurtosis"}  # fmt: skip
    if need & moments:
        mean = np.sum(values, axis=1, keepdims=True) / n
        out["Mean"] = mean[:, 0]
        dev = values - mean
        if "MeanAbsoluteDeviation" in need:
            out["MeanAbsoluteDeviation"] = np.sum(np.abs(dev), axis=1) / n
        sq = dev * dev
        m2 = np.sum(sq, axis=1) / n
        std = np.sqrt(m2)
        out["StandardDeviation"] = std
        out["Variance"] = std**2
        if need & {"Skewness", "Kurtosis"}:
            m3 = np.sum(sq * dev, axis=1) / n
            m4 = np.sum(sq * sq, axis=1) / n
            if flat.any():  # the rounding residue is the result: same operations as pyradiomics
                d = dev[flat]
                m2[flat] = np.sum(np.power(d, 2), axis=1) / n
                m3[flat] = np.sum(np.power(d, 3), axis=1) / n
                m4[flat] = np.sum(np.power(d, 4), axis=1) / n
            m2 = np.where(m2 == 0, 1.0, m2)
            out["Skewness"] = m3 / m2**1.5
            out["Kurtosis"] = m4 / m2**2.0
    return out


def firstorder_features(
    values: np.ndarray,
    levels: np.ndarray,
    *,
    voxel_volume: float,
    voxel_array_shift: float,
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """pyradiomics' first-order features of B images of one ROI.

    Parameters
    ----------
    values
        ``(B, N)`` float ROI voxel values, one row per image type (NaN-free).
    levels
        ``(B, N)`` int binned grey levels of the same voxels (entropy, uniformity).
    voxel_volume
        Voxel volume in mm^3 (TotalEnergy).
    voxel_array_shift
        pyradiomics' ``voxelArrayShift`` (Energy, TotalEnergy, RootMeanSquared).
    features
        pyradiomics feature names (see :data:`FIRSTORDER_FEATURES`).

    Returns
    -------
    dict[str, numpy.ndarray]
        Feature name to a ``(B,)`` float64 array.

    Raises
    ------
    EngineUnsupportedError
        For a name that is not a first-order feature.

    Examples
    --------
    >>> v = np.array([[1.0, 2.0, 3.0, 4.0]])
    >>> out = firstorder_features(v, v.astype(int), voxel_volume=2.0, voxel_array_shift=0,
    ...                           features=["Mean", "TotalEnergy", "Median"])
    >>> {k: float(x[0]) for k, x in out.items()}
    {'Mean': 2.5, 'TotalEnergy': 60.0, 'Median': 2.5}
    """
    names = list(features)
    unknown = [f for f in names if f not in FIRSTORDER_FEATURES]
    if unknown:
        raise EngineUnsupportedError(
            f"firstorder feature(s) {unknown} are not implemented by the native engine; "
            "use engine: pyradiomics"
        )
    values = np.ascontiguousarray(values, dtype=np.float64)
    levels = np.asarray(levels)
    if values.ndim != 2 or levels.shape != values.shape:
        raise ValueError(
            f"values and levels must be (B, N) arrays of one shape, got {values.shape} "
            f"and {levels.shape}"
        )
    b, n = values.shape
    if n == 0:
        raise ValueError("the ROI is empty")
    need = set(names)
    rows = max(1, _CHUNK_ELEMENTS // n)
    parts = [
        _chunk(values[s : s + rows], levels[s : s + rows], voxel_volume, voxel_array_shift, need)
        for s in range(0, b, rows)
    ]
    return {k: np.concatenate([p[k] for p in parts]).astype(np.float64, copy=False) for k in names}
