"""The image side of the native engine: pyradiomics' pre-processing up to the binned ROI.

This module reproduces what pyradiomics 3.0.1's ``featureextractor.execute`` does before
any feature class runs (``loadImage``, ``checkMask``, ``resegmentMask``, the image-type
generators of ``imageoperations`` and each class's ``_applyBinning``), and returns, per
image type, the ROI voxel values and the binned grey levels that pyradiomics' feature
classes see, in :class:`~hybridrad.features.engine.roi.Roi` voxel order.

Values are produced by the same SimpleITK / PyWavelets / numpy calls that define them
in pyradiomics (``ResampleImageFilter``, ``LaplacianRecursiveGaussianImageFilter``,
``GradientMagnitudeImageFilter``, ``pywt.swtn``, the same numpy expressions for the
square/log/exp filters and for ``getBinEdges``), in the same pixel types, so bin edges
are computed from the same numbers by the same expressions. The CPU saved comes from
work pyradiomics repeats or does on more voxels than the result depends on:

- **mask work once per grid**: ``getMask``, the ROI bounding box, the nearest-neighbour
  resampling of the mask, ``checkMask`` and the :class:`Roi` (with its neighbour
  tables) are computed once for all sequences on one voxel grid (and shared by all
  image types); no image hashing (``additionalInfo``);
- **normalisation of the needed window only**: ``sitk.Normalize`` is
  ``(x + (-mean)) * (1 / sigma)`` in double with the mean and sigma of
  ``sitk.StatisticsImageFilter``; the statistics are taken over the whole image, the
  arithmetic (bit-identical, checked in the tests) only over the window resampling reads;
- **B-spline resampling of a window**: ``ResampleImageFilter`` with a B-spline
  interpolator prefilters the *whole* input image into spline coefficients
  (``BSplineDecompositionImageFilter``: per axis, a gain and a causal and an anticausal
  first-order recursion along every line) and evaluates the spline from them. The
  output box only depends on coefficients within a few voxels of its footprint, and
  the influence of a window border on a coefficient ``d`` voxels away decays as
  ``|z|**d`` (``z`` the spline's pole, -0.268 for cubic splines), so only a window of
  the input (the footprint plus a margin after which that influence is below 1e-17 of
  the signal: 34 voxels for cubic splines) is prefiltered. The prefilter is done here
  in numpy with ITK's exact arithmetic (same operations in the same order, each line
  bit-identical to ITK's), each pass with the filtered axis leading (every line at
  once) and trimmed to what later passes read: the x pass over the whole window, the
  y pass only over the footprint's x range, the z pass over its x and y range. ITK's
  ``BSplineResampleImageFunction`` (``sitkBSplineResamplerOrderN``: the spline without
  its prefilter) then evaluates those coefficients from an image with the input's
  origin, spacing and direction, so each output voxel goes through the same
  operations as in pyradiomics: the resampled image is bit-identical to pyradiomics'
  wherever the window's coefficients are (every voxel of the BraTS / LGG cases and
  synthetic images checked with cubic splines; ~1e-16 relative otherwise). Where the
  image has an integer pixel type, ITK truncates the interpolated value toward zero, so a value within
  rounding error of a non-zero integer could truncate differently: the spline is
  evaluated in double, and if any output voxel is that close to an integer the image
  is resampled whole, exactly as pyradiomics does; otherwise the truncation is applied
  here (clamp, then truncate, as ITK's cast). Linear interpolation only reads 2 voxels
  per axis, so it is windowed with a 3-voxel margin (values agree to rounding error:
  the window's origin changes the floating-point path of the physical-to-index
  transform); other interpolators get the whole image.

Anything not implemented (LBP image types, vector masks / ``label_channel``, voxel-based
extraction, 2D images) raises :class:`~hybridrad.errors.EngineUnsupportedError`; bad masks
raise :class:`~hybridrad.errors.EmptyROIError`, :class:`~hybridrad.errors.ROITooSmallError`
or :class:`~hybridrad.errors.MaskGeometryError` with pyradiomics' ``checkMask`` condition.
hybridrad's own ``normalizeRegion`` setting is handled by the caller and ignored here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import (
    EmptyROIError,
    EngineUnsupportedError,
    MaskGeometryError,
    NonFiniteImageError,
    ROITooSmallError,
)
from hybridrad.features.engine.roi import Roi

__all__ = [
    "IMAGE_TYPES",
    "PYRADIOMICS_DEFAULTS",
    "Prepared",
    "effective_settings",
    "prepare",
    "prepare_many",
]

#: pyradiomics 3.0.1 ``RadiomicsFeatureExtractor._getDefaultSettings()`` (extraction-level).
PYRADIOMICS_DEFAULTS: dict[str, Any] = {
    "minimumROIDimensions": 2,
    "minimumROISize": None,
    "normalize": False,
    "normalizeScale": 1,
    "removeOutliers": None,
    "resampledPixelSpacing": None,
    "interpolator": "sitkBSpline",
    "preCrop": False,
    "padDistance": 5,
    "distances": [1],
    "force2D": False,
    "force2Ddimension": 0,
    "resegmentRange": None,
    "label": 1,
    "additionalInfo": True,
}

#: Image types this module implements (pyradiomics ``imageType`` keys).
IMAGE_TYPES = (
    "Original",
    "LoG",
    "Wavelet",
    "Square",
    "SquareRoot",
    "Logarithm",
    "Exponential",
    "Gradient",
)

_UNSUPPORTED_IMAGE_TYPES = ("LBP2D", "LBP3D")

#: Poles of ITK's B-spline prefilter (``BSplineDecompositionImageFilter::SetPoles``), per order.
_BSPLINE_POLES: dict[int, tuple[float, ...]] = {
    2: (math.sqrt(8.0) - 3.0,),
    3: (math.sqrt(3.0) - 2.0,),
    4: (
        math.sqrt(664.0 - math.sqrt(438976.0)) + math.sqrt(304.0) - 19.0,
        math.sqrt(664.0 + math.sqrt(438976.0)) - math.sqrt(304.0) - 19.0,
    ),
    5: (
        math.sqrt(135.0 / 2.0 - math.sqrt(17745.0 / 4.0)) + math.sqrt(105.0 / 4.0) - 13.0 / 2.0,
        math.sqrt(135.0 / 2.0 + math.sqrt(17745.0 / 4.0)) - math.sqrt(105.0 / 4.0) - 13.0 / 2.0,
    ),
}

#: ITK's ``BSplineDecompositionImageFilter`` tolerance (sets the causal initialisation horizon).
_BSPLINE_TOLERANCE = 1e-10

#: Interpolators that evaluate a B-spline from given coefficients (no prefilter), per order.
_BSPLINE_RESAMPLER = {
    2: int(sitk.sitkBSplineResamplerOrder2),
    3: int(sitk.sitkBSplineResamplerOrder3),
    4: int(sitk.sitkBSplineResamplerOrder4),
    5: int(sitk.sitkBSplineResamplerOrder5),
}


_BSPLINE_INTERPOLATOR = {
    2: int(sitk.sitkBSpline2),
    3: int(sitk.sitkBSpline3),
    4: int(sitk.sitkBSpline4),
    5: int(sitk.sitkBSpline5),
}

_BSPLINE_ORDER = {
    int(sitk.sitkBSpline1): 1,
    int(sitk.sitkBSpline2): 2,
    int(sitk.sitkBSpline3): 3,
    int(sitk.sitkBSpline4): 4,
    int(sitk.sitkBSpline5): 5,
}


@dataclass
class Prepared:
    """One image's pre-processed ROI for every image type, as pyradiomics' classes see it.

    Attributes
    ----------
    shape_mask
        Boolean ``(z, y, x)`` array: the mask exactly as ``RadiomicsShape`` receives it
        (``computeShape``'s crop to the bounding box; not re-segmented unless
        ``resegmentShape``).
    shape_spacing
        Voxel spacing ``(x, y, z)`` of that mask, mm.
    roi
        The texture ROI: the (re-segmented) mask cropped to its bounding box. Shared
        (same object) by the sequences of one grid unless re-segmentation differs.
    names
        pyradiomics image type names (``original``, ``log-sigma-2-0-mm-3D``,
        ``wavelet-LLH``, ``square`` ...), in pyradiomics' order.
    settings
        Effective settings of each image type (global settings updated by that image
        type's custom settings), as pyradiomics passes them to the feature classes.
    values
        ``(B, N)`` float64 ROI voxel values per image type, in ``roi.coords`` order.
    levels
        ``(B, N)`` int64 binned grey levels (pyradiomics ``binImage``).
    diagnostics
        Cheap diagnostics (pyradiomics ``generalinfo`` names without the
        ``diagnostics_`` prefix): spacing/size of the original and interpolated image
        and mask, voxel counts, bounding boxes.
    """

    shape_mask: np.ndarray
    shape_spacing: tuple[float, float, float]
    roi: Roi
    names: list[str]
    settings: list[dict[str, Any]]
    values: np.ndarray
    levels: np.ndarray
    diagnostics: dict[str, Any] = field(default_factory=dict)


# --- settings ------------------------------------------------------------------------------


def effective_settings(settings: Mapping[str, Any], *, label: int | None = None) -> dict[str, Any]:
    """pyradiomics' extraction settings: its defaults updated by ``settings`` (and ``label``).

    Raises :class:`EngineUnsupportedError` for voxel-based extraction and ``label_channel``.
    """
    out = dict(PYRADIOMICS_DEFAULTS)
    out.update({k: v for k, v in settings.items() if k != "normalizeRegion"})
    if label is not None:
        out["label"] = int(label)
    if out.get("voxelBased"):
        raise EngineUnsupportedError(
            "voxelBased extraction is not implemented natively; use engine: pyradiomics"
        )
    if out.get("label_channel") not in (None, 0):
        raise EngineUnsupportedError(
            "label_channel (vector-valued masks) is not implemented natively; use engine: pyradiomics"
        )
    return out


def _check_image_types(image_types: Mapping[str, Mapping[str, Any] | None]) -> None:
    for name in image_types:
        if name in _UNSUPPORTED_IMAGE_TYPES:
            raise EngineUnsupportedError(
                f"image type {name} is not implemented natively; use engine: pyradiomics"
            )
        if name not in IMAGE_TYPES:
            raise EngineUnsupportedError(
                f"unknown image type {name!r} (native engine knows {', '.join(IMAGE_TYPES)}); use engine: pyradiomics"
            )


@contextlib.contextmanager
def _tolerance(value: float | None) -> Iterator[None]:
    """SimpleITK's global geometry tolerances set as pyradiomics' ``_setTolerance`` does,
    restored afterwards."""
    if value is None:
        yield
        return
    coord = sitk.ProcessObject.GetGlobalDefaultCoordinateTolerance()
    direc = sitk.ProcessObject.GetGlobalDefaultDirectionTolerance()
    sitk.ProcessObject.SetGlobalDefaultCoordinateTolerance(float(value))
    sitk.ProcessObject.SetGlobalDefaultDirectionTolerance(float(value))
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultCoordinateTolerance(coord)
        sitk.ProcessObject.SetGlobalDefaultDirectionTolerance(direc)


# --- small SimpleITK helpers -------------------------------------------------------------


def _geometry(image: sitk.Image) -> tuple[Any, ...]:
    return (image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())


def _from_array(
    arr: np.ndarray, ref: sitk.Image, index: tuple[int, ...] | None = None
) -> sitk.Image:
    """``arr`` as an image on ``ref``'s grid (offset by ``index`` voxels, as a crop)."""
    out = sitk.GetImageFromArray(arr)
    out.SetSpacing(ref.GetSpacing())
    out.SetDirection(ref.GetDirection())
    out.SetOrigin(
        ref.GetOrigin()
        if index is None
        else ref.TransformIndexToPhysicalPoint([int(i) for i in index])
    )
    return out


def _crop(image: sitk.Image, lower: np.ndarray, size: np.ndarray) -> sitk.Image:
    """``CropImageFilter`` keeping ``size`` voxels from ``lower`` (x, y, z)."""
    upper = np.array(image.GetSize()) - lower - size
    if not lower.any() and not upper.any():
        return image
    cif = sitk.CropImageFilter()
    cif.SetLowerBoundaryCropSize([int(v) for v in lower])
    cif.SetUpperBoundaryCropSize([int(v) for v in upper])
    return cif.Execute(image)


def _bbox(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower bound and size ``(x, y, z)`` of the True voxels of a ``(z, y, x)`` array."""
    lo = []
    hi = []
    for ax in range(arr.ndim):
        other = tuple(a for a in range(arr.ndim) if a != ax)
        idx = np.flatnonzero(arr.any(axis=other))
        lo.append(idx[0])
        hi.append(idx[-1])
    lower = np.array(lo[::-1], dtype=np.int64)
    return lower, np.array(hi[::-1], dtype=np.int64) - lower + 1


def _verify_geometry(image: sitk.Image, mask: sitk.Image) -> str | None:
    """What pyradiomics' ``LabelStatisticsImageFilter(image, mask)`` would fail on, or None.

    The physical-space check is ITK's own (1-voxel stand-ins with the same origin,
    spacing and direction go through ``LabelStatisticsImageFilter``), so the global
    tolerances apply exactly as in pyradiomics.
    """
    if image.GetDimension() != mask.GetDimension():
        return "Image/Mask dimension mismatch"
    probes = []
    for im in (image, mask):
        p = sitk.Image([1] * im.GetDimension(), sitk.sitkUInt32)
        p.SetOrigin(im.GetOrigin())
        p.SetSpacing(im.GetSpacing())
        p.SetDirection(im.GetDirection())
        probes.append(p)
    try:
        sitk.LabelStatisticsImageFilter().Execute(probes[0], probes[1])
    except RuntimeError as e:
        if "Inputs do not occupy the same physical space" in str(e):
            return "Image/Mask geometry mismatch (increase geometryTolerance or enable correctMask)"
        raise
    if image.GetSize() != mask.GetSize():
        return (
            f"Image/Mask size mismatch ({image.GetSize()} vs {mask.GetSize()}; enable correctMask)"
        )
    return None


def _check_roi(
    image: sitk.Image, mask: sitk.Image, bbox_lower: np.ndarray, bbox_size: np.ndarray
) -> None:
    """pyradiomics ``_checkROI``: the ROI's bounding box must lie inside the image."""
    lo = mask.TransformContinuousIndexToPhysicalPoint([float(v) for v in bbox_lower - 0.5])
    hi = mask.TransformContinuousIndexToPhysicalPoint(
        [float(v) for v in bbox_lower + bbox_size - 0.5]
    )
    bounds = np.array(
        [
            image.TransformPhysicalPointToContinuousIndex(lo),
            image.TransformPhysicalPointToContinuousIndex(hi),
        ]
    )
    tol = 1e-3
    if np.any(bounds.min(axis=0) < -0.5 - tol) or np.any(
        bounds.max(axis=0) > np.array(image.GetSize()) - 0.5 + tol
    ):
        raise MaskGeometryError(
            f"bounding box of the ROI is larger than the image space: ROI bounds (x, y, z image "
            f"index) {bounds.tolist()}, image size {image.GetSize()}"
        )


def _interpolator(value: Any) -> int:
    """pyradiomics' interpolator lookup (unknown names fall back to B-spline)."""
    if isinstance(value, str):
        found = getattr(sitk, value, None)
        return int(found) if isinstance(found, int) else int(sitk.sitkBSpline)
    return int(value)


def _window_margin(interpolator: int, normalized: bool) -> int | None:
    """Voxels of input beyond the output footprint that resampling a window needs for
    parity, or None where the whole image is resampled.

    B-spline interpolation prefilters the whole input, so a window saves most of the work;
    linear interpolation reads 2 voxels per axis and costs the same either way, so it is
    windowed only to save normalising the whole image (float64 output, where the
    window's ~1e-16 rounding differences cannot reach a float32 or integer cast).
    """
    if interpolator == sitk.sitkLinear:
        return 3 if normalized else None
    order = _BSPLINE_ORDER.get(interpolator)
    if order is None:
        return None
    pole = max((abs(z) for z in _BSPLINE_POLES.get(order, ())), default=0.0)
    decay = 0 if pole == 0.0 else math.ceil(math.log(1e-17) / math.log(pole))
    return decay + order + 1


# --- per-grid mask work -------------------------------------------------------------------


@dataclass
class _Grid:
    """Mask work shared by every image on one voxel grid (pyradiomics ``loadImage`` +
    ``checkMask`` before re-segmentation)."""

    ref: sitk.Image  # image grid after loadImage (resampled / cropped), no pixel data needed
    mask: sitk.Image  # UInt32 mask on that grid
    mask_arr: np.ndarray  # (z, y, x) bool: mask == label
    # how to produce each image on that grid
    mode: str  # "resample", "crop" or "full"
    crop_lower: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))
    crop_size: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))
    rif_args: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    bspline: _BSplineWindow | None = None  # B-spline resampling's windows, set on first use


