"""DICOM conversion to NIfTI with optional de-identification (``hybridrad convert``).

pydicom and dicognito are the optional ``dicom`` extra (``pip install 'hybridrad[dicom]'``);
they are imported when a function needs them, so importing this package needs neither.
"""

from hybridrad.dicom.convert import (
    ConversionResult,
    Dicom4DError,
    DicomError,
    DicomReadError,
    DicomSeriesError,
    MixedSeriesWarning,
    NoDicomError,
    SeriesInfo,
    check_series,
    convert,
    find_series,
    sequence_name,
)
from hybridrad.dicom.deidentify import DicomDependencyError, KeyFileError, default_key_path

__all__ = [
    "ConversionResult",
    "Dicom4DError",
    "DicomDependencyError",
    "DicomError",
    "DicomReadError",
    "DicomSeriesError",
    "KeyFileError",
    "MixedSeriesWarning",
    "NoDicomError",
    "SeriesInfo",
    "check_series",
    "convert",
    "default_key_path",
    "find_series",
    "sequence_name",
]
