"""Cohort manifests, label maps, validation and image I/O."""

from hybridrad.io.images import (
    NONFINITE_MODES,
    Geometry,
    check_header,
    read_geometry,
    read_image,
    write_image,
)
from hybridrad.io.labels import PRESETS, LabelMap, load_label_map
from hybridrad.io.manifest import Case, Cohort, read_clinical, write_manifest
from hybridrad.io.validate import Problem, ValidationReport, validate_clinical, validate_cohort

__all__ = [
    "NONFINITE_MODES",
    "PRESETS",
    "Case",
    "Cohort",
    "Geometry",
    "LabelMap",
    "Problem",
    "ValidationReport",
    "check_header",
    "load_label_map",
    "read_clinical",
    "read_geometry",
    "read_image",
    "validate_clinical",
    "validate_cohort",
    "write_image",
    "write_manifest",
]
