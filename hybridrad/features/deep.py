"""Deep features: ROI-centred 3D patches through a pretrained encoder, pooled per stage.

For every case, a patch of ``size`` voxels at ``spacing`` mm is resampled (SimpleITK,
linear for images, nearest for the mask; world-axis aligned, i.e. LPS) around the
centre of the ROI's bounding box, normalised, and passed through an encoder
(:mod:`hybridrad.features.encoders`). Each selected stage is pooled over the ROI
(*masked global average pooling*: the ROI mask is area-downsampled to the stage's grid
and used as weights; an ROI that vanishes at a coarse stage falls back to the plain
mean) or over the whole patch; ``meanstd`` adds the ROI-weighted standard deviation of
every channel (statistics pooling: how much a filter's response varies inside the
tumour, i.e. texture energy, which a mean averages away). Several stages are
concatenated (multi-stage pooling).

Columns: ``deep__<encoder>__<stage>__<index>`` with a zero-padded index, e.g.
``deep__segresnet__enc4__0017`` (standard deviations: ``deep__segresnet__enc4-std__0017``);
with per-sequence passes the sequence is appended to the encoder name
(``deep__fmcib-flair__layer4__0001``). The weights' sha256, the patch
geometry and any warning go to the diagnostics table.

Edge cases (documented behaviour):

- the patch is centred on the ROI's bounding box; where its axes and spacing equal the
  image's, its origin snaps onto the image's voxel grid (voxels are copied, not
  interpolated: a sub-voxel shift would blur fine texture differently per case);
- an ROI at the image border: the part of the patch outside the image is padded (the
  raw background value 0, i.e. ``-1024`` HU for CT scaling) and
  ``patch__outside_fraction`` says how much;
- an ROI larger than the patch field of view: ``oversize="fit"`` (default) coarsens the
  spacing isotropically until the ROI (plus ``margin_mm``) fits, ``oversize="crop"``
  keeps the spacing and centre-crops; either way ``patch__warning`` says so;
- a patch whose channel count differs from the encoder's input channels raises
  :class:`~hybridrad.features.encoders.EncoderChannelError` naming both and the fix;
- an image or mask that is not one scalar 3D volume (2D, 4D, several components per
  voxel) raises :class:`~hybridrad.errors.ImageDimensionError`, an image with NaN/Inf
  voxels :class:`~hybridrad.errors.NonFiniteImageError`, naming the case and file;
- an encoder output with NaN/Inf features fails the case with
  :class:`NonFiniteFeatureError` (a row of the failures table), never a NaN cell;
- an encoder/stage choice that yields no feature at all is an
  :class:`~hybridrad.features.encoders.EncoderError` before any case is read;
- the device (:func:`resolve_device`) is checked before any case is read.

Masks are read through the cohort's label map as radiomics reads them
(:meth:`~hybridrad.io.labels.LabelMap.check_values`): a mask value the map does not name
fails the case with :class:`~hybridrad.errors.MaskLabelError` naming it, ``ignore``
values are background, and ``--region`` is a region of the map
(:meth:`~hybridrad.io.labels.LabelMap.region_mask`; ``binary``: every non-zero voxel).

The same per-case task runs on the cohort runner (cache, resume, failures, Dask) and in
the batched path of :func:`extract_deep`, which feeds a DataLoader with worker processes
(they die with the run) and writes the same per-case cache entries as each batch
finishes, under the same per-case locks as the runner: a killed run keeps every finished
batch, and runs sharing a cache never encode a case twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hybridrad.errors import (
    DeviceError,
    EmptyROIError,
    ExtractionError,
    ImageDimensionError,
    NonFiniteImageError,
)
from hybridrad.io.labels import LabelMap, load_label_map
from hybridrad.io.manifest import Case, Cohort
from hybridrad.preprocess.resample import Interpolator, make_grid, resample_onto
from hybridrad.provenance import canonical_json, file_sha256, library_versions
from hybridrad.runner import (
    CaseLocks,
    CaseOutput,
    CohortResult,
    ResultCache,
    _peak_rss_mb,
    init_worker,
    run_cohort,
    stage,
)

if TYPE_CHECKING:
    import torch

    from hybridrad.features.encoders import Encoder

log = logging.getLogger(__name__)

PREFIX = "deep"
SEP = "__"
INSTALL_HINT = "pip install 'hybridrad[deep]'"
DEEP_PACKAGES = ("hybridrad", "torch", "monai", "SimpleITK", "numpy")
Normalisation = Literal["zscore", "ct", "none"]
Oversize = Literal["fit", "crop"]
Pooling = Literal["masked", "meanstd", "mean"]
POOLINGS: tuple[str, ...] = get_args(Pooling)
#: Suffix of the stage name in the columns of masked standard deviations (``meanstd``).
STD_SUFFIX = "-std"
_F32 = npt.NDArray[np.float32]
#: Values ``--device`` accepts (:func:`resolve_device`).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


class NonFiniteFeatureError(ExtractionError):
    """An encoder gave NaN or infinite features for a case (the case fails)."""


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    """Versions that can change a deep feature (looked up once per process)."""
    return library_versions(DEEP_PACKAGES)


def require_torch() -> Any:
    """Import torch (and check MONAI), or raise an ImportError naming the extra."""
    try:
        import monai  # noqa: F401
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"deep features need PyTorch and MONAI ({exc.name} is missing): {INSTALL_HINT}"
        ) from exc
    return torch


def resolve_device(name: str) -> str:
    """The torch device ``name`` stands for, checked against this machine.

    ``auto``: ``cuda`` when CUDA is available, else ``cpu``; ``cpu``; ``cuda`` or
    ``cuda:N`` only when CUDA is available (and device ``N`` exists).

    Raises
    ------
    DeviceError
        CUDA was asked for but is not available, ``cuda:N`` does not exist, or ``name``
        is not one of the choices.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    hybridrad.errors.DeviceError: device 'tpu' is not one of auto, cpu, cuda, cuda:N; use --device cpu or auto
    """
    torch = require_torch()
    text = str(name).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise DeviceError(
            f"device {name!r} is not one of {', '.join(DEVICE_CHOICES)}; use --device cpu or auto"
        )
    if not torch.cuda.is_available():
        build = "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}"
        raise DeviceError(
            f"device {name!r}: CUDA is not available here (torch {torch.__version__} built "
            f"{build}, no usable GPU found); use --device cpu or auto"
        )
    if match.group(1) is None:
        return "cuda"
    index, count = int(match.group(1)), torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"device {name!r}: this machine has {count} CUDA device(s) (cuda:0 to "
            f"cuda:{count - 1}); use --device cpu or auto (or an existing cuda:N)"
        )
    return f"cuda:{index}"


def column_name(encoder: str, stage_name: str, index: int, width: int = 4) -> str:
    """Column of one pooled feature.

    Examples
    --------
    >>> column_name("segresnet", "enc4", 17)
    'deep__segresnet__enc4__0017'
    """
    return SEP.join((PREFIX, encoder, stage_name, f"{index:0{width}d}"))


# --- patches --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchSpec:
    """How the ROI-centred input patch is built.

    Parameters
    ----------
    size
        Patch size in voxels (x, y, z).
    spacing
        Patch spacing in mm (x, y, z).
    sequences
        Sequences in channel order (empty: the cohort's, or the encoder's).
    normalisation
        ``zscore`` (per sequence over the image's non-zero voxels; zeros stay zero, as
        MONAI ``NormalizeIntensity(nonzero=True)``), ``ct`` (``(HU + 1024) / 3072``
        clipped to [0, 1], FMCIB) or ``none``.
    mask_channel
        Append the ROI mask as an extra input channel.
    per_sequence
        Pass each sequence separately through a one-channel encoder (features per
        sequence) instead of stacking sequences as channels.
    region
        Label-map region used as ROI (``None``: every non-zero mask voxel).
    oversize
        ROI larger than the field of view: ``fit`` (coarser spacing) or ``crop``.
    margin_mm
        Context kept around the ROI when fitting.
    """

    size: tuple[int, int, int] = (32, 32, 32)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sequences: tuple[str, ...] = ()
    normalisation: Normalisation = "zscore"
    mask_channel: bool = False
    per_sequence: bool = False
    region: str | None = None
    oversize: Oversize = "fit"
    margin_mm: float = 5.0

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in _triple(self.size))
        spacing = tuple(float(v) for v in _triple(self.spacing))
        if min(size) < 4 or min(spacing) <= 0:
            raise ValueError(f"patch size {size} must be >= 4 and spacing {spacing} > 0")
        if self.normalisation not in ("zscore", "ct", "none"):
            raise ValueError(f"normalisation {self.normalisation!r}: use zscore, ct or none")
        if self.oversize not in ("fit", "crop"):
            raise ValueError(f"oversize {self.oversize!r}: use fit or crop")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "sequences", tuple(self.sequences))

    @property
    def channels_per_pass(self) -> int:
        """Input channels of one encoder pass."""
        n = 1 if self.per_sequence else len(self.sequences)
        return n + int(self.mask_channel)

    def channel_names(self) -> list[str]:
        """Names of the channels of one pass."""
        names = ["<sequence>"] if self.per_sequence else list(self.sequences)
        return names + (["mask"] if self.mask_channel else [])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _triple(value: Any) -> tuple[Any, Any, Any]:
    if isinstance(value, (int, float)):
        return (value, value, value)
    vals = tuple(value)
    if len(vals) == 1:
        return (vals[0], vals[0], vals[0])
    if len(vals) != 3:
        raise ValueError(f"expected 1 or 3 values, got {vals}")
    return (vals[0], vals[1], vals[2])


@dataclass
class Patch:
    """An extracted patch: ``image`` ``(C, x, y, z)``, ``roi`` ``(x, y, z)``, diagnostics."""

    image: _F32
    roi: _F32
    diagnostics: dict[str, Any] = field(default_factory=dict)


def roi_array(
    mask: sitk.Image,
    values: Sequence[int] | None = None,
    *,
    label_map: LabelMap | None = None,
    region: str | None = None,
    where: str = "mask",
) -> npt.NDArray[np.uint8]:
    """The ROI as a ``uint8`` image array.

    With ``label_map`` (how deep features read masks, as radiomics does): the mask's
    values are checked and read by :meth:`~hybridrad.io.labels.LabelMap.check_values`
    (a value the map does not name raises :class:`~hybridrad.errors.MaskLabelError`
    naming ``where``; ``ignore`` values are background), and the ROI is ``region``
    (:meth:`~hybridrad.io.labels.LabelMap.region_mask`) or, for ``region=None``, every
    non-zero voxel. Without it: the voxels whose value is in ``values`` (``None``: every
    non-zero voxel), unchecked.
    """
    return _roi(mask, values, label_map, region, where)[0]


def _roi(
    mask: sitk.Image,
    values: Sequence[int] | None,
    label_map: LabelMap | None,
    region: str | None,
    where: str,
) -> tuple[npt.NDArray[np.uint8], str]:
    """:func:`roi_array` and the label-map warning (``""`` when none; it is emitted too)."""
    arr = sitk.GetArrayViewFromImage(mask)
    if label_map is None:
        roi = np.isin(arr, list(values)) if values is not None else arr != 0
        return roi.astype(np.uint8), ""
    if values is not None:
        raise ValueError("give the ROI as label_map (and region) or as values, not both")
    checked, warning = label_map.read_values(arr, where)
    if warning is not None:
        warnings.warn(warning, stacklevel=3)
    roi = label_map.region_mask(checked, region) if region is not None else checked != 0
    return roi.astype(np.uint8), str(warning or "")


def _as_label_map(spec: LabelMap | Mapping[str, Any] | str | None) -> LabelMap:
    """A :class:`LabelMap` from a map, its ``to_dict`` form, a preset name or a YAML file
    (``None``: ``binary``)."""
    if spec is None:
        return LabelMap.preset("binary")
    if isinstance(spec, LabelMap):
        return spec
    if isinstance(spec, Mapping):
        return LabelMap.from_dict(spec)
    return load_label_map(spec)


def _roi_box(mask: sitk.Image, roi: npt.NDArray[np.uint8]) -> tuple[np.ndarray, np.ndarray]:
    """Centre and extent (mm, world x y z) of the ROI's bounding box."""
    idx = np.nonzero(roi)
    lo = np.array([i.min() for i in idx][::-1], dtype=float) - 0.5  # (x, y, z) index
    hi = np.array([i.max() for i in idx][::-1], dtype=float) + 0.5
    corners = np.array(
        [
            mask.TransformContinuousIndexToPhysicalPoint(
                [
                    float(c)
                    for c in (lo[0] if a else hi[0], lo[1] if b else hi[1], lo[2] if c else hi[2])
                ]
            )
            for a in (0, 1)
            for b in (0, 1)
            for c in (0, 1)
        ]
    )
    return (corners.min(0) + corners.max(0)) / 2, corners.max(0) - corners.min(0)


