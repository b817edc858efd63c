"""Cohort commands: ``validate``, ``discover`` and ``demo-cohort``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridrad.datasets.synthetic import SyntheticCohort


def _cmd_validate(args: argparse.Namespace) -> int:
    from hybridrad.io import Cohort
    from hybridrad.io.manifest import cohort_options

    cohort = Cohort.from_csv(
        args.manifest,
        sequences=args.sequences.split(",") if args.sequences else None,
        label_map=args.labels,
        clinical=args.clinical,
        **cohort_options(args),
    )
    report = cohort.validate(
        time=args.time,
        event=args.event,
        tolerance=args.tolerance,
        check_mask_values=not args.headers_only,
        jobs=args.jobs,
    )
    print(f"{cohort!r}")
    print(report.summary())
    if args.report:
        report.to_frame().to_csv(args.report, index=False)
        print(f"problem table written to {args.report}")
    return 0 if report.ok else 1


def _cmd_discover(args: argparse.Namespace) -> int:
    from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
    from hybridrad.io import write_manifest

    if args.layout == "brats":
        table = discover_brats(args.folder)
    else:
        table, clinical = discover_lgg_tcga(args.folder)
        print(f"clinical table: {clinical}")
    write_manifest(table, args.out)
    print(f"{len(table)} cases, sequences {[c for c in table.columns[1:] if c != 'mask']}")
    print(f"manifest written to {args.out}")
    return 0


def make_demo_cohort(args: argparse.Namespace) -> SyntheticCohort:
    """Write the synthetic cohort of ``args`` (``out``, ``cases``, ``seed``, ``overwrite``)
    and print where it is and its oracle figures."""
    from hybridrad.datasets.synthetic import make_synthetic_cohort

    cohort = make_synthetic_cohort(
        args.out, n_cases=args.cases, seed=args.seed, overwrite=args.overwrite
    )
    print(f"synthetic cohort: {args.cases} cases, seed {args.seed} -> {cohort.root}")
    print(f"  manifest: {cohort.manifest_path}")
    print(f"  clinical: {cohort.clinical_path}")
    print(f"  oracle C-index (true risk vs observed survival): {cohort.oracle_cindex:.3f}")
    print(f"  oracle AUC, IDH wild-type vs mutant:             {cohort.oracle_auc_idh:.3f}")
    print(f"  oracle AUC, 1p/19q codeletion:                   {cohort.oracle_auc_codel:.3f}")
    return cohort


def _cmd_demo_cohort(args: argparse.Namespace) -> int:
    make_demo_cohort(args)
    return 0


def add_cohort_arguments(p: argparse.ArgumentParser, default_cases: int) -> None:
    """``--cases``, ``--seed`` and ``--overwrite`` of the synthetic cohort."""
    p.add_argument(
        "--cases",
        type=int,
        default=default_cases,
        help=f"number of patients (default {default_cases})",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def add_parsers(sub: Any) -> None:
    """Register ``validate``, ``discover`` and ``demo-cohort``.

    Parameters
    ----------
    sub
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "validate",
        help="check a cohort manifest (and clinical table), reporting every problem",
        description="Check a manifest: files, geometry, mask labels, survival columns. "
        "Exits 1 when anything is wrong.",
    )
    p.add_argument(
        "manifest", type=Path, help="manifest CSV (case_id, one column per sequence, mask, site)"
    )
    p.add_argument("--clinical", type=Path, help="clinical CSV joined on case_id")
    p.add_argument("--time", help="clinical column with the survival time")
    p.add_argument("--event", help="clinical column with the event indicator (1 event, 0 censored)")
    p.add_argument(
        "--labels",
        default="binary",
        help="label map: preset (binary, brats, brats2015, brats2012, brats2023) or YAML file",
    )
    p.add_argument("--sequences", help="comma-separated sequence columns (default: all others)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="geometry tolerance in mm / direction cosine (default 1e-3)",
    )
    p.add_argument(
        "--headers-only",
        action="store_true",
        help="do not read masks fully (skips the mask-value check)",
    )
    p.add_argument("--jobs", type=int, default=4, help="reader threads (default 4)")
    p.add_argument("--report", type=Path, help="write the problems as a CSV table")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("discover", help="write a manifest for a known dataset layout")
    p.add_argument(
        "layout",
        choices=["brats", "lgg-tcga"],
        help="brats: one folder per case with *_flair/*_t1/... files; "
        "lgg-tcga: cases/<id>/{t1,t1c,flair,mask}.nii.gz",
    )
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    p.set_defaults(func=_cmd_discover)

    helptext = "generate the synthetic ground-truth cohort (images, masks, manifest, clinical)"
    p = sub.add_parser("demo-cohort", help=helptext, description=helptext)
    p.add_argument("out", type=Path, help="output folder")
    add_cohort_arguments(p, default_cases=40)
    p.set_defaults(func=_cmd_demo_cohort)
