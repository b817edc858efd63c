"""Tests of the leakage-safe feature transformers and of ComBat harmonisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from hybridrad.models.combat import ComBat, combat_estimates
from hybridrad.models.transformers import (
    BlockPCA,
    BlockSelector,
    CorrelationFilter,
    CoxnetSelector,
    ICCFilter,
    NearZeroVarianceFilter,
    UnivariateCoxSelector,
    harrell_c_columns,
    univariate_cox,
)

# --------------------------------------------------------------------------------------
# simulated data
# --------------------------------------------------------------------------------------


def simulate_survival(
    X: np.ndarray, coef: dict[int, float], seed: int, censor_scale: float = 3.0
) -> np.ndarray:
    """Exponential survival times with a linear predictor, independent censoring."""
    rng = np.random.default_rng(seed)
    lp = sum(b * X[:, j] for j, b in coef.items())
    t = rng.exponential(np.exp(-lp))
    c = rng.exponential(censor_scale, size=len(t))
    return Surv.from_arrays(t <= c, np.minimum(t, c))


def make_table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A hybrid feature table (rad, deep, clin blocks) and a survival target."""
    rng = np.random.default_rng(seed)
    rad = rng.normal(size=(n, 10))
    rad[:, 1] = rad[:, 0] + 0.2 * rng.normal(size=n)  # a redundant copy
    deep = rng.normal(size=(n, 8)) @ rng.normal(size=(8, 8))  # correlated deep features
    clin = np.column_stack([rng.normal(60, 10, n), rng.integers(0, 2, n).astype(float)])
    cols = (
        [f"rad__flair__WT__original__f{i:02d}" for i in range(rad.shape[1])]
        + [f"deep__segresnet__enc4__{i:04d}" for i in range(deep.shape[1])]
        + ["clin__age", "clin__sex"]
    )
    X = pd.DataFrame(
        np.hstack([rad, deep, clin]),
        columns=cols,
        index=pd.Index([f"case{i:03d}" for i in range(n)], name="case_id"),
    )
    y = simulate_survival(X.to_numpy(), {0: 1.0, 12: 0.3, 3: -0.7}, seed + 1)
    return X, y


X_TABLE, Y_TABLE = make_table()
RAD_COLS = [c for c in X_TABLE.columns if c.startswith("rad__")]
ICC_TABLE = pd.DataFrame(
    {"icc": np.linspace(0.5, 1.0, len(RAD_COLS)), "n_cases": 10}, index=pd.Index(RAD_COLS)
)


