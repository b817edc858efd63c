"""Feature extraction: handcrafted radiomics (pyradiomics) and the cohort runner."""

from hybridrad.features.radiomics import RadiomicsConfig, RadiomicsTask, extract_radiomics
from hybridrad.runner import CohortResult, run_cohort

__all__ = ["CohortResult", "RadiomicsConfig", "RadiomicsTask", "extract_radiomics", "run_cohort"]
