"""Leakage-safe evaluation: nested CV, the comparison table, warnings and the CLI."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.util import Surv

from hybridrad.cli import main
from hybridrad.models import (
    CVSettings,
    StudyConfig,
    compare_feature_sets,
    nested_cv,
)
from hybridrad.models.evaluate import (
    ClassImbalanceWarning,
    LowEventsPerVariableWarning,
    SampleSizeWarning,
    design_warnings,
)
from hybridrad.models.pipelines import StudyConfigError
from hybridrad.models.survival import PenalizedCox
from hybridrad.models.transformers import UnivariateCoxSelector

FAST = CVSettings(outer_splits=5, outer_repeats=2, inner_splits=3, random_state=0, n_boot=50)


def _noise_study(n: int = 60, p: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(n, p)),
        columns=[f"rad__x{i:04d}" for i in range(p)],
        index=[f"c{i}" for i in range(n)],
    )
    time = rng.exponential(20, n)
    event = rng.random(n) < 0.7
    return X, Surv.from_arrays(event, time)


def _signal_study(n: int = 150, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    rad = rng.normal(size=(n, 60))
    deep = rng.normal(size=(n, 40))
    lp = 0.8 * rad[:, 0] - 0.6 * rad[:, 1] + 0.7 * deep[:, 0]
    time = rng.exponential(np.exp(-lp) * 20)
    cens = rng.exponential(40, n)
    y = Surv.from_arrays(time < cens, np.minimum(time, cens))
    X = pd.concat(
        [
            pd.DataFrame(rad, columns=[f"rad__f{i:02d}" for i in range(60)]),
            pd.DataFrame(deep, columns=[f"deep__d{i:02d}" for i in range(40)]),
            pd.DataFrame({"clin__age": rng.normal(50, 10, n)}),
        ],
        axis=1,
    )
    X.index = pd.Index([f"c{i:03d}" for i in range(n)], name="case_id")
    label = pd.Series(np.where(lp + rng.normal(0, 0.7, n) > 0, "WT", "Mutant"), index=X.index)
    return X, y, label


def test_selection_inside_the_folds_does_not_leak() -> None:
    X, y = _noise_study()
    inside = Pipeline(
        [("screen", UnivariateCoxSelector(k=10)), ("model", PenalizedCox(penalizer=0.1))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        honest = nested_cv(inside, X, y, settings=FAST)
        # the classic mistake: select on all cases, then cross-validate the model only
        leaky_cols = X.columns[UnivariateCoxSelector(k=10).fit(X, y).get_support()]
        leaky = nested_cv(PenalizedCox(penalizer=0.1), X[leaky_cols], y, settings=FAST)
    assert abs(honest.metric("harrell_c") - 0.5) < 0.08
    assert leaky.metric("harrell_c") > 0.62
    assert leaky.metric("harrell_c") - honest.metric("harrell_c") > 0.1


def test_classification_leakage_auc() -> None:
    X, _ = _noise_study(n=80, p=1000, seed=3)
    labels = np.where(np.random.default_rng(3).random(80) < 0.5, "a", "b")
    from sklearn.feature_selection import SelectKBest, f_classif

    inside = Pipeline(
        [
            ("screen", SelectKBest(f_classif, k=10)),
            ("model", LogisticRegression(C=1.0, max_iter=2000)),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        honest = nested_cv(inside, X, labels, settings=FAST)
        cols = X.columns[SelectKBest(f_classif, k=10).fit(X, labels).get_support()]
        leaky = nested_cv(LogisticRegression(C=1.0, max_iter=2000), X[cols], labels, settings=FAST)
    assert abs(honest.metric("auc") - 0.5) < 0.1
    assert leaky.metric("auc") > 0.7


def test_nested_cv_outputs_and_tuning() -> None:
    X, y, _ = _signal_study()
    pipe = Pipeline(
        [
            ("impute", SimpleImputer()),
            ("scale", StandardScaler()),
            ("screen", UnivariateCoxSelector(k=5)),
            ("model", PenalizedCox()),
        ]
    )
    result = nested_cv(pipe, X, y, param_grid={"model__penalizer": [0.01, 1.0]}, settings=FAST)
    assert result.task == "survival"
    assert len(result.folds) == 10 and set(result.folds["repeat"]) == {0, 1}
    assert result.folds["best_params"].str.contains("penalizer").all()
    s = result.summary
    assert 0.65 < s.loc["harrell_c", "estimate"] < 0.9
    assert (
        s.loc["harrell_c", "ci_low"]
        < s.loc["harrell_c", "estimate"]
        < s.loc["harrell_c", "ci_high"]
    )
    assert {"uno_c", "td_auc", "ibs"} <= set(s.index)
    assert 0 < s.loc["ibs", "estimate"] < 0.25
    # every case is predicted once per repeat
    counts = result.predictions.groupby("repeat")["case_id"].nunique()
    assert (counts == len(X)).all()
    assert len(result.risk_groups) == 2
    assert (result.risk_groups["hazard_ratio"] > 1).all()
    # outer folds in parallel processes give the same numbers
    parallel = nested_cv(
        pipe,
        X,
        y,
        param_grid={"model__penalizer": [0.01, 1.0]},
        settings=CVSettings(**{**FAST.__dict__, "n_jobs": 2}),
    )
    pd.testing.assert_frame_equal(parallel.folds, result.folds)


@pytest.mark.slow
def test_comparison_table_same_folds_and_permutation_null() -> None:
    X, y, label = _signal_study()
    config = StudyConfig(
        outer_repeats=1, n_boot=50, screen_k=(5,), prescreen_k=30, n_permutations=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, results = compare_feature_sets(X, y, config)
    assert list(table.index) == [
        "clinical",
        "handcrafted",
        "deep",
        "hybrid",
        "permutation null (hybrid, 5 shuffles)",
    ]
    folds = {
        n: r.predictions.sort_values(["fold", "case_id"])[["fold", "case_id"]]
        for n, r in results.items()
        if not n.startswith("permutation")
    }
    for frame in folds.values():
        pd.testing.assert_frame_equal(
            frame.reset_index(drop=True), folds["hybrid"].reset_index(drop=True)
        )
    c = table["harrell_c"]
    assert c["hybrid"] > c["handcrafted"] and c["hybrid"] > c["deep"]
    assert abs(c["clinical"] - 0.5) < 0.1
    assert abs(c["permutation null (hybrid, 5 shuffles)"] - 0.5) < 0.1
    assert table.loc["hybrid", "perm_p"] == pytest.approx(1 / 6)  # beats all 5 shuffles
    assert (table["ci_low"] <= c).all() and (c <= table["ci_high"]).all()
    # paired differences to the clinical set, on the same folds
    assert table.loc["hybrid", "delta"] == pytest.approx(c["hybrid"] - c["clinical"])
    assert table.loc["hybrid", "delta_ci_low"] > 0 and table.loc["hybrid", "delta_p"] < 0.05
    # classification on the same machinery
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, _ = compare_feature_sets(
            X,
            label.to_numpy(),
            StudyConfig(
                outer_repeats=1, n_boot=50, screen_k=(5,), prescreen_k=30, n_permutations=5
            ),
        )
    assert table.loc["hybrid", "auc"] > 0.75
    assert abs(table.loc["permutation null (hybrid, 5 shuffles)", "auc"] - 0.5) < 0.15


def test_design_warnings() -> None:
    X, y = _noise_study(n=30, p=100)
    with pytest.warns(SampleSizeWarning, match="100 features for 30 cases"):
        design_warnings(X, y, "survival", n_model_features=2)
    with pytest.warns(LowEventsPerVariableWarning, match="per variable"):
        design_warnings(X.iloc[:, :20], y, "survival")
    labels = np.array(["a"] * 28 + ["b"] * 2)
    with pytest.warns(ClassImbalanceWarning, match="'b'"):
        design_warnings(X.iloc[:, :5], labels, "classification")


def test_study_config_validation(tmp_path: Path) -> None:
    with pytest.raises(StudyConfigError, match="unknown study key"):
        StudyConfig.from_dict({"modle": "cox"})
    with pytest.raises(StudyConfigError, match="unknown survival model"):
        StudyConfig(model="svm")
    with pytest.raises(StudyConfigError, match="unknown classifier"):
        StudyConfig(classifier="coxnet")
    path = tmp_path / "s.yaml"
    path.write_text("model: xgb_cox\nscreen_k: [5, 10]\nfeature_sets: {both: [rad, deep]}\n")
    cfg = StudyConfig.load(path)
    assert cfg.model == "xgb_cox" and cfg.screen_k == (5, 10)
    assert cfg.hash == StudyConfig.from_dict(cfg.to_dict()).hash


@pytest.mark.slow
def test_cli_evaluate_fit_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y, label = _signal_study(n=100)
    X[[c for c in X.columns if c.startswith("rad")]].to_parquet(tmp_path / "rad.parquet")
    X[[c for c in X.columns if c.startswith("deep")]].to_parquet(tmp_path / "deep.parquet")
    clinical = pd.DataFrame(
        {"age": X["clin__age"], "os": y["time"], "dead": y["event"].astype(int), "idh": label}
    )
    clinical.index.name = "case_id"
    clinical.to_csv(tmp_path / "clinical.csv")
    study = tmp_path / "study.yaml"
    study.write_text("outer_repeats: 1\nn_boot: 30\nscreen_k: [5]\nprescreen_k: 30\n")
    base = [
        str(tmp_path / "rad.parquet"),
        str(tmp_path / "deep.parquet"),
        "--clinical",
        str(tmp_path / "clinical.csv"),
        "--config",
        str(study),
        "--covariates",
        "age",
    ]
    out = tmp_path / "eval"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["evaluate", *base, "--time", "os", "--event", "dead", "--out", str(out)]) == 0
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert "hybrid" in table.index and table.loc["hybrid", "harrell_c"] > 0.6
    for name in ("provenance.json", "comparison.png", "km_hybrid.png", "folds_hybrid.csv"):
        assert (out / name).is_file(), name
    model_dir = tmp_path / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", *base, "--time", "os", "--event", "dead", "--out", str(model_dir)]) == 0
    preds = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                str(model_dir),
                str(tmp_path / "rad.parquet"),
                str(tmp_path / "deep.parquet"),
                "--clinical",
                str(tmp_path / "clinical.csv"),
                "--out",
                str(preds),
            ]
        )
        == 0
    )
    risk = pd.read_csv(preds, index_col=0)["risk"]
    from hybridrad.models.metrics import harrell_c

    assert harrell_c(y, risk.loc[X.index].to_numpy()) > 0.7  # apparent C of the final model
    assert main(["evaluate", *base, "--out", str(out)]) == 2  # neither survival nor label
    assert "--label" in capsys.readouterr().err


def test_clinical_block_is_forced_through_selection() -> None:
    from hybridrad.models.transformers import KeepBlocks

    X, y, _ = _signal_study()
    X["clin__noise"] = np.random.default_rng(5).normal(size=len(X))  # uninformative
    sel = KeepBlocks(UnivariateCoxSelector(k=3)).fit(X, y)
    kept = list(sel.get_feature_names_out())
    assert "clin__age" in kept and "clin__noise" in kept
    assert len(kept) == 5 and {"rad__f00", "deep__d00"} <= set(kept)
    assert list(sel.transform(X).columns) == kept