def with_site(X: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """X plus a site column with additive and multiplicative site effects."""
    sites = np.array(["A", "B", "C"])[np.arange(len(X)) % 3]
    shift = pd.Series({"A": 0.0, "B": 1.0, "C": -1.0})[sites].to_numpy()
    scale = pd.Series({"A": 1.0, "B": 1.5, "C": 0.7})[sites].to_numpy()
    out = X.copy()
    feats = [c for c in X.columns if not c.startswith("clin__")]
    out[feats] = X[feats].to_numpy() * scale[:, None] + shift[:, None]
    out["site"] = sites
    return out


# --------------------------------------------------------------------------------------
# the contract every transformer honours
# --------------------------------------------------------------------------------------

# id, factory, needs site column, grid parameter, grid values
SPECS: list[tuple[str, Callable[[], BaseEstimator], bool, str, list[Any]]] = [
    (
        "block",
        lambda: BlockSelector(blocks=("rad", "deep")),
        False,
        "blocks",
        [("rad",), ("rad", "deep")],
    ),
    ("nzv", lambda: NearZeroVarianceFilter(), False, "freq_ratio", [19.0, 5.0]),
    ("corr", lambda: CorrelationFilter(threshold=0.8), False, "threshold", [0.8, 0.95]),
    ("icc", lambda: ICCFilter(ICC_TABLE, threshold=0.7), False, "threshold", [0.6, 0.8]),
    ("ucox", lambda: UnivariateCoxSelector(k=5), False, "k", [3, 5]),
    ("coxnet", lambda: CoxnetSelector(max_features=5), False, "max_features", [3, 5]),
    ("pca", lambda: BlockPCA(n_components=3), False, "n_components", [2, 0.9]),
    ("combat", lambda: ComBat(blocks=("rad", "deep")), True, "mean_only", [False, True]),
]
IDS = [s[0] for s in SPECS]


def _data(needs_site: bool) -> tuple[pd.DataFrame, np.ndarray]:
    return (with_site(X_TABLE), Y_TABLE) if needs_site else (X_TABLE, Y_TABLE)


def _params_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, va in a.items():
        vb = b[key]
        if isinstance(va, pd.DataFrame | pd.Series):
            if not va.equals(vb):
                return False
        elif va != vb:
            return False
    return True


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_clone_and_params_round_trip(spec: tuple[Any, ...]) -> None:
    _, factory, *_ = spec
    est = factory()
    params = est.get_params()
    twin = clone(est)
    assert type(twin) is type(est)
    assert _params_equal(twin.get_params(), params)
    rebuilt = type(est)(**params)
    assert _params_equal(rebuilt.get_params(), params)
    assert est.set_params(**params) is est
    # __init__ stores, fit validates: nothing fitted yet
    assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_not_fitted_raises(spec: tuple[Any, ...]) -> None:
    _, factory, needs_site, *_ = spec
    X, _ = _data(needs_site)
    with pytest.raises(NotFittedError):
        factory().transform(X)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_pandas_in_pandas_out_and_names(spec: tuple[Any, ...]) -> None:
    _, factory, needs_site, *_ = spec
    X, y = _data(needs_site)
    before = X.copy()
    est = factory().fit(X, y)
    pd.testing.assert_frame_equal(X, before)  # fit does not modify its input
    out = est.transform(X)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(X.index)
    assert list(out.columns) == list(est.get_feature_names_out())
    assert list(est.get_feature_names_out(X.columns)) == list(out.columns)
    assert est.n_features_in_ == X.shape[1]
    assert list(est.feature_names_in_) == list(X.columns)
    # fit_transform agrees with fit + transform
    pd.testing.assert_frame_equal(clone(est).fit_transform(X, y), out)
    # set_output(transform="pandas") gives the same frame
    pd.testing.assert_frame_equal(
        clone(est).set_output(transform="pandas").fit(X, y).transform(X), out
    )


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_pipeline_with_scaler(spec: tuple[Any, ...]) -> None:
    _, factory, needs_site, *_ = spec
    X, y = _data(needs_site)
    steps = [("est", factory()), ("scale", StandardScaler())]
    if not needs_site:
        steps = steps[::-1]
    pipe = Pipeline(steps).set_output(transform="pandas")
    out = pipe.fit_transform(X, y)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(pipe.get_feature_names_out())
    assert out.index.equals(X.index)
    assert np.isfinite(out.to_numpy(dtype=float)).all()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_grid_search(spec: tuple[Any, ...]) -> None:
    _, factory, needs_site, param, values = spec
    X, y = _data(needs_site)
    steps = [("est", factory()), ("scale", StandardScaler())]
    if not needs_site:
        steps = steps[::-1]
    pipe = Pipeline([*steps, ("cox", CoxPHSurvivalAnalysis(alpha=1.0))]).set_output(
        transform="pandas"
    )
    search = GridSearchCV(pipe, {f"est__{param}": values}, cv=3, error_score="raise")
    search.fit(X, y)
    assert search.best_params_[f"est__{param}"] in values
    assert len(search.cv_results_["mean_test_score"]) == len(values)
    assert 0.0 <= search.score(X, y) <= 1.0


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_fit_on_train_only(spec: tuple[Any, ...]) -> None:
    """transform never learns from its input: columns are fixed by fit, rows independent."""
    _, factory, needs_site, *_ = spec
    X, y = _data(needs_site)
    train, test = X.iloc[:80], X.iloc[80:]
    est = factory().fit(train, y[:80])
    fitted = {k: v for k, v in vars(est).items() if k.endswith("_")}
    out_test = est.transform(test)
    # any other data with the same columns: same output columns
    rng = np.random.default_rng(5)
    other = test.copy()
    numeric = [c for c in test.columns if c != "site"]
    other[numeric] = rng.normal(size=(len(test), len(numeric))) * 10 + 3
    out_other = est.transform(other)
    assert list(out_other.columns) == list(out_test.columns) == list(est.get_feature_names_out())
    # each row is transformed on its own: a subset gives the same rows
    pd.testing.assert_frame_equal(est.transform(test.iloc[:7]), out_test.iloc[:7])
    pd.testing.assert_frame_equal(est.transform(test.iloc[::-1]), out_test.iloc[::-1])
    # transform changed no fitted state
    for key, value in fitted.items():
        now = getattr(est, key)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(now, value)
        elif isinstance(value, pd.Series | pd.DataFrame):
            assert now.equals(value)
    # refitting on the same training data is deterministic
    pd.testing.assert_frame_equal(clone(est).fit(train, y[:80]).transform(test), out_test)


@pytest.mark.parametrize(
    "spec",
    [s for s in SPECS if s[0] in {"nzv", "corr", "ucox", "coxnet"}],
    ids=["nzv", "corr", "ucox", "coxnet"],
)
def test_numpy_in_numpy_out(spec: tuple[Any, ...]) -> None:
    _, factory, _, *_ = spec
    est = factory().fit(X_TABLE.to_numpy(), Y_TABLE)
    out = est.transform(X_TABLE.to_numpy())
    assert isinstance(out, np.ndarray)
    assert out.shape[1] == len(est.get_feature_names_out())
    assert all(name.startswith("x") for name in est.get_feature_names_out())


def test_selectors_accept_imputer_pandas_output() -> None:
    from sklearn.impute import SimpleImputer

    X = X_TABLE.copy()
    X.iloc[::7, 2] = np.nan
    pipe = Pipeline(
        [
            ("impute", SimpleImputer()),
            ("scale", StandardScaler()),
            ("nzv", NearZeroVarianceFilter()),
            ("corr", CorrelationFilter(threshold=0.9)),
            ("pca", BlockPCA(n_components=0.9)),
            ("cox", UnivariateCoxSelector(k=6)),
        ]
    ).set_output(transform="pandas")
    out = pipe.fit_transform(X, Y_TABLE)
    assert out.shape == (len(X), 6)
    assert list(out.columns) == list(pipe.get_feature_names_out())


# --------------------------------------------------------------------------------------
# BlockSelector
# --------------------------------------------------------------------------------------


def test_block_selector_keeps_blocks() -> None:
    X = with_site(X_TABLE)
    out = BlockSelector().fit_transform(X)
    assert "site" not in out.columns
    assert list(out.columns) == list(X_TABLE.columns)
    only_clin = BlockSelector(blocks="clin").fit_transform(X)
    assert list(only_clin.columns) == ["clin__age", "clin__sex"]
    deep = BlockSelector(blocks=["deep"]).fit(X).get_support(indices=True)
    assert all(X.columns[i].startswith("deep__") for i in deep)


def test_block_selector_errors() -> None:
    with pytest.raises(ValueError, match="no column belongs"):
        BlockSelector(blocks="radiomics").fit(X_TABLE)
    with pytest.raises(ValueError, match="DataFrame"):
        BlockSelector().fit(X_TABLE.to_numpy())
    with pytest.raises(ValueError, match="blocks"):
        BlockSelector(blocks=()).fit(X_TABLE)


# --------------------------------------------------------------------------------------
# NearZeroVarianceFilter
# --------------------------------------------------------------------------------------


def test_nzv_drops_constant_and_near_constant() -> None:
    n = 100
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "rad__constant": np.full(n, 3.0),
            "rad__near_constant": np.r_[np.zeros(98), 1.0, 1.0],  # ratio 49, 2% unique
            "rad__rare_levels": np.r_[np.zeros(95), 1, 2, 3, 4, 5],  # ratio 95, 6% unique
            "rad__binary": np.tile([0.0, 1.0], n // 2),  # ratio 1
            "rad__zero_inflated": np.r_[np.zeros(85), np.arange(1.0, 16.0)],  # 16% unique
            "rad__continuous": rng.normal(size=n),
            "rad__all_nan": np.full(n, np.nan),
            "rad__nan_constant": np.r_[np.full(50, np.nan), np.ones(50)],
        }
    )
    nzv = NearZeroVarianceFilter().fit(X)
    kept = list(nzv.get_feature_names_out())
    assert kept == ["rad__binary", "rad__zero_inflated", "rad__continuous"]
    ratios = pd.Series(nzv.freq_ratios_, index=X.columns)
    assert ratios["rad__near_constant"] == pytest.approx(49.0)
    assert ratios["rad__rare_levels"] == pytest.approx(95.0)
    assert ratios["rad__binary"] == pytest.approx(1.0)
    assert pd.Series(nzv.unique_fractions_, index=X.columns)["rad__zero_inflated"] == pytest.approx(
        0.16
    )
    assert list(X.columns[nzv.zero_variance_]) == [
        "rad__constant",
        "rad__all_nan",
        "rad__nan_constant",
    ]
    # NaN in transform passes through untouched
    out = nzv.transform(X)
    assert out.shape == (n, 3)
    # looser cut-offs keep the near-constant features
    loose = NearZeroVarianceFilter(freq_ratio=100.0).fit(X)
    assert "rad__near_constant" in loose.get_feature_names_out()
    with pytest.raises(ValueError, match="freq_ratio"):
        NearZeroVarianceFilter(freq_ratio=0.5).fit(X)
    with pytest.raises(ValueError, match="unique_fraction"):
        NearZeroVarianceFilter(unique_fraction=2.0).fit(X)


