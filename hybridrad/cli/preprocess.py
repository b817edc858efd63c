"""``hybridrad preprocess``: analysis-ready images from a manifest and a pipeline file.

The handler imports the pipeline (SimpleITK, and deepbet/torch when the pipeline extracts
the brain) only when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hybridrad.cli.common import read_cohort


def cmd_preprocess(args: argparse.Namespace) -> int:
    """``hybridrad preprocess MANIFEST --config C --out DIR``."""
    from hybridrad.preprocess.pipeline import load_pipeline, preprocess_cohort

    config, source = load_pipeline(args.config)
    cohort = read_cohort(args)
    print(f"pipeline {source.name} ({config.hash}): {' -> '.join(config.steps()) or 'no steps'}")
    result, manifest = preprocess_cohort(
        cohort,
        config,
        args.out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        cache_dir=args.cache_dir or Path(args.out) / ".hybridrad-cache",
        progress=not args.no_progress,
        config_source=str(source),
    )
    seconds = result.features.filter(like="seconds__")
    if not seconds.empty:
        per_step = ", ".join(
            f"{c.removeprefix('seconds__')} {v:.1f}" for c, v in seconds.mean().items()
        )
        print(f"mean seconds per case: {per_step}")
    print(
        f"{len(result.features)} case(s) -> {Path(args.out) / 'images'}; manifest {manifest} "
        f"({result.n_cached} from cache, {result.n_computed} computed, "
        f"{len(result.failures)} failed, {result.seconds:.1f} s)"
    )
    for row in result.failures.itertuples(index=False):
        print(f"  {row.case_id} [{row.stage}] {row.exception}: {row.message}")
    return 0 if result.ok else 1


def add_parsers(subparsers: Any) -> None:
    """Register ``preprocess`` on an argparse subparsers object (imports no pipeline code:
    the presets are the files of ``configs/preprocess``)."""
    from importlib import resources

    folder = resources.files("hybridrad") / "configs" / "preprocess"
    presets = sorted(f.name[: -len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml"))

    p = subparsers.add_parser(
        "preprocess",
        help="bias correction, co-registration, brain extraction, normalisation (a pipeline file)",
        description="Run a preprocessing pipeline over a manifest's cases and write the "
        "processed images, brain masks and a new manifest (OUT/manifest.csv) for segment, "
        "extract and deep-features. Steps run in a fixed order: reorient, resample, "
        "coregister, bias_correction, denoise, brain_extraction, normalise / ct_window, crop.",
    )
    p.add_argument("manifest", type=Path, help="cohort manifest CSV")
    p.add_argument(
        "--config",
        required=True,
        help=f"pipeline YAML file or shipped preset ({', '.join(presets)})",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--labels",
        default="binary",
        help="label map of the manifest's masks (default: binary, as in `validate`)",
    )
    p.add_argument("--sequences", help="comma-separated sequence columns (default: all)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port)")
    p.add_argument("--cache-dir", type=Path, help="per-case cache (default: OUT/.hybridrad-cache)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_preprocess)
