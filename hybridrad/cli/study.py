"""Modelling commands: ``evaluate``, ``fit``, ``predict``, ``score``.

Every handler parses its arguments into calls of the public API
(:func:`~hybridrad.study.load_study` and friends); errors are
:class:`~hybridrad.errors.HybridradError` subclasses that :func:`hybridrad.cli.main` turns
into one ``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrad.errors import HybridradError

if TYPE_CHECKING:
    from hybridrad.models.data import StudyData
    from hybridrad.models.evaluate import Task
    from hybridrad.models.pipelines import StudyConfig


BLOCKS = ("rad", "deep", "clin")
"""``fusion.KNOWN_BLOCKS``, spelled out so that building the parser imports no pandas."""


class CommandLineError(HybridradError, ValueError):
    """Arguments of a modelling command that do not fit together."""


def _task(args: argparse.Namespace) -> Task:
    """The task the target arguments ask for."""
    if (args.label is None) == (args.time is None or args.event is None):
        raise CommandLineError(
            "give either --time and --event (survival) or --label (classification)"
        )
    return "classification" if args.label is not None else "survival"


def _covariates(text: str | None) -> tuple[str, ...] | None:
    """``--covariates``: ``None`` keeps the config's, ``none`` (or empty) means none."""
    from hybridrad.io.manifest import comma_list

    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(comma_list(text))


def _config(args: argparse.Namespace, task: Task) -> StudyConfig:
    """The study config (``--config`` or the shipped default) with the overrides."""
    from hybridrad.models.pipelines import CLASSIFIERS, SURVIVAL_MODELS, StudyConfig

    config = StudyConfig.load(args.config)
    overrides: dict[str, Any] = {}
    if args.model:
        if args.model in CLASSIFIERS:
            if task == "survival":
                raise CommandLineError(
                    f"--model {args.model} is a classifier but --time/--event ask for "
                    f"survival; use one of {', '.join(SURVIVAL_MODELS)}"
                )
            overrides["classifier"] = args.model
        elif args.model in SURVIVAL_MODELS:
            if task == "classification":
                raise CommandLineError(
                    f"--model {args.model} is a survival model but --label asks for "
                    f"classification; use one of {', '.join(CLASSIFIERS)}"
                )
            overrides["model"] = args.model
        else:
            raise CommandLineError(
                f"unknown --model {args.model!r}; survival: {', '.join(SURVIVAL_MODELS)}; "
                f"classification: {', '.join(CLASSIFIERS)}"
            )
    if getattr(args, "repeats", None):
        overrides["outer_repeats"] = args.repeats
    if args.seed is not None:
        overrides["seed"] = args.seed
    covariates = _covariates(args.covariates)
    if covariates is not None:
        overrides["covariates"] = list(covariates)
    if overrides:
        config = StudyConfig.from_dict({**config.to_dict(), **overrides})
    return config


def _study_data(args: argparse.Namespace) -> tuple[StudyData, StudyConfig]:
    from hybridrad.study.load import load_study

    task = _task(args)
    config = _config(args, task)
    data = load_study(
        args.features,
        args.clinical,
        time=args.time,
        event=args.event,
        label=args.label,
        positive=args.positive,
        covariates=config.covariates,
        site=config.combat,
        id_column=args.id_column,
        block=args.block,
        drop_missing=args.drop_missing,
    )
    _describe(data, config.model_for(data.task))
    return data, config


