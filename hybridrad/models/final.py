"""Final models: tune on all cases, save without pickle, predict for new cases.

:func:`fit_final` tunes the pipeline of a feature set on every case with the inner
cross-validation that :func:`~hybridrad.models.evaluate.nested_cv` uses (same grid, same
refit rule), then saves a model that reproduces the tuned pipeline's predictions:

* the selection steps (block selector, near-zero-variance, ICC, pre-screen, correlation
  filter, screening) only choose columns, so the saved model takes the selected columns
  and leaves them out;
* the column-wise steps (ComBat, imputer, scaler, clinical penalty factor) keep their
  fitted state, restricted to the selected columns. ComBat is *not* refitted on those
  columns: its empirical Bayes priors pool every imaging feature, and a refit on fewer
  would harmonise differently. A model with ComBat needs the ``site`` column (a site
  seen in training) beside its features;
* the model is the tuned model itself.

Beside it, in ``clinical/``, the clinical-only model (blocks ``("clin",)``) is saved
when the study has clinical covariates and the chosen set is not clinical-only, so an
external validation (:func:`hybridrad.study.external.score_model`) can report both.
The metadata holds what scoring needs: the training risk cutoff and default horizon
(survival), the positive class and training decision threshold (classification), the
number of active features, and the provenance of the fit.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.io.manifest import CASE_ID, read_clinical
from hybridrad.models.combat import ComBat
from hybridrad.models.data import StudyData
from hybridrad.models.evaluate import Task, _model_columns, one_standard_error
from hybridrad.models.fusion import CLINICAL, block_prefix, fuse, load_feature_tables
from hybridrad.models.metrics import harrell_c, roc_curve_table, survival_scorer
from hybridrad.models.pipelines import StudyConfig, build_pipeline
from hybridrad.models.stratify import RiskStratifier
from hybridrad.models.transformers import PenaltyFactor

__all__ = [
    "CLINICAL_SUBFOLDER",
    "ClinicalOnlyModelWarning",
    "EmptyModelWarning",
    "FinalFit",
    "ModelExportError",
    "ModelInputError",
    "export_pipeline",
    "fit_final",
    "model_input",
    "predict_frame",
    "predict_study",
    "tune_final",
]

log = logging.getLogger(__name__)

#: Sub-folder of a model folder holding the clinical-only reference model.
CLINICAL_SUBFOLDER = "clinical"


class EmptyModelWarning(HybridradWarning):
    """The final model has no active feature: it predicts the same value for every case."""


class ClinicalOnlyModelWarning(HybridradWarning):
    """A hybrid (clinical + imaging) set's final model uses its clinical covariates only."""


class ModelExportError(HybridradError, TypeError):
    """A tuned pipeline holds a step that cannot be exported to a pickle-free model."""


class ModelInputError(HybridradError, ValueError):
    """New data lack columns a saved model needs (features, the ComBat site) or hold a
    site the model's ComBat step never saw."""


@dataclass
class FinalFit:
    """A pipeline tuned on all cases and its exportable equivalent.

    Attributes
    ----------
    search
        The fitted :class:`~sklearn.model_selection.GridSearchCV`; ``search.best_estimator_``
        is the tuned pipeline.
    pipeline
        The exportable pipeline (see :func:`export_pipeline`): same predictions, on
        ``X[input_columns]``.
    input_columns
        Columns the exported pipeline takes: ``features`` plus ``site`` with ComBat.
    features
        The model's feature columns.
    blocks
        Blocks of the feature set present in the data.
    config
        The configuration used (``combat`` is switched off for a set without imaging
        blocks: ComBat harmonises imaging features only).
    """

    search: GridSearchCV
    pipeline: Pipeline
    input_columns: list[str]
    features: list[str]
    blocks: tuple[str, ...]
    config: StudyConfig


# --- tuning ---------------------------------------------------------------------------------


def _strata(data: StudyData) -> np.ndarray:
    if data.task == "survival":
        return np.asarray(data.y["event"]).astype(int)
    return np.asarray(data.y)


def _scoring(task: Task, y: Any) -> Any:
    if task == "survival":
        return survival_scorer("harrell")
    return "roc_auc" if len(np.unique(np.asarray(y))) == 2 else "roc_auc_ovr"


