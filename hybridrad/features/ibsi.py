"""pyradiomics features in IBSI terms: codes, aggregation, corrections, known deviations.

The Image Biomarker Standardisation Initiative (IBSI 1; Zwanenburg et al., Radiology
2020;295:328, reference manual arXiv 1612.07003) names every radiomics feature with a
4-character code (``GYBY`` = GLCM joint maximum) and fixes how texture matrices are
aggregated over directions and slices. pyradiomics computes most IBSI features but names
them differently, reports a few on a different scale (kurtosis) and has no setting for
some IBSI image-processing steps (rounding after interpolation, IBSI grid alignment,
partial-volume mask interpolation, fixed-bin-size origin).

This module holds

* :data:`IBSI_FEATURES`: one :class:`IBSIFeature` per IBSI feature that pyradiomics
  computes (directly, or through a documented correction/derivation), with its status
  ``agree`` / ``corrected`` / ``deviates`` and the reason for a deviation;
* :func:`pyradiomics_aggregation`: the IBSI aggregation method that a pyradiomics
  setting corresponds to (GLCM/GLRLM default = ``3D, averaged``; ``weightingNorm:
  no_weighting`` = ``3D, merged``; ``force2D`` = the ``2.5D`` variants);
* :func:`to_ibsi`: pyradiomics output -> table keyed by IBSI code, corrections applied;
* :func:`ibsi_resample`: IBSI-conformant interpolation (grid-centre alignment,
  rounding of intensities, partial-volume mask threshold) done with SimpleITK before
  pyradiomics, which cannot do it itself;
* :func:`within_reference`: the IBSI comparison rule (tolerance, or the printed
  significant digits for the digital phantom).

See ``docs/ibsi_conformance.md`` for the measured conformance on the IBSI 1 digital
phantom and CT phantom configurations A-E.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import SimpleITK as sitk

__all__ = [
    "BENCHMARK_CONFIGS",
    "CONFIG_DEVIATIONS",
    "IBSI_FEATURES",
    "BenchmarkConfig",
    "IBSIFeature",
    "Status",
    "combined_resegment_range",
    "compare_with_reference",
    "extract_ibsi",
    "ibsi_resample",
    "ibsi_table",
    "load_reference",
    "printed_tolerance",
    "pyradiomics_aggregation",
    "run_benchmark_config",
    "to_ibsi",
    "within_reference",
]

Status = Literal["agree", "corrected", "deviates"]

MORPH = "Morphological features"
STAT = "Intensity-based statistical features"
IH = "Intensity histogram features"
GLCM = "Grey level co-occurrence based features"
GLRLM = "Grey level run length based features"
GLSZM = "Grey level size zone based features"
NGTDM = "Neighbourhood grey tone difference based features"
NGLDM = "Neighbouring grey level dependence based features"

_TEXTURE_DIRECTIONAL = ("glcm", "glrlm")
_TEXTURE_SINGLE = ("glszm", "ngtdm", "gldm")


def _identity(x: float) -> float:
    return x


def _excess_kurtosis(x: float) -> float:
    return x - 3.0


def _compactness1(sphericity: float) -> float:
    return float(sphericity**1.5 / (6.0 * math.pi))


def _compactness2(sphericity: float) -> float:
    return float(sphericity**3)


def _spherical_disproportion(sphericity: float) -> float:
    return 1.0 / sphericity


def _asphericity(sphericity: float) -> float:
    return 1.0 / sphericity - 1.0


@dataclass(frozen=True)
class IBSIFeature:
    """One IBSI feature and how it is obtained from pyradiomics.

    Parameters
    ----------
    code
        IBSI identifier, e.g. ``"GYBY"``.
    family
        IBSI feature family, as in the reference tables.
    name
        IBSI feature name.
    pyrad_class
        pyradiomics feature class (``glcm``, ``firstorder`` ...).
    pyrad_feature
        pyradiomics feature the value is taken from.
    status
        ``agree``: the pyradiomics value is the IBSI value; ``corrected``: the IBSI value
        is a documented function of a pyradiomics value (``transform``); ``deviates``:
        pyradiomics defines or computes it differently (see ``note``).
    note
        The correction applied, or the reason for a deviation.
    transform
        Maps the pyradiomics value to the IBSI value (identity unless ``corrected``).
    aggregation_class
        The pyradiomics class whose aggregation the IBSI feature has (differs from
        ``pyrad_class`` for derived features, e.g. NGLDM 5SPA from firstorder).
    """

    code: str
    family: str
    name: str
    pyrad_class: str
    pyrad_feature: str
    status: Status = "agree"
    note: str = ""
    transform: Callable[[float], float] = _identity
    aggregation_class: str = ""

    @property
    def pyrad_key(self) -> str:
        """``<class>_<feature>``, the pyradiomics key without the image type."""
        return f"{self.pyrad_class}_{self.pyrad_feature}"


def _f(
    code: str,
    family: str,
    name: str,
    cls: str,
    feature: str,
    status: Status = "agree",
    note: str = "",
    transform: Callable[[float], float] = _identity,
    aggregation_class: str = "",
) -> IBSIFeature:
    return IBSIFeature(
        code, family, name, cls, feature, status, note, transform, aggregation_class or cls
    )


_SPH = "derived from pyradiomics Sphericity (= (36 pi V^2)^(1/3) / A, mesh based)"
_AXIS = (
    "pyradiomics takes PCA eigenvalues of the voxel-centre covariance with 1/N, IBSI with "
    "1/(N-1): multiplied by sqrt(N/(N-1)), N = ROI voxel count from the pyradiomics "
    "diagnostics (left uncorrected, status deviates, when the diagnostics are absent)"
)
_AXIS_CODES = frozenset({"TDIC", "P9VJ", "7J51"})
_NGLDM = "pyradiomics GLDM with gldm_a=0 and distance 1 is the IBSI NGLDM (coarseness 0)"
_IDN = (
    "pyradiomics normalises by the number of grey levels present in the ROI; IBSI by the "
    "number of discretisation bins Ng (differs when bins are empty)"
)

#: Every IBSI 1 feature that pyradiomics 3.0.x computes, with its mapping and status.
#: ``deviates`` entries carry the reason; features absent here are not computed by
#: pyradiomics (local intensity, most intensity-histogram features, IVH, GLDZM,
#: the morphological density / Moran / Geary / centre-of-mass features ...).
IBSI_FEATURES: tuple[IBSIFeature, ...] = (
    # --- morphology (3D shape, mesh based) ---
    _f("RNU0", MORPH, "Volume (mesh)", "shape", "MeshVolume"),
    _f("YEKZ", MORPH, "Volume (voxel counting)", "shape", "VoxelVolume"),
    _f("C0JK", MORPH, "Surface area (mesh)", "shape", "SurfaceArea"),
    _f("2PR5", MORPH, "Surface to volume ratio", "shape", "SurfaceVolumeRatio"),
    _f(
        "SKGS",
        MORPH,
        "Compactness 1",
        "shape",
        "Sphericity",
        "corrected",
        f"{_SPH}: C1 = sphericity^(3/2) / (6 pi)",
        _compactness1,
    ),
    _f(
        "BQWJ",
        MORPH,
        "Compactness 2",
        "shape",
        "Sphericity",
        "corrected",
        f"{_SPH}: C2 = sphericity^3",
        _compactness2,
    ),
    _f(
        "KRCK",
        MORPH,
        "Spherical disproportion",
        "shape",
        "Sphericity",
        "corrected",
        f"{_SPH}: SD = 1 / sphericity",
        _spherical_disproportion,
    ),
    _f("QCFX", MORPH, "Sphericity", "shape", "Sphericity"),
    _f(
        "25C7",
        MORPH,
        "Asphericity",
        "shape",
        "Sphericity",
        "corrected",
        f"{_SPH}: asphericity = 1 / sphericity - 1",
        _asphericity,
    ),
    _f("L0JK", MORPH, "Maximum 3D diameter", "shape", "Maximum3DDiameter"),
    _f("TDIC", MORPH, "Major axis length", "shape", "MajorAxisLength", "corrected", _AXIS),
    _f("P9VJ", MORPH, "Minor axis length", "shape", "MinorAxisLength", "corrected", _AXIS),
    _f("7J51", MORPH, "Least axis length", "shape", "LeastAxisLength", "corrected", _AXIS),
    _f("Q3CK", MORPH, "Elongation", "shape", "Elongation"),
    _f("N17B", MORPH, "Flatness", "shape", "Flatness"),
    # --- intensity-based statistics (on the re-segmented, non-discretised intensities) ---
    _f("Q4LE", STAT, "Mean intensity", "firstorder", "Mean"),
    _f("ECT3", STAT, "Intensity variance", "firstorder", "Variance"),
    _f("KE2A", STAT, "Intensity skewness", "firstorder", "Skewness"),
    _f(
        "IPH6",
        STAT,
        "(Excess) intensity kurtosis",
        "firstorder",
        "Kurtosis",
        "corrected",
        "IBSI reports excess kurtosis: pyradiomics Kurtosis - 3",
        _excess_kurtosis,
    ),
    _f("Y12H", STAT, "Median intensity", "firstorder", "Median"),
    _f("1GSF", STAT, "Minimum intensity", "firstorder", "Minimum"),
    _f("QG58", STAT, "10th intensity percentile", "firstorder", "10Percentile"),
    _f("8DWT", STAT, "90th intensity percentile", "firstorder", "90Percentile"),
    _f("84IY", STAT, "Maximum intensity", "firstorder", "Maximum"),
    _f("SALO", STAT, "Intensity interquartile range", "firstorder", "InterquartileRange"),
    _f("2OJQ", STAT, "Intensity range", "firstorder", "Range"),
    _f(
        "4FUA",
        STAT,
        "Intensity-based mean absolute deviation",
        "firstorder",
        "MeanAbsoluteDeviation",
    ),
    _f(
        "1128",
        STAT,
        "Intensity-based robust mean absolute deviation",
        "firstorder",
        "RobustMeanAbsoluteDeviation",
    ),
    _f(
        "N8CA",
        STAT,
        "Intensity-based energy",
        "firstorder",
        "Energy",
        note=("equal only with voxelArrayShift: 0 (pyradiomics squares intensity + shift)"),
    ),
    _f(
        "5ZWQ",
        STAT,
        "Root mean square intensity",
        "firstorder",
        "RootMeanSquared",
        note=("equal only with voxelArrayShift: 0"),
    ),
    # --- intensity histogram (discretised intensities) ---
    _f("TLU2", IH, "Discretised intensity entropy", "firstorder", "Entropy"),
    _f("BJ5W", IH, "Discretised intensity uniformity", "firstorder", "Uniformity"),
    # --- GLCM ---
    _f("GYBY", GLCM, "Joint maximum", "glcm", "MaximumProbability"),
    _f("60VM", GLCM, "Joint average", "glcm", "JointAverage"),
    _f("UR99", GLCM, "Joint variance", "glcm", "SumSquares"),
    _f("TU9B", GLCM, "Joint entropy", "glcm", "JointEntropy"),
    _f("TF7R", GLCM, "Difference average", "glcm", "DifferenceAverage"),
    _f("D3YU", GLCM, "Difference variance", "glcm", "DifferenceVariance"),
    _f("NTRS", GLCM, "Difference entropy", "glcm", "DifferenceEntropy"),
    _f("ZGXS", GLCM, "Sum average", "glcm", "SumAverage"),
    _f(
        "OEEB",
        GLCM,
        "Sum variance",
        "glcm",
        "ClusterTendency",
        note="IBSI sum variance is mathematically equal to cluster tendency",
    ),
    _f("P6QZ", GLCM, "Sum entropy", "glcm", "SumEntropy"),
    _f("8ZQL", GLCM, "Angular second moment", "glcm", "JointEnergy"),
    _f("ACUI", GLCM, "Contrast", "glcm", "Contrast"),
    _f(
        "8S9J",
        GLCM,
        "Dissimilarity",
        "glcm",
        "DifferenceAverage",
        note="IBSI dissimilarity is mathematically equal to difference average",
    ),
    _f("IB1Z", GLCM, "Inverse difference", "glcm", "Id"),
    _f("NDRX", GLCM, "Normalised inverse difference", "glcm", "Idn"),
    _f("WF0Z", GLCM, "Inverse difference moment", "glcm", "Idm"),
    _f("1QCO", GLCM, "Normalised inverse difference moment", "glcm", "Idmn"),
    _f("E8JP", GLCM, "Inverse variance", "glcm", "InverseVariance"),
    _f("NI2N", GLCM, "Correlation", "glcm", "Correlation"),
    _f("QWB0", GLCM, "Autocorrelation", "glcm", "Autocorrelation"),
    _f("DG8W", GLCM, "Cluster tendency", "glcm", "ClusterTendency"),
    _f("7NFM", GLCM, "Cluster shade", "glcm", "ClusterShade"),
    _f("AE86", GLCM, "Cluster prominence", "glcm", "ClusterProminence"),
    _f("R8DG", GLCM, "Information correlation 1", "glcm", "Imc1"),
    _f("JN9H", GLCM, "Information correlation 2", "glcm", "Imc2"),
    # --- GLRLM ---
    _f("22OV", GLRLM, "Short runs emphasis", "glrlm", "ShortRunEmphasis"),
    _f("W4KF", GLRLM, "Long runs emphasis", "glrlm", "LongRunEmphasis"),
    _f("V3SW", GLRLM, "Low grey level run emphasis", "glrlm", "LowGrayLevelRunEmphasis"),
    _f("G3QZ", GLRLM, "High grey level run emphasis", "glrlm", "HighGrayLevelRunEmphasis"),
    _f("HTZT", GLRLM, "Short run low grey level emphasis", "glrlm", "ShortRunLowGrayLevelEmphasis"),
    _f(
        "GD3A",
        GLRLM,
        "Short run high grey level emphasis",
        "glrlm",
        "ShortRunHighGrayLevelEmphasis",
    ),
    _f("IVPO", GLRLM, "Long run low grey level emphasis", "glrlm", "LongRunLowGrayLevelEmphasis"),
    _f("3KUM", GLRLM, "Long run high grey level emphasis", "glrlm", "LongRunHighGrayLevelEmphasis"),
    _f("R5YN", GLRLM, "Grey level non-uniformity", "glrlm", "GrayLevelNonUniformity"),
    _f(
        "OVBL",
        GLRLM,
        "Normalised grey level non-uniformity",
        "glrlm",
        "GrayLevelNonUniformityNormalized",
    ),
    _f("W92Y", GLRLM, "Run length non-uniformity", "glrlm", "RunLengthNonUniformity"),
    _f(
        "IC23",
        GLRLM,
        "Normalised run length non-uniformity",
        "glrlm",
        "RunLengthNonUniformityNormalized",
    ),
    _f("9ZK5", GLRLM, "Run percentage", "glrlm", "RunPercentage"),
    _f("8CE5", GLRLM, "Grey level variance", "glrlm", "GrayLevelVariance"),
    _f("SXLW", GLRLM, "Run length variance", "glrlm", "RunVariance"),
    _f("HJ9O", GLRLM, "Run entropy", "glrlm", "RunEntropy"),
    # --- GLSZM ---
    _f("5QRC", GLSZM, "Small zone emphasis", "glszm", "SmallAreaEmphasis"),
    _f("48P8", GLSZM, "Large zone emphasis", "glszm", "LargeAreaEmphasis"),
    _f("XMSY", GLSZM, "Low grey level zone emphasis", "glszm", "LowGrayLevelZoneEmphasis"),
    _f("5GN9", GLSZM, "High grey level zone emphasis", "glszm", "HighGrayLevelZoneEmphasis"),
    _f(
        "5RAI",
        GLSZM,
        "Small zone low grey level emphasis",
        "glszm",
        "SmallAreaLowGrayLevelEmphasis",
    ),
    _f(
        "HW1V",
        GLSZM,
        "Small zone high grey level emphasis",
        "glszm",
        "SmallAreaHighGrayLevelEmphasis",
    ),
    _f(
        "YH51",
        GLSZM,
        "Large zone low grey level emphasis",
        "glszm",
        "LargeAreaLowGrayLevelEmphasis",
    ),
    _f(
        "J17V",
        GLSZM,
        "Large zone high grey level emphasis",
        "glszm",
        "LargeAreaHighGrayLevelEmphasis",
    ),
    _f("JNSA", GLSZM, "Grey level non-uniformity", "glszm", "GrayLevelNonUniformity"),
    _f(
        "Y1RO",
        GLSZM,
        "Normalised grey level non-uniformity",
        "glszm",
        "GrayLevelNonUniformityNormalized",
    ),
    _f("4JP3", GLSZM, "Zone size non-uniformity", "glszm", "SizeZoneNonUniformity"),
    _f(
        "VB3A",
        GLSZM,
        "Normalised zone size non-uniformity",
        "glszm",
        "SizeZoneNonUniformityNormalized",
    ),
    _f("P30P", GLSZM, "Zone percentage", "glszm", "ZonePercentage"),
    _f("BYLV", GLSZM, "Grey level variance", "glszm", "GrayLevelVariance"),
    _f("3NSA", GLSZM, "Zone size variance", "glszm", "ZoneVariance"),
    _f("GU8N", GLSZM, "Zone size entropy", "glszm", "ZoneEntropy"),
    # --- NGTDM ---
    _f("QCDE", NGTDM, "Coarseness", "ngtdm", "Coarseness"),
    _f("65HE", NGTDM, "Contrast", "ngtdm", "Contrast"),
    _f("NQ30", NGTDM, "Busyness", "ngtdm", "Busyness"),
    _f("HDEZ", NGTDM, "Complexity", "ngtdm", "Complexity"),
    _f("1X9X", NGTDM, "Strength", "ngtdm", "Strength"),
    # --- NGLDM (pyradiomics GLDM, gldm_a = 0) ---
    _f("SODN", NGLDM, "Low dependence emphasis", "gldm", "SmallDependenceEmphasis", note=_NGLDM),
    _f("IMOQ", NGLDM, "High dependence emphasis", "gldm", "LargeDependenceEmphasis", note=_NGLDM),
    _f("TL9H", NGLDM, "Low grey level count emphasis", "gldm", "LowGrayLevelEmphasis", note=_NGLDM),
    _f(
        "OAE7",
        NGLDM,
        "High grey level count emphasis",
        "gldm",
        "HighGrayLevelEmphasis",
        note=_NGLDM,
    ),
    _f(
        "EQ3F",
        NGLDM,
        "Low dependence low grey level emphasis",
        "gldm",
        "SmallDependenceLowGrayLevelEmphasis",
        note=_NGLDM,
    ),
    _f(
        "JA6D",
        NGLDM,
        "Low dependence high grey level emphasis",
        "gldm",
        "SmallDependenceHighGrayLevelEmphasis",
        note=_NGLDM,
    ),
    _f(
        "NBZI",
        NGLDM,
        "High dependence low grey level emphasis",
        "gldm",
        "LargeDependenceLowGrayLevelEmphasis",
        note=_NGLDM,
    ),
    _f(
        "9QMG",
        NGLDM,
        "High dependence high grey level emphasis",
        "gldm",
        "LargeDependenceHighGrayLevelEmphasis",
        note=_NGLDM,
    ),
    _f("FP8K", NGLDM, "Grey level non-uniformity", "gldm", "GrayLevelNonUniformity", note=_NGLDM),
    _f(
        "5SPA",
        NGLDM,
        "Normalised grey level non-uniformity",
        "firstorder",
        "Uniformity",
        "corrected",
        "equal to the discretised intensity uniformity (pyradiomics deprecated "
        "its GLDM GrayLevelNonUniformityNormalized for that reason)",
        _identity,
        "gldm",
    ),
    _f(
        "Z87G",
        NGLDM,
        "Dependence count non-uniformity",
        "gldm",
        "DependenceNonUniformity",
        note=_NGLDM,
    ),
    _f(
        "OKJI",
        NGLDM,
        "Normalised dependence count non-uniformity",
        "gldm",
        "DependenceNonUniformityNormalized",
        note=_NGLDM,
    ),
    _f("1PFV", NGLDM, "Grey level variance", "gldm", "GrayLevelVariance", note=_NGLDM),
    _f("DNX2", NGLDM, "Dependence count variance", "gldm", "DependenceVariance", note=_NGLDM),
    _f("FCBV", NGLDM, "Dependence count entropy", "gldm", "DependenceEntropy", note=_NGLDM),
)


def pyradiomics_aggregation(
    pyrad_class: str, *, force2d: bool = False, weighting_norm: str | None = None
) -> str | None:
    """The IBSI aggregation method that a pyradiomics computation corresponds to.

    Parameters
    ----------
    pyrad_class
        pyradiomics feature class.
    force2d
        pyradiomics ``force2D`` (in-plane neighbourhoods; one matrix per direction over
        all slices: IBSI ``2.5D``).
    weighting_norm
        pyradiomics ``weightingNorm``. ``None`` averages features over the 13 (3D) or 4
        (2D) directional matrices; ``no_weighting`` (or ``infinity`` at distance 1) sums
        the matrices first (IBSI ``merged``); ``manhattan``/``euclidean`` weight them,
        which is no IBSI aggregation.

    Returns
    -------
    str or None
        e.g. ``"3D, averaged"``; ``""`` for non-texture classes; ``None`` when the
        setting has no IBSI counterpart.

    Examples
    --------
    >>> pyradiomics_aggregation("glcm")
    '3D, averaged'
    >>> pyradiomics_aggregation("glrlm", weighting_norm="no_weighting")
    '3D, merged'
    >>> pyradiomics_aggregation("glcm", force2d=True)
    '2.5D, direction-merged'
    >>> pyradiomics_aggregation("glszm", force2d=True)
    '2.5D'
    >>> pyradiomics_aggregation("firstorder")
    ''
    """
    dim = "2.5D" if force2d else "3D"
    if pyrad_class in _TEXTURE_DIRECTIONAL:
        if weighting_norm is None:
            return f"{dim}, direction-merged" if force2d else f"{dim}, averaged"
        if weighting_norm in ("no_weighting", "infinity"):
            return f"{dim}, merged"
        return None
    if pyrad_class in _TEXTURE_SINGLE:
        return dim
    return ""


def _parse_key(key: str) -> tuple[str, str, str] | None:
    """(image type, class, feature) of a pyradiomics key or a hybridrad column."""
    if key.startswith("diagnostics_"):
        return None
    if key.startswith("rad__"):
        parts = key.split("__")
        if len(parts) != 6:
            return None
        return parts[3], parts[4], parts[5]
    parts = key.rsplit("_", 2)
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def to_ibsi(
    features: Mapping[str, object],
    *,
    force2d: bool = False,
    weighting_norm: str | None = None,
    image_type: str = "original",
) -> pd.DataFrame:
    """Map pyradiomics output to IBSI features, applying the documented corrections.

    Parameters
    ----------
    features
        pyradiomics output (``original_glcm_Contrast`` ...) or hybridrad columns
        (``rad__<seq>__<region>__original__glcm__Contrast``) of one region; diagnostics
        and unmapped features are ignored, except the ROI voxel count
        (``diagnostics_Mask-interpolated_VoxelNum`` or ``diagnostics_Mask-original_VoxelNum``)
        that the PCA axis-length correction needs.
    force2d, weighting_norm
        The pyradiomics settings the features were computed with; they determine the IBSI
        aggregation reported for texture features (:func:`pyradiomics_aggregation`).
    image_type
        Which image type to map (IBSI 1 covers unfiltered images: ``original``).

    Returns
    -------
    pandas.DataFrame
        One row per IBSI feature found, columns ``ibsi_code``, ``family``, ``feature``,
        ``aggregation``, ``value`` (IBSI scale), ``pyradiomics``, ``pyradiomics_value``,
        ``status``, ``note``.

    Examples
    --------
    >>> out = to_ibsi({"original_firstorder_Kurtosis": 2.645, "original_glcm_Contrast": 5.3})
    >>> out["ibsi_code"].tolist(), out["aggregation"].tolist(), out["status"].tolist()
    (['IPH6', 'ACUI'], ['', '3D, averaged'], ['corrected', 'agree'])
    >>> round(float(out["value"].iloc[0]), 3)
    -0.355
    """
    values: dict[tuple[str, str], float] = {}
    voxel_count: float | None = None
    for key, value in features.items():
        if key.endswith(("diagnostics_Mask-interpolated_VoxelNum", "Mask-original_VoxelNum")):
            if voxel_count is None or "interpolated" in key:
                voxel_count = float(value)  # type: ignore[arg-type]
            continue
        parsed = _parse_key(key)
        if parsed is None or parsed[0] != image_type:
            continue
        try:
            values[(parsed[1], parsed[2])] = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    rows = []
    for feat in IBSI_FEATURES:
        raw = values.get((feat.pyrad_class, feat.pyrad_feature))
        if raw is None:
            continue
        value, status, note = feat.transform(raw), feat.status, feat.note
        if feat.code in _AXIS_CODES:
            if voxel_count is not None and voxel_count > 1:
                value = raw * math.sqrt(voxel_count / (voxel_count - 1))
            else:
                status = "deviates"
        rows.append(
            {
                "ibsi_code": feat.code,
                "family": feat.family,
                "feature": feat.name,
                "aggregation": pyradiomics_aggregation(
                    feat.aggregation_class, force2d=force2d, weighting_norm=weighting_norm
                ),
                "value": value,
                "pyradiomics": feat.pyrad_key,
                "pyradiomics_value": raw,
                "status": status,
                "note": note,
            }
        )
    columns = [
        "ibsi_code", "family", "feature", "aggregation", "value",
        "pyradiomics", "pyradiomics_value", "status", "note",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def ibsi_table() -> pd.DataFrame:
    """:data:`IBSI_FEATURES` as a table (code, family, name, pyradiomics key, status, note)."""
    return pd.DataFrame(
        [
            {
                "ibsi_code": f.code,
                "family": f.family,
                "feature": f.name,
                "pyradiomics": f.pyrad_key,
                "status": f.status,
                "note": f.note,
            }
            for f in IBSI_FEATURES
        ]
    )


# --- comparison rule -----------------------------------------------------------------


def printed_tolerance(reference: float, digits: int = 3) -> float:
    """Half a unit in the last printed digit of an IBSI reference value.

    The IBSI manual prints reference values to 3 significant digits (integers exactly), so
    a value matches when it rounds to the printed one.

    Examples
    --------
    >>> printed_tolerance(0.503)
    0.0005
    >>> printed_tolerance(556.0)
    0.5
    >>> printed_tolerance(1200.0)
    5.0
    """
    if reference == 0 or not math.isfinite(reference):
        return 5e-4
    exponent = math.floor(math.log10(abs(reference))) - (digits - 1)
    return float(0.5 * 10.0**exponent)


def within_reference(
    value: float, reference: float, tolerance: float | None = None, *, digits: int = 3
) -> bool:
    """The IBSI match rule: ``|value - reference| <= tolerance``.

    Parameters
    ----------
    value, reference
        Measured and reference value.
    tolerance
        The IBSI tolerance (CT phantom configurations). ``None`` or NaN (digital phantom):
        the value must round to the printed reference (:func:`printed_tolerance`).
    digits
        Significant digits printed in the manual.

    Examples
    --------
    >>> within_reference(0.50278, 0.503)
    True
    >>> within_reference(2.645, -0.355)
    False
    >>> within_reference(358100.0, 358000.0, 5000.0)
    True
    """
    if not math.isfinite(value):
        return False
    if tolerance is None or not math.isfinite(tolerance):
        tolerance = printed_tolerance(reference, digits)
    return abs(value - reference) <= tolerance * (1 + 1e-9) + 1e-12


# --- IBSI interpolation ----------------------------------------------------------------

_INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
}


def ibsi_resample(
    image: sitk.Image,
    mask: sitk.Image,
    spacing: Sequence[float | None],
    *,
    interpolator: Literal["nearest", "linear", "bspline"] = "linear",
    round_intensities: bool = True,
    mask_threshold: float = 0.5,
) -> tuple[sitk.Image, sitk.Image]:
    """IBSI-conformant interpolation of an image and its ROI mask (IBSI 1 section 2.4).

    pyradiomics resamples a cropped region with nearest-neighbour mask interpolation and
    does not round the interpolated intensities; IBSI aligns the grid centres of the whole
    image, rounds intensities to integers and interpolates the mask like the image,
    keeping voxels with a partial volume >= ``mask_threshold``. Doing it here, and giving
    pyradiomics the result with resampling disabled, reproduces the IBSI configurations.

    Parameters
    ----------
    image, mask
        Image and binary ROI mask on the same grid (axis-aligned).
    spacing
        New voxel spacing (x, y, z) in mm; ``None`` or 0 keeps an axis unchanged (e.g.
        ``(2, 2, None)`` for in-plane interpolation, IBSI configuration B).
    interpolator
        Image interpolator: ``linear`` (IBSI (bi/tri)linear) or ``bspline`` (tricubic
        spline).
    round_intensities
        Round interpolated intensities to the nearest integer (IBSI CT configurations).
    mask_threshold
        Partial-volume threshold for the linearly interpolated mask.

    Returns
    -------
    tuple of SimpleITK.Image
        Float32 image and uint8 mask on the new grid.
    """
    old_spacing = np.asarray(image.GetSpacing(), dtype=float)
    old_size = np.asarray(image.GetSize(), dtype=float)
    new_spacing = np.array(
        [o if s is None or s == 0 else float(s) for o, s in zip(old_spacing, spacing, strict=True)]
    )
    new_size = np.ceil(old_size * old_spacing / new_spacing).astype(int)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    # Grid centres aligned: shift of the first voxel centre, in index-space mm.
    shift = (old_spacing * (old_size - 1) - new_spacing * (new_size - 1)) / 2.0
    origin = np.asarray(image.GetOrigin(), dtype=float) + direction @ shift

    def _resample(img: sitk.Image, interp: int) -> sitk.Image:
        return sitk.Resample(
            sitk.Cast(img, sitk.sitkFloat64),
            [int(n) for n in new_size],
            sitk.Transform(),
            interp,
            origin.tolist(),
            new_spacing.tolist(),
            image.GetDirection(),
            0.0,
            sitk.sitkFloat64,
        )

    img = _resample(image, _INTERPOLATORS[interpolator])
    arr = sitk.GetArrayFromImage(img)
    if round_intensities:
        arr = np.round(arr)
    out_img = sitk.GetImageFromArray(arr.astype(np.float32))
    out_img.CopyInformation(img)
    pv = sitk.GetArrayFromImage(_resample(mask > 0, sitk.sitkLinear))
    out_mask = sitk.GetImageFromArray((pv >= mask_threshold).astype(np.uint8))
    out_mask.CopyInformation(img)
    return out_img, out_mask


def combined_resegment_range(
    image: sitk.Image, mask: sitk.Image, absolute: tuple[float, float], n_sigma: float = 3.0
) -> tuple[float, float]:
    """One absolute range equivalent to IBSI range re-segmentation then outlier filtering.

    pyradiomics applies either an absolute or a sigma re-segmentation; IBSI configuration
    E applies both. The outlier bounds (mean +/- ``n_sigma`` SD) are computed on all ROI
    voxels, as in the IBSI reference (its re-segmented minimum, -743 HU, is mean - 3 SD
    of the interpolated ROI); computing them after the range step gives a narrower range.

    Parameters
    ----------
    image, mask
        Image and ROI mask (after interpolation).
    absolute
        The IBSI range re-segmentation interval.
    n_sigma
        Outlier-filter width in standard deviations.

    Returns
    -------
    tuple of float
        The intersection of ``absolute`` with mean +/- ``n_sigma`` SD.
    """
    arr = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0]
    arr = arr.astype(float)
    mu, sd = float(arr.mean()), float(arr.std())
    return max(absolute[0], mu - n_sigma * sd), min(absolute[1], mu + n_sigma * sd)


def extract_ibsi(
    image: sitk.Image,
    mask: sitk.Image,
    params: Mapping[str, object],
    *,
    merged: bool = True,
    outlier_sigma: float | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Run pyradiomics IBSI-style and return :func:`to_ibsi` rows for all aggregations.

    Intensities are rounded to integers (IBSI CT convention). When ``params`` asks for
    resampling (``resampledPixelSpacing``), it is done by :func:`ibsi_resample` instead
    (``sitkBSpline`` -> tricubic spline, otherwise linear), and pyradiomics runs with
    resampling off.

    Parameters
    ----------
    image, mask
        Image and ROI mask (label given by the config's ``label``, default 1).
    params
        pyradiomics parameters (e.g. ``RadiomicsConfig.load("ibsi_ct_C").params``).
    merged
        Also compute GLCM/GLRLM with ``weightingNorm: no_weighting`` (IBSI ``merged``).
    outlier_sigma
        If set, narrow ``resegmentRange`` by a ``outlier_sigma``-SD outlier filter computed
        after the range re-segmentation (:func:`combined_resegment_range`).
    classes
        Restrict to these pyradiomics feature classes (runtime).

    Returns
    -------
    pandas.DataFrame
        :func:`to_ibsi` rows, one per IBSI code and aggregation.
    """
    import copy

    from radiomics.featureextractor import RadiomicsFeatureExtractor

    p: dict[str, object] = copy.deepcopy(dict(params))
    setting = dict(p.get("setting") or {})  # type: ignore[call-overload]
    label = int(setting.get("label", 1))
    mask = sitk.Cast(mask == label, sitk.sitkUInt8)
    arr = np.round(sitk.GetArrayFromImage(image).astype(np.float64)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(image)
    spacing = setting.pop("resampledPixelSpacing", None)
    interp = setting.pop("interpolator", None)
    if spacing:
        kind: Literal["linear", "bspline"] = "bspline" if interp == "sitkBSpline" else "linear"
        img, mask = ibsi_resample(img, mask, list(spacing), interpolator=kind)
    setting["label"] = 1
    if outlier_sigma is not None:
        lo, hi = setting["resegmentRange"]
        setting["resegmentRange"] = list(
            combined_resegment_range(img, mask, (lo, hi), outlier_sigma)
        )
    force2d = bool(setting.get("force2D", False))
    fc = dict(p.get("featureClass") or {})  # type: ignore[call-overload]
    if classes is not None:
        fc = {k: v for k, v in fc.items() if k in classes}
    p["setting"], p["featureClass"] = setting, fc
    frames = [to_ibsi(RadiomicsFeatureExtractor(p).execute(img, mask), force2d=force2d)]
    directional = {k: v for k, v in fc.items() if k in _TEXTURE_DIRECTIONAL}
    if merged and directional:
        pm = {
            **p,
            "setting": {**setting, "weightingNorm": "no_weighting"},
            "featureClass": directional,
        }
        out = RadiomicsFeatureExtractor(pm).execute(img, mask)
        frames.append(to_ibsi(out, force2d=force2d, weighting_norm="no_weighting"))
    return pd.concat(frames, ignore_index=True).drop_duplicates(["ibsi_code", "aggregation"])


# --- the IBSI 1 benchmark (digital phantom, CT phantom configurations A-E) ------------

_C_BIN_ORIGIN = (
    "fixed bin size origin: pyradiomics numbers FBS bins from the bin of the ROI minimum "
    "(floor(min/25)*25 = -950 HU after interpolation), IBSI from the re-segmentation lower "
    "bound (-1000 HU), so every grey-level index is 2 lower; features weighted by the "
    "grey-level value deviate (no pyradiomics setting moves the bin origin)"
)
_C_CODES = (
    "60VM ZGXS QWB0 V3SW G3QZ HTZT GD3A IVPO 3KUM XMSY 5GN9 5RAI HW1V YH51 J17V NQ30 "
    "TL9H OAE7 EQ3F JA6D NBZI 9QMG"
).split()

#: Configuration-specific deviations (IBSI code -> reason) found on the IBSI 1 benchmark.
CONFIG_DEVIATIONS: dict[str, dict[str, str]] = {
    "digital_phantom": {},
    "A": {},
    "B": {},
    "C": dict.fromkeys(_C_CODES, _C_BIN_ORIGIN),
    "D": {},
    "E": {},
}


@dataclass(frozen=True)
class BenchmarkConfig:
    """How one IBSI 1 data set is computed with pyradiomics.

    Parameters
    ----------
    name
        ``digital_phantom`` or ``A``-``E`` (the ``config`` column of the reference table).
    preset
        Shipped radiomics preset (``configs/radiomics/<preset>.yaml``).
    phantom
        Folder under the IBSI data directory holding ``nifti/{image,mask}/*.nii.gz``.
    outlier_sigma
        Extra outlier filter (configuration E), see :func:`extract_ibsi`.
    with_2d
        Also compute the texture classes with ``force2D`` (the ``2.5D`` aggregations of
        the digital phantom).
    """

    name: str
    preset: str
    phantom: str
    outlier_sigma: float | None = None
    with_2d: bool = False


_CT = "ibsi_1_ct_radiomics_phantom"
#: The IBSI 1 data sets pyradiomics is checked against.
BENCHMARK_CONFIGS: tuple[BenchmarkConfig, ...] = (
    BenchmarkConfig("digital_phantom", "ibsi", "ibsi_1_digital_phantom", with_2d=True),
    BenchmarkConfig("A", "ibsi_ct_A", _CT),
    BenchmarkConfig("B", "ibsi_ct_B", _CT),
    BenchmarkConfig("C", "ibsi_ct_C", _CT),
    BenchmarkConfig("D", "ibsi_ct_D", _CT),
    BenchmarkConfig("E", "ibsi_ct_E", _CT, outlier_sigma=3.0),
)


def _first_nifti(folder: Path) -> Path:
    files = sorted(folder.glob("*.nii*"))
    if not files:
        raise FileNotFoundError(f"no NIfTI file in {folder}")
    return files[0]


def run_benchmark_config(ibsi_dir: Path, config: BenchmarkConfig) -> pd.DataFrame:
    """Compute one IBSI 1 data set with pyradiomics; :func:`to_ibsi` rows.

    Parameters
    ----------
    ibsi_dir
        The IBSI reference-data folder (``<reference data>/ibsi``).
    config
        Which data set (:data:`BENCHMARK_CONFIGS`).

    Returns
    -------
    pandas.DataFrame
        One row per (IBSI code, aggregation) computed.
    """
    from hybridrad.features.radiomics import RadiomicsConfig

    root = Path(ibsi_dir) / config.phantom / "nifti"
    image = sitk.ReadImage(str(_first_nifti(root / "image")))
    mask = sitk.ReadImage(str(_first_nifti(root / "mask")))
    params = RadiomicsConfig.load(config.preset).params
    frames = [extract_ibsi(image, mask, params, outlier_sigma=config.outlier_sigma)]
    if config.with_2d:
        p2 = {**params, "setting": {**params["setting"], "force2D": True}}
        frames.append(
            extract_ibsi(
                image, mask, p2, classes=("firstorder", *_TEXTURE_DIRECTIONAL, *_TEXTURE_SINGLE)
            )
        )
    return pd.concat(frames, ignore_index=True).drop_duplicates(["ibsi_code", "aggregation"])


def load_reference(ibsi_dir: Path) -> pd.DataFrame:
    """The IBSI 1 long reference table, ``aggregation`` NaN replaced by ``""``."""
    path = Path(ibsi_dir) / "ibsi_1_reference_values" / "ibsi_1_reference_values_long.csv"
    ref = pd.read_csv(path)
    ref["aggregation"] = ref["aggregation"].fillna("")
    return ref


def compare_with_reference(
    measured: pd.DataFrame, reference: pd.DataFrame, config: str
) -> pd.DataFrame:
    """Every IBSI reference row of ``config`` with the pyradiomics value and a verdict.

    Parameters
    ----------
    measured
        :func:`run_benchmark_config` output.
    reference
        :func:`load_reference` output.
    config
        ``digital_phantom`` or ``A``-``E``.

    Returns
    -------
    pandas.DataFrame
        Reference columns plus ``measured``, ``pyradiomics``, ``match`` (bool or NA) and
        ``verdict``: ``agree``, ``corrected`` (matches after a documented correction),
        ``deviates`` (with ``reason``), ``no reference``, ``aggregation not available``
        (pyradiomics computes the feature, but not with this aggregation) or ``not
        computed`` (pyradiomics has no such feature).
    """
    ref = reference[reference["config"] == config]
    meas = measured.rename(columns={"value": "measured", "status": "map_status"})
    cols = ["ibsi_code", "aggregation", "measured", "pyradiomics", "map_status", "note"]
    out = ref.merge(meas[cols], on=["ibsi_code", "aggregation"], how="left")
    known = CONFIG_DEVIATIONS.get(config, {})
    mapped_codes = {f.code for f in IBSI_FEATURES}
    verdicts, reasons, matches = [], [], []
    for row in out.itertuples(index=False):
        reason = ""
        match: bool | None = None
        if pd.isna(row.measured):
            verdict = (
                "aggregation not available" if row.ibsi_code in mapped_codes else "not computed"
            )
        elif pd.isna(row.value):
            verdict = "no reference"
        else:
            tol = None if pd.isna(row.tolerance) or config == "digital_phantom" else row.tolerance
            match = within_reference(float(row.measured), float(row.value), tol)
            if match:
                verdict = str(row.map_status)
                reason = str(row.note) if verdict == "corrected" else ""
            else:
                verdict = "deviates"
                reason = known.get(row.ibsi_code) or (
                    str(row.note) if row.map_status == "deviates" else "unexplained"
                )
        verdicts.append(verdict)
        reasons.append(reason)
        matches.append(match)
    out["match"] = matches
    out["verdict"] = verdicts
    out["reason"] = reasons
    return out.drop(columns=["map_status", "note"])
