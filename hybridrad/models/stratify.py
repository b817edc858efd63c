"""Risk groups from continuous risk scores, and their survival comparison.

The cutoff that splits "low" from "high" risk is chosen on the **training** risks only
(:meth:`RiskStratifier.fit`) and then applied unchanged to any other data
(:meth:`RiskStratifier.transform`), so test-set groups never leak test information.
:func:`compare_groups` then reports Kaplan-Meier curves, the log-rank test and the Cox
hazard ratio of the groups, all computed by lifelines.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from hybridrad.models.metrics import EvaluationWarning, _as_1d_float, _event_time

__all__ = ["GroupComparison", "RiskStratifier", "compare_groups"]

LOW = "low"
HIGH = "high"


class RiskStratifier(TransformerMixin, BaseEstimator):
    """Split risk scores into "low" and "high" groups at a cutoff learnt on training data.

    A sample is ``"high"`` when its risk is strictly greater than the cutoff, else
    ``"low"``.

    Parameters
    ----------
    cutoff
        ``"median"`` (the training median), a float in (0, 1) (that quantile of the
        training risks), or ``"optimal_logrank"``: the training risk value whose split
        maximises the log-rank statistic on the training data, among splits leaving at
        least ``min_group_fraction`` of the samples in each group (by default the 0.2 to
        0.8 quantiles). The log-rank p-value of an optimised cutoff on its own training
        data is optimistic; judge it on held-out data.
    min_group_fraction
        Smallest fraction of training samples allowed in either group, in [0, 0.5).

    Attributes
    ----------
    cutoff_ : float
        The learnt cutoff on the risk scale.
    train_fraction_high_ : float
        Fraction of training samples above the cutoff.
    search_ : pandas.DataFrame or None
        For ``"optimal_logrank"``: every candidate ``cutoff`` with ``fraction_high``,
        ``statistic`` and ``p_value`` of the training log-rank test; else ``None``.
    """

    def __init__(self, cutoff: str | float = "median", min_group_fraction: float = 0.2) -> None:
        self.cutoff = cutoff
        self.min_group_fraction = min_group_fraction

    def fit(
        self, risk_train: npt.ArrayLike, y_train: npt.NDArray[Any] | None = None
    ) -> RiskStratifier:
        """Choose the cutoff on training risks.

        Parameters
        ----------
        risk_train
            Training risk scores, shape ``(n,)`` or ``(n, 1)``; higher = higher risk.
        y_train
            Training survival target (event, time); required for ``"optimal_logrank"``,
            ignored otherwise.

        Returns
        -------
        RiskStratifier
            ``self``, fitted.

        Raises
        ------
        ValueError
            If ``cutoff`` or ``min_group_fraction`` is invalid, the risks are not a finite
            1-D array, ``y_train`` is missing or malformed for ``"optimal_logrank"``, or no
            admissible split exists.

        Warns
        -----
        EvaluationWarning
            If ties leave a training group smaller than ``min_group_fraction``.
        """
        if not 0 <= self.min_group_fraction < 0.5:
            raise ValueError(
                f"min_group_fraction must be in [0, 0.5), got {self.min_group_fraction}"
            )
        risk = _as_1d_float(risk_train, "risk_train")
        if risk.size < 2:
            raise ValueError("at least two training risk scores are needed to choose a cutoff")
        self.search_: pd.DataFrame | None = None
        if isinstance(self.cutoff, str):
            if self.cutoff == "median":
                cut = float(np.median(risk))
            elif self.cutoff == "optimal_logrank":
                if y_train is None:
                    raise ValueError("cutoff='optimal_logrank' needs y_train")
                cut = self._optimal_logrank(risk, y_train)
            else:
                raise ValueError(
                    f"unknown cutoff {self.cutoff!r}; use 'median', 'optimal_logrank' or a "
                    "quantile in (0, 1)"
                )
        else:
            q = float(self.cutoff)
            if not 0 < q < 1:
                raise ValueError(f"a quantile cutoff must be in (0, 1), got {q}")
            cut = float(np.quantile(risk, q))
        self.cutoff_ = cut
        self.train_fraction_high_ = float(np.mean(risk > cut))
        smallest = min(self.train_fraction_high_, 1 - self.train_fraction_high_)
        if smallest < self.min_group_fraction:
            warnings.warn(
                f"the cutoff {cut:g} leaves only {smallest:.1%} of the training samples in "
                f"one group (min_group_fraction={self.min_group_fraction}); tied risks?",
                EvaluationWarning,
                stacklevel=2,
            )
        return self

    def _optimal_logrank(self, risk: npt.NDArray[np.float64], y: npt.NDArray[Any]) -> float:
        """The admissible training cutoff with the largest log-rank statistic."""
        event, time = _event_time(y)
        if event.shape[0] != risk.shape[0]:
            raise ValueError(
                f"risk_train has {risk.shape[0]} values but y_train has {event.shape[0]}"
            )
        rows = []
        for c in np.unique(risk):
            high = risk > c
            frac = float(high.mean())
            if not self.min_group_fraction <= frac <= 1 - self.min_group_fraction:
                continue
            if frac in (0.0, 1.0):
                continue
            res = logrank_test(time[high], time[~high], event[high], event[~high])
            rows.append(
                {
                    "cutoff": float(c),
                    "fraction_high": frac,
                    "statistic": float(res.test_statistic),
                    "p_value": float(res.p_value),
                }
            )
        if not rows:
            raise ValueError(
                "no cutoff leaves at least min_group_fraction="
                f"{self.min_group_fraction} of the training samples in each group"
            )
        search = pd.DataFrame(rows)
        self.search_ = search
        return float(search.loc[search["statistic"].idxmax(), "cutoff"])

    def transform(self, risk: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """Label risks ``"high"`` (above the learnt cutoff) or ``"low"``.

        Parameters
        ----------
        risk
            Risk scores, shape ``(n,)`` or ``(n, 1)``.

        Returns
        -------
        numpy.ndarray
            String labels ``"low"`` / ``"high"``, shape ``(n,)``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        ValueError
            If ``risk`` is not a finite 1-D array.
        """
        check_is_fitted(self, "cutoff_")
        r = _as_1d_float(risk, "risk")
        return np.where(r > self.cutoff_, HIGH, LOW)

    def fit_transform(
        self, risk_train: npt.ArrayLike, y_train: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[np.str_]:
        """Fit on ``risk_train`` and label it.

        Parameters
        ----------
        risk_train
            Training risk scores.
        y_train
            Training survival target (needed for ``"optimal_logrank"``).

        Returns
        -------
        numpy.ndarray
            ``"low"`` / ``"high"`` labels of the training samples.

        Raises
        ------
        ValueError
            As :meth:`fit`.
        """
        return self.fit(risk_train, y_train).transform(risk_train)


@dataclass(frozen=True)
class GroupComparison:
    """Survival comparison of risk groups.

    Attributes
    ----------
    groups
        Group labels, the reference first.
    reference
        The reference group of the hazard ratios.
    n, n_events
        Samples and events per group.
    survival_tables
        Per group, the Kaplan-Meier table (lifelines) indexed by time: ``survival``,
        ``lower``, ``upper`` (95 % CI, exponential Greenwood), ``at_risk``,
        ``observed`` (events) and ``censored``.
    logrank_statistic, logrank_p_value, logrank_df
        The log-rank chi-square test of equal survival (lifelines; matches R ``survdiff``).
    hazard_ratios
        Cox model on group indicators (lifelines ``CoxPHFitter``, Efron ties, as R
        ``coxph``): one row per non-reference group with ``coef``, ``se``,
        ``hazard_ratio``, ``lower``, ``upper`` (95 % Wald CI) and ``p_value``.
    """

    groups: list[str]
    reference: str
    n: dict[str, int]
    n_events: dict[str, int]
    survival_tables: dict[str, pd.DataFrame]
    logrank_statistic: float
    logrank_p_value: float
    logrank_df: int
    hazard_ratios: pd.DataFrame

    @property
    def hazard_ratio(self) -> float:
        """Hazard ratio of the single non-reference group (e.g. high vs low)."""
        return float(self._only_row()["hazard_ratio"])

    @property
    def hazard_ratio_ci(self) -> tuple[float, float]:
        """95 % CI of :attr:`hazard_ratio`."""
        row = self._only_row()
        return float(row["lower"]), float(row["upper"])

    def _only_row(self) -> pd.Series:
        if len(self.hazard_ratios) != 1:
            raise ValueError(
                f"{len(self.groups)} groups: read the hazard ratios from .hazard_ratios"
            )
        return self.hazard_ratios.iloc[0]


def compare_groups(
    y: npt.NDArray[Any], groups: npt.ArrayLike, reference: str | None = None
) -> GroupComparison:
    """Kaplan-Meier curves, log-rank test and Cox hazard ratio(s) of survival by group.

    Parameters
    ----------
    y
        Survival target (event, time).
    groups
        Group label per sample, e.g. the output of :meth:`RiskStratifier.transform`.
    reference
        Reference group of the hazard ratios; default ``"low"`` when present, else the
        first label in sorted order.

    Returns
    -------
    GroupComparison
        With two groups, ``hazard_ratio`` and ``hazard_ratio_ci`` give the
        non-reference group (e.g. ``"high"``) versus the reference.

    Raises
    ------
    ValueError
        If ``y`` is malformed, ``groups`` has the wrong length or fewer than two levels,
        or ``reference`` is not one of them.
    """
    event, time = _event_time(y)
    labels = np.asarray(groups).astype(str)
    if labels.ndim != 1 or labels.shape[0] != event.shape[0]:
        raise ValueError(f"groups must be 1-D with {event.shape[0]} labels, got {labels.shape}")
    levels = sorted(np.unique(labels).tolist())
    if len(levels) < 2:
        raise ValueError(f"need at least two groups to compare, got {levels}")
    if reference is None:
        reference = LOW if LOW in levels else levels[0]
    elif reference not in levels:
        raise ValueError(f"reference {reference!r} is not one of the groups {levels}")
    ordered = [reference, *(g for g in levels if g != reference)]

    tables: dict[str, pd.DataFrame] = {}
    for g in ordered:
        sel = labels == g
        kmf = KaplanMeierFitter().fit(time[sel], event[sel], label=g)
        tab = pd.concat(
            [kmf.survival_function_, kmf.confidence_interval_survival_function_], axis=1
        )
        tab.columns = pd.Index(["survival", "lower", "upper"])
        et = kmf.event_table[["at_risk", "observed", "censored"]]
        tables[g] = tab.join(et, how="left")

    if len(ordered) == 2:
        a, b = (labels == ordered[0]), (labels == ordered[1])
        lr = logrank_test(time[a], time[b], event[a], event[b])
    else:
        lr = multivariate_logrank_test(time, labels, event)

    dummies = pd.get_dummies(pd.Series(labels), dtype=float)[ordered[1:]]
    cols = [f"group_{i}" for i in range(len(ordered) - 1)]
    dummies.columns = pd.Index(cols)
    data = dummies.assign(_time=time, _event=event.astype(float))
    cph = CoxPHFitter().fit(data, duration_col="_time", event_col="_event")
    s = cph.summary.loc[cols]
    hr = pd.DataFrame(
        {
            "coef": s["coef"].to_numpy(),
            "se": s["se(coef)"].to_numpy(),
            "hazard_ratio": s["exp(coef)"].to_numpy(),
            "lower": s["exp(coef) lower 95%"].to_numpy(),
            "upper": s["exp(coef) upper 95%"].to_numpy(),
            "p_value": s["p"].to_numpy(),
        },
        index=pd.Index(ordered[1:], name="group"),
    )
    return GroupComparison(
        groups=ordered,
        reference=reference,
        n={g: int(np.sum(labels == g)) for g in ordered},
        n_events={g: int(np.sum(event[labels == g])) for g in ordered},
        survival_tables=tables,
        logrank_statistic=float(lr.test_statistic),
        logrank_p_value=float(lr.p_value),
        logrank_df=int(lr.degrees_of_freedom),
        hazard_ratios=hr,
    )