def tune_final(data: StudyData, config: StudyConfig, blocks: Sequence[str]) -> FinalFit:
    """Tune a feature set's pipeline on all cases and build its exportable equivalent.

    The inner cross-validation is the one of :func:`~hybridrad.models.evaluate.nested_cv`:
    ``config.inner_splits`` stratified folds (by event, or by class) shuffled with
    ``config.seed``, the grid of :func:`~hybridrad.models.pipelines.build_pipeline` (a list
    of sub-grids, the clinical-only candidate first when it applies) and the refit rule
    :func:`~hybridrad.models.evaluate.one_standard_error` when ``config.selection_rule``
    is ``"one_se"`` (else the best mean score).

    Parameters
    ----------
    data
        The study (``X`` with a ``site`` column when ``config.combat``).
    config
        The study configuration; its model for ``data.task`` is fitted.
    blocks
        Blocks of the feature set, e.g. ``("rad", "deep", "clin")``.

    Returns
    -------
    FinalFit

    Raises
    ------
    HybridradError
        No column of ``blocks`` in ``data.X``, ``combat`` without a ``site`` column, or
        every candidate of the grid failed to fit.
    ModelExportError
        The tuned pipeline cannot be exported (e.g. a step that builds new features).
    """
    present = tuple(b for b in blocks if any(block_prefix(c) == b for c in data.X.columns))
    if not present:
        raise HybridradError(
            f"no column of the blocks {list(blocks)} in the data; blocks present: "
            f"{sorted({block_prefix(c) for c in data.X.columns} - {None})}"
        )
    if config.combat and all(b == CLINICAL for b in present):
        config = replace(config, combat=False)  # nothing to harmonise
    columns = [c for c in data.X.columns if block_prefix(c) in present]
    if config.combat:
        if "site" not in data.X.columns:
            raise HybridradError(
                "combat: true needs a 'site' column in the data (load_study(..., site=True) "
                "with a 'site' column in the clinical table)"
            )
        columns.append("site")
    X = data.X[columns]
    n = sum(block_prefix(c) in present for c in columns)
    pipe, grid = build_pipeline(config, data.task, present, n_features=n)
    strata = _strata(data)
    cv = list(
        StratifiedKFold(config.inner_splits, shuffle=True, random_state=config.seed).split(
            np.zeros(len(strata)), strata
        )
    )
    search = GridSearchCV(
        pipe,
        grid,
        cv=cv,
        scoring=_scoring(data.task, data.y),
        refit=one_standard_error if config.selection_rule == "one_se" else True,
        error_score=np.nan,
    )
    search.fit(X, data.y)
    means = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    if not np.isfinite(means).any():
        raise HybridradError(
            f"every candidate of the grid failed to fit or score in the inner CV "
            f"({len(means)} candidates, {config.inner_splits} folds); see the FitFailedWarning "
            "messages above"
        )
    exported, inputs = export_pipeline(search.best_estimator_)
    _check_export(search.best_estimator_, exported, X, inputs, data.task)
    features = _names_in(exported.steps[-1][1], "model")
    return FinalFit(
        search=search,
        pipeline=exported,
        input_columns=inputs,
        features=features,
        blocks=present,
        config=config,
    )


# --- export ---------------------------------------------------------------------------------


def _names_in(step: Any, name: str) -> list[str]:
    names = getattr(step, "feature_names_in_", None)
    if names is None:
        raise ModelExportError(
            f"step {name!r} ({type(step).__name__}) was not fitted on a DataFrame: fit the "
            "pipeline on named columns with set_output(transform='pandas')"
        )
    return [str(n) for n in names]


def _positions(available: list[str], keep: list[str], name: str) -> np.ndarray:
    where = {n: i for i, n in enumerate(available)}
    absent = [k for k in keep if k not in where]
    if absent:
        raise ModelExportError(f"step {name!r} never saw the model column(s) {absent[:5]}")
    return np.array([where[k] for k in keep], dtype=np.intp)


