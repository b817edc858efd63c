"""Intensity normalisation: z-score and percentile clipping inside a mask, CT windowing.

MRI intensities have no physical unit: the same tissue reads 300 on one scanner and 1200
on another. A z-score inside the brain (or ROI) mask makes sequences comparable across
cases. It is computed from the voxels *inside* the mask only, because the background
(air, often more than half of a head volume) would otherwise dominate the mean and SD:
pyradiomics' ``normalize`` z-scores over every voxel, background included, so the scale
it gives a case depends on how much air its field of view holds. The statistics used are
returned as an :class:`IntensityStats` record, so that they can be saved beside the image.

All functions return ``float32`` images on the input's grid (same origin, spacing and
direction) and never change the input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import (
    EmptyROIError,
    HybridradError,
    MaskGeometryError,
    NonFiniteImageError,
)
from hybridrad.preprocess._checks import label
from hybridrad.preprocess.resample import same_grid

__all__ = [
    "ConstantRegionError",
    "IntensityStats",
    "clip_percentiles",
    "ct_window",
    "zscore",
]


class ConstantRegionError(HybridradError, ValueError):
    """The voxels a normalisation is computed from all hold one value (SD 0)."""


@dataclass(frozen=True)
class IntensityStats:
    """The statistics an intensity normalisation was computed from.

    Attributes
    ----------
    method : str
        ``"zscore"`` or ``"clip_percentiles"``.
    region : str
        ``"mask"`` when the statistics come from the voxels of a mask, ``"image"`` when
        from every voxel.
    n_voxels : int
        Number of voxels the statistics were computed from.
    mean, sd : float
        Mean and (population, ``ddof=0``) standard deviation of those voxels in the
        *input* image, before the operation.
    low, high : float or None
        Clipping bounds in intensity units (``clip_percentiles``); ``None`` for z-score.
    low_percentile, high_percentile : float or None
        The percentiles the bounds were taken at (``clip_percentiles``).
    n_clipped : int
        Voxels of the whole image changed by clipping (0 for z-score).
    """

    method: str
    region: str
    n_voxels: int
    mean: float
    sd: float
    low: float | None = None
    high: float | None = None
    low_percentile: float | None = None
    high_percentile: float | None = None
    n_clipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON/CSV-ready) of the fields.

        Examples
        --------
        >>> IntensityStats("zscore", "mask", 10, 5.0, 2.0).to_dict()["mean"]
        5.0
        """
        return asdict(self)


def mask_voxels(
    image: sitk.Image, mask: sitk.Image | None, *, name: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The image as a float64 array, a boolean array of the region, and its name.

    ``mask`` (any integer or float type, nonzero inside) must be on the image's grid
    (size equal, origin/spacing/direction within 1e-3); ``None`` selects every voxel.
    Raises :class:`EmptyROIError` when the mask holds no voxel,
    :class:`MaskGeometryError` when the grids differ and :class:`NonFiniteImageError`
    when the region holds NaN or infinity.
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{label(name)}the image has {image.GetNumberOfComponentsPerPixel()} components "
            "per voxel; pass a scalar image (one sequence)"
        )
    arr = sitk.GetArrayViewFromImage(image).astype(np.float64)
    if mask is None:
        inside = np.ones(arr.shape, dtype=bool)
        region = "image"
    else:
        if not same_grid(image, mask, spacing_tol=1e-3, origin_tol=1e-3, direction_tol=1e-3):
            raise MaskGeometryError(
                f"{label(name)}the mask is not on the image's grid (image size "
                f"{image.GetSize()}, spacing {image.GetSpacing()}, origin {image.GetOrigin()}; "
                f"mask size {mask.GetSize()}, spacing {mask.GetSpacing()}, origin "
                f"{mask.GetOrigin()}); resample the mask onto the image first "
                "(hybridrad.preprocess.resample_onto(mask, image, is_mask=True))"
            )
        inside = sitk.GetArrayViewFromImage(mask) != 0
        region = "mask"
        if not inside.any():
            raise EmptyROIError(
                f"{label(name)}the mask holds no nonzero voxel (of {inside.size}); pass "
                "the brain/ROI mask of this image, or mask=None to use every voxel"
            )
    if not np.isfinite(arr[inside]).all():
        raise NonFiniteImageError(
            f"{label(name)}the image holds NaN or infinite voxels inside the {region}; "
            "fix or replace the image before normalising it"
        )
    return arr, inside, region