def _snap(origin: np.ndarray, spacing: np.ndarray, reference: sitk.Image) -> np.ndarray:
    """Shift ``origin`` (< half a voxel) onto ``reference``'s voxel grid when the patch
    grid and the image grid have the same axes and spacing, so that resampling copies
    voxels instead of interpolating them (which would blur fine texture by a random
    sub-voxel shift per case)."""
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    if not np.allclose(direction, np.eye(3), atol=1e-6) or not np.allclose(
        spacing, reference.GetSpacing(), rtol=1e-6
    ):
        return origin
    ref_origin = np.asarray(reference.GetOrigin())
    return ref_origin + np.round((origin - ref_origin) / spacing) * spacing


def _zscore_stats(image: sitk.Image) -> tuple[float, float]:
    arr = sitk.GetArrayViewFromImage(image)
    vals = arr[arr != 0]
    if vals.size == 0:
        return 0.0, 1.0
    mean = float(vals.mean(dtype=np.float64))
    sd = float(np.sqrt(np.mean(np.square(vals - mean, dtype=np.float64))))
    return mean, sd if sd > 0 else 1.0


def _outside_fraction(
    reference: sitk.Image, size: Sequence[int], origin: np.ndarray, spacing: np.ndarray
) -> float:
    """Fraction of the patch's voxel centres (identity-direction grid) that fall outside
    ``reference``'s voxels (continuous index outside ``[-0.5, n - 0.5]`` on any axis)."""
    ref_dir = np.asarray(reference.GetDirection()).reshape(3, 3)
    ref_sp = np.asarray(reference.GetSpacing())
    to_index = np.linalg.inv(ref_dir * ref_sp)  # world offset -> continuous index
    base = to_index @ (origin - np.asarray(reference.GetOrigin()))
    steps = to_index * spacing  # column a: index change per patch step along axis a
    inside = np.ones(tuple(int(n) for n in size), dtype=bool)
    grids = np.meshgrid(*(np.arange(int(n)) for n in size), indexing="ij", sparse=True)
    for r, n in enumerate(reference.GetSize()):
        cont = base[r] + sum(steps[r, a] * grids[a] for a in range(3))
        inside &= (cont >= -0.5) & (cont <= n - 0.5)
    return float(1.0 - inside.mean())


