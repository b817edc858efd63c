"""External validation (score_model): numbers against hand counts and other libraries."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index
from scipy import optimize, special
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from hybridrad.models.data import StudyData
from hybridrad.models.final import ModelInputError, fit_final
from hybridrad.models.persist import load_model, read_model_info, save_model
from hybridrad.models.pipelines import StudyConfig
from hybridrad.models.survival import PenalizedCox, survival_function_at
from hybridrad.study.external import (
    HorizonError,
    TaskMismatchError,
    logistic_calibration,
    score_model,
    survival_calibration,
)

# --- a model whose risk is an increasing function of one feature ----------------------------

#: Eight cases. Risk increases with x (the model's coefficient on x is positive), so the
#: concordance of the model's risk is that of x. Comparable pairs (Harrell): an event case
#: i and any case j with a longer time.
#:   A (t=2, event, x=5) vs B C D E F G H: concordant B C E F G H, discordant D   -> 6 / 7
#:   C (t=4, event, x=4) vs D E F G H:     concordant E F G H, discordant D       -> 4 / 5
#:   D (t=5, event, x=6) vs E F G H:       concordant E F G H                     -> 4 / 4
#:   F (t=7, event, x=2) vs G H:           G tied (x=2, counts 1/2), H concordant -> 1.5 / 2
#:   H (t=9, event) has no later case; B, E, G are censored.
#: C = (6 + 4 + 4 + 1.5) / (7 + 5 + 4 + 2) = 15.5 / 18.
EIGHT = pd.DataFrame(
    {
        "time": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        "event": [1, 0, 1, 1, 0, 1, 0, 1],
        "rad__x": [5.0, 1.0, 4.0, 6.0, 2.0, 2.0, 2.0, 0.0],
    },
    index=pd.Index(list("ABCDEFGH"), name="case_id"),
)
HAND_C = 15.5 / 18.0


def _survival_data(frame: pd.DataFrame, columns: list[str]) -> StudyData:
    y = Surv.from_arrays(frame["event"].astype(bool), frame["time"].astype(float))
    return StudyData(X=frame[columns], y=y, task="survival", inputs={"eight.csv": "ab" * 32})


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A saved Cox model of x (positive coefficient) and its training cutoff at x = 3.5."""
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, 300)
    t = rng.exponential(20 * np.exp(-0.5 * x))
    c = rng.exponential(30, 300)
    train = pd.DataFrame({"rad__x": x})
    cox = PenalizedCox().fit(train, Surv.from_arrays(t < c, np.minimum(t, c)))
    assert cox.coef_["rad__x"] > 0
    cutoff = float(cox.predict(pd.DataFrame({"rad__x": [3.5]}))[0])
    folder = tmp_path_factory.mktemp("toy") / "model"
    save_model(
        Pipeline([("model", cox)]),
        folder,
        metadata={
            "task": "survival",
            "feature_set": "toy",
            "features": ["rad__x"],
            "input_columns": ["rad__x"],
            "site_column": None,
            "risk_cutoff": cutoff,
            "horizon": 5.0,
            "horizon_rule": "test",
            "follow_up_max": float(np.minimum(t, c).max()),
            "clinical_model": None,
        },
    )
    return folder, cutoff