# --------------------------------------------------------------------------------------
# CorrelationFilter
# --------------------------------------------------------------------------------------


def test_harrell_c_columns_matches_sksurv() -> None:
    rng = np.random.default_rng(1)
    n = 150
    X = rng.normal(size=(n, 6))
    X[:, 4] = np.round(X[:, 4])  # tied scores
    X[:, 5] = X[:, 0] > 0  # a binary score
    y = simulate_survival(X, {0: 1.0}, 2)
    time = np.round(y["time"], 1)  # tied times, events and censored
    ours = harrell_c_columns(X, y["event"], time)
    ref = [concordance_index_censored(y["event"], time, X[:, j])[0] for j in range(X.shape[1])]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def _correlated_pair(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    good = rng.normal(size=n)
    copy = good + 0.3 * rng.normal(size=n)  # r ~ 0.96, but noisier
    noise = rng.normal(size=(n, 3))
    X = pd.DataFrame(
        np.column_stack([copy, good, noise]),
        columns=["rad__copy", "rad__good", "rad__n0", "rad__n1", "rad__n2"],
    )
    return X, good


def test_correlation_filter_keeps_more_prognostic_survival() -> None:
    X, good = _correlated_pair()
    y = simulate_survival(good[:, None], {0: 1.2}, 3)
    cf = CorrelationFilter(threshold=0.9).fit(X, y)
    assert list(cf.get_feature_names_out()) == ["rad__good", "rad__n0", "rad__n1", "rad__n2"]
    assert cf.representative_[0] == "rad__good"
    assert cf.scores_[1] > cf.scores_[0]
    assert np.isnan(cf.scores_[2:]).all()  # never in competition
    # pearson gives the same decision here
    assert list(CorrelationFilter(0.9, method="pearson").fit(X, y).get_feature_names_out()) == list(
        cf.get_feature_names_out()
    )
    # unsupervised: the higher-variance member (the copy) wins
    assert "rad__copy" in CorrelationFilter(threshold=0.9).fit(X).get_feature_names_out()


def test_correlation_filter_keeps_more_informative_for_labels() -> None:
    X, good = _correlated_pair(seed=4)
    labels = np.where(good + 0.3 * np.random.default_rng(5).normal(size=len(good)) > 0, "mut", "wt")
    cf = CorrelationFilter(threshold=0.9).fit(X, labels)
    assert "rad__good" in cf.get_feature_names_out()
    assert "rad__copy" not in cf.get_feature_names_out()
    multiclass = np.digitize(good, [-0.5, 0.5])
    assert "rad__good" in CorrelationFilter(0.9).fit(X, multiclass).get_feature_names_out()


def test_correlation_filter_leaves_no_pair_above_threshold() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(200, 10))
    X = np.hstack([base + s * rng.normal(size=base.shape) for s in (0.1, 0.3, 0.6, 1.0)])
    y = simulate_survival(base, {0: 1.0, 1: -0.5}, 8)
    for method in ("spearman", "pearson"):
        cf = CorrelationFilter(threshold=0.7, method=method).fit(X, y)
        kept = X[:, cf.support_]
        r = pd.DataFrame(kept).corr(method=method).abs().to_numpy()
        np.fill_diagonal(r, 0.0)
        assert r.max() <= 0.7 + 1e-12
        # every dropped feature is represented by a kept, correlated one
        full = pd.DataFrame(X).corr(method=method).abs().to_numpy()
        rep = cf.representative_.astype(str)
        for j in np.flatnonzero(~cf.support_):
            i = int(rep[j][1:])
            assert cf.support_[i] and full[i, j] > 0.7


