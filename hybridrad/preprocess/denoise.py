"""Edge-preserving denoising: curvature anisotropic diffusion.

Diffusion smooths noise inside regions while an edge of high contrast relative to
``conductance`` (in units of the local gradient) diffuses little, so boundaries keep their
position. The curvature variant (Whitaker & Xue) is ITK's choice for MR images: it
creates fewer staircase artefacts than Perona-Malik.

The explicit scheme ITK uses is stable only for a time step up to
``min(spacing) / 2**(d + 1)`` (``d`` the image dimension; 0.0625 for a 3D image of 1 mm
voxels); a larger one makes ITK warn and the result oscillate. ``time_step=None`` takes
that limit from the image's own spacing, so the same call is right at 0.5 mm and at 3 mm.
"""

from __future__ import annotations

import SimpleITK as sitk

from hybridrad.preprocess._checks import require_scalar

__all__ = ["denoise", "stable_time_step"]


def stable_time_step(image: sitk.Image) -> float:
    """The largest stable diffusion time step for ``image``:
    ``min(min(spacing), 1) / 2**(d+1)``.

    ITK's anisotropic diffusion is stable up to ``min(spacing) / 2**(d+1)``, and its
    curvature filter further up to ``0.5 / 2**d`` whatever the spacing (it warns above
    either), so voxels coarser than 1 mm do not allow a larger step.

    Examples
    --------
    >>> img = sitk.Image([8, 8, 8], sitk.sitkFloat32)
    >>> img.SetSpacing((1.0, 1.0, 2.0))
    >>> stable_time_step(img)
    0.0625
    >>> img.SetSpacing((1.5, 1.5, 3.0))
    >>> stable_time_step(img)
    0.0625
    >>> img.SetSpacing((0.5, 0.5, 1.0))
    >>> stable_time_step(img)
    0.03125
    """
    return min(float(min(image.GetSpacing())), 1.0) / 2.0 ** (image.GetDimension() + 1)


def denoise(
    image: sitk.Image,
    *,
    iterations: int = 5,
    time_step: float | None = None,
    conductance: float = 3.0,
) -> sitk.Image:
    """``image`` smoothed by curvature anisotropic diffusion.

    Parameters
    ----------
    image : SimpleITK.Image
        A scalar 2D or 3D image of any pixel type.
    iterations : int
        Diffusion iterations; the amount of smoothing grows with
        ``iterations * time_step``.
    time_step : float, optional
        ``None``: the stability limit :func:`stable_time_step` of this image. A larger
        value is refused (the explicit scheme would be unstable).
    conductance : float
        Edge sensitivity: lower keeps more edges (and more noise).

    Returns
    -------
    SimpleITK.Image
        ``float32`` on the input's grid.

    Examples
    --------
    >>> img = sitk.Image([8, 8, 8], sitk.sitkInt16)
    >>> out = denoise(img, iterations=2)
    >>> out.GetSize(), out.GetPixelID() == sitk.sitkFloat32
    ((8, 8, 8), True)
    """
    require_scalar(image, "denoise", dims=(2, 3))
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if not conductance > 0:
        raise ValueError(f"conductance must be > 0, got {conductance}")
    limit = stable_time_step(image)
    step = limit if time_step is None else float(time_step)
    if not 0 < step <= limit * (1 + 1e-9):
        raise ValueError(
            f"time_step {step} is outside (0, {limit:g}], the stability limit "
            "min(spacing) / 2**(dimension + 1) of this image; pass time_step=None to use "
            "the limit, and more iterations for more smoothing"
        )
    f = sitk.CurvatureAnisotropicDiffusionImageFilter()
    f.SetNumberOfIterations(int(iterations))
    f.SetTimeStep(step)
    f.SetConductanceParameter(float(conductance))
    out = f.Execute(sitk.Cast(image, sitk.sitkFloat32))
    out.CopyInformation(image)
    return out