@dataclass
class _BSplineWindow:
    """Where B-spline resampling onto a grid reads its input (all ``(x, y, z)``)."""

    lower: np.ndarray  # window prefiltered: the output footprint plus the decay margin
    size: np.ndarray
    foot_lower: np.ndarray  # coefficients read: the output footprint plus kernel support
    foot_size: np.ndarray


def _get_mask(mask: sitk.Image, label: int) -> tuple[sitk.Image, np.ndarray]:
    """pyradiomics ``getMask``: a UInt32 label map that holds ``label``."""
    if mask.GetNumberOfComponentsPerPixel() != 1:
        raise EngineUnsupportedError(
            "vector-valued masks (label_channel) are not implemented natively; use engine: pyradiomics"
        )
    if mask.GetDimension() != 3:
        raise EngineUnsupportedError(
            f"{mask.GetDimension()}D masks are not implemented natively (3D only); use engine: pyradiomics"
        )
    m = sitk.Cast(mask, sitk.sitkUInt32)
    arr = sitk.GetArrayViewFromImage(m)
    first = arr.flat[0]
    if not (arr != first).any():
        raise EmptyROIError("no labels found in this mask (i.e. nothing is segmented)")
    sel = arr == label
    if not sel.any():
        present = np.unique(arr)
        raise EmptyROIError(
            f"label {label} not present in the mask; choose from {present[present != 0].tolist()}"
        )
    return m, sel