def _score_quietly(*args: Any, **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return score_model(*args, **kwargs)


def test_c_index_and_bootstrap_ci_by_hand(toy_model: tuple[Path, float], tmp_path: Path) -> None:
    folder, _ = toy_model
    data = _survival_data(EIGHT, ["rad__x"])
    result = _score_quietly(folder, data, tmp_path / "out", n_boot=300, seed=3)
    time, event, x = EIGHT["time"].to_numpy(), EIGHT["event"].to_numpy(), EIGHT["rad__x"].to_numpy()
    # hand count (above); lifelines (predicted survival order: -risk); scikit-survival
    assert result["c_index"] == pytest.approx(HAND_C, abs=1e-12)
    assert concordance_index(time, -x, event) == pytest.approx(HAND_C, abs=1e-12)
    risk = pd.read_csv(tmp_path / "out" / "predictions.csv", index_col=0)["risk"].to_numpy()
    sk = concordance_index_censored(event.astype(bool), time, risk)
    assert sk[0] == pytest.approx(HAND_C, abs=1e-12)
    assert (sk[1], sk[2], sk[3]) == (15, 2, 1)  # concordant, discordant, tied in risk
    # the percentile bootstrap, redone with lifelines on the same resamples
    # (sklearn.utils.resample draws randint(0, n, n) from one RandomState(seed))
    rng = np.random.RandomState(3)
    values, skipped = [], 0
    for _ in range(300):
        idx = rng.randint(0, 8, size=8)
        try:
            values.append(concordance_index(time[idx], -x[idx], event[idx]))
        except ZeroDivisionError:  # no comparable pair in this resample
            skipped += 1
    low, high = np.quantile(values, [0.025, 0.975])
    assert result["ci_low"] == pytest.approx(low, abs=1e-12)
    assert result["ci_high"] == pytest.approx(high, abs=1e-12)
    assert result["n_boot_skipped"] == skipped
    assert result["n"] == 8 and result["n_events"] == 5


def test_km_and_logrank_use_the_training_cutoff(
    toy_model: tuple[Path, float], tmp_path: Path
) -> None:
    folder, cutoff = toy_model
    data = _survival_data(EIGHT, ["rad__x"])
    result = _score_quietly(folder, data, tmp_path / "out", n_boot=0)
    preds = pd.read_csv(tmp_path / "out" / "predictions.csv", index_col=0)
    high = (EIGHT["rad__x"] > 3.5).to_numpy()  # the training cutoff, not the cohort's median
    assert list(preds["risk_group"]) == ["high" if h else "low" for h in high]
    assert (result["n_high"], result["n_low"]) == (3, 5) and result["risk_cutoff"] == cutoff
    t, e = EIGHT["time"].to_numpy(), EIGHT["event"].to_numpy()
    ref = logrank_test(t[high], t[~high], e[high], e[~high])
    assert result["logrank_p"] == pytest.approx(ref.p_value, rel=1e-10)
    assert result["logrank_statistic"] == pytest.approx(ref.test_statistic, rel=1e-10)
    km = pd.read_csv(tmp_path / "out" / "km.csv")
    for group, sel in (("high", high), ("low", ~high)):
        kmf = KaplanMeierFitter().fit(t[sel], e[sel])
        mine = km[km["group"] == group].set_index("time")["survival"]
        np.testing.assert_allclose(
            mine.to_numpy(), kmf.survival_function_at_times(mine.index).to_numpy(), atol=1e-12
        )
    assert math.isnan(result["ci_low"]) and result["c_index"] == pytest.approx(HAND_C)
    assert (tmp_path / "out" / "km.png").stat().st_size > 1000


def test_score_errors(toy_model: tuple[Path, float], tmp_path: Path) -> None:
    folder, _ = toy_model
    data = _survival_data(EIGHT, ["rad__x"])
    with pytest.raises(HorizonError, match=r"horizon 12 lies beyond .* last observed time is 9"):
        score_model(folder, data, tmp_path / "a", horizon=12.0, n_boot=0)
    with pytest.raises(HorizonError, match="positive"):
        score_model(folder, data, tmp_path / "a", horizon=0.0, n_boot=0)
    renamed = StudyData(
        X=EIGHT[["rad__x"]].rename(columns={"rad__x": "rad__y"}),
        y=data.y,
        task="survival",
        inputs={},
    )
    with pytest.raises(ModelInputError, match=r"\['rad__x'\].*extract them with the same"):
        score_model(folder, renamed, tmp_path / "b", n_boot=0)
    labels = StudyData(
        X=EIGHT[["rad__x"]], y=EIGHT["event"].to_numpy(), task="classification", inputs={}
    )
    with pytest.raises(TaskMismatchError, match=r"survival model .* classification target"):
        score_model(folder, labels, tmp_path / "c", n_boot=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# --- calibration measures against references -------------------------------------------------


def _cox_cohort(n: int = 4000, seed: int = 11) -> tuple[np.ndarray, np.ndarray, float]:
    """Exponential PH data: hazard 0.1 exp(0.8 x); returns (y, lp, horizon)."""
    rng = np.random.default_rng(seed)
    lp = 0.8 * rng.normal(size=n)
    t = rng.exponential(1.0 / (0.1 * np.exp(lp)))
    c = rng.exponential(20.0, n)
    return Surv.from_arrays(t <= c, np.minimum(t, c)), lp, 5.0


def test_survival_calibration_against_lifelines_sksurv_and_truth() -> None:
    y, lp, h = _cox_cohort()
    true_surv = np.exp(-0.1 * h * np.exp(lp))
    slope, intercept = survival_calibration(y, true_surv, h)
    # the true model is calibrated: slope 1, intercept 0 (sampling error ~0.03 here)
    assert slope == pytest.approx(1.0, abs=0.08) and intercept == pytest.approx(0.0, abs=0.08)
    # slope: a Cox fit of the truncated outcome on log(-log S) = log(0.1 h) + lp is the Cox
    # fit on the linear predictor (lifelines, and scikit-survival with Efron ties)
    event_h = y["event"] & (y["time"] <= h)
    time_h = np.minimum(y["time"], h)
    cph = CoxPHFitter().fit(
        pd.DataFrame({"lp": lp, "T": time_h, "E": event_h.astype(int)}), "T", "E"
    )
    assert slope == pytest.approx(float(cph.params_["lp"]), abs=1e-6)
    sk = CoxPHSurvivalAnalysis(ties="efron").fit(lp[:, None], Surv.from_arrays(event_h, time_h))
    assert slope == pytest.approx(float(sk.coef_[0]), abs=1e-5)
    # intercept: log of the Breslow sum over event times <= h of d / sum_{at risk} H(h|x)
    cumhaz = -np.log(true_surv)
    total = 0.0
    for s in np.unique(time_h[event_h]):
        total += np.sum(event_h & (time_h == s)) / np.sum(cumhaz[time_h >= s])
    assert intercept == pytest.approx(math.log(total), abs=1e-10)
    # twice the predicted cumulative hazard: intercept -log 2, slope unchanged
    s2, i2 = survival_calibration(y, true_surv**2, h)
    assert i2 == pytest.approx(intercept - math.log(2.0), abs=1e-9)
    assert s2 == pytest.approx(slope, abs=1e-6)
    # over-spread predictions (linear predictor doubled): slope about 1/2
    s3, _ = survival_calibration(y, np.exp(-0.1 * h * np.exp(2 * lp)), h)
    assert s3 == pytest.approx(0.5, abs=0.05)


def test_logistic_calibration_against_sklearn_and_truth() -> None:
    rng = np.random.default_rng(12)
    z = rng.normal(size=5000)
    p = special.expit(-0.5 + 1.2 * z)
    y = (rng.random(5000) < p).astype(int)
    slope, intercept = logistic_calibration(y, p)
    assert slope == pytest.approx(1.0, abs=0.1) and intercept == pytest.approx(0.0, abs=0.1)
    logit = special.logit(p)
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit[:, None], y)
    assert slope == pytest.approx(float(ref.coef_[0, 0]), abs=1e-6)

    def score(a: float) -> float:  # the offset model's likelihood equation
        return float(np.sum(y - special.expit(a + logit)))

    assert intercept == pytest.approx(optimize.brentq(score, -5, 5, xtol=1e-14), abs=1e-9)
    over, _ = logistic_calibration(y, special.expit(2 * logit))  # too extreme
    assert over == pytest.approx(slope / 2, abs=1e-6)


# --- end to end: fit on one synthetic cohort, score on another --------------------------------


def make_cohort(n: int, seed: int, task: str = "survival") -> StudyData:
    rng = np.random.default_rng(seed)
    rad = rng.normal(size=(n, 40))
    deep = rng.normal(size=(n, 15))
    age = rng.normal(50, 10, n)
    lp = 0.8 * rad[:, 0] - 0.6 * rad[:, 1] + 0.7 * deep[:, 0] + 0.02 * (age - 50)
    X = pd.concat(
        [
            pd.DataFrame(rad, columns=[f"rad__f{i:02d}" for i in range(40)]),
            pd.DataFrame(deep, columns=[f"deep__d{i:02d}" for i in range(15)]),
            pd.DataFrame({"clin__age": age}),
        ],
        axis=1,
    )
    X.index = pd.Index([f"k{seed}_{i:03d}" for i in range(n)], name="case_id")
    inputs = {f"cohort{seed}.csv": f"{seed:064d}"}
    if task == "survival":
        t = rng.exponential(np.exp(-lp) * 20)
        c = rng.uniform(10, 60, n)
        y: Any = Surv.from_arrays(t < c, np.minimum(t, c))
        return StudyData(X=X, y=y, task="survival", inputs=inputs)
    labels = (lp + rng.normal(0, 0.8, n) > 0).astype(int)
    return StudyData(
        X=X, y=labels, task="classification", inputs=inputs, positive="Mutant", negative="WT"
    )


CONFIG = StudyConfig(screen_k=(5, 10), prescreen_k=30)


@pytest.fixture(scope="module")
def survival_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, StudyData, dict[str, Any]]:
    root = tmp_path_factory.mktemp("survival")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = fit_final(make_cohort(120, 1), CONFIG, "hybrid", root / "model")
    external = make_cohort(90, 2)
    result = _score_quietly(folder, external, root / "ext", n_boot=200, seed=5)
    return folder, external, result


