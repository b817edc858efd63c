"""Helpers shared by the native engine's feature-class modules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hybridrad.errors import EngineUnsupportedError

#: pyradiomics' ``eps`` (``numpy.spacing(1)``), added inside its logarithms and divisions.
EPS = float(np.spacing(1))


def nanmean_last(x: np.ndarray) -> np.ndarray:
    """``nanmean`` over the last axis without warnings (NaN when nothing is finite or the
    axis is empty): pyradiomics' mean over angles."""
    if x.shape[-1] == 0:
        return np.full(x.shape[:-1], np.nan)
    ok = ~np.isnan(x)
    n = ok.sum(axis=-1)
    s = np.where(ok, x, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, s / np.maximum(n, 1), np.nan))


def check_features(
    features: Sequence[str],
    known: Sequence[str],
    cls: str,
    deprecated: Sequence[str] = (),
) -> list[str]:
    """Validate requested feature names against a class's implemented names.

    Raises
    ------
    EngineUnsupportedError
        For an unknown or deprecated name.
    """
    names = list(dict.fromkeys(features))
    for name in names:
        if name in deprecated:
            raise EngineUnsupportedError(
                f"{cls} feature {name!r} is deprecated in pyradiomics (it computes no value); the "
                "native engine does not implement it: use engine: pyradiomics"
            )
        if name not in known:
            raise EngineUnsupportedError(
                f"{cls} feature {name!r} is not implemented by the native engine: use engine: pyradiomics"
            )
    return names
