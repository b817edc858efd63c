"""Segmentation configuration: network, input geometry, training, inference, postprocessing.

A configuration is a YAML (or JSON) mapping with the sections of :class:`SegConfig`;
anything left out takes the default. See ``configs/segmentation/*.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hybridrad.io.yamlfile import read_mapping
from hybridrad.provenance import config_hash
from hybridrad.segment.errors import SegmentationConfigError

#: Networks from :mod:`monai.networks.nets` that may be named in ``network.name``.
NETWORKS: tuple[str, ...] = ("SegResNet", "UNet", "DynUNet")


@dataclass
class TrainingConfig:
    """Optimisation settings.

    Attributes
    ----------
    epochs
        Maximum number of epochs.
    batch_size
        Cases per batch (each yields ``samples_per_case`` random crops).
    samples_per_case
        Random crops per case and epoch, balanced 1:1 on tumour/background centres.
    lr, weight_decay
        AdamW settings (cosine learning-rate decay over ``epochs``).
    loss
        ``dice_ce`` (MONAI DiceCELoss, sigmoid) or ``dice_focal`` (DiceFocalLoss, sigmoid).
    val_fraction
        Fraction of the training manifest held out for validation Dice every epoch.
    patience
        Early stopping: epochs without a better validation Dice before stopping.
    seed
        Seed of every random choice (split, crops, augmentation, initial weights).
    amp
        Mixed precision on CUDA (ignored on CPU).
    augment
        Random flips and intensity scale/shift.
    """

    epochs: int = 60
    batch_size: int = 2
    samples_per_case: int = 2
    lr: float = 2e-3
    weight_decay: float = 1e-5
    loss: str = "dice_ce"
    val_fraction: float = 0.2
    patience: int = 15
    seed: int = 0
    amp: bool = True
    augment: bool = True


@dataclass
class InferenceConfig:
    """Sliding-window inference settings.

    Attributes
    ----------
    roi_size
        Window size (voxels, x y z); ``None`` uses the training crop size.
    sw_batch_size
        Windows evaluated per network call.
    overlap
        Window overlap fraction.
    mode
        Blending of overlapping windows: ``gaussian`` or ``constant``.
    tta
        Average the prediction over flips of the three axes (8 passes).
    crop_foreground
        Run the network only on the bounding box of the non-background voxels.
    threshold
        Probability threshold of each sigmoid channel.
    """

    roi_size: list[int] | None = None
    sw_batch_size: int = 4
    overlap: float = 0.25
    mode: str = "gaussian"
    tta: bool = False
    crop_foreground: bool = True
    threshold: float = 0.5


@dataclass
class PostprocessConfig:
    """Cleaning of the thresholded channels (MONAI transforms), per channel.

    Attributes
    ----------
    keep_largest
        Keep only the largest connected component (KeepLargestConnectedComponent).
    min_size
        Remove components smaller than this many voxels (RemoveSmallObjects; 0: off).
    fill_holes
        Fill enclosed holes (FillHoles).
    """

    keep_largest: bool = True
    min_size: int = 0
    fill_holes: bool = False


@dataclass
class SegConfig:
    """The whole segmentation configuration.

    Attributes
    ----------
    network
        MONAI network class name (``SegResNet``, ``UNet``, ``DynUNet``).
    network_kwargs
        Keyword arguments of the network besides ``spatial_dims``, ``in_channels`` and
        ``out_channels``.
    sequences
        Input sequences in channel order; ``None`` takes the manifest's.
    spacing
        Voxel spacing (mm, x y z) the network works at; ``None`` keeps each image's own.
    roi_size
        Training crop size (voxels, x y z); each a multiple of 8 for SegResNet. With
        ``spatial_dims: 2`` the last size is 1: the crop is one axial slice.
    spatial_dims
        3: a 3D network on patches; 2: a 2D network on axial slices (training samples
        slices, inference runs slice by slice with MONAI's ``SliceInferer``). 2D suits
        thick-slice scans (5 mm) such as routine clinical FLAIR.
    foreground_fraction
        A voxel is foreground (for cropping) when some channel exceeds this fraction of
        that channel's 99th percentile.
    margin
        Voxels added around the foreground bounding box.
    """

    name: str = "segmentation"
    network: str = "SegResNet"
    network_kwargs: dict[str, Any] = field(default_factory=lambda: {"init_filters": 8})
    sequences: list[str] | None = None
    spacing: list[float] | None = None
    roi_size: list[int] = field(default_factory=lambda: [64, 64, 64])
    spatial_dims: int = 3
    foreground_fraction: float = 0.1
    margin: int = 4
    training: TrainingConfig = field(default_factory=TrainingConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise SegmentationConfigError(
                f"unknown network {self.network!r}; choose one of {list(NETWORKS)}"
            )
        if self.spatial_dims not in (2, 3):
            raise SegmentationConfigError(
                f"spatial_dims must be 2 (axial slices) or 3, got {self.spatial_dims!r}"
            )
        if self.spatial_dims == 2:
            if len(self.roi_size) != 3 or any(int(r) < 8 for r in self.roi_size[:2]):
                raise SegmentationConfigError(
                    f"roi_size must be [x, y, 1] with x, y >= 8 for a 2D network, got "
                    f"{self.roi_size}"
                )
            if int(self.roi_size[2]) != 1:
                raise SegmentationConfigError(
                    f"a 2D network (spatial_dims: 2) works on single slices: roi_size must "
                    f"end in 1, got {self.roi_size}"
                )
        elif len(self.roi_size) != 3 or any(int(r) < 8 for r in self.roi_size):
            raise SegmentationConfigError(
                f"roi_size must be three sizes >= 8 (x y z), got {self.roi_size}"
            )
        if self.spacing is not None and (
            len(self.spacing) != 3 or any(float(s) <= 0 for s in self.spacing)
        ):
            raise SegmentationConfigError(
                f"spacing must be three positive values in mm, or null; got {self.spacing}"
            )
        if self.training.loss not in ("dice_ce", "dice_focal"):
            raise SegmentationConfigError(
                f"unknown loss {self.training.loss!r}; choose 'dice_ce' or 'dice_focal'"
            )
        if self.inference.mode not in ("gaussian", "constant"):
            raise SegmentationConfigError(
                f"inference.mode must be 'gaussian' or 'constant', got {self.inference.mode!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what is written into the model metadata)."""
        return asdict(self)

    @property
    def hash(self) -> str:
        """Short hash of :meth:`to_dict`."""
        return config_hash(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegConfig:
        """Build from a mapping; unknown keys are errors.

        Raises
        ------
        SegmentationConfigError
            An unknown key or an invalid value.
        """
        data = dict(data)
        sections: dict[str, type] = {
            "training": TrainingConfig,
            "inference": InferenceConfig,
            "postprocess": PostprocessConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, sub in sections.items():
            kwargs[key] = _build(sub, data.pop(key, None) or {}, key)
        top = _build(cls, data, "segmentation config", extra=kwargs)
        assert isinstance(top, SegConfig)
        return top

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> SegConfig:
        """Read a YAML/JSON configuration, or a shipped one by name (``glioma-flair``,
        ``synthetic`` ...: ``hybridrad/configs/segmentation/``); ``None`` gives the defaults.

        Raises
        ------
        FileNotFoundError
            Neither a file nor a shipped name.
        SegmentationConfigError
            The file is not a mapping, or holds an unknown key or invalid value.
        """
        if path is None:
            return cls()
        p = Path(path)
        shipped = Path(__file__).resolve().parents[1] / "configs" / "segmentation"
        if not p.is_file() and (shipped / f"{p.name}.yaml").is_file() and p.name == str(path):
            p = shipped / f"{p.name}.yaml"
        if not p.is_file():
            names = sorted(f.stem for f in shipped.glob("*.yaml"))
            raise FileNotFoundError(
                f"segmentation config not found: {p} (neither a file nor a shipped config: "
                f"{', '.join(names)})"
            )
        data = read_mapping(
            p, SegmentationConfigError, "segmentation config", "See configs/segmentation/."
        )
        data.setdefault("name", p.stem)
        return cls.from_dict(data)


def _build(cls: type, data: dict[str, Any], where: str, extra: dict[str, Any] | None = None) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SegmentationConfigError(
            f"unknown key(s) {unknown} in {where}; allowed: {sorted(names)}"
        )
    try:
        return cls(**data, **(extra or {}))
    except TypeError as exc:
        raise SegmentationConfigError(f"invalid {where}: {exc}") from exc