def _restricted(step: Any, name: str, keep: list[str]) -> Any:
    """A copy of a fitted column-wise step that handles the columns ``keep`` only."""
    available = _names_in(step, name)
    new = copy.deepcopy(step)
    if isinstance(step, ComBat):
        covariates = [] if step.covariates is None else list(step.covariates)
        if any(c not in keep for c in covariates):
            raise ModelExportError(
                f"step {name!r}: ComBat covariates {covariates} do not reach the model"
            )
        inputs = [*keep, str(step.batch_col)]
        _positions(available, inputs, name)
        harmonized = [str(c) for c in step.harmonized_features_]
        idx = np.array([i for i, c in enumerate(harmonized) if c in set(keep)], dtype=np.intp)
        new.harmonized_features_ = np.asarray([harmonized[i] for i in idx], dtype=object)
        for attr in ("adjusted_", "grand_mean_", "var_pooled_", "medians_"):
            if hasattr(step, attr):
                setattr(new, attr, np.asarray(getattr(step, attr))[idx])
        for attr in ("beta_covariates_", "gamma_hat_", "delta_hat_", "gamma_star_", "delta_star_"):
            setattr(new, attr, np.asarray(getattr(step, attr))[:, idx])
        new.feature_names_in_ = np.asarray(inputs, dtype=object)
        new.n_features_in_ = len(inputs)
        return new
    idx = _positions(available, keep, name)
    if isinstance(step, SimpleImputer):
        if getattr(step, "indicator_", None) is not None:
            raise ModelExportError(f"step {name!r}: SimpleImputer(add_indicator=True)")
        new.statistics_ = step.statistics_[idx]
    elif isinstance(step, StandardScaler):
        for attr in ("mean_", "var_", "scale_"):
            value = getattr(step, attr, None)
            if value is not None:
                setattr(new, attr, np.asarray(value)[idx])
        if np.ndim(step.n_samples_seen_) == 1:
            new.n_samples_seen_ = np.asarray(step.n_samples_seen_)[idx]
    elif isinstance(step, PenaltyFactor):
        new.scale_ = step.scale_[idx]
    else:  # pragma: no cover - guarded by export_pipeline
        raise ModelExportError(f"step {name!r}: no column-wise export for {type(step).__name__}")
    new.feature_names_in_ = np.asarray(keep, dtype=object)
    new.n_features_in_ = len(keep)
    return new


_COLUMNWISE = (ComBat, SimpleImputer, StandardScaler, PenaltyFactor)


def export_pipeline(pipe: Pipeline) -> tuple[Pipeline, list[str]]:
    """The exportable equivalent of a fitted pipeline, and the input columns it takes.

    Selection steps (any step with ``get_support``) are left out, since the exported
    pipeline takes the selected columns only. Column-wise steps (ComBat, imputer, scaler,
    :class:`~hybridrad.models.transformers.PenaltyFactor`) are copied with their fitted
    state restricted to those columns (a ComBat step none of whose harmonised columns
    reaches the model is left out, and the model then needs no site); the final model is
    copied as it is.

    Parameters
    ----------
    pipe
        A pipeline fitted on a DataFrame with ``set_output(transform="pandas")``.

    Returns
    -------
    pipeline, input_columns
        The exported pipeline (pandas output) and the columns it takes, in order: the
        model's features, then the ComBat site column when there is one.

    Raises
    ------
    ModelExportError
        A step that is neither a selection nor a column-wise step (it builds or renames
        features), or a step fitted without column names.
    """
    model = pipe.steps[-1][1]
    kept = [
        (name, step)
        for name, step in pipe.steps[:-1]
        if step is not None and not (isinstance(step, str) and step == "passthrough")
    ]
    for name, step in kept:
        if not isinstance(step, _COLUMNWISE) and not hasattr(step, "get_support"):
            raise ModelExportError(
                f"cannot export step {name!r} ({type(step).__name__}): it changes the "
                "features, and only selection steps and column-wise steps (ComBat, "
                "SimpleImputer, StandardScaler, PenaltyFactor) can be exported"
            )
    keep = _names_in(model, pipe.steps[-1][0])
    steps: list[tuple[str, Any]] = []
    site: str | None = None
    for name, step in kept:
        if isinstance(step, ComBat) and not set(map(str, step.harmonized_features_)) & set(keep):
            continue  # no harmonised column reaches the model: ComBat passes the rest through
        if isinstance(step, _COLUMNWISE):
            steps.append((name, _restricted(step, name, keep)))
            if isinstance(step, ComBat):
                site = str(step.batch_col)
    steps.append((pipe.steps[-1][0], copy.deepcopy(model)))
    exported = Pipeline(steps).set_output(transform="pandas")
    return exported, [*keep, *([site] if site is not None else [])]


