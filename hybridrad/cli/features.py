"""Feature commands: ``extract`` and ``robustness`` (handcrafted), ``deep-features`` and
``pretrain`` (deep), ``contour-agreement`` (handcrafted features, expert vs predicted masks).

Each handler returns the exit status, as :func:`hybridrad.cli.main` does: 0 success, 1
some case failed (the failures table lists them). ``deep-features`` and ``pretrain``
report a problem that stopped the run before any case was computed (bad encoder,
untrusted TorchScript file, unavailable device, bad option) themselves, as one ``error:``
line on stderr and exit status 2. torch and MONAI are imported only when a handler runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hybridrad.cli.common import one_line, read_cohort
from hybridrad.errors import HybridradError

#: ``hybridrad.features.engine.ENGINES``, spelled out so building the parser imports no
#: imaging library (tests/test_cli_package.py checks they agree).
ENGINE_CHOICES = ("pyradiomics", "native")


def _cmd_extract(args: argparse.Namespace) -> int:
    from hybridrad.features.radiomics import RadiomicsConfig, RadiomicsTask
    from hybridrad.io import Cohort
    from hybridrad.io.manifest import cohort_options, comma_list
    from hybridrad.provenance import file_sha256, library_versions
    from hybridrad.runner import run_cohort

    cohort = Cohort.from_csv(args.manifest, label_map=args.labels, **cohort_options(args))
    config = RadiomicsConfig.load(args.config).with_engine(args.engine)
    task = RadiomicsTask(
        config=config,
        label_map=cohort.label_map,
        sequences=tuple(comma_list(args.sequences) or cohort.sequences),
        regions=tuple(comma_list(args.regions) or ()),
        tolerance=args.tolerance,
    )
    cache_dir = args.cache_dir or args.out.parent / ".hybridrad-cache"
    result = run_cohort(
        cohort,
        task,
        jobs=args.jobs,
        scheduler=args.scheduler,
        cache_dir=cache_dir,
        progress=not args.no_progress,
    )
    paths = result.save(
        args.out,
        provenance={
            "command": "hybridrad extract",
            "manifest": str(args.manifest),
            "manifest_sha256": file_sha256(args.manifest),
            "config_name": config.name,
            "config_hash": config.hash,
            "config": config.params,
            "label_map": cohort.label_map.to_dict(),
            "sequences": list(task.sequences),
            "regions": list(task.regions),
            "cache_dir": str(cache_dir),
            "versions": library_versions(),
        },
    )
    print(
        f"{len(result.features)} cases x {result.features.shape[1]} features -> {paths['features']} "
        f"({result.n_cached} from cache, {result.n_computed} computed, "
        f"{len(result.failures)} failed, {result.seconds:.1f} s)"
    )
    if not result.ok:
        print(f"failures: {paths['failures']}")
        for row in result.failures.itertuples(index=False):
            print(f"  {row.case_id} [{row.stage}] {row.exception}: {row.message}")
    return 0 if result.ok else 1


def _cmd_robustness(args: argparse.Namespace) -> int:
    from hybridrad.features.robustness import robustness_icc
    from hybridrad.io import Cohort
    from hybridrad.io.manifest import cohort_options, comma_list
    from hybridrad.provenance import config_hash, file_sha256, library_versions

    cohort = Cohort.from_csv(args.manifest, label_map=args.labels, **cohort_options(args))
    cache_dir = args.cache_dir or args.out.parent / ".hybridrad-cache"
    table, result = robustness_icc(
        cohort,
        args.config,
        n_perturbations=args.perturbations,
        kinds=comma_list(args.kinds) or ("translate", "volume", "contour", "noise"),
        seed=args.seed,
        kind=args.icc,
        sequences=comma_list(args.sequences) or None,
        regions=comma_list(args.regions) or None,
        jobs=args.jobs,
        cache_dir=cache_dir,
        progress=not args.no_progress,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    provenance = {
        "command": "hybridrad robustness",
        "settings": settings,
        "settings_hash": config_hash(settings),
        "manifest_sha256": file_sha256(args.manifest),
        "versions": library_versions(),
        "failures": result.failures.to_dict(orient="records"),
    }
    args.out.with_suffix(".provenance.json").write_text(
        json.dumps(provenance, indent=2, default=str)
    )
    robust = int((table["icc"] >= args.threshold).sum())
    print(
        f"ICC({args.icc}) of {len(table)} features over {len(result.features)} cases x "
        f"{args.perturbations} perturbations -> {args.out}; {robust} with ICC >= {args.threshold}"
    )
    for row in result.failures.itertuples(index=False):
        print(f"  failed: {row.case_id} [{row.stage}] {row.exception}: {row.message}")
    return 0 if result.ok else 1


def _perturbation_kinds(text: str) -> str:
    """``--kinds``: known perturbations only (argparse reports anything else)."""
    from hybridrad.features.robustness import PERTURBATIONS
    from hybridrad.io.manifest import comma_list

    unknown = [k for k in comma_list(text) if k not in PERTURBATIONS]
    if unknown or not comma_list(text):
        raise argparse.ArgumentTypeError(
            f"unknown perturbation(s) {unknown or [text]}; choose from {', '.join(PERTURBATIONS)}"
        )
    return text


def _floats(text: str | None) -> tuple[float, ...] | None:
    return tuple(float(v) for v in text.split(",")) if text else None


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
    print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
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
        cohort = read_cohort(args)
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
        cohort = read_cohort(args)
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


def cmd_contour_agreement(args: argparse.Namespace) -> int:
    """``hybridrad contour-agreement MANIFEST --pred PRED --out OUT``.

    Returns 0, or 1 when some case was excluded (see ``failures.csv``).
    """
    from hybridrad.features.agreement import contour_agreement, format_summary
    from hybridrad.io.manifest import Cohort, cohort_options, comma_list

    cohort = Cohort.from_csv(args.manifest, label_map=args.labels, **cohort_options(args))
    image_types = comma_list(args.image_types)
    result = contour_agreement(
        cohort,
        args.pred,
        config=args.config,
        image_types=None if image_types == ["config"] else image_types or ["Original"],
        sequence=args.sequence,
        regions=comma_list(args.regions) or None,
        confidence=args.confidence,
        jobs=args.jobs,
        scheduler=args.scheduler,
        cache_dir=args.cache_dir or args.out / ".hybridrad-cache",
        progress=not args.no_progress,
        tolerance=args.tolerance,
    )
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    result.save(args.out, {"command": "hybridrad contour-agreement", "arguments": settings})
    print(format_summary(result.summary))
    for row in result.failures.itertuples(index=False):
        print(f"  excluded: {row.case_id} [{row.mask} mask, {row.stage}] {row.exception}")
    print(f"outputs in {args.out} (agreement.csv, summary.json, failures.csv, features_*)")
    return 0 if result.ok else 1


def _add_deep_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``deep-features`` and ``pretrain`` share: cohort, patch, device."""
    p.add_argument("manifest", type=Path, help="cohort manifest CSV (cases need masks)")
    p.add_argument("--labels", default="binary", help="label map preset or YAML (binary)")
    p.add_argument("--sequences", help="comma-separated sequences, in channel order")
    p.add_argument("--region", help="label-map region used as ROI (default: non-zero mask)")
    p.add_argument("--patch-size", help="patch size in voxels: N or X,Y,Z")
    p.add_argument("--spacing", help="patch spacing in mm: S or X,Y,Z")
    p.add_argument("--normalisation", choices=["zscore", "ct", "none"], help="intensity scaling")
    p.add_argument(
        "--device",
        default="auto",
        help="auto (cuda if available, else cpu), cpu, cuda or cuda:N; checked first",
    )
    p.add_argument("--no-progress", action="store_true")


