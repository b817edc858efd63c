"""Input checks the preprocessing functions share."""

from __future__ import annotations

import SimpleITK as sitk

from hybridrad.errors import ImageDimensionError


def require_scalar(image: sitk.Image, what: str, dims: tuple[int, ...] = (3,)) -> None:
    """Raise :class:`~hybridrad.errors.ImageDimensionError` unless ``image`` is a scalar
    image of one of ``dims`` dimensions; ``what`` names the operation (and the case)."""
    dim, comps = image.GetDimension(), image.GetNumberOfComponentsPerPixel()
    if dim not in dims or comps != 1:
        want = " or ".join(f"{d}D" for d in dims)
        raise ImageDimensionError(
            f"{what} needs a scalar {want} image, got a {dim}D image with {comps} "
            "component(s) per voxel; pass one volume (one sequence, one time point: split "
            "4D series first)"
        )


def label(name: str | None) -> str:
    """``"name: "`` to start an error message with, or ``""``."""
    return f"{name}: " if name else ""
