"""Final models: tuning on all cases, pickle-free export, metadata and warnings."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.util import Surv

from hybridrad.models.combat import ComBat
from hybridrad.models.data import StudyData
from hybridrad.models.evaluate import one_standard_error
from hybridrad.models.final import (
    ClinicalOnlyModelWarning,
    EmptyModelWarning,
    ModelExportError,
    ModelInputError,
    export_pipeline,
    fit_final,
    predict_frame,
    predict_study,
)
from hybridrad.models.metrics import roc_curve_table, survival_scorer
from hybridrad.models.persist import load_model, read_model_info, save_model
from hybridrad.models.pipelines import StudyConfig, build_pipeline
from hybridrad.models.survival import PenalizedCox
from hybridrad.models.transformers import BlockPCA, PenaltyFactor

FAST = {"screen_k": (5, 10), "prescreen_k": 30, "inner_splits": 3}


def make_study(
    n: int = 100,
    seed: int = 1,
    *,
    task: str = "survival",
    site: bool = False,
    signal: float = 1.5,
    age_effect: float = 0.03,
) -> StudyData:
    """60 rad + 20 deep features, ``clin__age``; imaging signal in rad__f00, rad__f01,
    deep__d00; site B shifts the rad block by 1.5 (with ``site``)."""
    rng = np.random.default_rng(seed)
    rad = rng.normal(size=(n, 60))
    deep = rng.normal(size=(n, 20))
    age = rng.normal(50, 10, n)
    lp = signal * (0.8 * rad[:, 0] - 0.6 * rad[:, 1] + 0.7 * deep[:, 0]) + age_effect * (age - 50)
    X = pd.concat(
        [
            pd.DataFrame(rad, columns=[f"rad__f{i:02d}" for i in range(60)]),
            pd.DataFrame(deep, columns=[f"deep__d{i:02d}" for i in range(20)]),
            pd.DataFrame({"clin__age": age}),
        ],
        axis=1,
    )
    X.index = pd.Index([f"s{seed}c{i:03d}" for i in range(n)], name="case_id")
    X.iloc[3, 2] = np.nan  # one missing value, imputed in the pipeline
    if site:
        sites = np.where(np.arange(n) % 2 == 0, "A", "B")
        X.loc[sites == "B", [c for c in X.columns if c.startswith("rad")]] += 1.5
        X["site"] = sites
    if task == "survival":
        t = rng.exponential(np.exp(-lp) * 20)
        c = rng.exponential(40, n)
        y: Any = Surv.from_arrays(t < c, np.minimum(t, c))
        return StudyData(X=X, y=y, task="survival", inputs={"synthetic": "0" * 64})
    y = (lp + rng.normal(0, 0.7, n) > 0).astype(int)
    return StudyData(
        X=X,
        y=y,
        task="classification",
        inputs={"synthetic": "0" * 64},
        positive="Mutant",
        negative="WT",
    )


def reference_search(data: StudyData, config: StudyConfig, blocks: tuple[str, ...]) -> Any:
    """The tuning the issue specifies, written out independently of fit_final."""
    columns = [c for c in data.X.columns if c.split("__")[0] in blocks]
    if config.combat:
        columns.append("site")
    n = sum(c != "site" for c in columns)
    pipe, grid = build_pipeline(config, data.task, blocks, n_features=n)
    strata = data.y["event"].astype(int) if data.task == "survival" else data.y
    cv = list(
        StratifiedKFold(config.inner_splits, shuffle=True, random_state=config.seed).split(
            np.zeros(len(strata)), strata
        )
    )
    scoring = survival_scorer("harrell") if data.task == "survival" else "roc_auc"
    search = GridSearchCV(pipe, grid, cv=cv, scoring=scoring, refit=one_standard_error)
    return search.fit(data.X[columns], data.y), columns


def quiet_fit(data: StudyData, config: StudyConfig, feature_set: str, out: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_final(data, config, feature_set, out)


# --- persistence of the new step types -------------------------------------------------------


def test_combat_penalty_factor_and_unpenalized_cox_round_trip(tmp_path: Path) -> None:
    data = make_study(n=80, site=True)
    X = data.X[["rad__f00", "rad__f01", "rad__f02", "clin__age", "site"]]
    pipe = Pipeline(
        [
            ("combat", ComBat(blocks=("rad",), impute=True)),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("penalty", PenaltyFactor(factor=10.0)),
            ("model", PenalizedCox(penalizer=0.2, unpenalized=("clin",))),
        ]
    ).set_output(transform="pandas")
    pipe.fit(X, data.y)
    loaded = load_model(save_model(pipe, tmp_path / "m"))
    assert loaded.named_steps["model"].unpenalized == ("clin",)
    assert loaded.named_steps["penalty"].factor == 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
        out = loaded[:-1].transform(X)
    assert isinstance(out, pd.DataFrame) and "site" not in out.columns
    np.testing.assert_array_equal(
        loaded.named_steps["combat"].gamma_star_, pipe.named_steps["combat"].gamma_star_
    )


# --- the saved model is the tuned pipeline ---------------------------------------------------


@pytest.mark.parametrize(
    ("task", "combat"),
    [("survival", False), ("classification", False), ("survival", True)],
    ids=["cox", "logistic_penalty", "cox_combat"],
)
def test_saved_model_reproduces_the_tuned_pipeline(task: str, combat: bool, tmp_path: Path) -> None:
    data = make_study(task=task, site=combat)
    config = StudyConfig(combat=combat, **FAST)  # type: ignore[arg-type]
    blocks = ("rad", "deep", "clin")
    search, columns = reference_search(data, config, blocks)
    folder = quiet_fit(data, config, "hybrid", tmp_path / "model")
    meta = read_model_info(folder)["metadata"]
    loaded = load_model(folder)
    X_in = data.X[meta["input_columns"]]
    if task == "survival":
        np.testing.assert_allclose(
            loaded.predict(X_in),
            search.best_estimator_.predict(data.X[columns]),
            rtol=0,
            atol=1e-10,
        )
    else:
        np.testing.assert_allclose(
            loaded.predict_proba(X_in),
            search.best_estimator_.predict_proba(data.X[columns]),
            rtol=0,
            atol=1e-12,
        )
    assert meta["best_params"] == search.best_params_
    expected_steps = {
        "survival": ["impute", "scale", "model"],
        "classification": ["impute", "scale", "penalty", "model"],
    }[task]
    if combat:
        expected_steps = ["combat", *expected_steps]
    assert meta["steps"] == expected_steps
    assert [name for name, _ in loaded.steps] == expected_steps
    assert meta["features"] == list(search.best_estimator_.steps[-1][1].feature_names_in_)
    if combat:
        assert meta["site_column"] == "site" and meta["sites"] == ["A", "B"]
        assert meta["input_columns"] == [*meta["features"], "site"]
        # ComBat keeps the estimates fitted on every imaging feature (not refitted on the
        # selected ones, which would change its empirical Bayes priors)
        tuned = search.best_estimator_.named_steps["combat"]
        saved = loaded.named_steps["combat"]
        pos = [list(tuned.harmonized_features_).index(c) for c in saved.harmonized_features_]
        np.testing.assert_array_equal(saved.gamma_star_, tuned.gamma_star_[:, pos])
    else:
        assert meta["site_column"] is None and meta["input_columns"] == meta["features"]


def test_a_combat_model_needs_the_site_column(tmp_path: Path) -> None:
    data = make_study(site=True)
    folder = quiet_fit(data, StudyConfig(combat=True, **FAST), "hybrid", tmp_path / "m")  # type: ignore[arg-type]
    new = make_study(n=30, seed=7, site=True)
    risk = predict_frame(folder, new.X)["risk"]
    assert risk.notna().all() and list(risk.index) == list(new.X.index)
    with pytest.raises(ModelInputError, match=r"'site' column.*site=True"):
        predict_frame(folder, new.X.drop(columns="site"))
    unseen = new.X.assign(site=np.where(np.arange(30) < 3, "C", "A"))
    with pytest.raises(ModelInputError, match=r"\['C'\] were not in the training cohort"):
        predict_frame(folder, unseen)
    # the clinical reference model has no ComBat step and needs no site
    clin = read_model_info(folder / "clinical")["metadata"]
    assert clin["site_column"] is None and clin["features"] == ["clin__age"]
    # nor does a hybrid that fell back to its clinical part
    plain = make_study(site=True, signal=0.0, age_effect=0.08, seed=4, n=120)
    config = StudyConfig(combat=True, **FAST)  # type: ignore[arg-type]
    meta = read_model_info(quiet_fit(plain, config, "hybrid", tmp_path / "m2"))["metadata"]
    assert meta["clinical_fallback_chosen"] and meta["site_column"] is None
    assert meta["steps"] == ["impute", "scale", "model"] and meta["input_columns"] == ["clin__age"]


def test_predict_study_reads_the_tables(tmp_path: Path) -> None:
    data = make_study(site=True)
    folder = quiet_fit(data, StudyConfig(combat=True, **FAST), "hybrid", tmp_path / "m")  # type: ignore[arg-type]
    new = make_study(n=25, seed=8, site=True)
    feats = [c for c in new.X.columns if c.split("__")[0] in ("rad", "deep")]
    new.X[feats].to_parquet(tmp_path / "features.parquet")
    clinical = pd.DataFrame({"age": new.X["clin__age"], "site": new.X["site"]})
    clinical.to_csv(tmp_path / "clinical.csv")
    table = predict_study(folder, [tmp_path / "features.parquet"], tmp_path / "clinical.csv")
    expected = predict_frame(folder, new.X)
    pd.testing.assert_series_equal(
        table["risk"].sort_index(), expected["risk"].sort_index(), check_names=False
    )
    with pytest.raises(ModelInputError, match=r"clinical covariate\(s\) \['age'\]"):
        predict_study(folder, [tmp_path / "features.parquet"])


def test_export_refuses_steps_that_build_features() -> None:
    data = make_study(n=60)
    pipe = Pipeline(
        [
            ("impute", SimpleImputer()),
            ("pca", BlockPCA(block="deep", n_components=3)),
            ("model", PenalizedCox(penalizer=0.5)),
        ]
    ).set_output(transform="pandas")
    pipe.fit(data.X, data.y)
    with pytest.raises(ModelExportError, match=r"cannot export step 'pca' \(BlockPCA\)"):
        export_pipeline(pipe)


# --- the clinical reference model and the metadata for scoring --------------------------------


def test_clinical_reference_model_and_survival_metadata(tmp_path: Path) -> None:
    data = make_study()
    config = StudyConfig(**FAST)  # type: ignore[arg-type]
    folder = quiet_fit(data, config, "hybrid", tmp_path / "m")
    meta = read_model_info(folder)["metadata"]
    assert meta["clinical_model"] == "clinical" and (folder / "clinical" / "model.json").is_file()
    clin_meta = read_model_info(folder / "clinical")["metadata"]
    assert clin_meta["feature_set"] == "clinical" and clin_meta["blocks"] == ["clin"]
    assert clin_meta["clinical_model"] is None
    # training risk cutoff: the median of the final model's training risks
    risk = load_model(folder).predict(data.X[meta["input_columns"]])
    assert meta["risk_cutoff"] == pytest.approx(float(np.median(risk)), abs=1e-12)
    # default horizon: the median observed event time
    events = data.y["time"][data.y["event"]]
    assert meta["horizon"] == pytest.approx(float(np.median(events)))
    assert meta["n_cases"] == 100 and meta["n_events"] == int(data.y["event"].sum())
    assert meta["follow_up_max"] == pytest.approx(float(data.y["time"].max()))
    assert meta["n_features_active"] == len(meta["active_features"]) > 0
    assert meta["n_imaging_features_active"] == sum(
        not c.startswith("clin__") for c in meta["active_features"]
    )
    assert {"rad__f00", "deep__d00"} <= set(meta["active_features"])
    assert meta["study_hash"] == config.hash and meta["inputs_sha256"] == data.inputs
    # config times: the first one is the horizon; a clinical-only set has no sub-model
    timed = StudyConfig(times=(7.5, 12.0), **FAST)  # type: ignore[arg-type]
    folder2 = quiet_fit(data, timed, "clinical", tmp_path / "m2")
    meta2 = read_model_info(folder2)["metadata"]
    assert meta2["horizon"] == 7.5 and meta2["clinical_model"] is None
    assert not (folder2 / "clinical").exists()
    with pytest.raises(FileExistsError):
        fit_final(data, timed, "clinical", folder2)


def test_classification_metadata(tmp_path: Path) -> None:
    data = make_study(task="classification")
    folder = quiet_fit(data, StudyConfig(**FAST), "hybrid", tmp_path / "m")  # type: ignore[arg-type]
    meta = read_model_info(folder)["metadata"]
    assert meta["positive"] == "Mutant" and meta["negative"] == "WT" and meta["classes"] == [0, 1]
    assert meta["n_positive"] == int(data.y.sum())
    prob = load_model(folder).predict_proba(data.X[meta["input_columns"]])[:, 1]
    roc = roc_curve_table(data.y == 1, prob)
    youden = float(roc["threshold"].to_numpy()[int(np.argmax(roc["youden_j"].to_numpy()))])
    assert meta["threshold"] == pytest.approx(youden)
    assert read_model_info(folder / "clinical")["metadata"]["positive"] == "Mutant"


# --- never silent ------------------------------------------------------------------------------


def test_intercept_only_model_warns(tmp_path: Path) -> None:
    # an elastic-net Cox model of an uninformative covariate shrinks it to zero
    data = make_study(signal=0.0, age_effect=0.0, seed=3)
    config = StudyConfig(model="coxnet", **FAST)  # type: ignore[arg-type]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        folder = fit_final(data, config, "clinical", tmp_path / "m")
    ours = [w for w in record if w.category is EmptyModelWarning]
    assert len(ours) == 1 and "no active feature" in str(ours[0].message)
    assert "same risk for every case" in str(ours[0].message)
    meta = read_model_info(folder)["metadata"]
    assert meta["n_features_active"] == 0 and meta["n_imaging_features_active"] == 0
    assert meta["active_features"] == [] and meta["n_features"] == 1
    risk = load_model(folder).predict(data.X[meta["input_columns"]])
    assert np.ptp(risk) == 0.0


def test_hybrid_falling_back_to_its_clinical_part_warns(tmp_path: Path) -> None:
    data = make_study(signal=0.0, age_effect=0.08, seed=4, n=120)
    config = StudyConfig(**FAST)  # type: ignore[arg-type]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        folder = fit_final(data, config, "hybrid", tmp_path / "m")
    ours = [w for w in record if w.category is ClinicalOnlyModelWarning]
    assert len(ours) == 1
    assert "imaging added nothing in the inner cv" in str(ours[0].message).lower()
    assert not [w for w in record if w.category is EmptyModelWarning]
    meta = read_model_info(folder)["metadata"]
    assert meta["clinical_fallback_chosen"] is True
    assert meta["n_imaging_features_active"] == 0 and meta["n_features_active"] == 1
    assert meta["features"] == ["clin__age"]
    # with imaging signal there is no such warning
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit_final(make_study(seed=5), config, "hybrid", tmp_path / "m2")
    assert not [w for w in record if w.category is ClinicalOnlyModelWarning]
