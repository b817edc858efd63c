"""Brain extraction (skull stripping): deepbet when installed, else an intensity threshold.

Two methods produce a binary brain mask on the input image's own voxel grid:

``"deepbet"``
    The pretrained deepbet network (Fisch et al. 2024, ``pip install 'hybridrad[brain]'``).
    It runs offline on CPU in a few seconds per brain. The loading is explicit and
    trusted: :func:`torch.jit.load` of the two TorchScript files shipped *inside the
    installed deepbet package* (``deepbet/../data/models/model.pt`` and
    ``bbox_model.pt``); no path from a user or a configuration is ever loaded, and
    nothing is downloaded. The loaded networks are cached once per process and device.
``"threshold"``
    A plain, documented intensity method: Gaussian smoothing, Otsu threshold, an erosion
    that cuts thin bridges (scalp, skull, optic nerves), the largest connected component,
    a dilation back inside the threshold mask, a closing and hole filling. It is good on
    skull-stripped or high-contrast images (brain brighter than a dark gap around it);
    on raw heads it keeps more of the scalp than deepbet does.
``"auto"``
    deepbet when it can be imported, else the threshold method with one
    :class:`BrainExtractionFallbackWarning` saying why and how to install deepbet.

The deepbet network expects an array in nibabel's canonical RAS+ voxel order (the first
array axis increases towards the patient's Right, the second towards Anterior, the third
towards Superior). The image is brought there and back by a pure permutation and flip of
its voxel axes (:func:`to_canonical_array` / :func:`from_canonical_array`), chosen by
nibabel's own :func:`nibabel.orientations.io_orientation` on the image's affine, exactly
as deepbet does for a NIfTI file; no voxel is interpolated and no file is written.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.preprocess._checks import require_scalar

__all__ = [
    "INSTALL_HINT",
    "BrainExtractionError",
    "BrainExtractionFallbackWarning",
    "BrainMask",
    "DeepbetNotInstalledError",
    "deepbet_available",
    "extract_brain",
    "from_canonical_array",
    "threshold_brain_mask",
    "to_canonical_array",
]

INSTALL_HINT = "pip install 'hybridrad[brain]'"

Method = Literal["auto", "deepbet", "threshold"]
METHODS: tuple[str, ...] = ("auto", "deepbet", "threshold")

#: Parameters of the threshold method (millimetres), see :func:`threshold_brain_mask`.
SMOOTH_VOXELS = 0.75
ERODE_MM = 4.0
CLOSE_MM = 3.0


class BrainExtractionError(HybridradError, RuntimeError):
    """Brain extraction found no brain (blank image, no foreground, empty mask)."""


class DeepbetNotInstalledError(HybridradError, ImportError):
    """``method="deepbet"`` was asked for but deepbet (or torch / nibabel) cannot be imported."""


class BrainExtractionFallbackWarning(HybridradWarning):
    """``method="auto"`` fell back to the threshold method because deepbet is not importable."""


@dataclass(frozen=True)
class BrainMask:
    """A brain mask and how it was made.

    Attributes
    ----------
    mask
        ``sitkUInt8`` image, 1 inside the brain and 0 outside, on the input image's grid
        (same size, origin, spacing and direction).
    method
        ``"deepbet"`` or ``"threshold"``: the method that actually ran.
    volume_ml
        Mask volume in millilitres (voxel count x voxel volume / 1000).
    fallback_reason
        Why ``method="auto"`` did not use deepbet (``None`` when it did, or when a
        method was named explicitly).
    """

    mask: sitk.Image
    method: str
    volume_ml: float
    fallback_reason: str | None = None


# --- deepbet availability and loading ---------------------------------------------------------


def _import_deepbet() -> Any:
    """deepbet's ``BrainExtraction`` class; raises ImportError when it cannot be imported."""
    import nibabel  # noqa: F401  (deepbet's orientation convention; in the `brain` extra)
    from deepbet.bet import BrainExtraction

    return BrainExtraction


def _deepbet_import_error() -> str | None:
    """``None`` when deepbet imports, else the reason (the import error's message)."""
    try:
        _import_deepbet()
    except ImportError as exc:
        return f"deepbet cannot be imported ({exc})"
    return None


