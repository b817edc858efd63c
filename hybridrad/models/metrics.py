"""Evaluation metrics for survival and classification models.

Every function here is a thin, validated wrapper around the implementation in
scikit-survival, lifelines or scikit-learn; nothing is re-derived. Conventions:

* the survival target ``y`` is a scikit-survival structured array whose first field is
  the event indicator (bool) and second the time (float), as built by
  :func:`sksurv.util.Surv.from_arrays` (fields ``event`` and ``time`` in hybridrad);
* risk scores are oriented so that a **higher score means a higher risk** (shorter
  survival), the scikit-survival convention. lifelines' ``concordance_index`` expects the
  opposite orientation; pass ``-risk`` there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve
from sklearn.utils import check_random_state, resample
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import check_y_survival

from hybridrad.errors import HybridradWarning

__all__ = [
    "BootstrapResult",
    "CalibrationResult",
    "EvaluationWarning",
    "TimeDependentAUC",
    "auc_ci",
    "balanced_accuracy",
    "bootstrap_ci",
    "calibration_at",
    "harrell_c",
    "integrated_brier",
    "net_benefit",
    "roc_curve_table",
    "survival_scorer",
    "td_auc",
    "uno_c",
]

#: Exceptions that mark a metric as undefined on a bootstrap resample (one class only,
#: all samples censored, no comparable pair ...). They are skipped, not propagated.
UNDEFINED_METRIC_ERRORS: tuple[type[Exception], ...] = (ValueError, ArithmeticError)


class EvaluationWarning(HybridradWarning):
    """An evaluation result is usable but needs care (skipped resamples, extrapolation)."""


# --- helpers -----------------------------------------------------------------------------


def _event_time(y: npt.NDArray[Any]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Validate a survival structured array and split it into event and time arrays."""
    event, time = check_y_survival(y)
    return np.asarray(event, dtype=bool), np.asarray(time, dtype=np.float64)


