"""Segmentation commands: ``seg-train``, ``segment``, ``seg-eval`` and ``models``.

Each handler returns the exit status (0 success, 1 some case failed). torch and MONAI
are imported only when a handler runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hybridrad.cli.common import read_cohort

LINE_WIDTH = 100  # seg-eval's summary never wraps wider than this


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def cmd_seg_train(args: argparse.Namespace) -> int:
    """``hybridrad seg-train MANIFEST --config C --out MODEL_DIR``."""
    from hybridrad.segment.config import SegConfig
    from hybridrad.segment.evaluate import check_training_labels
    from hybridrad.segment.train import train_model

    cohort = read_cohort(args)
    config = SegConfig.load(args.config)
    if args.epochs is not None:
        config.training.epochs = args.epochs
    check_training_labels(cohort)
    val = None
    if args.val_manifest:
        from hybridrad.io.manifest import Cohort, cohort_options

        val = Cohort.from_csv(
            args.val_manifest,
            sequences=cohort.sequences,
            label_map=cohort.label_map,
            **cohort_options(args),
        )
        check_training_labels(val, every_region=False)
    meta = train_model(
        cohort,
        args.out,
        config,
        val_cohort=val,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
        max_minutes=args.max_minutes,
    )
    m = meta["metrics"]
    print(
        f"model -> {args.out}: best validation Dice {m['val_dice_mean']:.3f} "
        f"{json.dumps({k: round(v, 3) for k, v in m['val_dice'].items()})} at epoch "
        f"{m['best_epoch']}/{m['epochs_run']} ({m['train_seconds']:.0f} s on {m['device']})"
    )
    return 0


def _postprocess(args: argparse.Namespace, model_post: Any) -> Any:
    """The model's PostprocessConfig with the flags given on the command line applied."""
    from dataclasses import replace

    flags = {
        "keep_largest": args.keep_largest,
        "min_size": args.min_size,
        "fill_holes": args.fill_holes,
    }
    return replace(model_post, **{k: v for k, v in flags.items() if v is not None})


def cmd_segment(args: argparse.Namespace) -> int:
    """``hybridrad segment MANIFEST [--model MODEL_DIR] --out DIR``."""
    from hybridrad.segment.infer import segment_cohort
    from hybridrad.segment.model import load_model
    from hybridrad.segment.registry import pick_model, resolve_model

    cohort = read_cohort(args)
    if args.model is None:
        picked = pick_model(list(cohort.sequences))
        model_dir = picked.path
        print(
            f"model: {picked.name} (inputs {','.join(picked.sequences)}, CV mean Dice "
            f"{picked.cv['mean_dice']:.3f}: the best shipped model for the manifest's "
            "sequences; choose another with --model)"
        )
    else:
        model_dir = resolve_model(args.model)
    model_cfg = load_model(model_dir).config
    inference = model_cfg.inference
    if args.tta:
        inference.tta = True
    if args.sw_batch_size is not None:
        inference.sw_batch_size = args.sw_batch_size
    if args.no_crop:
        inference.crop_foreground = False
    result, manifest = segment_cohort(
        cohort,
        args.out,
        model_dir=model_dir,
        inference=inference,
        postprocess=_postprocess(args, model_cfg.postprocess),
        device=args.device,
        jobs=args.jobs,
        cache_dir=args.cache_dir or Path(args.out) / ".hybridrad-cache",
        progress=not args.no_progress,
    )
    print(
        f"{len(result.features)} masks -> {Path(args.out) / 'masks'}; manifest {manifest} "
        f"({result.n_cached} from cache, {result.n_computed} computed, "
        f"{len(result.failures)} failed, {result.seconds:.1f} s)"
    )
    for row in result.failures.itertuples(index=False):
        print(f"  {row.case_id} [{row.stage}] {row.exception}: {row.message}")
    return 0 if result.ok else 1


