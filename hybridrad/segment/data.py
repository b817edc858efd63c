"""Reading cases into MONAI tensors and the MONAI transform pipelines.

Images are read with :func:`hybridrad.io.read_image` (NIfTI, NRRD, MHA, DICOM),
reoriented to LPS and resampled to the model spacing with SimpleITK (MONAI's
``Orientation`` needs nibabel, which is not a dependency), and turned into
:class:`monai.data.MetaTensor` objects of shape ``(C, x, y, z)`` carrying the RAS
affine. Foreground cropping, normalisation, balanced random crops, flips and intensity
augmentation are MONAI transforms; predictions go back to the source grid by
:class:`monai.transforms.Invertd` (crop) and a nearest-neighbour SimpleITK resampling.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

try:
    import torch
    from monai.data import MetaTensor
    from monai.transforms import (
        Compose,
        CropForegroundd,
        MapTransform,
        NormalizeIntensityd,
        RandAffined,
        RandBiasFieldd,
        RandCropByPosNegLabeld,
        RandFlipd,
        RandGaussianNoised,
        RandScaleIntensityd,
        RandShiftIntensityd,
        SpatialPadd,
        SqueezeDimd,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"segmentation needs PyTorch and MONAI ({exc.name} is missing): "
        "pip install 'hybridrad[deep]'"
    ) from exc

from hybridrad.io.labels import LabelMap
from hybridrad.io.manifest import Case
from hybridrad.preprocess.resample import resample_onto as _resample_onto
from hybridrad.segment.config import SegConfig
from hybridrad.segment.errors import SegmentationInputError
from hybridrad.segment.labels import labels_to_channels

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_of(image: sitk.Image) -> np.ndarray:
    """The 4x4 RAS voxel-to-world matrix of a 3D SimpleITK image (index order x, y, z)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return _LPS_TO_RAS @ affine


def to_metatensor(arrays: Sequence[np.ndarray], reference: sitk.Image) -> MetaTensor:
    """Stack ``[z, y, x]`` arrays into a ``(C, x, y, z)`` float MetaTensor on ``reference``."""
    stacked = np.stack([np.asarray(a, dtype=np.float32).transpose(2, 1, 0) for a in arrays])
    return MetaTensor(
        torch.from_numpy(np.ascontiguousarray(stacked)),
        affine=torch.from_numpy(affine_of(reference)),
    )


def read_case(
    case: Case,
    sequences: Sequence[str],
    *,
    with_label: bool = False,
    spacing: Sequence[float] | None = None,
) -> tuple[MetaTensor, MetaTensor | None, sitk.Image, sitk.Image]:
    """Read the sequences (and optionally the mask) of ``case``.

    Parameters
    ----------
    case
        A manifest case.
    sequences
        Sequences in channel order.
    with_label
        Also read ``case.mask``.
    spacing
        Model spacing (mm, x y z): the tensors are resampled to it (see :func:`model_grid`).

    Returns
    -------
    image : MetaTensor
        ``(len(sequences), x, y, z)`` float32 on the model grid.
    label : MetaTensor or None
        ``(1, x, y, z)`` label values on the model grid, when ``with_label``.
    reference : SimpleITK.Image
        The first sequence: the geometry predicted masks are written in.
    grid : SimpleITK.Image
        The model grid the tensors are on (see :func:`model_grid`).

    Raises
    ------
    SegmentationInputError
        A sequence is missing, or the sequences (or mask) are on different voxel grids.
    hybridrad.errors.ImageDimensionError
        An image or the mask is not one 3D scalar volume (2D, 4D, several components per
        voxel), raised by :meth:`~hybridrad.io.manifest.Case.read` naming case and column.
    """
    missing = [s for s in sequences if s not in case.images]
    if missing:
        raise SegmentationInputError(
            f"case {case.case_id!r} has no image for sequence(s) {missing} (it has "
            f"{sorted(case.images)}); the model needs {list(sequences)}. Fill those "
            "columns of the manifest for this case, or drop the case."
        )
    # read_image refuses 2D, 4D and vector (RGB) files (ImageDimensionError naming the
    # case and column), so every image and mask here is one 3D scalar volume
    images = [case.read(s) for s in sequences]
    ref = images[0]
    for seq, img in zip(sequences[1:], images[1:], strict=True):
        if img.GetSize() != ref.GetSize():
            raise SegmentationInputError(
                f"case {case.case_id!r}: sequence {seq!r} has size {img.GetSize()} but "
                f"{sequences[0]!r} has {ref.GetSize()}; co-register/resample the sequences "
                "onto one grid (`hybridrad validate` lists every such case)."
            )
    mask = None
    if with_label:
        mask = case.read_mask()  # no ConstantImageWarning: empty masks are checked elsewhere
        if mask.GetSize() != ref.GetSize():
            raise SegmentationInputError(
                f"case {case.case_id!r}: mask size {mask.GetSize()} differs from the image "
                f"size {ref.GetSize()}; resample the mask onto the image grid."
            )
    image, label, grid = to_model_grid(images, mask, spacing)
    return image, label, ref, grid