def test_correlation_filter_at_scale() -> None:
    """500 x 2000 with 1000 redundant pairs (speed: benchmarks/selection_speed.py)."""
    rng = np.random.default_rng(0)
    n, p = 500, 2000
    X = rng.normal(size=(n, p))
    X[:, p // 2 :] = X[:, : p // 2] + 0.2 * rng.normal(size=(n, p // 2))
    y = simulate_survival(X, {0: 1.0}, 1)
    cf = CorrelationFilter(threshold=0.9).fit(X, y)
    assert cf.support_.sum() == p // 2


# --------------------------------------------------------------------------------------
# ICCFilter
# --------------------------------------------------------------------------------------


def test_icc_filter_table_forms_and_missing_policy() -> None:
    X = pd.DataFrame(np.zeros((3, 4)), columns=["rad__a", "rad__b", "rad__c", "deep__x"])
    series = pd.Series({"rad__a": 0.9, "rad__b": 0.75, "rad__c": 0.5})
    assert list(ICCFilter(series).fit_transform(X).columns) == ["rad__a", "rad__b", "deep__x"]
    frame = series.rename("icc").to_frame().assign(n_cases=20)
    assert list(ICCFilter(frame, missing="drop").fit_transform(X).columns) == ["rad__a", "rad__b"]
    assert list(ICCFilter(dict(series), threshold=0.8).fit_transform(X).columns) == [
        "rad__a",
        "deep__x",
    ]
    with_nan = pd.Series({"rad__a": 0.9, "rad__b": np.nan, "rad__c": 0.5})
    assert list(ICCFilter(with_nan, missing="drop").fit_transform(X).columns) == ["rad__a"]
    icc = ICCFilter(series).fit(X).icc_
    assert np.isnan(icc["deep__x"]) and icc["rad__a"] == 0.9
    with pytest.raises(ValueError, match="'icc' column"):
        ICCFilter(pd.DataFrame({"value": series})).fit(X)
    with pytest.raises(ValueError, match="missing"):
        ICCFilter(series, missing="ignore").fit(X)  # type: ignore[arg-type]


def test_icc_filter_on_robustness_output() -> None:
    from hybridrad.features.robustness import feature_icc

    rng = np.random.default_rng(0)
    n_cases, n_pert = 20, 4
    truth = rng.normal(size=n_cases)
    perturbed = pd.DataFrame(
        {
            f"p{k}@{name}": truth + rng.normal(scale=scale, size=n_cases)
            for k in range(n_pert)
            for name, scale in (("rad__stable", 0.05), ("rad__unstable", 3.0))
        },
        index=pd.Index([f"case{i}" for i in range(n_cases)], name="case_id"),
    )
    table = feature_icc(perturbed)
    X = pd.DataFrame(np.zeros((2, 2)), columns=["rad__stable", "rad__unstable"])
    assert list(ICCFilter(table, threshold=0.75).fit_transform(X).columns) == ["rad__stable"]


# --------------------------------------------------------------------------------------
# UnivariateCoxSelector / CoxnetSelector
# --------------------------------------------------------------------------------------


def _prognostic_data(
    n: int = 300, p_noise: int = 200, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p_noise + 3)) * rng.uniform(0.5, 20.0, size=p_noise + 3)
    cols = [f"rad__noise{i:03d}" for i in range(p_noise)] + ["rad__t1", "deep__t2", "clin__t3"]
    frame = pd.DataFrame(X, columns=cols)
    Z = (X - X.mean(0)) / X.std(0)
    y = simulate_survival(Z, {p_noise: 0.9, p_noise + 1: -0.8, p_noise + 2: 0.7}, seed + 1)
    return frame, y, cols[-3:]


def test_univariate_cox_recovers_prognostic_features() -> None:
    X, y, truth = _prognostic_data()
    sel = UnivariateCoxSelector(k=3).fit(X, y)
    assert sorted(sel.get_feature_names_out()) == sorted(truth)
    assert list(X.columns[sel.ranking_[:3]]) == list(
        sel.get_feature_names_out()[np.argsort(-sel.scores_[sel.support_])]
    )
    # a Bonferroni threshold keeps exactly the truly prognostic ones
    strict = UnivariateCoxSelector(k="all", p_threshold=0.05, correction="bonferroni").fit(X, y)
    assert sorted(strict.get_feature_names_out()) == sorted(truth)
    assert (strict.pvalues_corrected_ >= strict.pvalues_).all()
    # the score test ranks the same features first
    score = UnivariateCoxSelector(k=3, test="score").fit(X, y)
    assert sorted(score.get_feature_names_out()) == sorted(truth)
    # nothing passes an absurd threshold: the single best is kept
    assert UnivariateCoxSelector(k="all", p_threshold=1e-300).fit(X, y).support_.sum() == 1


def test_univariate_cox_matches_sksurv_and_lifelines() -> None:
    from lifelines import CoxPHFitter

    X, y, _ = _prognostic_data(n=200, p_noise=3, seed=3)
    Xv = X.to_numpy()
    coef, _stat, pvalue = univariate_cox(Xv, y["event"], y["time"])
    for j in range(Xv.shape[1]):
        z = (Xv[:, j] - Xv[:, j].mean()) / Xv[:, j].std()
        ref = CoxPHSurvivalAnalysis().fit(z[:, None], y)
        assert coef[j] == pytest.approx(ref.coef_[0], abs=1e-6)
        df = pd.DataFrame({"x": z, "T": y["time"], "E": y["event"]})
        ll = CoxPHFitter().fit(df, "T", "E")  # Efron = Breslow without tied times
        assert coef[j] == pytest.approx(ll.params_["x"], abs=1e-5)
        assert pvalue[j] == pytest.approx(ll.summary.loc["x", "p"], rel=1e-4, abs=1e-12)
    # tied times: Breslow, like sksurv's default
    yt = Surv.from_arrays(y["event"], np.ceil(y["time"] * 4) / 4)
    coef_t, _, _ = univariate_cox(Xv[:, :2], yt["event"], yt["time"])
    for j in range(2):
        z = (Xv[:, j] - Xv[:, j].mean()) / Xv[:, j].std()
        ref = CoxPHSurvivalAnalysis(ties="breslow").fit(z[:, None], yt)
        assert coef_t[j] == pytest.approx(ref.coef_[0], abs=1e-6)
    # a constant column is harmless
    coef_c, stat_c, p_c = univariate_cox(np.ones((200, 1)), y["event"], y["time"])
    assert coef_c[0] == 0.0 and stat_c[0] == 0.0 and p_c[0] == 1.0