def _predictions(model: Any, X: pd.DataFrame, task: Task) -> np.ndarray:
    if task == "survival":
        return np.asarray(model.predict(X), dtype=float)
    return np.asarray(model.predict_proba(X), dtype=float)


def _check_export(
    tuned: Pipeline, exported: Pipeline, X: pd.DataFrame, inputs: list[str], task: Task
) -> None:
    """The exported pipeline must predict what the tuned one does, on the training cases."""
    want = _predictions(tuned, X, task)
    got = _predictions(exported, X[inputs], task)
    scale = max(1.0, float(np.nanmax(np.abs(want))) if want.size else 1.0)
    if want.shape != got.shape or not np.allclose(got, want, rtol=0, atol=1e-9 * scale):
        diff = float(np.nanmax(np.abs(got - want))) if want.shape == got.shape else float("nan")
        raise ModelExportError(
            f"the exported model does not reproduce the tuned pipeline (max difference "
            f"{diff:.3g}); this is a bug: please report it with the study configuration"
        )


# --- metadata -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _active(fit: FinalFit, train_pred: np.ndarray) -> tuple[list[str], list[str]]:
    """Model features and active ones (non-zero coefficient); none if constant output."""
    names, active = _model_columns(fit.pipeline)
    spread = np.ptp(train_pred, axis=0) if train_pred.size else np.zeros(1)
    if not np.any(np.asarray(spread) > 1e-12):
        active = []
    return names, active


def _fit_metadata(
    fit: FinalFit, data: StudyData, feature_set: str, config: StudyConfig
) -> tuple[dict[str, Any], list[tuple[type[HybridradWarning], str]]]:
    """Metadata of a final model and the warnings (class, message) to raise."""
    search = fit.search
    X = data.X[fit.input_columns]
    best = int(search.best_index_)
    results = search.cv_results_
    candidates = [
        {
            "params": {k: _plain(v) for k, v in results["params"][i].items()},
            "mean_score": float(results["mean_test_score"][i]),
            "sd_score": float(results["std_test_score"][i]),
        }
        for i in range(len(results["params"]))
    ]
    params = results["params"][best]
    pred = _predictions(fit.pipeline, X, data.task)
    names, active = _active(fit, pred)
    active_imaging = [c for c in active if block_prefix(c) != CLINICAL]
    has_imaging = any(b != CLINICAL for b in fit.blocks)
    has_clin = CLINICAL in fit.blocks
    combat = next((s for s in fit.pipeline.named_steps.values() if isinstance(s, ComBat)), None)
    meta: dict[str, Any] = {
        "task": data.task,
        "feature_set": feature_set,
        "blocks": list(fit.blocks),
        "model": fit.config.model_for(data.task),
        "features": fit.features,
        "input_columns": fit.input_columns,
        "steps": [name for name, _ in fit.pipeline.steps],
        "site_column": None if combat is None else str(combat.batch_col),
        "sites": None if combat is None else [str(s) for s in combat.batches_],
        "best_params": {k: _plain(v) for k, v in params.items()},
        "selection_rule": fit.config.selection_rule,
        "inner_cv_score": float(results["mean_test_score"][best]),
        "inner_cv_score_sd": float(results["std_test_score"][best]),
        "inner_cv_scoring": "harrell_c" if data.task == "survival" else "roc_auc",
        "inner_cv_splits": fit.config.inner_splits,
        "inner_cv_candidates": candidates,
        "clinical_fallback_chosen": params.get("screen__others") is False,
        "n_features": len(names),
        "n_features_active": len(active),
        "n_imaging_features_active": len(active_imaging),
        "active_features": active,
        "n_cases": len(data.X),
        "seed": config.seed,
        "study": config.to_dict(),
        "study_hash": config.hash,
        "inputs_sha256": dict(data.inputs),
    }
    if data.task == "survival":
        time = np.asarray(data.y["time"], dtype=float)
        event = np.asarray(data.y["event"], dtype=bool)
        strat = RiskStratifier("median").fit(pred)
        if config.times:
            horizon, rule = float(config.times[0]), "the study config's first `times` value"
        else:
            horizon, rule = float(np.median(time[event])), "median observed event time (training)"
        meta.update(
            n_events=int(event.sum()),
            follow_up_max=float(time.max()),
            risk_cutoff=float(strat.cutoff_),
            risk_cutoff_rule="median of the training risks (RiskStratifier('median'))",
            train_fraction_high=float(strat.train_fraction_high_),
            horizon=horizon,
            horizon_rule=rule,
            apparent_c_index=_safe(lambda: harrell_c(data.y, pred)),
        )
    else:
        classes = [_plain(c) for c in fit.pipeline.classes_]
        meta.update(
            classes=classes,
            positive=data.positive,
            negative=data.negative,
            class_names=data.classes,
        )
        if len(classes) == 2:
            y = np.asarray(data.y)
            score = pred[:, 1]
            roc = roc_curve_table(y == fit.pipeline.classes_[1], score)
            j = int(np.argmax(roc["youden_j"].to_numpy()))
            from sklearn.metrics import roc_auc_score

            meta.update(
                n_positive=int(np.sum(y == fit.pipeline.classes_[1])),
                threshold=float(roc["threshold"].to_numpy()[j]),
                threshold_rule="Youden's J on the training probabilities",
                apparent_auc=_safe(lambda: float(roc_auc_score(y == classes[1], score))),
            )
    notes: list[tuple[type[HybridradWarning], str]] = []
    what = "risk" if data.task == "survival" else "probability"
    if not active:
        notes.append(
            (
                EmptyModelWarning,
                f"the final {feature_set!r} model has no active feature (no non-zero "
                f"coefficient): it predicts the same {what} for every case, so the inner CV "
                f"found no usable signal (chosen {meta['best_params']}); report it as such "
                "rather than as a signature",
            )
        )
    elif has_imaging and has_clin and not active_imaging:
        why = (
            "the inner CV chose the clinical-only candidate (imaging did not beat it by one "
            "standard error)"
            if meta["clinical_fallback_chosen"]
            else "no imaging feature kept a non-zero coefficient"
        )
        notes.append(
            (
                ClinicalOnlyModelWarning,
                f"the final {feature_set!r} model uses its clinical covariates only: {why}. "
                "Imaging added nothing in the inner CV and the model is the clinical one",
            )
        )
    return meta, notes


