"""pyradiomics features in IBSI terms: codes, aggregation, corrections, IBSI interpolation.

The Image Biomarker Standardisation Initiative (IBSI 1; Zwanenburg et al., Radiology
2020;295:328, reference manual arXiv 1612.07003) names every radiomics feature with a
4-character code (``GYBY`` = GLCM joint maximum) and fixes how texture matrices are
aggregated over directions and slices. pyradiomics computes most IBSI features but names
them differently, reports a few on a different scale (kurtosis) and has no setting for
some IBSI image-processing steps (rounding after interpolation, IBSI grid alignment,
partial-volume mask interpolation, fixed-bin-size origin).

This module holds

* :func:`load_ibsi_features` (and :data:`IBSI_FEATURES`): one :class:`IBSIFeature` per
  IBSI feature that pyradiomics computes (directly, or through a documented
  correction/derivation), with its status ``agree`` / ``corrected`` / ``deviates`` and
  the reason for a deviation. The table is the data file ``features/data/ibsi_features.csv``
  shipped in the package, with its sources in its header;
* :func:`pyradiomics_aggregation`: the IBSI aggregation method that a pyradiomics
  setting corresponds to (GLCM/GLRLM default = ``3D, averaged``; ``weightingNorm:
  no_weighting`` = ``3D, merged``; ``force2D`` = the ``2.5D`` variants);
* :func:`to_ibsi`: pyradiomics output -> table keyed by IBSI code, corrections applied;
* :func:`ibsi_resample`: IBSI-conformant interpolation (grid-centre alignment,
  rounding of intensities, partial-volume mask threshold) done with SimpleITK before
  pyradiomics, which cannot do it itself; :func:`extract_ibsi` runs pyradiomics that way.

The IBSI 1 benchmark (digital phantom and CT phantom configurations A-E against the
IBSI reference values) lives in ``benchmarks/ibsi_table.py``, which writes
``docs/ibsi_conformance.md``; ``tests/test_ibsi_conformance.py`` runs it as tests.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast, get_args

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.errors import HybridradError
from hybridrad.preprocess.resample import resample_onto, spacing_grid

__all__ = [
    "IBSI_FEATURES",
    "TRANSFORMS",
    "IBSIFeature",
    "Status",
    "combined_resegment_range",
    "extract_ibsi",
    "ibsi_resample",
    "ibsi_table",
    "load_ibsi_features",
    "pyradiomics_aggregation",
    "to_ibsi",
]

Status = Literal["agree", "corrected", "deviates"]

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


def _pca_axis(x: float) -> float:
    """PCA axis lengths: identity here; :func:`to_ibsi` multiplies by sqrt(N/(N-1))."""
    return x


#: The ``transform`` column of the data file: name -> pyradiomics value to IBSI value.
TRANSFORMS: dict[str, Callable[[float], float]] = {
    "identity": _identity,
    "excess_kurtosis": _excess_kurtosis,
    "compactness1": _compactness1,
    "compactness2": _compactness2,
    "spherical_disproportion": _spherical_disproportion,
    "asphericity": _asphericity,
    "pca_axis": _pca_axis,
}


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
        Maps the pyradiomics value to the IBSI value (identity unless ``corrected``; one
        of :data:`TRANSFORMS`, named in the data file).
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


_DATA_FILE = "data/ibsi_features.csv"
_COLUMNS = (
    "ibsi_code", "family", "feature", "pyradiomics_class", "pyradiomics_feature",
    "status", "transform", "aggregation_class", "note",
)  # fmt: skip


@functools.cache
def load_ibsi_features() -> tuple[IBSIFeature, ...]:
    """The IBSI 1 features that pyradiomics computes, read from the shipped data file.

    The file is ``hybridrad/features/data/ibsi_features.csv`` (sources in its header;
    lines starting with ``#`` are comments), one row per IBSI feature with the columns
    ``ibsi_code``, ``family``, ``feature`` (IBSI name), ``pyradiomics_class``,
    ``pyradiomics_feature``, ``status``, ``transform`` (a key of :data:`TRANSFORMS`),
    ``aggregation_class`` and ``note``. Features absent from it are not computed by
    pyradiomics (local intensity, most intensity-histogram features, IVH, GLDZM, the
    morphological density / Moran / Geary / centre-of-mass features ...). Read once and
    cached.

    Returns
    -------
    tuple of IBSIFeature
        In the order of the file (IBSI families in manual order).

    Raises
    ------
    HybridradError
        The file is missing from the installation or malformed (the message names the
        line and the column).

    Examples
    --------
    >>> feats = {f.code: f for f in load_ibsi_features()}
    >>> feats["GYBY"].name, feats["GYBY"].pyrad_key
    ('Joint maximum', 'glcm_MaximumProbability')
    >>> feats["IPH6"].status, feats["IPH6"].transform(2.645)
    ('corrected', -0.355)
    """
    where = f"hybridrad/features/{_DATA_FILE}"
    try:
        text = resources.files("hybridrad.features").joinpath(_DATA_FILE).read_text("utf-8")
    except OSError as exc:
        raise HybridradError(
            f"{where} is missing from the hybridrad installation ({exc}); reinstall hybridrad "
            "(a wheel must include the package data listed in pyproject.toml)"
        ) from exc
    return _parse_features(text, where)


def _parse_features(text: str, where: str) -> tuple[IBSIFeature, ...]:
    """The rows of the IBSI feature table ``text`` (read from ``where``), checked."""
    numbered = [
        (i, line)
        for i, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.startswith("#")
    ]
    rows = list(csv.reader([line for _, line in numbered]))
    if not rows or tuple(rows[0]) != _COLUMNS:
        found = rows[0] if rows else "nothing"
        raise HybridradError(
            f"{where}: the header is {found}, expected the columns {list(_COLUMNS)}; "
            "restore the file from the hybridrad sources"
        )
    statuses = get_args(Status)
    out: list[IBSIFeature] = []
    seen: set[str] = set()
    for (lineno, _), row in zip(numbered[1:], rows[1:], strict=True):
        at = f"{where} line {lineno}"
        if len(row) != len(_COLUMNS):
            raise HybridradError(
                f"{at}: {len(row)} fields, expected {len(_COLUMNS)} ({', '.join(_COLUMNS)}); "
                "quote fields that hold commas"
            )
        rec = dict(zip(_COLUMNS, row, strict=True))
        code = rec["ibsi_code"]
        if code in seen:
            raise HybridradError(f"{at}: ibsi_code {code} appears twice; keep one row per code")
        if rec["status"] not in statuses:
            raise HybridradError(
                f"{at} ({code}): status {rec['status']!r} is not one of {list(statuses)}"
            )
        if rec["transform"] not in TRANSFORMS:
            raise HybridradError(
                f"{at} ({code}): transform {rec['transform']!r} is not one of "
                f"{sorted(TRANSFORMS)} (hybridrad.features.ibsi.TRANSFORMS)"
            )
        seen.add(code)
        out.append(
            IBSIFeature(
                code=code,
                family=rec["family"],
                name=rec["feature"],
                pyrad_class=rec["pyradiomics_class"],
                pyrad_feature=rec["pyradiomics_feature"],
                status=cast(Status, rec["status"]),
                note=rec["note"],
                transform=TRANSFORMS[rec["transform"]],
                aggregation_class=rec["aggregation_class"] or rec["pyradiomics_class"],
            )
        )
    return tuple(out)


#: :func:`load_ibsi_features`, read at import: every IBSI 1 feature that pyradiomics
#: 3.0.x computes, with its mapping and status.
IBSI_FEATURES: tuple[IBSIFeature, ...] = load_ibsi_features()


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
    for feat in load_ibsi_features():
        raw = values.get((feat.pyrad_class, feat.pyrad_feature))
        if raw is None:
            continue
        value, status, note = feat.transform(raw), feat.status, feat.note
        if feat.transform is _pca_axis:
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
    """:func:`load_ibsi_features` as a table (code, family, name, pyradiomics key, status, note)."""
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
            for f in load_ibsi_features()
        ]
    )


# --- IBSI interpolation ----------------------------------------------------------------


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
    # Grid centres aligned, size rounded up (IBSI 1, section 2.4); interpolation in float64.
    # The explicit identity transform interpolates even onto an unchanged grid (no
    # shortcut), so the numbers stay those of the conformance runs.
    grid = spacing_grid(image, spacing, align="centre", rounding="ceil")
    img = resample_onto(
        sitk.Cast(image, sitk.sitkFloat64),
        grid,
        interpolator=interpolator,
        transform=sitk.Transform(),
        pixel_type=sitk.sitkFloat64,
    )
    arr = sitk.GetArrayFromImage(img)
    if round_intensities:
        arr = np.round(arr)
    out_img = sitk.GetImageFromArray(arr.astype(np.float32))
    out_img.CopyInformation(img)
    # the mask's partial volume (linear), kept where >= mask_threshold
    out_mask = resample_onto(
        mask > 0,
        grid,
        is_mask=True,
        transform=sitk.Transform(),
        mask_method="threshold",
        mask_threshold=mask_threshold,
    )
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
    engine: str = "pyradiomics",
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
    engine
        ``pyradiomics`` or ``native`` (:mod:`hybridrad.features.engine`, the same features).

    Returns
    -------
    pandas.DataFrame
        :func:`to_ibsi` rows, one per IBSI code and aggregation.
    """
    import copy

    from hybridrad.features.radiomics import RadiomicsConfig

    def execute(pp: Mapping[str, object]) -> Mapping[str, object]:
        cfg = RadiomicsConfig(dict(pp)).with_engine(engine)
        result: Mapping[str, object] = cfg.extractor().execute(img, mask)
        return result

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
    frames = [to_ibsi(execute(p), force2d=force2d)]
    directional = {k: v for k, v in fc.items() if k in _TEXTURE_DIRECTIONAL}
    if merged and directional:
        pm = {
            **p,
            "setting": {**setting, "weightingNorm": "no_weighting"},
            "featureClass": directional,
        }
        out = execute(pm)
        frames.append(to_ibsi(out, force2d=force2d, weighting_norm="no_weighting"))
    return pd.concat(frames, ignore_index=True).drop_duplicates(["ibsi_code", "aggregation"])