def test_univariate_cox_selector_at_scale() -> None:
    """500 x 2000, three true features (speed: benchmarks/selection_speed.py)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 2000))
    y = simulate_survival(X, {0: 1.0, 1: -1.0, 2: 0.7}, 1)
    sel = UnivariateCoxSelector(k=3).fit(X, y)
    assert sorted(sel.get_support(indices=True)) == [0, 1, 2]


def test_coxnet_selector_recovers_prognostic_features() -> None:
    X, y, truth = _prognostic_data()
    sel = CoxnetSelector(max_features=3).fit(X, y)
    assert sorted(sel.get_feature_names_out()) == sorted(truth)
    assert np.count_nonzero(sel.coef_) == 3
    assert sel.alpha_ in sel.alphas_
    # default: events-per-variable rule
    default = CoxnetSelector().fit(X, y)
    assert 1 <= default.support_.sum() <= max(1, int(y["event"].sum()) // 10)
    assert set(truth) <= set(default.get_feature_names_out())
    # elastic net
    enet = CoxnetSelector(l1_ratio=0.5, max_features=3).fit(X, y)
    assert set(enet.get_feature_names_out()) <= set(X.columns)


def test_coxnet_selector_with_alpha_and_empty_selection() -> None:
    X, y, truth = _prognostic_data()
    strong = CoxnetSelector(alpha=1e3).fit(X, y)  # everything shrunk to zero
    assert strong.support_.sum() == 1
    assert strong.get_feature_names_out()[0] in truth
    assert np.count_nonzero(strong.coef_) == 0
    moderate = CoxnetSelector(alpha=0.1).fit(X, y)
    assert moderate.alpha_ == pytest.approx(0.1)
    assert set(truth) <= set(moderate.get_feature_names_out())
    with pytest.raises(ValueError, match="survival target"):
        CoxnetSelector().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="l1_ratio"):
        CoxnetSelector(l1_ratio=0.0).fit(X, y)


# --------------------------------------------------------------------------------------
# BlockPCA
# --------------------------------------------------------------------------------------


def test_block_pca_explains_requested_variance() -> None:
    X = X_TABLE
    deep = [c for c in X.columns if c.startswith("deep__")]
    for target in (0.8, 0.95):
        bp = BlockPCA(n_components=target).fit(X)
        total = np.cumsum(PCA().fit(X[deep]).explained_variance_ratio_)
        assert bp.explained_variance_ratio_.sum() >= target
        assert bp.n_components_ == int(np.searchsorted(total, target) + 1)
        assert bp.n_components_ == 1 or total[bp.n_components_ - 2] < target
    out = BlockPCA(n_components=3).fit_transform(X)
    assert list(out.columns[-3:]) == ["deep__pca__00", "deep__pca__01", "deep__pca__02"]
    others = [c for c in X.columns if not c.startswith("deep__")]
    pd.testing.assert_frame_equal(out[others], X[others])
    np.testing.assert_allclose(out["deep__pca__00"].mean(), 0.0, atol=1e-10)
    white = BlockPCA(block="rad", n_components=2, whiten=True).fit_transform(X)
    np.testing.assert_allclose(white[["rad__pca__00", "rad__pca__01"]].var(ddof=1), 1.0)
    wide = BlockPCA(block="rad", n_components=10).fit(X).get_feature_names_out()
    assert wide[-1] == "rad__pca__09"
    with pytest.raises(ValueError, match="block 'img'"):
        BlockPCA(block="img").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        BlockPCA(n_components=1.5).fit(X)


# Reference: neuroCombat 0.2.12 (a Python port of R sva::ComBat), run offline on the data
# below; covariates are multiples of 1/4 because neuroCombat casts them to float32.
REF_Y = np.array(
    [
        [0.463, 0.825, -0.203, -0.153, 0.686],
        [0.13, -0.514, 1.395, 0.329, -0.92],
        [0.186, 0.532, -0.193, -0.492, 1.037],
        [0.497, -0.633, -1.144, -0.015, 0.317],
        [-0.5, 0.345, 0.843, -0.407, -1.014],
        [1.406, 1.226, 2.758, -1.532, -0.411],
        [0.711, -0.901, 2.448, 3.17, 0.89],
        [3.994, 2.979, 2.629, 2.223, 3.22],
        [0.182, 3.685, 3.665, -0.602, 3.205],
        [-1.471, 0.387, -1.81, -1.053, -0.403],
        [-0.806, 0.079, -0.343, 0.015, -0.593],
        [-0.348, -0.637, -1.107, -0.621, -0.244],
        [0.435, -1.584, -0.11, -0.361, -0.696],
        [-1.724, -0.366, -1.877, -0.78, -0.339],
        [-2.2, -1.422, -2.026, -1.094, -0.331],
    ]
)
REF_COV = np.array(
    [0.0, 1.25, 1.25, -0.5, -0.25, -0.5, 0.5, 0.0, 0.75, -1.75, 1.5, 0.0, 0.75, -0.25, -0.5]
)
REF_SITE = np.repeat(["s1", "s2", "s3"], 5)
REF_PARAMETRIC = np.array(
    [
        [1.0049408974, 1.4371964966, -0.2680696265, -0.0089669572, 1.0290268630],
        [0.3398754787, -0.8717789233, 2.1857874964, 0.9940732584, -1.2251489426],
        [0.4517183118, 0.9319464607, -0.2527138247, -0.7144247022, 1.5216891966],
        [1.0728454746, -1.0769828628, -1.7130505730, 0.2782105319, 0.5110997943],
        [-0.9183563945, 0.6094831272, 1.3381472387, -0.5375400169, -1.3570870034],
        [0.2323617277, 0.2352285748, 1.0199816500, -1.4746809994, -0.6754410930],
        [-0.1700929400, -0.9958239905, 0.8404469065, 1.2403115706, 0.0777269630],
        [1.7309986774, 1.2498196171, 0.9452720309, 0.6935021355, 1.4265982699],
        [-0.4764217447, 1.6584341499, 1.5452655608, -0.9376875732, 1.4179145491],
        [-1.4336268752, -0.2503629166, -1.6255496669, -1.1981005143, -0.6708097752],
        [0.2022684415, 1.5618986282, 1.2313136136, 1.4321796305, 0.0505151489],
        [0.8497787150, 0.3606749170, -0.0199878302, 0.1670215582, 0.8351217399],
        [1.9567668026, -1.2280944327, 1.6129277974, 0.6842245438, -0.1810449624],
        [-1.0955796612, 0.8153280256, -1.2811162487, -0.1492679598, 0.6215468799],
        [-1.7685379367, -0.9563091797, -1.5251527868, -0.7738900270, 0.6395321312],
    ]
)
REF_NONPARAMETRIC = np.array(
    [
        [1.1865438602, 1.2199416239, -0.0527866487, -0.2786837659, 1.0678668196],
        [0.4309140418, -0.5146633296, 2.1167766448, 0.8020592944, -1.2095419641],
        [0.5579869242, 0.8403753421, -0.0392099072, -1.0387914368, 1.5656068464],
        [1.2636952531, -0.6688216489, -1.3303580250, 0.0307405958, 0.5446016632],
        [-0.9986558850, 0.5981265547, 1.3673405134, -0.8482039677, -1.3428398630],
        [0.1897242937, 0.2600804950, 1.0766624900, -1.5932319210, -0.6796454572],
        [-0.2093457915, -0.9757564583, 0.8984435488, 1.1794453935, 0.0732309206],
        [1.6757579346, 1.2786146648, 1.0025004145, 0.6210180398, 1.4215798525],
        [-0.5130984175, 1.6888172454, 1.5980966178, -1.0448291345, 1.4128994946],
        [-1.4622535984, -0.2273982092, -1.5494798426, -1.3107750019, -0.6750159330],
        [0.5881130930, 1.4582682435, 1.0505691122, 1.4421269622, -0.2751182880],
        [1.2851656745, 0.5092767612, 0.0146606281, 0.6019075737, 0.4451437667],
        [2.4768516382, -0.7458837609, 1.3664940818, 0.9453934873, -0.4876884647],
        [-0.8090359679, 0.8684620848, -1.0293832630, 0.3918527266, 0.2490838951],
        [-1.5334836290, -0.5311678110, -1.2314125354, -0.0229725690, 0.2655942000],
    ]
)
REF_PARAMETRIC_COV = np.array(
    [
        [0.9469080551, 1.3797224957, 0.0524368925, 0.2006324777, 1.0649412071],
        [0.2198087715, -0.5547863076, 1.6505345107, 0.5722105510, -0.8307837448],
        [0.2969273779, 0.8374551777, 0.0568624876, -0.5807674141, 1.3795904938],
        [1.1011376658, -0.4999850969, -0.8896801249, 0.5165628937, 0.6808844812],
        [-0.3255527516, 0.7712913857, 1.1032950230, -0.0950099668, -0.8388000626],
        [-0.0511680818, -0.0771610387, 0.5703781165, -1.7820437969, -1.0461513397],
        [-0.2603447869, -1.2441390266, 0.8547520935, 1.3178143053, -0.0472180887],
        [1.6520289060, 1.0721355377, 0.7287002023, 0.6229730608, 1.3021881461],
        [-0.5314145525, 1.6126921385, 1.7291872569, -0.9204312284, 1.4368030193],
        [-2.0964633180, -0.7703472094, -2.8603768336, -1.7855233743, -1.2810549537],
        [-0.0129086953, 1.5109179929, 0.4259358236, 0.5606566933, -0.2998993532],
        [1.1918149033, 0.6708626437, 0.5426561903, 0.2575660245, 0.9244503774],
        [2.1772410662, -1.2015449021, 1.5825590610, 0.2796227859, -0.1846318438],
        [-0.8860513715, 1.2165345537, -0.5855604250, 0.0887251481, 0.8542396808],
        [-1.5518532531, -0.5688751742, -0.6047992249, -0.4261627770, 0.9684666695],
    ]
)


# --------------------------------------------------------------------------------------
# ComBat
# --------------------------------------------------------------------------------------


def _ref_frame() -> pd.DataFrame:
    frame = pd.DataFrame(REF_Y, columns=[f"rad__f{i}" for i in range(REF_Y.shape[1])])
    frame["site"] = REF_SITE
    frame["clin__x"] = REF_COV
    return frame


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "REF_PARAMETRIC"),
        ({"parametric": False}, "REF_NONPARAMETRIC"),
        ({"covariates": ["clin__x"]}, "REF_PARAMETRIC_COV"),
    ],
    ids=["parametric", "nonparametric", "covariate"],
)
def test_combat_matches_reference_implementation(kwargs: dict[str, Any], expected: str) -> None:
    frame = _ref_frame()
    out = ComBat(blocks=["rad"], **kwargs).fit_transform(frame)
    np.testing.assert_allclose(out.iloc[:, :5].to_numpy(), globals()[expected], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(out["clin__x"], REF_COV)  # not harmonised


def _sites_data(
    n_per_site: tuple[int, ...] = (200, 150, 250),
    p: int = 30,
    seed: int = 0,
    age_shift: tuple[float, ...] | None = None,
    age_effect: float = 0.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with site effects drawn from ComBat's priors (normal / inverse gamma)."""
    rng = np.random.default_rng(seed)
    sites = np.concatenate([[f"S{b}"] * m for b, m in enumerate(n_per_site)])
    codes = np.concatenate([[b] * m for b, m in enumerate(n_per_site)])
    shift = age_shift or (0.0,) * len(n_per_site)
    age = rng.normal(60, 8, len(sites)) + np.asarray(shift)[codes]
    alpha = rng.normal(5, 2, p)
    sigma = rng.uniform(0.5, 2.0, p)
    gamma = rng.normal(0.0, 1.0, (len(n_per_site), p)) * sigma
    delta2 = 1.0 / rng.gamma(8.0, 1.0 / 7.0, (len(n_per_site), p))
    noise = rng.normal(size=(len(sites), p)) * sigma * np.sqrt(delta2[codes])
    Y = alpha + age_effect * (age[:, None] - 60) + gamma[codes] + noise
    frame = pd.DataFrame(Y, columns=[f"rad__f{i:02d}" for i in range(p)])
    frame["site"] = sites
    frame["clin__age"] = age
    return frame, codes