def add_parsers(subparsers: Any) -> None:
    """Register ``extract``, ``robustness``, ``deep-features``, ``pretrain`` and
    ``contour-agreement`` on an argparse subparsers object.

    Parameters
    ----------
    subparsers
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    from hybridrad.features.deep import POOLINGS  # no torch import
    from hybridrad.features.radiomics import add_extraction_arguments

    p = subparsers.add_parser(
        "extract",
        help="handcrafted radiomics (pyradiomics) for every case x sequence x region",
        description="Extract pyradiomics features per case x sequence x region into a "
        "Parquet table (plus .diagnostics.parquet, .failures.csv, .provenance.json). "
        "Finished cases are cached; a rerun recomputes nothing. Exits 1 if any case failed.",
    )
    p.add_argument("manifest", type=Path, help="manifest CSV with a mask column")
    p.add_argument(
        "--config",
        default="mri_glioma",
        help="pyradiomics YAML file or shipped preset: mri_glioma, ct_default, ibsi "
        "(default mri_glioma)",
    )
    p.add_argument("--out", type=Path, required=True, help="features table (.parquet)")
    p.add_argument("--labels", default="binary", help="label map preset or YAML (default binary)")
    p.add_argument("--sequences", help="comma-separated sequences (default: all)")
    p.add_argument("--regions", help="comma-separated label-map regions (default: all)")
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        help="feature engine: pyradiomics, or native (hybridrad.features.engine: the same "
        "features, vectorised; see docs/engine.md). Default: the config's `engine` key, "
        "else pyradiomics",
    )
    add_extraction_arguments(p, cache_default=".hybridrad-cache beside --out")
    p.set_defaults(func=_cmd_extract)

    p = subparsers.add_parser(
        "robustness",
        help="per-feature ICC under image perturbations (translation, volume, contour, noise)",
        description="Re-extract every case under random perturbations and write one ICC per "
        "feature (CSV), to keep only robust features for modelling.",
    )
    p.add_argument("manifest", type=Path)
    p.add_argument("--config", default="mri_glioma", help="pyradiomics YAML or preset")
    p.add_argument("--out", type=Path, required=True, help="ICC table (.csv)")
    p.add_argument("--labels", default="binary", help="label map preset or YAML")
    p.add_argument("--sequences", help="comma-separated sequences (default: all)")
    p.add_argument("--regions", help="comma-separated regions (default: all)")
    p.add_argument(
        "--perturbations", type=int, default=5, help="perturbations per case (default 5)"
    )
    p.add_argument(
        "--kinds",
        type=_perturbation_kinds,
        help="comma-separated: translate,volume,contour,noise (default all)",
    )
    p.add_argument("--icc", default="1,1", choices=["1,1", "2,1", "3,1"], help="ICC form")
    p.add_argument("--threshold", type=float, default=0.75, help="ICC counted as robust")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_robustness)

    p = subparsers.add_parser(
        "deep-features",
        help="deep features of ROI-centred patches from a pretrained 3D encoder",
        description="Deep features deep__<encoder>__<stage>__<index> (ROI-masked global "
        "pooling per stage). Encoders: segmentation[:MODEL_DIR] (default: the "
        "shipped model), fmcib:WEIGHTS, medicalnet-resnet18:WEIGHTS, resnet50:WEIGHTS, "
        "torchscript:FILE, or an encoder directory from `hybridrad pretrain`.",
    )
    _add_deep_arguments(p)
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
    _add_deep_arguments(p)
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

    p = subparsers.add_parser(
        "contour-agreement",
        help="are auto-contours good enough for radiomics? feature ICC, expert vs predicted masks",
        description="Extract handcrafted features from one image inside the reference "
        "(manifest) mask and inside the predicted mask of every case, and report per feature "
        "the ICC(3,1) (consistency, with 95 % CI), the median relative difference and the "
        "Koo & Li reliability band. Exits 1 when some case was excluded.",
    )
    p.add_argument("manifest", type=Path, help="manifest CSV whose mask column is the reference")
    p.add_argument(
        "--pred",
        type=Path,
        required=True,
        help="output folder of `hybridrad segment` (manifest.csv) or a folder of "
        "<case_id>.nii.gz masks",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--sequence", help="image the masks are applied to (default: first sequence)")
    p.add_argument(
        "--config",
        default="mri_glioma",
        help="pyradiomics YAML file or shipped preset (default mri_glioma)",
    )
    p.add_argument(
        "--image-types",
        default="Original",
        help="comma-separated image types kept from the config (default Original; "
        "'config' keeps the config's own)",
    )
    p.add_argument("--labels", default="binary", help="label map preset or YAML (default binary)")
    p.add_argument("--regions", help="comma-separated label-map regions (default: all)")
    p.add_argument(
        "--confidence", type=float, default=0.95, help="ICC interval coverage (default 0.95)"
    )
    add_extraction_arguments(p, cache_default="OUT/.hybridrad-cache")
    p.set_defaults(func=cmd_contour_agreement)
