"""External validation: score a frozen model on a new cohort.

:func:`score_model` applies a model saved by :func:`~hybridrad.models.final.fit_final`,
unchanged, to new cases and reports discrimination and calibration with their
uncertainty, for the model and for the clinical-only reference model saved beside it:

* survival: Harrell's C with a percentile bootstrap CI; calibration at a horizon
  (:func:`survival_calibration`, and a grouped observed-versus-predicted table); the
  Kaplan-Meier curves of the new cases split at the **training** risk cutoff, with the
  log-rank test and the hazard ratio of the high-risk group;
* classification: ROC AUC with a stratified percentile bootstrap CI; logistic
  recalibration (:func:`logistic_calibration`) and a grouped table; the ROC curve;
  sensitivity and specificity at the training decision threshold.

Nothing is refitted on the new cases except the recalibration models that measure
calibration.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats
from sklearn.metrics import roc_auc_score

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.models.data import StudyData
from hybridrad.models.final import CLINICAL_SUBFOLDER, ModelInputError, model_input
from hybridrad.models.metrics import (
    auc_ci,
    bootstrap_ci,
    calibration_at,
    harrell_c,
    roc_curve_table,
)
from hybridrad.provenance import library_versions

__all__ = [
    "CALIBRATION_GROUPS",
    "HorizonError",
    "ScoreWarning",
    "TaskMismatchError",
    "logistic_calibration",
    "score_model",
    "survival_calibration",
]

log = logging.getLogger(__name__)

#: Quantile groups of the calibration tables and plots.
CALIBRATION_GROUPS = 5

SURVIVAL_CALIBRATION_METHOD = (
    "complementary log-log recalibration at the horizon h, follow-up truncated at h: "
    "slope = Cox regression coefficient (lifelines, Efron ties) of log(-log S(h|x)); "
    "intercept = log of the Breslow baseline cumulative hazard at h with log(-log S(h|x)) "
    "as an offset (slope fixed at 1). Perfect calibration: slope 1, intercept 0"
)
LOGISTIC_CALIBRATION_METHOD = (
    "logistic recalibration: slope = coefficient of logit(p) in a logistic regression of "
    "the outcome on logit(p); intercept = intercept with logit(p) as an offset (slope "
    "fixed at 1, calibration-in-the-large). Perfect calibration: slope 1, intercept 0"
)


class TaskMismatchError(HybridradError, ValueError):
    """A survival model scored with a class label, or a classifier with survival data."""


class HorizonError(HybridradError, ValueError):
    """The calibration horizon is not positive or lies beyond the cohort's follow-up."""


class ScoreWarning(HybridradWarning):
    """A score of an external validation is undefined or rests on extrapolation."""


# --- calibration measures ---------------------------------------------------------------------