def _to_image(arr: np.ndarray, like: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(arr.astype(np.float32, copy=False))
    out.CopyInformation(like)
    return out


def zscore(
    image: sitk.Image, mask: sitk.Image | None = None, *, name: str | None = None
) -> tuple[sitk.Image, IntensityStats]:
    """``(image - mean) / sd`` with mean and SD taken inside ``mask``.

    The transform is applied to every voxel (background included), so that inside the
    mask the result has mean 0 and SD 1 (population SD, ``ddof=0``).

    Parameters
    ----------
    image : SimpleITK.Image
        A scalar image of any pixel type.
    mask : SimpleITK.Image, optional
        Brain or ROI mask on the image's grid, nonzero inside. ``None`` uses every voxel
        (like pyradiomics' ``normalize``; not recommended for head MRI, where air
        dominates).
    name : str, optional
        A case / sequence name for error messages.

    Returns
    -------
    SimpleITK.Image
        ``float32`` on the input's grid.
    IntensityStats
        ``method="zscore"`` with the input's mean and SD inside the region.

    Raises
    ------
    EmptyROIError
        The mask holds no voxel.
    ConstantRegionError
        Every voxel of the region holds the same value (SD 0).

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.array([[[1.0, 2.0, 3.0, 100.0]]]))
    >>> msk = sitk.GetImageFromArray(np.array([[[1, 1, 1, 0]]], dtype=np.uint8))
    >>> out, stats = zscore(img, msk)
    >>> stats.mean, round(stats.sd, 4), stats.n_voxels
    (2.0, 0.8165, 3)
    >>> [round(float(v), 4) for v in sitk.GetArrayFromImage(out)[0, 0, :3]]
    [-1.2247, 0.0, 1.2247]
    """
    arr, inside, region = mask_voxels(image, mask, name=name)
    values = arr[inside]
    mean = float(values.mean())
    sd = float(values.std())
    if not sd > 0:
        raise ConstantRegionError(
            f"{label(name)}every voxel inside the {region} holds {values[0]:g} (SD 0), so "
            "it cannot be z-scored; check that the image is not blank and that the mask "
            "covers the brain/ROI of this image"
        )
    stats = IntensityStats("zscore", region, int(values.size), mean, sd)
    return _to_image((arr - mean) / sd, image), stats


def clip_percentiles(
    image: sitk.Image,
    mask: sitk.Image | None = None,
    low: float = 0.5,
    high: float = 99.5,
    *,
    name: str | None = None,
) -> tuple[sitk.Image, IntensityStats]:
    """Clip every voxel to the ``low``..``high`` percentiles of the voxels inside ``mask``.

    Percentiles use numpy's default (linear) interpolation between order statistics.
    Clipping before a z-score keeps a few hot voxels (vessels, artefacts) from setting
    the scale.

    Parameters
    ----------
    image : SimpleITK.Image
        A scalar image of any pixel type.
    mask : SimpleITK.Image, optional
        Region the percentiles are taken in (nonzero inside); ``None``: every voxel.
    low, high : float
        Percentiles in [0, 100], ``low < high``.
    name : str, optional
        A case / sequence name for error messages.

    Returns
    -------
    SimpleITK.Image
        ``float32`` on the input's grid.
    IntensityStats
        ``method="clip_percentiles"``; ``low``/``high`` the bounds in intensity units,
        ``mean``/``sd`` of the region before clipping, ``n_clipped`` voxels changed.

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.arange(101, dtype=np.float32).reshape(1, 1, 101))
    >>> out, stats = clip_percentiles(img, None, 10, 90)
    >>> stats.low, stats.high, stats.n_clipped
    (10.0, 90.0, 20)
    """
    if not (0.0 <= low < high <= 100.0):
        raise ValueError(
            f"clip_percentiles needs 0 <= low < high <= 100, got low={low}, high={high}"
        )
    arr, inside, region = mask_voxels(image, mask, name=name)
    values = arr[inside]
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    clipped = np.clip(arr, lo, hi)
    stats = IntensityStats(
        "clip_percentiles",
        region,
        int(values.size),
        float(values.mean()),
        float(values.std()),
        low=lo,
        high=hi,
        low_percentile=float(low),
        high_percentile=float(high),
        n_clipped=int(np.count_nonzero(clipped != arr)),
    )
    return _to_image(clipped, image), stats


def ct_window(image: sitk.Image, level: float = 40.0, width: float = 400.0) -> sitk.Image:
    """Clip a CT image (HU) to the window ``[level - width/2, level + width/2]``.

    The defaults (level 40, width 400 HU) are a soft-tissue window; brain is often
    level 40, width 80.

    Returns
    -------
    SimpleITK.Image
        ``float32`` on the input's grid, values in the window (not rescaled).

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.array([[[-1000, -160, 0, 240, 3000]]], np.int16))
    >>> sitk.GetArrayFromImage(ct_window(img, 40, 400)).ravel().tolist()
    [-160.0, -160.0, 0.0, 240.0, 240.0]
    """
    if not width > 0:
        raise ValueError(f"ct_window needs a positive width (HU), got {width}")
    lo = float(level) - float(width) / 2.0
    hi = float(level) + float(width) / 2.0
    return sitk.Clamp(sitk.Cast(image, sitk.sitkFloat32), sitk.sitkFloat32, lo, hi)