def test_end_to_end_survival(survival_run: tuple[Path, StudyData, dict[str, Any]]) -> None:
    folder, data, result = survival_run
    out = Path(result["out"])
    for prefix in ("", "clinical_"):
        for name in ("predictions.csv", "calibration.csv", "calibration.png", "km.csv", "km.png"):
            assert (out / f"{prefix}{name}").is_file(), prefix + name
    meta = read_model_info(folder)["metadata"]
    preds = pd.read_csv(out / "predictions.csv", index_col=0)
    model = load_model(folder)
    X = data.X[meta["input_columns"]]
    np.testing.assert_allclose(preds["risk"].to_numpy(), model.predict(X), rtol=0, atol=1e-12)
    risk = preds["risk"].to_numpy()
    assert result["c_index"] == pytest.approx(
        concordance_index(data.y["time"], -risk, data.y["event"]), abs=1e-12
    )
    assert 0.6 < result["c_index"] < 1.0
    assert result["ci_low"] < result["c_index"] < result["ci_high"]
    high = risk > meta["risk_cutoff"]
    assert list(preds["risk_group"]) == ["high" if h else "low" for h in high]
    t, e = data.y["time"], data.y["event"]
    ref = logrank_test(t[high], t[~high], e[high], e[~high])
    assert (
        result["logrank_p"] == pytest.approx(ref.p_value, rel=1e-10) and result["logrank_p"] < 0.05
    )
    assert result["hazard_ratio"] > 1
    h = meta["horizon"]
    assert result["horizon"] == h
    surv = survival_function_at(model, X, [h])[:, 0]
    np.testing.assert_allclose(preds["survival_at_horizon"].to_numpy(), surv, atol=1e-12)
    slope, intercept = survival_calibration(data.y, surv, h)
    assert (result["calibration_slope"], result["calibration_intercept"]) == (slope, intercept)
    assert 0.3 < slope < 3 and abs(intercept) < 1.5
    calib = pd.read_csv(out / "calibration.csv")
    assert calib["n"].sum() == 90 and (calib["horizon"] == h).all()
    # the clinical reference model, with the same keys
    clinical = result["clinical"]
    assert clinical is not None and clinical["feature_set"] == "clinical"
    assert set(clinical) == set(result) - {"clinical", "provenance", "out"}
    assert clinical["c_index"] < result["c_index"]
    clin_preds = pd.read_csv(out / "clinical_predictions.csv", index_col=0)
    assert clinical["c_index"] == pytest.approx(
        concordance_index(t, -clin_preds["risk"].to_numpy(), e), abs=1e-12
    )
    # metrics.json: the returned numbers, and the provenance
    saved = json.loads((out / "metrics.json").read_text())
    assert (
        saved["c_index"] == result["c_index"]
        and saved["clinical"]["c_index"] == clinical["c_index"]
    )
    prov = saved["provenance"]
    info = read_model_info(folder)
    assert prov["model_sha256"] == info["integrity"] and prov["study_hash"] == CONFIG.hash
    assert prov["clinical_model_sha256"] == read_model_info(folder / "clinical")["integrity"]
    assert prov["inputs_sha256"] == data.inputs and "numpy" in prov["library_versions"]
    assert (prov["seed"], prov["n_boot"], prov["horizon"]) == (5, 200, h)
    assert prov["model_dir"] == str(folder.resolve())


