"""Analysis-ready images: pure functions on SimpleITK images, and the cohort pipeline.

Every function takes and returns :class:`SimpleITK.Image` objects and keeps physical
geometry (origin, spacing, direction) explicit. The cohort pipeline
(:mod:`hybridrad.preprocess.pipeline`, ``hybridrad preprocess``) chains them from a
validated YAML file in ``configs/preprocess/``.
"""

from __future__ import annotations

from hybridrad.preprocess.resample import resample_cohort, resample_image

__all__ = ["resample_cohort", "resample_image"]
