"""Geometry without interpolation: reorientation to one canonical direction, and cropping
to a mask's bounding box with physical margins.

Both keep every voxel value and its physical position: :func:`reorient` permutes and
flips axes (SimpleITK ``DICOMOrient``), :func:`crop_to_mask` takes a sub-region whose
origin is moved to the physical position of its first voxel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import EmptyROIError, ImageDimensionError, MaskGeometryError
from hybridrad.preprocess.resample import same_grid

_AXES = ("LR", "PA", "SI")


def reorient(image: sitk.Image, orientation: str = "LPS") -> sitk.Image:
    """``image`` with its axes permuted and flipped to ``orientation`` (exact, no
    interpolation).

    Parameters
    ----------
    image
        A 3D image (scalar or vector).
    orientation
        DICOM-style three letters naming where each axis points *to* as its index grows
        (``"LPS"``: x to the left, y to posterior, z to superior; the ITK and DICOM
        convention; ``"RAS"`` for the NIfTI / nibabel view), one of each pair L/R, P/A,
        S/I.

    Returns
    -------
    SimpleITK.Image
        The same voxels at the same physical points. For an axis-aligned input the
        direction becomes the signed permutation ``orientation`` names (identity for
        ``"LPS"``); an oblique direction is taken to the closest such orientation and
        stays oblique.

    Raises
    ------
    ImageDimensionError
        ``image`` is not 3D.
    ValueError
        ``orientation`` is not three letters, one of each pair.

    Examples
    --------
    >>> img = sitk.Image([2, 3, 4], sitk.sitkUInt8)
    >>> img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # RAS
    >>> out = reorient(img)
    >>> out.GetDirection(), out.GetSize()
    ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (2, 3, 4))
    >>> out.GetOrigin()
    (-1.0, -2.0, 0.0)
    """
    code = orientation.upper()
    pairs = sorted(next((i for i, pair in enumerate(_AXES) if c in pair), -1) for c in code)
    if pairs != [0, 1, 2]:
        raise ValueError(
            f"orientation {orientation!r} must be three letters, one of each pair L/R, P/A "
            "and S/I (e.g. 'LPS' or 'RAS')"
        )
    if image.GetDimension() != 3:
        raise ImageDimensionError(
            f"reorient needs a 3D image; this one is {image.GetDimension()}D "
            f"(size {image.GetSize()}); take a 3D volume first"
        )
    return sitk.DICOMOrient(image, code)


def _margins(mask: sitk.Image, margin_mm: float | Sequence[float]) -> np.ndarray:
    dim = mask.GetDimension()
    margin = np.asarray(margin_mm, dtype=float)
    if margin.ndim == 0:
        margin = np.full(dim, float(margin))
    if margin.shape != (dim,) or not np.all(np.isfinite(margin)) or np.any(margin < 0):
        raise ValueError(
            f"margin_mm {margin_mm!r} must be one non-negative number (mm) or one per axis ({dim})"
        )
    spacing = np.asarray(mask.GetSpacing(), dtype=float)
    # the smallest whole number of voxels that covers the margin (1e-9: float noise)
    return np.ceil(margin / spacing - 1e-9).astype(int)


def foreground_bbox(
    mask: sitk.Image, margin_mm: float | Sequence[float] = 0.0, *, name: str = "mask"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Index and size of the box around the non-zero voxels of ``mask``, widened by
    ``margin_mm`` on every side and clamped to the image.

    Parameters
    ----------
    mask
        Label mask; every non-zero voxel is foreground.
    margin_mm
        Margin in mm (one value or one per axis), rounded up to whole voxels per axis
        from the voxel spacing, so at least ``margin_mm`` is kept where the image allows.
    name
        What to call the mask in an error (its file or case).

    Returns
    -------
    index, size : tuple of int
        In SimpleITK (x, y, z) order, for :func:`SimpleITK.RegionOfInterest`.

    Raises
    ------
    EmptyROIError
        ``mask`` has no non-zero voxel.

    Examples
    --------
    >>> m = sitk.Image([20, 20, 10], sitk.sitkUInt8)
    >>> m.SetSpacing((1.0, 1.0, 3.0))
    >>> m[5, 6, 4] = 1
    >>> foreground_bbox(m, margin_mm=4.0)
    ((1, 2, 2), (9, 9, 5))
    """
    arr = sitk.GetArrayViewFromImage(mask)
    nonzero = np.nonzero(arr)
    if not len(nonzero[0]):
        raise EmptyROIError(
            f"{name} has no non-zero voxel, so there is nothing to crop to; check that it "
            "is the right mask (and on the image's grid), or skip cropping for this case"
        )
    lo = np.array([int(v.min()) for v in reversed(nonzero)])
    hi = np.array([int(v.max()) for v in reversed(nonzero)])
    extra = _margins(mask, margin_mm)
    size = np.asarray(mask.GetSize())
    lo = np.maximum(lo - extra, 0)
    hi = np.minimum(hi + extra, size - 1)
    return tuple(int(v) for v in lo), tuple(int(v) for v in hi - lo + 1)


def crop_to_mask(
    image: sitk.Image,
    mask: sitk.Image,
    margin_mm: float | Sequence[float] = 10.0,
    *,
    name: str = "mask",
) -> sitk.Image:
    """``image`` cropped to the bounding box of ``mask`` plus ``margin_mm``.

    Parameters
    ----------
    image
        Image to crop (pass the mask itself to crop it alike).
    mask
        Label mask on ``image``'s voxel grid; every non-zero voxel is foreground.
    margin_mm
        Physical margin in mm, see :func:`foreground_bbox`; clamped at the image border.
    name
        What to call the mask in an error (its file or case).

    Returns
    -------
    SimpleITK.Image
        The sub-image; its origin is the physical position of its first voxel, so every
        kept voxel stays at the same physical point.

    Raises
    ------
    EmptyROIError
        ``mask`` has no non-zero voxel.
    MaskGeometryError
        ``mask`` is not on ``image``'s voxel grid.

    Examples
    --------
    >>> img = sitk.Image([30, 30, 30], sitk.sitkInt16)
    >>> m = sitk.Image([30, 30, 30], sitk.sitkUInt8)
    >>> m[10:15, 10:15, 10:15] = 1
    >>> out = crop_to_mask(img, m, margin_mm=2.0)
    >>> out.GetSize(), out.GetOrigin()
    ((9, 9, 9), (8.0, 8.0, 8.0))
    """
    if not same_grid(image, mask, spacing_tol=1e-4, origin_tol=1e-4, direction_tol=1e-4):
        raise MaskGeometryError(
            f"{name} (size {mask.GetSize()}, spacing {mask.GetSpacing()}, origin "
            f"{mask.GetOrigin()}) is not on the image's grid (size {image.GetSize()}, "
            f"spacing {image.GetSpacing()}, origin {image.GetOrigin()}); resample it onto "
            "the image first: resample_onto(mask, image, is_mask=True)"
        )
    index, size = foreground_bbox(mask, margin_mm, name=name)
    return sitk.RegionOfInterest(image, list(size), list(index))
