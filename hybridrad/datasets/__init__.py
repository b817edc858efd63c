"""Datasets: a deterministic synthetic ground-truth glioma MRI cohort."""

from hybridrad.datasets.synthetic import (
    SEQUENCES,
    SUBTYPES,
    SyntheticCohort,
    load_synthetic_truth,
    make_synthetic_cohort,
)

__all__ = [
    "SEQUENCES",
    "SUBTYPES",
    "SyntheticCohort",
    "load_synthetic_truth",
    "make_synthetic_cohort",
]