def test_combat_without_eb_equalises_site_moments_exactly() -> None:
    frame, codes = _sites_data()
    feats = [c for c in frame.columns if c.startswith("rad__")]
    cb = ComBat(eb=False, blocks=["rad"]).fit(frame)
    out = cb.transform(frame)[feats].to_numpy()
    Y = frame[feats].to_numpy()
    pooled_mean = Y.mean(axis=0)
    within = np.concatenate([Y[codes == b] - Y[codes == b].mean(axis=0) for b in range(3)])
    pooled_var = (within**2).mean(axis=0)  # sva: residual variance with denominator n
    np.testing.assert_allclose(cb.grand_mean_, pooled_mean, rtol=1e-12)
    np.testing.assert_allclose(cb.var_pooled_, pooled_var, rtol=1e-12)
    for b in range(3):
        np.testing.assert_allclose(out[codes == b].mean(axis=0), pooled_mean, rtol=1e-10)
        np.testing.assert_allclose(out[codes == b].var(axis=0, ddof=1), pooled_var, rtol=1e-10)


@pytest.mark.parametrize("parametric", [True, False])
def test_combat_eb_equalises_site_moments_up_to_shrinkage(parametric: bool) -> None:
    frame, codes = _sites_data()
    feats = [c for c in frame.columns if c.startswith("rad__")]
    Y = frame[feats].to_numpy()
    out = ComBat(parametric=parametric, blocks=["rad"]).fit_transform(frame)[feats].to_numpy()
    sd = Y.std(axis=0)
    before = max(np.abs(Y[codes == b].mean(0) - Y.mean(0)).max() / sd.min() for b in range(3))
    assert before > 0.5  # strong site effects to remove
    cb = ComBat(parametric=parametric, blocks=["rad"]).fit(frame)
    sd = np.sqrt(cb.var_pooled_)
    for b in range(3):
        site = out[codes == b]
        # exactly what is left is the shrinkage: (gamma_hat - gamma*) and delta_hat / delta*
        left_mean = (cb.gamma_hat_[b] - cb.gamma_star_[b]) / np.sqrt(cb.delta_star_[b]) * sd
        np.testing.assert_allclose(site.mean(0), cb.grand_mean_ + left_mean, rtol=1e-10)
        left_var = cb.delta_hat_[b] / cb.delta_star_[b] * cb.var_pooled_
        np.testing.assert_allclose(site.var(0, ddof=1), left_var, rtol=1e-10)
        if parametric:  # and it is small with 150+ cases per site
            assert (np.abs(site.mean(0) - out.mean(0)) / out.std(0)).max() < 0.05
            assert np.all(np.abs(site.var(0, ddof=1) / cb.var_pooled_ - 1.0) < 0.15)


