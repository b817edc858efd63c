"""Command-line subcommands ``deep-features`` and ``pretrain``.

Wire them into the main parser with :func:`add_parsers`; each handler returns the exit
status, as :func:`hybridrad.cli.main` does: 0 success, 1 some case failed (the failures
table lists them), 2 a problem that stopped the run before any case was computed (bad
encoder, untrusted TorchScript file, unavailable device, bad option), reported as one
``error:`` line on stderr. torch and MONAI are imported only when a handler runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hybridrad.errors import HybridradError


def _floats(text: str | None) -> tuple[float, ...] | None:
    return tuple(float(v) for v in text.split(",")) if text else None


def _cohort(args: argparse.Namespace) -> Any:
    from hybridrad.io.manifest import Cohort, cohort_options, comma_list

    return Cohort.from_csv(
        args.manifest,
        sequences=comma_list(args.sequences) or None,
        label_map=args.labels,
        **cohort_options(args),
    )


def _patch_overrides(args: argparse.Namespace, defaults: dict[str, Any]) -> dict[str, Any]:
    """Patch fields given on the command line, over ``defaults``."""
    out = dict(defaults)
    size = _floats(args.patch_size)
    if size:
        out["size"] = tuple(int(v) for v in size)
    spacing = _floats(args.spacing)
    if spacing:
        out["spacing"] = spacing
    if args.normalisation:
        out["normalisation"] = args.normalisation
    if args.region:
        out["region"] = args.region
    if getattr(args, "oversize", None):
        out["oversize"] = args.oversize
    return out


def _stopped(exc: BaseException) -> int:
    """Report a problem that stopped the run as :func:`hybridrad.cli.main` does (one
    ``error: <exception>: <message>`` line on stderr); exit status 2."""
    message = " ".join(str(exc).split()) or "(no message)"
    print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
    return 2


def cmd_deep_features(args: argparse.Namespace) -> int:
    """``hybridrad deep-features MANIFEST [--encoder SPEC] --out deep.parquet``."""
    from hybridrad.features.deep import PatchSpec, extract_deep, resolve_device
    from hybridrad.features.encoders import EncoderError, resolve_encoder
    from hybridrad.io.manifest import comma_list
    from hybridrad.provenance import library_versions

    trust = bool(getattr(args, "trust_code", False))
    try:
        resolve_device(args.device)
        cohort = _cohort(args)
        try:
            encoder = resolve_encoder(args.encoder, trust_code=trust)
        except EncoderError as exc:
            if args.encoder is None:
                return _stopped(
                    EncoderError(
                        "the default encoder (the shipped segmentation model's) is not "
                        f"available: {exc}. Pass --encoder (fmcib:WEIGHTS, an encoder "
                        "directory from `hybridrad pretrain`, torchscript:FILE ...)."
                    )
                )
            raise
        prefs = encoder.patch
        fields = _patch_overrides(
            args,
            {
                "size": prefs.get("size", (32, 32, 32)),
                "spacing": prefs.get("spacing", (1.0, 1.0, 1.0)),
                "normalisation": prefs.get("normalisation", "zscore"),
                "mask_channel": bool(prefs.get("mask_channel", False)),
                "sequences": tuple(
                    comma_list(args.sequences) or prefs.get("sequences") or cohort.sequences
                ),
            },
        )
        if args.mask_channel is not None:
            fields["mask_channel"] = args.mask_channel
        fields["per_sequence"] = args.per_sequence
        patch = PatchSpec(**fields)
        local = args.jobs <= 1 and not args.scheduler  # workers rebuild it from the spec
        result = extract_deep(
            cohort,
            encoder if local else args.encoder,
            patch=patch,
            stages=comma_list(args.stages) or None,
            pooling=args.pooling,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device,
            threads=args.threads,
            jobs=args.jobs,
            scheduler=args.scheduler,
            cache_dir=args.cache_dir or args.out.parent / ".hybridrad-cache",
            progress=not args.no_progress,
            trust_code=trust,
        )
    except (HybridradError, ValueError, OSError) as exc:
        return _stopped(exc)
    provenance = {
        "command": "deep-features",
        "manifest": str(Path(args.manifest).resolve()),
        "encoder": encoder.describe(),
        "patch": patch.to_dict(),
        "stages": comma_list(args.stages) or "encoder default",
        "pooling": result.diagnostics["pooling"].iloc[0] if len(result.diagnostics) else None,
        "batch_size": args.batch_size,
        "versions": library_versions(),
    }
    paths = result.save(args.out, provenance)
    print(
        f"{len(result.features)} case(s) x {result.features.shape[1]} deep features -> "
        f"{paths['features']} ({result.n_cached} cached, {result.n_computed} computed, "
        f"{len(result.failures)} failed, {result.seconds:.1f} s)"
    )
    if not result.ok:
        print(f"failures -> {paths['failures']}")
        return 1
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """``hybridrad pretrain MANIFEST --out ENCODER_DIR``."""
    from hybridrad.features.deep import PatchSpec, resolve_device
    from hybridrad.features.pretrain import PretrainConfig, pretrain

    try:
        resolve_device(args.device)
        cohort = _cohort(args)
        fields = _patch_overrides(
            args,
            {
                "size": (32, 32, 32),
                "spacing": (3.0, 3.0, 3.0),
                "sequences": tuple(cohort.sequences),
                "mask_channel": args.mask_channel,
            },
        )
        config = PretrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            temperature=args.temperature,
            seed=args.seed,
            crop_fraction=args.crop_fraction,
            max_minutes=args.max_minutes,
        )
        meta = pretrain(
            cohort,
            args.out,
            patch=PatchSpec(**fields),
            config=config,
            name=args.name,
            device=args.device,
            progress=not args.no_progress,
        )
    except (HybridradError, ValueError, OSError) as exc:
        return _stopped(exc)
    tr = meta["training"]
    print(
        f"encoder -> {args.out}: {tr['epochs_run']} epoch(s), final loss "
        f"{tr['loss_history'][-1]:.4f}, {tr['seconds']:.0f} s; use it with "
        f"`hybridrad deep-features MANIFEST --encoder {args.out} --out deep.parquet`"
    )
    if args.json:
        print(json.dumps(meta, indent=2, default=str))
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``deep-features`` and ``pretrain`` on an argparse subparsers object.

    Parameters
    ----------
    subparsers
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    from hybridrad.features.deep import POOLINGS  # no torch import

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("manifest", type=Path, help="cohort manifest CSV (cases need masks)")
        p.add_argument("--labels", default="binary", help="label map preset or YAML (binary)")
        p.add_argument("--sequences", help="comma-separated sequences, in channel order")
        p.add_argument("--region", help="label-map region used as ROI (default: non-zero mask)")
        p.add_argument("--patch-size", help="patch size in voxels: N or X,Y,Z")
        p.add_argument("--spacing", help="patch spacing in mm: S or X,Y,Z")
        p.add_argument(
            "--normalisation", choices=["zscore", "ct", "none"], help="intensity scaling"
        )
        p.add_argument(
            "--device",
            default="auto",
            help="auto (cuda if available, else cpu), cpu, cuda or cuda:N; checked first",
        )
        p.add_argument("--no-progress", action="store_true")

    p = subparsers.add_parser(
        "deep-features",
        help="deep features of ROI-centred patches from a pretrained 3D encoder",
        description="Deep features deep__<encoder>__<stage>__<index> (ROI-masked global "
        "pooling per stage). Encoders: segmentation[:MODEL_DIR] (default: the "
        "shipped model), fmcib:WEIGHTS, medicalnet-resnet18:WEIGHTS, resnet50:WEIGHTS, "
        "torchscript:FILE, or an encoder directory from `hybridrad pretrain`.",
    )
    common(p)
    p.add_argument("--encoder", help="encoder spec (default: segmentation model encoder)")
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="allow a TorchScript encoder file (torchscript:FILE, .ts/.jit): it runs the "
        "code it contains, so only use files from people you trust. Weights files "
        "(state dicts, safetensors) and encoder directories never need it",
    )
    p.add_argument("--out", type=Path, required=True, help="features Parquet file")
    p.add_argument("--stages", help="comma-separated stages to pool (default: the encoder's)")
    p.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="masked: ROI-weighted mean; meanstd: + ROI-weighted SD per channel; mean: whole "
        "patch (default: the encoder's, meanstd for segmentation encoders, else masked)",
    )
    p.add_argument(
        "--mask-channel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="append the ROI mask as an input channel (default: the encoder's)",
    )
    p.add_argument("--per-sequence", action="store_true", help="one encoder pass per sequence")
    p.add_argument("--oversize", choices=["fit", "crop"], help="ROI larger than the patch")
    p.add_argument("--batch-size", type=int, default=8, help="cases per encoder call (1: per case)")
    p.add_argument(
        "--num-workers",
        type=int,
        help="DataLoader worker processes reading cases (default: one per core, at most 4)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for the encoder, fixed (default: the cores the readers leave free)",
    )
    p.add_argument("--jobs", type=int, default=1, help="per-case worker processes")
    p.add_argument("--scheduler", help="Dask scheduler address (per-case path)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="per-case result cache; a rerun or a killed run resumes from it "
        "(default: .hybridrad-cache beside --out)",
    )
    p.set_defaults(func=cmd_deep_features)

    p = subparsers.add_parser(
        "pretrain",
        help="self-supervised (SimCLR) 3D encoder on the cohort's own ROI patches",
    )
    common(p)
    p.add_argument("--out", type=Path, required=True, help="encoder directory to write")
    p.add_argument("--name", default="ssl", help="encoder name used in feature columns")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--crop-fraction",
        type=float,
        default=0.6,
        help="each view is a random sub-cube of this fraction of the patch edge (1: none)",
    )
    p.add_argument("--max-minutes", type=float, help="stop after this wall-clock budget")
    p.add_argument("--mask-channel", action="store_true", help="ROI mask as extra input")
    p.add_argument("--json", action="store_true", help="print the metadata")
    p.set_defaults(func=cmd_pretrain)
