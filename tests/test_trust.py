"""Results users can trust: clinical covariates kept, honest CIs, a permutation null.

The acceptance tests of issue 11 ("do no harm", the permutation null, CI coverage) are
simulations with known truth; they are marked ``slow`` and bounded by the number of
fits, not by time.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from sklearn.linear_model import LogisticRegression
from sksurv.util import Surv

from hybridrad.models import StudyConfig, compare_feature_sets
from hybridrad.models.evaluate import (
    CVSettings,
    DegenerateRiskGroupsWarning,
    LowEventsPerVariableWarning,
    bootstrap_fold_metrics,
    nested_cv,
    one_standard_error,
    paired_difference,
)
from hybridrad.models.metrics import harrell_c
from hybridrad.models.pipelines import SURVIVAL_MODELS, StudyConfigError, build_pipeline
from hybridrad.models.survival import PenalizedCox
from hybridrad.models.transformers import KeepBlocks, PenaltyFactor, UnivariateCoxSelector


def _survival(
    seed: int, n: int = 150, p: int = 500, signal: float = 0.0, age_effect: float = 0.08
) -> tuple[pd.DataFrame, np.ndarray]:
    """Age drives the hazard; imaging is noise unless ``signal`` > 0 (two features).

    Censoring gives about 40 events in 150 cases.
    """
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    img = rng.normal(size=(n, p))
    lp = age_effect * (age - 60) + signal * (img[:, 0] - 0.7 * img[:, 1])
    t = rng.exponential(np.exp(-lp) * 60)
    c = rng.uniform(1, 40, n)
    X = pd.DataFrame(img, columns=[f"rad__f{i:03d}" for i in range(p)])
    X["clin__age"] = age
    X.index = pd.Index([f"c{i:03d}" for i in range(n)], name="case_id")
    return X, Surv.from_arrays(t <= c, np.minimum(t, c))


def _labels(
    seed: int, n: int = 150, p: int = 500, signal: float = 0.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Age drives the log-odds; imaging is noise unless ``signal`` > 0."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    img = rng.normal(size=(n, p))
    lp = 0.08 * (age - 60) + signal * (img[:, 0] - 0.7 * img[:, 1]) - 0.8
    positive = rng.random(n) < 1 / (1 + np.exp(-lp))
    X = pd.DataFrame(img, columns=[f"rad__f{i:03d}" for i in range(p)])
    X["clin__age"] = age
    X.index = pd.Index([f"c{i:03d}" for i in range(n)], name="case_id")
    return X, positive.astype(int)


TWO_SETS = {"clinical": ("clin",), "hybrid": ("rad", "clin")}


def _config(**kw: object) -> StudyConfig:
    base: dict[str, object] = {
        "feature_sets": TWO_SETS,
        "outer_repeats": 1,
        "n_permutations": 0,
        "n_boot": 100,
        "screen_k": (5, 10),
        "prescreen_k": 50,
    }
    base.update(kw)
    return StudyConfig(**base)  # type: ignore[arg-type]


def _delta(X: pd.DataFrame, y: np.ndarray, config: StudyConfig, task: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, _ = compare_feature_sets(X, y, config, task=task)  # type: ignore[arg-type]
    head = "harrell_c" if task == "survival" else "auc"
    assert np.isclose(
        table.loc["hybrid", "delta"], table.loc["hybrid", head] - table.loc["clinical", head]
    )
    return float(table.loc["hybrid", "delta"])


# --- fusion: the clinical block is not shrunk away ----------------------------------------


def test_penalized_cox_leaves_clinical_block_unpenalized() -> None:
    """With a huge penalty on imaging, the unpenalised age coefficient equals the plain
    (unpenalised) lifelines Cox fit of age alone; fully penalised, it would shrink."""
    X, y = _survival(0, n=200, p=3)
    X = X[["clin__age", "rad__f000", "rad__f001"]]
    free = PenalizedCox(penalizer=1e4, unpenalized=("clin",)).fit(X, y)
    df = pd.DataFrame({"age": X["clin__age"], "T": y["time"], "E": y["event"].astype(int)})
    reference = CoxPHFitter().fit(df, "T", "E").params_["age"]
    assert free.coef_["clin__age"] == pytest.approx(reference, rel=0.01)
    assert abs(free.coef_["rad__f000"]) < 1e-4
    shrunk = PenalizedCox(penalizer=1e4).fit(X, y)
    assert abs(shrunk.coef_["clin__age"]) < 0.01 * abs(reference)


def test_penalty_factor_keeps_logistic_clinical_coefficient() -> None:
    """PenaltyFactor (x100) before a strongly penalised logistic model gives the clinical
    column (nearly) its unpenalised coefficient."""
    X, y = _labels(1, n=300, p=2)
    X = (X - X.mean()) / X.std()
    step = PenaltyFactor(factor=100.0).fit(X)
    model = LogisticRegression(C=0.01, max_iter=5000).fit(step.transform(X), y)
    age = model.coef_[0][list(X.columns).index("clin__age")] * 100.0
    reference = LogisticRegression(C=1e6, max_iter=5000).fit(X[["clin__age"]], y).coef_[0][0]
    assert age == pytest.approx(reference, rel=0.02)
    plain = LogisticRegression(C=0.01, max_iter=5000).fit(X, y)
    assert abs(plain.coef_[0][list(X.columns).index("clin__age")]) < 0.5 * abs(reference)


def test_keep_blocks_clinical_only_candidate() -> None:
    X, y = _survival(2, n=60, p=20)
    kept = KeepBlocks(UnivariateCoxSelector(k=3), others=False).fit(X, y)
    assert kept.get_feature_names_out().tolist() == ["clin__age"]
    with pytest.raises(ValueError, match="none of them"):
        KeepBlocks(UnivariateCoxSelector(k=3), others=False).fit(X.drop(columns="clin__age"), y)


def test_grid_holds_clinical_fallback_only_for_mixed_sets() -> None:
    config = StudyConfig()
    _, grid = build_pipeline(config, "survival", ("rad", "clin"), n_features=50)
    assert grid[0]["screen__others"] == [False]
    _, grid = build_pipeline(config, "survival", ("rad",), n_features=50)
    assert all("screen__others" not in g for g in grid)
    _, grid = build_pipeline(
        StudyConfig(clinical_fallback=False), "survival", ("rad", "clin"), n_features=50
    )
    assert all("screen__others" not in g for g in grid)


def test_one_standard_error_prefers_the_simplest_close_candidate() -> None:
    results = {
        "params": [
            {"screen__others": False, "model__penalizer": 0.1},
            {"screen__others": True, "screen__selector__k": 10, "model__penalizer": 0.1},
            {"screen__others": True, "screen__selector__k": 10, "model__penalizer": 1.0},
        ],
        "mean_test_score": np.array([0.70, 0.72, 0.71]),
        "std_test_score": np.array([0.05, 0.05, 0.05]),
        "split0_test_score": [0] * 3,
        "split1_test_score": [0] * 3,
        "split2_test_score": [0] * 3,
    }
    assert one_standard_error(results) == 0  # within 0.05/sqrt(3) of the best
    results["mean_test_score"] = np.array([0.60, 0.72, 0.71])
    assert one_standard_error(results) == 1  # imaging clearly better: its best candidate


def test_seed_reaches_every_estimator() -> None:
    for model in SURVIVAL_MODELS:
        pipe, _ = build_pipeline(StudyConfig(model=model, seed=7), "survival", ("rad",), 10)
        est = pipe.named_steps["model"]
        if "random_state" in est.get_params():
            assert est.get_params()["random_state"] == 7, model
    for model in ("logistic", "xgb"):
        pipe, _ = build_pipeline(
            StudyConfig(classifier=model, seed=7), "classification", ("rad",), 10
        )
        assert pipe.named_steps["model"].get_params()["random_state"] == 7, model


@pytest.mark.slow
def test_logistic_results_are_reproducible() -> None:
    X, y = _labels(3, n=80, p=30)
    config = _config(n_boot=20, screen_k=(3,), prescreen_k=10)
    a, _ = compare_feature_sets(X, y, config, task="classification")
    b, _ = compare_feature_sets(X, y, config, task="classification")
    pd.testing.assert_frame_equal(a, b)


def test_study_config_defaults_equal_shipped_default_and_types_are_checked() -> None:
    assert StudyConfig.load("default") == StudyConfig()
    assert StudyConfig.load(None) == StudyConfig()
    with pytest.raises(StudyConfigError, match=r"'screen_k'.*list of integers"):
        StudyConfig.from_dict({"screen_k": "ten"})
    with pytest.raises(StudyConfigError, match=r"'combat'.*bool"):
        StudyConfig.from_dict({"combat": "yes"})
    with pytest.raises(StudyConfigError, match="set it as `classifier`"):
        StudyConfig(model="logistic")
    with pytest.raises(StudyConfigError, match="neither a shipped study"):
        StudyConfig.load("no-such-study")


# --- honest uncertainty -------------------------------------------------------------------


def test_bootstrap_resamples_are_shared_and_row_zero_is_the_sample() -> None:
    X, y = _survival(4, n=60, p=5)
    risk = X["rad__f000"].to_numpy()
    folds = [(np.arange(0, 30), risk[:30]), (np.arange(30, 60), risk[30:])]
    boot = bootstrap_fold_metrics(folds, y, "survival", n_boot=50, seed=3)
    assert boot.shape == (51, 2)
    assert boot[0, 0] == pytest.approx(harrell_c(y[:30], risk[:30]))
    again = bootstrap_fold_metrics(folds, y, "survival", n_boot=50, seed=3)
    np.testing.assert_array_equal(boot, again)
    assert boot[1:, 0].std() > 0


@pytest.mark.slow
def test_paired_difference_of_a_set_with_itself_is_zero() -> None:
    X, y = _survival(5, n=80, p=20)
    config = _config(n_boot=30, screen_k=(3,), prescreen_k=10)
    pipe, grid = build_pipeline(config, "survival", ("rad", "clin"), 21)
    settings = config.cv_settings()
    a = nested_cv(pipe, X, y, param_grid=grid, settings=settings)
    b = nested_cv(pipe, X, y, param_grid=grid, settings=settings)
    diff = paired_difference(a, b)
    assert diff["delta"] == 0.0
    assert diff["delta_ci_low"] == 0.0 and diff["delta_ci_high"] == 0.0
    assert diff["delta_p"] == 1.0
    other = nested_cv(pipe, X, y, param_grid=grid, settings=CVSettings(random_state=1))
    with pytest.raises(ValueError, match="do not share"):
        paired_difference(a, other)


@pytest.mark.slow
def test_ci_includes_training_variability() -> None:
    """With several repeats the CI is wider than the bootstrap alone: SD between repeats
    is added to the bootstrap SE, as CI_METHOD says."""
    X, y = _survival(6, n=90, p=20, signal=0.8)
    config = _config(feature_sets={"hybrid": ("rad", "clin")}, outer_repeats=3, n_boot=50)
    table, results = compare_feature_sets(X, y, config)
    res = results["hybrid"]
    s = res.summary.loc["harrell_c"]
    boot_se = np.nanmean(res.boot[1:], axis=1).std(ddof=1)
    reps = res.folds.groupby("repeat")["harrell_c"].mean().std(ddof=1)
    assert s["se"] == pytest.approx(np.hypot(boot_se, reps))
    assert s["ci_high"] - s["ci_low"] == pytest.approx(2 * 1.96 * s["se"])
    assert "SD_repeats" in table.attrs["ci_method"]


# --- guards -------------------------------------------------------------------------------


def test_events_per_variable_counted_per_feature_set(caplog: pytest.LogCaptureFixture) -> None:
    X, y = _survival(7, n=60, p=300)
    config = _config(screen_k=(3,), prescreen_k=10, n_boot=10)
    with caplog.at_level(logging.INFO, logger="hybridrad"):
        with pytest.warns(LowEventsPerVariableWarning) as record:
            compare_feature_sets(X, y, config)
    messages = [str(w.message) for w in record if w.category is LowEventsPerVariableWarning]
    clinical = [m for m in messages if m.startswith("clinical:") and "up to" in m]
    hybrid = [m for m in messages if m.startswith("hybrid:") and "up to" in m]
    assert not clinical or "up to 1 model" in clinical[0]  # 1 variable, not 301
    assert hybrid and "up to 4 model variables" in hybrid[0]  # 3 screened + age
    assert len([m for m in messages if m.startswith("hybrid:")]) == 1  # said once
    progress = [r.getMessage() for r in caplog.records if "outer fold" in r.getMessage()]
    assert "hybrid: outer fold 5/5 done" in progress[-1]


def test_degenerate_risk_groups_are_flagged() -> None:
    """A model whose high-risk group holds every event (or none) has an infinite HR CI."""
    rng = np.random.default_rng(8)
    n = 40
    x = rng.normal(size=n)
    event = x > 0  # every event in the high half, none in the low half
    y = Surv.from_arrays(event, rng.uniform(1, 10, n))
    X = pd.DataFrame({"rad__x": x}, index=pd.Index([f"c{i}" for i in range(n)]))
    config = _config(feature_sets={"rad": ("rad",)}, screen_k=(1,), prescreen_k=1, n_boot=10)
    with pytest.warns(DegenerateRiskGroupsWarning):
        table, results = compare_feature_sets(X, y, config)
    assert bool(table.loc["rad", "risk_groups_degenerate"])
    assert results["rad"].risk_groups["degenerate"].all()


def test_combat_runs_inside_the_folds_and_removes_a_site_shift() -> None:
    """A strong site shift on the prognostic feature hides it; ComBat (fitted inside each
    training fold, with missing values) recovers it."""
    rng = np.random.default_rng(9)
    n = 160
    site = np.repeat(["A", "B"], n // 2)
    rng.shuffle(site)
    f = rng.normal(size=n)
    t = rng.exponential(np.exp(-1.0 * f) * 20)
    c = rng.uniform(5, 40, n)
    y = Surv.from_arrays(t <= c, np.minimum(t, c))
    noise = rng.normal(size=(n, 9))
    X = pd.DataFrame(noise, columns=[f"rad__n{i}" for i in range(9)])
    X["rad__f"] = f + 4.0 * (site == "B")
    X.loc[X.index[:5], "rad__n0"] = np.nan
    X["clin__age"] = rng.normal(60, 10, n)
    X["site"] = site
    X.index = pd.Index([f"c{i:03d}" for i in range(n)], name="case_id")
    sets = {"hybrid": ("rad", "clin")}
    base = _config(feature_sets=sets, screen_k=(2,), prescreen_k=10, n_boot=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, _ = compare_feature_sets(X.drop(columns="site"), y, base)
        harmonised, results = compare_feature_sets(
            X, y, _config(**{**base.to_dict(), "combat": True})
        )  # type: ignore[arg-type]
    assert harmonised.loc["hybrid", "harrell_c"] > plain.loc["hybrid", "harrell_c"] + 0.08
    assert "combat" in results["hybrid"].settings["estimator"]


def test_combat_without_site_column_is_a_clear_error() -> None:
    X, y = _survival(10, n=40, p=5)
    with pytest.raises(StudyConfigError, match="'site' column"):
        compare_feature_sets(X, y, _config(combat=True))


# --- acceptance: do no harm, permutation null, CI coverage (slow) ---------------------------


@pytest.mark.slow
def test_do_no_harm_survival() -> None:
    """Survival depends on age only, 500 imaging features are noise: the default hybrid's C
    is within 0.01 of clinical-only (mean over 5 seeds). Measured 2026-12-04: -0.004."""
    deltas = [_delta(*_survival(seed), _config(), "survival") for seed in range(5)]
    assert abs(np.mean(deltas)) <= 0.01, deltas


@pytest.mark.slow
def test_imaging_signal_survival_beats_clinical() -> None:
    """Two imaging features carry signal (log-HR 1.0 and -0.7 per SD): the hybrid beats
    clinical-only clearly. Measured 2026-12-04: mean +0.048."""
    deltas = [_delta(*_survival(seed, signal=1.0), _config(), "survival") for seed in range(5)]
    assert np.mean(deltas) > 0.03, deltas


@pytest.mark.slow
def test_do_no_harm_classification() -> None:
    deltas = [_delta(*_labels(seed), _config(), "classification") for seed in range(5)]
    assert abs(np.mean(deltas)) <= 0.01, deltas


@pytest.mark.slow
def test_imaging_signal_classification_beats_clinical() -> None:
    deltas = [_delta(*_labels(seed, signal=2.0), _config(), "classification") for seed in range(5)]
    assert np.mean(deltas) > 0.03, deltas


@pytest.mark.slow
def test_permutation_test_is_a_null() -> None:
    """Over 20 pure-noise data sets, at most 15 % have p < 0.05 (expected 1/21).
    Measured 2026-12-04: 2 of 20 (both p = 1/21)."""
    config = StudyConfig(
        feature_sets={"rad": ("rad",)},
        covariates=(),
        outer_splits=3,
        outer_repeats=1,
        inner_splits=2,
        n_boot=0,
        n_permutations=20,
        screen_k=(3,),
        prescreen_k=10,
    )
    ps = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        n = 60
        X = pd.DataFrame(rng.normal(size=(n, 10)), columns=[f"rad__f{i}" for i in range(10)])
        X.index = pd.Index([f"c{i}" for i in range(n)], name="case_id")
        y = Surv.from_arrays(rng.random(n) < 0.6, rng.exponential(10, n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, _ = compare_feature_sets(X, y, config)
        ps.append(float(table.loc["rad", "perm_p"]))
    assert min(ps) >= 1 / 21
    assert np.mean(np.array(ps) < 0.05) <= 0.15, ps


@pytest.mark.slow
def test_ci_covers_the_true_c_index() -> None:
    """40 simulated cohorts of 150; the truth is the C-index, on 20,000 independent cases,
    of the model the pipeline fits on all 150. The 95 % CI covers it >= 85 % of the time.
    Measured 2026-12-04: 38 of 40."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from hybridrad.models.metrics import survival_scorer

    def simulate(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
        img = rng.normal(size=(n, 20))
        lp = 0.5 * img[:, 0] - 0.4 * img[:, 1] + 0.3 * img[:, 2]
        t = rng.exponential(np.exp(-lp) * 30)
        c = rng.uniform(5, 60, n)
        X = pd.DataFrame(img, columns=[f"rad__f{i:03d}" for i in range(20)])
        X.index = pd.Index([f"c{i:05d}" for i in range(n)], name="case_id")
        return X, Surv.from_arrays(t <= c, np.minimum(t, c))

    config = StudyConfig(
        feature_sets={"rad": ("rad",)},
        covariates=(),
        n_permutations=0,
        screen_k=(5,),
        prescreen_k=20,
    )
    X_big, y_big = simulate(np.random.default_rng(12345), 20000)
    hits = 0
    for r in range(40):
        X, y = simulate(np.random.default_rng(r), 150)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, _ = compare_feature_sets(X, y, config)
            pipe, grid = build_pipeline(config, "survival", ("rad",), n_features=20)
            cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y["event"]))
            search = GridSearchCV(
                pipe, grid, cv=cv, scoring=survival_scorer("harrell"), refit=one_standard_error
            ).fit(X, y)
        truth = harrell_c(y_big, search.predict(X_big))
        hits += bool(table.loc["rad", "ci_low"] <= truth <= table.loc["rad", "ci_high"])
    assert hits / 40 >= 0.85, hits