def test_combat_parametric_and_nonparametric_agree_on_gaussian_data() -> None:
    """With priors that hold, both EB flavours give nearly the same site effects.

    The non-parametric posterior is a weighted average of the other features' estimates,
    so it needs many features and differs most for features in the tails of the prior.
    """
    frame, _ = _sites_data(n_per_site=(60, 40, 80), p=300, seed=2)
    feats = [c for c in frame.columns if c.startswith("rad__")]
    par = ComBat(blocks=["rad"]).fit(frame)
    npar = ComBat(parametric=False, blocks=["rad"]).fit(frame)
    assert np.corrcoef(par.gamma_star_.ravel(), npar.gamma_star_.ravel())[0, 1] > 0.995
    assert np.corrcoef(par.delta_star_.ravel(), npar.delta_star_.ravel())[0, 1] > 0.95
    gap = (par.transform(frame)[feats] - npar.transform(frame)[feats]).abs().max()
    relative = gap / frame[feats].std()
    assert relative.median() < 0.1
    assert relative.quantile(0.95) < 0.3


def test_combat_single_feature_is_method_of_moments() -> None:
    frame, codes = _sites_data(n_per_site=(400, 300, 500), p=1, seed=3)
    y = frame["rad__f00"].to_numpy()
    with pytest.warns(UserWarning, match="single feature"):
        cb = ComBat(blocks=["rad"]).fit(frame)
    grand = y.mean()
    site_means = np.array([y[codes == b].mean() for b in range(3)])
    var_pooled = np.mean((y - site_means[codes]) ** 2)
    gamma = (site_means - grand) / np.sqrt(var_pooled)
    delta = np.array([y[codes == b].var(ddof=1) for b in range(3)]) / var_pooled
    np.testing.assert_allclose(cb.gamma_hat_[:, 0], gamma, rtol=1e-10)
    np.testing.assert_allclose(cb.delta_hat_[:, 0], delta, rtol=1e-10)
    np.testing.assert_allclose(cb.gamma_star_[:, 0], gamma, rtol=1e-10)
    np.testing.assert_allclose(cb.delta_star_[:, 0], delta, rtol=1e-10)


def test_combat_eb_estimates_approach_moments_with_large_sites() -> None:
    frame, _ = _sites_data(n_per_site=(3000, 2500, 3500), p=10, seed=4)
    cb = ComBat(blocks=["rad"]).fit(frame)
    np.testing.assert_allclose(cb.gamma_star_, cb.gamma_hat_, atol=2e-3)
    np.testing.assert_allclose(cb.delta_star_, cb.delta_hat_, rtol=2e-2)
    small = ComBat(blocks=["rad"]).fit(_sites_data(n_per_site=(8, 8, 8), p=10, seed=4)[0])
    # with few cases the shrinkage is visible
    assert (
        np.abs(small.gamma_star_ - small.gamma_hat_).max()
        > 10 * np.abs(cb.gamma_star_ - cb.gamma_hat_).max()
    )


