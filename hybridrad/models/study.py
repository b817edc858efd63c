"""Study-level API behind ``hybridrad evaluate`` / ``fit`` / ``predict``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from hybridrad.errors import HybridradError
from hybridrad.io.manifest import read_clinical
from hybridrad.models.evaluate import EvaluationResult, Task
from hybridrad.models.fusion import block_of, fuse
from hybridrad.models.metrics import survival_scorer
from hybridrad.models.pipelines import (
    StudyConfig,
    build_pipeline,
    compare_feature_sets,
    load_feature_tables,
)
from hybridrad.models.target import class_target, survival_target
from hybridrad.provenance import file_sha256, library_versions


@dataclass
class StudyData:
    """Fused features and the target of a study."""

    X: pd.DataFrame
    y: Any
    task: Task
    inputs: dict[str, str]


def load_study(
    features: Sequence[str | os.PathLike[str]],
    clinical: str | os.PathLike[str],
    *,
    time: str | None = None,
    event: str | None = None,
    label: str | None = None,
    covariates: Sequence[str] = (),
    site: bool = False,
) -> StudyData:
    """Read feature tables and the clinical table, fuse them and build the target.

    Give ``time`` and ``event`` for survival, or ``label`` for classification.
    ``site=True`` adds the clinical ``site`` column (for ComBat).
    """
    if (label is None) == (time is None or event is None):
        raise HybridradError(
            "give either --time and --event (survival) or --label (classification)"
        )
    clin = read_clinical(clinical)
    X = fuse(load_feature_tables(features), clinical=clin, covariates=list(covariates))
    if site:
        if "site" not in clin.columns:
            raise HybridradError("ComBat needs a 'site' column in the clinical table")
        X["site"] = clin.loc[X.index, "site"].astype(str)
    y: Any
    if label is None:
        assert time is not None and event is not None
        y, task = survival_target(clin, time, event, list(X.index)), "survival"
    else:
        y, task = class_target(clin, label, list(X.index)).to_numpy(), "classification"
    inputs = {str(p): file_sha256(p) for p in [*features, clinical]}
    return StudyData(X=X, y=y, task=task, inputs=inputs)  # type: ignore[arg-type]


def evaluate_study(
    data: StudyData, config: StudyConfig, out: str | os.PathLike[str]
) -> tuple[pd.DataFrame, dict[str, EvaluationResult]]:
    """Compare the feature sets of ``config`` with nested CV and write the results."""
    from hybridrad.models.stratify import compare_groups
    from hybridrad.report.plots import comparison_plot, km_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table, results = compare_feature_sets(data.X, data.y, config, task=data.task)
    table.to_csv(out / "comparison.csv")
    for name, result in results.items():
        slug = name.split(" ")[0].replace("/", "_")
        result.folds.to_csv(out / f"folds_{slug}.csv", index=False)
        result.summary.to_csv(out / f"summary_{slug}.csv")
        result.predictions.to_csv(out / f"predictions_{slug}.csv", index=False)
        if data.task == "survival" and not result.risk_groups.empty:
            result.risk_groups.to_csv(out / f"risk_groups_{slug}.csv", index=False)
            first = result.predictions[result.predictions["repeat"] == 0]
            idx = [list(data.X.index).index(c) for c in first["case_id"]]
            cmp = compare_groups(data.y[idx], first["group"].to_numpy(), reference="low")
            km_plot(cmp, out / f"km_{slug}.png", title=f"{name}: test-fold risk groups")
    head = "harrell_c" if data.task == "survival" else "auc"
    comparison_plot(table, head, out / "comparison.png")
    provenance = {
        "command": "hybridrad evaluate",
        "task": data.task,
        "config": config.to_dict(),
        "config_hash": config.hash,
        "seed": config.seed,
        "inputs_sha256": data.inputs,
        "n_cases": len(data.X),
        "n_features": data.X.shape[1],
        "versions": library_versions(),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    return table, results


def fit_final(
    data: StudyData, config: StudyConfig, feature_set: str, out: str | os.PathLike[str]
) -> Path:
    """Tune on all cases (inner CV), then save the final model without pickle.

    The selection steps only choose columns and imputation/scaling work column by
    column, so the saved model is [imputer, scaler, model] refitted on the selected
    columns: the same model as the tuned pipeline, in formats
    :mod:`hybridrad.models.persist` stores safely.
    """
    from hybridrad.models.persist import save_model

    if feature_set not in config.feature_sets:
        raise HybridradError(
            f"feature set {feature_set!r} not in the study ({list(config.feature_sets)})"
        )
    blocks = tuple(
        b for b in config.feature_sets[feature_set] if any(block_of(c) == b for c in data.X.columns)
    )
    n = sum(block_of(c) in blocks for c in data.X.columns)
    pipe, grid = build_pipeline(config, data.task, blocks, n_features=n)
    strata = data.y["event"].astype(int) if data.task == "survival" else data.y
    cv = list(
        StratifiedKFold(config.inner_splits, shuffle=True, random_state=config.seed).split(
            np.zeros(len(strata)), strata
        )
    )
    scoring = (
        survival_scorer("harrell")
        if data.task == "survival"
        else ("roc_auc" if len(np.unique(data.y)) == 2 else "roc_auc_ovr")
    )
    search = GridSearchCV(pipe, grid, cv=cv, scoring=scoring, refit=True, error_score=np.nan)
    search.fit(data.X, data.y)
    best: Pipeline = search.best_estimator_
    columns = _selected_columns(best, list(data.X.columns))
    final = Pipeline(
        [(name, clone(best.named_steps[name])) for name in ("impute", "scale")]
        + [("model", clone(best.named_steps["model"]))]
    )
    final.fit(data.X[columns], data.y)
    return save_model(
        final,
        out,
        training_data=data.X[columns],
        metadata={
            "task": data.task,
            "feature_set": feature_set,
            "features": columns,
            "best_params": {k: str(v) for k, v in search.best_params_.items()},
            "inner_cv_score": float(search.best_score_),
            "study": config.to_dict(),
            "study_hash": config.hash,
            "inputs_sha256": data.inputs,
        },
    )


def _selected_columns(pipe: Pipeline, columns: list[str]) -> list[str]:
    """Input columns that reach the model, following every selection step."""
    names = np.array(columns, dtype=object)
    for name, step in pipe.steps[:-1]:
        if name in ("impute", "scale"):
            continue
        if hasattr(step, "get_support"):
            names = names[step.get_support()]
        elif name == "blocks":
            names = np.array(step.get_feature_names_out(), dtype=object)
        else:
            raise HybridradError(f"cannot export step {name!r}: it changes the features")
    return [str(n) for n in names]


def predict_study(
    model_dir: str | os.PathLike[str],
    features: Sequence[str | os.PathLike[str]],
    clinical: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Predictions of a saved model for new cases (risk, or class probabilities)."""
    from hybridrad.models.persist import load_model, read_model_info

    info = read_model_info(model_dir)
    meta = info.get("metadata", {})
    columns: list[str] = list(meta["features"])
    covariates = sorted(
        {c.split("__", 1)[1].split("__")[0] for c in columns if block_of(c) == "clin"}
    )
    clin = read_clinical(clinical) if clinical is not None else None
    X = fuse(load_feature_tables(features), clinical=clin, covariates=covariates)
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise HybridradError(
            f"{len(missing)} model feature(s) missing from the input tables, e.g. {missing[:5]}"
            "; extract them with the same config (and give --clinical for clinical ones)"
        )
    model = load_model(model_dir)
    if meta.get("task") == "survival":
        return pd.DataFrame({"risk": model.predict(X[columns])}, index=X.index)
    proba = model.predict_proba(X[columns])
    return pd.DataFrame(proba, index=X.index, columns=[f"p_{c}" for c in model.classes_])