def _safe(fn: Any) -> float:
    try:
        return float(fn())
    except ValueError:
        return float("nan")


# --- fit and save ---------------------------------------------------------------------------


def _feature_set_blocks(config: StudyConfig, feature_set: str, X: pd.DataFrame) -> tuple[str, ...]:
    if feature_set not in config.feature_sets:
        raise HybridradError(
            f"feature set {feature_set!r} not in the study ({list(config.feature_sets)}); "
            "choose one of them or add it under feature_sets in the study config"
        )
    blocks = tuple(config.feature_sets[feature_set])
    present = tuple(b for b in blocks if any(block_prefix(c) == b for c in X.columns))
    if not present:
        raise HybridradError(
            f"feature set {feature_set!r} (blocks {list(blocks)}) has no column in the data"
        )
    return present


def fit_final(
    data: StudyData, config: StudyConfig, feature_set: str, out: str | os.PathLike[str]
) -> Path:
    """Tune a feature set on all cases (inner CV), then save the final model without pickle.

    Tuning is :func:`tune_final`; the saved model (:func:`export_pipeline`) reproduces the
    tuned pipeline's predictions on ``X[metadata["input_columns"]]``. When the data hold
    clinical covariates and the set is not clinical-only, the clinical-only model is
    tuned and saved the same way in ``out/clinical/``, as the reference an external
    validation reports beside the chosen model.

    Parameters
    ----------
    data
        The study (all cases).
    config
        Study configuration (model, grid, selection rule, seed ...).
    feature_set
        A feature set of ``config.feature_sets``, e.g. ``"hybrid"``.
    out
        New (or empty) model folder.

    Returns
    -------
    pathlib.Path
        The model folder. Its ``model.json`` ``metadata`` holds: ``task``,
        ``feature_set``, ``blocks``, ``model``, ``features`` (the model's columns),
        ``input_columns`` (``features`` plus the site column with ComBat), ``steps``,
        ``site_column`` and ``sites`` (ComBat; else None), ``best_params``,
        ``selection_rule``, ``inner_cv_score`` (``_sd``, ``_scoring``, ``_splits``,
        ``inner_cv_candidates``), ``clinical_fallback_chosen``, ``n_features``,
        ``n_features_active``, ``n_imaging_features_active``, ``active_features``,
        ``n_cases``, ``seed``, ``study``, ``study_hash``, ``inputs_sha256``,
        ``clinical_model`` (``"clinical"`` or None); for survival ``n_events``,
        ``follow_up_max``, ``risk_cutoff`` (median of the training risks) with
        ``risk_cutoff_rule`` and ``train_fraction_high``, ``horizon`` with
        ``horizon_rule``, ``apparent_c_index``; for classification ``classes`` (the
        model's, ``[0, 1]``), ``positive``, ``negative``, ``n_positive``, ``threshold`` (Youden's J on the
        training probabilities) with ``threshold_rule``, ``apparent_auc``,
        ``class_names`` (``[negative, positive]``). The clinical model's metadata also
        holds ``role``.

    Raises
    ------
    HybridradError
        Unknown feature set, no column of its blocks, ``combat`` without a site column.
    ModelExportError
        The tuned pipeline holds a step that cannot be exported.
    UnsupportedModelError
        The model cannot be saved without pickle (``rsf``).
    FileExistsError
        ``out`` exists and is not empty.

    Warns
    -----
    EmptyModelWarning
        The final model has no active feature (constant prediction).
    ClinicalOnlyModelWarning
        A clinical + imaging set's model uses its clinical covariates only.
    """
    from hybridrad.models.persist import UnsupportedModelError, _lookup, save_model

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new folder")
    blocks = _feature_set_blocks(config, feature_set, data.X)
    fit = tune_final(data, config, blocks)
    for _, step in fit.pipeline.steps:
        try:
            _lookup(step)
        except UnsupportedModelError as exc:
            raise UnsupportedModelError(
                f"the final {feature_set!r} model cannot be saved: {exc}"
            ) from exc
    meta, notes = _fit_metadata(fit, data, feature_set, config)
    clinical: tuple[FinalFit, dict[str, Any]] | None = None
    has_clin = any(block_prefix(c) == CLINICAL for c in data.X.columns)
    if has_clin and fit.blocks != (CLINICAL,):
        cfit = tune_final(data, config, (CLINICAL,))
        cmeta, cnotes = _fit_metadata(cfit, data, "clinical", config)
        cmeta["role"] = "clinical-only reference of the model in the parent folder"
        cmeta["clinical_model"] = None
        clinical = (cfit, cmeta)
        notes += [(cls, f"{m} (clinical reference model)") for cls, m in cnotes]
    meta["clinical_model"] = CLINICAL_SUBFOLDER if clinical is not None else None
    for cls, message in notes:
        warnings.warn(message, cls, stacklevel=2)
    created = not out.exists()
    folder = save_model(fit.pipeline, out, training_data=data.X[fit.input_columns], metadata=meta)
    if clinical is not None:
        cfit, cmeta = clinical
        try:
            save_model(
                cfit.pipeline,
                folder / CLINICAL_SUBFOLDER,
                training_data=data.X[cfit.input_columns],
                metadata=cmeta,
            )
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise
    log.info(
        "final %s model saved to %s (%d of %d features active)",
        feature_set,
        folder,
        meta["n_features_active"],
        meta["n_features"],
    )
    return folder


