"""The one resampling module of hybridrad: images and masks onto a new voxel grid.

Every resampling in hybridrad goes through :func:`resample_onto` (onto the grid of a
reference image, optionally through a transform); :func:`resample_image` resamples to a
target spacing over the same physical extent. A whole cohort is resampled by the pipeline
(:mod:`hybridrad.preprocess.pipeline`, step ``resample``).

Images are interpolated linearly or with a cubic B-spline (to ``float32`` by default, so
integer images are not truncated); masks with nearest neighbour, or by interpolating each
label's indicator linearly and thresholding it (``mask_method="threshold"``, the IBSI
partial-volume rule), which keeps a structure's volume better than nearest neighbour on
coarse or anisotropic grids. Masks keep their pixel type and never gain label values.

A grid is a SimpleITK image whose size, origin, spacing and direction are the geometry
(its voxels are not used); :func:`spacing_grid` and :func:`make_grid` build one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import SimpleITK as sitk

log = logging.getLogger(__name__)

Interpolator = Literal["linear", "bspline", "nearest"]
MaskMethod = Literal["nearest", "threshold"]
Align = Literal["origin", "centre"]
Rounding = Literal["round", "ceil"]

_INTERPOLATORS: dict[str, int] = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "nearest": sitk.sitkNearestNeighbor,
}


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; use one of {list(allowed)}")


def same_grid(
    a: sitk.Image,
    b: sitk.Image,
    *,
    spacing_tol: float = 1e-6,
    origin_tol: float = 1e-5,
    direction_tol: float = 1e-6,
) -> bool:
    """Whether ``a`` and ``b`` lie on the same voxel grid (size, spacing, origin, direction).

    Parameters
    ----------
    a, b
        The images.
    spacing_tol, origin_tol, direction_tol
        Absolute tolerances (mm for spacing and origin).

    Examples
    --------
    >>> a = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> b = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    >>> same_grid(a, b)
    True
    >>> b.SetOrigin((0.0, 0.0, 1.0))
    >>> same_grid(a, b)
    False
    """
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=spacing_tol)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=origin_tol)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=direction_tol)
    )


def make_grid(
    size: Sequence[int],
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: Sequence[float] | None = None,
) -> sitk.Image:
    """A reference grid (an empty ``uint8`` image) with the given geometry.

    Parameters
    ----------
    size
        Voxels per axis.
    spacing
        Voxel spacing per axis in mm.
    origin
        Physical position of the centre of voxel 0 in mm.
    direction
        Row-major direction cosines; ``None``: identity.

    Examples
    --------
    >>> g = make_grid([2, 3, 4], [1.0, 1.0, 2.0], [0.0, 0.0, -3.0])
    >>> g.GetSize(), g.GetSpacing(), g.GetOrigin()
    ((2, 3, 4), (1.0, 1.0, 2.0), (0.0, 0.0, -3.0))
    """
    dim = len(size)
    if len(spacing) != dim or len(origin) != dim:
        raise ValueError(
            f"grid size {list(size)}, spacing {list(spacing)} and origin {list(origin)} "
            "must have one value per axis"
        )
    grid = sitk.Image([int(v) for v in size], sitk.sitkUInt8)
    grid.SetSpacing([float(v) for v in spacing])
    grid.SetOrigin([float(v) for v in origin])
    if direction is not None:
        grid.SetDirection([float(v) for v in direction])
    return grid


def spacing_grid(
    image: sitk.Image,
    spacing: Sequence[float | None],
    *,
    align: Align = "origin",
    rounding: Rounding = "round",
) -> sitk.Image:
    """The grid of ``spacing`` covering the physical extent of ``image``.

    Parameters
    ----------
    image
        The image whose extent, origin and direction the grid keeps.
    spacing
        New spacing per axis in mm; ``None`` or 0 keeps that axis' spacing (e.g.
        ``(2, 2, None)`` to resample in-plane only).
    align
        ``"origin"``: the first voxel centre stays where it was (the default, as in
        most toolkits); ``"centre"``: the centres of the two grids coincide (IBSI 1,
        section 2.4).
    rounding
        New size per axis: ``round`` or ``ceil`` (IBSI) of ``size * old / new spacing``,
        at least 1.

    Returns
    -------
    SimpleITK.Image
        An empty ``uint8`` grid image with the same direction as ``image``.

    Examples
    --------
    >>> img = sitk.Image([10, 10, 4], sitk.sitkInt16)
    >>> img.SetSpacing((1.0, 1.0, 5.0))
    >>> g = spacing_grid(img, (2.0, 2.0, 2.0))
    >>> g.GetSize(), g.GetOrigin()
    ((5, 5, 10), (0.0, 0.0, 0.0))
    >>> spacing_grid(img, (3.0, None, 3.0), align="centre", rounding="ceil").GetSize()
    (4, 10, 7)
    """
    _check_choice("align", align, get_args(Align))
    _check_choice("rounding", rounding, get_args(Rounding))
    dim = image.GetDimension()
    if len(spacing) != dim:
        raise ValueError(
            f"spacing {list(spacing)} has {len(spacing)} values; the image is {dim}D, "
            f"give one spacing per axis"
        )
    old_spacing = np.asarray(image.GetSpacing(), dtype=float)
    old_size = np.asarray(image.GetSize(), dtype=float)
    new_spacing = np.array(
        [o if s is None or s == 0 else float(s) for o, s in zip(old_spacing, spacing, strict=True)]
    )
    if not np.all(np.isfinite(new_spacing)) or np.any(new_spacing <= 0):
        raise ValueError(f"spacing {list(spacing)} must be positive and finite (mm)")
    ratio = old_size * old_spacing / new_spacing
    raw = np.round(ratio) if rounding == "round" else np.ceil(ratio)
    new_size = np.maximum(1, raw).astype(int)
    if align == "origin":
        origin = np.asarray(image.GetOrigin(), dtype=float)
    else:
        direction = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)
        # shift of the first voxel centre, in index-space mm
        shift = (old_spacing * (old_size - 1) - new_spacing * (new_size - 1)) / 2.0
        origin = np.asarray(image.GetOrigin(), dtype=float) + direction @ shift
    return make_grid(new_size.tolist(), new_spacing.tolist(), origin.tolist(), image.GetDirection())


def _threshold_mask(
    mask: sitk.Image,
    grid: sitk.Image,
    transform: sitk.Transform,
    threshold: float,
) -> sitk.Image:
    """Interpolate-then-threshold each label of ``mask`` onto ``grid``."""
    arr = sitk.GetArrayViewFromImage(mask)
    labels = [v for v in np.unique(arr) if v != 0]
    shape = tuple(reversed(grid.GetSize()))
    out = np.zeros(shape, dtype=arr.dtype)
    if not labels:
        result = sitk.GetImageFromArray(out)
        result.CopyInformation(grid)
        return result

    def pv(indicator: sitk.Image) -> np.ndarray:
        img = sitk.Resample(
            sitk.Cast(indicator, sitk.sitkFloat64),
            grid,
            transform,
            sitk.sitkLinear,
            0.0,
            sitk.sitkFloat64,
        )
        return sitk.GetArrayFromImage(img)

    if len(labels) == 1:
        out[pv(mask == labels[0].item()) >= threshold] = labels[0]
    else:
        total = np.zeros(shape)
        best = np.zeros(shape)
        for label in labels:
            p = pv(mask == label.item())
            total += p
            better = p > best
            out[better] = label
            best[better] = p[better]
        out[total < threshold] = 0
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(grid)
    return result


def resample_onto(
    image: sitk.Image,
    reference: sitk.Image,
    *,
    is_mask: bool = False,
    interpolator: Interpolator = "linear",
    transform: sitk.Transform | None = None,
    default: float = 0.0,
    mask_method: MaskMethod = "nearest",
    mask_threshold: float = 0.5,
    pixel_type: int | None = None,
) -> sitk.Image:
    """``image`` on the voxel grid of ``reference``.

    Parameters
    ----------
    image
        The image or label mask to resample.
    reference
        Its size, origin, spacing and direction define the output grid (its voxels are
        not read).
    is_mask
        ``image`` is a label mask: ``mask_method`` decides, labels are kept as they are
        (no new values), and the pixel type is kept.
    interpolator
        For images: ``"linear"``, ``"bspline"`` (cubic B-spline) or ``"nearest"``. Masks
        take ``"linear"`` (the default, ignored) or ``"nearest"``; ``"bspline"`` is
        refused for a mask.
    transform
        Maps points of the output grid to points of ``image`` (SimpleITK convention,
        e.g. a registration result); ``None``: identity.
    default
        Value of output voxels that fall outside ``image`` (masks: background, 0).
    mask_method
        ``"nearest"``: nearest neighbour; ``"threshold"``: each label's indicator is
        interpolated linearly and a voxel is foreground when the labels' summed partial
        volume is >= ``mask_threshold``, taking the label with the largest partial
        volume (for a binary mask: partial volume >= ``mask_threshold``).
    mask_threshold
        Partial-volume threshold of ``mask_method="threshold"``.
    pixel_type
        Output SimpleITK pixel type; ``None``: ``float32`` for linear and B-spline
        images, the input's type for masks and nearest neighbour.

    Returns
    -------
    SimpleITK.Image
        On ``reference``'s grid. Without a transform, an image already on that grid
        (within 1e-5 mm) is returned unchanged (cast to ``pixel_type``).

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.arange(8, dtype=np.int16).reshape(1, 1, 8))
    >>> ref = make_grid([15, 1, 1], [0.5, 1.0, 1.0], [0.0, 0.0, 0.0])
    >>> out = resample_onto(img, ref)
    >>> sitk.GetArrayViewFromImage(out)[0, 0, :4].tolist()
    [0.0, 0.5, 1.0, 1.5]
    """
    _check_choice("interpolator", interpolator, get_args(Interpolator))
    _check_choice("mask_method", mask_method, get_args(MaskMethod))
    if is_mask and interpolator == "bspline":
        raise ValueError(
            "a mask cannot be B-spline interpolated (it would invent label values); use "
            "mask_method='nearest' or 'threshold'"
        )
    if not 0.0 < mask_threshold <= 1.0:
        raise ValueError(f"mask_threshold {mask_threshold} must lie in (0, 1]")
    if is_mask:
        interp = sitk.sitkNearestNeighbor
        pixel = image.GetPixelID() if pixel_type is None else pixel_type
    else:
        interp = _INTERPOLATORS[interpolator]
        if pixel_type is not None:
            pixel = pixel_type
        elif interpolator == "nearest":
            pixel = image.GetPixelID()
        else:
            pixel = sitk.sitkFloat32
    if transform is None:
        if same_grid(image, reference):
            return image if image.GetPixelID() == pixel else sitk.Cast(image, pixel)
        transform = sitk.Transform()
    if is_mask and mask_method == "threshold":
        out = _threshold_mask(image, reference, transform, mask_threshold)
        return out if out.GetPixelID() == pixel else sitk.Cast(out, pixel)
    return sitk.Resample(image, reference, transform, interp, float(default), pixel)


def resample_image(
    image: sitk.Image,
    spacing: Sequence[float | None],
    *,
    is_mask: bool = False,
    interpolator: Interpolator = "linear",
    mask_method: MaskMethod = "nearest",
    mask_threshold: float = 0.5,
    align: Align = "origin",
    rounding: Rounding = "round",
    default: float = 0.0,
    pixel_type: int | None = None,
) -> sitk.Image:
    """``image`` on a grid of ``spacing`` (mm) covering the same physical extent.

    Origin (the first voxel's centre) and direction are kept; the size is the old
    extent divided by the new spacing, rounded, so the extent is kept within half a new
    voxel per side. See :func:`spacing_grid` for ``align`` and ``rounding`` and
    :func:`resample_onto` for the other parameters.

    Examples
    --------
    >>> img = sitk.Image([10, 10, 4], sitk.sitkUInt8)
    >>> img.SetSpacing((1.0, 1.0, 5.0))
    >>> out = resample_image(img, (2.0, 2.0, 2.0), is_mask=True)
    >>> out.GetSize(), out.GetSpacing(), out.GetPixelIDTypeAsString()
    ((5, 5, 10), (2.0, 2.0, 2.0), '8-bit unsigned integer')
    """
    grid = spacing_grid(image, spacing, align=align, rounding=rounding)
    return resample_onto(
        image,
        grid,
        is_mask=is_mask,
        interpolator=interpolator,
        default=default,
        mask_method=mask_method,
        mask_threshold=mask_threshold,
        pixel_type=pixel_type,
    )
