"""Command-line handlers of the modelling commands: ``evaluate``, ``fit``, ``predict``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridrad.models.pipelines import StudyConfig
    from hybridrad.models.study import StudyData


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _study_data(args: argparse.Namespace) -> tuple[StudyData, StudyConfig]:
    from hybridrad.models.pipelines import StudyConfig
    from hybridrad.models.study import load_study

    config = StudyConfig.load(args.config)
    overrides = {}
    if args.model:
        overrides["model"] = args.model
    if getattr(args, "repeats", None):
        overrides["outer_repeats"] = args.repeats
    if args.seed is not None:
        overrides["seed"] = args.seed
    if _split(args.covariates):
        overrides["covariates"] = tuple(_split(args.covariates))
    if overrides:
        config = StudyConfig.from_dict({**config.to_dict(), **overrides})
    data = load_study(
        args.features,
        args.clinical,
        time=args.time,
        event=args.event,
        label=args.label,
        covariates=config.covariates,
        site=config.combat,
    )
    return data, config


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hybridrad.models.study import evaluate_study

    data, config = _study_data(args)
    table, _ = evaluate_study(data, config, args.out)
    print(table.round(3).to_string())
    print(f"results written to {args.out}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from hybridrad.models.final import fit_final

    data, config = _study_data(args)
    folder = fit_final(data, config, args.feature_set, args.out)
    print(f"final model ({args.feature_set}) saved to {folder}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from hybridrad.models.final import predict_study

    table = predict_study(args.model_dir, args.features, args.clinical)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out)
    print(f"{len(table)} predictions written to {args.out}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add the modelling subcommands to the ``hybridrad`` parser."""
    for name, func, helptext in (
        (
            "evaluate",
            _cmd_evaluate,
            "nested-CV comparison of clinical / handcrafted / deep / hybrid feature sets",
        ),
        ("fit", _cmd_fit, "tune on all cases and save the final model (no pickle)"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument(
            "features",
            type=Path,
            nargs="+",
            help="feature tables (.parquet or .csv) indexed by case_id",
        )
        p.add_argument("--clinical", type=Path, required=True, help="clinical CSV")
        p.add_argument("--time", help="survival time column")
        p.add_argument("--event", help="event column (1 event, 0 censored)")
        p.add_argument("--label", help="class label column (instead of --time/--event)")
        p.add_argument("--covariates", help="comma-separated clinical covariates (clin block)")
        p.add_argument("--config", type=Path, help="study YAML (see configs/studies/)")
        p.add_argument(
            "--model",
            help="override the model: cox, coxnet, xgb_cox, xgb_aft, "
            "rsf (survival); logistic, xgb (classification)",
        )
        p.add_argument("--seed", type=int, help="override the seed")
        p.add_argument(
            "--out",
            type=Path,
            required=True,
            help="output folder" if name == "evaluate" else "model folder",
        )
        if name == "evaluate":
            p.add_argument("--repeats", type=int, help="override the outer-CV repeats")
        else:
            p.add_argument("--feature-set", default="hybrid", help="feature set (default hybrid)")
        p.set_defaults(func=func)

    p = sub.add_parser("predict", help="predict with a saved model")
    p.add_argument("model_dir", type=Path)
    p.add_argument("features", type=Path, nargs="+")
    p.add_argument("--clinical", type=Path, help="clinical CSV (for clinical covariates)")
    p.add_argument("--out", type=Path, required=True, help="predictions CSV")
    p.set_defaults(func=_cmd_predict)
