"""Training of a segmentation model on a cohort (CPU or GPU).

MONAI transforms and a cached dataset, random crops balanced on the label, DiceCE (or
DiceFocal) loss on sigmoid region channels, AdamW with cosine decay (over the epochs, or
over the time budget when one is set), AMP on CUDA, validation Dice every epoch, early
stopping, a time budget checked after every batch, a checkpoint after every epoch
(resume with ``resume=True``), a fixed seed and progress bars (loading, then per batch).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
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
    from monai.transforms import Compose, Lambda
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
        prob = predict_probabilities(
            network, item["image"][None], roi, settings, device, config.spatial_dims
        )
        pred = (prob > settings.threshold).float().cpu()
        metric(y_pred=pred, y=torch.as_tensor(item["label"])[None])
    value = metric.aggregate()
    assert isinstance(value, torch.Tensor)
    return [float(v) for v in value]


def cosine_lr(base_lr: float, progress: float, min_lr: float = 0.0) -> float:
    """Cosine decay from ``base_lr`` (progress 0) to ``min_lr`` (progress 1 and beyond).

    >>> cosine_lr(1.0, 0.0), cosine_lr(1.0, 0.5), cosine_lr(1.0, 1.0)
    (1.0, 0.5, 0.0)
    """
    p = min(max(progress, 0.0), 1.0)
    return min_lr + (base_lr - min_lr) * (1.0 + math.cos(math.pi * p)) / 2.0


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class _Ticker:
    """A deterministic identity transform appended to a cached pipeline: counts the
    cases as they are preprocessed (progress bar and a log line every 10 %)."""

    def __init__(self, what: str, total: int, progress: bool) -> None:
        self.what, self.total, self.done = what, total, 0
        self.bar: Any = None
        if progress and total:
            from tqdm.auto import tqdm

            # every case drawn: each takes a while (reading, resampling)
            self.bar = tqdm(
                total=total,
                desc=f"seg-train: loading {what}",
                unit="case",
                mininterval=0,
                miniters=0,
            )

    def __call__(self, data: Any) -> Any:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        step = max(self.total // 10, 1)
        if self.done % step == 0 or self.done == self.total:  # a count when no bar shows it
            level = logging.DEBUG if self.bar is not None else logging.INFO
            log.log(level, "loaded %d/%d %s", self.done, self.total, self.what)
        return data

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _cache(cases: list[Any], transform: Compose, what: str, progress: bool) -> CacheDataset:
    """Preprocess ``cases`` once into memory, saying so before and after (slow on big
    volumes: minutes for a few hundred cases)."""
    t0 = time.perf_counter()
    if cases:
        log.info("loading %d %s (preprocessing once, cached in memory) ...", len(cases), what)
    ticker = _Ticker(what, len(cases), progress)
    try:
        dataset = CacheDataset(
            [{"case": c} for c in cases],
            Compose([*transform.transforms, Lambda(ticker)]),
            progress=False,
            num_workers=0,
        )
    finally:
        ticker.close()
    if cases:
        log.info("loaded %d %s in %.1f s", len(cases), what, time.perf_counter() - t0)
    return dataset


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
        Show progress bars on stderr: the cases being loaded, then the run (per batch:
        epoch, batch, loss, validation Dice; with ``max_minutes`` the bar and its time
        estimate follow the budget).
    max_minutes
        Wall-clock budget of training (data loading excluded), checked after every
        batch: the run stops after the batch that crosses it, validates, and writes the
        checkpoint and the model. The cosine learning-rate schedule then follows the
        budget (progress = the larger of epochs done / ``epochs`` and time used /
        budget), so the learning rate reaches its minimum at the budget. With ``resume``
        the budget counts the training time of the earlier sessions too (stored in the
        checkpoint). ``None``: per-epoch cosine decay over ``epochs``.

    Returns
    -------
    dict
        The metadata written to ``model.json``; ``metrics.stopped`` says why training
        ended: ``completed``, ``early stopping`` or ``time budget``.

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
    cached = _cache(train_cases, det, "training cases", progress)
    train_ds = Dataset(cached, rand)  # type: ignore[arg-type]
    val_ds = _cache(val_cases, validation_transforms(cfg, label_map), "validation cases", progress)

    network = build_network(
        cfg.network, len(sequences), len(label_map.regions), cfg.network_kwargs, cfg.spatial_dims
    )
    network.to(dev)
    optimizer = torch.optim.AdamW(network.parameters(), lr=tr.lr, weight_decay=tr.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = _loss(cfg)
    epochs = max(tr.epochs, 1)

    state: dict[str, Any] = {
        "epoch": 0,
        "best_dice": -1.0,
        "best_epoch": 0,
        "history": [],
        "elapsed_seconds": 0.0,  # training time of all sessions (the budget counts it)
        "lr_progress": 0.0,  # position on the cosine schedule, 0..1, never decreases
    }
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        saved = torch.load(ckpt, map_location=dev, weights_only=True)
        network.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        state = json.loads((out / CHECKPOINT_STATE).read_text())
        # checkpoints of earlier versions: per-epoch cosine, time of the training loops
        state.setdefault("elapsed_seconds", sum(h["seconds"] for h in state["history"]))
        state.setdefault("lr_progress", min(state["epoch"] / epochs, 1.0))
        log.info("resuming %s at epoch %d", out, state["epoch"])

    budget = None if max_minutes is None else 60.0 * max_minutes
    session_start = time.perf_counter()
    elapsed_before = float(state["elapsed_seconds"])

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - session_start

    def run_progress(epochs_done: float) -> float:
        """Fraction of the run done: epochs, or the time budget when that is further."""
        p = epochs_done / epochs
        if budget is not None:
            p = max(p, elapsed() / budget) if budget > 0 else 1.0
        return min(p, 1.0)

    n_batches = max(math.ceil(len(train_ds) / tr.batch_size), 1)
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=100.0,
            initial=round(100.0 * run_progress(state["epoch"]), 1),
            desc="seg-train",
            mininterval=0,  # every batch drawn (a batch takes far longer than a redraw)
            miniters=0,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
        )

    def show(epoch: int, batch: int, loss: float, dice: float | None, note: str = "") -> None:
        """Move the bar to the run's progress and show where the run is (per batch)."""
        if bar is None:
            return
        parts = [f"epoch {epoch}/{tr.epochs}", f"batch {batch}/{n_batches}"]
        if not math.isnan(loss):
            parts.append(f"loss {loss:.3f}")
        if dice is not None:
            parts.append(f"dice {dice:.3f}")
        if budget is not None:
            parts.append(f"{elapsed() / 60:.1f}/{budget / 60:g} min")
        if note:
            parts.append(note)
        bar.set_postfix_str(", ".join(parts), refresh=False)
        target = 100.0 * run_progress(epoch - 1 + batch / n_batches)
        if target > bar.n:
            bar.update(target - bar.n)
        else:
            bar.refresh()

    def info(msg: str, *args: Any) -> None:
        """Log without tearing the progress bar."""
        if bar is None:
            log.info(msg, *args)
            return
        with bar.external_write_mode(file=sys.stderr):
            log.info(msg, *args)

    last_dice = state["history"][-1]["val_dice_mean"] if state["history"] else None
    stopped = "completed"
    # resumed with the budget spent: stop before training (a fresh run trains one batch)
    if budget is not None and state["history"] and state["epoch"] < tr.epochs:
        if elapsed() >= budget:
            stopped = "time budget"
            info("time budget of %.1f min already used: no further training", max_minutes)
    epoch = state["epoch"]
    while stopped == "completed" and epoch < tr.epochs:
        set_determinism(seed=tr.seed + epoch)  # resumable: each epoch reseeds
        loader = DataLoader(train_ds, batch_size=tr.batch_size, shuffle=True, num_workers=0)
        network.train()
        losses: list[float] = []
        out_of_time = False
        t0 = time.perf_counter()
        for i, batch in enumerate(loader):
            # per batch with a budget (the schedule follows the clock), else per epoch
            at = epoch + (i / n_batches if budget is not None else 0.0)
            state["lr_progress"] = max(state["lr_progress"], run_progress(at))
            _set_lr(optimizer, cosine_lr(tr.lr, state["lr_progress"]))
            x = batch["image"].to(dev)
            y = batch["label"].to(dev)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=dev.type, enabled=use_amp):
                loss = loss_fn(network(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            show(epoch + 1, i + 1, float(np.mean(losses)), last_dice)
            if budget is not None and elapsed() >= budget and i + 1 < n_batches:
                out_of_time = True  # stop mid-epoch; validate and save what was learnt
                break
        train_seconds = time.perf_counter() - t0
        show(epoch + 1, len(losses), float(np.mean(losses)), last_dice, "validating")
        dice = evaluate_dice(network, val_ds, cfg, dev) if len(val_ds) else [math.nan]
        mean_dice = float(np.mean(dice))
        record = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "val_dice": dice,
            "val_dice_mean": mean_dice,
            "seconds": round(train_seconds, 2),
            "batches": len(losses),
            "lr": optimizer.param_groups[0]["lr"],
        }
        state["history"].append(record)
        improved = not len(val_ds) or mean_dice > state["best_dice"]
        if improved:
            state["best_dice"] = mean_dice
            state["best_epoch"] = epoch + 1
            save_weights(network, out)
        state["epoch"] = epoch + 1
        if out_of_time:
            stopped = "time budget"
        elif epoch + 1 - state["best_epoch"] >= tr.patience:
            stopped = "early stopping"
        elif epoch + 1 < tr.epochs and budget is not None and elapsed() >= budget:
            stopped = "time budget"
        state["elapsed_seconds"] = round(elapsed(), 3)
        state["stopped"] = stopped
        torch.save(
            {
                "model": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
            },
            out / f".{CHECKPOINT}.tmp",
        )
        os.replace(out / f".{CHECKPOINT}.tmp", ckpt)
        (out / CHECKPOINT_STATE).write_text(json.dumps(state, indent=1))
        last_dice = mean_dice
        show(epoch + 1, len(losses), record["loss"], mean_dice)  # this epoch's Dice
        info(
            "epoch %d: loss %.4f, val dice %s, lr %.2e%s",
            epoch + 1,
            record["loss"],
            [round(d, 4) for d in dice],
            record["lr"],
            f" ({len(losses)}/{n_batches} batches)" if out_of_time else "",
        )
        if stopped == "early stopping":
            info("early stopping at epoch %d (best epoch %d)", epoch + 1, state["best_epoch"])
        elif stopped == "time budget":
            info("time budget of %.1f min reached in epoch %d", max_minutes, epoch + 1)
        epoch += 1
    if bar is not None:
        bar.close()

    files = [p for c in [*train_cases, *val_cases] for p in [*c.images.values(), c.mask] if p]
    best = state["history"][state["best_epoch"] - 1] if state["history"] else {}
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "network": {
            "name": cfg.network,
            "kwargs": cfg.network_kwargs,
            "spatial_dims": cfg.spatial_dims,
        },
        "in_channels": len(sequences),
        "out_channels": len(label_map.regions),
        "output": "sigmoid, one channel per region (overlapping)",
        "sequences": sequences,
        "spacing": cfg.spacing,
        "roi_size": cfg.roi_size,
        "orientation": "LPS (voxel axes on the model grid, SimpleITK DICOMOrient)",
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
            "stopped": stopped,
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
