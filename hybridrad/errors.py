"""Domain exceptions and warnings.

Every exception subclasses a built-in (``ValueError``, ``OSError`` ...) so callers can
catch broadly, and every message names the case, file or column involved and says
what to do about it.
"""

from __future__ import annotations


class HybridradError(Exception):
    """Base class of all hybridrad errors."""


class HybridradWarning(UserWarning):
    """Base class of all hybridrad warnings."""


# --- files and images -------------------------------------------------------------------


class ImageNotFoundError(HybridradError, FileNotFoundError):
    """An image or mask path does not exist."""


class ImageReadError(HybridradError, OSError):
    """A file exists but SimpleITK cannot read it (corrupt, truncated, unknown format)."""


class UnsupportedFormatError(HybridradError, ValueError):
    """The file extension is not one of the supported image formats."""


# --- manifest and labels ----------------------------------------------------------------


class ManifestError(HybridradError, ValueError):
    """The manifest table itself is malformed (missing ``case_id`` column, no sequences ...)."""


class EmptyInputError(ManifestError):
    """A manifest or table is empty (0 bytes, header only) or a case id cell is empty."""


class PathEscapeError(ManifestError):
    """A relative path in a manifest climbs out of the manifest's folder (``../``);
    pass ``--allow-outside`` (``allow_outside=True``) when that is intended."""


class DuplicateCaseError(ManifestError):
    """The same ``case_id`` appears more than once."""


class MissingSequenceError(ManifestError):
    """A case has no path for a sequence column."""


class LabelMapError(HybridradError, ValueError):
    """A label map definition is invalid or unknown."""


class MaskLabelError(HybridradError, ValueError):
    """A mask holds values that the label map does not define."""


class GeometryError(HybridradError, ValueError):
    """Images that must share a voxel grid do not."""


class SequenceGeometryError(GeometryError):
    """The sequences of one case are on different voxel grids."""


class MaskGeometryError(GeometryError):
    """A mask is not on the voxel grid of its case's images."""


# --- clinical table ---------------------------------------------------------------------


class ClinicalError(HybridradError, ValueError):
    """The clinical table is malformed (missing column, duplicate ids)."""


class SurvivalTimeError(ClinicalError):
    """A survival time is missing, non-numeric or negative."""


class EventError(ClinicalError):
    """An event indicator is not 0/1."""


class CaseMismatchError(HybridradError, ValueError):
    """Cases present in the manifest but not in the clinical table, or the reverse."""


# --- aggregate ----------------------------------------------------------------------------


class CohortValidationError(HybridradError, ValueError):
    """Raised by :meth:`ValidationReport.raise_if_failed` with every problem found.

    The individual problems, each a specific exception instance, are in ``problems``.
    """

    def __init__(self, message: str, problems: list[Exception]) -> None:
        super().__init__(message)
        self.problems = problems


# --- feature extraction -------------------------------------------------------------------


class RadiomicsConfigError(HybridradError, ValueError):
    """A pyradiomics parameter file is invalid (unknown key, wrong type or value)."""


class EngineUnsupportedError(RadiomicsConfigError):
    """The native feature engine does not implement a setting, image type or feature the
    config asks for (never silently substituted); use ``engine: pyradiomics``."""


class EmptyROIError(HybridradError, ValueError):
    """The region of interest holds no voxel (or a requested label is absent)."""


class ROITooSmallError(HybridradError, ValueError):
    """The region of interest is too small for the configured features (e.g. one voxel)."""


class NonFiniteImageError(HybridradError, ValueError):
    """An image holds NaN or infinite voxels."""


class ImageDimensionError(HybridradError, ValueError):
    """An image's dimensionality does not fit the configuration (2D image, 3D config),
    or it has several components per voxel (RGB, vector) where one is needed."""


class ImageHeaderError(HybridradError, ValueError):
    """An image header describes an absurd grid (spacing of 1e-6 or 1e6 mm, billions of
    voxels, a singular direction matrix); refused before any voxel is read."""


class ConstantImageWarning(HybridradWarning):
    """An image holds a single value (blank or saturated); features of it are meaningless."""


class BinEdgeOverflowWarning(HybridradWarning):
    """An integer image's ROI maximum + 2 x binWidth overflows its pixel type in
    pyradiomics' bin edges (both engines then bin wrongly)."""


class DuplicateSequenceWarning(HybridradWarning):
    """Two sequences of a case hold identical voxels (often a missing sequence replaced by
    a copy of another); the model would see one scan twice under two names."""


class LabelValueWarning(HybridradWarning):
    """A mask holds values the label map says to ignore; they were left out as asked."""


# --- outputs, devices, trust -----------------------------------------------------------------


class OutputPathError(HybridradError, OSError):
    """An output path cannot be written (read-only folder, a folder where a file is due,
    a suffix that does not match the written format); checked before any compute."""


class DeviceError(HybridradError, ValueError):
    """The requested compute device (``--device cuda``) is not available here."""


class UntrustedCodeError(HybridradError, PermissionError):
    """A file would run code when loaded (a TorchScript module) and trust was not given
    (``--trust-code`` / ``trust_code=True``)."""


class ExtractionError(HybridradError, RuntimeError):
    """pyradiomics (or an encoder) failed on a case for a reason not covered above."""