# --- prediction -----------------------------------------------------------------------------


def model_input(meta: dict[str, Any], X: pd.DataFrame, *, where: str = "the data") -> pd.DataFrame:
    """The columns a saved model takes, from ``X``, with clear errors when absent.

    Parameters
    ----------
    meta
        The model's metadata (``read_model_info(folder)["metadata"]``).
    X
        New cases (extra columns are ignored).
    where
        How to name ``X`` in messages.

    Returns
    -------
    pandas.DataFrame
        ``X[meta["input_columns"]]``.

    Raises
    ------
    ModelInputError
        Model features missing (named, with the fix), the ComBat ``site`` column missing
        or holding missing values or sites the model never saw.
    """
    features = [str(c) for c in meta["features"]]
    inputs = [str(c) for c in meta.get("input_columns", features)]
    site = meta.get("site_column")
    missing = [c for c in features if c not in X.columns]
    if missing:
        clin = sorted({c.split("__")[1] for c in missing if block_prefix(c) == CLINICAL})
        hint = f" and the clinical covariate(s) {clin} (give the clinical table)" if clin else ""
        raise ModelInputError(
            f"{len(missing)} of the model's {len(features)} feature(s) missing from {where}: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}; extract them with the "
            f"same radiomics/deep configuration as the training cohort (same block "
            f"prefixes){hint}"
        )
    if site is not None:
        if site not in X.columns:
            raise ModelInputError(
                f"the model harmonises imaging features across sites with ComBat, so it "
                f"needs the {site!r} column of each case: add a {site!r} column to the "
                f"clinical table and load it (load_study(..., site=True))"
            )
        labels = X[site]
        if labels.isna().any():
            cases = [str(c) for c in X.index[labels.isna()][:10]]
            raise ModelInputError(f"case(s) {cases} have no {site!r} value")
        known = [str(s) for s in meta.get("sites") or []]
        unseen = sorted({str(v) for v in labels} - set(known))
        if known and unseen:
            raise ModelInputError(
                f"site(s) {unseen} were not in the training cohort (ComBat knows {known}): "
                "ComBat can only harmonise the sites it was fitted on; refit the model "
                "with these sites among the training cases, or fit it without combat"
            )
        X = X.assign(**{site: labels.astype(str)})
    return X[inputs]