@pytest.mark.slow
def test_cli_evaluate_speaks_once_and_shows_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Warnings are summarised once at the end (each distinct message once, with a count);
    progress is shown per outer fold; the interpretation is printed and saved."""
    from hybridrad.cli import main

    X, y = _survival(11, n=60, p=40)
    X.drop(columns="clin__age").to_parquet(tmp_path / "rad.parquet")
    clinical = pd.DataFrame(
        {"age": X["clin__age"], "os": y["time"], "dead": y["event"].astype(int)}, index=X.index
    )
    clinical.to_csv(tmp_path / "clinical.csv")
    study = tmp_path / "study.yaml"
    study.write_text(
        "outer_repeats: 1\nn_boot: 20\nscreen_k: [3]\nprescreen_k: 10\nn_permutations: 3\n"
        "feature_sets: {clinical: [clin], hybrid: [rad, clin]}\n"
    )
    out = tmp_path / "eval"
    argv = ["evaluate", str(tmp_path / "rad.parquet"), "--clinical", str(tmp_path / "clinical.csv")]
    argv += ["--time", "os", "--event", "dead", "--config", str(study), "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "warnings (" in err and "distinct):" in err
    summary = err[err.index("warnings (") :].splitlines()[1:]
    assert len(summary) == len(set(summary))  # each distinct warning once
    assert any("LowEventsPerVariableWarning: hybrid:" in line for line in summary)
    assert "hybrid: outer fold 5/5 done" in err
    assert "hybrid vs clinical:" in captured.out and "permutation p" in captured.out
    assert "cannot support an imaging survival model" in captured.out
    assert (out / "interpretation.txt").read_text().splitlines()[0].startswith("hybrid vs")
