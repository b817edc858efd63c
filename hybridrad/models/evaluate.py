"""Leakage-safe evaluation: repeated stratified nested cross-validation.

Everything that learns from data (imputation, scaling, filters, harmonisation,
selection, the model and its hyper-parameters, the risk-group cutoff, the classification
threshold) is fitted inside the outer training fold; the outer test fold is touched
only to be predicted. The inner loop (``GridSearchCV`` on the outer training fold)
tunes hyper-parameters, by default with the one-standard-error rule (the simplest
candidate whose inner score is within one standard error of the best).

Confidence intervals (:data:`CI_METHOD`) combine two sources of uncertainty: the test
sample (a bootstrap of the cases, one resample shared by every fold and repeat, so the
repeats' overlap is not mistaken for independent evidence) and the training sample
(the spread of the estimate between CV repeats, each repeat training on other cases).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.models import metrics as M
from hybridrad.models.fusion import CLINICAL, block_prefix
from hybridrad.models.stratify import RiskStratifier, compare_groups
from hybridrad.models.survival import survival_function_at

log = logging.getLogger(__name__)

Task = Literal["survival", "classification"]

#: How the confidence intervals of the headline metric are built (saved with results).
CI_METHOD = (
    "95% CI = estimate +/- 1.96 * sqrt(SE_boot^2 + SD_repeats^2): SE_boot from a bootstrap "
    "of the cases (one resample shared by every outer fold and repeat, metric recomputed "
    "on each fold's resampled test cases, no refitting) for the test sample; SD_repeats, "
    "the standard deviation of the per-repeat estimates, for the training sample (unknown "
    "with a single repeat: that CI leaves training variability out and is too narrow)"
)

#: Parameters of the grid ordered by model complexity (+1: a larger value is more
#: complex). Only the clinical-only candidate (``screen__others=False``) counts as
#: simpler: within the imaging candidates the best inner score wins, because a stronger
#: penalty measured worse on real signal (C 0.585 against 0.635 in
#: ``tests/test_evaluate.py``'s signal study) while adding no protection once the
#: clinical fallback is in the grid.
_COMPLEXITY: dict[str, int] = {"screen__others": 1}


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
    ``selection_rule``: ``one_se`` (inner CV picks the simplest candidate within one
    standard error of the best score; see :func:`one_standard_error`) or ``best``.
    """

    outer_splits: int = 5
    outer_repeats: int = 3
    inner_splits: int = 3
    random_state: int = 0
    n_boot: int = 200
    times: tuple[float, ...] | None = None
    risk_cutoff: str | float = "median"
    n_jobs: int = 1
    selection_rule: str = "one_se"

    def __post_init__(self) -> None:
        if self.outer_splits < 2 or self.inner_splits < 2 or self.outer_repeats < 1:
            raise ValueError("need outer_splits >= 2, inner_splits >= 2, outer_repeats >= 1")
        if self.selection_rule not in ("one_se", "best"):
            raise ValueError(
                f"selection_rule must be 'one_se' or 'best'; got {self.selection_rule!r}"
            )


@dataclass
class EvaluationResult:
    """Per-fold metrics, out-of-fold predictions and the summary with CIs.

    ``boot`` holds the headline metric of every outer fold (columns) recomputed on
    each bootstrap resample of the cases (rows); results of one data set evaluated with
    the same settings share the resamples, so :func:`paired_difference` can pair them.
    """

    task: Task
    folds: pd.DataFrame
    predictions: pd.DataFrame
    summary: pd.DataFrame
    risk_groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict[str, Any] = field(default_factory=dict)
    boot: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def metric(self, name: str) -> float:
        """Point estimate of a summary metric (e.g. ``"harrell_c"``, ``"auc"``)."""
        return float(self.summary["estimate"].to_numpy()[list(self.summary.index).index(name)])


def infer_task(y: Any) -> Task:
    """``"survival"`` for a structured (event, time) array, else ``"classification"``."""
    arr = np.asarray(y)
    return "survival" if arr.dtype.names is not None else "classification"