def cmd_seg_eval(args: argparse.Namespace) -> int:
    """``hybridrad seg-eval MANIFEST --pred DIR``."""
    from hybridrad.segment.evaluate import evaluate_masks, summary_table

    cohort = read_cohort(args)
    out = Path(args.out) if args.out else Path(args.pred) / "evaluation.csv"
    overlays = None if args.no_overlays else out.parent / "overlays"
    table = evaluate_masks(cohort, args.pred, overlay_dir=overlays)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    summary = summary_table(table)
    print(summary.to_string(float_format=lambda v: f"{v:.3f}", line_width=LINE_WIDTH))
    if summary["empty"].any():
        print("empty: cases where the region is empty in both masks (Dice, HD95 NaN, left out)")
    print(f"per-case table -> {out}")
    if overlays:
        print(f"overlays -> {overlays}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``hybridrad models``: the shipped segmentation models, their inputs and CV Dice."""
    from hybridrad.segment.registry import models_table

    rows = models_table()
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        dice = (
            f"CV Dice mean {row['cv_mean_dice']:.3f}, median {row['cv_median_dice']:.3f}, "
            f"median HD95 {row['cv_median_hd95_mm']:.1f} mm ({row['cv']})"
            if row["cv_mean_dice"] is not None
            else f"validation Dice {row['val_dice']:.3f} (no cross-validation recorded)"
            if isinstance(row["val_dice"], float) and row["val_dice"] == row["val_dice"]
            else "no Dice recorded"
        )
        print(f"{row['name']}")
        print(f"  inputs  : {row['inputs']}  ->  {row['output']}  [{row['network']}]")
        print(f"  measured: {dice}")
        print(f"  trained : {row['trained_on']}; weights {row['weights_mb']} MB")
        print(f"  {row['description']}")
    print(
        "\nUse one with `hybridrad segment MANIFEST --model NAME --out DIR`; without --model, "
        "segment picks the real-data model with the best CV Dice among those whose inputs "
        "the manifest has."
    )
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``seg-train``, ``segment``, ``seg-eval`` and ``models`` on an argparse
    subparsers object.

    Parameters
    ----------
    subparsers
        The object returned by ``ArgumentParser.add_subparsers()``.
    """

    from hybridrad.io.labels import PRESETS

    def common(p: argparse.ArgumentParser, labels_help: str) -> None:
        p.add_argument("manifest", type=Path, help="cohort manifest CSV")
        p.add_argument(
            "--labels",
            default="binary",
            help=f"{labels_help}: a preset ({', '.join(PRESETS)}) or a YAML file "
            "(default: binary, as in `validate` and `extract`)",
        )
        p.add_argument("--sequences", help="comma-separated sequence columns (default: all)")

    p = subparsers.add_parser("seg-train", help="train a MONAI segmentation model")
    common(p, "label map of the training masks; the model learns its regions")
    p.add_argument("--config", type=Path, help="segmentation config YAML (default settings)")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--val-manifest", type=Path, help="validation manifest (default: a split)")
    p.add_argument("--epochs", type=int, help="override training.epochs")
    p.add_argument("--max-minutes", type=float, help="stop after this wall-clock budget")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint.pt")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_seg_train)

    p = subparsers.add_parser("segment", help="predict tumour masks for a manifest")
    common(
        p,
        "label map for reading the manifest's own masks only; the predicted masks use "
        "the model's label map",
    )
    p.add_argument(
        "--model",
        help="shipped model name (`hybridrad models`: glioma-flair, glioma-flair-t1-t1c, "
        "synthetic-brats) or a model directory from seg-train (default: the shipped real-data "
        "model with the best cross-validated Dice among those whose inputs the manifest "
        "has; the choice is printed)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--sw-batch-size", type=int, help="windows per network call")
    p.add_argument("--no-crop", action="store_true", help="do not crop to the foreground")
    p.add_argument(
        "--keep-largest",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep only the largest connected component per region (default: the model's setting)",
    )
    p.add_argument(
        "--min-size",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="remove components smaller than N voxels, 0 keeps all (default: the model's setting)",
    )
    p.add_argument(
        "--fill-holes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fill enclosed holes per region (default: the model's setting)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="per-case result cache; a rerun or a killed run resumes from it "
        "(default: OUT/.hybridrad-cache)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_segment)

    p = subparsers.add_parser("seg-eval", help="Dice/HD95/volume error of predicted masks")
    common(p, "label map of the true and predicted masks (the model's, e.g. brats)")
    p.add_argument("--pred", type=Path, required=True, help="output folder of `segment`")
    p.add_argument("--out", type=Path, help="CSV table (default PRED/evaluation.csv)")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.set_defaults(func=cmd_seg_eval)

    p = subparsers.add_parser(
        "models", help="list the shipped segmentation models, their inputs and measured Dice"
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_models)