def _as_1d_float(values: npt.ArrayLike, name: str, n: int | None = None) -> npt.NDArray[np.float64]:
    """A 1-D finite float array of length ``n`` (when given); ``ValueError`` otherwise."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values but y has {n} samples")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values; impute or drop those samples")
    return arr


def _km_at(
    event: npt.NDArray[np.bool_], time: npt.NDArray[np.float64], t: float
) -> tuple[float, float, float, bool]:
    """Kaplan-Meier survival at ``t`` with its log-log 95 % CI (scikit-survival).

    Returns ``(survival, lower, upper, extrapolated)``; ``extrapolated`` is true when ``t``
    lies past the last observed time and that time is censored, so the curve is only
    carried forward.
    """
    if time.size == 0:
        return float("nan"), float("nan"), float("nan"), False
    if not np.any(event):
        # No event: the estimate is 1 everywhere and the CI undefined.
        return 1.0, float("nan"), float("nan"), bool(t > time.max())
    times, surv, ci = kaplan_meier_estimator(event, time, conf_type="log-log")
    idx = int(np.searchsorted(times, t, side="right")) - 1
    last_censored = not bool(np.any(event[time == time.max()]))
    extrapolated = bool(t > time.max() and last_censored)
    if idx < 0:
        return 1.0, 1.0, 1.0, extrapolated
    return float(surv[idx]), float(ci[0, idx]), float(ci[1, idx]), extrapolated


# --- survival: discrimination ------------------------------------------------------------


def harrell_c(y: npt.NDArray[Any], risk: npt.ArrayLike, tied_tol: float = 1e-8) -> float:
    """Harrell's concordance index (:func:`sksurv.metrics.concordance_index_censored`).

    Parameters
    ----------
    y
        Survival target, a structured array (event, time).
    risk
        Predicted risk scores, one per sample; higher means higher risk.
    tied_tol
        Tolerance below which two risk scores count as tied (a tie counts 1/2).

    Returns
    -------
    float
        The concordance index in [0, 1]; 0.5 is random ordering.

    Raises
    ------
    ValueError
        If ``y`` is malformed, all samples are censored, there is no comparable pair, or
        ``risk`` has the wrong length or non-finite values.
    """
    event, time = _event_time(y)
    r = _as_1d_float(risk, "risk", event.shape[0])
    return float(concordance_index_censored(event, time, r, tied_tol=tied_tol)[0])


def uno_c(
    y_train: npt.NDArray[Any],
    y_test: npt.NDArray[Any],
    risk: npt.ArrayLike,
    tau: float | None = None,
    tied_tol: float = 1e-8,
) -> float:
    """Uno's IPCW concordance index (:func:`sksurv.metrics.concordance_index_ipcw`).

    Parameters
    ----------
    y_train
        Survival target of the training data, used to estimate the censoring distribution
        by Kaplan-Meier.
    y_test
        Survival target of the evaluated samples.
    risk
        Predicted risk scores of the evaluated samples; higher means higher risk.
    tau
        Truncation time: only pairs whose shorter time is below ``tau`` are compared.
        Choose it where the censoring survival is still well above zero; ``None`` uses
        all times.
    tied_tol
        Tolerance below which two risk scores count as tied.

    Returns
    -------
    float
        The concordance index in [0, 1].

    Raises
    ------
    ValueError
        If a target is malformed, ``risk`` has the wrong length, test times exceed the
        training follow-up, or the censoring survival reaches zero before ``tau``.
    """
    check_y_survival(y_train)
    event, _ = _event_time(y_test)
    r = _as_1d_float(risk, "risk", event.shape[0])
    return float(concordance_index_ipcw(y_train, y_test, r, tau=tau, tied_tol=tied_tol)[0])


class TimeDependentAUC(NamedTuple):
    """Cumulative/dynamic AUC at each evaluation time and its summary.

    Attributes
    ----------
    times
        The evaluation times.
    auc
        AUC at each time.
    mean_auc
        The mean AUC weighted by the change of the Kaplan-Meier estimate over the
        evaluation times (scikit-survival's summary).
    """

    times: npt.NDArray[np.float64]
    auc: npt.NDArray[np.float64]
    mean_auc: float


def td_auc(
    y_train: npt.NDArray[Any],
    y_test: npt.NDArray[Any],
    risk: npt.ArrayLike,
    times: npt.ArrayLike,
) -> TimeDependentAUC:
    """Time-dependent cumulative/dynamic AUC (:func:`sksurv.metrics.cumulative_dynamic_auc`).

    Parameters
    ----------
    y_train
        Survival target of the training data (censoring distribution).
    y_test
        Survival target of the evaluated samples.
    risk
        Risk scores, shape ``(n,)``, or time-dependent risks, shape ``(n, len(times))``.
    times
        Evaluation times, inside the follow-up of ``y_test``.

    Returns
    -------
    TimeDependentAUC
        ``times``, ``auc`` per time and ``mean_auc``.

    Raises
    ------
    ValueError
        If a target is malformed, shapes disagree, or a time lies outside the follow-up.
    """
    check_y_survival(y_train)
    event, _ = _event_time(y_test)
    r = np.asarray(risk, dtype=np.float64)
    if r.ndim == 1:
        r = _as_1d_float(r, "risk", event.shape[0])
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    auc, mean_auc = cumulative_dynamic_auc(y_train, y_test, r, t)
    return TimeDependentAUC(
        times=t, auc=np.asarray(auc, dtype=np.float64), mean_auc=float(mean_auc)
    )


# --- survival: accuracy of predicted survival probabilities ---------------------------------


def integrated_brier(
    y_train: npt.NDArray[Any],
    y_test: npt.NDArray[Any],
    surv_probs: npt.ArrayLike,
    times: npt.ArrayLike,
) -> float:
    """Integrated Brier score (:func:`sksurv.metrics.integrated_brier_score`).

    Parameters
    ----------
    y_train
        Survival target of the training data (censoring distribution for IPCW).
    y_test
        Survival target of the evaluated samples.
    surv_probs
        Predicted survival probabilities ``S(t | x)``, shape ``(n_test, len(times))``.
    times
        At least two increasing evaluation times inside the follow-up of ``y_test``.

    Returns
    -------
    float
        The Brier score integrated over ``times`` and divided by their range; lower is
        better (0.25 is an uninformative constant 0.5 prediction).

    Raises
    ------
    ValueError
        If a target is malformed, ``surv_probs`` does not have shape
        ``(n_test, len(times))``, holds values outside [0, 1], or fewer than two times are
        given.
    """
    check_y_survival(y_train)
    event, _ = _event_time(y_test)
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    probs = np.asarray(surv_probs, dtype=np.float64)
    if probs.shape != (event.shape[0], t.shape[0]):
        raise ValueError(
            f"surv_probs must have shape (n_test, len(times)) = ({event.shape[0]}, "
            f"{t.shape[0]}), got {probs.shape}"
        )
    if np.any((probs < 0) | (probs > 1)) or not np.all(np.isfinite(probs)):
        raise ValueError("surv_probs must be survival probabilities in [0, 1]")
    return float(integrated_brier_score(y_train, y_test, probs, t))


@dataclass(frozen=True)
class CalibrationResult:
    """Grouped calibration of predicted survival at one horizon.

    Attributes
    ----------
    t
        The horizon.
    table
        One row per risk group (``group`` 0 = lowest predicted survival): ``n``,
        ``n_events`` (events up to ``t``), ``pred_min``, ``pred_max``, ``predicted`` (mean
        predicted survival), ``observed`` (Kaplan-Meier survival at ``t``) with its log-log
        95 % CI ``observed_lower``/``observed_upper``, and ``extrapolated`` (``t`` past the
        group's last, censored, follow-up).
    slope, intercept
        Size-weighted least-squares line of observed on predicted survival across groups;
        perfect calibration is slope 1, intercept 0 (NaN with fewer than two groups).
    weighted_abs_error
        ICI-like summary: group-size-weighted mean of ``|observed - predicted|``.
    max_abs_error
        Largest ``|observed - predicted|`` over the groups.
    observed_overall, predicted_overall
        Kaplan-Meier survival at ``t`` of all samples, and the mean predicted survival.
    """

    t: float
    table: pd.DataFrame
    slope: float
    intercept: float
    weighted_abs_error: float
    max_abs_error: float
    observed_overall: float
    predicted_overall: float


def calibration_at(
    y: npt.NDArray[Any],
    surv_prob_at_t: npt.ArrayLike,
    t: float,
    n_groups: int = 5,
) -> CalibrationResult:
    """Observed (Kaplan-Meier) versus mean predicted survival at ``t`` per risk group.

    Samples are split into ``n_groups`` quantile groups of predicted survival
    (:func:`pandas.qcut`; groups with tied boundaries are merged). In each group the
    observed survival at ``t`` is the Kaplan-Meier estimate
    (:func:`sksurv.nonparametric.kaplan_meier_estimator`), which accounts for censoring.

    Parameters
    ----------
    y
        Survival target (event, time) of the evaluated samples.
    surv_prob_at_t
        Predicted survival probability ``S(t | x)`` of each sample.
    t
        The horizon, a positive time within the follow-up.
    n_groups
        Number of quantile groups (at least 2).

    Returns
    -------
    CalibrationResult
        The per-group table and summary statistics.

    Raises
    ------
    ValueError
        If ``y`` is malformed, the predictions have the wrong length or lie outside
        [0, 1], ``t`` is not positive, or ``n_groups < 2``.

    Warns
    -----
    EvaluationWarning
        If fewer groups than asked could be formed (tied predictions), or if ``t`` lies
        past the last (censored) follow-up of a group so its estimate is carried forward.
    """
    event, time = _event_time(y)
    pred = _as_1d_float(surv_prob_at_t, "surv_prob_at_t", event.shape[0])
    if np.any((pred < 0) | (pred > 1)):
        raise ValueError("surv_prob_at_t must be survival probabilities in [0, 1]")
    if not t > 0:
        raise ValueError(f"t must be a positive time, got {t}")
    if n_groups < 2:
        raise ValueError(f"n_groups must be at least 2, got {n_groups}")
    codes = np.asarray(pd.qcut(pred, n_groups, labels=False, duplicates="drop"), dtype=np.int64)
    groups = np.unique(codes)
    if groups.size < n_groups:
        warnings.warn(
            f"only {groups.size} of {n_groups} calibration groups could be formed: the "
            "predicted survival has too many ties",
            EvaluationWarning,
            stacklevel=2,
        )
    rows = []
    for g in groups:
        sel = codes == g
        obs, lo, hi, extrap = _km_at(event[sel], time[sel], t)
        rows.append(
            {
                "group": int(g),
                "n": int(sel.sum()),
                "n_events": int(np.sum(event[sel] & (time[sel] <= t))),
                "pred_min": float(pred[sel].min()),
                "pred_max": float(pred[sel].max()),
                "predicted": float(pred[sel].mean()),
                "observed": obs,
                "observed_lower": lo,
                "observed_upper": hi,
                "extrapolated": extrap,
            }
        )
    table = pd.DataFrame(rows)
    if table["extrapolated"].any():
        warnings.warn(
            f"t={t} lies past the last, censored, follow-up time of group(s) "
            f"{table.loc[table['extrapolated'], 'group'].tolist()}; their Kaplan-Meier "
            "estimate is carried forward",
            EvaluationWarning,
            stacklevel=2,
        )
    x = table["predicted"].to_numpy(dtype=np.float64)
    obs_arr = table["observed"].to_numpy(dtype=np.float64)
    n = table["n"].to_numpy(dtype=np.float64)
    if np.unique(x).size >= 2:
        slope, intercept = np.polyfit(x, obs_arr, 1, w=np.sqrt(n))
    else:
        slope, intercept = float("nan"), float("nan")
    err = np.abs(obs_arr - x)
    overall, _, _, _ = _km_at(event, time, t)
    return CalibrationResult(
        t=float(t),
        table=table,
        slope=float(slope),
        intercept=float(intercept),
        weighted_abs_error=float(np.sum(n * err) / np.sum(n)),
        max_abs_error=float(err.max()),
        observed_overall=overall,
        predicted_overall=float(pred.mean()),
    )


def net_benefit(
    y: npt.NDArray[Any],
    risk_prob_at_t: npt.ArrayLike,
    t: float,
    thresholds: npt.ArrayLike,
) -> pd.DataFrame:
    """Decision-curve analysis for a survival outcome at horizon ``t``.

    Survival extension of Vickers et al. (2008, *BMC Med Inform Decis Mak* 8:53): a
    patient is "treated" (called high risk) when the predicted probability of an event by
    ``t`` is at least the threshold probability ``pt``; with ``S_high(t)`` the
    Kaplan-Meier survival at ``t`` of the high-risk patients and ``P(high)`` their
    fraction,

    ``NB(pt) = (1 - S_high(t)) P(high) - S_high(t) P(high) pt / (1 - pt)``.

    "Treat all" uses the Kaplan-Meier survival of everybody and ``P(high) = 1``;
    "treat none" is 0. Without censoring this is the usual ``TP/n - FP/n * pt/(1-pt)``.

    Parameters
    ----------
    y
        Survival target (event, time).
    risk_prob_at_t
        Predicted probability of the event by ``t``, i.e. ``1 - S(t | x)``.
    t
        The horizon, a positive time within the follow-up.
    thresholds
        Threshold probabilities ``pt`` in [0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per threshold: ``threshold``, ``n_high``, ``fraction_high``,
        ``event_rate_high`` (``1 - S_high(t)``, NaN when nobody is high risk),
        ``net_benefit``, ``treat_all`` and ``treat_none``.

    Raises
    ------
    ValueError
        If ``y`` is malformed, the predictions have the wrong length or lie outside
        [0, 1], ``t`` is not positive, or a threshold lies outside [0, 1).

    Warns
    -----
    EvaluationWarning
        If ``t`` lies past the last, censored, follow-up time of the high-risk group at
        some threshold (its Kaplan-Meier estimate is then carried forward).
    """
    event, time = _event_time(y)
    risk = _as_1d_float(risk_prob_at_t, "risk_prob_at_t", event.shape[0])
    if np.any((risk < 0) | (risk > 1)):
        raise ValueError("risk_prob_at_t must be event probabilities in [0, 1]")
    if not t > 0:
        raise ValueError(f"t must be a positive time, got {t}")
    pts = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if pts.ndim != 1 or np.any((pts < 0) | (pts >= 1)) or not np.all(np.isfinite(pts)):
        raise ValueError("thresholds must be probabilities in [0, 1)")
    n = event.shape[0]
    s_all, _, _, extrap_any = _km_at(event, time, t)
    rows = []
    for pt in pts:
        odds = pt / (1.0 - pt)
        high = risk >= pt
        n_high = int(high.sum())
        if n_high == 0:
            nb, rate = 0.0, float("nan")
        else:
            s_high, _, _, extrap = _km_at(event[high], time[high], t)
            extrap_any = extrap_any or extrap
            p_high = n_high / n
            rate = 1.0 - s_high
            nb = rate * p_high - s_high * p_high * odds
        rows.append(
            {
                "threshold": float(pt),
                "n_high": n_high,
                "fraction_high": n_high / n,
                "event_rate_high": rate,
                "net_benefit": nb,
                "treat_all": (1.0 - s_all) - s_all * odds,
                "treat_none": 0.0,
            }
        )
    if extrap_any:
        warnings.warn(
            f"t={t} lies past the last, censored, follow-up time of the high-risk group at "
            "some thresholds; the Kaplan-Meier estimate there is carried forward",
            EvaluationWarning,
            stacklevel=2,
        )
    return pd.DataFrame(rows)


# --- bootstrap ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with its percentile bootstrap confidence interval.

    Attributes
    ----------
    estimate
        The metric on the original data.
    lower, upper
        Percentile CI bounds at level ``1 - alpha``.
    alpha
        The two-sided error level.
    n_boot
        Number of resamples drawn.
    n_skipped
        Resamples on which the metric was undefined (raised or was not finite), left out
        of the interval.
    distribution
        The metric on each valid resample.
    """

    estimate: float
    lower: float
    upper: float
    alpha: float
    n_boot: int
    n_skipped: int
    distribution: npt.NDArray[np.float64] = field(repr=False)


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: Any,
    n_boot: int = 1000,
    alpha: float = 0.05,
    random_state: int | np.random.RandomState | None = None,
    stratify: npt.ArrayLike | None = None,
) -> BootstrapResult:
    """Percentile bootstrap CI of ``metric_fn(*arrays)`` over rows.

    Rows are resampled with replacement (:func:`sklearn.utils.resample`; the same rows
    for every array), within each level of ``stratify`` when given, which keeps for
    instance both classes, or events and censorings, in every resample. A resample on
    which the metric raises ``ValueError`` / ``ArithmeticError`` or returns a non-finite
    value (as scikit-learn's AUC does when one class is missing) is skipped and counted.

    Parameters
    ----------
    metric_fn
        Function of the arrays returning a scalar, e.g. ``harrell_c`` with ``(y, risk)``.
    *arrays
        Arrays indexable by row (numpy, including structured arrays, pandas, lists) of
        equal length.
    n_boot
        Number of resamples.
    alpha
        Two-sided error level; the interval is the ``alpha/2`` and ``1 - alpha/2``
        quantiles.
    random_state
        Seed or ``RandomState`` for reproducibility.
    stratify
        Labels to resample within (same length as the arrays), or ``None``.

    Returns
    -------
    BootstrapResult
        Point estimate, interval, and the number of skipped resamples.

    Raises
    ------
    ValueError
        If no array is given, lengths differ, ``n_boot < 1``, ``alpha`` is not in
        (0, 1), the metric is undefined on the original data, or on every resample.

    Warns
    -----
    EvaluationWarning
        If some resamples were skipped.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lengths = {len(a) for a in arrays}
    if stratify is not None:
        stratify = np.asarray(stratify)
        lengths.add(stratify.shape[0])
    if len(lengths) != 1:
        raise ValueError(f"arrays (and stratify) must have equal lengths, got {sorted(lengths)}")
    estimate = float(metric_fn(*arrays))
    if not np.isfinite(estimate):
        raise ValueError(f"the metric is not finite on the original data ({estimate})")
    rng = check_random_state(random_state)
    values: list[float] = []
    n_skipped = 0
    for _ in range(n_boot):
        sample = resample(*arrays, replace=True, stratify=stratify, random_state=rng)
        if len(arrays) == 1:
            sample = [sample]
        try:
            with warnings.catch_warnings():
                # Counted and reported once below instead.
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                value = float(metric_fn(*sample))
        except UNDEFINED_METRIC_ERRORS:
            n_skipped += 1
            continue
        if not np.isfinite(value):
            n_skipped += 1
            continue
        values.append(value)
    if not values:
        raise ValueError(f"the metric was undefined on all {n_boot} bootstrap resamples")
    if n_skipped:
        warnings.warn(
            f"{n_skipped} of {n_boot} bootstrap resamples were skipped because the metric "
            "was undefined on them; the interval uses the remaining ones (consider stratify=)",
            EvaluationWarning,
            stacklevel=2,
        )
    dist = np.asarray(values, dtype=np.float64)
    lower, upper = np.quantile(dist, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        estimate=estimate,
        lower=float(lower),
        upper=float(upper),
        alpha=alpha,
        n_boot=n_boot,
        n_skipped=n_skipped,
        distribution=dist,
    )


# --- classification -----------------------------------------------------------------------


def _roc_auc(y_true: npt.NDArray[Any], score: npt.NDArray[np.float64], labels: Any) -> float:
    """Binary AUC, or one-vs-rest macro AUC for more than two classes (scikit-learn)."""
    if len(labels) > 2:
        return float(
            roc_auc_score(y_true, score, multi_class="ovr", average="macro", labels=labels)
        )
    return float(roc_auc_score(y_true, score))


def auc_ci(
    y_true: npt.ArrayLike,
    score: npt.ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    random_state: int | np.random.RandomState | None = None,
) -> BootstrapResult:
    """ROC AUC with a stratified percentile bootstrap CI.

    The point estimate is :func:`sklearn.metrics.roc_auc_score`; with more than two
    classes it is the one-vs-rest macro AUC. Resamples are stratified by class so every
    class is present in each.

    Parameters
    ----------
    y_true
        Class labels.
    score
        Binary: score of the positive (greater) class, shape ``(n,)``, or class
        probabilities of shape ``(n, 2)`` (column 1 is used). Multiclass: class
        probabilities, shape ``(n, n_classes)``, columns in sorted label order, rows
        summing to 1.
    n_boot
        Number of bootstrap resamples.
    alpha
        Two-sided error level of the interval.
    random_state
        Seed or ``RandomState``.

    Returns
    -------
    BootstrapResult
        AUC estimate and interval.

    Raises
    ------
    ValueError
        If there is only one class, or the shape of ``score`` does not fit the classes.
    """
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=np.float64)
    labels = np.unique(y)
    if labels.size < 2:
        raise ValueError("auc_ci needs at least two classes in y_true")
    if labels.size == 2 and s.ndim == 2:
        if s.shape[1] != 2:
            raise ValueError(f"binary score must have shape (n,) or (n, 2), got {s.shape}")
        s = s[:, 1]
    if labels.size > 2 and (s.ndim != 2 or s.shape[1] != labels.size):
        raise ValueError(
            f"multiclass score must have shape (n, {labels.size}) (one column per class), "
            f"got {s.shape}"
        )

    def metric(yy: npt.NDArray[Any], ss: npt.NDArray[np.float64]) -> float:
        return _roc_auc(yy, ss, labels)

    return bootstrap_ci(
        metric, y, s, n_boot=n_boot, alpha=alpha, random_state=random_state, stratify=y
    )


def balanced_accuracy(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, adjusted: bool = False
) -> float:
    """Balanced accuracy (:func:`sklearn.metrics.balanced_accuracy_score`).

    Parameters
    ----------
    y_true
        True class labels.
    y_pred
        Predicted class labels.
    adjusted
        Rescale so that chance is 0 and perfect is 1.

    Returns
    -------
    float
        The mean per-class recall.

    Raises
    ------
    ValueError
        If the inputs have different lengths.
    """
    return float(balanced_accuracy_score(y_true, y_pred, adjusted=adjusted))


def roc_curve_table(
    y_true: npt.ArrayLike,
    score: npt.ArrayLike,
    pos_label: Any = None,
    drop_intermediate: bool = False,
) -> pd.DataFrame:
    """Binary ROC curve as a table (:func:`sklearn.metrics.roc_curve`).

    Parameters
    ----------
    y_true
        Binary labels.
    score
        Score of the positive class (higher = more likely positive).
    pos_label
        The positive label; ``None`` accepts {0, 1} or {-1, 1}.
    drop_intermediate
        Drop thresholds that do not change the curve's shape.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``fpr``, ``tpr``, ``specificity`` and ``youden_j``
        (``tpr - fpr``), by increasing ``fpr``. The first threshold is ``inf``.

    Raises
    ------
    ValueError
        If ``y_true`` is not binary or ``pos_label`` is ambiguous.
    """
    fpr, tpr, thr = roc_curve(
        y_true,
        np.asarray(score, dtype=np.float64),
        pos_label=pos_label,
        drop_intermediate=drop_intermediate,
    )
    return pd.DataFrame(
        {
            "threshold": thr,
            "fpr": fpr,
            "tpr": tpr,
            "specificity": 1.0 - fpr,
            "youden_j": tpr - fpr,
        }
    )


# --- scikit-learn scorer ------------------------------------------------------------------


class _SurvivalScorer:
    """Picklable ``(estimator, X, y) -> float`` scorer on ``estimator.predict(X)``."""

    def __init__(self, metric: Literal["harrell", "uno"], tau: float | None) -> None:
        self.metric = metric
        self.tau = tau

    def __call__(self, estimator: Any, X: Any, y: npt.NDArray[Any]) -> float:
        risk = np.asarray(estimator.predict(X), dtype=np.float64)
        if self.metric == "harrell":
            return harrell_c(y, risk)
        return uno_c(y, y, risk, tau=self.tau)

    def __repr__(self) -> str:
        return f"survival_scorer(metric={self.metric!r}, tau={self.tau!r})"


def survival_scorer(
    metric: Literal["harrell", "uno"] = "harrell", tau: float | None = None
) -> Callable[[Any, Any, npt.NDArray[Any]], float]:
    """A scorer for :class:`~sklearn.model_selection.GridSearchCV` (``scoring=``).

    The scorer calls ``estimator.predict(X)``, which must return risk scores (higher =
    higher risk, as scikit-survival estimators do), and returns a concordance index, so
    greater is better.

    Parameters
    ----------
    metric
        ``"harrell"`` (:func:`harrell_c`) or ``"uno"`` (:func:`uno_c`). For ``"uno"`` the
        censoring distribution is estimated on the scored fold itself, since a scorer does
        not see the training targets; for time-dependent AUC or Brier score wrap the
        estimator in :class:`sksurv.metrics.as_cumulative_dynamic_auc_scorer` or
        :class:`sksurv.metrics.as_integrated_brier_score_scorer` instead.
    tau
        Truncation time for ``"uno"``; ignored for ``"harrell"``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``.

    Raises
    ------
    ValueError
        If ``metric`` is unknown.
    """
    if metric not in ("harrell", "uno"):
        raise ValueError(f"unknown survival metric {metric!r}; use 'harrell' or 'uno'")
    return _SurvivalScorer(metric, tau)