def survival_calibration(
    y: npt.NDArray[Any], surv_at_horizon: npt.ArrayLike, horizon: float
) -> tuple[float, float]:
    """Calibration slope and intercept of predicted survival at a horizon.

    With ``c = log(-log S(h|x))``, the predicted log cumulative hazard at ``h``, the
    observed data (follow-up truncated at ``h``: events after it are censored at ``h``)
    are fitted with a Cox model whose only covariate is ``c``. Its coefficient is the
    calibration **slope**: 1 when predictions spread as much as outcomes, below 1 when
    they are too extreme (overfitting). With ``c`` as an offset (slope fixed at 1), the
    Breslow baseline cumulative hazard ``H*(h)`` is 1 for calibrated predictions; the
    calibration **intercept** is ``log H*(h)``: above 0 when more events occur by ``h``
    than predicted, below 0 when fewer. For a Cox model ``c`` is the linear predictor
    plus a constant, so the slope is the usual calibration slope of the linear predictor
    (truncated at ``h``).

    Parameters
    ----------
    y
        Survival target (event, time) of the cohort.
    surv_at_horizon
        Predicted survival ``S(h|x)`` of each case (clipped to [1e-12, 1 - 1e-12]).
    horizon
        The horizon ``h`` (> 0).

    Returns
    -------
    slope, intercept
        NaN when undefined (no event by ``h``, constant predictions), with a
        :class:`ScoreWarning`.

    Examples
    --------
    Predictions of the model that generated the data are calibrated:

    >>> import numpy as np
    >>> from sksurv.util import Surv
    >>> rng = np.random.default_rng(0)
    >>> lp = rng.normal(size=3000)
    >>> t, c = rng.exponential(10 * np.exp(-lp)), rng.exponential(20, 3000)
    >>> y = Surv.from_arrays(t <= c, np.minimum(t, c))
    >>> slope, intercept = survival_calibration(y, np.exp(-0.1 * 5 * np.exp(lp)), 5.0)
    >>> bool(abs(slope - 1) < 0.1 and abs(intercept) < 0.1)
    True
    """
    from lifelines import CoxPHFitter

    from hybridrad.models.survival import breslow_cumulative_hazard

    event = np.asarray(y["event"], dtype=bool)
    time = np.asarray(y["time"], dtype=float)
    s = np.clip(np.asarray(surv_at_horizon, dtype=float), 1e-12, 1.0 - 1e-12)
    cll = np.log(-np.log(s))
    event_h = event & (time <= horizon)
    time_h = np.minimum(time, horizon)
    if not event_h.any():
        warnings.warn(
            f"no event up to the horizon {horizon:g}: the calibration slope and intercept "
            "are undefined",
            ScoreWarning,
            stacklevel=2,
        )
        return float("nan"), float("nan")
    times, cumhaz = breslow_cumulative_hazard(cll, event_h, time_h)
    at_h = cumhaz[np.searchsorted(times, horizon, side="right") - 1]
    intercept = float(np.log(at_h)) if at_h > 0 else float("nan")
    if np.ptp(cll) < 1e-10:
        warnings.warn(
            "the predicted survival at the horizon is the same for every case: the "
            "calibration slope is undefined",
            ScoreWarning,
            stacklevel=2,
        )
        return float("nan"), intercept
    frame = pd.DataFrame({"cll": cll, "T": time_h, "E": event_h.astype(int)})
    try:
        cph = CoxPHFitter().fit(frame, duration_col="T", event_col="E")
        slope = float(cph.params_["cll"])
    except Exception as exc:  # lifelines raises its own convergence errors
        warnings.warn(
            f"the Cox recalibration model did not converge ({exc}); slope undefined",
            ScoreWarning,
            stacklevel=2,
        )
        slope = float("nan")
    return slope, intercept


def _newton_logistic(
    y: npt.NDArray[np.float64],
    design: npt.NDArray[np.float64],
    offset: npt.NDArray[np.float64],
    max_iter: int = 100,
) -> npt.NDArray[np.float64] | None:
    """Maximum-likelihood logistic coefficients by Newton-Raphson; None if not converged."""
    beta = np.zeros(design.shape[1])
    for _ in range(max_iter):
        p = special.expit(design @ beta + offset)
        grad = design.T @ (y - p)
        hess = (design * (p * (1.0 - p))[:, None]).T @ design
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            return beta
    return None


