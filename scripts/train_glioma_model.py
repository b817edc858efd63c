"""Train, cross-validate and ship the glioma FLAIR-abnormality models (one script).

Data: ``lgg-tcga`` of the reference data (39 TCGA-LGG patients, Buda et al. 2019),
found by :func:`hybridrad.datasets.reference.reference_data_dir` or ``--data``.
Recipe: ``configs/segmentation/<variant>.yaml`` (2D U-Net on axial slices).

Two jobs, both resumable (rerun the same command after a kill; finished folds are
kept, an unfinished training resumes from its last epoch)::

    # 5-fold CV on the development set: per-fold Dice / HD95 and the held-out
    # predictions (for `hybridrad contour-agreement`), in OUT/cv-<variant>/
    .venv/bin/python scripts/train_glioma_model.py cv --variant glioma-flair --out OUT

    # the shipped model: trained on all cases, written to hybridrad/segment/models/<variant>
    .venv/bin/python scripts/train_glioma_model.py final --variant glioma-flair

The CV summary (``cv_summary.json``) is copied into the shipped model's ``model.json``
(``metrics.cv``) when it exists, so ``hybridrad models`` can show the measured Dice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("train_glioma_model")


def _cohort(data: Path | None, manifest: Path | None = None):  # type: ignore[no-untyped-def]
    from hybridrad.datasets.discover import discover_lgg_tcga
    from hybridrad.datasets.reference import reference_data_dir
    from hybridrad.io.manifest import Cohort

    if manifest is not None:  # e.g. the cohort after `hybridrad preprocess --config glioma_mri`
        return Cohort.from_csv(manifest, label_map="binary")
    folder = data or ((reference_data_dir() or Path("/nonexistent")) / "lgg-tcga")
    if not (folder / "cases").is_dir():
        sys.exit(f"no lgg-tcga data at {folder}; pass --data or set HYBRIDRAD_DATA")
    table, _ = discover_lgg_tcga(folder)
    return Cohort(table, folder, label_map="binary", source=folder)


def _config(variant: str, epochs: int | None):  # type: ignore[no-untyped-def]
    from hybridrad.segment.config import SegConfig

    cfg = SegConfig.load(ROOT / "configs" / "segmentation" / f"{variant}.yaml")
    if epochs is not None:
        cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, epochs=epochs))
    return cfg


def folds_of(case_ids: list[str], k: int, seed: int) -> list[list[str]]:
    """Deterministic k-fold split of the case ids."""
    order = list(np.random.default_rng(seed).permutation(sorted(case_ids)))
    return [sorted(order[i::k]) for i in range(k)]


def _score_fold(cohort, model_dir: Path, pred_dir: Path, cfg) -> list[dict]:  # type: ignore[no-untyped-def]
    """Segment held-out cases with the recipe's inference/postprocessing settings; score
    the masks as written and, for comparison, the raw threshold (``*_raw``) and the
    largest component (``*_largest``)."""
    import torch

    from hybridrad.io.manifest import safe_filename
    from hybridrad.segment.config import PostprocessConfig
    from hybridrad.segment.evaluate import region_metrics
    from hybridrad.segment.infer import Segmenter, postprocess_channels
    from hybridrad.segment.model import load_model

    model = load_model(model_dir)
    seg = Segmenter(model, inference=cfg.inference, postprocess=cfg.postprocess, device="cpu")
    raw = Segmenter(
        model, inference=cfg.inference, postprocess=PostprocessConfig(keep_largest=False)
    )
    pred_dir.mkdir(parents=True, exist_ok=True)
    largest = PostprocessConfig(keep_largest=True, min_size=0, fill_holes=False)
    rows = []
    for case in cohort:
        t0 = time.perf_counter()
        mask = seg.predict_case(case)
        seconds = time.perf_counter() - t0
        name = safe_filename(case.case_id)
        sitk.WriteImage(mask, str(pred_dir / f"{name}.nii.gz"), useCompression=True)
        truth = sitk.GetArrayFromImage(case.read_mask()) > 0
        pred = sitk.GetArrayFromImage(mask) > 0
        spacing = tuple(reversed(mask.GetSpacing()))
        row = {"case_id": case.case_id, "seconds": seconds}
        row.update(region_metrics(truth, pred, spacing))
        unprocessed = sitk.GetArrayFromImage(raw.predict_case(case)) > 0
        row.update({f"{k}_raw": v for k, v in region_metrics(truth, unprocessed, spacing).items()})
        kept = np.asarray(postprocess_channels(torch.from_numpy(unprocessed[None]), largest))[0] > 0
        row.update({f"{k}_largest": v for k, v in region_metrics(truth, kept, spacing).items()})
        rows.append(row)
        log.info(
            "%s dice %.3f (raw %.3f, largest %.3f)",
            case.case_id,
            row["dice"],
            row["dice_raw"],
            row["dice_largest"],
        )
    return rows


def run_cv(args: argparse.Namespace) -> int:
    from hybridrad.segment.train import train_model

    cohort = _cohort(args.data, args.manifest)
    cfg = _config(args.variant, args.epochs)
    out = Path(args.out) / f"cv-{args.variant}"
    out.mkdir(parents=True, exist_ok=True)
    folds = folds_of(cohort.case_ids, args.folds, args.seed)
    which = range(args.folds) if args.run_folds is None else map(int, args.run_folds.split(","))
    for k in which:
        fold_dir = out / f"fold{k}"
        scores = fold_dir / "scores.csv"
        if scores.is_file():
            log.info("fold %d done already", k)
            continue
        test_ids = folds[k]
        train = cohort.subset([c for c in cohort.case_ids if c not in test_ids])
        model_dir = fold_dir / "model"
        t0 = time.perf_counter()
        if not (model_dir / "model.json").is_file():
            train_model(train, model_dir, cfg, resume=True, device="cpu", progress=args.progress)
        meta = json.loads((model_dir / "model.json").read_text())
        rows = _score_fold(cohort.subset(test_ids), model_dir, out / "predictions", cfg)
        table = pd.DataFrame(rows)
        table["fold"] = k
        table["train_seconds"] = meta["metrics"]["train_seconds"]
        table.to_csv(scores, index=False)
        log.info(
            "fold %d: mean Dice %.3f (raw %.3f, largest component %.3f), %.0f s",
            k,
            table["dice"].mean(),
            table["dice_raw"].mean(),
            table["dice_largest"].mean(),
            time.perf_counter() - t0,
        )
    done = sorted(out.glob("fold*/scores.csv"))
    if not done:
        return 0
    table = pd.concat([pd.read_csv(p) for p in done], ignore_index=True)
    table.to_csv(out / "cv_scores.csv", index=False)
    per_fold = table.groupby("fold").agg(
        n=("dice", "size"),
        dice=("dice", "mean"),
        dice_raw=("dice_raw", "mean"),
        dice_largest=("dice_largest", "mean"),
        hd95=("hd95_mm", "median"),
        train_seconds=("train_seconds", "first"),
    )
    summary = {
        "variant": args.variant,
        "folds": len(done),
        "n_cases": len(table),
        "epochs": cfg.training.epochs,
        "config_hash": cfg.hash,
        "mean_dice": float(table["dice"].mean()),
        "median_dice": float(table["dice"].median()),
        "median_hd95_mm": float(table["hd95_mm"].median()),
        "postprocess": dataclasses.asdict(cfg.postprocess),
        "mean_dice_raw": float(table["dice_raw"].mean()),
        "mean_dice_largest": float(table["dice_largest"].mean()),
        "median_dice_largest": float(table["dice_largest"].median()),
        "median_hd95_mm_largest": float(table["hd95_mm_largest"].median()),
        "mean_inference_seconds": float(table["seconds"].mean()),
        "per_fold": per_fold.reset_index().to_dict(orient="records"),
        "predictions": str(out / "predictions"),
    }
    (out / "cv_summary.json").write_text(json.dumps(summary, indent=1))
    print(per_fold.round(3).to_string())
    print(json.dumps({k: v for k, v in summary.items() if k != "per_fold"}, indent=1))
    return 0


def run_final(args: argparse.Namespace) -> int:
    from hybridrad.segment.model import write_metadata
    from hybridrad.segment.train import train_model

    cohort = _cohort(args.data)
    cfg = _config(args.variant, args.epochs)
    work = Path(args.out) / f"final-{args.variant}"
    if not (work / "model.json").is_file():
        train_model(cohort, work, cfg, resume=True, device="cpu", progress=args.progress)
    meta = json.loads((work / "model.json").read_text())
    meta["training_data"]["manifest"] = "lgg-tcga (reference data, 39 development cases)"
    cv = Path(args.out) / f"cv-{args.variant}" / "cv_summary.json"
    if cv.is_file():
        summary = json.loads(cv.read_text())
        summary.pop("predictions", None)
        meta["metrics"]["cv"] = summary
    dest = (
        Path(args.dest) if args.dest else ROOT / "hybridrad" / "segment" / "models" / args.variant
    )
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "model.pt"):
        if (work / name).is_file():
            shutil.copy2(work / name, dest / name)
    write_metadata(dest, meta)
    print(f"shipped {args.variant} to {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("job", choices=["cv", "final"])
    p.add_argument("--variant", default="glioma-flair", help="config name in configs/segmentation")
    p.add_argument("--data", type=Path, default=None, help="lgg-tcga folder")
    p.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="cv: a manifest of the same cases instead (e.g. `hybridrad preprocess` output)",
    )
    p.add_argument("--out", default="glioma-work", help="work folder (checkpoints, CV)")
    p.add_argument("--dest", default=None, help="final: where to ship the model")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--run-folds", default=None, help="cv: only these folds, e.g. 0,1")
    p.add_argument("--seed", type=int, default=0, help="fold split seed")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return run_cv(args) if args.job == "cv" else run_final(args)


if __name__ == "__main__":
    raise SystemExit(main())
