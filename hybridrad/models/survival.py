"""Survival and classification estimators with the scikit-learn API.

Conventions shared by every survival estimator here (and by the scikit-survival ones used
directly):

* ``X`` is a :class:`pandas.DataFrame` (column names are remembered as ``feature_names_in_``)
  or a 2-D array;
* ``y`` is a scikit-survival structured array with a boolean ``event`` field and a float
  ``time`` field (:meth:`sksurv.util.Surv.from_arrays`);
* ``predict(X)`` returns a **risk score**: higher means earlier expected event;
* ``score(X, y)`` is Harrell's concordance index
  (:func:`sksurv.metrics.concordance_index_censored`);
* ``predict_survival_function(X, times)`` returns an ``(n_samples, len(times))`` array of
  :math:`S(t \\mid x)`, non-increasing in ``t`` and within ``[0, 1]``.

Estimators defined here:

- :class:`PenalizedCox`: lifelines :class:`~lifelines.CoxPHFitter` (ridge / elastic-net
  penalty, Efron ties).
- :class:`XGBSurvivalCox`: xgboost ``survival:cox`` gradient boosting with a Breslow
  baseline hazard.
- :class:`XGBSurvivalAFT`: xgboost ``survival:aft`` accelerated failure time boosting.
- :class:`XGBLabelClassifier`: xgboost classifier that accepts arbitrary (e.g. string) class
  labels.

Estimators used directly from their libraries:

- ``sksurv.linear_model.CoxnetSurvivalAnalysis``: Elastic-net Cox. ``predict(X)`` is already
  a risk score (the linear predictor at the last ``alpha`` of the path, or at ``alpha=``),
  ``score`` is Harrell's C. Fit it with ``fit_baseline_model=True`` to get survival
  functions, and evaluate them on a grid with :func:`survival_function_at`. To use one
  specific penalty, fit with ``alphas=[alpha]``.
- ``sksurv.ensemble.RandomSurvivalForest``: ``predict(X)`` is a risk score (the sum of the
  cumulative hazard over the event times), ``score`` is Harrell's C;
  :func:`survival_function_at` evaluates its survival functions on a grid. It cannot be
  saved by :mod:`hybridrad.models.persist` (no pickle-free format).
- ``sklearn.linear_model.LogisticRegression`` and ``xgboost.XGBClassifier``: Classification;
  use :class:`XGBLabelClassifier` when the labels are not ``0 .. K-1``.

:func:`survival_function_at` gives the grid convention for all of them, including a
:class:`sklearn.pipeline.Pipeline` that ends in any of them.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from sksurv.base import SurvivalAnalysisMixin
from sksurv.util import check_array_survival

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

try:
    from sksurv.linear_model.coxph import BreslowEstimator as _SksurvBreslow
except ImportError:  # pragma: no cover - scikit-survival without BreslowEstimator
    _SksurvBreslow = None

__all__ = [
    "PenalizedCox",
    "XGBLabelClassifier",
    "XGBSurvivalAFT",
    "XGBSurvivalCox",
    "breslow_cumulative_hazard",
    "survival_function_at",
]

FloatArray = npt.NDArray[np.float64]

_DURATION_COL = "__hybridrad_duration__"
_EVENT_COL = "__hybridrad_event__"
#: Penalizer of PenalizedCox's ``unpenalized`` blocks (keeps separated covariates finite).
_FREE_PENALTY = 1e-3


# --- validation helpers -------------------------------------------------------------------


def _validate_X(
    estimator: BaseEstimator, X: Any, *, reset: bool, allow_nan: bool = False
) -> FloatArray:
    """Validate ``X`` (sets/checks ``n_features_in_`` and ``feature_names_in_``)."""
    finite: bool | str = "allow-nan" if allow_nan else True
    if _sk_validate_data is not None:
        arr = _sk_validate_data(
            estimator, X, reset=reset, dtype=np.float64, ensure_all_finite=finite
        )
    else:  # pragma: no cover - older scikit-learn
        arr = estimator._validate_data(X, reset=reset, dtype=np.float64, force_all_finite=finite)
    return np.asarray(arr, dtype=np.float64)


def _feature_names(estimator: BaseEstimator) -> list[str]:
    """Column names seen in ``fit``, or ``x0 .. x{p-1}`` for array input."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(int(estimator.n_features_in_))]