def deepbet_available() -> bool:
    """Whether deepbet (with torch and nibabel) can be imported here.

    Examples
    --------
    >>> isinstance(deepbet_available(), bool)
    True
    """
    return _deepbet_import_error() is None


def _resolve_device(device: str) -> str:
    """``"cpu"``, ``"cuda"`` / ``"cuda:N"`` (checked), or ``"auto"`` (cuda when available)."""
    import torch

    from hybridrad.errors import DeviceError

    text = str(device).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r}: CUDA is not available here; use device='cpu'")
        return text
    raise DeviceError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N; use 'cpu'")


class _Deepbet:
    """The two deepbet networks on one device, with a lock (deepbet keeps per-call state)."""

    def __init__(self, device: str) -> None:
        import torch

        brain_extraction = _import_deepbet()
        # BrainExtraction() with no model paths loads the installed package's own files:
        # f"{deepbet.utils.DATA_PATH}/models/model.pt" and ".../bbox_model.pt".
        with warnings.catch_warnings():  # torch >= 2.9 deprecates torch.jit.load itself
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
            self.bet = brain_extraction(no_gpu=True)
        target = torch.device(device)
        self.bet.model.to(target)
        self.bet.bbox_model.to(target)
        self.lock = threading.Lock()

    def predict(self, array: np.ndarray, threshold: float) -> np.ndarray:
        """Boolean brain mask of a float32 array in canonical RAS+ order."""
        with self.lock:
            probability = self.bet.run_model(np.ascontiguousarray(array, dtype=np.float32))
            binary = np.asarray(probability > threshold)
            if not binary.any():
                return binary
            mask = self.bet.postprocess(binary, 0)
        return np.asarray(mask, dtype=bool)


@functools.cache
def _load_deepbet(device: str) -> _Deepbet:
    """deepbet loaded once per process and device (an explicit cache, see module docs)."""
    return _Deepbet(device)


# --- orientation: SimpleITK grid <-> nibabel canonical RAS+ array ------------------------------