def _check_mask(
    image: sitk.Image, mask: sitk.Image, sel: np.ndarray, s: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, sitk.Image | None, np.ndarray]:
    """pyradiomics ``checkMask``: bounding box (lower, size; x, y, z) of the label, the
    corrected mask (or None) and the label array on the image grid."""
    label = int(s["label"])
    corrected: sitk.Image | None = None
    problem = _verify_geometry(image, mask)
    if problem is not None:
        if not s.get("correctMask", False):
            raise MaskGeometryError(
                f"{problem}; see pyradiomics' correctMask and geometryTolerance settings"
            )
        lower, size = _bbox(sel)
        _check_roi(image, mask, lower, size)
        rif = sitk.ResampleImageFilter()
        rif.SetReferenceImage(image)
        rif.SetInterpolator(sitk.sitkNearestNeighbor)
        corrected = rif.Execute(mask)
        sel = sitk.GetArrayViewFromImage(corrected) == label
        if not sel.any():
            raise EmptyROIError(
                f"label {label} not present in the mask after correcting it onto the image grid"
            )
    lower, size = _bbox(sel)
    _check_size(size, int(np.count_nonzero(sel)), s)
    return lower, size, corrected, sel


def _check_size(size: np.ndarray, count: int, s: Mapping[str, Any]) -> None:
    ndims = int(np.sum(size > 1))
    min_dims = s.get("minimumROIDimensions", 2)
    min_size = s.get("minimumROISize")
    if ndims == 0:
        raise ROITooSmallError(
            "mask only contains 1 segmented voxel; cannot extract features for a single voxel"
        )
    if ndims < min_dims:
        raise ROITooSmallError(
            f"mask has too few dimensions (number of dimensions {ndims}, minimum required {min_dims}, "
            "minimumROIDimensions)"
        )
    if min_size is not None and count <= min_size:
        raise ROITooSmallError(
            f"size of the ROI is too small (minimumROISize: {min_size}, ROI size: {count})"
        )


