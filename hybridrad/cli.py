"""The ``hybridrad`` command line: a thin layer over the Python API.

Every subcommand parses its arguments and calls the public API; ``main(argv)`` returns
the exit status so tests can call it in-process.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hybridrad import __version__
from hybridrad.errors import HybridradError
from hybridrad.io.manifest import add_input_arguments, cohort_options, comma_list

log = logging.getLogger("hybridrad")

Handler = Callable[[argparse.Namespace], int]

if TYPE_CHECKING:
    from hybridrad.datasets.synthetic import SyntheticCohort


#: Commands that read a manifest; each gets ``--nonfinite`` and ``--allow-outside``.
MANIFEST_COMMANDS = (
    "validate",
    "extract",
    "robustness",
    "seg-train",
    "segment",
    "seg-eval",
    "deep-features",
    "pretrain",
    "contour-agreement",
)


def _cmd_validate(args: argparse.Namespace) -> int:
    from hybridrad.io import Cohort

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


def _cmd_extract(args: argparse.Namespace) -> int:
    from hybridrad.features.radiomics import RadiomicsConfig, RadiomicsTask
    from hybridrad.io import Cohort
    from hybridrad.provenance import file_sha256, library_versions
    from hybridrad.runner import run_cohort

    cohort = Cohort.from_csv(args.manifest, label_map=args.labels, **cohort_options(args))
    config = RadiomicsConfig.load(args.config)
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

    unknown = [k for k in comma_list(text) if k not in PERTURBATIONS]
    if unknown or not comma_list(text):
        raise argparse.ArgumentTypeError(
            f"unknown perturbation(s) {unknown or [text]}; choose from {', '.join(PERTURBATIONS)}"
        )
    return text


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


def _make_cohort(args: argparse.Namespace) -> SyntheticCohort:
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
    _make_cohort(args)
    return 0


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

    synthetic = _make_cohort(args)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hybridrad`` command."""
    parser = argparse.ArgumentParser(
        prog="hybridrad",
        description="Hybrid radiomics + deep-feature prognostics for cohorts of scans.",
    )
    parser.add_argument("--version", action="version", version=f"hybridrad {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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

    p = sub.add_parser(
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
    from hybridrad.features.radiomics import add_extraction_arguments

    add_extraction_arguments(p, cache_default=".hybridrad-cache beside --out")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser(
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

    from hybridrad.study.cli import add_parsers as add_model_parsers

    add_model_parsers(sub)

    from hybridrad.segment.cli import add_parsers as add_segment_parsers

    add_segment_parsers(sub)
    from hybridrad.segment.registry import add_parsers as add_registry_parsers

    add_registry_parsers(sub)
    from hybridrad.features.deep_cli import add_parsers as add_deep_parsers

    add_deep_parsers(sub)
    from hybridrad.features.agreement import add_parsers as add_agreement_parsers

    add_agreement_parsers(sub)

    for name in MANIFEST_COMMANDS:
        add_input_arguments(sub.choices[name])

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

    for name, func, default_cases, helptext in (
        (
            "demo-cohort",
            _cmd_demo_cohort,
            40,
            "generate the synthetic ground-truth cohort (images, masks, manifest, clinical)",
        ),
        ("demo", _cmd_demo, 40, "run the main job on a synthetic demo cohort"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        if name == "demo":
            p.add_argument(
                "out",
                type=Path,
                nargs="?",
                default=Path("demo-output"),
                help="output folder (default ./demo-output)",
            )
        else:
            p.add_argument("out", type=Path, help="output folder")
        p.add_argument(
            "--cases",
            type=int,
            default=default_cases,
            help=f"number of patients (default {default_cases})",
        )
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
        if name == "demo":
            p.add_argument(
                "--config",
                default="mri_glioma_fast",
                help="radiomics config (default mri_glioma_fast; mri_glioma for all features)",
            )
            p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
        p.set_defaults(func=func)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    """hybridrad's messages at INFO (DEBUG with -vv, WARNING with -q); other libraries'
    at WARNING unless -vv. pyradiomics' own stderr handler is left to itself."""
    ours = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    theirs = logging.DEBUG if verbose > 1 else logging.WARNING

    def keep(record: logging.LogRecord) -> bool:
        level = ours if record.name.startswith("hybridrad") else theirs
        return record.levelno >= level

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(keep)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_hybridrad", False)]
    setattr(handler, "_hybridrad", True)  # noqa: B010 - marks our own handler
    root.addHandler(handler)
    root.setLevel(min(ours, theirs))
    logging.getLogger("radiomics").propagate = False  # it prints through its own handler


#: What ``--out`` is for each command: a folder, or a file with one of these suffixes.
#: Checked before any case is computed (:mod:`hybridrad.preflight`).
OUTPUTS: dict[str, str | tuple[str, ...]] = {
    "extract": (".parquet",),
    "robustness": (".csv",),
    "evaluate": "folder",
    "fit": "folder",
    "predict": (".csv",),
    "score": "folder",
    "seg-train": "folder",
    "segment": "folder",
    "seg-eval": (".csv",),
    "deep-features": (".parquet",),
    "pretrain": "folder",
    "contour-agreement": "folder",
    "discover": (".csv",),
    "demo-cohort": "folder",
    "demo": "folder",
}

#: Exit statuses of :func:`main`.
EXIT_OK, EXIT_FAILED_CASES, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def preflight(args: argparse.Namespace) -> None:
    """Refuse, before any compute, outputs that cannot be written and absent devices."""
    from hybridrad import preflight as pf

    kind = OUTPUTS.get(args.command)
    out = getattr(args, "out", None)
    if kind is not None and out is not None:
        if kind == "folder":
            pf.output_folder(out)
        else:
            pf.output_file(out, kind)
    report = getattr(args, "report", None)
    if report is not None:
        pf.output_file(report, (".csv",), what="--report")
    device = getattr(args, "device", None)
    if device is not None:
        pf.check_device(device)


def _input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a problem with the user's input (exit 2) rather than a bug."""
    import yaml

    return isinstance(exc, (HybridradError, OSError, yaml.YAMLError))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "(no message)"


#: Lower bounds of the numeric options of every command (``dest``: (bound, inclusive)).
#: A value outside is a usage error (exit 2) before anything runs.
NUMBER_BOUNDS: dict[str, tuple[float, bool]] = {
    "jobs": (1, True),
    "cases": (2, True),
    "perturbations": (2, True),
    "epochs": (1, True),
    "batch_size": (1, True),
    "sw_batch_size": (1, True),
    "repeats": (1, True),
    "n_boot": (0, True),
    "num_workers": (0, True),
    "threads": (1, True),
    "tolerance": (0, True),
    "max_minutes": (0, False),
    "lr": (0, False),
    "temperature": (0, False),
    "horizon": (0, False),
    "confidence": (0, False),
}


def check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse numeric options that are not finite or below their bound (``NUMBER_BOUNDS``),
    and a ``--confidence`` of 1 or more, with argparse's usage error (exit 2)."""
    import math

    for dest, (low, inclusive) in NUMBER_BOUNDS.items():
        value = getattr(args, dest, None)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        flag = "--" + dest.replace("_", "-")
        if not math.isfinite(value):
            parser.error(f"{flag} must be a finite number, got {value}")
        if value < low or (value == low and not inclusive):
            parser.error(f"{flag} must be {'>=' if inclusive else '>'} {low:g}, got {value:g}")
    confidence = getattr(args, "confidence", None)
    if isinstance(confidence, float) and confidence >= 1:
        parser.error(f"--confidence must be below 1, got {confidence:g}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success; 1 the data has problems (validation failed, some cases failed: the
    others are written); 2 bad input or usage stopped the run (one line naming the
    case, file or column and the fix); 3 an internal error (a bug: please report it).
    Tracebacks are printed only with ``-v``; interrupted runs keep their cache.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    check_numbers(parser, args)
    _configure_logging(args.verbose, args.quiet)
    handler: Handler = args.func
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            preflight(args)
            return handler(args)
        except KeyboardInterrupt:
            print(
                "interrupted: finished cases are cached; rerun the command to resume",
                file=sys.stderr,
            )
            return 130
        except Exception as exc:
            if args.verbose:
                import traceback

                traceback.print_exc()
            message = _one_line(exc)
            if _input_error(exc):
                for problem in getattr(exc, "problems", None) or [exc]:
                    print(f"error: {type(problem).__name__}: {_one_line(problem)}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(
                f"internal error: {type(exc).__name__}: {message}. This is a bug in "
                f"hybridrad {__version__}; rerun with -v for the traceback and report it.",
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        finally:
            summary = summarize_warnings(caught)
            if summary:
                print(summary, file=sys.stderr)


def summarize_warnings(caught: Sequence[warnings.WarningMessage]) -> str:
    """Every distinct warning once, with how often it was raised (the end of a run).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     for _ in range(3):
    ...         warnings.warn("few events", UserWarning)
    >>> print(summarize_warnings(w))
    warnings (3 in all, 1 distinct):
      UserWarning: few events (x3)
    """
    counts: dict[tuple[str, str], int] = {}
    for w in caught:
        key = (w.category.__name__, str(w.message).strip())
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    lines = [f"warnings ({sum(counts.values())} in all, {len(counts)} distinct):"]
    for (category, message), n in counts.items():
        lines.append(f"  {category}: {message}" + (f" (x{n})" if n > 1 else ""))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