def _describe(data: StudyData, model: str | None = None) -> None:
    """One line on what is modelled."""
    if data.task == "classification":
        n_pos = int(sum(data.y))
        target = (
            f"classification, positive class {data.positive!r} ({n_pos} cases) vs "
            f"{data.negative!r} ({len(data.y) - n_pos})"
        )
    else:
        target = f"survival, {int(data.y['event'].sum())} events"
    with_model = f", model {model}" if model else ""
    print(f"{len(data.X)} cases x {data.X.shape[1]} columns; {target}{with_model}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hybridrad.models.pipelines import headline
    from hybridrad.study.evaluate import evaluate_study

    data, config = _study_data(args)
    table, _ = evaluate_study(data, config, args.out)
    print(headline(table, data.task).round(3).to_string())
    print((Path(args.out) / "interpretation.txt").read_text(), end="")
    print(f"results (every column in comparison.csv) written to {args.out}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from hybridrad.models.final import fit_final

    data, config = _study_data(args)
    folder = fit_final(data, config, args.feature_set, args.out)
    print(f"final model ({args.feature_set}) saved to {folder}")
    return 0


def _model_metadata(model_dir: Path) -> dict[str, Any]:
    """The ``metadata`` of a saved model, with its ``features`` and ``task``."""
    from hybridrad.models.persist import read_model_info

    meta = read_model_info(model_dir).get("metadata") or {}
    if "features" not in meta or "task" not in meta:
        raise CommandLineError(
            f"{model_dir} was not saved by `hybridrad fit` (its metadata has no features "
            "and task); refit it with `hybridrad fit`"
        )
    return dict(meta)


def _model_covariates(columns: list[str]) -> list[str]:
    """The clinical covariates behind a model's ``clin__`` columns (one-hot ones included)."""
    from hybridrad.models.fusion import CLINICAL, SEP, block_prefix

    return sorted({c.split(SEP)[1] for c in columns if block_prefix(c) == CLINICAL})


def _score_covariates(model_dir: Path, meta: dict[str, Any], clinical: Path) -> list[str]:
    """Covariates of the model (required) and of its clinical reference model (when the
    clinical table has them; ``score_model`` says so when it cannot score that model)."""
    import pandas as pd

    from hybridrad.models.persist import read_model_info

    required = _model_covariates(list(meta["features"]))
    extra: list[str] = []
    sub = meta.get("clinical_model")
    if sub and (model_dir / str(sub)).is_dir() and Path(clinical).is_file():
        sub_meta = read_model_info(model_dir / str(sub)).get("metadata") or {}
        header = set(pd.read_csv(clinical, nrows=0).columns)
        extra = [c for c in _model_covariates(list(sub_meta.get("features", []))) if c in header]
    return sorted(set(required) | set(extra))


def _cmd_predict(args: argparse.Namespace) -> int:
    from hybridrad.models.final import predict_study

    meta = _model_metadata(args.model_dir)
    table = predict_study(
        args.model_dir,
        args.features,
        args.clinical,
        id_column=args.id_column,
        block=args.block,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out)
    print(f"{len(table)} predictions written to {args.out}")
    if meta.get("positive") is not None:
        print(f"p_1 is the probability of {meta['positive']!r} (p_0: {meta.get('negative')!r})")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from hybridrad.study.load import load_study

    task = _task(args)
    meta = _model_metadata(args.model_dir)
    if meta["task"] != task:
        wanted = "--label" if meta["task"] == "classification" else "--time and --event"
        raise CommandLineError(
            f"{args.model_dir} is a {meta['task']} model: give {wanted} (not the {task} target)"
        )
    trained = meta.get("positive")
    if args.positive is not None and trained is not None and str(args.positive) != str(trained):
        raise CommandLineError(
            f"{args.model_dir} was fitted to predict {trained!r} (its positive class), not "
            f"{args.positive!r}: leave out --positive, or pass --positive {trained}"
        )
    positive = args.positive if args.positive is not None else trained
    data = load_study(
        args.features,
        args.clinical,
        time=args.time,
        event=args.event,
        label=args.label,
        positive=None if positive is None else str(positive),
        covariates=_score_covariates(args.model_dir, meta, args.clinical),
        site=bool(meta.get("site_column")),
        id_column=args.id_column,
        block=args.block,
        drop_missing=args.drop_missing,
    )
    if data.task == "classification" and positive is None:
        _check_positive_is_unambiguous(data, args.model_dir)
    _describe(data)
    from hybridrad.study.external import score_model  # written beside this command

    options = {"horizon": args.horizon, "n_boot": args.n_boot, "seed": args.seed}
    result = score_model(
        args.model_dir, data, args.out, **{k: v for k, v in options.items() if v is not None}
    )
    print(_summary(result))
    if isinstance(result.get("clinical"), dict):
        print(f"clinical reference model: {_summary(result['clinical'])}")
    print(f"results written to {args.out}")
    return 0


def _check_positive_is_unambiguous(data: StudyData, model_dir: Path) -> None:
    """Refuse to guess the positive class of an external label that has no convention.

    The minority class of the external cohort need not be the one the model was fitted
    with as positive, and a swapped class turns an AUC into 1 - AUC.
    """
    from hybridrad.models.target import POSITIVE_CONVENTIONS

    pair = {str(data.positive).lower(), str(data.negative).lower()}
    if not any(pair == set(conv) for conv in POSITIVE_CONVENTIONS):
        raise CommandLineError(
            f"{model_dir} does not record its positive class and the label's classes "
            f"({data.negative!r}, {data.positive!r}) have no obvious one: pass --positive "
            "VALUE with the class the model was fitted to predict"
        )


_SUMMARY_KEYS = (
    "n",
    "n_events",
    "n_positive",
    "calibration_slope",
    "hazard_ratio",
    "logrank_p",
    "sensitivity",
    "specificity",
)


def _summary(result: dict[str, Any]) -> str:
    """``c_index 0.712 (95% CI 0.650-0.770); n 80; ...`` from ``score_model``'s dict."""

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def fmt(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    parts = []
    heads = [k for k in ("c_index", "harrell_c", "auc") if number(result.get(k))]
    for key in heads[:1]:
        text = f"{key} {float(result[key]):.3f}"
        low: Any = result.get("ci_low")
        high: Any = result.get("ci_high")
        if number(low) and number(high) and not math.isnan(float(low)):
            text += f" (95% CI {float(low):.3f}-{float(high):.3f})"
        parts.append(text)
    parts += [f"{k} {fmt(result[k])}" for k in _SUMMARY_KEYS if number(result.get(k))]
    return "; ".join(parts) if parts else str(result)


def _add_table_options(p: argparse.ArgumentParser, *, drop_missing: bool = True) -> None:
    """``--id-column``, ``--block`` (and ``--drop-missing``), shared by every command."""
    p.add_argument(
        "--id-column",
        metavar="NAME",
        help="column with the case ids in the feature tables and the clinical table "
        "(default: case_id; required when there is no case_id column)",
    )
    p.add_argument(
        "--block",
        choices=BLOCKS,
        default="rad",
        help="block that feature columns without a rad__/deep__/clin__ prefix go to, as "
        "<block>__<name> (default rad)",
    )
    if drop_missing:
        p.add_argument(
            "--drop-missing",
            action="store_true",
            help="leave out cases without a target value (listed) instead of stopping",
        )


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time", help="survival time column")
    p.add_argument("--event", help="event column (1 event, 0 censored)")
    p.add_argument("--label", help="binary class label column (instead of --time/--event)")
    p.add_argument(
        "--positive",
        metavar="VALUE",
        help="the positive class of --label (that value vs the rest; required when the "
        "label has more than two values; default: 1/true/yes/positive, else the less "
        "frequent class)",
    )


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
            help="feature tables (.parquet, .csv or .tsv) with a case_id (or --id-column) column",
        )
        p.add_argument("--clinical", type=Path, required=True, help="clinical CSV")
        _add_target_options(p)
        p.add_argument(
            "--covariates",
            help="comma-separated clinical covariates (clin block), 'none' for none "
            "(default: the study config's, [age] in the shipped default)",
        )
        p.add_argument(
            "--config",
            metavar="YAML_OR_NAME",
            help="model config: a YAML path or a shipped name (default; see "
            "configs/models/); default: the shipped default",
        )
        p.add_argument(
            "--model",
            help="override the model: cox, coxnet, xgb_cox, xgb_aft, rsf (survival, sets "
            "`model`); logistic, xgb (classification, sets `classifier`)",
        )
        p.add_argument("--seed", type=int, help="override the seed")
        p.add_argument(
            "--out",
            type=Path,
            required=True,
            help="output folder" if name == "evaluate" else "model folder",
        )
        _add_table_options(p)
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
    _add_table_options(p, drop_missing=False)
    p.set_defaults(func=_cmd_predict)

    helptext = "score a saved model on an external cohort (C-index / AUC with bootstrap CI)"
    p = sub.add_parser("score", help=helptext, description=helptext)
    p.add_argument("model_dir", type=Path, help="model folder written by `hybridrad fit`")
    p.add_argument("features", type=Path, nargs="+", help="feature tables of the cohort")
    p.add_argument("--clinical", type=Path, required=True, help="clinical CSV with the target")
    _add_target_options(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--horizon",
        type=float,
        help="survival calibration horizon (default: the one saved by `fit`, the median "
        "training event time or the study's first `times`)",
    )
    p.add_argument(
        "--n-boot", type=int, help="bootstrap resamples of the CIs (default 1000; 0: no CI)"
    )
    p.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
    _add_table_options(p)
    p.set_defaults(func=_cmd_score)
