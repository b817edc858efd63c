"""Helpers shared by the native engine's feature-class modules."""

from __future__ import annotations

from collections.abc import Sequence

from hybridrad.errors import EngineUnsupportedError


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
