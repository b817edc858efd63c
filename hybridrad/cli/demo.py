"""``demo``: the main job on a synthetic cohort, end to end, hard-coded."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hybridrad.cli.cohort import add_cohort_arguments, make_demo_cohort


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default, end to end:

    synthetic cohort -> validation -> auto-segmentation (shipped model) -> segmentation
    quality -> handcrafted + deep features from the predicted masks -> nested-CV
    comparison of clinical / handcrafted / deep / hybrid survival models vs the oracle.
    """
    from hybridrad.features.deep import extract_deep
    from hybridrad.features.radiomics import extract_radiomics
    from hybridrad.io import Cohort
    from hybridrad.models import StudyConfig, compare_feature_sets, fuse, survival_target
    from hybridrad.models.pipelines import headline, interpret
    from hybridrad.provenance import library_versions
    from hybridrad.segment import segment_cohort
    from hybridrad.segment.evaluate import evaluate_masks

    synthetic = make_demo_cohort(args)
    cohort = Cohort.from_csv(
        synthetic.manifest_path,
        label_map="brats",
        clinical=synthetic.clinical_path,
    )
    report = cohort.validate(time="os_months", event="death")
    print(f"[1/5] validation: {report.summary()}")
    if not report.ok:
        return 1
    cache = args.out / ".hybridrad-cache"
    seg, manifest = segment_cohort(
        cohort,
        args.out / "segmentation",
        model_dir="synthetic-brats",  # the phantom model; real scans use glioma-flair*
        cache_dir=cache,
        jobs=1,
        progress=True,
    )
    dice = evaluate_masks(cohort, args.out / "segmentation").groupby("region")["dice"].mean()
    print(
        "[2/5] auto-segmentation (shipped model synthetic-brats): mean Dice "
        + ", ".join(f"{r} {d:.3f}" for r, d in dice.items())
    )
    predicted = Cohort.from_csv(manifest, label_map="brats", clinical=cohort.clinical)
    rad = extract_radiomics(predicted, args.config, jobs=args.jobs, cache_dir=cache, progress=True)
    rad.save(
        args.out / "radiomics.parquet",
        provenance={
            "command": "hybridrad demo",
            "seed": args.seed,
            "config": args.config,
            "versions": library_versions(),
        },
    )
    print(f"[3/5] handcrafted: {rad.features.shape[1]} features, {len(rad.failures)} failed")
    deep = extract_deep(predicted, cache_dir=cache, progress=True)
    deep.save(
        args.out / "deep.parquet",
        provenance={"command": "hybridrad demo", "seed": args.seed, "versions": library_versions()},
    )
    print(
        f"[4/5] deep (segmentation encoder): {deep.features.shape[1]} features, "
        f"{len(deep.failures)} failed"
    )
    clinical = cohort.clinical
    assert clinical is not None
    X = fuse([rad.features, deep.features], clinical=clinical, covariates=["age", "mgmt_promoter"])
    y = survival_target(clinical, "os_months", "death", list(X.index))
    config = StudyConfig(
        covariates=("age", "mgmt_promoter"),
        outer_repeats=1,
        n_boot=100,
        screen_k=(5, 10),
        prescreen_k=50,
        seed=args.seed,
        n_jobs=args.jobs,
    )
    table, _ = compare_feature_sets(X, y, config)
    table.to_csv(args.out / "comparison.csv")
    print(
        f"[5/5] overall survival, {config.outer_splits}-fold x {config.outer_repeats} nested "
        "CV: Harrell's C with 95 % CI, paired difference to the clinical model (delta), "
        "permutation p of the hybrid model:"
    )
    print(headline(table, "survival").round(3).to_string())
    for line in interpret(table, config, "survival", n_events=int(y["event"].sum())):
        print(f"      {line}")
    print(f"      CI: {table.attrs['ci_method']}")
    print(f"      oracle C-index (true risk): {synthetic.oracle_cindex:.3f}")
    print(f"outputs in {args.out}")
    failed = len(rad.failures) + len(deep.failures) + len(seg.failures)
    return 0 if failed == 0 else 1


def add_parsers(sub: Any) -> None:
    """Register ``demo``.

    Parameters
    ----------
    sub
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    helptext = "run the main job on a synthetic demo cohort"
    p = sub.add_parser("demo", help=helptext, description=helptext)
    p.add_argument(
        "out",
        type=Path,
        nargs="?",
        default=Path("demo-output"),
        help="output folder (default ./demo-output)",
    )
    add_cohort_arguments(p, default_cases=40)
    p.add_argument(
        "--config",
        default="mri_glioma_fast",
        help="radiomics config (default mri_glioma_fast; mri_glioma for all features)",
    )
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.set_defaults(func=_cmd_demo)
