"""The native handcrafted-feature engine: pyradiomics' features, vectorised.

Selected per config with ``engine: native`` (top-level key of a radiomics YAML) or
``hybridrad extract --engine native``; pyradiomics stays the default. Modules:

- :mod:`.roi`: the ROI voxel list, pyradiomics' angles and the neighbour (pair) tables
  every texture matrix is built from;
- :mod:`.prep`: normalisation, resampling, cropping, re-segmentation, image types and
  binning, as pyradiomics does them;
- :mod:`.firstorder`, :mod:`.shape`, :mod:`.glcm`, :mod:`.glrlm`, :mod:`.glszm`,
  :mod:`.gldm`, :mod:`.ngtdm`: each class's features for a batch of images at once;
- :mod:`.extractor`: :class:`NativeExtractor`, the drop-in for pyradiomics' extractor.

See docs/engine.md for the parity table and the measured speed-ups.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENGINES", "NativeExtractor"]

#: Engine names a radiomics config's ``engine`` key takes (the first is the default).
ENGINES = ("pyradiomics", "native")


def __getattr__(name: str) -> Any:
    if name == "NativeExtractor":
        from hybridrad.features.engine.extractor import NativeExtractor

        return NativeExtractor
    raise AttributeError(name)