def model_grid(reference: sitk.Image, spacing: Sequence[float] | None) -> sitk.Image:
    """The grid the network works on: ``reference`` reoriented to LPS (SimpleITK
    ``DICOMOrient``) and, when ``spacing`` is given, resampled to it (same extent)."""
    oriented = sitk.DICOMOrient(reference, "LPS")
    if spacing is None:
        return oriented
    old_sp = np.asarray(oriented.GetSpacing())
    new_sp = np.asarray(spacing, dtype=float)
    size = np.maximum(np.round(np.asarray(oriented.GetSize()) * old_sp / new_sp), 1).astype(int)
    # keep the centre of the field of view where it was
    direction = np.asarray(oriented.GetDirection()).reshape(3, 3)
    centre = np.asarray(oriented.GetOrigin()) + direction @ (
        (np.asarray(oriented.GetSize()) - 1) * old_sp / 2
    )
    origin = centre - direction @ ((size - 1) * new_sp / 2)
    grid = sitk.Image([int(v) for v in size], sitk.sitkUInt8)
    grid.SetSpacing([float(v) for v in new_sp])
    grid.SetDirection(oriented.GetDirection())
    grid.SetOrigin([float(v) for v in origin])
    return grid


def resample_onto(image: sitk.Image, grid: sitk.Image, *, nearest: bool) -> sitk.Image:
    """``image`` on the voxel grid of ``grid`` (identity transform in world space), keeping
    its pixel type; :func:`hybridrad.preprocess.resample.resample_onto` does the work."""
    return _resample_onto(
        image, grid, interpolator="nearest" if nearest else "linear", pixel_type=image.GetPixelID()
    )


def to_model_grid(
    images: Sequence[sitk.Image], mask: sitk.Image | None, spacing: Sequence[float] | None
) -> tuple[MetaTensor, MetaTensor | None, sitk.Image]:
    """Images (linear) and mask (nearest) on the model grid, as ``(C, x, y, z)`` tensors."""
    grid = model_grid(images[0], spacing)
    arrays = [
        sitk.GetArrayFromImage(resample_onto(sitk.Cast(i, sitk.sitkFloat32), grid, nearest=False))
        for i in images
    ]
    image = to_metatensor(arrays, grid)
    label = None
    if mask is not None:
        label = to_metatensor(
            [sitk.GetArrayFromImage(resample_onto(mask, grid, nearest=True))], grid
        )
    return image, label, grid