def normalise(arr: _F32, image: sitk.Image, method: Normalisation) -> _F32:
    """Intensity normalisation of a resampled patch (statistics from the whole image)."""
    if method == "zscore":
        mean, sd = _zscore_stats(image)
        return np.where(arr != 0, (arr - mean) / sd, 0.0).astype(np.float32)
    if method == "ct":
        return np.clip((arr + 1024.0) / 3072.0, 0.0, 1.0).astype(np.float32)
    return arr.astype(np.float32)


def _check_volume(
    image: sitk.Image, what: str, case_id: str, file: Any, *, voxels: bool = False
) -> None:
    """One scalar 3D volume (and, with ``voxels``, finite voxel values), or an error
    naming the case, the image and its file."""
    where = f"case {case_id!r}: {what}" + (f" ({file})" if file else "")
    dim, comps, size = image.GetDimension(), image.GetNumberOfComponentsPerPixel(), image.GetSize()
    if dim != 3:
        fix = (
            "a 2D slice cannot be used: give the 3D volume"
            if dim < 3
            else "keep one 3D volume of the series (one file per volume or sequence)"
        )
        raise ImageDimensionError(
            f"{where} is a {dim}D image (size {list(size)}); deep features need one 3D "
            f"volume per sequence and a 3D mask; {fix}"
        )
    if comps != 1:
        raise ImageDimensionError(
            f"{where} has {comps} components per voxel (RGB or vector image); deep features "
            "need one scalar 3D volume per sequence: write one file per channel"
        )
    if voxels:
        arr = sitk.GetArrayViewFromImage(image)
        if arr.dtype.kind == "f":
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                raise NonFiniteImageError(
                    f"{where} has {bad} NaN/Inf voxel(s) of {arr.size}; fix the file or "
                    "replace them (e.g. with the background value) before extraction"
                )


