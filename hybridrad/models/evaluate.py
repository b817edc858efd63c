"""Leakage-safe evaluation: repeated stratified nested cross-validation.

Everything that learns from data (imputation, scaling, filters, harmonisation,
selection, the model and its hyper-parameters, the risk-group cutoff, the classification
threshold) is fitted inside the outer training fold; the outer test fold is touched
only to be predicted. The inner loop (``GridSearchCV`` on the outer training fold)
tunes hyper-parameters. Confidence intervals come from a bootstrap of the test cases
within each outer fold (no refitting), averaged over folds like the point estimate.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold

from hybridrad.errors import HybridradWarning
from hybridrad.models import metrics as M
from hybridrad.models.stratify import RiskStratifier, compare_groups
from hybridrad.models.survival import survival_function_at

log = logging.getLogger(__name__)

Task = Literal["survival", "classification"]


class LowEventsPerVariableWarning(HybridradWarning):
    """Fewer than 10 events per variable entering the final model."""


class SampleSizeWarning(HybridradWarning):
    """Far more features than cases (selection must then happen inside the folds)."""


class ClassImbalanceWarning(HybridradWarning):
    """A class holds less than 10 % of the cases."""


@dataclass(frozen=True)
class CVSettings:
    """Cross-validation settings (all recorded with the results).

    ``times``: horizons for time-dependent AUC, Brier score and calibration (default:
    the 25th, 50th and 75th percentiles of the observed event times). ``n_jobs``: outer
    folds fitted in parallel (joblib processes); results do not depend on it.
    """

    outer_splits: int = 5
    outer_repeats: int = 3
    inner_splits: int = 3
    random_state: int = 0
    n_boot: int = 200
    times: tuple[float, ...] | None = None
    risk_cutoff: str | float = "median"
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.outer_splits < 2 or self.inner_splits < 2 or self.outer_repeats < 1:
            raise ValueError("need outer_splits >= 2, inner_splits >= 2, outer_repeats >= 1")


@dataclass
class EvaluationResult:
    """Per-fold metrics, out-of-fold predictions and the summary with CIs."""

    task: Task
    folds: pd.DataFrame
    predictions: pd.DataFrame
    summary: pd.DataFrame
    risk_groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        """Point estimate of a summary metric (e.g. ``"harrell_c"``, ``"auc"``)."""
        return float(self.summary["estimate"].to_numpy()[list(self.summary.index).index(name)])


def infer_task(y: Any) -> Task:
    """``"survival"`` for a structured (event, time) array, else ``"classification"``."""
    arr = np.asarray(y)
    return "survival" if arr.dtype.names is not None else "classification"


def _strata(y: Any, task: Task) -> np.ndarray:
    if task == "survival":
        return np.asarray(y["event"]).astype(int)
    return np.asarray(y)


def design_warnings(
    X: pd.DataFrame, y: Any, task: Task, n_model_features: int | None = None
) -> list[str]:
    """Warn (and return the messages) about designs that make estimates unreliable."""
    out: list[tuple[type[HybridradWarning], str]] = []
    n, p = X.shape
    if p > n:
        out.append(
            (
                SampleSizeWarning,
                f"{p} features for {n} cases (ratio {n / p:.2f}): estimates rest on "
                "selection inside the folds and will be noisy",
            )
        )
    if task == "survival":
        events = int(np.asarray(y["event"]).sum())
        k = n_model_features if n_model_features is not None else p
        if k and events / k < 10:
            out.append(
                (
                    LowEventsPerVariableWarning,
                    f"{events} events for {k} model variables ({events / k:.1f} per "
                    "variable, < 10): reduce the features (stronger selection/penalty)",
                )
            )
    else:
        counts = pd.Series(np.asarray(y)).value_counts(normalize=True)
        if counts.min() < 0.1:
            out.append(
                (
                    ClassImbalanceWarning,
                    f"class {counts.idxmin()!r} is {counts.min():.1%} of the cases: AUC "
                    "and balanced accuracy are reported; consider class weights",
                )
            )
    for cls, message in out:
        warnings.warn(message, cls, stacklevel=2)
    return [m for _, m in out]


def _final_n_features(model: Any) -> int | None:
    est = model.best_estimator_ if isinstance(model, GridSearchCV) else model
    last = est.steps[-1][1] if hasattr(est, "steps") else est
    coef = getattr(last, "coef_", None)
    if coef is not None:
        arr = np.asarray(coef)
        if arr.ndim == 2 and arr.shape[1] > 1 and arr.shape[0] > 1:  # Coxnet path / OvR
            arr = arr[:, -1] if arr.shape[0] != 1 else arr[0]
        return int(np.count_nonzero(np.abs(arr) > 1e-12)) or 1
    return getattr(last, "n_features_in_", None)


def _horizons(y: np.ndarray, settings: CVSettings) -> np.ndarray:
    if settings.times is not None:
        return np.asarray(settings.times, float)
    event_times = y["time"][y["event"]]
    return np.unique(np.percentile(event_times, [25, 50, 75]))


def _valid_times(times: np.ndarray, y_train: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    lo = max(y_test["time"].min(), 0.0)
    hi = min(y_test["time"].max(), y_train["time"][y_train["event"]].max())
    return times[(times > lo) & (times < hi)]


def _fit(
    estimator: BaseEstimator,
    grid: Mapping[str, Sequence[Any]] | None,
    X: pd.DataFrame,
    y: Any,
    strata: np.ndarray,
    settings: CVSettings,
    seed: int,
    scoring: Any,
) -> Any:
    if not grid:
        return clone(estimator).fit(X, y)
    inner = StratifiedKFold(settings.inner_splits, shuffle=True, random_state=seed)
    splits = list(inner.split(np.zeros(len(strata)), strata))
    search = GridSearchCV(
        clone(estimator), dict(grid), cv=splits, scoring=scoring, refit=True, error_score="raise"
    )
    return search.fit(X, y)


def _survival_fold(
    model: Any,
    X_tr: pd.DataFrame,
    y_tr: np.ndarray,
    X_te: pd.DataFrame,
    y_te: np.ndarray,
    times: np.ndarray,
    settings: CVSettings,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    risk_te = np.asarray(model.predict(X_te), float)
    risk_tr = np.asarray(model.predict(X_tr), float)
    row: dict[str, float] = {"harrell_c": float("nan")}
    # a small test fold may hold no comparable pair (e.g. one event, the last time):
    # the fold's C is then undefined (NaN) and left out of the mean
    with contextlib.suppress(ValueError):
        row["harrell_c"] = M.harrell_c(y_te, risk_te)
    tau = float(y_tr["time"][y_tr["event"]].max())
    try:
        row["uno_c"] = M.uno_c(y_tr, y_te, risk_te, tau=min(tau, float(y_te["time"].max())))
    except ValueError:
        row["uno_c"] = float("nan")
    t = _valid_times(times, y_tr, y_te)
    row["td_auc"] = row["ibs"] = float("nan")
    if len(t):
        # IPCW metrics are undefined when a test time lies beyond the training follow-up
        with contextlib.suppress(ValueError):
            row["td_auc"] = float(M.td_auc(y_tr, y_te, risk_te, t).mean_auc)
        try:
            fitted = model.best_estimator_ if isinstance(model, GridSearchCV) else model
            surv = survival_function_at(fitted, X_te, t)
            row["ibs"] = M.integrated_brier(y_tr, y_te, surv, t) if len(t) > 1 else float("nan")
        except (AttributeError, TypeError, ValueError, NotImplementedError):
            row["ibs"] = float("nan")
    groups = RiskStratifier(settings.risk_cutoff).fit(risk_tr, y_tr).transform(risk_te)
    return row, risk_te, groups


def _classification_fold(
    model: Any, X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame, y_te: np.ndarray
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    proba_te = np.asarray(model.predict_proba(X_te), float)
    classes = np.asarray(model.classes_)
    row: dict[str, float] = {}
    if len(classes) == 2:
        score_te = proba_te[:, 1]
        # decision threshold chosen on the training fold only (Youden's J)
        score_tr = np.asarray(model.predict_proba(X_tr), float)[:, 1]
        roc = M.roc_curve_table(y_tr == classes[1], score_tr)
        best = int(np.argmax(roc["youden_j"].to_numpy()))
        threshold = float(roc["threshold"].to_numpy()[best])
        pred = np.where(score_te >= threshold, classes[1], classes[0])
        row["auc"] = _auc(y_te, score_te, classes)
        row["threshold"] = threshold
        scores = score_te[:, None]
    else:
        pred = classes[np.argmax(proba_te, axis=1)]
        row["auc"] = float(_auc(y_te, proba_te, classes))
        scores = proba_te
    row["balanced_accuracy"] = M.balanced_accuracy(y_te, pred)
    return row, scores, pred


def _auc(y: np.ndarray, score: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    if score.ndim == 1:
        return float(roc_auc_score(y == classes[1], score))
    return float(roc_auc_score(y, score, multi_class="ovr", average="macro", labels=classes))


def _outer_fold(
    i: int,
    tr: np.ndarray,
    te: np.ndarray,
    estimator: BaseEstimator,
    param_grid: Mapping[str, Sequence[Any]] | None,
    X: pd.DataFrame,
    y: np.ndarray,
    strata: np.ndarray,
    task: Task,
    times: np.ndarray,
    settings: CVSettings,
    scoring: Any,
) -> dict[str, Any]:
    """Fit on one outer training fold (tuning inside) and evaluate on its test fold."""
    repeat, fold = divmod(i, settings.outer_splits)
    X_tr, X_te, y_tr, y_te = X.iloc[tr], X.iloc[te], y[tr], y[te]
    model = _fit(
        estimator, param_grid, X_tr, y_tr, strata[tr], settings, settings.random_state + i, scoring
    )
    out: dict[str, Any] = {"repeat": repeat}
    if task == "survival":
        row, risk, groups = _survival_fold(model, X_tr, y_tr, X_te, y_te, times, settings)
        out["predictions"] = pd.DataFrame(
            {"case_id": X_te.index, "repeat": repeat, "fold": fold, "risk": risk, "group": groups}
        )
        out["groups"] = pd.Series(groups, index=X_te.index)
        out["boot"] = (y_te, risk)
        out["n_final"] = _final_n_features(model)
        out["train_events"] = int(y_tr["event"].sum())
    else:
        row, scores, pred = _classification_fold(model, X_tr, y_tr, X_te, y_te)
        frame = pd.DataFrame(
            {
                "case_id": X_te.index,
                "repeat": repeat,
                "fold": fold,
                "label": y_te,
                "predicted": pred,
            }
        )
        classes = np.asarray(model.classes_)
        cols = [f"p_{classes[1]}"] if scores.shape[1] == 1 else [f"p_{c}" for c in classes]
        for j, c in enumerate(cols):
            frame[c] = scores[:, j]
        out["predictions"] = frame
        out["boot"] = (y_te, scores[:, 0] if scores.shape[1] == 1 else scores, classes)
    best = model.best_params_ if isinstance(model, GridSearchCV) else {}
    out["row"] = {
        "repeat": repeat,
        "fold": fold,
        "n_train": len(tr),
        "n_test": len(te),
        **row,
        "best_params": json.dumps(best, default=str),
    }
    return out


def nested_cv(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: Any,
    *,
    param_grid: Mapping[str, Sequence[Any]] | None = None,
    settings: CVSettings | None = None,
    task: Task | None = None,
) -> EvaluationResult:
    """Repeated stratified nested cross-validation of ``estimator``.

    Parameters
    ----------
    estimator
        An unfitted estimator or Pipeline (all preprocessing inside it).
    X
        Features indexed by case_id.
    y
        Survival target (structured array ``event``, ``time``) or class labels.
    param_grid
        Hyper-parameters tuned by the inner loop (``GridSearchCV``); none: no tuning.
    settings
        Splits, repeats, seed, bootstrap size, horizons.
    task
        Inferred from ``y`` when not given.

    Returns
    -------
    EvaluationResult
        ``folds`` (a row per outer fold with its metrics and chosen hyper-parameters),
        ``predictions`` (out-of-fold risk / class scores per repeat), ``summary``
        (mean over folds with bootstrap CI) and, for survival, ``risk_groups``
        (log-rank test and hazard ratio of the pooled test-fold risk groups per repeat).
    """
    settings = settings or CVSettings()
    task = task or infer_task(y)
    y_arr = np.asarray(y) if task == "survival" else np.asarray(y).astype(str)
    if len(X) != len(y_arr):
        raise ValueError(f"X has {len(X)} rows but y has {len(y_arr)}")
    strata = _strata(y_arr, task)
    design_warnings(X, y_arr, task)
    scoring = (
        M.survival_scorer("harrell")
        if task == "survival"
        else ("roc_auc" if len(np.unique(y_arr)) == 2 else "roc_auc_ovr")
    )
    times = _horizons(y_arr, settings) if task == "survival" else np.array([])
    outer = RepeatedStratifiedKFold(
        n_splits=settings.outer_splits,
        n_repeats=settings.outer_repeats,
        random_state=settings.random_state,
    )
    fold_rows: list[dict[str, Any]] = []
    pred_rows: list[pd.DataFrame] = []
    boot_inputs: list[tuple[Any, ...]] = []
    groups_by_repeat: dict[int, pd.Series] = {}
    warned_epv = False
    splits = list(enumerate(outer.split(np.zeros(len(strata)), strata)))
    jobs = [
        delayed(_outer_fold)(
            i, tr, te, estimator, param_grid, X, y_arr, strata, task, times, settings, scoring
        )
        for i, (tr, te) in splits
    ]
    outcomes = Parallel(n_jobs=settings.n_jobs)(jobs)
    for out in outcomes:
        repeat = out["repeat"]
        pred_rows.append(out["predictions"])
        boot_inputs.append(out["boot"])
        fold_rows.append(out["row"])
        if task == "survival":
            groups_by_repeat.setdefault(repeat, pd.Series(dtype=object))
            groups_by_repeat[repeat] = pd.concat([groups_by_repeat[repeat], out["groups"]])
            n_final, events = out["n_final"], out["train_events"]
            if not warned_epv and n_final and events / n_final < 10:
                warnings.warn(
                    f"outer fold {out['row']['fold']} (repeat {repeat}): {events} training "
                    f"events for {n_final} model variables (< 10 per variable)",
                    LowEventsPerVariableWarning,
                    stacklevel=2,
                )
                warned_epv = True
    folds = pd.DataFrame(fold_rows)
    predictions = pd.concat(pred_rows, ignore_index=True)
    summary = _summary(folds, boot_inputs, task, settings)
    risk_groups = pd.DataFrame()
    if task == "survival":
        risk_groups = _risk_groups(groups_by_repeat, X.index, y_arr)
    return EvaluationResult(
        task=task,
        folds=folds,
        predictions=predictions,
        summary=summary,
        risk_groups=risk_groups,
        settings={
            **asdict(settings),
            "param_grid": dict(param_grid or {}),
            "estimator": repr(estimator),
        },
    )


def _summary(
    folds: pd.DataFrame, boot_inputs: list[tuple[Any, ...]], task: Task, settings: CVSettings
) -> pd.DataFrame:
    metrics = [
        c
        for c in folds.columns
        if c not in ("repeat", "fold", "n_train", "n_test", "best_params", "threshold")
    ]
    rows = {
        m: {"estimate": float(folds[m].mean()), "fold_sd": float(folds[m].std())} for m in metrics
    }
    # bootstrap CI of the headline metric: resample test cases within every fold
    headline = "harrell_c" if task == "survival" else "auc"
    rng = np.random.default_rng(settings.random_state)
    dist = []
    for _ in range(settings.n_boot):
        values = []
        for item in boot_inputs:
            y_te = item[0]
            idx = rng.integers(0, len(y_te), len(y_te))
            try:
                if task == "survival":
                    values.append(M.harrell_c(y_te[idx], item[1][idx]))
                else:
                    values.append(_auc(y_te[idx], item[1][idx], item[2]))
            except ValueError:
                continue
        finite = [v for v in values if np.isfinite(v)]
        if finite:
            dist.append(float(np.mean(finite)))
    for m in rows:
        rows[m]["ci_low"] = rows[m]["ci_high"] = float("nan")
    if dist:
        rows[headline]["ci_low"] = float(np.percentile(dist, 2.5))
        rows[headline]["ci_high"] = float(np.percentile(dist, 97.5))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "metric"
    return table


def _risk_groups(
    groups_by_repeat: Mapping[int, pd.Series], index: pd.Index, y: np.ndarray
) -> pd.DataFrame:
    rows = []
    position = {cid: i for i, cid in enumerate(index)}
    for repeat, groups in sorted(groups_by_repeat.items()):
        idx = np.array([position[c] for c in groups.index])
        if groups.nunique() < 2:
            continue
        cmp = compare_groups(y[idx], groups.to_numpy(), reference="low")
        lo, hi = cmp.hazard_ratio_ci
        rows.append(
            {
                "repeat": repeat,
                "logrank_statistic": cmp.logrank_statistic,
                "logrank_p": cmp.logrank_p_value,
                "hazard_ratio": cmp.hazard_ratio,
                "hr_low": lo,
                "hr_high": hi,
                "n_high": int((groups == "high").sum()),
                "n_low": int((groups == "low").sum()),
            }
        )
    return pd.DataFrame(rows)