class ForegroundSelect:
    """Foreground for cropping: some channel above ``fraction`` of its 99th percentile.

    Picklable (a plain class) so that it can travel to worker processes.
    """

    def __init__(self, fraction: float = 0.1) -> None:
        self.fraction = fraction

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Boolean foreground of a ``(C, *spatial)`` tensor (same shape)."""
        x = torch.as_tensor(img, dtype=torch.float32)
        flat = x.reshape(x.shape[0], -1)
        k = max(1, int(0.99 * flat.shape[1]))
        q = flat.kthvalue(k, dim=1).values.reshape(-1, *([1] * (x.ndim - 1)))
        return (x > self.fraction * q).any(dim=0, keepdim=True).expand_as(x)


class LoadCased(MapTransform):
    """Read ``data["case"]`` (a :class:`Case`) into ``image`` and ``label`` MetaTensors."""

    def __init__(
        self,
        sequences: Sequence[str],
        with_label: bool = True,
        spacing: Sequence[float] | None = None,
    ) -> None:
        super().__init__(keys=["case"])
        self.sequences = list(sequences)
        self.with_label = with_label
        self.spacing = spacing

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a dict with ``image`` (and ``label``) added and ``case`` replaced by its id."""
        d = dict(data)
        case: Case = d.pop("case")
        image, label, _, _ = read_case(
            case, self.sequences, with_label=self.with_label, spacing=self.spacing
        )
        d["case_id"] = case.case_id
        d["image"] = image
        if label is not None:
            d["label"] = label
        return d


class LabelToRegionsd(MapTransform):
    """Replace a ``(1, *spatial)`` label map by one binary channel per region."""

    def __init__(self, keys: str, label_map: LabelMap) -> None:
        super().__init__(keys=[keys])
        self.label_map = label_map

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Convert each key; the MetaTensor's affine is kept."""
        d = dict(data)
        for key in self.key_iterator(d):
            lab = d[key]
            arr = labels_to_channels(np.rint(np.asarray(lab[0])).astype(np.int32), self.label_map)
            d[key] = MetaTensor(torch.from_numpy(arr.astype(np.float32)), meta=lab.meta)
        return d


def preprocess(config: SegConfig, *, with_label: bool, crop: bool = True) -> Compose:
    """Deterministic pipeline on ``{"image", "label"?}`` MetaTensors on the model grid.

    Cropping to the foreground box (``crop``; inverted by padding) and z-score
    normalisation of each channel over its non-zero voxels.
    """
    keys = ["image", "label"] if with_label else ["image"]
    steps: list[Any] = []
    if crop:
        steps.append(
            CropForegroundd(
                keys=keys,
                source_key="image",
                select_fn=ForegroundSelect(config.foreground_fraction),
                margin=config.margin,
                allow_smaller=True,
            )
        )
    steps.append(NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True))
    return Compose(steps)


def training_transforms(config: SegConfig, label_map: LabelMap) -> tuple[Compose, Compose]:
    """The cached deterministic part and the random part of the training pipeline."""
    det = Compose(
        [
            LoadCased(config.sequences or [], with_label=True, spacing=config.spacing),
            LabelToRegionsd("label", label_map),
            *preprocess(config, with_label=True).transforms,
        ]
    )
    keys = ["image", "label"]
    rand: list[Any] = [
        SpatialPadd(keys=keys, spatial_size=config.roi_size),
        RandCropByPosNegLabeld(
            keys=keys,
            label_key="label",
            spatial_size=config.roi_size,
            pos=1,
            neg=1,
            num_samples=config.training.samples_per_case,
            image_key="image",
            image_threshold=-np.inf,
        ),
    ]
    if config.spatial_dims == 2:
        # one axial slice per crop: drop the z axis of (C, x, y, 1)
        rand.append(SqueezeDimd(keys=keys, dim=3))
        if config.training.augment:
            rand += [
                RandFlipd(keys=keys, prob=0.5, spatial_axis=0),  # left-right
                RandAffined(
                    keys=keys,
                    prob=0.5,
                    rotate_range=np.pi / 12,
                    scale_range=0.1,
                    translate_range=8,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
                RandBiasFieldd(keys="image", prob=0.3, coeff_range=(0.0, 0.1)),
                RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
                RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
                RandGaussianNoised(keys="image", prob=0.15, std=0.05),
            ]
    elif config.training.augment:
        rand += [
            RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=2),
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
        ]
    return det, Compose(rand)


def validation_transforms(config: SegConfig, label_map: LabelMap) -> Compose:
    """Deterministic pipeline of validation cases (as inference sees them)."""
    return Compose(
        [
            LoadCased(config.sequences or [], with_label=True, spacing=config.spacing),
            LabelToRegionsd("label", label_map),
            *preprocess(config, with_label=True, crop=config.inference.crop_foreground).transforms,
        ]
    )