def extract_patch(
    images: Mapping[str, sitk.Image],
    mask: sitk.Image,
    spec: PatchSpec,
    values: Sequence[int] | None = None,
    case_id: str = "",
    files: Mapping[str, Any] | None = None,
    *,
    label_map: LabelMap | None = None,
) -> Patch:
    """Resample the ROI-centred patch of every sequence in ``spec.sequences`` and the ROI.

    Parameters
    ----------
    images
        Sequence name -> image (need not share the mask's grid: resampling is in world
        coordinates).
    mask
        Label mask.
    spec
        Patch settings.
    values
        Mask labels of the ROI, unchecked (``None``: all non-zero); prefer ``label_map``.
    case_id
        For messages.
    files
        Sequence name (and ``"mask"``) -> file, for messages.
    label_map
        How to read the mask (as radiomics does, see :func:`roi_array`): its values are
        checked, and the ROI is ``spec.region`` of the map (``None``: every non-zero
        voxel). A label-map warning (ignored values) goes to ``patch__label_warning``.

    Returns
    -------
    Patch
        ``image`` ``(len(sequences), x, y, z)`` float32 and ``roi`` ``(x, y, z)``.

    Raises
    ------
    ImageDimensionError
        An image or the mask is not one scalar 3D volume (2D, 4D, vector).
    NonFiniteImageError
        An image holds NaN or infinite voxels.
    MaskLabelError
        The mask holds a value ``label_map`` does not name, or a non-integer value.
    EmptyROIError
        The ROI has no voxel.
    """
    files = files or {}
    _check_volume(mask, "the mask", case_id, files.get("mask"), voxels=True)
    for seq in spec.sequences:
        _check_volume(images[seq], f"sequence {seq!r}", case_id, files.get(seq), voxels=True)
    mask_file = files.get("mask")
    where = f"case {case_id!r}: mask" + (f" {mask_file}" if mask_file else "")
    roi, label_warning = _roi(mask, values, label_map, spec.region, where)
    if not roi.any():
        if label_map is not None and spec.region is not None and not label_map.nonzero:
            what = f"region {spec.region!r}: values {list(label_map.regions[spec.region])}"
        elif values:
            what = f"labels {list(values)}"
        else:
            what = "non-zero"
        raise EmptyROIError(
            f"case {case_id!r}: the ROI ({what} mask voxels) is empty; fix the mask, or "
            "choose another --region"
        )
    centre, extent = _roi_box(mask, roi)
    size = np.asarray(spec.size, dtype=float)
    spacing = np.asarray(spec.spacing, dtype=float)
    fov = size * spacing
    need = extent + 2 * spec.margin_mm
    warning = ""
    scale = 1.0
    if np.any(extent > fov):
        if spec.oversize == "fit":
            scale = float(np.max(need / fov))
            spacing = spacing * scale
            warning = (
                f"ROI extent {np.round(extent, 1).tolist()} mm exceeds the patch field of view "
                f"{np.round(fov, 1).tolist()} mm; resampled at {np.round(spacing, 3).tolist()} mm "
                "to fit (oversize='fit')"
            )
        else:
            warning = (
                f"ROI extent {np.round(extent, 1).tolist()} mm exceeds the patch field of view "
                f"{np.round(fov, 1).tolist()} mm; centre-cropped (oversize='crop')"
            )
    origin = centre - (size - 1) / 2 * spacing
    origin = _snap(origin, spacing, mask)
    isize = [int(v) for v in spec.size]

    grid = make_grid(isize, spacing.tolist(), origin.tolist())  # identity direction

    def resample(img: sitk.Image, interp: Interpolator, default: float, pixel: int) -> _F32:
        out = resample_onto(
            img,
            grid,
            is_mask=interp == "nearest",
            interpolator=interp,
            default=default,
            pixel_type=pixel,
        )
        return sitk.GetArrayFromImage(out).transpose(2, 1, 0).astype(np.float32)

    pad = -1024.0 if spec.normalisation == "ct" else 0.0
    channels = []
    for seq in spec.sequences:
        img = images[seq]
        raw = resample(img, "linear", pad, sitk.sitkFloat32)
        channels.append(normalise(raw, img, spec.normalisation))
    roi_img = sitk.GetImageFromArray(roi)
    roi_img.CopyInformation(mask)
    roi_patch = resample(roi_img, "nearest", 0.0, sitk.sitkUInt8)
    roi_vox = int(roi.sum())
    kept = float(roi_patch.sum() * np.prod(spacing) / (roi_vox * np.prod(mask.GetSpacing())))
    diag: dict[str, Any] = {
        "patch__size": list(isize),
        "patch__spacing_mm": [round(float(v), 4) for v in spacing],
        "patch__scale": round(scale, 4),
        "patch__centre_mm": [round(float(v), 2) for v in centre],
        "patch__roi_extent_mm": [round(float(v), 2) for v in extent],
        "patch__roi_voxels": roi_vox,
        "patch__roi_fraction_kept": round(min(kept, 1.0), 4),
        "patch__outside_fraction": round(_outside_fraction(mask, isize, origin, spacing), 4),
        "patch__warning": warning,
    }
    if label_warning:
        diag["patch__label_warning"] = label_warning
    return Patch(
        np.stack(channels) if channels else np.zeros((0, *isize), np.float32), roi_patch, diag
    )


# --- pooling ------------------------------------------------------------------------------------------


def pool_stage(
    feature: torch.Tensor, roi: torch.Tensor | None, *, std: bool = False
) -> torch.Tensor:
    """Masked (``roi`` given) or plain global average of ``(B, C, *spatial)`` -> ``(B, C)``.

    The ROI ``(B, 1, *patch)`` is area-downsampled to the stage grid and used as weights;
    where it vanishes the plain mean is used. ``std=True`` returns the (ROI-weighted)
    standard deviation of every channel instead of its mean.
    """
    torch = require_torch()
    import torch.nn.functional as F

    feature = feature.float()
    if feature.ndim == 2:
        return torch.zeros_like(feature) if std else feature
    dims = tuple(range(2, feature.ndim))
    if roi is None or feature.ndim != 5:
        w = torch.ones_like(feature[:, :1])
    else:
        grid = (int(feature.shape[2]), int(feature.shape[3]), int(feature.shape[4]))
        w = F.adaptive_avg_pool3d(roi.float(), grid)
        w = torch.where(w.sum(dim=dims, keepdim=True) > 1e-6, w, torch.ones_like(w))
    total = w.sum(dim=dims)
    mean = (feature * w).sum(dim=dims) / total
    if not std:
        return mean
    centred = feature - mean[(...,) + (None,) * len(dims)]
    return ((centred * centred * w).sum(dim=dims) / total).sqrt()


# --- the task -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def torch_settings(threads: int | None, deterministic: bool = True) -> Iterator[None]:
    """Fixed intra-op threads and deterministic algorithms, restored afterwards."""
    torch = require_torch()
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