def _check_survival_target(
    X: FloatArray, y: Any, *, positive: bool
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Event indicator and times from a structured survival array, with checks."""
    event, time = check_array_survival(X, y)
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=bool)
    if not np.all(np.isfinite(time)):
        raise ValueError("survival times must be finite")
    if positive and np.any(time <= 0):
        raise ValueError(
            f"survival times must be > 0 for this model (smallest is {time.min()!r}); "
            "shift or drop non-positive times"
        )
    if not positive and np.any(time < 0):
        raise ValueError(f"survival times must be >= 0 (smallest is {time.min()!r})")
    if not event.any():
        raise ValueError("the survival target holds no event; a survival model cannot be fitted")
    return event, time


def _check_times(times: Any) -> FloatArray:
    """A 1-D float array of finite, non-negative evaluation times."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and >= 0")
    return t


def _check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` is a real (integer) number within bounds."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")


def _step_values(x: FloatArray, y: FloatArray, t: FloatArray, before: float) -> FloatArray:
    """Right-continuous step function through ``(x, y)`` evaluated at ``t``.

    ``y`` may be 1-D (one function) or 2-D ``(n_functions, len(x))``; ``before`` is the value
    for ``t < x[0]``.
    """
    idx = np.searchsorted(x, t, side="right") - 1
    vals = np.take(y, np.clip(idx, 0, None), axis=-1)
    return np.where(idx < 0, before, vals)


# --- Breslow ------------------------------------------------------------------------------


def breslow_cumulative_hazard(
    linear_predictor: Any, event: Any, time: Any
) -> tuple[FloatArray, FloatArray]:
    """Breslow estimate of the baseline cumulative hazard.

    Uses :class:`sksurv.linear_model.coxph.BreslowEstimator` when available, else the same
    vectorised estimator: :math:`H_0(t) = \\sum_{t_i \\le t} d_i / \\sum_{j: t_j \\ge t_i}
    \\exp(\\eta_j)`.

    Parameters
    ----------
    linear_predictor
        Log-risk :math:`\\eta` of each training sample, shape ``(n,)``.
    event
        Boolean event indicators, shape ``(n,)``.
    time
        Event or censoring times, shape ``(n,)``.

    Returns
    -------
    times : ndarray
        The sorted unique training times.
    cumulative_hazard : ndarray
        :math:`H_0` at ``times`` (a right-continuous step function, 0 before ``times[0]``).
    """
    lp = np.asarray(linear_predictor, dtype=np.float64)
    ev = np.asarray(event, dtype=bool)
    tm = np.asarray(time, dtype=np.float64)
    if _SksurvBreslow is not None:
        est = _SksurvBreslow().fit(lp, ev, tm)
        fn = est.cum_baseline_hazard_
        return np.asarray(fn.x, dtype=np.float64), np.asarray(fn.y, dtype=np.float64)
    uniq, inverse = np.unique(tm, return_inverse=True)  # pragma: no cover
    deaths = np.bincount(inverse, weights=ev.astype(np.float64), minlength=uniq.size)
    risk = np.bincount(inverse, weights=np.exp(lp), minlength=uniq.size)
    at_risk = np.cumsum(risk[::-1])[::-1]
    return uniq, np.cumsum(deaths / at_risk)


# --- penalised Cox (lifelines) ------------------------------------------------------------


class PenalizedCox(SurvivalAnalysisMixin, BaseEstimator):
    """Cox proportional hazards model fitted by lifelines, with the scikit-learn API.

    Wraps :class:`lifelines.CoxPHFitter`. The partial likelihood handles ties with Efron's
    method (the only one lifelines implements) and the baseline hazard is Breslow's estimator,
    as computed by lifelines.

    Parameters
    ----------
    penalizer : float, default 0.0
        Penalty strength (lifelines ``penalizer``); lifelines standardises covariates while
        fitting, so the penalty applies to standardised coefficients.
    l1_ratio : float, default 0.0
        Elastic-net mixing, 0 = ridge, 1 = lasso (lifelines ``l1_ratio``).
    ties : {"efron"}, default "efron"
        Handling of tied event times. Only ``"efron"`` is available in lifelines; use
        :class:`sksurv.linear_model.CoxPHSurvivalAnalysis` for Breslow ties.
    unpenalized : sequence of str, default ()
        Blocks (column-name prefixes before ``__``, e.g. ``"clin"``) whose coefficients
        are (practically) not penalised: lifelines gets a per-column penalizer that is
        ``min(penalizer, 1e-3)`` there, small enough to leave the coefficient at its
        unpenalised value and large enough to keep it finite when a binary covariate
        separates the events. A hybrid model then keeps its clinical covariates at full
        strength beside penalised imaging features.

    Attributes
    ----------
    coef_ : pandas.Series
        Log hazard ratios, indexed by feature name.
    means_ : pandas.Series
        Training means of the features; the linear predictor is centred on them.
    baseline_cumulative_hazard_ : pandas.Series
        Breslow baseline cumulative hazard at the unique training times (at ``means_``).
    baseline_survival_ : pandas.Series
        ``exp(-baseline_cumulative_hazard_)``.
    summary_ : pandas.DataFrame
        lifelines summary table (coef, se, z, p, confidence intervals).
    lifelines_model_ : lifelines.CoxPHFitter or None
        The fitted lifelines object (``None`` after :func:`~hybridrad.models.persist.load_model`).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only when ``X`` was a DataFrame).
    """

    def __init__(
        self,
        penalizer: float = 0.0,
        l1_ratio: float = 0.0,
        ties: Literal["efron"] = "efron",
        unpenalized: tuple[str, ...] = (),
    ) -> None:
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio
        self.ties = ties
        self.unpenalized = unpenalized

    def fit(self, X: Any, y: Any) -> PenalizedCox:
        """Fit the Cox model.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates (finite).
        y : structured array
            Survival target (``event``, ``time``).

        Returns
        -------
        PenalizedCox
            The fitted estimator.
        """
        from lifelines import CoxPHFitter

        _check_number("penalizer", self.penalizer, low=0.0)
        _check_number("l1_ratio", self.l1_ratio, low=0.0, high=1.0)
        if self.ties != "efron":
            raise ValueError(
                f"ties={self.ties!r} is not available: lifelines implements Efron ties only "
                "(use sksurv.linear_model.CoxPHSurvivalAnalysis(ties='breslow') for Breslow)"
            )
        arr = _validate_X(self, X, reset=True)
        event, time = _check_survival_target(arr, y, positive=False)
        names = _feature_names(self)
        df = pd.DataFrame(arr, columns=names)
        df[_DURATION_COL] = time
        df[_EVENT_COL] = event.astype(np.int64)
        free = {str(b) for b in self.unpenalized}
        penalizer: float | npt.NDArray[np.float64] = float(self.penalizer)
        if free:
            penalizer = np.array(
                [
                    min(float(self.penalizer), _FREE_PENALTY)
                    if n.split("__", 1)[0] in free
                    else float(self.penalizer)
                    for n in names
                ]
            )
        cph = CoxPHFitter(penalizer=penalizer, l1_ratio=float(self.l1_ratio))
        cph.fit(df, duration_col=_DURATION_COL, event_col=_EVENT_COL)

        self.lifelines_model_ = cph
        self.coef_ = pd.Series(
            cph.params_.loc[names].to_numpy(np.float64), index=names, name="coef"
        )
        self.means_ = pd.Series(
            np.asarray(cph._norm_mean.loc[names], dtype=np.float64), index=names, name="mean"
        )
        bch = cph.baseline_cumulative_hazard_.iloc[:, 0]
        self.baseline_cumulative_hazard_ = pd.Series(
            bch.to_numpy(np.float64),
            index=pd.Index(bch.index.to_numpy(np.float64), name="time"),
            name="baseline cumulative hazard",
        )
        bs = cph.baseline_survival_.iloc[:, 0]
        self.baseline_survival_ = pd.Series(
            bs.to_numpy(np.float64),
            index=pd.Index(bs.index.to_numpy(np.float64), name="time"),
            name="baseline survival",
        )
        self.summary_ = cph.summary.copy()
        return self

    def predict(self, X: Any) -> FloatArray:
        """Risk score: the centred linear predictor :math:`(x - \\bar{x})^\\top \\beta`.

        Equal to lifelines ``predict_log_partial_hazard``.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        ndarray of shape (n_samples,)
            Log partial hazard (higher = higher risk).
        """
        check_is_fitted(self, "coef_")
        arr = _validate_X(self, X, reset=False)
        return np.asarray(
            (arr - self.means_.to_numpy(np.float64)) @ self.coef_.to_numpy(np.float64),
            dtype=np.float64,
        )

    def predict_cumulative_hazard_function(self, X: Any, times: Any) -> FloatArray:
        """Cumulative hazard :math:`H_0(t) \\exp(\\eta(x))` on a time grid.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.
        times : array-like of shape (n_times,)
            Non-negative times; :math:`H_0` is the Breslow step function (0 before the first
            training time, constant after the last).

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Cumulative hazards.
        """
        t = _check_times(times)
        risk = np.exp(self.predict(X))
        h0 = _step_values(
            self.baseline_cumulative_hazard_.index.to_numpy(np.float64),
            self.baseline_cumulative_hazard_.to_numpy(np.float64),
            t,
            0.0,
        )
        return np.asarray(risk[:, None] * h0[None, :], dtype=np.float64)

    def predict_survival_function(self, X: Any, times: Any) -> FloatArray:
        """Survival probabilities :math:`S(t \\mid x) = \\exp(-H_0(t) e^{\\eta(x)})`.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.
        times : array-like of shape (n_times,)
            Non-negative evaluation times.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Survival probabilities.
        """
        return np.exp(-self.predict_cumulative_hazard_function(X, times))


# --- xgboost survival ---------------------------------------------------------------------


def _xgb_common_params(est: Any) -> dict[str, Any]:
    """Validate the shared xgboost hyper-parameters of ``est`` and map them to booster names."""
    _check_number("n_estimators", est.n_estimators, low=1, integer=True)
    _check_number("learning_rate", est.learning_rate, low=0.0, low_open=True)
    _check_number("max_depth", est.max_depth, low=1, integer=True)
    _check_number("subsample", est.subsample, low=0.0, high=1.0, low_open=True)
    _check_number("colsample_bytree", est.colsample_bytree, low=0.0, high=1.0, low_open=True)
    _check_number("min_child_weight", est.min_child_weight, low=0.0)
    _check_number("reg_lambda", est.reg_lambda, low=0.0)
    _check_number("n_jobs", est.n_jobs, low=1, integer=True)
    if est.random_state is not None:
        _check_number("random_state", est.random_state, low=0, integer=True)
    return {
        "eta": float(est.learning_rate),
        "max_depth": int(est.max_depth),
        "subsample": float(est.subsample),
        "colsample_bytree": float(est.colsample_bytree),
        "min_child_weight": float(est.min_child_weight),
        "lambda": float(est.reg_lambda),
        "seed": 0 if est.random_state is None else int(est.random_state),
        "nthread": int(est.n_jobs),
        "tree_method": "hist",
        "verbosity": 0,
    }


class _XGBParams(BaseEstimator):
    """The tree-booster hyper-parameters shared by the xgboost estimators."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        random_state: int | None = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs


class _XGBSurvivalBase(SurvivalAnalysisMixin, _XGBParams):
    """Shared hyper-parameters, validation and prediction of the xgboost survival models."""

    _objective: str = ""

    def _booster_params(self) -> dict[str, Any]:
        return {"objective": self._objective, **_xgb_common_params(self)}

    def _margin(self, X: Any) -> FloatArray:
        """Raw booster output (log-risk for Cox, predicted log time for AFT)."""
        check_is_fitted(self, "booster_")
        arr = _validate_X(self, X, reset=False, allow_nan=True)
        out = self.booster_.inplace_predict(arr, predict_type="margin")
        return np.asarray(out, dtype=np.float64).reshape(-1)


class XGBSurvivalCox(_XGBSurvivalBase):
    """Gradient-boosted Cox model (xgboost ``survival:cox``) with a Breslow baseline.

    The booster maximises the Cox partial likelihood; its output (margin) is the log-risk.
    After boosting, the Breslow baseline cumulative hazard is estimated on the training
    margins, so that :meth:`predict_survival_function` is available. Missing values (NaN) in
    ``X`` are allowed (xgboost learns a default direction).

    Parameters
    ----------
    n_estimators : int, default 300
        Boosting rounds.
    learning_rate : float, default 0.05
        Shrinkage (xgboost ``eta``).
    max_depth : int, default 3
        Maximum tree depth.
    subsample : float, default 0.8
        Row subsampling ratio per tree.
    colsample_bytree : float, default 0.8
        Column subsampling ratio per tree.
    min_child_weight : float, default 1.0
        Minimum sum of hessians in a leaf.
    reg_lambda : float, default 1.0
        L2 penalty on leaf weights (xgboost ``lambda``).
    random_state : int or None, default 0
        xgboost ``seed`` (``None`` means 0); fits are deterministic for a given value.
    n_jobs : int, default 1
        xgboost threads.

    Attributes
    ----------
    booster_ : xgboost.Booster
        The trained booster.
    baseline_times_ : ndarray
        Unique training times.
    baseline_cumulative_hazard_ : ndarray
        Breslow baseline cumulative hazard at ``baseline_times_`` (for margin 0).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only when ``X`` was a DataFrame).
    """

    _objective = "survival:cox"

    def fit(self, X: Any, y: Any) -> XGBSurvivalCox:
        """Boost the Cox model and estimate the Breslow baseline.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates (NaN allowed).
        y : structured array
            Survival target (``event``, ``time``); times must be > 0.

        Returns
        -------
        XGBSurvivalCox
            The fitted estimator.
        """
        import xgboost as xgb

        params = self._booster_params()
        params["eval_metric"] = "cox-nloglik"
        arr = _validate_X(self, X, reset=True, allow_nan=True)
        event, time = _check_survival_target(arr, y, positive=True)
        # xgboost's Cox convention: positive label = event time, negative = censoring time.
        label = np.where(event, time, -time)
        dtrain = xgb.DMatrix(arr, label=label, missing=np.nan, nthread=int(self.n_jobs))
        self.booster_ = xgb.train(params, dtrain, num_boost_round=int(self.n_estimators))
        margin = np.asarray(
            self.booster_.inplace_predict(arr, predict_type="margin"), dtype=np.float64
        )
        self.baseline_times_, self.baseline_cumulative_hazard_ = breslow_cumulative_hazard(
            margin, event, time
        )
        return self

    def predict(self, X: Any) -> FloatArray:
        """Risk score: the booster margin (log-risk).

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        ndarray of shape (n_samples,)
            Log-risk (higher = higher risk).
        """
        return self._margin(X)

    def predict_cumulative_hazard_function(self, X: Any, times: Any) -> FloatArray:
        """Cumulative hazard :math:`H_0(t) \\exp(f(x))` on a time grid.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.
        times : array-like of shape (n_times,)
            Non-negative times.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Cumulative hazards.
        """
        t = _check_times(times)
        risk = np.exp(self._margin(X))
        h0 = _step_values(self.baseline_times_, self.baseline_cumulative_hazard_, t, 0.0)
        return np.asarray(risk[:, None] * h0[None, :], dtype=np.float64)

    def predict_survival_function(self, X: Any, times: Any) -> FloatArray:
        """Survival probabilities :math:`\\exp(-H_0(t) \\exp(f(x)))` on a time grid.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.
        times : array-like of shape (n_times,)
            Non-negative times.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Survival probabilities.
        """
        return np.exp(-self.predict_cumulative_hazard_function(X, times))


class XGBSurvivalAFT(_XGBSurvivalBase):
    """Gradient-boosted accelerated failure time model (xgboost ``survival:aft``).

    The model is :math:`\\log T = f(x) + \\sigma Z`, where ``Z`` follows ``distribution``.
    Events are exact observations (lower = upper bound = time) and censored samples are
    right-censored intervals (lower = time, upper = +inf).

    Parameters
    ----------
    distribution : {"normal", "logistic", "extreme"}, default "normal"
        Distribution of ``Z`` (xgboost ``aft_loss_distribution``); ``"extreme"`` is the Gumbel
        minimum distribution, i.e. a Weibull model for ``T``.
    scale : float, default 1.0
        :math:`\\sigma` (xgboost ``aft_loss_distribution_scale``).
    n_estimators, learning_rate, max_depth, subsample, colsample_bytree, min_child_weight, \
reg_lambda, random_state, n_jobs
        As in :class:`XGBSurvivalCox`.

    Attributes
    ----------
    booster_ : xgboost.Booster
        The trained booster (margin = predicted :math:`\\log T` location).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only when ``X`` was a DataFrame).
    """

    _objective = "survival:aft"

    def __init__(
        self,
        distribution: Literal["normal", "logistic", "extreme"] = "normal",
        scale: float = 1.0,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        random_state: int | None = 0,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            max_depth=max_depth,
            subsample=subsample,
            colsample_bytree=colsample_bytree,
            min_child_weight=min_child_weight,
            reg_lambda=reg_lambda,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        self.distribution = distribution
        self.scale = scale

    def fit(self, X: Any, y: Any) -> XGBSurvivalAFT:
        """Boost the AFT model.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates (NaN allowed).
        y : structured array
            Survival target (``event``, ``time``); times must be > 0.

        Returns
        -------
        XGBSurvivalAFT
            The fitted estimator.
        """
        import xgboost as xgb

        if self.distribution not in ("normal", "logistic", "extreme"):
            raise ValueError(
                f"distribution must be 'normal', 'logistic' or 'extreme', got {self.distribution!r}"
            )
        _check_number("scale", self.scale, low=0.0, low_open=True)
        params = self._booster_params()
        params.update(
            aft_loss_distribution=self.distribution,
            aft_loss_distribution_scale=float(self.scale),
            eval_metric="aft-nloglik",
        )
        arr = _validate_X(self, X, reset=True, allow_nan=True)
        event, time = _check_survival_target(arr, y, positive=True)
        dtrain = xgb.DMatrix(arr, missing=np.nan, nthread=int(self.n_jobs))
        dtrain.set_float_info("label_lower_bound", time)
        dtrain.set_float_info("label_upper_bound", np.where(event, time, np.inf))
        self.booster_ = xgb.train(params, dtrain, num_boost_round=int(self.n_estimators))
        return self

    def predict(self, X: Any) -> FloatArray:
        """Risk score: minus the predicted log survival time.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-f(x)`` (higher = shorter predicted time = higher risk).
        """
        return -self._margin(X)

    def predict_time(self, X: Any) -> FloatArray:
        """Predicted survival time :math:`\\exp(f(x))` (xgboost's own prediction).

        This is the median of ``T`` for the normal and logistic distributions.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted times.
        """
        return np.exp(self._margin(X))

    def predict_survival_function(self, X: Any, times: Any) -> FloatArray:
        """Survival probabilities :math:`1 - F_Z((\\log t - f(x)) / \\sigma)` on a time grid.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Covariates.
        times : array-like of shape (n_times,)
            Non-negative times (:math:`S(0) = 1`).

        Returns
        -------
        ndarray of shape (n_samples, n_times)
            Survival probabilities.
        """
        t = _check_times(times)
        mu = self._margin(X)
        with np.errstate(divide="ignore"):
            log_t = np.log(t)
        z = (log_t[None, :] - mu[:, None]) / float(self.scale)
        if self.distribution == "normal":
            surv = stats.norm.sf(z)
        elif self.distribution == "logistic":
            surv = special.expit(-z)
        else:  # Gumbel (minimum): F(z) = 1 - exp(-exp(z))
            surv = np.exp(-np.exp(z))
        return np.asarray(surv, dtype=np.float64)


# --- classification -----------------------------------------------------------------------


class XGBLabelClassifier(ClassifierMixin, _XGBParams):
    """xgboost classifier that accepts any class labels (strings included).

    :class:`xgboost.XGBClassifier` requires labels ``0 .. K-1``; this wrapper encodes the
    labels (sorted, as :class:`~sklearn.preprocessing.LabelEncoder` does) before boosting and
    decodes predictions. Binary and multiclass problems are both handled by xgboost.

    Parameters
    ----------
    n_estimators, learning_rate, max_depth, subsample, colsample_bytree, min_child_weight, \
reg_lambda, random_state, n_jobs
        Passed to :class:`xgboost.XGBClassifier` (``tree_method="hist"``).

    Attributes
    ----------
    classes_ : ndarray
        The sorted class labels.
    estimator_ : xgboost.XGBClassifier
        The fitted classifier on encoded labels.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only when ``X`` was a DataFrame).
    """

    def fit(self, X: Any, y: Any) -> XGBLabelClassifier:
        """Encode the labels and boost.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Features (NaN allowed).
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct values).

        Returns
        -------
        XGBLabelClassifier
            The fitted estimator.
        """
        from xgboost import XGBClassifier

        _xgb_common_params(self)
        arr = _validate_X(self, X, reset=True, allow_nan=True)
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != arr.shape[0]:
            raise ValueError(f"y must be 1-D with {arr.shape[0]} labels, got shape {labels.shape}")
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"y holds a single class ({self.classes_[0]!r}); need at least two")
        self.estimator_ = XGBClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            random_state=0 if self.random_state is None else self.random_state,
            n_jobs=self.n_jobs,
            tree_method="hist",
        )
        self.estimator_.fit(arr, encoded)
        return self

    def predict_proba(self, X: Any) -> FloatArray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Features.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities.
        """
        check_is_fitted(self, "estimator_")
        arr = _validate_X(self, X, reset=False, allow_nan=True)
        return np.asarray(self.estimator_.predict_proba(arr), dtype=np.float64)

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """Most probable class label.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Features.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


# --- grid evaluation for any survival estimator -------------------------------------------


def survival_function_at(estimator: Any, X: Any, times: Any) -> FloatArray:
    """Evaluate :math:`S(t \\mid x)` of any fitted survival estimator on a time grid.

    Works for the estimators of this module, for scikit-survival estimators whose
    ``predict_survival_function`` returns step functions (``RandomSurvivalForest``,
    ``CoxnetSurvivalAnalysis(fit_baseline_model=True)``, ``CoxPHSurvivalAnalysis`` ...), and
    for a :class:`~sklearn.pipeline.Pipeline` ending in one of them. Step functions are
    right-continuous, equal 1 before their first time and keep their last value after it.

    Parameters
    ----------
    estimator
        A fitted survival estimator or pipeline.
    X : DataFrame or array of shape (n_samples, n_features)
        Covariates.
    times : array-like of shape (n_times,)
        Non-negative evaluation times.

    Returns
    -------
    ndarray of shape (n_samples, n_times)
        Survival probabilities.
    """
    t = _check_times(times)
    if isinstance(estimator, Pipeline):
        Xt = estimator[:-1].transform(X) if len(estimator) > 1 else X
        return survival_function_at(estimator[-1], Xt, t)
    if isinstance(estimator, PenalizedCox | _XGBSurvivalBase):
        return estimator.predict_survival_function(X, t)
    fns = estimator.predict_survival_function(X)
    out = np.empty((len(fns), t.size), dtype=np.float64)
    for i, fn in enumerate(fns):
        x = np.asarray(fn.x, dtype=np.float64)
        y = float(fn.a) * np.asarray(fn.y, dtype=np.float64) + float(fn.b)
        out[i] = _step_values(x, y, t, 1.0)
    return out
