"""Final models: tune on all cases, save without pickle, predict for new cases."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from hybridrad.errors import HybridradError
from hybridrad.io.manifest import read_clinical
from hybridrad.models.fusion import block_of, fuse, load_feature_tables
from hybridrad.models.metrics import survival_scorer
from hybridrad.models.pipelines import StudyConfig, build_pipeline
from hybridrad.models.study import StudyData


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