class TooFewCasesError(HybridradError, ValueError):
    """The cohort is too small for the cross-validation the study config asks for."""


def _check_enough_cases(strata: np.ndarray, settings: CVSettings, task: str) -> None:
    """Refuse splits that cannot be made (every stratum smaller than the fold count: the
    case where scikit-learn's StratifiedKFold stops), naming the numbers and the fix."""
    values, counts = np.unique(strata, return_counts=True)
    largest = int(counts.max()) if len(counts) else 0
    in_training = largest - math.ceil(largest / settings.outer_splits)
    if largest < settings.outer_splits or in_training < settings.inner_splits:
        what = "events or censored cases" if task == "survival" else "cases per class"
        shown = ", ".join(
            f"{v!r}: {c}" for v, c in zip(values.tolist(), counts.tolist(), strict=True)
        )
        raise TooFewCasesError(
            f"too few {what} ({shown}) for {settings.outer_splits}-fold outer and "
            f"{settings.inner_splits}-fold inner cross-validation. Add cases, or lower "
            "outer_splits / inner_splits in the study config (--config)."
        )


def _strata(y: Any, task: Task) -> np.ndarray:
    if task == "survival":
        return np.asarray(y["event"]).astype(int)
    return np.asarray(y)


def design_warnings(
    X: pd.DataFrame,
    y: Any,
    task: Task,
    n_model_features: int | None = None,
    label: str | None = None,
) -> list[str]:
    """Warn (and return the messages) about designs that make estimates unreliable.

    ``X`` holds the columns of one feature set; ``n_model_features`` is the most
    variables its model can take (after screening); ``label`` names the set.
    """
    out: list[tuple[type[HybridradWarning], str]] = []
    n, p = X.shape
    where = f"{label}: " if label else ""
    if p > n:
        out.append(
            (
                SampleSizeWarning,
                f"{where}{p} features for {n} cases (ratio {n / p:.2f}): estimates rest on "
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
                    f"{where}{events} events for up to {k} model variables "
                    f"({events / k:.1f} per variable, < 10): the model cannot be estimated "
                    "reliably; reduce the features (stronger selection/penalty) or collect "
                    "more events",
                )
            )
    else:
        counts = pd.Series(np.asarray(y)).value_counts(normalize=True)
        if counts.min() < 0.1:
            out.append(
                (
                    ClassImbalanceWarning,
                    f"{where}class {counts.idxmin()!r} is {counts.min():.1%} of the cases: AUC "
                    "and balanced accuracy are reported; consider class weights",
                )
            )
    for cls, message in out:
        warnings.warn(message, cls, stacklevel=2)
    return [m for _, m in out]


def one_standard_error(cv_results: Mapping[str, Any]) -> int:
    """``refit`` rule for :class:`~sklearn.model_selection.GridSearchCV`: the simplest
    candidate whose mean inner score is within one standard error of the best, the
    standard error corrected for the overlap of the folds' training sets (Nadeau and
    Bengio 2003, Machine Learning 52:239).

    Simplicity is ordered by :data:`_COMPLEXITY`: the clinical-only candidate
    (``screen__others=False``) is simpler than any candidate with imaging; among equally
    simple candidates the best inner score wins. With noise features this keeps the
    hybrid at its clinical part; a real imaging signal clears the margin.
    """
    means = np.asarray(cv_results["mean_test_score"], dtype=float)
    if not np.isfinite(means).any():
        return 0
    sds = np.asarray(cv_results["std_test_score"], dtype=float)
    n_splits = sum(1 for k in cv_results if k.startswith("split") and k.endswith("_test_score"))
    best = int(np.nanargmax(means))
    # Nadeau & Bengio (2003): the fold scores share training cases, so the naive SE
    # sd / sqrt(K) is too small; their corrected variance is sd^2 (1/K + n_test/n_train),
    # with n_test/n_train = 1/(K-1) for K-fold CV
    k = max(n_splits, 2)
    margin = sds[best] * math.sqrt(1.0 / k + 1.0 / (k - 1))
    ok = np.flatnonzero(np.nan_to_num(means, nan=-np.inf) >= means[best] - margin)

    def complexity(i: int) -> tuple[float, ...]:
        params = cv_results["params"][i]
        key = []
        for name, sign in _COMPLEXITY.items():
            value = params.get(name, None)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if isinstance(value, bool):
                value = float(value)
            key.append(sign * float(value) if isinstance(value, int | float) else 0.0)
        return tuple(key)

    return int(min(ok.tolist(), key=lambda i: (complexity(i), -means[i])))


