"""Feature-by-feature agreement of the native engine with pyradiomics.

:func:`compare` runs both engines on one image and mask under one parameter set and
returns one row per feature; :func:`agrees` is the tolerance rule of the parity test
(relative 1e-6, absolute 1e-9 near zero; NaN agrees with NaN only). Used by
tests/test_engine_parity.py and ``benchmarks/engine.py parity``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

RTOL = 1e-6
ATOL = 1e-9


def agrees(
    reference: np.ndarray | float, value: np.ndarray | float, rtol: float = RTOL, atol: float = ATOL
) -> np.ndarray:
    """Whether ``value`` matches ``reference``: ``|v - r| <= max(atol, rtol * |r|)``; NaN
    matches NaN and infinities match themselves.

    Examples
    --------
    >>> agrees(np.array([1.0, 0.0, np.nan, 2.0]), np.array([1.0 + 1e-7, 1e-10, np.nan, 2.1])).tolist()
    [True, True, True, False]
    """
    r = np.asarray(reference, dtype=float)
    v = np.asarray(value, dtype=float)
    with np.errstate(invalid="ignore"):
        close = np.abs(v - r) <= np.maximum(atol, rtol * np.abs(r))
    same = (np.isnan(r) & np.isnan(v)) | (np.isinf(r) & (r == v))
    return np.asarray(close | same)


def _features(result: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def _refused(reference: Exception, native: Exception | None) -> pd.DataFrame:
    """The one-row result when pyradiomics refuses a case (ok when native refuses too)."""
    return pd.DataFrame(
        {
            "feature": ["<refused>"],
            "pyradiomics": [np.nan],
            "native": [np.nan],
            "abs_diff": [np.nan],
            "rel_diff": [np.nan],
            "ok": [native is not None],
            "error": [f"pyradiomics: {reference}; native: {native}"],
        }
    )


def compare(
    image: sitk.Image, mask: sitk.Image, params: Mapping[str, Any], *, label: int = 1
) -> pd.DataFrame:
    """Both engines on ``image`` / ``mask``: one row per pyradiomics feature key.

    Columns: ``feature``, ``pyradiomics``, ``native``, ``abs_diff``, ``rel_diff``, ``ok``
    (:func:`agrees`). A feature only one engine computes is a row with NaN on the other
    side and ``ok`` False. When pyradiomics refuses the case (a ``ValueError``, e.g. a
    re-segmentation range that leaves no voxel), the result is one ``<refused>`` row,
    ``ok`` when the native engine refuses it too.
    """
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from hybridrad.features.engine.extractor import NativeExtractor

    p = copy.deepcopy(dict(params))
    p.pop("engine", None)
    if p.get("setting"):
        p["setting"] = {k: v for k, v in p["setting"].items() if k != "normalizeRegion"}
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    try:
        ref = _features(
            RadiomicsFeatureExtractor(copy.deepcopy(p)).execute(image, mask, label=label)
        )
    except ValueError as exc:  # pyradiomics refuses the case: the native engine must too
        try:
            NativeExtractor(p).execute(image, mask, label=label)
        except ValueError as native_exc:
            return _refused(exc, native_exc)
        return _refused(exc, None)
    nat = _features(NativeExtractor(p).execute(image, mask, label=label))
    keys = sorted(set(ref) | set(nat))
    r = np.array([ref.get(k, np.nan) for k in keys])
    v = np.array([nat.get(k, np.nan) for k in keys])
    both = np.array([k in ref and k in nat for k in keys], dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(v - r)
        rel = diff / np.abs(r)
    return pd.DataFrame(
        {
            "feature": keys,
            "pyradiomics": r,
            "native": v,
            "abs_diff": diff,
            "rel_diff": rel,
            "ok": both & agrees(r, v),
        }
    )