def _ras_affine(image: sitk.Image) -> np.ndarray:
    """The 4x4 voxel-index -> RAS+ millimetre affine of a 3D SimpleITK image.

    SimpleITK's physical space is LPS+; nibabel's is RAS+, so x and y change sign.
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    lps = direction @ np.diag(np.asarray(image.GetSpacing(), dtype=float))
    flip = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = flip @ lps
    affine[:3, 3] = flip @ np.asarray(image.GetOrigin(), dtype=float)
    return affine


def _orientation(image: sitk.Image) -> np.ndarray:
    from nibabel.orientations import io_orientation

    return np.asarray(io_orientation(_ras_affine(image)))


def to_canonical_array(image: sitk.Image) -> np.ndarray:
    """The voxels of a 3D image as a float32 array in nibabel's canonical RAS+ order.

    Equal to ``nibabel.as_closest_canonical(nifti).get_fdata()`` for the same image saved
    as NIfTI (the first axis increases towards patient Right, the second towards
    Anterior, the third towards Superior), computed without a file: a permutation and
    flip of the voxel axes only.

    Parameters
    ----------
    image
        A scalar 3D image.

    Returns
    -------
    numpy.ndarray
        float32 array indexed ``[R, A, S]``.
    """
    from nibabel.orientations import apply_orientation

    ijk = sitk.GetArrayViewFromImage(image).transpose(2, 1, 0)  # SimpleITK arrays are [k, j, i]
    canonical = apply_orientation(ijk, _orientation(image))
    return np.ascontiguousarray(canonical, dtype=np.float32)


def from_canonical_array(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """Inverse of :func:`to_canonical_array`: a canonical RAS+ mask back on ``reference``'s grid.

    Parameters
    ----------
    array
        Boolean or 0/1 array in the canonical RAS+ order of ``reference``.
    reference
        The image whose grid (size, origin, spacing, direction) the result takes.

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 image with ``reference``'s geometry.
    """
    from nibabel.orientations import apply_orientation, axcodes2ornt, ornt_transform

    back = ornt_transform(axcodes2ornt(("R", "A", "S")), _orientation(reference))
    ijk = apply_orientation(np.asarray(array), back)
    out = sitk.GetImageFromArray(np.ascontiguousarray(ijk.transpose(2, 1, 0), dtype=np.uint8))
    out.CopyInformation(reference)
    return out


# --- threshold method -------------------------------------------------------------------------


def _radius(spacing: tuple[float, ...], mm: float) -> list[int]:
    """Per-axis kernel radius (voxels) for ``mm`` millimetres; 0 along axes coarser than it."""
    return [int(np.floor(mm / s + 1e-6)) for s in spacing]


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold (maximum between-class variance) of a 1-D array."""
    low, high = float(values.min()), float(values.max())
    hist, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = hist.astype(float)
    w0 = np.cumsum(weight)
    w1 = w0[-1] - w0
    m0 = np.cumsum(weight * centres)
    mean0 = m0 / np.maximum(w0, 1e-12)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def threshold_brain_mask(image: sitk.Image, *, name: str = "image") -> sitk.Image:
    """A brain mask from intensities alone (the ``"threshold"`` method).

    Steps, all on the input grid:

    1. Gaussian smoothing (sigma = 0.75 voxel per axis) against noise;
    2. Otsu's threshold of the smoothed voxels (foreground = above it);
    3. binary erosion by 4 mm (per axis; no erosion along axes coarser than 4 mm), which
       cuts thin bridges from the brain to skull, scalp and vessels;
    4. the largest 26-connected component;
    5. binary dilation by the same radius plus one voxel, kept inside the step-2
       foreground (the extra voxel restores the corners an opening rounds off);
    6. binary closing by 3 mm, then 3D hole filling, then hole filling in each slice
       along the last axis (ventricles and cavities open at a truncated volume's edge).

    Parameters
    ----------
    image
        A scalar 3D image (any pixel type).
    name
        Named in error messages (a file or case id).

    Returns
    -------
    SimpleITK.Image
        ``sitkUInt8`` 0/1 mask on ``image``'s grid.

    Raises
    ------
    BrainExtractionError
        The image is constant or nothing survives the steps.
    """
    require_scalar(image, f"{name}: brain extraction")
    spacing = image.GetSpacing()
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if values.max() <= values.min():
        raise BrainExtractionError(
            f"{name}: the image is constant ({values.min():g}); no brain to extract. "
            "Check that the right file was given."
        )
    float_image = sitk.GetImageFromArray(values.astype(np.float32))
    float_image.CopyInformation(image)
    sigma = [SMOOTH_VOXELS * s for s in spacing]
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(float_image, sigma))
    foreground_arr = smooth > _otsu(smooth.ravel())
    foreground = sitk.GetImageFromArray(foreground_arr.astype(np.uint8))
    foreground.CopyInformation(image)

    erode = _radius(spacing, ERODE_MM)
    core = sitk.BinaryErode(foreground, erode, sitk.sitkBall, 0, 1) if any(erode) else foreground
    if not sitk.GetArrayViewFromImage(core).any():
        core = foreground  # too small to erode: keep the unbroken foreground
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(core, True), sortByObjectSize=True)
    largest = sitk.Equal(labels, 1)
    regrow = [r + 1 if r else 0 for r in erode]  # one voxel more: the opening's lost corners
    grown = sitk.BinaryDilate(largest, regrow, sitk.sitkBall, 0, 1) if any(erode) else largest
    brain = sitk.And(grown, foreground)

    close = _radius(spacing, CLOSE_MM)
    if any(close):
        brain = sitk.BinaryMorphologicalClosing(brain, close, sitk.sitkBall, 1, True)
    brain = sitk.BinaryFillhole(brain, fullyConnected=False, foregroundValue=1)
    arr = sitk.GetArrayFromImage(brain).astype(np.uint8)
    for k in range(arr.shape[0]):  # slice-wise fill along the last image axis
        slice_image = sitk.GetImageFromArray(arr[k])
        arr[k] = sitk.GetArrayFromImage(sitk.BinaryFillhole(slice_image, False, 1))
    if not arr.any():
        raise BrainExtractionError(
            f"{name}: the threshold method found no brain (nothing above Otsu's threshold "
            "survived); check the image, or install deepbet: " + INSTALL_HINT
        )
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    return out