def _model_columns(model: Any) -> tuple[list[str], list[str]]:
    """Columns entering the final model step, and those with a non-zero coefficient
    (all of them for models without coefficients)."""
    est = model.best_estimator_ if isinstance(model, GridSearchCV) else model
    if not hasattr(est, "steps"):
        names = [str(n) for n in getattr(est, "feature_names_in_", [])]
        return names, names
    last = est.steps[-1][1]
    names = [str(n) for n in getattr(last, "feature_names_in_", [])]
    coef = getattr(last, "coef_", None)
    if coef is None:
        return names, names
    arr = np.asarray(coef, dtype=float)
    if arr.ndim == 2:
        arr = np.abs(arr).max(axis=0) if arr.shape[1] == len(names) else arr[:, -1]
    if arr.shape[0] != len(names):
        return names, names
    active = [n for n, c in zip(names, arr, strict=True) if abs(c) > 1e-12]
    return names, active


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
    grid: Any,
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
        clone(estimator),
        _as_grid(grid),
        cv=splits,
        scoring=scoring,
        refit=one_standard_error if settings.selection_rule == "one_se" else True,
        error_score="raise",
    )
    return search.fit(X, y)


def _as_grid(grid: Any) -> Any:
    """A parameter grid as GridSearchCV takes it (a mapping or a list of mappings)."""
    if isinstance(grid, Mapping):
        return {k: list(v) for k, v in grid.items()}
    return [{k: list(v) for k, v in g.items()} for g in grid]


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


