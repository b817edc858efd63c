"""Segmentation benchmark on TCGA-LGG (39 patients, FLAIR + T1 + T1c, binary mask).

5-fold cross-validation: for each fold a SegResNet is trained on the other folds
(``configs/segmentation/lgg.yaml``) and the held-out cases are segmented twice:

- ``ours``: foreground crop + batched windows (``sw_batch_size``) + the config's
  inference window, the ``hybridrad segment`` defaults;
- ``crop_batch``: foreground crop + batched windows with the baseline's window and
  blending (isolates those two from the window size);
- ``monai-default``: :func:`monai.inferers.sliding_window_inference` with its default
  settings (``sw_batch_size=1``, ``overlap=0.25``, ``mode="constant"``) on the
  uncropped volume with the training crop as window.

Prints mean Dice per fold and overall (reference: 82% mean Dice, Buda et al. 2019, 2D
U-Net, 110 patients), training time, and inference seconds per case of both settings.
Not a test. Usage::

    .venv/bin/python benchmarks/segment_lgg.py [--data /work/shared/data/lgg-tcga]
        [--folds 5] [--epochs 30] [--max-minutes 4] [--out /tmp/seg-lgg]
    .venv/bin/python benchmarks/segment_lgg.py --brats  # BraTS-2018 whole-tumour variant
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    from hybridrad.segment.evaluate import region_metrics

    return region_metrics(a, b, (1.0, 1.0, 1.0))["dice"]


def main() -> int:
    """Run the cross-validation and print the figures."""
    from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
    from hybridrad.datasets.reference import reference_data_dir
    from hybridrad.io.manifest import Cohort, write_manifest
    from hybridrad.segment.config import InferenceConfig, SegConfig
    from hybridrad.segment.infer import Segmenter
    from hybridrad.segment.model import load_model
    from hybridrad.segment.train import train_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--brats", action="store_true", help="BraTS-2018 whole-tumour variant")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--run-folds", default=None, help="which folds to run, e.g. 0,1 (default: all)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="training budget per fold")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "hybridrad-seg-bench")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    shared = reference_data_dir()
    if args.brats:
        data = args.data or (shared / "brats-samples" / "brats2018-wholetumour" if shared else None)
        if data is None:
            raise SystemExit("BraTS samples not found: pass --data")
        table = discover_brats(data)
        seqs = ["flair", "t1"]
        config_path = args.config or ROOT / "configs/segmentation/brats_wt.yaml"
        label_map = "binary"
    else:
        data = args.data or (shared / "lgg-tcga" if shared else None)
        if data is None:
            raise SystemExit("lgg-tcga not found: pass --data")
        table, _ = discover_lgg_tcga(data)
        seqs = ["flair", "t1", "t1c"]
        config_path = args.config or ROOT / "configs/segmentation/lgg.yaml"
        label_map = "binary"
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(table, args.out / "manifest.csv")
    cohort = Cohort.from_csv(manifest, sequences=seqs, label_map=label_map)
    config = SegConfig.load(config_path)
    config.sequences = seqs
    if args.epochs is not None:
        config.training.epochs = args.epochs

    ids = np.random.default_rng(0).permutation(cohort.case_ids)
    folds = np.array_split(ids, args.folds)
    rows = []
    fold_info = []
    run = {int(f) for f in args.run_folds.split(",")} if args.run_folds else set(range(args.folds))
    for k, test_ids in enumerate(folds):
        if k not in run:
            continue
        train_ids = [c for c in cohort.case_ids if c not in set(test_ids)]
        model_dir = args.out / f"fold{k}"
        t0 = time.perf_counter()
        meta = train_model(
            cohort.subset(train_ids),
            model_dir,
            config,
            device="cpu",
            progress=False,
            max_minutes=args.max_minutes,
        )
        train_s = time.perf_counter() - t0
        model = load_model(model_dir)
        ours = Segmenter(model, device="cpu")
        base_settings = InferenceConfig(
            roi_size=list(config.roi_size),
            sw_batch_size=1,
            overlap=0.25,
            mode="constant",
            tta=False,
            crop_foreground=False,
        )
        base = Segmenter(model, inference=base_settings, postprocess=ours.post, device="cpu")
        # ours with the baseline's window and blending: isolates crop + batching
        same = Segmenter(
            model,
            inference=dataclasses.replace(
                base_settings, crop_foreground=True, sw_batch_size=ours.settings.sw_batch_size
            ),
            postprocess=ours.post,
            device="cpu",
        )
        for cid in test_ids:
            case = cohort[cid]
            truth = sitk.GetArrayFromImage(case.read_mask()) > 0
            rec: dict[str, object] = {"fold": k, "case_id": cid}
            for name, seg in (("ours", ours), ("monai_default", base), ("crop_batch", same)):
                t = time.perf_counter()
                pred = sitk.GetArrayFromImage(seg.predict_case(case)) > 0
                rec[f"{name}_s"] = time.perf_counter() - t
                rec[f"{name}_dice"] = _dice(truth, pred)
            rows.append(rec)
        fr = pd.DataFrame([r for r in rows if r["fold"] == k])
        info = {
            "fold": k,
            "n_train": len(train_ids),
            "n_test": len(test_ids),
            "epochs_run": meta["metrics"]["epochs_run"],
            "train_s": round(train_s, 1),
            "train_s_per_case_epoch": round(
                meta["metrics"]["train_seconds"]
                / max(meta["metrics"]["epochs_run"], 1)
                / len(train_ids),
                3,
            ),
            "dice_ours": round(float(fr["ours_dice"].mean()), 4),
            "dice_monai_default": round(float(fr["monai_default_dice"].mean()), 4),
            "infer_s_ours": round(float(fr["ours_s"].mean()), 3),
            "infer_s_monai_default": round(float(fr["monai_default_s"].mean()), 3),
            "dice_crop_batch": round(float(fr["crop_batch_dice"].mean()), 4),
            "infer_s_crop_batch": round(float(fr["crop_batch_s"].mean()), 3),
        }
        fold_info.append(info)
        print(json.dumps(info), flush=True)
    res = pd.DataFrame(rows)
    res.to_csv(args.out / f"per_case_folds{'-'.join(map(str, sorted(run)))}.csv", index=False)
    summary = {
        "dataset": "brats2018-wholetumour" if args.brats else "lgg-tcga",
        "cases_evaluated": len(res),
        "config": dataclasses.asdict(config),
        "mean_dice_ours": round(float(res["ours_dice"].mean()), 4),
        "median_dice_ours": round(float(res["ours_dice"].median()), 4),
        "mean_dice_monai_default": round(float(res["monai_default_dice"].mean()), 4),
        "infer_s_per_case_ours": round(float(res["ours_s"].mean()), 3),
        "infer_s_per_case_monai_default": round(float(res["monai_default_s"].mean()), 3),
        "speedup": round(float(res["monai_default_s"].sum() / res["ours_s"].sum()), 2),
        "mean_dice_crop_batch": round(float(res["crop_batch_dice"].mean()), 4),
        "speedup_crop_batch": round(
            float(res["monai_default_s"].sum() / res["crop_batch_s"].sum()), 2
        ),
        "train_s_total": round(sum(f["train_s"] for f in fold_info), 1),
        "reference": "Buda et al. 2019: 82% mean Dice (2D U-Net, 110 patients)",
    }
    (args.out / "summary.json").write_text(json.dumps({"folds": fold_info, **summary}, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