def logistic_calibration(y: npt.ArrayLike, prob: npt.ArrayLike) -> tuple[float, float]:
    """Calibration slope and intercept of predicted probabilities (logistic recalibration).

    ``logit P(y=1) = a + b logit(p)`` fitted by maximum likelihood gives the **slope**
    ``b``; ``logit P(y=1) = a0 + logit(p)`` (``logit(p)`` as an offset) gives the
    **intercept** ``a0`` (calibration-in-the-large). Calibrated predictions have slope 1
    and intercept 0 (Van Calster et al., J Clin Epidemiol 2016;74:167-176).

    Parameters
    ----------
    y
        Outcomes, 0/1.
    prob
        Predicted probabilities of 1 (clipped to [1e-12, 1 - 1e-12]).

    Returns
    -------
    slope, intercept
        NaN (with a :class:`ScoreWarning`) when a fit does not converge, e.g. with a
        single class or perfectly separated outcomes.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> p = expit(rng.normal(size=3000))
    >>> y = (rng.random(3000) < p).astype(int)
    >>> slope, intercept = logistic_calibration(y, p)
    >>> bool(abs(slope - 1) < 0.15 and abs(intercept) < 0.15)
    True
    >>> round(logistic_calibration(y, expit(2 * np.log(p / (1 - p))))[0] / slope, 6)
    0.5
    """
    yy = np.asarray(y, dtype=float)
    lp = special.logit(np.clip(np.asarray(prob, dtype=float), 1e-12, 1.0 - 1e-12))
    ones = np.ones((yy.size, 1))
    fit0 = _newton_logistic(yy, ones, lp)
    fit1 = (
        _newton_logistic(yy, np.column_stack([ones, lp]), np.zeros_like(lp))
        if np.ptp(lp) > 1e-10
        else None
    )
    if fit0 is None or fit1 is None:
        warnings.warn(
            "the logistic recalibration did not converge (one class, separated outcomes "
            "or constant predictions): calibration slope/intercept undefined",
            ScoreWarning,
            stacklevel=2,
        )
    intercept = float(fit0[0]) if fit0 is not None else float("nan")
    slope = float(fit1[1]) if fit1 is not None else float("nan")
    return slope, intercept