def _outer_fold(*args: Any) -> dict[str, Any]:
    """:func:`_fit_outer_fold` with its warnings recorded and returned, so that those of
    worker processes reach the caller (and its end-of-run summary) instead of stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _fit_outer_fold(*args)
    out["warnings"] = [(w.category, str(w.message)) for w in caught]
    return out


def _fit_outer_fold(
    i: int,
    tr: np.ndarray,
    te: np.ndarray,
    estimator: BaseEstimator,
    param_grid: Any,
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
        out["boot"] = (te, risk)
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
        out["boot"] = (te, scores[:, 0] if scores.shape[1] == 1 else scores, classes)
    best = model.best_params_ if isinstance(model, GridSearchCV) else {}
    _, active = _model_columns(model)
    out["n_final"] = len(active)
    out["row"] = {
        "repeat": repeat,
        "fold": fold,
        "n_train": len(tr),
        "n_test": len(te),
        **row,
        "n_model_features": len(active),
        "n_imaging_features": sum(block_prefix(c) != CLINICAL for c in active),
        "best_params": json.dumps(best, default=str),
    }
    return out


def nested_cv(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: Any,
    *,
    param_grid: Any = None,
    settings: CVSettings | None = None,
    task: Task | None = None,
    label: str | None = None,
    n_model_features: int | None = None,
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
        Hyper-parameters tuned by the inner loop (``GridSearchCV``: a mapping or a list
        of mappings); none: no tuning.
    settings
        Splits, repeats, seed, bootstrap size, horizons, selection rule.
    task
        Inferred from ``y`` when not given.
    label
        Name used in progress messages and warnings (e.g. the feature set).
    n_model_features
        Most variables the model can take, for the events-per-variable check (default:
        the columns of ``X``).

    Returns
    -------
    EvaluationResult
        ``folds`` (a row per outer fold with its metrics, the chosen hyper-parameters
        and the number of (imaging) features in the fitted model), ``predictions``
        (out-of-fold risk / class scores per repeat), ``summary`` (mean over folds with
        the CI of :data:`CI_METHOD`), ``boot`` and, for survival, ``risk_groups``
        (log-rank test and hazard ratio of the pooled test-fold risk groups per repeat,
        with degenerate splits flagged).
    """
    settings = settings or CVSettings()
    task = task or infer_task(y)
    y_arr = np.asarray(y) if task == "survival" else np.asarray(y).astype(str)
    if len(X) != len(y_arr):
        raise ValueError(f"X has {len(X)} rows but y has {len(y_arr)}")
    strata = _strata(y_arr, task)
    _check_enough_cases(strata, settings, task)
    said = design_warnings(X, y_arr, task, n_model_features=n_model_features, label=label)
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
    warned_epv = any("per variable" in m for m in said)  # say it once per set
    splits = list(enumerate(outer.split(np.zeros(len(strata)), strata)))
    jobs = [
        delayed(_outer_fold)(
            i, tr, te, estimator, param_grid, X, y_arr, strata, task, times, settings, scoring
        )
        for i, (tr, te) in splits
    ]
    head = "harrell_c" if task == "survival" else "auc"
    name = label or "model"
    outcomes = Parallel(n_jobs=settings.n_jobs, return_as="generator")(jobs)
    seen: set[tuple[type[Warning], str]] = set()
    for done, out in enumerate(outcomes, start=1):
        for category, message in out["warnings"]:
            if (category, message) not in seen:  # each distinct one once per call
                seen.add((category, message))
                warnings.warn(message, category, stacklevel=2)
        repeat = out["repeat"]
        log.info(
            "%s: outer fold %d/%d done (%s %.3f, %d imaging feature(s) in the model)",
            name,
            done,
            len(splits),
            head,
            out["row"].get(head, float("nan")),
            out["row"]["n_imaging_features"],
        )
        pred_rows.append(out["predictions"])
        boot_inputs.append(out["boot"])
        fold_rows.append(out["row"])
        if task == "survival":
            groups_by_repeat.setdefault(repeat, pd.Series(dtype=object))
            groups_by_repeat[repeat] = pd.concat([groups_by_repeat[repeat], out["groups"]])
            n_final, events = out["n_final"], out["train_events"]
            if not warned_epv and n_final and events / n_final < 10:
                warnings.warn(
                    f"{name}: outer fold {out['row']['fold']} (repeat {repeat}): {events} "
                    f"training events for {n_final} model variables (< 10 per variable)",
                    LowEventsPerVariableWarning,
                    stacklevel=2,
                )
                warned_epv = True
    folds = pd.DataFrame(fold_rows)
    predictions = pd.concat(pred_rows, ignore_index=True)
    boot = bootstrap_fold_metrics(boot_inputs, y_arr, task, settings.n_boot, settings.random_state)
    summary = _summary(folds, boot, task)
    risk_groups = pd.DataFrame()
    if task == "survival":
        risk_groups = _risk_groups(groups_by_repeat, X.index, y_arr)
        bad = risk_groups[risk_groups["degenerate"]] if not risk_groups.empty else risk_groups
        if not bad.empty:
            warnings.warn(
                f"{name}: the risk groups of {len(bad)} repeat(s) are degenerate (hazard "
                "ratio or its CI not finite, or a group without events); their hazard "
                "ratio means nothing",
                DegenerateRiskGroupsWarning,
                stacklevel=2,
            )
    return EvaluationResult(
        task=task,
        folds=folds,
        predictions=predictions,
        summary=summary,
        risk_groups=risk_groups,
        settings={
            **asdict(settings),
            "param_grid": param_grid,
            "estimator": repr(estimator),
            "ci_method": CI_METHOD,
        },
        boot=boot,
    )


class DegenerateRiskGroupsWarning(HybridradWarning):
    """Risk groups whose hazard ratio is not estimable (infinite CI, no events)."""


def _fold_metric(task: Task, y: np.ndarray, score: np.ndarray, classes: Any) -> float:
    try:
        if task == "survival":
            return float(M.harrell_c(y, score))
        return float(_auc(y, score, classes))
    except ValueError:
        return float("nan")


