"""Training of a segmentation model on a cohort (CPU or GPU).

MONAI transforms and a cached dataset, random crops balanced on the label, DiceCE (or
DiceFocal) loss on sigmoid region channels, AdamW with cosine decay, AMP on CUDA,
validation Dice every epoch, early stopping, a checkpoint after every epoch (resume
with ``resume=True``), a fixed seed and a progress bar.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    from monai.data import CacheDataset, DataLoader, Dataset
    from monai.losses import DiceCELoss, DiceFocalLoss
    from monai.metrics import DiceMetric
    from monai.utils import set_determinism
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"segmentation needs PyTorch and MONAI ({exc.name} is missing): "
        "pip install 'hybridrad[deep]'"
    ) from exc

from hybridrad.io.manifest import Cohort
from hybridrad.provenance import library_versions
from hybridrad.segment.config import SegConfig
from hybridrad.segment.data import training_transforms, validation_transforms
from hybridrad.segment.errors import SegmentationInputError
from hybridrad.segment.infer import predict_probabilities
from hybridrad.segment.model import (
    FORMAT,
    build_network,
    save_weights,
    training_data_hash,
    weights_path,
    write_metadata,
)

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_STATE = "checkpoint.json"


def split_cases(case_ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train/validation split of case ids (at least one of each when possible)."""
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(sorted(case_ids)))
    n_val = round(len(order) * val_fraction) if val_fraction > 0 else 0
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def _loss(config: SegConfig) -> torch.nn.Module:
    if config.training.loss == "dice_focal":
        return DiceFocalLoss(sigmoid=True, batch=True)
    return DiceCELoss(sigmoid=True, batch=True)


def evaluate_dice(
    network: torch.nn.Module, dataset: Any, config: SegConfig, device: torch.device
) -> list[float]:
    """Mean Dice per region channel of ``network`` over a preprocessed ``dataset``."""
    metric = DiceMetric(include_background=True, reduction="mean_batch", ignore_empty=False)
    network.eval()
    roi = config.inference.roi_size or config.roi_size
    settings = replace(config.inference, tta=False)
    for item in dataset:
        prob = predict_probabilities(network, item["image"][None], roi, settings, device)
        pred = (prob > settings.threshold).float().cpu()
        metric(y_pred=pred, y=torch.as_tensor(item["label"])[None])
    value = metric.aggregate()
    assert isinstance(value, torch.Tensor)
    return [float(v) for v in value]