def _crop_bounds(
    size_xyz: np.ndarray, lower: np.ndarray, bsize: np.ndarray, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """``cropToTumorMask`` with ``padDistance``: lower corner and size kept (x, y, z)."""
    upper_bb = lower + bsize - 1
    lo = np.maximum(lower - pad, 0)
    up_crop = np.maximum(size_xyz - upper_bb - pad - 1, 0)
    return lo, size_xyz - lo - up_crop


def _crop_grid(
    mask: sitk.Image, lower: np.ndarray, bsize: np.ndarray, pad: int, label: int
) -> _Grid:
    """The grid of ``cropToTumorMask(..., padDistance=pad)`` around a bounding box."""
    lo, size = _crop_bounds(np.array(mask.GetSize()), lower, bsize, pad)
    cmask = _crop(mask, lo, size)
    return _Grid(
        ref=cmask,
        mask=cmask,
        mask_arr=sitk.GetArrayViewFromImage(cmask) == label,
        mode="crop",
        crop_lower=lo,
        crop_size=size,
    )


def _make_grid(image: sitk.Image, mask: sitk.Image, sel: np.ndarray, s: Mapping[str, Any]) -> _Grid:
    """``loadImage``'s mask side (resampling / pre-cropping) for images on ``image``'s grid."""
    label = int(s["label"])
    interpolator = s.get("interpolator")
    spacing_set = s.get("resampledPixelSpacing")
    diag: dict[str, Any] = {
        "Image-original_Dimensionality": f"{image.GetDimension()}D",
        "Image-original_Spacing": image.GetSpacing(),
        "Image-original_Size": image.GetSize(),
        "Mask-original_Spacing": mask.GetSpacing(),
        "Mask-original_Size": mask.GetSize(),
        "Mask-original_VoxelNum": int(np.count_nonzero(sel)),
    }
    lower, bsize = _bbox(sel)
    diag["Mask-original_BoundingBox"] = (*lower.tolist(), *bsize.tolist())
    if interpolator is not None and spacing_set is not None:
        mask_spacing = np.array(mask.GetSpacing())
        image_spacing = np.array(image.GetSpacing())
        nd = len(mask_spacing)
        if len(spacing_set) != nd:
            raise EngineUnsupportedError(
                f"resampledPixelSpacing has {len(spacing_set)} values for a {nd}D mask"
            )
        rs = np.array(spacing_set)
        rs = np.where(rs == 0, mask_spacing, rs)
        _check_roi(image, mask, lower, bsize)
        rs = np.where(bsize != 1, rs, mask_spacing)
        pad = int(s.get("padDistance", 5))
        if np.allclose(image_spacing, rs):
            if _geometry(image) != _geometry(mask):
                rif = sitk.ResampleImageFilter()
                rif.SetReferenceImage(image)
                rif.SetInterpolator(sitk.sitkNearestNeighbor)
                mask = rif.Execute(mask)
                sel = sitk.GetArrayViewFromImage(mask) == label
                lower, bsize = _bbox(sel)
            grid = _crop_grid(mask, lower, bsize, pad, label)
        else:
            mask_size = np.array(mask.GetSize())
            ratio = mask_spacing / rs
            new_lower = np.floor((lower - 0.5) * ratio - pad)
            new_upper = np.ceil((lower + bsize - 0.5) * ratio + pad)
            max_upper = np.ceil(mask_size * ratio) - 1
            new_lower = np.where(new_lower < 0, 0, new_lower)
            new_upper = np.where(new_upper > max_upper, max_upper, new_upper)
            new_size = np.array(new_upper - new_lower + 1, dtype="int").tolist()
            origin_index = np.array(0.5 * (rs - mask_spacing) / mask_spacing) + new_lower / ratio
            new_origin = mask.TransformContinuousIndexToPhysicalPoint(
                [float(v) for v in origin_index]
            )
            rif_args = {
                "spacing": [float(v) for v in rs],
                "direction": mask.GetDirection(),
                "size": [int(v) for v in new_size],
                "origin": new_origin,
                "interpolator": _interpolator(interpolator),
            }
            rmask = _resample(mask, rif_args, mask.GetPixelID(), sitk.sitkNearestNeighbor)
            grid = _Grid(
                ref=rmask,
                mask=rmask,
                mask_arr=sitk.GetArrayViewFromImage(rmask) == label,
                mode="resample",
                rif_args=rif_args,
            )
        diag["Image-interpolated_Spacing"] = grid.mask.GetSpacing()
        diag["Image-interpolated_Size"] = grid.mask.GetSize()
        diag["Mask-interpolated_Spacing"] = grid.mask.GetSpacing()
        diag["Mask-interpolated_Size"] = grid.mask.GetSize()
    elif s.get("preCrop", False):
        lower, bsize, corrected, sel = _check_mask(image, mask, sel, s)
        if corrected is not None:
            mask = corrected
        grid = _crop_grid(mask, lower, bsize, int(s.get("padDistance", 0)), label)
    else:
        grid = _Grid(ref=image, mask=mask, mask_arr=sel, mode="full")
    grid.diagnostics = diag
    return grid


def _resample(
    image: sitk.Image, args: Mapping[str, Any], pixel_type: int, interpolator: int
) -> sitk.Image:
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(args["spacing"])
    rif.SetOutputDirection(args["direction"])
    rif.SetSize(args["size"])
    rif.SetOutputOrigin(args["origin"])
    rif.SetOutputPixelType(pixel_type)
    rif.SetInterpolator(interpolator)
    return rif.Execute(image)


# --- per-image loading --------------------------------------------------------------------


class _Normalizer:
    """pyradiomics ``normalizeImage`` applied to any window of the image: statistics of
    the whole image (``sitk.StatisticsImageFilter``, as ``sitk.Normalize``), arithmetic
    on the window only; bit-identical to normalising first and cropping after."""

    def __init__(self, image: sitk.Image, s: Mapping[str, Any]) -> None:
        stats = sitk.StatisticsImageFilter()
        stats.Execute(image)
        self.shift = -stats.GetMean()
        self.scale = 1.0 / stats.GetSigma()
        self.factor = s.get("normalizeScale", 1)
        self.outliers = s.get("removeOutliers")

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        out = np.empty(arr.shape, np.float64)
        self.into(arr, out)
        return out

    def into(self, arr: np.ndarray, out: np.ndarray) -> None:
        """Normalise ``arr`` (any layout, e.g. a transposed view) into float64 ``out``."""
        np.add(arr, self.shift, out=out, dtype=np.float64)
        out *= self.scale
        if self.outliers is not None:
            out[out > self.outliers] = self.outliers
            out[out < -self.outliers] = -self.outliers
        out *= float(self.factor)


def _window(
    image: sitk.Image, args: Mapping[str, Any], margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input voxels (lower, size; x, y, z) that resampling onto ``args``' grid reads,
    widened by ``margin`` and clipped to the image."""
    out = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    out.SetSpacing(args["spacing"])
    out.SetDirection(args["direction"])
    out.SetOrigin(args["origin"])
    size = np.array(args["size"])
    corners = (
        np.array(np.meshgrid(*[[0, n - 1] for n in size], indexing="ij")).reshape(len(size), -1).T
    )
    cidx = np.array(
        [
            image.TransformPhysicalPointToContinuousIndex(
                out.TransformIndexToPhysicalPoint([int(v) for v in c])
            )
            for c in corners
        ]
    )
    full = np.array(image.GetSize())
    lo = np.maximum(np.floor(cidx.min(axis=0)).astype(np.int64) - margin, 0)
    hi = np.minimum(np.ceil(cidx.max(axis=0)).astype(np.int64) + margin, full - 1)
    hi = np.maximum(hi, lo)
    return lo, hi - lo + 1


def _integer_cast(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray | None:
    """ITK's double-to-integer cast (clamp, truncate toward zero), or None where some
    value lies within rounding error of a non-zero integer (truncation there depends on
    the last bits, so the caller resamples the whole image as pyradiomics does)."""
    info = np.iinfo(dtype)
    near = np.rint(values)
    close = (np.abs(values - near) <= 1e-9 * np.maximum(1.0, np.abs(values))) & (near != 0)
    if close.any():
        return None
    return np.trunc(np.clip(values, info.min, info.max)).astype(dtype)


def _decompose(a: np.ndarray, poles: tuple[float, ...]) -> None:
    """ITK's ``BSplineDecompositionImageFilter::DataToCoefficients1D`` along axis 0 of
    ``a`` (float64, modified in place), every line at once.

    The same floating-point operations in the same order as ITK (gain, causal
    initialisation over the tolerance horizon or the full mirror sum, causal recursion,
    anticausal initialisation and recursion, per pole), so the result is bit-identical
    to ITK's for each line; each step works on a contiguous slab ``a[n]``.
    """
    length = a.shape[0]
    if length == 1 or not poles:  # ITK leaves single-sample lines unchanged
        return
    gain = 1.0
    for z in poles:
        gain = gain * (1.0 - z) * (1.0 - 1.0 / z)
    a *= gain
    tmp = np.empty(a.shape[1:], np.float64)
    for z in poles:
        horizon = math.ceil(math.log(_BSPLINE_TOLERANCE) / math.log(abs(z)))
        zn = z
        if horizon < length:
            acc = a[0].copy()
            for n in range(1, horizon):
                np.multiply(a[n], zn, out=tmp)
                acc += tmp
                zn *= z
            a[0] = acc
        else:
            iz = 1.0 / z
            z2n = math.pow(z, float(length - 1))
            acc = a[0] + z2n * a[length - 1]
            z2n *= z2n * iz
            for n in range(1, length - 1):
                np.multiply(a[n], zn + z2n, out=tmp)
                acc += tmp
                zn *= z
                z2n *= iz
            a[0] = acc / (1.0 - zn * zn)
        for n in range(1, length):
            np.multiply(a[n - 1], z, out=tmp)
            a[n] += tmp
        a[length - 1] = (z / (z * z - 1.0)) * (z * a[length - 2] + a[length - 1])
        for n in range(length - 2, -1, -1):
            np.subtract(a[n + 1], a[n], out=a[n])
            a[n] *= z


def _bspline_coefficients(
    window: np.ndarray,
    norm: _Normalizer | None,
    offset: np.ndarray,
    size: np.ndarray,
    poles: tuple[float, ...],
) -> np.ndarray:
    """ITK's B-spline coefficients of the (normalised) ``window`` (``(z, y, x)``), kept
    only for the box at ``offset`` (``(x, y, z)``, relative to the window) of ``size``.

    ITK filters along x, then y, then z, each pass over every line of the image; the
    box's coefficients only depend on the x pass of all lines, the y pass of the lines
    that cross the box's x range and the z pass of the lines through its (x, y) range,
    so only those are computed. Each pass runs on an array whose leading axis is the
    filtered one (transposed copies), with identical per-line arithmetic.
    """
    src = window.transpose(2, 1, 0)  # (x, y, z) view, in the pixel type: no copy
    a = np.empty(src.shape, np.float64)
    if norm is not None:
        norm.into(src, a)
    else:
        a[...] = src
    del src
    _decompose(a, poles)
    b = np.ascontiguousarray(a[offset[0] : offset[0] + size[0]].transpose(1, 0, 2))  # (y, x, z)
    del a
    _decompose(b, poles)
    c = np.ascontiguousarray(b[offset[1] : offset[1] + size[1]].transpose(2, 0, 1))  # (z, y, x)
    del b
    _decompose(c, poles)
    return c[offset[2] : offset[2] + size[2]]


def _bspline_resample(
    image: sitk.Image,
    grid: _Grid,
    norm: _Normalizer | None,
    order: int,
    pixel_type: int,
) -> sitk.Image:
    """``ResampleImageFilter`` with a B-spline interpolator of ``order`` (2 to 5), as
    pyradiomics runs it on the (normalised) whole ``image``, from the coefficients of a
    window.

    The coefficients are computed here (:func:`_bspline_coefficients`) and evaluated by
    ITK's ``BSplineResampleImageFunction`` (``sitkBSplineResamplerOrderN``: the
    interpolator without its prefilter) from a coefficient image with ``image``'s origin,
    spacing and direction, so every output voxel is computed by the same operations as in
    pyradiomics. That image (allocated per image once its coefficients are computed, so
    it never coexists with the window's arrays) only extends to the footprint's upper
    corner; nothing below the footprint is read.
    """
    args = grid.rif_args
    win = grid.bspline
    if win is None:
        margin = _window_margin(_BSPLINE_INTERPOLATOR[order], True)
        assert margin is not None
        lower, size = _window(image, args, margin)
        foot_lower, foot_size = _window(image, args, order // 2 + 2)
        win = _BSplineWindow(lower, size, foot_lower, foot_size)
        grid.bspline = win
    sl = tuple(
        slice(int(a), int(a + n)) for a, n in zip(win.lower[::-1], win.size[::-1], strict=True)
    )
    coef = _bspline_coefficients(
        sitk.GetArrayViewFromImage(image)[sl],
        norm,
        win.foot_lower - win.lower,
        win.foot_size,
        _BSPLINE_POLES[order],
    )
    # allocated per image, after the window's arrays are freed: kept across sequences, it
    # would add its size to the next image's prefilter peak (peak RSS above pyradiomics')
    coefficients = sitk.Image([int(v) for v in win.foot_lower + win.foot_size], sitk.sitkFloat64)
    coefficients.SetOrigin(image.GetOrigin())
    coefficients.SetSpacing(image.GetSpacing())
    coefficients.SetDirection(image.GetDirection())
    lo = [int(v) for v in win.foot_lower]
    hi = [int(v) for v in win.foot_lower + win.foot_size]
    coefficients[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = sitk.GetImageFromArray(coef)
    del coef
    return _resample(coefficients, args, pixel_type, _BSPLINE_RESAMPLER[order])


def _load(image: sitk.Image, grid: _Grid, s: Mapping[str, Any]) -> sitk.Image:
    """``loadImage``'s image side: ``image`` normalised and brought onto ``grid``."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise EngineUnsupportedError(
            "vector-valued images are not implemented natively; use engine: pyradiomics"
        )
    norm = _Normalizer(image, s) if s.get("normalize", False) else None
    arr_full = sitk.GetArrayViewFromImage(image)

    def window_image(lower: np.ndarray, size: np.ndarray) -> sitk.Image:
        sl = tuple(slice(int(a), int(a + n)) for a, n in zip(lower[::-1], size[::-1], strict=True))
        arr = arr_full[sl]
        arr = norm(arr) if norm is not None else np.array(arr)
        return _from_array(arr, image, tuple(int(v) for v in lower))

    full_size = np.array(image.GetSize())
    if grid.mode == "full":
        if norm is None:
            return image
        return window_image(np.zeros(3, np.int64), full_size)
    if grid.mode == "crop":
        return window_image(grid.crop_lower, grid.crop_size)
    args = grid.rif_args
    interp = int(args["interpolator"])
    out_type = sitk.sitkFloat64 if norm is not None else image.GetPixelID()
    order = _BSPLINE_ORDER.get(interp, 0)
    if order in _BSPLINE_POLES:
        np_type = np.dtype(np.float64) if norm is not None else arr_full.dtype
        if np_type.kind == "f":
            return _bspline_resample(image, grid, norm, order, out_type)
        res = sitk.GetArrayFromImage(_bspline_resample(image, grid, norm, order, sitk.sitkFloat64))
        cast = _integer_cast(res, np_type)
        if cast is None:  # a value at an integer: truncation depends on rounding, resample whole
            return _resample(image, args, out_type, interp)
        return _from_array(cast, grid.ref)
    margin = _window_margin(interp, norm is not None)
    if margin is None:
        lower, size = np.zeros(3, np.int64), full_size
    else:
        lower, size = _window(image, args, margin)
    src = window_image(lower, size)
    windowed = bool((lower != 0).any() or (size != full_size).any())
    np_type = (
        np.dtype(sitk.GetArrayViewFromImage(src).dtype) if norm is None else np.dtype(np.float64)
    )
    if not windowed or np_type.kind == "f":
        return _resample(src, args, out_type, interp)
    res = sitk.GetArrayFromImage(_resample(src, args, sitk.sitkFloat64, interp))
    cast = _integer_cast(res, np_type)
    if cast is None:  # a value at an integer: truncation depends on rounding, resample whole
        return _resample(image, args, out_type, interp)
    return _from_array(cast, grid.ref)


# --- image types ----------------------------------------------------------------------------


def _image_types(
    image: sitk.Image, image_types: Mapping[str, Mapping[str, Any] | None], s: Mapping[str, Any]
) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    """pyradiomics' ``get<Type>Image`` generators, in the enabled order: (array, name, settings)."""
    for type_name, custom in image_types.items():
        args = dict(s)
        args.update(dict(custom or {}))
        if type_name == "Original":
            yield sitk.GetArrayViewFromImage(image), "original", args
        elif type_name == "LoG":
            yield from _log(image, args)
        elif type_name == "Wavelet":
            yield from _wavelet(image, args)
        elif type_name == "Gradient":
            gmif = sitk.GradientMagnitudeImageFilter()
            gmif.SetUseImageSpacing(args.get("gradientUseSpacing", True))
            yield sitk.GetArrayFromImage(gmif.Execute(image)), "gradient", args
        else:
            im = sitk.GetArrayFromImage(image).astype("float64")
            yield _pointwise(type_name, im), type_name.lower(), args


def _pointwise(type_name: str, im: np.ndarray) -> np.ndarray:
    """Square, SquareRoot, Logarithm, Exponential: pyradiomics' numpy expressions."""
    if type_name == "Square":
        coeff = 1 / np.sqrt(np.max(np.abs(im)))
        return np.asarray((coeff * im) ** 2)
    if type_name == "SquareRoot":
        coeff = np.max(np.abs(im))
        im[im > 0] = np.sqrt(im[im > 0] * coeff)
        im[im < 0] = -np.sqrt(-im[im < 0] * coeff)
        return im
    if type_name == "Logarithm":
        im_max = np.max(np.abs(im))
        im[im > 0] = np.log(im[im > 0] + 1)
        im[im < 0] = -np.log(-(im[im < 0] - 1))
        return np.asarray(im * (im_max / np.max(np.abs(im))))
    im_max = np.max(np.abs(im))  # Exponential
    coeff = np.log(im_max) / im_max
    return np.asarray(np.exp(coeff * im))


def _log(
    image: sitk.Image, args: dict[str, Any]
) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    size = np.array(image.GetSize())
    spacing = np.array(image.GetSpacing())
    if np.min(size) < 4:
        return
    for sigma in args.get("sigma", []):
        if sigma > 0.0 and np.all(size >= np.ceil(sigma / spacing) + 1):
            lrgif = sitk.LaplacianRecursiveGaussianImageFilter()
            lrgif.SetNormalizeAcrossScale(True)
            lrgif.SetSigma(sigma)
            name = "log-sigma-{}-mm-3D".format(str(sigma).replace(".", "-"))
            yield sitk.GetArrayFromImage(lrgif.Execute(image)), name, args


def _wavelet(
    image: sitk.Image, args: dict[str, Any]
) -> Iterator[tuple[np.ndarray, str, dict[str, Any]]]:
    """pyradiomics ``getWaveletImage`` / ``_swt3`` (stationary wavelet transform per level)."""
    import pywt

    nd = image.GetDimension()
    axes = list(range(nd - 1, -1, -1))
    if args.get("force2D", False):
        axes.remove(args.get("force2Ddimension", 0))
    wavelet = args.get("wavelet", "coif1")
    level = args.get("level", 1)
    start_level = args.get("start_level", 0)
    matrix = np.asarray(sitk.GetArrayFromImage(image))
    shape = matrix.shape
    padding = tuple((0, 1 if dim % 2 != 0 else 0) for dim in shape)
    data = np.pad(matrix.copy(), padding, "wrap")
    if not isinstance(wavelet, pywt.Wavelet):
        wavelet = pywt.Wavelet(wavelet)
    unpad = tuple(slice(None, -1 if dim % 2 != 0 else None) for dim in shape)
    approx_key = "a" * len(axes)
    for _ in range(start_level):
        data = pywt.swtn(data, wavelet, level=1, start_level=0, axes=axes)[0][approx_key].copy()
    levels = []
    for _ in range(start_level, start_level + level):
        dec = pywt.swtn(data, wavelet, level=1, start_level=0, axes=axes)[0]
        data = dec[approx_key].copy()
        levels.append(
            {
                str(k).replace("a", "L").replace("d", "H"): v[unpad]
                for k, v in dec.items()
                if k != approx_key
            }
        )
    for idx, details in enumerate(levels, start=1):
        for dname, arr in details.items():
            name = f"wavelet-{dname}" if idx == 1 else f"wavelet{idx}-{dname}"
            yield arr, name, args
    aname = "L" * len(axes)
    yield (
        data[unpad],
        (f"wavelet-{aname}" if len(levels) == 1 else f"wavelet{len(levels)}-{aname}"),
        args,
    )


# --- binning --------------------------------------------------------------------------------


def bin_edges(values: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
    """pyradiomics ``getBinEdges`` (same numpy expressions, so the same edges to the bit).

    ``values`` keeps the image's pixel type, as pyradiomics bins the image array.
    """
    bin_width = settings.get("binWidth", 25)
    bin_count = settings.get("binCount")
    if bin_count is not None:
        edges: np.ndarray = np.histogram(values, bin_count)[1]
        edges[-1] += 1
        return edges
    minimum = values.min()
    maximum = values.max()
    low = minimum - (minimum % bin_width)
    high = maximum + 2 * bin_width
    edges = np.arange(low, high, bin_width)
    if len(edges) == 1:
        return np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def _bin(values: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
    return np.digitize(values, bin_edges(values, settings)).astype(np.int64, copy=False)


# --- execute ------------------------------------------------------------------------------


def _resegment(arr: np.ndarray, sel: np.ndarray, s: Mapping[str, Any]) -> np.ndarray:
    """pyradiomics ``resegmentMask`` on the image array ``arr`` (same grid as ``sel``)."""
    rng = s["resegmentRange"]
    mode = s.get("resegmentMode", "absolute")
    label = int(s["label"])
    if len(rng) == 0 or len(rng) > 2:
        raise EngineUnsupportedError(f"resegmentRange of length {len(rng)} is not allowed")
    roi_values = arr[sel]
    if mode == "absolute":
        thresholds = sorted(rng)
    elif mode == "relative":
        max_gl = np.max(roi_values)
        thresholds = [max_gl * th for th in sorted(rng)]
    elif mode == "sigma":
        mean_gl = np.mean(roi_values)
        sd_gl = np.std(roi_values)
        thresholds = [mean_gl + sd_gl * th for th in sorted(rng)]
    else:
        raise EngineUnsupportedError(f"resegmentMode {mode!r} is not known to pyradiomics")
    out = sel.copy()
    out[out] = arr[out] >= thresholds[0]
    if len(thresholds) == 2:
        out[out] = arr[out] <= thresholds[1]
    kept = int(np.count_nonzero(out))
    if kept <= 1:
        raise ROITooSmallError(
            f"resegmentation (resegmentRange {list(rng)}, mode {mode}) excluded too many voxels with label "
            f"{label} (retained {kept} voxel(s))"
        )
    return out


def _execute(
    image: sitk.Image,
    grid: _Grid,
    s: Mapping[str, Any],
    image_types: Mapping[str, Any],
    cache: dict[Any, Any],
) -> Prepared:
    """``execute`` from ``checkMask`` to the binned ROI of every image type."""
    loaded = _load(image, grid, s)
    arr = sitk.GetArrayViewFromImage(loaded)
    key = "check"
    if key not in cache:
        lower, size, corrected, sel = _check_mask(loaded, grid.mask, grid.mask_arr, s)
        cache[key] = (lower, size, sel, corrected is not None)
    lower, size, sel, corrected = cache[key]
    diag = dict(grid.diagnostics)
    diag[
        "Mask-interpolated_BoundingBox" if grid.mode == "resample" else "Mask-checked_BoundingBox"
    ] = (
        *lower.tolist(),
        *size.tolist(),
    )
    diag["Mask-interpolated_VoxelNum" if grid.mode == "resample" else "Mask-checked_VoxelNum"] = (
        int(np.count_nonzero(sel))
    )
    diag["Mask-corrected"] = corrected
    if arr.dtype.kind == "f" and not np.isfinite(arr[sel]).all():
        raise NonFiniteImageError("the image holds NaN or infinite values inside the ROI")
    texture_sel = sel
    if s.get("resegmentRange") is not None:
        texture_sel = _resegment(arr, sel, s)
        lower, size = _bbox(texture_sel)
        _check_size(size, int(np.count_nonzero(texture_sel)), s)
        diag["Mask-resegmented_VoxelNum"] = int(np.count_nonzero(texture_sel))
        diag["Mask-resegmented_BoundingBox"] = (*lower.tolist(), *size.tolist())
    box = tuple(slice(int(a), int(a + n)) for a, n in zip(lower[::-1], size[::-1], strict=True))
    shape_sel = texture_sel if (s.get("resegmentShape", False) and texture_sel is not sel) else sel
    spacing = tuple(float(v) for v in loaded.GetSpacing())
    roi_key = ("roi", lower.tobytes(), size.tobytes(), texture_sel is sel)
    if texture_sel is sel and roi_key in cache:
        roi, shape_mask = cache[roi_key]
    else:
        roi = Roi(texture_sel[box], spacing)
        shape_mask = np.ascontiguousarray(shape_sel[box])
        if texture_sel is sel:
            cache[roi_key] = (roi, shape_mask)
    idx = tuple((roi.coords + lower[::-1]).T)
    names: list[str] = []
    settings: list[dict[str, Any]] = []
    values: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    for filtered, name, args in _image_types(loaded, image_types, s):
        v = np.asarray(filtered)[idx]
        names.append(name)
        settings.append(args)
        values.append(v.astype("float"))
        levels.append(_bin(v, args))
    n = roi.n
    return Prepared(
        shape_mask=shape_mask,
        shape_spacing=(spacing[0], spacing[1], spacing[2]),
        roi=roi,
        names=names,
        settings=settings,
        values=np.stack(values) if values else np.empty((0, n)),
        levels=np.stack(levels) if levels else np.empty((0, n), np.int64),
        diagnostics=diag,
    )


def prepare_many(
    images: Mapping[str, sitk.Image],
    mask: sitk.Image,
    settings: Mapping[str, Any],
    image_types: Mapping[str, Mapping[str, Any] | None],
    *,
    label: int = 1,
) -> dict[str, Prepared]:
    """:func:`prepare` for several images (sequences) sharing one mask.

    Mask work (``getMask``, the resampled / cropped mask, ``checkMask``, the bounding box
    and the :class:`Roi` with its neighbour tables) is done once per voxel grid: images
    on the same grid share the ``roi`` object unless re-segmentation makes their ROIs
    differ.

    Parameters
    ----------
    images
        Sequence name -> scalar 3D image.
    mask
        Label map (any integer pixel type) of the case.
    settings
        pyradiomics ``setting`` block (pyradiomics' defaults fill the rest).
    image_types
        pyradiomics ``imageType`` block: type name -> custom settings (or None).
    label
        The label of the ROI.

    Returns
    -------
    dict
        Sequence name -> :class:`Prepared`, in the order of ``images``.
    """
    s = effective_settings(settings, label=label)
    _check_image_types(image_types)
    lab = int(s["label"])
    out: dict[str, Prepared] = {}
    with _tolerance(s.get("geometryTolerance")):
        for name, image in images.items():
            if image.GetDimension() != 3:
                raise EngineUnsupportedError(
                    f"{image.GetDimension()}D image {name!r}: the native engine handles 3D images only; "
                    "use engine: pyradiomics"
                )
        m, sel = _get_mask(mask, lab)
        grids: dict[tuple[Any, ...], tuple[_Grid, dict[Any, Any]]] = {}
        for name, image in images.items():
            geo = _geometry(image)
            if geo not in grids:
                grids[geo] = (_make_grid(image, m, sel, s), {})
            grid, cache = grids[geo]
            out[name] = _execute(image, grid, s, image_types, cache)
    return out


def prepare(
    image: sitk.Image,
    mask: sitk.Image,
    settings: Mapping[str, Any],
    image_types: Mapping[str, Mapping[str, Any] | None],
    *,
    label: int = 1,
) -> Prepared:
    """pyradiomics' ``execute`` up to the feature classes, for one image.

    Parameters
    ----------
    image
        Scalar 3D image.
    mask
        Label map.
    settings
        pyradiomics ``setting`` block (``normalize``, ``resampledPixelSpacing``,
        ``resegmentRange``, ``binWidth`` ...); pyradiomics' defaults fill the rest.
    image_types
        pyradiomics ``imageType`` block, e.g. ``{"Original": {}, "LoG": {"sigma": [2.0]}}``.
    label
        The label of the ROI.

    Returns
    -------
    Prepared
        Shape mask, texture ROI and the values / binned levels of every image type.
    """
    return prepare_many({"image": image}, mask, settings, image_types, label=label)["image"]