def _label_calibration_table(
    y: npt.NDArray[np.int_], prob: npt.NDArray[np.float64]
) -> pd.DataFrame:
    """Observed fraction (Wilson 95 % CI) versus mean predicted probability per group."""
    codes = np.asarray(
        pd.qcut(prob, CALIBRATION_GROUPS, labels=False, duplicates="drop"), dtype=np.int64
    )
    z = float(stats.norm.ppf(0.975))
    rows = []
    for g in np.unique(codes):
        sel = codes == g
        n = int(sel.sum())
        k = int(y[sel].sum())
        frac = k / n
        centre = (frac + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * math.sqrt(frac * (1 - frac) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
        rows.append(
            {
                "group": int(g),
                "n": n,
                "n_positive": k,
                "pred_min": float(prob[sel].min()),
                "pred_max": float(prob[sel].max()),
                "predicted": float(prob[sel].mean()),
                "observed": frac,
                "observed_lower": centre - half,
                "observed_upper": centre + half,
            }
        )
    return pd.DataFrame(rows)


# --- scoring one model ---------------------------------------------------------------------


def _bootstrap(
    fn: Callable[[], Any], estimate: Callable[[], float], n_boot: int
) -> tuple[float, float, float, int]:
    """(estimate, low, high, skipped) from a bootstrap call; no CI when n_boot is 0."""
    if n_boot == 0:
        return estimate(), float("nan"), float("nan"), 0
    res = fn()
    return res.estimate, res.lower, res.upper, res.n_skipped


def _score_survival(
    model: Any,
    meta: dict[str, Any],
    X: pd.DataFrame,
    y: npt.NDArray[Any],
    horizon: float,
    n_boot: int,
    seed: int,
    out: Path,
    prefix: str,
    title: str,
) -> dict[str, Any]:
    from hybridrad.models.stratify import RiskStratifier, compare_groups
    from hybridrad.models.survival import survival_function_at
    from hybridrad.report.plots import calibration_plot, km_plot

    event = np.asarray(y["event"], dtype=bool)
    time = np.asarray(y["time"], dtype=float)
    if not event.any():
        raise HybridradError(f"{title}: the cohort holds no event; the C-index is undefined")
    if meta.get("risk_cutoff") is None:
        raise HybridradError(
            f"{title}: the model records no training risk cutoff (saved by an older "
            "`hybridrad fit`); refit it"
        )
    risk = np.asarray(model.predict(X), dtype=float)
    c, low, high, skipped = _bootstrap(
        lambda: bootstrap_ci(harrell_c, y, risk, n_boot=n_boot, random_state=seed),
        lambda: harrell_c(y, risk),
        n_boot,
    )
    cutoff = float(meta["risk_cutoff"])
    stratifier = RiskStratifier("median")
    stratifier.cutoff_ = cutoff
    groups = stratifier.transform(risk)
    surv = survival_function_at(model, X, [horizon])[:, 0]
    slope, intercept = survival_calibration(y, surv, horizon)
    result: dict[str, Any] = {
        "task": "survival",
        "n": len(X),
        "n_events": int(event.sum()),
        "c_index": c,
        "ci_low": low,
        "ci_high": high,
        "n_boot_skipped": skipped,
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "horizon": horizon,
        "risk_cutoff": cutoff,
        "n_high": int(np.sum(groups == "high")),
        "n_low": int(np.sum(groups == "low")),
        "logrank_statistic": float("nan"),
        "logrank_p": float("nan"),
        "hazard_ratio": float("nan"),
        "hr_low": float("nan"),
        "hr_high": float("nan"),
    }
    pd.DataFrame(
        {
            "risk": risk,
            "risk_group": groups,
            "survival_at_horizon": surv,
            "time": time,
            "event": event.astype(int),
        },
        index=pd.Index(X.index, name="case_id"),
    ).to_csv(out / f"{prefix}predictions.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grouped = calibration_at(y, surv, horizon, n_groups=CALIBRATION_GROUPS)
    for w in caught:
        warnings.warn(f"{title}: {w.message}", ScoreWarning, stacklevel=3)
    table = grouped.table
    table.insert(0, "horizon", horizon)
    table.to_csv(out / f"{prefix}calibration.csv", index=False)
    result["observed_survival_at_horizon"] = grouped.observed_overall
    result["predicted_survival_at_horizon"] = grouped.predicted_overall
    calibration_plot(
        table,
        out / f"{prefix}calibration.png",
        title=f"{title}: calibration at t = {horizon:.4g}",
        xlabel=f"predicted survival at {horizon:.4g}",
        ylabel=f"observed (Kaplan-Meier) survival at {horizon:.4g}",
        slope=slope,
        intercept=intercept,
    )
    if len(set(groups.tolist())) < 2:
        warnings.warn(
            f"{title}: every case falls in the {groups[0]!r} risk group at the training "
            f"cutoff {cutoff:g}; no Kaplan-Meier comparison or log-rank test",
            ScoreWarning,
            stacklevel=3,
        )
        return result
    cmp = compare_groups(y, groups, reference="low")
    lo, hi = cmp.hazard_ratio_ci
    result.update(
        logrank_statistic=cmp.logrank_statistic,
        logrank_p=cmp.logrank_p_value,
        hazard_ratio=cmp.hazard_ratio,
        hr_low=lo,
        hr_high=hi,
    )
    km = pd.concat(
        [
            t.rename_axis("time").reset_index().assign(group=g)
            for g, t in cmp.survival_tables.items()
        ],
        ignore_index=True,
    )
    km[["group", *[c for c in km.columns if c != "group"]]].to_csv(
        out / f"{prefix}km.csv", index=False
    )
    km_plot(cmp, out / f"{prefix}km.png", title=f"{title}: risk groups at the training cutoff")
    return result


def _positive_column(meta: dict[str, Any], model_classes: list[Any]) -> int:
    """Column of ``predict_proba`` that holds the positive class."""
    if [str(c) for c in model_classes] == ["0", "1"]:
        return 1  # the StudyData convention: 1 is the positive class
    positive = meta.get("positive")
    if positive is not None and positive in model_classes:
        return model_classes.index(positive)
    return 1


def _binary_target(
    data: StudyData, meta: dict[str, Any], positive_label: Any
) -> npt.NDArray[np.int_]:
    """The cohort's outcome as 0/1, 1 the model's positive class."""
    y = np.asarray(data.y)
    positive = meta.get("positive")
    if positive is not None and data.positive is not None and str(data.positive) != str(positive):
        raise TaskMismatchError(
            f"the model predicts {positive!r} (its positive class) but the label's positive "
            f"class is {data.positive!r}: load the cohort with positive={positive!r}"
        )
    values = set(pd.unique(y).tolist())
    if y.dtype.kind in "biu" and values <= {0, 1}:
        return y.astype(int)  # the StudyData convention
    if len(values) <= 2 and positive_label in values:
        return (y == positive_label).astype(int)
    raise TaskMismatchError(
        f"the label values {sorted(map(str, values))} do not match the model's positive "
        f"class {positive_label!r}: load the cohort with load_study(..., label=..., "
        "positive=...)"
    )


def _score_classification(
    model: Any,
    meta: dict[str, Any],
    data: StudyData,
    X: pd.DataFrame,
    n_boot: int,
    seed: int,
    out: Path,
    prefix: str,
    title: str,
) -> dict[str, Any]:
    from hybridrad.report.plots import calibration_plot, roc_plot

    classes = list(model.classes_)
    if len(classes) != 2:
        raise HybridradError(f"{title}: external scoring handles binary classifiers only")
    column = _positive_column(meta, classes)
    y = _binary_target(data, meta, classes[column])
    if len(np.unique(y)) < 2:
        raise HybridradError(
            f"{title}: the cohort holds a single class ({int(y[0])}); the AUC is undefined"
        )
    prob = np.asarray(model.predict_proba(X), dtype=float)[:, column]
    auc, low, high, skipped = _bootstrap(
        lambda: auc_ci(y, prob, n_boot=n_boot, random_state=seed),
        lambda: float(roc_auc_score(y, prob)),
        n_boot,
    )
    slope, intercept = logistic_calibration(y, prob)
    threshold = float(meta.get("threshold", 0.5))
    predicted = (prob >= threshold).astype(int)
    sens = float(np.mean(predicted[y == 1] == 1))
    spec = float(np.mean(predicted[y == 0] == 0))
    result: dict[str, Any] = {
        "task": "classification",
        "n": len(X),
        "n_positive": int(y.sum()),
        "auc": auc,
        "ci_low": low,
        "ci_high": high,
        "n_boot_skipped": skipped,
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "threshold": threshold,
        "sensitivity": sens,
        "specificity": spec,
        "balanced_accuracy": (sens + spec) / 2.0,
        "observed_fraction": float(y.mean()),
        "mean_predicted": float(prob.mean()),
    }
    names = [meta.get("negative") or classes[1 - column], meta.get("positive") or classes[column]]
    pd.DataFrame(
        {
            "probability": prob,
            "predicted": np.where(predicted == 1, str(names[1]), str(names[0])),
            "label": np.where(y == 1, str(names[1]), str(names[0])),
            "y": y,
        },
        index=pd.Index(X.index, name="case_id"),
    ).to_csv(out / f"{prefix}predictions.csv")
    table = _label_calibration_table(y, prob)
    table.to_csv(out / f"{prefix}calibration.csv", index=False)
    calibration_plot(
        table,
        out / f"{prefix}calibration.png",
        title=f"{title}: calibration",
        xlabel=f"predicted probability of {names[1]}",
        ylabel=f"observed fraction of {names[1]}",
        slope=slope,
        intercept=intercept,
    )
    roc = roc_curve_table(y, prob)
    roc.to_csv(out / f"{prefix}roc.csv", index=False)
    roc_plot({f"{title} (AUC {auc:.3f})": roc}, out / f"{prefix}roc.png", title=title)
    return result


# --- public API -----------------------------------------------------------------------------


def _resolve_horizon(
    horizon: float | None, meta: dict[str, Any], y: npt.NDArray[Any]
) -> tuple[float, str]:
    time = np.asarray(y["time"], dtype=float)
    if horizon is None:
        if meta.get("horizon") is None:
            raise HorizonError(
                "the model records no calibration horizon (saved by an older fit): give horizon="
            )
        value, source = float(meta["horizon"]), f"model metadata ({meta.get('horizon_rule')})"
    else:
        value, source = float(horizon), "argument"
    follow_up = float(time.max())
    if not value > 0 or not math.isfinite(value):
        raise HorizonError(f"the horizon must be a positive time, got {value!r}")
    if value > follow_up:
        raise HorizonError(
            f"the horizon {value:g} lies beyond the follow-up of the cohort (its last "
            f"observed time is {follow_up:g}): choose a horizon <= {follow_up:g}"
        )
    trained = meta.get("follow_up_max")
    if trained is not None and value > float(trained):
        warnings.warn(
            f"the horizon {value:g} lies beyond the training follow-up ({float(trained):g}): "
            "the predicted survival there is extrapolated",
            ScoreWarning,
            stacklevel=3,
        )
    return value, source


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _score_folder(
    folder: Path,
    data: StudyData,
    out: Path,
    *,
    horizon: float | None,
    n_boot: int,
    seed: int,
    prefix: str,
    title: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    from hybridrad.models.persist import load_model, read_model_info

    info = read_model_info(folder)
    meta = dict(info.get("metadata") or {})
    X = model_input(meta, data.X, where="the cohort's data")
    model = load_model(folder)
    if data.task == "survival":
        assert horizon is not None
        result = _score_survival(model, meta, X, data.y, horizon, n_boot, seed, out, prefix, title)
    else:
        result = _score_classification(model, meta, data, X, n_boot, seed, out, prefix, title)
    result["feature_set"] = meta.get("feature_set")
    return result, info


def score_model(
    model_dir: str | os.PathLike[str],
    data: StudyData,
    out: str | os.PathLike[str],
    *,
    horizon: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a frozen model on a new cohort (external validation) and write the results.

    Parameters
    ----------
    model_dir
        A model folder written by :func:`~hybridrad.models.final.fit_final`.
    data
        The new cohort (:func:`~hybridrad.study.load_study`) with the model's
        features (and its ``site`` column for a ComBat model) and the same kind of
        target as the model's.
    out
        Output folder (created). It receives ``metrics.json``, ``predictions.csv``,
        ``calibration.csv`` and ``calibration.png``; for survival ``km.csv`` and
        ``km.png``; for classification ``roc.csv`` and ``roc.png``; the same files with
        a ``clinical_`` prefix for the clinical reference model when it was saved.
    horizon
        Survival: time of the calibration (default: the one saved at fit time, the
        median training event time unless the study config set ``times``).
    n_boot
        Bootstrap resamples of the confidence intervals (0: none).
    seed
        Seed of the bootstrap.

    Returns
    -------
    dict
        What ``metrics.json`` holds: ``task``, ``n``, ``n_events`` (survival) or
        ``n_positive``, ``c_index`` (Harrell) or ``auc``, ``ci_low``, ``ci_high``
        (percentile bootstrap 95 % CI), ``n_boot_skipped``, ``calibration_slope``,
        ``calibration_intercept``; survival: ``horizon``, ``risk_cutoff`` (training),
        ``n_high``, ``n_low``, ``logrank_statistic``, ``logrank_p``, ``hazard_ratio``
        (high vs low) with ``hr_low``, ``hr_high``, ``observed_survival_at_horizon``,
        ``predicted_survival_at_horizon``; classification: ``threshold`` (training),
        ``sensitivity``, ``specificity``, ``balanced_accuracy``, ``observed_fraction``,
        ``mean_predicted``; ``feature_set``; ``clinical`` (the same keys for the
        clinical reference model, or None); ``provenance``; ``out``. Undefined numbers
        are NaN here and null in ``metrics.json``.

    Raises
    ------
    TaskMismatchError
        A survival model scored with a class label or the reverse, or a label whose
        positive class differs from the model's.
    ModelInputError
        Model features (named) or the ComBat site column missing, or unseen sites.
    HorizonError
        The horizon is not positive or lies beyond the cohort's follow-up (both named).
    ModelFileMissingError, ModelFormatError
        The model folder is missing or damaged.

    Warns
    -----
    ScoreWarning
        Undefined scores (one risk group, no event by the horizon ...), a horizon past
        the training follow-up, or a clinical reference model that cannot be scored.
    """
    from hybridrad.models.persist import read_model_info

    folder = Path(model_dir)
    info = read_model_info(folder)
    meta = dict(info.get("metadata") or {})
    if "task" not in meta or "features" not in meta:
        raise HybridradError(
            f"{folder} was not saved by fit_final (`hybridrad fit`): its metadata has no "
            "task and features; refit it"
        )
    if meta["task"] != data.task:
        want = (
            "a class label (--label)"
            if meta["task"] == "classification"
            else ("survival times and events (--time, --event)")
        )
        raise TaskMismatchError(
            f"{folder} is a {meta['task']} model but the cohort has a {data.task} target: "
            f"score it with {want}"
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    h: float | None = None
    source = None
    if data.task == "survival":
        h, source = _resolve_horizon(horizon, meta, data.y)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = str(meta.get("feature_set", "model"))
    result, _ = _score_folder(
        folder, data, out, horizon=h, n_boot=n_boot, seed=seed, prefix="", title=name
    )
    clinical: dict[str, Any] | None = None
    clinical_info: dict[str, Any] | None = None
    sub = meta.get("clinical_model")
    if sub:
        try:
            clinical, clinical_info = _score_folder(
                folder / str(sub),
                data,
                out,
                horizon=h,
                n_boot=n_boot,
                seed=seed,
                prefix=f"{CLINICAL_SUBFOLDER}_",
                title="clinical",
            )
        except ModelInputError as exc:
            warnings.warn(
                f"the clinical reference model was not scored: {exc}", ScoreWarning, stacklevel=2
            )
    result["clinical"] = clinical
    result["provenance"] = {
        "function": "hybridrad.study.external.score_model",
        "model_dir": str(folder.resolve()),
        "model_sha256": info.get("integrity"),
        "model_created": info.get("created"),
        "model_training_data_sha256": info.get("training_data_sha256"),
        "model_library_versions": info.get("library_versions"),
        "clinical_model_sha256": None if clinical_info is None else clinical_info.get("integrity"),
        "study_hash": meta.get("study_hash"),
        "training_inputs_sha256": meta.get("inputs_sha256"),
        "inputs_sha256": dict(data.inputs),
        "library_versions": library_versions(),
        "seed": seed,
        "n_boot": n_boot,
        "ci_method": (
            "percentile bootstrap 95% CI over the cases "
            + ("(resamples stratified by class)" if data.task == "classification" else "")
        ).strip(),
        "horizon": h,
        "horizon_source": source,
        "calibration_method": (
            SURVIVAL_CALIBRATION_METHOD if data.task == "survival" else LOGISTIC_CALIBRATION_METHOD
        ),
        "risk_groups": (
            "high: risk above the training cutoff (median of the training risks)"
            if data.task == "survival"
            else None
        ),
        "dropped_cases": dict(data.dropped),
    }
    result["out"] = str(out)
    with open(out / "metrics.json", "w", encoding="utf-8") as fh:
        json.dump(_json_ready(result), fh, indent=2, allow_nan=False)
        fh.write("\n")
    log.info("external validation of %s written to %s", folder, out)
    return result