def train_model(
    cohort: Cohort,
    out_dir: str | os.PathLike[str],
    config: SegConfig | None = None,
    *,
    val_cohort: Cohort | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train a segmentation model and write it to ``out_dir``.

    Parameters
    ----------
    cohort
        Training cases; every case needs the sequences and a mask.
    out_dir
        Model directory to write (``model.pt``, ``model.json``, checkpoint files).
    config
        Settings (default :class:`SegConfig`); ``config.sequences=None`` takes the
        manifest's sequences.
    val_cohort
        Validation cases; default: ``config.training.val_fraction`` of ``cohort``.
    resume
        Continue from ``out_dir/checkpoint.pt`` (same config and data required).
    device
        ``cpu``, ``cuda`` or ``auto``.
    progress
        Show a progress bar (epochs, loss, validation Dice) on stderr.
    max_minutes
        Stop after the epoch that crosses this wall-clock budget.

    Returns
    -------
    dict
        The metadata written to ``model.json``.

    Raises
    ------
    SegmentationInputError
        A case without mask, or missing sequences.
    """
    cfg = config or SegConfig()
    cfg = replace(cfg, sequences=list(cfg.sequences or cohort.sequences))
    sequences: list[str] = list(cfg.sequences or [])
    label_map = cohort.label_map
    unmasked = [c.case_id for c in cohort if c.mask is None]
    if unmasked:
        raise SegmentationInputError(
            f"training needs a mask for every case; {unmasked[:5]} have none. Fill the "
            "'mask' column of the manifest or drop those cases."
        )
    missing = [s for s in sequences if s not in cohort.sequences]
    if missing:
        raise SegmentationInputError(
            f"config asks for sequences {missing} that manifest {cohort.source} lacks "
            f"(it has {list(cohort.sequences)}); fix `sequences:` in the config."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tr = cfg.training
    dev = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    )
    use_amp = tr.amp and dev.type == "cuda"

    if val_cohort is None:
        train_ids, val_ids = split_cases(cohort.case_ids, tr.val_fraction, tr.seed)
        train_cases = [cohort[c] for c in train_ids]
        val_cases = [cohort[c] for c in val_ids]
    else:
        train_cases, val_cases = list(cohort), list(val_cohort)

    set_determinism(seed=tr.seed)
    det, rand = training_transforms(cfg, label_map)
    cached = CacheDataset([{"case": c} for c in train_cases], det, progress=False, num_workers=0)
    train_ds = Dataset(cached, rand)  # type: ignore[arg-type]
    val_ds = CacheDataset(
        [{"case": c} for c in val_cases],
        validation_transforms(cfg, label_map),
        progress=False,
        num_workers=0,
    )

    network = build_network(cfg.network, len(sequences), len(label_map.regions), cfg.network_kwargs)
    network.to(dev)
    optimizer = torch.optim.AdamW(network.parameters(), lr=tr.lr, weight_decay=tr.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(tr.epochs, 1))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = _loss(cfg)

    state: dict[str, Any] = {"epoch": 0, "best_dice": -1.0, "best_epoch": 0, "history": []}
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        saved = torch.load(ckpt, map_location=dev, weights_only=True)
        network.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        state = json.loads((out / CHECKPOINT_STATE).read_text())
        log.info("resuming %s at epoch %d", out, state["epoch"])

    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=tr.epochs, initial=state["epoch"], desc="seg-train", unit="epoch")
    for epoch in range(state["epoch"], tr.epochs):
        set_determinism(seed=tr.seed + epoch)  # resumable: each epoch reseeds
        loader = DataLoader(train_ds, batch_size=tr.batch_size, shuffle=True, num_workers=0)
        network.train()
        losses = []
        t0 = time.perf_counter()
        for batch in loader:
            x = batch["image"].to(dev)
            y = batch["label"].to(dev)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=dev.type, enabled=use_amp):
                loss = loss_fn(network(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
        scheduler.step()
        train_seconds = time.perf_counter() - t0
        dice = evaluate_dice(network, val_ds, cfg, dev) if len(val_ds) else [math.nan]
        mean_dice = float(np.mean(dice))
        record = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "val_dice": dice,
            "val_dice_mean": mean_dice,
            "seconds": round(train_seconds, 2),
        }
        state["history"].append(record)
        improved = not len(val_ds) or mean_dice > state["best_dice"]
        if improved:
            state["best_dice"] = mean_dice
            state["best_epoch"] = epoch + 1
            save_weights(network, out)
        state["epoch"] = epoch + 1
        torch.save(
            {
                "model": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
            },
            out / f".{CHECKPOINT}.tmp",
        )
        os.replace(out / f".{CHECKPOINT}.tmp", ckpt)
        (out / CHECKPOINT_STATE).write_text(json.dumps(state, indent=1))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", dice=f"{mean_dice:.3f}", refresh=False)
        log.info("epoch %d loss %.4f val dice %s", epoch + 1, record["loss"], dice)
        if epoch + 1 - state["best_epoch"] >= tr.patience:
            log.info("early stopping at epoch %d", epoch + 1)
            break
        if max_minutes is not None and (time.perf_counter() - start) / 60 > max_minutes:
            log.info("time budget of %.1f min reached at epoch %d", max_minutes, epoch + 1)
            break
    if bar is not None:
        bar.close()

    files = [p for c in [*train_cases, *val_cases] for p in [*c.images.values(), c.mask] if p]
    best = state["history"][state["best_epoch"] - 1] if state["history"] else {}
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "network": {"name": cfg.network, "kwargs": cfg.network_kwargs},
        "in_channels": len(sequences),
        "out_channels": len(label_map.regions),
        "output": "sigmoid, one channel per region (overlapping)",
        "sequences": sequences,
        "spacing": cfg.spacing,
        "roi_size": cfg.roi_size,
        "orientation": "RAS",
        "normalisation": {
            "method": "z-score per channel over non-zero voxels (NormalizeIntensityd)",
            "foreground_crop": {"fraction_of_p99": cfg.foreground_fraction, "margin": cfg.margin},
        },
        "label_map": label_map.to_dict(),
        "regions": list(label_map.regions),
        "config": cfg.to_dict(),
        "config_hash": cfg.hash,
        "training_data": {
            "sha256": training_data_hash(files),
            "n_train": len(train_cases),
            "n_val": len(val_cases),
            "train_ids": [c.case_id for c in train_cases],
            "val_ids": [c.case_id for c in val_cases],
            "manifest": str(cohort.source) if cohort.source else None,
        },
        "metrics": {
            "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch"],
            "val_dice": dict(zip(label_map.regions, best.get("val_dice", []), strict=False)),
            "val_dice_mean": state["best_dice"],
            "train_seconds": round(sum(h["seconds"] for h in state["history"]), 1),
            "device": dev.type,
        },
        "weights": {"file": weights_path(out).name},
        "versions": library_versions(),
    }
    from hybridrad.segment.model import weights_sha256

    metadata["weights"]["sha256"] = weights_sha256(out)
    (out / "history.json").write_text(json.dumps(state["history"], indent=1))
    write_metadata(out, metadata)
    return metadata