def test_combat_preserves_covariate_effects() -> None:
    true_slope = 0.08
    frame, codes = _sites_data(
        n_per_site=(150, 150, 150), p=8, seed=5, age_shift=(-10.0, 0.0, 12.0), age_effect=true_slope
    )
    feats = [c for c in frame.columns if c.startswith("rad__")]
    age = frame["clin__age"].to_numpy()

    def pooled_slope(values: np.ndarray) -> np.ndarray:
        design = np.column_stack([np.ones_like(age), age])
        return np.linalg.lstsq(design, values, rcond=None)[0][1]

    kept = ComBat(covariates=["clin__age"]).fit(frame)
    out = kept.transform(frame)
    np.testing.assert_array_equal(out["clin__age"], age)  # covariates pass through
    np.testing.assert_allclose(kept.beta_covariates_[0], true_slope, atol=0.02)
    np.testing.assert_allclose(pooled_slope(out[feats].to_numpy()), true_slope, atol=0.02)
    # site differences are gone once age is accounted for
    resid = out[feats].to_numpy() - np.outer(age, kept.beta_covariates_[0])
    for b in range(3):
        gap = np.abs(resid[codes == b].mean(0) - resid.mean(0)) / resid.std(0)
        assert gap.max() < 0.1
    # ignoring age attributes the age differences between sites to the sites
    lost = ComBat(blocks=["rad"]).fit_transform(frame)
    assert np.all(pooled_slope(lost[feats].to_numpy()) < 0.5 * true_slope)


def test_combat_fit_then_apply() -> None:
    frame, _codes = _sites_data(n_per_site=(60, 50, 70), p=12, seed=6)
    rng = np.random.default_rng(0)
    is_test = rng.random(len(frame)) < 0.3
    train, test = frame[~is_test], frame[is_test]
    cb = ComBat(covariates=["clin__age"]).fit(train)
    pd.testing.assert_frame_equal(cb.transform(train), clone(cb).fit_transform(train))
    # harmonising test cases uses the training estimates only
    feats = list(cb.harmonized_features_)
    Y = test[feats].to_numpy()
    b = pd.Index(cb.batches_).get_indexer(test["site"])
    stand = cb.grand_mean_ + test[["clin__age"]].to_numpy() @ cb.beta_covariates_
    sd = np.sqrt(cb.var_pooled_)
    expected = ((Y - stand) / sd - cb.gamma_star_[b]) / np.sqrt(cb.delta_star_[b]) * sd + stand
    out = cb.transform(test)
    np.testing.assert_allclose(out[feats].to_numpy(), expected, rtol=1e-12)
    assert list(out.columns) == [c for c in frame.columns if c != "site"]
    # a test set from one site only is fine, and gives the same rows
    one_site = test[test["site"] == "S1"]
    pd.testing.assert_frame_equal(cb.transform(one_site), out[test["site"] == "S1"])
    # the estimates differ from a fit that saw the test cases
    assert not np.allclose(ComBat(covariates=["clin__age"]).fit(frame).gamma_star_, cb.gamma_star_)
    # the standalone estimator agrees with the transformer
    est = combat_estimates(
        train[feats].to_numpy(),
        pd.Index(cb.batches_).get_indexer(train["site"]),
        train[["clin__age"]],
    )
    np.testing.assert_allclose(est["gamma_star"], cb.gamma_star_)


def test_combat_unseen_site_and_input_errors() -> None:
    frame, _ = _sites_data(n_per_site=(20, 20), p=4, seed=7)
    cb = ComBat().fit(frame)
    new = frame.iloc[:3].copy()
    new["site"] = ["S0", "Hospital-X", "S1"]
    with pytest.raises(ValueError, match="Hospital-X"):
        cb.transform(new)
    with pytest.raises(ValueError, match="no site column 'scanner'"):
        ComBat(batch_col="scanner").fit(frame)
    with pytest.raises(TypeError, match="DataFrame"):
        ComBat().fit(frame.drop(columns="site").to_numpy())
    lonely = frame.copy()
    lonely.loc[0, "site"] = "S9"
    with pytest.raises(ValueError, match="S9"):
        ComBat().fit(lonely)
    ComBat(mean_only=True).fit(lonely)  # a single-case site is fine for location only
    with pytest.raises(ValueError, match="at least two sites"):
        ComBat().fit(frame[frame["site"] == "S0"])
    nan = frame.copy()
    nan.iloc[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ComBat().fit(nan)
    confounded = frame.assign(clin__flag=(frame["site"] == "S1").astype(float))
    with pytest.raises(ValueError, match="confounded"):
        ComBat(covariates=["clin__flag"]).fit(confounded)
    with pytest.raises(ValueError, match="covariate"):
        ComBat(covariates=["clin__bmi"]).fit(frame)


def test_combat_constant_feature_and_blocks() -> None:
    frame, _ = _sites_data(n_per_site=(30, 30), p=5, seed=8)
    frame["rad__constant"] = 2.5
    frame["deep__x"] = np.random.default_rng(1).normal(size=len(frame))
    cb = ComBat(blocks=["rad"]).fit(frame)
    out = cb.transform(frame)
    np.testing.assert_array_equal(out["rad__constant"], 2.5)
    assert not cb.adjusted_[list(cb.harmonized_features_).index("rad__constant")]
    np.testing.assert_array_equal(out["deep__x"], frame["deep__x"])  # other block untouched
    np.testing.assert_array_equal(out["clin__age"], frame["clin__age"])
    assert np.isfinite(out.drop(columns=[]).to_numpy(dtype=float)).all()
    integer_sites = frame.assign(site=frame["site"].str[1:].astype(int))
    out_int = ComBat(blocks=["rad"]).fit_transform(integer_sites)
    np.testing.assert_allclose(out_int.to_numpy(dtype=float), out.to_numpy(dtype=float))
