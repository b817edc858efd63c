"""Analysis-ready images: pure functions on SimpleITK images, and the cohort pipeline.

Every function takes and returns :class:`SimpleITK.Image` objects and keeps physical
geometry (origin, spacing, direction) explicit:

- :mod:`~hybridrad.preprocess.resample`: the one resampling module (images linear or
  B-spline, masks nearest or interpolate-then-threshold);
- :mod:`~hybridrad.preprocess.geometry`: reorientation, cropping with margins in mm;
- :mod:`~hybridrad.preprocess.bias`: N4 bias-field correction;
- :mod:`~hybridrad.preprocess.denoise`: curvature anisotropic diffusion;
- :mod:`~hybridrad.preprocess.register`: rigid mutual-information co-registration;
- :mod:`~hybridrad.preprocess.intensity`: z-score in a mask, percentile clipping, CT windows;
- :mod:`~hybridrad.preprocess.brain`: brain extraction (deepbet, or a threshold);
- :mod:`~hybridrad.preprocess.pipeline`: the validated YAML pipeline
  (``configs/preprocess/``) run over a cohort (``hybridrad preprocess``).

Names are imported from the submodules on first use, so ``import hybridrad.preprocess``
loads neither torch nor deepbet.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "resample_image": "resample",
    "resample_onto": "resample",
    "spacing_grid": "resample",
    "same_grid": "resample",
    "reorient": "geometry",
    "foreground_bbox": "geometry",
    "crop_to_mask": "geometry",
    "n4_bias_correction": "bias",
    "denoise": "denoise",
    "RigidResult": "register",
    "rigid_register": "register",
    "coregister": "register",
    "RegistrationError": "register",
    "IntensityStats": "intensity",
    "zscore": "intensity",
    "clip_percentiles": "intensity",
    "ct_window": "intensity",
    "BrainMask": "brain",
    "extract_brain": "brain",
    "deepbet_available": "brain",
    "PreprocessConfig": "pipeline",
    "load_pipeline": "pipeline",
    "run_pipeline": "pipeline",
    "preprocess_cohort": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"hybridrad.preprocess.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hybridrad.preprocess' has no attribute {name!r}")