def predict_frame(model_dir: str | os.PathLike[str], X: pd.DataFrame) -> pd.DataFrame:
    """Predictions of a saved model for the cases of ``X``.

    Parameters
    ----------
    model_dir
        A folder written by :func:`fit_final`.
    X
        New cases with the model's features (and ``site`` for a ComBat model).

    Returns
    -------
    pandas.DataFrame
        Survival: ``risk`` (higher = higher risk). Classification: ``p_<class>`` per
        class (``p_1`` is the positive class of ``metadata["positive"]``).

    Raises
    ------
    ModelInputError
        See :func:`model_input`.
    """
    from hybridrad.models.persist import load_model, read_model_info

    meta = dict(read_model_info(model_dir).get("metadata") or {})
    if "features" not in meta or "task" not in meta:
        raise HybridradError(
            f"{model_dir} was not saved by fit_final (no features/task in its metadata)"
        )
    Xin = model_input(meta, X)
    model = load_model(model_dir)
    if meta["task"] == "survival":
        return pd.DataFrame({"risk": model.predict(Xin)}, index=X.index)
    proba = model.predict_proba(Xin)
    return pd.DataFrame(proba, index=X.index, columns=[f"p_{c}" for c in model.classes_])


def predict_study(
    model_dir: str | os.PathLike[str],
    features: Sequence[str | os.PathLike[str]],
    clinical: str | os.PathLike[str] | None = None,
    *,
    id_column: str | None = None,
    block: str = "rad",
) -> pd.DataFrame:
    """Predictions of a saved model for new cases (risk, or class probabilities).

    Parameters
    ----------
    model_dir
        A folder written by :func:`fit_final`.
    features
        Feature tables of the new cases.
    clinical
        Clinical CSV, needed for clinical covariates and for a ComBat model's ``site``.
    id_column, block
        As in :func:`~hybridrad.models.fusion.load_feature_tables`.

    Returns
    -------
    pandas.DataFrame
        As :func:`predict_frame`, indexed by ``case_id``.

    Raises
    ------
    ModelInputError
        Model features or the site column missing (see :func:`model_input`).
    """
    from hybridrad.models.persist import read_model_info

    meta = dict(read_model_info(model_dir).get("metadata") or {})
    columns: list[str] = list(meta.get("features", []))
    covariates = sorted({c.split("__")[1] for c in columns if block_prefix(c) == CLINICAL})
    clin = read_clinical(clinical, id_column=id_column or CASE_ID) if clinical is not None else None
    if covariates and clin is None:
        raise ModelInputError(
            f"the model uses the clinical covariate(s) {covariates}: give the clinical table"
        )
    X = fuse(
        load_feature_tables(features, id_column=id_column, block=block),
        clinical=clin,
        covariates=covariates,
    )
    site = meta.get("site_column")
    if site is not None and clin is not None and site in clin.columns:
        X[site] = clin[site].reindex(X.index)
    return predict_frame(model_dir, X)