def bootstrap_fold_metrics(
    boot_inputs: Sequence[tuple[Any, ...]],
    y: np.ndarray,
    task: Task,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """The headline metric of every outer fold on ``n_boot`` bootstrap resamples of the
    cases; row 0 is the original sample.

    Each resample draws the ``len(y)`` cases with replacement once; every fold is scored
    on its test cases repeated as often as they were drawn. The draws depend only on
    ``seed`` and the number of cases, so two feature sets evaluated on the same data
    share them (paired bootstrap).
    """
    n = len(y)
    rng = np.random.default_rng(seed)
    out = np.full((n_boot + 1, len(boot_inputs)), np.nan)
    for b in range(n_boot + 1):
        counts = (
            np.ones(n, dtype=np.intp) if b == 0 else np.bincount(rng.integers(0, n, n), minlength=n)
        )
        for f, item in enumerate(boot_inputs):
            te = np.asarray(item[0])
            idx = np.repeat(np.arange(len(te)), counts[te])
            if len(idx) < 2:
                continue
            score = np.asarray(item[1])[idx]
            out[b, f] = _fold_metric(task, y[te][idx], score, item[2] if len(item) > 2 else None)
    return out


def _interval(
    estimate: float, boot_means: np.ndarray, repeat_means: np.ndarray
) -> tuple[float, float, float]:
    """(SE, CI low, CI high) of :data:`CI_METHOD`."""
    finite = boot_means[np.isfinite(boot_means)]
    se_boot = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    reps = repeat_means[np.isfinite(repeat_means)]
    sd_rep = float(np.std(reps, ddof=1)) if len(reps) > 1 else 0.0
    se = math.sqrt(se_boot**2 + sd_rep**2)
    return se, estimate - 1.96 * se, estimate + 1.96 * se


def _repeat_means(fold_values: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    return np.array(
        [np.nanmean(fold_values[repeats == r]) for r in np.unique(repeats)], dtype=float
    )


def _summary(folds: pd.DataFrame, boot: np.ndarray, task: Task) -> pd.DataFrame:
    metrics = [
        c
        for c in folds.columns
        if c
        not in (
            "repeat",
            "fold",
            "n_train",
            "n_test",
            "best_params",
            "threshold",
            "n_model_features",
            "n_imaging_features",
        )
    ]
    rows = {
        m: {
            "estimate": float(folds[m].mean()),
            "fold_sd": float(folds[m].std()),
            "se": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
        }
        for m in metrics
    }
    headline = "harrell_c" if task == "survival" else "auc"
    if boot.shape[0] > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resample rows
            boot_means = np.nanmean(boot[1:], axis=1)
        est = rows[headline]["estimate"]
        reps = _repeat_means(folds[headline].to_numpy(float), folds["repeat"].to_numpy())
        se, lo, hi = _interval(est, boot_means, reps)
        rows[headline].update(se=se, ci_low=max(lo, 0.0), ci_high=min(hi, 1.0))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "metric"
    return table


def paired_difference(result: EvaluationResult, reference: EvaluationResult) -> dict[str, float]:
    """Difference of the headline metric, ``result`` minus ``reference``, evaluated on
    the same outer folds and bootstrap resamples, with the CI of :data:`CI_METHOD`
    applied to the difference and a two-sided p-value (normal approximation) for no
    difference.

    Raises
    ------
    ValueError
        The two results were not evaluated on the same folds and resamples.
    """
    a, b = result.folds, reference.folds
    same = (
        len(a) == len(b)
        and result.boot.shape == reference.boot.shape
        and (
            a[["repeat", "fold", "n_test"]].to_numpy() == b[["repeat", "fold", "n_test"]].to_numpy()
        ).all()
        and result.settings.get("random_state") == reference.settings.get("random_state")
    )
    if not same:
        raise ValueError("the two results do not share their outer folds and resamples")
    head = "harrell_c" if result.task == "survival" else "auc"
    diff_folds = a[head].to_numpy(float) - b[head].to_numpy(float)
    estimate = float(np.nanmean(diff_folds))
    out: dict[str, float] = {
        "delta": estimate,
        "delta_se": float("nan"),
        "delta_ci_low": float("nan"),
        "delta_ci_high": float("nan"),
        "delta_p": float("nan"),
    }
    if result.boot.shape[0] > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            boot = np.nanmean(result.boot[1:] - reference.boot[1:], axis=1)
        reps = _repeat_means(diff_folds, a["repeat"].to_numpy())
        se, lo, hi = _interval(estimate, boot, reps)
        p = 1.0 if se == 0 and estimate == 0 else float("nan")  # identical predictions
        if se > 0 and np.isfinite(se):
            from scipy.stats import norm

            p = float(2 * norm.sf(abs(estimate) / se))
        out.update(delta_se=se, delta_ci_low=lo, delta_ci_high=hi, delta_p=p)
    return out


def permutation_test(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: Any,
    observed: EvaluationResult,
    *,
    param_grid: Any = None,
    settings: CVSettings | None = None,
    n_permutations: int = 20,
    seed: int = 0,
    label: str | None = None,
) -> tuple[float, np.ndarray]:
    """Permutation test of a nested-CV result: is the score better than chance?

    The outcome is shuffled ``n_permutations`` times and the whole nested CV is rerun
    (selection and tuning included) with one outer repeat. The observed statistic is the
    same quantity for the unshuffled data: the mean headline metric of the first outer
    repeat of ``observed``. ``p = (1 + #{permuted >= observed}) / (1 + n_permutations)``,
    an exact test of "no association", valid whatever the pipeline does.

    Returns
    -------
    p_value, permuted
        The p-value and the permuted statistics.
    """
    settings = settings or CVSettings()
    task = observed.task
    single = replace(settings, outer_repeats=1, n_boot=0)
    head = "harrell_c" if task == "survival" else "auc"
    first = observed.folds[observed.folds["repeat"] == 0]
    stat = float(first[head].mean())
    rng = np.random.default_rng(seed)
    arr = np.asarray(y)
    permuted = np.empty(n_permutations)
    name = label or "model"
    for i in range(n_permutations):
        shuffled = arr[rng.permutation(len(arr))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HybridradWarning)  # said once for the real run
            logging.disable(logging.INFO)
            try:
                res = nested_cv(
                    estimator, X, shuffled, param_grid=param_grid, settings=single, task=task
                )
            finally:
                logging.disable(logging.NOTSET)
        permuted[i] = float(res.folds[head].mean())
        log.info("%s: permutation %d/%d (%s %.3f)", name, i + 1, n_permutations, head, permuted[i])
    p = (1.0 + float(np.sum(permuted >= stat - 1e-12))) / (1.0 + n_permutations)
    return p, permuted


def _risk_groups(
    groups_by_repeat: Mapping[int, pd.Series], index: pd.Index, y: np.ndarray
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    position = {cid: i for i, cid in enumerate(index)}
    for repeat, groups in sorted(groups_by_repeat.items()):
        idx = np.array([position[c] for c in groups.index])
        if groups.nunique() < 2:
            rows.append(
                {
                    "repeat": repeat,
                    "n_high": int((groups == "high").sum()),
                    "n_low": int((groups == "low").sum()),
                    "degenerate": True,
                }
            )
            continue
        cmp = compare_groups(y[idx], groups.to_numpy(), reference="low")
        lo, hi = cmp.hazard_ratio_ci
        hr = cmp.hazard_ratio
        degenerate = (
            not all(np.isfinite([hr, lo, hi]))
            or hi / max(lo, 1e-300) > 1e4
            or min(cmp.n_events.values()) == 0
        )
        rows.append(
            {
                "repeat": repeat,
                "logrank_statistic": cmp.logrank_statistic,
                "logrank_p": cmp.logrank_p_value,
                "hazard_ratio": hr,
                "hr_low": lo,
                "hr_high": hi,
                "n_high": int((groups == "high").sum()),
                "n_low": int((groups == "low").sum()),
                "degenerate": bool(degenerate),
            }
        )
    return pd.DataFrame(rows)
