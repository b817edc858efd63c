"""Self-supervised pretraining of a 3D encoder on a cohort's own scans (SimCLR).

``hybridrad pretrain MANIFEST --out ENCODER_DIR`` builds the ROI-centred patch of every
case (the same patch code as deep-feature extraction), then trains a small MONAI 3D
ResNet with a contrastive NT-Xent loss: two randomly augmented views of each patch
(random crops, flips, axis permutations, voxel shifts, intensity scale/shift, noise; see
:func:`augment_batch`) must map to nearby embeddings and away from the other cases'
views. The result is an encoder directory (``encoder.pt``: the trunk's state dict, tensors only;
``encoder.json``: architecture, patch size, spacing, sequences, normalisation, the
sha256 of the training files, seed, loss history, versions) that
``hybridrad deep-features --encoder ENCODER_DIR`` reads. No labels are used. Masks are
read through the cohort's label map, as for deep features (a mask value the map does not
name is a :class:`~hybridrad.errors.MaskLabelError` naming the case).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridrad.features.deep import (
    Patch,
    PatchSpec,
    extract_patch,
    require_torch,
    resolve_device,
)
from hybridrad.io.manifest import Cohort
from hybridrad.provenance import file_sha256

log = logging.getLogger(__name__)

#: Default trunk: a 4-stage MONAI ResNet with one basic block per stage (~0.1 M weights).
DEFAULT_ARCH: dict[str, Any] = {
    "arch": "ResNet",
    "kwargs": {
        "block": "basic",
        "layers": [1, 1, 1, 1],
        "block_inplanes": [8, 16, 32, 64],
        "conv1_t_size": 3,
        "conv1_t_stride": 2,
        "no_max_pool": True,
    },
}


#: Stages pooled by default from a pretrained encoder: the texture-scale ones. On the
#: 60-case synthetic cohort (seed 0, 60 epochs; measured 2026-11-22, before random-crop
#: views) layer1+layer2 gave CV AUC(IDH) 0.72,
#: all four stages 0.61: the deep stages of a 32^3 patch mostly encode what tells the
#: training cases apart (gross shape), the shallow ones texture. ``--stages`` overrides.
DEFAULT_STAGES = ("layer1", "layer2")
#: Pooling preferred by pretrained encoders: ROI mean + SD. 96 synthetic cases, three
#: seeds, CV AUC(IDH): 0.63-0.71 against 0.61-0.69 for the ROI mean alone with a quick
#: L2 logistic; equal (mean 0.69) under the default study pipeline
#: (``benchmarks/deep_signal.py``).
DEFAULT_POOLING = "meanstd"


@dataclass
class PretrainConfig:
    """Self-supervised training settings (all recorded in ``encoder.json``).

    Parameters
    ----------
    epochs, batch_size, lr, weight_decay, temperature
        Optimisation (AdamW) and NT-Xent temperature.
    seed
        Seeds initialisation, shuffling and augmentation (CPU runs are reproducible).
    projection_dim
        Output size of the projection head (discarded after training).
    crop_fraction
        Each view is a random sub-cube of this fraction of the patch edge (SimCLR's
        random crop: two views then share the tumour's texture, not its exact layout);
        ``1.0``: whole patches, circularly shifted. On 96 synthetic cases, three seeds,
        0.6 raised the CV AUC(IDH) of the features from 0.50-0.58 to 0.62-0.77 (mean
        0.55 -> 0.69; default study pipeline, ``benchmarks/deep_signal.py``).
    max_minutes
        Stop after this wall-clock budget (``None``: run every epoch).
    """

    epochs: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    seed: int = 0
    projection_dim: int = 64
    crop_fraction: float = 0.6
    max_minutes: float | None = None
    arch: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ARCH))

    def __post_init__(self) -> None:
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(
                f"crop_fraction {self.crop_fraction}: give a fraction of the patch edge in (0, 1]"
            )


def training_data_sha256(paths: Sequence[Path]) -> str:
    """sha256 of the sorted sha256 digests of the training files."""
    digests = sorted(file_sha256(p) for p in paths)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def augment_batch(x: Any, n_image_channels: int, generator: Any, crop_fraction: float = 1.0) -> Any:
    """A random view of every patch of ``x`` ``(B, C, X, Y, Z)`` (batched, seeded).

    Spatial (all channels, the mask channel included), lattice-preserving so that voxels
    are copied, never interpolated (interpolation would blur the fine texture that the
    features should keep): a random sub-cube of ``crop_fraction`` of each edge (when
    < 1; MONAI ``RandSpatialCrop``), random flips about each axis, a random permutation of the
    axes (cubic patches) and a random integer shift of up to 1/8 of the patch (circular).
    Intensity (image channels): random scale (+-15 %), shift (+-0.15) and, in half the
    views, Gaussian noise (SD 0.03) - as MONAI ``RandFlip`` / ``RandRotate90`` /
    ``RandScaleIntensity`` / ``RandShiftIntensity`` / ``RandGaussianNoise`` do per
    sample, here for the whole batch at once.
    """
    torch = require_torch()

    def uniform(*shape: int) -> Any:
        return 2.0 * torch.rand(*shape, generator=generator) - 1.0

    views = []
    cube = len(set(x.shape[2:])) == 1
    edge = [max(4, round(crop_fraction * n)) for n in x.shape[2:]]
    for v in x:
        if crop_fraction < 1.0:
            lo = [
                int(torch.randint(0, n - e + 1, (1,), generator=generator))
                for n, e in zip(x.shape[2:], edge, strict=True)
            ]
            v = v[:, lo[0] : lo[0] + edge[0], lo[1] : lo[1] + edge[1], lo[2] : lo[2] + edge[2]]
        flip = [d + 1 for d in range(3) if bool(torch.rand(1, generator=generator) < 0.5)]
        if flip:
            v = torch.flip(v, dims=flip)
        if cube:
            perm = torch.randperm(3, generator=generator).tolist()
            v = v.permute(0, *(p + 1 for p in perm))
        max_shift = max(1, x.shape[2] // 8)
        shifts = torch.randint(-max_shift, max_shift + 1, (3,), generator=generator).tolist()
        views.append(torch.roll(v, shifts=shifts, dims=(1, 2, 3)))
    y = torch.stack(views)
    b = y.shape[0]
    img = y[:, :n_image_channels]
    img = img * (1.0 + 0.15 * uniform(b, 1, 1, 1, 1)) + 0.15 * uniform(b, 1, 1, 1, 1)
    noisy = (torch.rand(b, 1, 1, 1, 1, generator=generator) < 0.5).float()
    img = img + noisy * 0.03 * torch.randn(img.shape, generator=generator)
    return torch.cat([img, y[:, n_image_channels:]], dim=1).contiguous()


def nt_xent(z1: Any, z2: Any, temperature: float) -> Any:
    """The SimCLR loss of two ``(B, d)`` view embeddings."""
    torch = require_torch()
    import torch.nn.functional as F

    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def pretrain(
    cohort: Cohort,
    out: str | os.PathLike[str],
    *,
    patch: PatchSpec | None = None,
    config: PretrainConfig | None = None,
    name: str = "ssl",
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Train a contrastive (SimCLR) encoder on ``cohort``'s ROI patches; write ``out``.

    Parameters
    ----------
    cohort
        Cases with masks (no labels needed).
    out
        Encoder directory to write (``encoder.pt`` + ``encoder.json``).
    patch
        Patch settings (default: 32^3 voxels at 3 mm, z-score, the cohort's sequences,
        no mask channel).
    config
        Training settings.
    name
        Encoder name used in feature columns.
    device
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, checked before any case is read
        (:func:`~hybridrad.features.deep.resolve_device`).
    progress
        Progress bar over epochs.

    Returns
    -------
    dict
        The metadata written to ``encoder.json``.

    Raises
    ------
    DeviceError
        ``device`` is not available here.
    """
    torch = require_torch()
    dev = resolve_device(device)
    from torch import nn

    from hybridrad.features.encoders import ResNetStages, build_resnet, save_encoder_dir

    cfg = config or PretrainConfig()
    spec = patch or PatchSpec(
        size=(32, 32, 32),
        spacing=(3.0, 3.0, 3.0),
        sequences=tuple(cohort.sequences),
        mask_channel=False,
    )
    if not spec.sequences:
        spec = PatchSpec(**{**asdict(spec), "sequences": tuple(cohort.sequences)})
    if spec.per_sequence:
        raise ValueError("pretraining stacks sequences as channels; per_sequence is not supported")
    n_in = spec.channels_per_pass
    arch = {"arch": cfg.arch["arch"], "kwargs": {**cfg.arch["kwargs"], "n_input_channels": n_in}}
    label_map = cohort.label_map
    if spec.region is not None and spec.region not in label_map.regions:
        raise ValueError(
            f"region {spec.region!r} is not in label map {label_map.name!r} (regions: "
            f"{list(label_map.regions)}); pass the right --labels or --region"
        )

    patches: list[Patch] = []
    files: list[Path] = []
    for case in cohort:
        images = {s: case.read(s) for s in spec.sequences}
        inputs = {s: case.images.get(s) for s in spec.sequences} | {"mask": case.mask}
        patches.append(
            extract_patch(
                images,
                case.read_mask(),
                spec,
                case_id=case.case_id,
                files=inputs,
                label_map=label_map,
            )
        )
        files += [case.images[s] for s in spec.sequences] + ([case.mask] if case.mask else [])
    if len(patches) < 4:
        raise ValueError(f"pretraining needs at least 4 cases with masks, got {len(patches)}")
    data = [
        np.concatenate([p.image, p.roi[None]]) if spec.mask_channel else p.image for p in patches
    ]
    n_img = len(spec.sequences)

    start = time.perf_counter()
    history: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        trunk = build_resnet(arch["arch"], **arch["kwargs"])
        stages = ResNetStages(trunk)
        trunk.eval()
        with torch.no_grad():
            width = stages(torch.zeros(1, n_in, *spec.size))[-1].shape[1]
        trunk.train()
        head = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, cfg.projection_dim)
        )
        model = nn.ModuleDict({"trunk": trunk, "head": head}).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(cfg.seed)
        bs = max(2, min(cfg.batch_size, len(data)))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, desc="pretrain", unit="epoch", dynamic_ncols=True)
        model.train()
        for _epoch in range(cfg.epochs):
            order = torch.randperm(len(data), generator=gen).tolist()
            losses = []
            for b0 in range(0, len(order) - 1, bs):
                idx = order[b0 : b0 + bs]
                if len(idx) < 2:
                    continue
                batch = torch.from_numpy(np.stack([data[i] for i in idx]))
                v1 = augment_batch(batch, n_img, gen, cfg.crop_fraction).to(dev)
                v2 = augment_batch(batch, n_img, gen, cfg.crop_fraction).to(dev)
                z1 = head(stages(v1)[-1].mean(dim=(2, 3, 4)))
                z2 = head(stages(v2)[-1].mean(dim=(2, 3, 4)))
                loss = nt_xent(z1, z2, cfg.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            sched.step()
            history.append(round(float(np.mean(losses)), 5))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=history[-1], refresh=False)
            if cfg.max_minutes is not None and time.perf_counter() - start > 60 * cfg.max_minutes:
                log.info("pretraining stopped after %d epoch(s): time budget", len(history))
                break
        if bar is not None:
            bar.close()
    trunk.eval().cpu()
    meta = {
        "name": name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": arch,
        "patch": {**spec.to_dict(), "stages": list(DEFAULT_STAGES), "pooling": DEFAULT_POOLING},
        "training": {
            "method": "simclr (NT-Xent); crop/flip/axis-permutation/shift/intensity/noise views",
            **{k: v for k, v in asdict(cfg).items() if k != "arch"},
            "epochs_run": len(history),
            "loss_history": history,
            "seconds": round(time.perf_counter() - start, 1),
            "device": dev,
            "n_cases": len(data),
            "case_ids": list(cohort.case_ids),
            "data_sha256": training_data_sha256(files),
            "label_map": label_map.name,
            "label_map_definition": label_map.to_dict(),
        },
    }
    return save_encoder_dir(out, trunk, meta)
