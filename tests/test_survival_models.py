"""Survival / classification estimators and their pickle-free persistence."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv
from xgboost import XGBClassifier

from hybridrad.models.persist import (
    ModelFileMissingError,
    ModelFormatError,
    UnsupportedModelError,
    data_fingerprint,
    load_model,
    read_model_info,
    save_model,
)
from hybridrad.models.survival import (
    PenalizedCox,
    XGBLabelClassifier,
    XGBSurvivalAFT,
    XGBSurvivalCox,
    survival_function_at,
)

# R survival package, ``coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
# data = Rossi)`` (Efron ties), as printed in J. Fox & S. Weisberg, "Cox Proportional-Hazards
# Regression for Survival Data in R", appendix to *An R Companion to Applied Regression*.
R_ROSSI_COEF = {
    "fin": -0.3794222,
    "age": -0.0574377,
    "race": 0.3138998,
    "wexp": -0.1497957,
    "mar": -0.4337039,
    "paro": -0.0848711,
    "prio": 0.0914971,
}

GRID = np.linspace(0.0, 40.0, 41)


# --- data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rossi() -> tuple[pd.DataFrame, np.ndarray]:
    df = load_rossi()
    X = df[list(R_ROSSI_COEF)].astype(float)
    y = Surv.from_arrays(df["arrest"].astype(bool), df["week"].astype(float))
    return X, y


def simulate_cox(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Exponential proportional hazards, 5 informative + 3 noise features, ~40% censored."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    beta = np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.0, 0.0, 0.0])
    t_event = rng.exponential(1.0 / (0.1 * np.exp(X @ beta)))
    t_cens = rng.exponential(15.0, size=n)
    y = Surv.from_arrays(t_event <= t_cens, np.minimum(t_event, t_cens))
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]), y


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    X, y = simulate_cox()
    return X.iloc[:300], y[:300], X.iloc[300:], y[300:]


@pytest.fixture(scope="module")
def fitted_xgb_cox(sim: Any) -> XGBSurvivalCox:
    Xtr, ytr, _, _ = sim
    return XGBSurvivalCox(n_estimators=200, random_state=3).fit(Xtr, ytr)


def _check_survival_matrix(S: np.ndarray, n: int) -> None:
    assert S.shape == (n, GRID.size)
    assert np.all(np.isfinite(S))
    assert S.min() >= 0.0 and S.max() <= 1.0
    assert np.all(np.diff(S, axis=1) <= 1e-12), "S(t|x) must be non-increasing in t"


# --- PenalizedCox -------------------------------------------------------------------------


def test_penalized_cox_matches_r_on_rossi(rossi: Any) -> None:
    X, y = rossi
    model = PenalizedCox().fit(X, y)
    diff = max(abs(model.coef_[k] - v) for k, v in R_ROSSI_COEF.items())
    assert diff < 1e-4, f"max |coef - R| = {diff:.2e}"
    assert list(model.coef_.index) == list(R_ROSSI_COEF)
    assert {"coef", "se(coef)", "p"} <= set(model.summary_.columns)
    # predict = lifelines log partial hazard; survival = lifelines' at the baseline times
    cph = model.lifelines_model_
    np.testing.assert_allclose(model.predict(X), cph.predict_log_partial_hazard(X), atol=1e-12)
    times = model.baseline_survival_.index.to_numpy()
    expected = cph.predict_survival_function(X.iloc[:10]).to_numpy().T
    np.testing.assert_allclose(model.predict_survival_function(X.iloc[:10], times), expected)
    assert 0.6 < model.score(X, y) < 0.7


def test_penalized_cox_sklearn_conventions(rossi: Any) -> None:
    X, y = rossi
    est = PenalizedCox(penalizer=0.5, l1_ratio=0.2)
    assert clone(est).get_params() == est.get_params()
    ridge = est.fit(X, y)
    plain = PenalizedCox().fit(X, y)
    assert np.abs(ridge.coef_).sum() < np.abs(plain.coef_).sum()
    with pytest.raises(ValueError, match="Efron"):
        PenalizedCox(ties="breslow").fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="penalizer"):
        PenalizedCox(penalizer=-1.0).fit(X, y)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), PenalizedCox()),
        {"penalizedcox__penalizer": [0.0, 0.1]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert 0.5 < search.best_score_ < 0.8
    S = survival_function_at(search.best_estimator_, X.iloc[:5], GRID)
    _check_survival_matrix(S, 5)


# --- xgboost survival ---------------------------------------------------------------------


def test_xgb_cox_discriminates_and_survival_is_valid(sim: Any, fitted_xgb_cox: Any) -> None:
    _, _, Xte, yte = sim
    assert fitted_xgb_cox.score(Xte, yte) > 0.7
    _check_survival_matrix(fitted_xgb_cox.predict_survival_function(Xte, GRID), len(Xte))
    assert np.all(fitted_xgb_cox.predict_survival_function(Xte, [0.0]) == 1.0)


@pytest.mark.parametrize("distribution", ["normal", "logistic", "extreme"])
def test_xgb_aft_discriminates_and_survival_is_valid(sim: Any, distribution: str) -> None:
    Xtr, ytr, Xte, yte = sim
    model = XGBSurvivalAFT(distribution=distribution, n_estimators=200).fit(Xtr, ytr)  # type: ignore[arg-type]
    assert model.score(Xte, yte) > 0.7
    S = model.predict_survival_function(Xte, GRID)
    _check_survival_matrix(S, len(Xte))
    np.testing.assert_allclose(S[:, 0], 1.0)
    np.testing.assert_allclose(model.predict(Xte), -np.log(model.predict_time(Xte)))


@pytest.mark.parametrize("cls", [XGBSurvivalCox, XGBSurvivalAFT])
def test_xgb_survival_is_deterministic(sim: Any, cls: type) -> None:
    Xtr, ytr, Xte, _ = sim
    a = cls(n_estimators=50, subsample=0.7, random_state=11).fit(Xtr, ytr).predict(Xte)
    b = cls(n_estimators=50, subsample=0.7, random_state=11).fit(Xtr, ytr).predict(Xte)
    c = cls(n_estimators=50, subsample=0.7, random_state=12).fit(Xtr, ytr).predict(Xte)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_xgb_survival_validation(sim: Any) -> None:
    Xtr, ytr, _, _ = sim
    with pytest.raises(ValueError, match="learning_rate"):
        XGBSurvivalCox(learning_rate=0.0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="distribution"):
        XGBSurvivalAFT(distribution="weibull").fit(Xtr, ytr)  # type: ignore[arg-type]
    y0 = ytr.copy()
    y0["time"][0] = 0.0
    with pytest.raises(ValueError, match="> 0"):
        XGBSurvivalCox().fit(Xtr, y0)
    with pytest.raises(ValueError, match="feature names"):
        XGBSurvivalCox(n_estimators=5).fit(Xtr, ytr).predict(Xtr.rename(columns={"f0": "zz"}))


# --- scikit-survival estimators used directly --------------------------------------------


def test_rsf_and_coxnet_follow_the_conventions(sim: Any) -> None:
    Xtr, ytr, Xte, yte = sim
    rsf = RandomSurvivalForest(n_estimators=50, min_samples_leaf=10, random_state=0, n_jobs=1)
    rsf.fit(Xtr, ytr)
    assert rsf.score(Xte, yte) > 0.65
    _check_survival_matrix(survival_function_at(rsf, Xte, GRID), len(Xte))
    coxnet = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.02], fit_baseline_model=True)
    pipe = make_pipeline(StandardScaler(), coxnet).fit(Xtr, ytr)
    assert pipe.score(Xte, yte) > 0.7
    _check_survival_matrix(survival_function_at(pipe, Xte, GRID), len(Xte))


# --- classification -----------------------------------------------------------------------


def test_xgb_label_classifier_string_labels() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 4))
    labels = np.array(["IDH-mut", "IDH-wt", "other"])[np.argmax(X[:, :3], axis=1)]
    clf = XGBLabelClassifier(n_estimators=40).fit(X, labels)
    assert list(clf.classes_) == ["IDH-mut", "IDH-wt", "other"]
    assert clf.predict_proba(X).shape == (150, 3)
    assert clf.score(X, labels) > 0.9
    assert set(clf.predict(X)) <= set(labels)


# --- persistence --------------------------------------------------------------------------


def _surv_models(sim: Any, fitted_xgb_cox: Any) -> dict[str, Any]:
    Xtr, ytr, _, _ = sim
    rng = np.random.default_rng(5)
    Xnan = Xtr.mask(rng.random(Xtr.shape) < 0.05)
    return {
        "penalized_cox": PenalizedCox(penalizer=0.1).fit(Xtr, ytr),
        "xgb_cox": fitted_xgb_cox,
        "xgb_aft": XGBSurvivalAFT(distribution="extreme", n_estimators=30).fit(Xtr, ytr),
        "coxnet_path": CoxnetSurvivalAnalysis(n_alphas=20, fit_baseline_model=True).fit(Xtr, ytr),
        "coxnet_no_baseline": CoxnetSurvivalAnalysis(alphas=[0.05]).fit(Xtr.to_numpy(), ytr),
        "pipeline": Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("cox", PenalizedCox(penalizer=0.05)),
            ]
        ).fit(Xnan, ytr),
    }


def test_survival_models_round_trip(sim: Any, fitted_xgb_cox: Any, tmp_path: Path) -> None:
    Xtr, ytr, Xte, _ = sim
    Xq = Xte.mask(np.random.default_rng(6).random(Xte.shape) < 0.05).fillna(0.0)
    for name, model in _surv_models(sim, fitted_xgb_cox).items():
        folder = save_model(model, tmp_path / name, training_data=(Xtr, ytr))
        loaded = load_model(folder)
        assert type(loaded) is type(model)
        X = Xq.to_numpy() if name == "coxnet_no_baseline" else Xq
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=0, atol=1e-12)
        if name != "coxnet_no_baseline":
            np.testing.assert_allclose(
                survival_function_at(loaded, X, GRID),
                survival_function_at(model, X, GRID),
                rtol=0,
                atol=1e-12,
            )
        info = read_model_info(folder)
        assert info["training_data_sha256"] == data_fingerprint((Xtr, ytr))
        assert "numpy" in info["library_versions"]
    loaded_net = load_model(tmp_path / "coxnet_path")
    alpha = float(loaded_net.alphas_[5])
    original = _surv_models(sim, fitted_xgb_cox)["coxnet_path"]
    np.testing.assert_allclose(loaded_net.predict(Xq, alpha=alpha), original.predict(Xq, alpha))


def test_penalized_cox_round_trip_keeps_attributes(rossi: Any, tmp_path: Path) -> None:
    X, y = rossi
    model = PenalizedCox().fit(X, y)
    loaded = load_model(save_model(model, tmp_path / "m", metadata={"study": "rossi"}))
    pd.testing.assert_series_equal(loaded.coef_, model.coef_)
    pd.testing.assert_series_equal(loaded.baseline_survival_, model.baseline_survival_)
    assert list(loaded.feature_names_in_) == list(X.columns)
    assert loaded.lifelines_model_ is None
    assert read_model_info(tmp_path / "m")["metadata"] == {"study": "rossi"}
    assert loaded.score(X, y) == pytest.approx(model.score(X, y), abs=1e-12)


def test_classifiers_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    X_nan = X.mask(rng.random(X.shape) < 0.1)
    labels = np.array(["low", "mid", "high"])[np.digitize(X["a"] + X["b"], [-0.7, 0.7])]
    binary = (X["c"] > 0).astype(int).to_numpy()
    models = {
        "logreg": LogisticRegression(max_iter=500).fit(X, labels),
        "xgb": XGBClassifier(n_estimators=20, max_depth=2).fit(X, binary),
        "xgb_labels": XGBLabelClassifier(n_estimators=20).fit(X, labels),
        "pipeline": make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=0.5)).fit(
            X_nan, labels
        ),
    }
    for name, model in models.items():
        loaded = load_model(save_model(model, tmp_path / name))
        Xq = X_nan if name == "pipeline" else X
        np.testing.assert_array_equal(loaded.predict(Xq), model.predict(Xq))
        np.testing.assert_allclose(
            loaded.predict_proba(Xq), model.predict_proba(Xq), rtol=0, atol=1e-12
        )


def test_load_never_unpickles(
    sim: Any, fitted_xgb_cox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = [
        save_model(m, tmp_path / name) for name, m in _surv_models(sim, fitted_xgb_cox).items()
    ]

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle used while loading a model")

    for attr in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, attr, forbidden)
    for folder in folders:
        load_model(folder)
        assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.joblib"))


def test_unsupported_types_are_refused(sim: Any, tmp_path: Path) -> None:
    Xtr, ytr, _, _ = sim
    rsf = RandomSurvivalForest(n_estimators=5, random_state=0).fit(Xtr, ytr)
    with pytest.raises(TypeError, match=r"RandomSurvivalForest.*pickle.*Supported types"):
        save_model(rsf, tmp_path / "rsf")
    with pytest.raises(UnsupportedModelError, match=r"dict.*PenalizedCox"):
        save_model({"not": "a model"}, tmp_path / "dict")
    pipe = make_pipeline(StandardScaler(), RandomSurvivalForest(n_estimators=5)).fit(Xtr, ytr)
    with pytest.raises(TypeError, match="RandomSurvivalForest"):
        save_model(pipe, tmp_path / "pipe")
    assert not (tmp_path / "pipe").exists()
    with pytest.raises(ValueError, match="unfitted"):
        save_model(PenalizedCox(), tmp_path / "unfitted")
    assert not (tmp_path / "unfitted").exists()


def test_damaged_folders_give_clear_errors(fitted_xgb_cox: Any, rossi: Any, tmp_path: Path) -> None:
    X, y = rossi
    good = save_model(fitted_xgb_cox, tmp_path / "good")
    with pytest.raises(FileExistsError):
        save_model(fitted_xgb_cox, good)

    tampered = Path(shutil.copytree(good, tmp_path / "tampered"))
    with open(tampered / "booster.json", "a", encoding="utf-8") as fh:
        fh.write(" ")
    with pytest.raises(ModelFormatError, match=r"booster\.json was modified"):
        load_model(tampered)

    missing = Path(shutil.copytree(good, tmp_path / "missing"))
    (missing / "baseline.csv").unlink()
    with pytest.raises(ModelFileMissingError, match=r"baseline\.csv is missing"):
        load_model(missing)

    edited = Path(shutil.copytree(good, tmp_path / "edited"))
    doc = json.loads((edited / "model.json").read_text())
    doc["params"]["max_depth"] = 9
    (edited / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match="integrity"):
        load_model(edited)

    (edited / "model.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model(edited)
    with pytest.raises(ModelFileMissingError, match="does not exist"):
        load_model(tmp_path / "nowhere")

    step = save_model(make_pipeline(StandardScaler(), PenalizedCox()).fit(X, y), tmp_path / "p")
    (next((step / "steps").glob("01_*")) / "coef.csv").write_text("feature,coef,mean\n")
    with pytest.raises(ModelFormatError, match=r"coef\.csv was modified"):
        load_model(step)
