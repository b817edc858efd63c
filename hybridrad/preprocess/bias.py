"""N4 bias-field correction.

MR images carry a smooth multiplicative intensity non-uniformity (the bias field) from
coil sensitivity: the same tissue is brighter near a receive coil than far from it.
Texture and first-order features read it as signal. N4 (Tustison et al. 2010, the ITK
implementation) fits the log of the field as a B-spline and divides it out.

N4 is fitted on a copy shrunk by ``shrink_factor`` (the field is smooth, so little is
lost, and the fit is ``shrink_factor**3`` times faster), and the fitted B-spline field is
then evaluated on the *original* grid (``GetLogBiasFieldAsImage``), so the output has the
input's size, spacing, origin and direction and full-resolution detail.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import HybridradWarning
from hybridrad.preprocess._checks import label, require_scalar
from hybridrad.preprocess.intensity import ConstantRegionError, mask_voxels

__all__ = ["NegativeIntensityWarning", "n4_bias_correction"]


class NegativeIntensityWarning(HybridradWarning):
    """N4 was given an image with negative intensities: MR magnitudes are >= 0, so the
    image was probably normalised (z-scored) already; N4 belongs before normalisation."""


def n4_bias_correction(
    image: sitk.Image,
    mask: sitk.Image | None = None,
    *,
    shrink_factor: int = 2,
    iterations: Sequence[int] = (50, 50, 50, 50),
    convergence: float = 1e-3,
    name: str | None = None,
) -> sitk.Image:
    """``image`` divided by its N4-estimated bias field.

    Parameters
    ----------
    image : SimpleITK.Image
        A scalar 2D or 3D MR image (any pixel type; intensities should be >= 0, as MR
        magnitudes are).
    mask : SimpleITK.Image, optional
        Where the field is fitted (nonzero inside), on the image's grid. ``None``: Otsu's
        threshold of the image (head against air). The correction is applied everywhere.
    shrink_factor : int
        Fit on the image shrunk by this factor along each axis (1: no shrinking).
    iterations : sequence of int
        Maximum iterations at each fitting level; the number of entries is the number of
        levels (the B-spline control grid doubles at each).
    convergence : float
        Stop a level when the change of the field falls below this.
    name : str, optional
        A case / sequence name for error messages.

    Returns
    -------
    SimpleITK.Image
        ``float32``, on the input's grid.

    Raises
    ------
    EmptyROIError
        The mask (given, or from Otsu) holds no voxel.
    ConstantRegionError
        The image holds one value inside the mask (blank): there is nothing to fit.

    Examples
    --------
    >>> arr = np.full((16, 16, 16), 100.0, np.float32)
    >>> arr[4:12, 4:12, 4:12] = 200.0
    >>> img = sitk.GetImageFromArray(arr * np.linspace(0.8, 1.2, 16)[None, None, :])
    >>> out = n4_bias_correction(img, iterations=(20,))
    >>> out.GetSize(), out.GetPixelID() == sitk.sitkFloat32
    ((16, 16, 16), True)
    """
    require_scalar(image, f"{label(name)}N4", dims=(2, 3))
    if shrink_factor < 1:
        raise ValueError(f"shrink_factor must be >= 1, got {shrink_factor}")
    if not iterations or min(iterations) < 1:
        raise ValueError(f"iterations must list >= 1 iterations per level, got {tuple(iterations)}")
    img = sitk.Cast(image, sitk.sitkFloat32)
    arr, _, _ = mask_voxels(img, None, name=name)  # NaN / infinity -> error
    if float(arr.max()) == float(arr.min()):
        raise ConstantRegionError(
            f"{label(name)}every voxel holds {float(arr.min()):g}: the image is blank and "
            "has no bias field to correct; check the file"
        )
    if mask is None:
        fit_mask = sitk.OtsuThreshold(img, 0, 1, 200)
        mask_voxels(img, fit_mask, name=name)  # empty -> EmptyROIError
    else:
        mask_voxels(img, mask, name=name)  # other grid / empty -> error
        fit_mask = sitk.Cast(mask != 0, sitk.sitkUInt8)
        fit_mask.CopyInformation(img)
    # anywhere, not only inside the mask: an image z-scored already has a negative
    # background while Otsu's mask keeps its bright, positive part
    n_negative = int(np.count_nonzero(arr < 0))
    if n_negative:
        warnings.warn(
            f"{label(name)}{n_negative} of {arr.size} voxels are negative (minimum "
            f"{float(arr.min()):g}): the image looks normalised already, and N4 models a "
            "multiplicative field on MR magnitudes (>= 0); run it on the raw image, before "
            "z-scoring, or leave bias_correction out for this cohort",
            NegativeIntensityWarning,
            stacklevel=2,
        )

    shrink = [int(shrink_factor)] * img.GetDimension()
    small = sitk.Shrink(img, shrink) if shrink_factor > 1 else img
    small_mask = sitk.Shrink(fit_mask, shrink) if shrink_factor > 1 else fit_mask
    if not sitk.GetArrayViewFromImage(small_mask).any():
        small, small_mask, shrink_factor = img, fit_mask, 1
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(i) for i in iterations])
    corrector.SetConvergenceThreshold(float(convergence))
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(img)
    out = sitk.Cast(img / sitk.Exp(log_field), sitk.sitkFloat32)
    out.CopyInformation(image)
    return out