def test_scoring_is_reproducible_and_the_horizon_can_be_set(
    survival_run: tuple[Path, StudyData, dict[str, Any]], tmp_path: Path
) -> None:
    folder, data, result = survival_run
    again = _score_quietly(folder, data, tmp_path / "again", n_boot=200, seed=5)
    assert (again["ci_low"], again["ci_high"]) == (result["ci_low"], result["ci_high"])
    other = _score_quietly(folder, data, tmp_path / "h", n_boot=0, horizon=10.0)
    assert other["horizon"] == 10.0 and other["c_index"] == result["c_index"]
    assert other["calibration_slope"] != result["calibration_slope"]


def test_end_to_end_classification(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = fit_final(make_cohort(120, 3, "classification"), CONFIG, "hybrid", tmp_path / "m")
    data = make_cohort(90, 4, "classification")
    result = _score_quietly(folder, data, tmp_path / "ext", n_boot=200, seed=1)
    out = tmp_path / "ext"
    for prefix in ("", "clinical_"):
        for name in ("predictions.csv", "calibration.csv", "calibration.png", "roc.csv", "roc.png"):
            assert (out / f"{prefix}{name}").is_file(), prefix + name
    assert not (out / "km.png").exists()
    meta = read_model_info(folder)["metadata"]
    preds = pd.read_csv(out / "predictions.csv", index_col=0)
    prob = load_model(folder).predict_proba(data.X[meta["input_columns"]])[:, 1]
    np.testing.assert_allclose(preds["probability"].to_numpy(), prob, atol=1e-12)
    assert result["auc"] == pytest.approx(roc_auc_score(data.y, prob), abs=1e-12)
    # Mann-Whitney count: P(score of a positive > score of a negative)
    pos, neg = prob[data.y == 1], prob[data.y == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert result["auc"] == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-12)
    assert 0.7 < result["auc"] < 1 and result["ci_low"] < result["auc"] < result["ci_high"]
    logit = special.logit(prob)
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit[:, None], data.y)
    assert result["calibration_slope"] == pytest.approx(float(ref.coef_[0, 0]), abs=1e-6)
    assert set(preds["label"]) == {"Mutant", "WT"}
    assert (preds["label"] == "Mutant").sum() == result["n_positive"] == int(data.y.sum())
    predicted = prob >= meta["threshold"]
    assert result["sensitivity"] == pytest.approx(predicted[data.y == 1].mean())
    assert result["clinical"] is not None and "auc" in result["clinical"]
    swapped = StudyData(
        X=data.X, y=1 - data.y, task="classification", inputs={}, positive="WT", negative="Mutant"
    )
    with pytest.raises(TaskMismatchError, match="positive='Mutant'"):
        score_model(folder, swapped, tmp_path / "swapped", n_boot=0)
    survival = make_cohort(30, 5)
    with pytest.raises(TaskMismatchError, match="classification model"):
        score_model(folder, survival, tmp_path / "surv", n_boot=0)