# --- public entry point -----------------------------------------------------------------------


def _volume_ml(mask: sitk.Image) -> float:
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    return voxels * float(np.prod(mask.GetSpacing())) / 1000.0


def _deepbet_mask(image: sitk.Image, threshold: float, device: str, name: str) -> sitk.Image:
    model = _load_deepbet(_resolve_device(device))
    array = to_canonical_array(image)
    array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    if float(array.max()) <= float(array.min()):
        raise BrainExtractionError(
            f"{name}: the image is constant ({array.min():g}); no brain to extract. "
            "Check that the right file was given."
        )
    try:
        canonical_mask = model.predict(array, threshold)
    except (AssertionError, ValueError) as exc:  # deepbet found no foreground (bbox, components)
        raise BrainExtractionError(
            f"{name}: deepbet found no head in the image ({exc}); check the image, or try "
            "method='threshold'"
        ) from exc
    if not canonical_mask.any():
        raise BrainExtractionError(
            f"{name}: deepbet's brain probability never exceeds threshold={threshold:g}; "
            "check the image, lower the threshold, or try method='threshold'"
        )
    return from_canonical_array(canonical_mask, image)


def extract_brain(
    image: sitk.Image,
    *,
    method: Method = "auto",
    threshold: float = 0.5,
    device: str = "cpu",
    name: str = "image",
) -> BrainMask:
    """A brain mask of a 3D head (or already skull-stripped) MRI volume.

    Parameters
    ----------
    image
        A scalar 3D image, any pixel type, any orientation.
    method
        ``"deepbet"``, ``"threshold"`` or ``"auto"`` (deepbet when importable, else the
        threshold method with one :class:`BrainExtractionFallbackWarning`). See the
        module docstring for both methods. deepbet loads only the TorchScript files
        shipped inside the installed deepbet package (explicit, trusted; never a user
        path), once per process and device.
    threshold
        deepbet's brain-probability threshold, in (0, 1). Not used by the threshold method.
    device
        Torch device for deepbet: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    name
        Named in errors and warnings (a file or case id).

    Returns
    -------
    BrainMask
        The uint8 0/1 mask on ``image``'s grid, the method that ran, the volume (mL),
        and the reason for a fallback.

    Raises
    ------
    DeepbetNotInstalledError
        ``method="deepbet"`` and deepbet cannot be imported (the message names the fix).
    BrainExtractionError
        The image is constant, or no brain was found.
    ImageDimensionError
        The image is not a scalar 3D volume.
    ValueError
        ``method`` or ``threshold`` is invalid.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> z, y, x = np.mgrid[:32, :32, :32]
    >>> head = ((x - 16) ** 2 + (y - 16) ** 2 + (z - 16) ** 2 < 100).astype(np.float32)
    >>> result = extract_brain(sitk.GetImageFromArray(head * 100), method="threshold")
    >>> result.method, sitk.GetArrayFromImage(result.mask).sum() == head.sum()
    ('threshold', np.True_)
    """
    if method not in METHODS:
        raise ValueError(f"{name}: brain extraction method {method!r} is not one of {METHODS}")
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"{name}: deepbet threshold {threshold!r} must lie in (0, 1)")
    require_scalar(image, f"{name}: brain extraction")

    fallback_reason: str | None = None
    if method in ("auto", "deepbet"):
        reason = _deepbet_import_error()
        if reason is None:
            mask = _deepbet_mask(image, float(threshold), device, name)
            return BrainMask(mask=mask, method="deepbet", volume_ml=_volume_ml(mask))
        if method == "deepbet":
            raise DeepbetNotInstalledError(
                f"{name}: method='deepbet' but {reason}; install it with {INSTALL_HINT}, "
                "or use method='threshold'"
            )
        fallback_reason = reason
        warnings.warn(
            f"{name}: brain extraction falls back to the intensity-threshold method because "
            f"{reason}; for deepbet install {INSTALL_HINT}",
            BrainExtractionFallbackWarning,
            stacklevel=2,
        )
    mask = threshold_brain_mask(image, name=name)
    return BrainMask(
        mask=mask, method="threshold", volume_ml=_volume_ml(mask), fallback_reason=fallback_reason
    )