@dataclass
class DeepFeatureTask:
    """The per-case deep-feature job (picklable; the encoder is rebuilt per process).

    Parameters
    ----------
    encoder
        Encoder spec string (see :func:`~hybridrad.features.encoders.resolve_encoder`)
        or an :class:`~hybridrad.features.encoders.Encoder`.
    patch
        Patch settings; unset fields (``None`` here) take the encoder's preferences
        (e.g. 50^3 at 1 mm with CT scaling for FMCIB, the model grid for a
        segmentation encoder).
    stages
        Stages to pool and concatenate (default: the encoder's preference, else all).
    pooling
        ``masked`` (ROI-weighted global average), ``meanstd`` (ROI-weighted mean and
        standard deviation) or ``mean`` (whole-patch average); ``None``: the encoder's
        preference (``meanstd`` for segmentation encoders), else ``masked``.
    label_map
        How masks are read (the cohort's label map): a
        :class:`~hybridrad.io.labels.LabelMap`, its :meth:`~hybridrad.io.labels.LabelMap.to_dict`
        form or a preset name (``None``: ``binary``, every non-zero voxel). Mask values
        are checked against it as radiomics does (a value it does not name fails the
        case with :class:`~hybridrad.errors.MaskLabelError`), and ``patch.region`` is one
        of its regions (``None``: every non-zero voxel). Part of the cache key.
    device
        ``cpu``, ``cuda`` or ``auto``.
    threads
        Intra-op CPU threads while the encoder runs (fixed, for reproducibility).
    amp
        bf16 autocast on CUDA (``None``: on when running on CUDA). Ignored on CPU.
    trust_code
        Allow TorchScript encoder files, which run the code they contain
        (``--trust-code``); see :func:`~hybridrad.features.encoders.load_torchscript`.
    """

    encoder: Any = None
    patch: PatchSpec | None = None
    stages: tuple[str, ...] = ()
    pooling: Pooling | None = None
    label_map: LabelMap | Mapping[str, Any] | str | None = None
    device: str = "cpu"
    threads: int | None = 1
    amp: bool | None = None
    trust_code: bool = False
    stage_name: str = "deep"
    _encoder: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_torch()
        self.label_map = _as_label_map(self.label_map)
        from hybridrad.features.encoders import Encoder, resolve_encoder

        enc = resolve_encoder(self.encoder, trust_code=self.trust_code)
        self._encoder = enc
        if not isinstance(self.encoder, (Encoder, str)):
            self.encoder = str(self.encoder) if self.encoder is not None else None
        prefs = enc.patch
        base = self.patch or PatchSpec(
            size=prefs.get("size", (32, 32, 32)),
            spacing=prefs.get("spacing", (1.0, 1.0, 1.0)),
            sequences=tuple(prefs.get("sequences") or ()),
            normalisation=prefs.get("normalisation", "zscore"),
            mask_channel=bool(prefs.get("mask_channel", False)),
        )
        self.patch = base
        self._choose_stages()
        if self.pooling is None:
            self.pooling = cast(Pooling, prefs.get("pooling", "masked"))
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r}: use one of {', '.join(POOLINGS)}")
        if base.region is not None and base.region not in self.labels.regions:
            raise ValueError(
                f"region {base.region!r} is not in label map {self.labels.name!r} (regions: "
                f"{list(self.labels.regions)}); pass the right --labels or --region"
            )
        if base.sequences:
            self.check_channels()

    def with_sequences(self, sequences: Sequence[str]) -> DeepFeatureTask:
        """This task with ``patch.sequences`` set when it was empty (and its stages chosen)."""
        assert self.patch is not None
        if not self.patch.sequences:
            self.patch = replace(self.patch, sequences=tuple(sequences))
            self.check_channels()
        self._choose_stages()
        return self

    def _choose_stages(self) -> None:
        """Choose the pooled stages: the requested ones, else the encoder's preference,
        else all of its stages.

        An encoder that has not named its stages (TorchScript) is first run once on a
        zero patch of the task's shape, so that its stages are known before any case is
        read (choosing from an empty list of names used to pool nothing: 0 features).
        Deferred while neither the patch's sequences nor the encoder's input channels are
        known (:meth:`with_sequences` calls it again).

        Raises
        ------
        EncoderError
            A requested stage does not exist, or the choice yields no feature.
        """
        from hybridrad.features.encoders import EncoderError

        enc, spec = self.encoder_module, self.spec
        if not enc.stage_names:
            channels = spec.channels_per_pass if spec.sequences else enc.in_channels
            if not channels:
                return
            if spec.sequences:
                self.check_channels()  # the clearer message for a channel mismatch
            enc.name_stages(channels, spec.size)
        stages = tuple(self.stages or enc.patch.get("stages") or enc.stage_names)
        unknown = [s for s in stages if s not in enc.stage_names]
        if unknown:
            raise EncoderError(
                f"encoder {enc.name!r} has no stage(s) {unknown}; its stages are "
                f"{enc.stage_names}: give --stages from those (default: all)"
            )
        if not stages:
            raise EncoderError(
                f"encoder {enc.name!r} has no stage to pool, so it would yield 0 features; "
                "use an encoder whose forward returns feature maps (a tensor, a list or a "
                "dict of tensors)"
            )
        self.stages = stages

    def check_channels(self) -> None:
        """Raise :class:`EncoderChannelError` when patch and encoder channels differ."""
        from hybridrad.features.encoders import EncoderChannelError

        enc, spec = self.encoder_module, self.patch
        assert spec is not None
        if enc.in_channels is None or enc.in_channels == spec.channels_per_pass:
            return
        want = enc.patch.get("sequences")
        hint = f"give --sequences {','.join(want)}" if want else "choose --sequences accordingly"
        fixes = [hint]
        if enc.in_channels == spec.channels_per_pass + 1 and not spec.mask_channel:
            fixes.append("add --mask-channel")
        if enc.in_channels == spec.channels_per_pass - 1 and spec.mask_channel:
            fixes.append("drop --mask-channel")
        if enc.in_channels == 1 + int(spec.mask_channel) and not spec.per_sequence:
            fixes.append("use --per-sequence (one pass per sequence)")
        fixes.append("or use an encoder built for these channels")
        raise EncoderChannelError(
            f"encoder {enc.name!r} expects {enc.in_channels} input channel(s)"
            + (f" ({', '.join(want)})" if want else "")
            + f" but the patch has {spec.channels_per_pass} ({', '.join(spec.channel_names())}); "
            + "; ".join(fixes)
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if isinstance(self.encoder, str) or self.encoder is None:
            state["_encoder"] = None  # rebuilt lazily in each worker
        return state

    @property
    def encoder_module(self) -> Encoder:
        """The loaded encoder (loaded on first use in each process)."""
        if self._encoder is None:
            from hybridrad.features.encoders import resolve_encoder

            self._encoder = resolve_encoder(self.encoder, trust_code=self.trust_code)
        enc: Encoder = self._encoder
        return enc

    @property
    def spec(self) -> PatchSpec:
        """The patch settings."""
        assert self.patch is not None
        return self.patch

    @property
    def labels(self) -> LabelMap:
        """The label map masks are read with."""
        assert isinstance(self.label_map, LabelMap)
        return self.label_map

    # --- runner protocol -----------------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """Everything besides the input files that determines the output."""
        enc = self.encoder_module
        return {
            "stage": self.stage_name,
            "encoder": {"name": enc.name, "weights_sha256": enc.weights_sha256, **enc.source},
            "patch": self.spec.to_dict(),
            "label_map": self.labels.to_dict(),
            "stages": list(self.stages),
            "pooling": self.pooling,
            "precision": "bf16" if self._use_amp(self._device()) else "float32",
            "versions": dict(_versions()),
        }

    def input_paths(self, case: Case) -> dict[str, Path | None]:
        """The files this task reads for ``case``."""
        files: dict[str, Path | None] = {s: case.images.get(s) for s in self.spec.sequences}
        files["mask"] = case.mask
        return files

    def input_hashes(self, case: Case) -> dict[str, str]:
        """SHA-256 of each input file of ``case`` (missing files are left out)."""
        files = self.input_paths(case)
        return {k: file_sha256(p) for k, p in files.items() if p is not None and p.exists()}

    def cache_key(self, case: Case) -> str:
        """Content-addressed key: input hashes + plan (encoder weights, patch, versions)."""
        payload = canonical_json({"inputs": self.input_hashes(case), "plan": self.plan()})
        return hashlib.sha256(payload.encode()).hexdigest()

    def cost(self, case: Case) -> int:
        """Relative cost (input bytes), to start the largest cases first."""
        return sum(p.stat().st_size for p in self.input_paths(case).values() if p and p.is_file())

    def __call__(self, case: Case) -> CaseOutput:
        patch = self.prepare(case)
        x, roi = self.batch_tensors([patch])
        with stage("encode"):
            features = self.encode(x, roi)[0]
            self.check_finite(case.case_id, features)
        return self.output(case, patch, features, path="per-case")

    # --- steps shared by the per-case and the batched paths ------------------------------------------

    def prepare(self, case: Case) -> Patch:
        """Read ``case`` and build its normalised patch (numpy; no torch).

        The sha256 of every input file goes into the patch's diagnostics here, so that
        the batched path hashes in its reader processes.
        """
        spec = self.spec
        with stage("read"):
            hashes = self.input_hashes(case)
            mask = case.read_mask()
            images = {s: case.read(s) for s in spec.sequences}
        with stage("patch"):
            patch = extract_patch(
                images,
                mask,
                spec,
                case_id=case.case_id,
                files=self.input_paths(case),
                label_map=self.labels,
            )
        patch.diagnostics.update({f"sha256__{k}": v for k, v in hashes.items()})
        return patch

    def batch_tensors(self, patches: Sequence[Patch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack patches into the model input ``(B, P, C, x, y, z)`` and ROI ``(B, 1, ...)``.

        ``P`` is the number of passes (1, or one per sequence with ``per_sequence``).
        """
        torch = require_torch()
        spec = self.spec
        xs = []
        for p in patches:
            img, roi = p.image, p.roi[None]
            if spec.per_sequence:
                passes = [img[i : i + 1] for i in range(img.shape[0])]
            else:
                passes = [img]
            if spec.mask_channel:
                passes = [np.concatenate([q, roi]) for q in passes]
            xs.append(np.stack(passes))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(xs)))
        roi_t = torch.from_numpy(np.ascontiguousarray(np.stack([p.roi[None] for p in patches])))
        return x, roi_t

    def _device(self) -> str:
        return resolve_device(self.device)

    def check_finite(self, case_id: str, features: Mapping[str, float]) -> None:
        """Raise :class:`NonFiniteFeatureError` when any feature of a case is NaN/Inf."""
        bad = [k for k, v in features.items() if not np.isfinite(v)]
        if bad:
            raise NonFiniteFeatureError(
                f"case {case_id!r}: encoder {self.encoder_module.name!r} gave {len(bad)} "
                f"non-finite (NaN/Inf) feature(s) of {len(features)} (first: {bad[0]}); check "
                "the case's images for NaN/Inf or extreme values, and the encoder's weights"
            )

    def _use_amp(self, device: str) -> bool:
        return device.startswith("cuda") and (self.amp is None or self.amp)

    def encode(self, x: torch.Tensor, roi: torch.Tensor) -> list[dict[str, float]]:
        """Run the encoder on ``(B, P, C, x, y, z)`` and pool: one feature dict per case."""
        torch = require_torch()
        enc = self.encoder_module
        spec = self.spec
        device = self._device()
        cuda = device.startswith("cuda")
        b, n_pass = x.shape[0], x.shape[1]
        if enc.in_channels is not None and x.shape[2] != enc.in_channels:
            self.check_channels()
        enc.to(device)
        enc.eval()
        flat = x.reshape(b * n_pass, *x.shape[2:]).to(device, non_blocking=cuda)
        rois = roi.to(device, non_blocking=cuda).repeat_interleave(n_pass, dim=0)
        if cuda:
            cast(Any, enc).to(memory_format=torch.channels_last_3d)
            flat = flat.contiguous(memory_format=torch.channels_last_3d)
        amp = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self._use_amp(device)
            else contextlib.nullcontext()
        )
        with torch_settings(None if cuda else self.threads), torch.inference_mode(), amp:
            stages = enc(flat)
            weights = None if self.pooling == "mean" else rois
            pooled: dict[str, np.ndarray] = {}
            for name, f in zip(enc.stage_names, stages, strict=True):
                if name not in self.stages:
                    continue
                kinds = [(name, False)]
                if self.pooling == "meanstd":
                    kinds.append((name + STD_SUFFIX, True))
                for label, std in kinds:
                    pooled[label] = (
                        pool_stage(f, weights, std=std)
                        .float()
                        .reshape(b, n_pass, -1)
                        .cpu()
                        .numpy()
                        .astype(np.float64)
                    )
        if not pooled or not any(arr.shape[2] for arr in pooled.values()):
            from hybridrad.features.encoders import EncoderError

            raise EncoderError(
                f"encoder {enc.name!r} yielded 0 features for stages {list(self.stages)} (its "
                f"stages: {enc.stage_names}); choose --stages from its stages"
            )
        labels = (
            [f"{enc.name}-{sanitize(s)}" for s in spec.sequences]
            if spec.per_sequence
            else [enc.name]
        )
        out: list[dict[str, float]] = [{} for _ in range(b)]
        for name, arr in pooled.items():
            width = max(4, len(str(arr.shape[2] - 1)))
            for i in range(b):
                for k, label in enumerate(labels):
                    for j, v in enumerate(arr[i, k]):
                        out[i][column_name(label, name, j, width)] = float(v)
        return out

    def output(
        self, case: Case, patch: Patch, features: dict[str, float], *, path: str
    ) -> CaseOutput:
        """Assemble the case's features and diagnostics (weights hash, patch, versions)."""
        enc = self.encoder_module
        diag: dict[str, Any] = {
            "encoder": enc.name,
            "encoder__kind": enc.source.get("kind", ""),
            "encoder__path": enc.source.get("path", ""),
            "encoder__weights_sha256": enc.weights_sha256,
            "encoder__stages": ",".join(self.stages),
            "pooling": self.pooling,
            "patch__sequences": ",".join(self.spec.sequences),
            "patch__normalisation": self.spec.normalisation,
            "patch__mask_channel": self.spec.mask_channel,
            "patch__per_sequence": self.spec.per_sequence,
            "patch__region": self.spec.region or "nonzero",
            "patch__label_map": self.labels.name,
            **patch.diagnostics,  # geometry, warnings and the input hashes (from prepare)
            "deep__path": path,
            "deep__threads": self.threads if not self._device().startswith("cuda") else 0,
            **{f"versions__{k}": v for k, v in _versions().items()},
        }
        return CaseOutput(features=features, diagnostics=diag)


def sanitize(name: str) -> str:
    """Column-safe name (see :func:`hybridrad.features.encoders.sanitize_name`)."""
    from hybridrad.features.encoders import sanitize_name

    return sanitize_name(name)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


# --- batched path -------------------------------------------------------------------------------------


class _PatchDataset:
    """Map-style dataset: case index -> (case_id, Patch or the exception it raised)."""

    def __init__(self, task: DeepFeatureTask, cases: Sequence[Case]) -> None:
        self.task = task
        self.cases = list(cases)

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int) -> tuple[str, Patch | BaseException]:
        case = self.cases[i]
        try:
            return case.case_id, self.task.prepare(case)
        except Exception as exc:  # reported per case, like the runner does
            import pickle

            try:
                pickle.dumps(exc)
            except Exception:
                wrapped = RuntimeError(f"{type(exc).__name__}: {exc}")
                wrapped.hybridrad_stage = getattr(exc, "hybridrad_stage", "prepare")  # type: ignore[attr-defined]
                return case.case_id, wrapped
            return case.case_id, exc


def _collate(items: list[tuple[str, Patch | BaseException]]) -> list[tuple[str, Any]]:
    return items


def _worker_init(_: int, parent_pid: int | None = None) -> None:
    """Set up a DataLoader worker: it dies with the process that started it
    (``parent_pid``, taken there; see :func:`~hybridrad.runner.init_worker`), and
    SimpleITK, BLAS and torch use one thread each (the workers provide the parallelism)."""
    init_worker(parent_pid)
    torch = require_torch()
    torch.set_num_threads(1)


@dataclass
class _Precomputed:
    """Runner task that hands out results computed by the batched path.

    Lets :func:`run_cohort` do the bookkeeping (failures table, ordering, waiting for
    cases another run holds) for batched results exactly as for per-case ones. A case
    without a batched result (another run held it, then failed on it) is computed here,
    per case. ``handed`` records the cases asked for.
    """

    task: DeepFeatureTask
    results: dict[str, CaseOutput | BaseException]
    keys: dict[str, str]
    stage_name: str = "deep"
    handed: set[str] = field(default_factory=set)

    def __call__(self, case: Case) -> CaseOutput:
        self.handed.add(case.case_id)
        res = self.results.get(case.case_id)
        if res is None:
            return self.task(case)
        if isinstance(res, BaseException):
            raise res
        return res

    def cache_key(self, case: Case) -> str:
        return self.keys.get(case.case_id) or self.task.cache_key(case)

    def cost(self, case: Case) -> int:
        return 0

    def plan(self) -> dict[str, Any]:
        return self.task.plan()


@dataclass
class _Claims(CaseLocks):
    """The batched path's hold on cases in a shared cache: the runner's
    :class:`~hybridrad.runner.CaseLocks`, plus :meth:`done`, which stores a finished case's
    output and lets its lock go.

    A case another run holds, or whose entry appeared meanwhile, is not taken: the final
    runner pass reads it from the cache, or computes it when that run failed on it.
    """

    stored: set[str] = field(default_factory=set)

    def take(self, case: Case) -> bool:
        taken = self.claim(case)
        if taken is False:
            log.info("case %s: computed by another run; left to it", case.case_id)
        return taken is True

    def done(self, case_id: str, output: CaseOutput | BaseException) -> None:
        key = self.keys.get(case_id)
        try:
            if self.cache is not None and key is not None and isinstance(output, CaseOutput):
                self.cache.put(key, output)  # written before the lock goes
                if self.cache.stamp(key) is not None:
                    self.stored.add(case_id)
        except OSError as exc:  # the final runner pass stores it (or says why not)
            log.warning("case %s: cache entry not written now (%s)", case_id, exc)
        finally:
            self.release(case_id)


class _ClaimingBatches:
    """Batch sampler of the DataLoader: batches of indices of the cases :class:`_Claims`
    could take, claimed in this (the main) process as the loader asks for them, i.e. a
    few batches ahead of the encoder, never the whole cohort up front."""

    def __init__(self, cases: Sequence[Case], batch_size: int, claims: _Claims, bar: Any) -> None:
        self.cases = list(cases)
        self.batch_size = batch_size
        self.claims = claims
        self.bar = bar

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for i, case in enumerate(self.cases):
            if self.claims.take(case):
                batch.append(i)
            elif self.bar is not None:
                self.bar.update(1)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def extract_deep(
    cohort: Cohort,
    encoder: Any = None,
    *,
    patch: PatchSpec | None = None,
    stages: Sequence[str] | None = None,
    pooling: Pooling | None = None,
    batch_size: int = 8,
    num_workers: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    amp: bool | None = None,
    jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    trust_code: bool = False,
) -> CohortResult:
    """Deep features of every case of ``cohort`` (cases need masks).

    Parameters
    ----------
    cohort
        The cases.
    encoder
        Encoder spec or :class:`~hybridrad.features.encoders.Encoder` (default: the
        shipped segmentation model's encoder).
    patch
        Patch settings (default: the encoder's preferences, the cohort's sequences).
    stages, pooling
        Stages to pool and concatenate; ``masked``, ``meanstd`` or ``mean`` pooling
        (``None``: the encoder's preference, see :class:`DeepFeatureTask`).
    batch_size
        Cases per encoder call. ``1`` (or ``jobs > 1`` / ``scheduler``) runs the
        per-case task on the cohort runner instead.
    num_workers
        DataLoader worker processes reading and resampling cases (batched path).
        ``None``: one per available CPU core, at most 4 (0 on a single core or inside a
        daemonic process, which may not start children).
    device
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, checked (:func:`resolve_device`)
        before anything else. On CUDA: pinned memory, bf16 autocast (``amp``),
        channels-last-3d.
    threads
        Intra-op CPU threads of the encoder, fixed for the run. ``None``: on the batched
        CPU path, the cores left over by the DataLoader workers (at least 1), so that
        readers and encoder do not oversubscribe the cores; otherwise all of this
        process's.
    jobs, scheduler
        Per-case path on local processes or a Dask cluster (see :func:`run_cohort`).
    cache_dir
        Per-case cache shared by both paths; a rerun recomputes nothing finished. The
        batched path stores each case as soon as its batch is done (a killed run keeps
        every finished batch) and encodes only the cases whose lock it takes, as the
        runner does: a case another run sharing the cache is computing is read from the
        cache once that run is done with it (or computed per case if it failed).
    progress
        Progress bar.
    trust_code
        Allow a TorchScript encoder file, which runs the code it contains; only for
        files from people you trust (``--trust-code``).

    Returns
    -------
    CohortResult
        Features ``deep__<encoder>__<stage>__<index>``, diagnostics, failures.

    Raises
    ------
    DeviceError
        ``device`` is not available (before any case is read).
    UntrustedCodeError
        The encoder is a TorchScript file and ``trust_code`` is false.
    EncoderError
        The encoder cannot be loaded, or its stages yield no feature.
    """
    start = time.perf_counter()
    torch = require_torch()
    device = resolve_device(device)
    batched = batch_size > 1 and jobs <= 1 and scheduler is None
    cores = available_cores()
    if num_workers is None:
        import multiprocessing

        daemon = multiprocessing.current_process().daemon  # may not start worker processes
        num_workers = min(cores, 4) if batched and cores > 1 and not daemon else 0
    if threads is None and jobs > 1:
        threads = 1
    elif threads is None and batched and num_workers > 0 and not device.startswith("cuda"):
        threads = max(1, cores - num_workers)  # CPU encoder beside the readers
    task = DeepFeatureTask(
        encoder=encoder,
        patch=patch,
        stages=tuple(stages or ()),
        pooling=pooling,
        label_map=cohort.label_map,
        device=device if (jobs <= 1 and scheduler is None) else "cpu",
        threads=threads or torch.get_num_threads(),
        amp=amp,
        trust_code=trust_code,
    ).with_sequences(cohort.sequences)
    missing = [s for s in task.spec.sequences if s not in cohort.sequences]
    if missing:
        from hybridrad.features.encoders import EncoderChannelError

        raise EncoderChannelError(
            f"encoder {task.encoder_module.name!r} reads sequence(s) "
            f"{list(task.spec.sequences)} but the cohort has {list(cohort.sequences)} "
            f"(missing {missing}); use an encoder built for the cohort's sequences (e.g. "
            "`hybridrad pretrain` on this cohort, or a 1-channel encoder with --per-sequence), "
            "or add the missing sequence(s) to the manifest"
        )
    if not batched:
        return run_cohort(
            cohort, task, jobs=jobs, scheduler=scheduler, cache_dir=cache_dir, progress=progress
        )
    cache = ResultCache(cache_dir) if cache_dir is not None else None
    keys: dict[str, str] = {}
    stamps: dict[str, tuple[int, int] | None] = {}
    todo: list[Case] = []
    for case in cohort:
        if cache is not None:
            try:
                keys[case.case_id] = task.cache_key(case)
            except Exception:
                todo.append(case)
                continue
            stamps[case.case_id] = cache.stamp(keys[case.case_id])
            if cache.get(keys[case.case_id]) is not None:
                continue
        todo.append(case)
    claims = _Claims(cache, keys, stamps)
    try:
        results = _run_batched(task, todo, batch_size, num_workers, progress, claims)
    finally:
        claims.release_all()
    precomputed = _Precomputed(task, results, keys)
    result = run_cohort(cohort, precomputed, cache_dir=cache_dir)
    # cases the batched path computed and stored are cache hits to the runner: count
    # them as computed by this run
    batched_here = len(claims.stored - precomputed.handed)
    result.n_cached -= batched_here
    result.n_computed += batched_here
    result.seconds = time.perf_counter() - start
    return result


def _run_batched(
    task: DeepFeatureTask,
    cases: Sequence[Case],
    batch_size: int,
    num_workers: int,
    progress: bool,
    claims: _Claims | None = None,
) -> dict[str, CaseOutput | BaseException]:
    """Encode ``cases`` in batches through a DataLoader; per-case outputs or exceptions.

    Only the cases ``claims`` takes are read and encoded (all of them without a cache);
    each finished case goes to the cache as soon as its batch is done, so a killed run
    keeps every finished batch.
    """
    if not cases:
        return {}
    torch = require_torch()
    from torch.utils.data import DataLoader

    claims = claims or _Claims(None, {})
    by_id = {c.case_id: c for c in cases}
    cuda = task._device().startswith("cuda")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cases), desc=task.stage_name, unit="case", dynamic_ncols=True)
    loader: DataLoader[Any] = DataLoader(
        _PatchDataset(task, cases),  # type: ignore[arg-type]
        batch_sampler=_ClaimingBatches(cases, batch_size, claims, bar),
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=False,
        worker_init_fn=(
            functools.partial(_worker_init, parent_pid=os.getpid()) if num_workers > 0 else None
        ),
        persistent_workers=False,
        prefetch_factor=2 if num_workers > 0 else None,
    )
    results: dict[str, CaseOutput | BaseException] = {}
    for items in loader:
        batch: dict[str, CaseOutput | BaseException] = {}
        ok = [(cid, p) for cid, p in items if isinstance(p, Patch)]
        for cid, p in items:
            if not isinstance(p, Patch):
                batch[cid] = p
        if ok:
            start = time.perf_counter()
            try:
                x, roi = task.batch_tensors([p for _, p in ok])
                if cuda:
                    x, roi = x.pin_memory(), roi.pin_memory()
                with stage("encode"):
                    feats = task.encode(x, roi)
            except Exception as exc:
                for cid, _ in ok:
                    batch[cid] = exc
            else:
                per_case = round((time.perf_counter() - start) / len(ok), 4)
                for (cid, p), f in zip(ok, feats, strict=True):
                    try:
                        with stage("encode"):
                            task.check_finite(cid, f)
                    except NonFiniteFeatureError as exc:
                        batch[cid] = exc
                        continue
                    out = task.output(by_id[cid], p, f, path=f"batched:{len(ok)}")
                    out.diagnostics["deep__encode_seconds"] = per_case
                    out.diagnostics["deep__num_workers"] = num_workers
                    out.diagnostics["runner__seconds"] = per_case
                    out.diagnostics["runner__peak_rss_mb"] = round(_peak_rss_mb(), 1)
                    batch[cid] = out
        for cid, res in batch.items():
            claims.done(cid, res)  # cached now (successes), lock let go
        results.update(batch)
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        bar.close()
    del torch
    return results
