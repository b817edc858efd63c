"""Prognostic and subtyping models with leakage-safe evaluation (scikit-learn API)."""

from hybridrad.models.evaluate import CVSettings, EvaluationResult, nested_cv
from hybridrad.models.fusion import fuse
from hybridrad.models.pipelines import StudyConfig, build_pipeline, compare_feature_sets
from hybridrad.models.target import class_target, survival_target

__all__ = [
    "CVSettings",
    "EvaluationResult",
    "StudyConfig",
    "build_pipeline",
    "class_target",
    "compare_feature_sets",
    "fuse",
    "nested_cv",
    "survival_target",
]
