"""Tests of hybridrad.models.metrics and hybridrad.models.stratify.

External references are quoted beside the values they check. The ``aml`` data and R
outputs are from R's survival package (``data(aml)``, Miller 1981 AML maintenance trial):

* ``survdiff(Surv(time, status) ~ x, data = aml)``::

                     N Observed Expected (O-E)^2/E (O-E)^2/V
    x=Maintained    11        7    10.69      1.27       3.4
    x=Nonmaintained 12       11     7.31      1.86       3.4
     Chisq= 3.4  on 1 degrees of freedom, p= 0.07

  (unrounded chi-square 3.396, p = 0.0653);
* ``coxph(Surv(time, status) ~ x, data = aml)``::

                     coef exp(coef) se(coef)     z      p
    xNonmaintained 0.9155    2.4981   0.5119 1.788 0.0737

  and ``summary()``: ``lower .95 0.9159  upper .95 6.813``, ``Concordance= 0.619``;
* ``summary(survfit(Surv(time, status) ~ x, data = aml))`` survival column:
  Maintained 9: 0.909, 13: 0.818, 18: 0.716, 23: 0.614, 31: 0.491, 34: 0.368,
  48: 0.184; Nonmaintained 5: 0.8333, 8: 0.6667, 12: 0.5833, 23: 0.4861, 27: 0.3889,
  30: 0.2917, 33: 0.1944, 43: 0.0972, 45: 0.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from lifelines.utils import concordance_index
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold
from sksurv.compare import compare_survival
from sksurv.datasets import load_veterans_lung_cancer, load_whas500
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
)
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from hybridrad.models.metrics import (
    EvaluationWarning,
    auc_ci,
    balanced_accuracy,
    bootstrap_ci,
    calibration_at,
    harrell_c,
    integrated_brier,
    net_benefit,
    roc_curve_table,
    survival_scorer,
    td_auc,
    uno_c,
)
from hybridrad.models.stratify import GroupComparison, RiskStratifier, compare_groups

# --- data ----------------------------------------------------------------------------------

# R survival::aml; status 0 = censored ("+").
AML_MAINTAINED = [(9, 1), (13, 1), (13, 0), (18, 1), (23, 1), (28, 0), (31, 1), (34, 1),
                  (45, 0), (48, 1), (161, 0)]  # fmt: skip
AML_NONMAINTAINED = [(5, 1), (5, 1), (8, 1), (8, 1), (12, 1), (16, 0), (23, 1), (27, 1),
                     (30, 1), (33, 1), (43, 1), (45, 1)]  # fmt: skip


def _surv(event: npt.ArrayLike, time: npt.ArrayLike) -> npt.NDArray[Any]:
    return Surv.from_arrays(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))


@pytest.fixture(scope="module")
def aml() -> tuple[npt.NDArray[Any], npt.NDArray[np.str_]]:
    rows = AML_MAINTAINED + AML_NONMAINTAINED
    y = _surv([e for _, e in rows], [t for t, _ in rows])
    groups = np.array(["Maintained"] * 11 + ["Nonmaintained"] * 12)
    return y, groups


@pytest.fixture(scope="module")
def veterans() -> tuple[pd.DataFrame, npt.NDArray[Any]]:
    X, y = load_veterans_lung_cancer()
    y = _surv(y["Status"], y["Survival_in_days"])
    return X, y


@pytest.fixture(scope="module")
def whas() -> tuple[pd.DataFrame, npt.NDArray[Any], npt.NDArray[np.float64]]:
    """whas500 numeric columns, target, and risk of a Cox model fitted on all of it."""
    X, y = load_whas500()
    X = X.select_dtypes("number").astype(float)
    y = _surv(y["fstat"], y["lenfol"])
    risk = CoxPHSurvivalAnalysis(alpha=1e-3).fit(X, y).predict(X)
    return X, y, risk


def _exponential_cohort(
    n: int, seed: int, censor_rate: float = 0.0
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """Exponential survival with known hazards; returns (y, hazard)."""
    rng = np.random.default_rng(seed)
    hazard = np.exp(rng.normal(0.0, 0.8, n)) * 0.1
    t_event = rng.exponential(1.0 / hazard)
    if censor_rate > 0:
        t_cens = rng.exponential(1.0 / censor_rate, n)
        return _surv(t_event <= t_cens, np.minimum(t_event, t_cens)), hazard
    return _surv(np.ones(n, bool), t_event), hazard


# --- concordance ---------------------------------------------------------------------------


def test_harrell_c_matches_sksurv_and_lifelines_on_veterans(
    veterans: tuple[pd.DataFrame, npt.NDArray[Any]],
) -> None:
    X, y = veterans
    risk = -X["Karnofsky_score"].to_numpy(float)  # many tied scores
    c = harrell_c(y, risk)
    assert c == pytest.approx(concordance_index_censored(y["event"], y["time"], risk)[0])
    # lifelines: higher score = longer survival, hence -risk.
    assert c == pytest.approx(concordance_index(y["time"], -risk, y["event"]), abs=1e-12)
    assert 0.6 < c < 0.8


def test_harrell_c_matches_lifelines_on_whas500(
    whas: tuple[pd.DataFrame, npt.NDArray[Any], npt.NDArray[np.float64]],
) -> None:
    _, y, risk = whas
    c = harrell_c(y, risk)
    assert c == pytest.approx(concordance_index(y["time"], -risk, y["event"]), abs=1e-12)


def test_harrell_c_on_aml_matches_r_concordance(
    aml: tuple[npt.NDArray[Any], npt.NDArray[np.str_]],
) -> None:
    y, groups = aml
    risk = (groups == "Nonmaintained").astype(float)
    # R summary(coxph(Surv(time, status) ~ x, data = aml)): "Concordance= 0.619".
    assert round(harrell_c(y, risk), 3) == 0.619
    assert harrell_c(y, risk) == pytest.approx(concordance_index(y["time"], -risk, y["event"]))


def test_harrell_c_errors() -> None:
    y = _surv([False, False, False], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="censored"):
        harrell_c(y, [1.0, 2.0, 3.0])
    y = _surv([True, True, False], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="risk has 2 values"):
        harrell_c(y, [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        harrell_c(y, [1.0, np.nan, 2.0])


def test_uno_c_matches_sksurv(
    whas: tuple[pd.DataFrame, npt.NDArray[Any], npt.NDArray[np.float64]],
) -> None:
    _, y, risk = whas
    train, test = np.arange(0, 500, 2), np.arange(1, 500, 2)
    tau = float(np.quantile(y["time"][y["event"]], 0.8))
    test = test[y["time"][test] <= y["time"][train].max()]
    expected = concordance_index_ipcw(y[train], y[test], risk[test], tau=tau)[0]
    assert uno_c(y[train], y[test], risk[test], tau=tau) == pytest.approx(expected)


def test_uno_c_equals_harrell_without_censoring() -> None:
    # With no censoring every IPC weight is 1, so Uno's C reduces to Harrell's C.
    y, hazard = _exponential_cohort(300, seed=1)
    assert uno_c(y, y, hazard) == pytest.approx(harrell_c(y, hazard))


# --- time-dependent AUC, Brier ------------------------------------------------------------


def test_td_auc_matches_sksurv(
    whas: tuple[pd.DataFrame, npt.NDArray[Any], npt.NDArray[np.float64]],
) -> None:
    _, y, risk = whas
    times = np.array([100.0, 365.0, 730.0, 1095.0])
    res = td_auc(y, y, risk, times)
    auc, mean_auc = cumulative_dynamic_auc(y, y, risk, times)
    np.testing.assert_allclose(res.auc, auc)
    assert res.mean_auc == pytest.approx(mean_auc)
    np.testing.assert_array_equal(res.times, times)
    assert np.all((res.auc > 0.5) & (res.auc <= 1))


def test_integrated_brier_matches_trapezoid_of_brier_scores() -> None:
    y, hazard = _exponential_cohort(400, seed=2, censor_rate=0.03)
    times = np.linspace(2.0, np.quantile(y["time"], 0.7), 15)
    surv = np.exp(-np.outer(hazard, times))  # the true survival function
    ibs = integrated_brier(y, y, surv, times)
    _, bs = brier_score(y, y, surv, times)
    assert ibs == pytest.approx(np.trapezoid(bs, times) / (times[-1] - times[0]))
    # The true model beats the uninformative constant 0.5 prediction (IBS 0.25).
    assert ibs < integrated_brier(y, y, np.full_like(surv, 0.5), times) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="shape"):
        integrated_brier(y, y, surv[:, :3], times)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        integrated_brier(y, y, surv + 1, times)


# --- calibration and decision curves ----------------------------------------------------


def test_calibration_of_true_model_is_good() -> None:
    y, hazard = _exponential_cohort(4000, seed=3, censor_rate=0.02)
    t = 8.0
    res = calibration_at(y, np.exp(-hazard * t), t, n_groups=5)
    assert list(res.table["group"]) == [0, 1, 2, 3, 4]
    assert res.table["n"].sum() == 4000
    assert res.slope == pytest.approx(1.0, abs=0.1)
    assert res.intercept == pytest.approx(0.0, abs=0.08)
    assert res.weighted_abs_error < 0.03
    assert res.observed_overall == pytest.approx(res.predicted_overall, abs=0.03)
    assert (res.table["observed_lower"] <= res.table["observed"]).all()
    assert (res.table["observed"] <= res.table["observed_upper"]).all()
    # Predictions squeezed to the mean are poorly calibrated: slope far above 1.
    squeezed = 0.5 * np.exp(-hazard * t) + 0.5 * np.exp(-hazard * t).mean()
    assert calibration_at(y, squeezed, t).slope > 1.5


def test_calibration_observed_is_empirical_fraction_without_censoring() -> None:
    y, hazard = _exponential_cohort(500, seed=4)
    t = 6.0
    pred = np.exp(-hazard * t)
    res = calibration_at(y, pred, t, n_groups=4)
    codes = pd.qcut(pred, 4, labels=False)
    for g, row in res.table.set_index("group").iterrows():
        sel = codes == g
        assert row["observed"] == pytest.approx(np.mean(y["time"][sel] > t))
        assert row["predicted"] == pytest.approx(pred[sel].mean())


def test_calibration_warns_on_tied_predictions() -> None:
    y, _ = _exponential_cohort(100, seed=5)
    with pytest.warns(EvaluationWarning, match="calibration groups"):
        res = calibration_at(y, np.repeat([0.2, 0.5, 0.8], [30, 40, 30]), 5.0, n_groups=5)
    assert 1 < len(res.table) < 5
    assert res.table["n"].sum() == 100


def test_net_benefit_without_censoring_equals_binary_formula() -> None:
    # Vickers & Elkin 2006 binary net benefit: TP/n - FP/n * pt / (1 - pt).
    y, hazard = _exponential_cohort(600, seed=6)
    t = 10.0
    prob = 1.0 - np.exp(-hazard * t)
    thresholds = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.9])
    dca = net_benefit(y, prob, t, thresholds)
    case = y["time"] <= t
    n = len(y)
    for pt, row in zip(thresholds, dca.itertuples(), strict=True):
        treated = prob >= pt
        tp, fp = np.sum(treated & case), np.sum(treated & ~case)
        expected = tp / n - fp / n * pt / (1 - pt) if treated.any() else 0.0
        assert row.net_benefit == pytest.approx(expected)
        prevalence = case.mean()
        assert row.treat_all == pytest.approx(prevalence - (1 - prevalence) * pt / (1 - pt))
        assert row.treat_none == 0.0
    # Threshold 0 treats everyone: the model's curve equals "treat all".
    assert dca["net_benefit"].iloc[0] == pytest.approx(dca["treat_all"].iloc[0])


def test_net_benefit_uses_kaplan_meier_with_censoring() -> None:
    y, hazard = _exponential_cohort(500, seed=7, censor_rate=0.05)
    t = 10.0
    prob = 1.0 - np.exp(-hazard * t)
    pt = 0.4
    row = net_benefit(y, prob, t, [pt]).iloc[0]
    high = prob >= pt
    km_t, km_s = kaplan_meier_estimator(y["event"][high], y["time"][high])
    s_high = km_s[np.searchsorted(km_t, t, side="right") - 1]
    p_high = high.mean()
    expected = (1 - s_high) * p_high - s_high * p_high * pt / (1 - pt)
    assert row["net_benefit"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="thresholds"):
        net_benefit(y, prob, t, [1.0])


# --- bootstrap and classification -------------------------------------------------------


def test_bootstrap_ci_reproducible_and_covers_estimate(
    veterans: tuple[pd.DataFrame, npt.NDArray[Any]],
) -> None:
    X, y = veterans
    risk = -X["Karnofsky_score"].to_numpy(float)
    a = bootstrap_ci(harrell_c, y, risk, n_boot=200, random_state=0, stratify=y["event"])
    b = bootstrap_ci(harrell_c, y, risk, n_boot=200, random_state=0, stratify=y["event"])
    assert a.estimate == pytest.approx(harrell_c(y, risk))
    assert (a.lower, a.upper) == (b.lower, b.upper)
    assert a.lower < a.estimate < a.upper
    assert a.n_skipped == 0 and a.distribution.shape == (200,)


def test_bootstrap_ci_skips_undefined_resamples() -> None:
    y_true = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    score = np.linspace(0.0, 1.0, 8)
    with pytest.warns(EvaluationWarning, match="skipped"):
        res = bootstrap_ci(roc_auc_score, y_true, score, n_boot=100, random_state=1)
    # P(resample holds no positive) = (7/8)^8 = 0.34: about a third are skipped.
    assert 10 < res.n_skipped < 60
    assert res.distribution.shape == (100 - res.n_skipped,)
    # Stratifying by class keeps the positive in every resample.
    with warnings.catch_warnings():
        warnings.simplefilter("error", EvaluationWarning)
        strat = bootstrap_ci(
            roc_auc_score, y_true, score, n_boot=100, random_state=1, stratify=y_true
        )
    assert strat.n_skipped == 0


def test_bootstrap_ci_raises_when_always_undefined() -> None:
    def undefined(_: npt.NDArray[Any]) -> float:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        bootstrap_ci(undefined, np.arange(5), n_boot=5)

    calls = {"n": 0}

    def first_only(a: npt.NDArray[Any]) -> float:
        calls["n"] += 1
        return 1.0 if calls["n"] == 1 else float("nan")

    with pytest.raises(ValueError, match="all 5"):
        bootstrap_ci(first_only, np.arange(5), n_boot=5)


def test_auc_ci_binary_and_multiclass() -> None:
    X, y = load_iris(return_X_y=True)
    proba = LogisticRegression(max_iter=200).fit(X[:, :2], y).predict_proba(X[:, :2])
    multi = auc_ci(y, proba, n_boot=200, random_state=0)
    assert multi.estimate == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert multi.lower <= multi.estimate <= multi.upper and multi.n_skipped == 0
    binary = (y == 2).astype(int)
    score = proba[:, 2]
    res = auc_ci(binary, score, n_boot=200, random_state=0)
    assert res.estimate == pytest.approx(roc_auc_score(binary, score))
    assert res.lower <= res.estimate <= res.upper
    two_col = np.column_stack([1 - score, score])
    assert auc_ci(binary, two_col, n_boot=10, random_state=0).estimate == res.estimate
    with pytest.raises(ValueError, match="shape"):
        auc_ci(y, proba[:, :2], n_boot=10)


def test_balanced_accuracy_and_roc_table() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 0])
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((3 / 4 + 1 / 2) / 2)
    table = roc_curve_table(y_true, [0.1, 0.2, 0.3, 0.6, 0.7, 0.4])
    assert list(table.columns) == ["threshold", "fpr", "tpr", "specificity", "youden_j"]
    assert table["fpr"].is_monotonic_increasing and table["tpr"].iloc[-1] == 1.0
    assert table["youden_j"].max() == pytest.approx(1.0 - 0.25)


# --- scorer -------------------------------------------------------------------------------


def test_survival_scorer_in_grid_search(
    whas: tuple[pd.DataFrame, npt.NDArray[Any], npt.NDArray[np.float64]],
) -> None:
    X, y, _ = whas
    scorer = survival_scorer("harrell")
    est = CoxPHSurvivalAnalysis(alpha=1.0).fit(X, y)
    assert scorer(est, X, y) == pytest.approx(harrell_c(y, est.predict(X)))
    grid = GridSearchCV(
        CoxPHSurvivalAnalysis(),
        {"alpha": [0.01, 10.0]},
        scoring=scorer,
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert 0.6 < grid.best_score_ < 0.9
    tau = float(np.quantile(y["time"], 0.7))
    uno = survival_scorer("uno", tau=tau)
    assert uno(est, X, y) == pytest.approx(concordance_index_ipcw(y, y, est.predict(X), tau)[0])
    with pytest.raises(ValueError, match="unknown"):
        survival_scorer("brier")  # type: ignore[arg-type]


# --- stratification -----------------------------------------------------------------------


def test_compare_groups_logrank_matches_r_survdiff(
    aml: tuple[npt.NDArray[Any], npt.NDArray[np.str_]],
) -> None:
    y, groups = aml
    res = compare_groups(y, groups, reference="Maintained")
    assert isinstance(res, GroupComparison)
    # R survdiff: "Chisq= 3.4  on 1 degrees of freedom, p= 0.07"; unrounded 3.396.
    assert round(res.logrank_statistic, 1) == 3.4
    assert res.logrank_statistic == pytest.approx(3.396, abs=5e-4)
    assert round(res.logrank_p_value, 2) == 0.07
    assert res.logrank_df == 1
    # R survdiff "Observed" column: 7 and 11 events.
    assert res.n_events == {"Maintained": 7, "Nonmaintained": 11}
    assert res.n == {"Maintained": 11, "Nonmaintained": 12}


def test_compare_groups_hazard_ratio_matches_r_coxph(
    aml: tuple[npt.NDArray[Any], npt.NDArray[np.str_]],
) -> None:
    y, groups = aml
    res = compare_groups(y, groups, reference="Maintained")
    row = res.hazard_ratios.loc["Nonmaintained"]
    # R coxph: coef 0.9155, exp(coef) 2.4981, se(coef) 0.5119, p 0.0737.
    assert row["coef"] == pytest.approx(0.9155, abs=1e-3)
    assert row["hazard_ratio"] == pytest.approx(2.498, abs=1e-3)
    assert row["se"] == pytest.approx(0.5119, abs=1e-3)
    assert row["p_value"] == pytest.approx(0.0737, abs=1e-3)
    # R summary(coxph): lower .95 0.9159, upper .95 6.813.
    lower, upper = res.hazard_ratio_ci
    assert lower == pytest.approx(0.9159, abs=1e-3)
    assert upper == pytest.approx(6.813, abs=1e-3)
    assert res.hazard_ratio == pytest.approx(2.498, abs=1e-3)


def test_compare_groups_km_tables_match_r_survfit(
    aml: tuple[npt.NDArray[Any], npt.NDArray[np.str_]],
) -> None:
    y, groups = aml
    tables = compare_groups(y, groups, reference="Maintained").survival_tables
    maintained = {9: 0.909, 13: 0.818, 18: 0.716, 23: 0.614, 31: 0.491, 34: 0.368, 48: 0.184}
    nonmaintained = {5: 0.8333, 8: 0.6667, 12: 0.5833, 23: 0.4861, 27: 0.3889,
                     30: 0.2917, 33: 0.1944, 43: 0.0972, 45: 0.0}  # fmt: skip
    for t, s in maintained.items():
        assert round(tables["Maintained"]["survival"].loc[float(t)], 3) == s
    for t, s in nonmaintained.items():
        assert round(tables["Nonmaintained"]["survival"].loc[float(t)], 4) == s
    assert tables["Maintained"]["at_risk"].loc[9.0] == 11


def test_compare_groups_default_reference_and_three_groups() -> None:
    y, hazard = _exponential_cohort(300, seed=8, censor_rate=0.02)
    labels = np.where(hazard > np.median(hazard), "high", "low")
    res = compare_groups(y, labels)
    assert res.reference == "low" and res.groups == ["low", "high"]
    assert res.hazard_ratio > 1.5 and res.logrank_p_value < 1e-3
    expected_chi2 = compare_survival(y, labels)[0]  # scikit-survival's log-rank
    assert res.logrank_statistic == pytest.approx(expected_chi2)
    three = np.asarray(pd.qcut(hazard, 3, labels=["a", "b", "c"]).astype(str))
    res3 = compare_groups(y, three, reference="a")
    assert res3.logrank_df == 2 and list(res3.hazard_ratios.index) == ["b", "c"]
    assert res3.logrank_statistic == pytest.approx(compare_survival(y, three)[0])
    with pytest.raises(ValueError, match="hazard_ratios"):
        _ = res3.hazard_ratio
    with pytest.raises(ValueError, match="reference"):
        compare_groups(y, labels, reference="medium")


def test_stratifier_cutoff_depends_only_on_training_data() -> None:
    rng = np.random.default_rng(9)
    risk_train = rng.normal(size=200)
    strat = RiskStratifier("median").fit(risk_train)
    cutoff = strat.cutoff_
    assert cutoff == pytest.approx(np.median(risk_train))
    labels_a = strat.transform(rng.normal(loc=3.0, size=50))  # shifted test set
    labels_b = strat.transform(rng.normal(loc=-3.0, size=80))
    assert strat.cutoff_ == cutoff
    assert (labels_a == "high").mean() > 0.9 and (labels_b == "low").mean() > 0.9
    # A test sample's label depends on its own risk only.
    test = rng.normal(size=30)
    np.testing.assert_array_equal(strat.transform(test)[:10], strat.transform(test[:10]))
    np.testing.assert_array_equal(strat.transform([cutoff, cutoff + 1e-9]), ["low", "high"])


def test_stratifier_optimal_logrank_uses_training_only() -> None:
    rng = np.random.default_rng(10)
    n = 400
    risk = rng.uniform(size=n)
    hazard = np.where(risk > 0.65, 0.3, 0.05)  # planted change point at 0.65
    y = _surv(np.ones(n, bool), rng.exponential(1.0 / hazard))
    train, test = np.arange(n) < 300, np.arange(n) >= 300
    strat = RiskStratifier("optimal_logrank").fit(risk[train], y[train])
    assert strat.cutoff_ == pytest.approx(0.65, abs=0.07)
    search = strat.search_
    assert search is not None
    assert search["fraction_high"].between(0.2, 0.8).all()
    assert strat.cutoff_ == search["cutoff"].to_numpy()[search["statistic"].to_numpy().argmax()]
    # The chosen split's statistic agrees with scikit-survival's log-rank.
    best = risk[train] > strat.cutoff_
    assert search["statistic"].max() == pytest.approx(compare_survival(y[train], best)[0])
    # Refitting with different test data around does not move the cutoff; test data
    # never enters fit.
    cutoff = strat.cutoff_
    strat.transform(risk[test])
    again = clone(strat).fit(risk[train], y[train])
    assert again.cutoff_ == cutoff
    # A narrower admissible range is honoured.
    narrow = RiskStratifier("optimal_logrank", min_group_fraction=0.4).fit(risk[train], y[train])
    assert narrow.search_ is not None
    assert narrow.search_["fraction_high"].between(0.4, 0.6).all()


def test_stratifier_quantile_and_errors() -> None:
    risk = np.arange(100, dtype=float)
    strat = RiskStratifier(0.75).fit(risk)
    assert strat.cutoff_ == pytest.approx(np.quantile(risk, 0.75))
    assert strat.train_fraction_high_ == pytest.approx(0.25)
    assert strat.get_params() == {"cutoff": 0.75, "min_group_fraction": 0.2}
    with pytest.raises(ValueError, match="y_train"):
        RiskStratifier("optimal_logrank").fit(risk)
    with pytest.raises(ValueError, match="unknown cutoff"):
        RiskStratifier("mean").fit(risk)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        RiskStratifier(1.5).fit(risk)
    with pytest.warns(EvaluationWarning, match="training samples"):
        RiskStratifier(0.9).fit(risk)
    with pytest.raises(Exception, match="not fitted"):
        RiskStratifier().transform(risk)
