"""Default modelling pipelines, the study configuration and the feature-set comparison.

A pipeline puts every learning step inside the cross-validation folds:
block selection -> (ComBat) -> imputation -> near-zero-variance filter -> scaling ->
(ICC filter) -> univariate pre-screen -> correlation filter -> univariate screening ->
model. Clinical covariates (the ``clin`` block) skip the three selection steps: they are
forced into the model, as in a clinical + imaging signature.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from hybridrad.errors import HybridradError
from hybridrad.models.evaluate import CVSettings, EvaluationResult, Task, infer_task, nested_cv
from hybridrad.models.fusion import blocks as column_blocks
from hybridrad.provenance import config_hash

SURVIVAL_MODELS = ("coxnet", "cox", "xgb_cox", "xgb_aft", "rsf")
CLASSIFIERS = ("logistic", "xgb")


class StudyConfigError(HybridradError, ValueError):
    """A study configuration is invalid (unknown key, bad value)."""


@dataclass(frozen=True)
class StudyConfig:
    """What ``hybridrad evaluate`` / ``fit`` do; loaded from YAML, unknown keys are errors.

    Attributes
    ----------
    model
        Survival: ``cox`` (ridge-penalised Cox, lifelines; the default), ``coxnet``
        (elastic-net Cox, scikit-survival), ``xgb_cox``, ``xgb_aft``, ``rsf``. Classification: ``logistic``
        (elastic-net), ``xgb``.
    feature_sets
        Name -> blocks (``rad``, ``deep``, ``clin``) compared on the same folds.
    covariates
        Clinical columns added as the ``clin`` block.
    screen_k
        Candidate numbers of features kept by univariate screening (tuned inside).
    prescreen_k
        Features kept by a univariate pre-screen before the correlation filter.
    correlation_threshold
        |r| above which features are redundant (Spearman).
    icc_table, icc_threshold
        Optional robustness table (``hybridrad robustness``) and the ICC to keep.
    combat
        Harmonise across ``site`` with ComBat inside the folds.
    negative_control
        Also evaluate the hybrid set with shuffled labels.
    """

    model: str = "cox"
    feature_sets: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "clinical": ("clin",),
            "handcrafted": ("rad",),
            "deep": ("deep",),
            "hybrid": ("rad", "deep", "clin"),
        }
    )
    covariates: tuple[str, ...] = ()
    screen_k: tuple[int, ...] = (10, 30)
    prescreen_k: int = 200
    correlation_threshold: float = 0.9
    icc_table: str | None = None
    icc_threshold: float = 0.75
    combat: bool = False
    negative_control: bool = True
    outer_splits: int = 5
    outer_repeats: int = 3
    inner_splits: int = 3
    seed: int = 0
    n_boot: int = 200
    times: tuple[float, ...] | None = None
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.model not in SURVIVAL_MODELS + CLASSIFIERS:
            raise StudyConfigError(
                f"unknown model {self.model!r}; survival: {SURVIVAL_MODELS}, "
                f"classification: {CLASSIFIERS}"
            )
        if not 0 < self.correlation_threshold <= 1:
            raise StudyConfigError("correlation_threshold must be in (0, 1]")
        if not self.screen_k or min(self.screen_k) < 1:
            raise StudyConfigError("screen_k must list positive integers")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyConfig:
        """Build from a mapping; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudyConfigError(f"unknown study key(s) {unknown}; allowed: {sorted(known)}")
        kw = dict(data)
        for key in ("covariates", "screen_k", "times"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        if "feature_sets" in kw:
            kw["feature_sets"] = {k: tuple(v) for k, v in dict(kw["feature_sets"]).items()}
        return cls(**kw)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> StudyConfig:
        """From a YAML file (``None``: defaults)."""
        if path is None:
            return cls()
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise StudyConfigError(f"{path}: expected a mapping")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as saved beside every output."""
        out = asdict(self)
        out["feature_sets"] = {k: list(v) for k, v in self.feature_sets.items()}
        return out

    @property
    def hash(self) -> str:
        """Hash of the configuration."""
        return config_hash(self.to_dict())

    def cv_settings(self) -> CVSettings:
        """The cross-validation part."""
        return CVSettings(
            outer_splits=self.outer_splits,
            outer_repeats=self.outer_repeats,
            inner_splits=self.inner_splits,
            random_state=self.seed,
            n_boot=self.n_boot,
            times=self.times,
            n_jobs=self.n_jobs,
        )


def build_pipeline(
    config: StudyConfig,
    task: Task,
    blocks: Sequence[str] | None = None,
    n_features: int | None = None,
) -> tuple[Pipeline, dict[str, list[Any]]]:
    """The pipeline and hyper-parameter grid for ``config``.

    ``n_features`` (of the selected blocks) caps the screening grid.
    """
    from sksurv.ensemble import RandomSurvivalForest
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from hybridrad.models.combat import ComBat
    from hybridrad.models.survival import (
        PenalizedCox,
        XGBLabelClassifier,
        XGBSurvivalAFT,
        XGBSurvivalCox,
    )
    from hybridrad.models.transformers import (
        BlockSelector,
        CorrelationFilter,
        ICCFilter,
        KeepBlocks,
        NearZeroVarianceFilter,
        UnivariateCoxSelector,
    )

    if (task == "survival") != (config.model in SURVIVAL_MODELS):
        raise StudyConfigError(
            f"model {config.model!r} does not fit a {task} target; use one of "
            f"{SURVIVAL_MODELS if task == 'survival' else CLASSIFIERS}"
        )
    steps: list[tuple[str, Any]] = []
    if blocks is not None:
        steps.append(("blocks", BlockSelector(tuple(blocks))))
    if config.combat:
        steps.append(("combat", ComBat(batch_col="site")))
    steps += [
        ("impute", SimpleImputer(strategy="median")),
        ("nzv", NearZeroVarianceFilter()),
        ("scale", StandardScaler()),
    ]
    if config.icc_table:
        table = pd.read_csv(config.icc_table, index_col=0)
        steps.append(("icc", ICCFilter(table, threshold=config.icc_threshold)))
    ks = sorted({min(k, n_features) if n_features else k for k in config.screen_k})
    # a cheap univariate pre-screen keeps the quadratic correlation filter affordable on
    # thousands of features; both are fitted inside every training fold
    pre_k = min(config.prescreen_k, n_features) if n_features else config.prescreen_k
    grid: dict[str, list[Any]] = {}
    if task == "survival":
        steps.append(("prescreen", KeepBlocks(UnivariateCoxSelector(k=max(pre_k, ks[-1])))))
        steps.append(("corr", KeepBlocks(CorrelationFilter(config.correlation_threshold))))
        steps.append(("screen", KeepBlocks(UnivariateCoxSelector(k=ks[0]))))
        model: Any
        if config.model == "coxnet":
            model = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.1], fit_baseline_model=True)
            grid["model__alphas"] = [[0.1], [0.3]]
        elif config.model == "cox":
            model = PenalizedCox(penalizer=0.3, l1_ratio=0.0)
            grid["model__penalizer"] = [0.1, 1.0]
        elif config.model == "xgb_cox":
            model = XGBSurvivalCox(n_estimators=200, learning_rate=0.05, max_depth=2)
            grid["model__max_depth"] = [1, 2]
        elif config.model == "xgb_aft":
            model = XGBSurvivalAFT(n_estimators=200, learning_rate=0.05, max_depth=2)
            grid["model__max_depth"] = [1, 2]
        else:
            model = RandomSurvivalForest(
                n_estimators=200, min_samples_leaf=5, random_state=0, n_jobs=1
            )
            grid["model__max_features"] = ["sqrt", 0.3]
    else:
        steps.append(("prescreen", KeepBlocks(SelectKBest(f_classif, k=max(pre_k, ks[-1])))))
        steps.append(("corr", KeepBlocks(CorrelationFilter(config.correlation_threshold))))
        steps.append(("screen", KeepBlocks(SelectKBest(f_classif, k=ks[0]))))
        if config.model == "logistic":
            model = LogisticRegression(solver="saga", l1_ratio=0.5, C=0.3, max_iter=5000)
            grid["model__C"] = [0.1, 1.0]
        else:
            model = XGBLabelClassifier(n_estimators=200, learning_rate=0.05, max_depth=2)
            grid["model__max_depth"] = [1, 2]
    if len(ks) > 1:
        grid["screen__selector__k"] = ks
    steps.append(("model", model))
    return Pipeline(steps).set_output(transform="pandas"), grid


def compare_feature_sets(
    X: pd.DataFrame,
    y: Any,
    config: StudyConfig | None = None,
    *,
    task: Task | None = None,
) -> tuple[pd.DataFrame, dict[str, EvaluationResult]]:
    """The central comparison: each feature set of ``config`` on the same outer folds,
    plus a negative control (the widest set with shuffled labels).

    Returns the comparison table (a row per set with the headline metric and its CI,
    the other metrics, and for survival the risk-group log-rank p and hazard ratio of
    the first repeat) and the full result of every set.
    """
    config = config or StudyConfig()
    task = task or infer_task(y)
    available = column_blocks(list(X.columns))
    results: dict[str, EvaluationResult] = {}
    runs: list[tuple[str, tuple[str, ...], Any]] = []
    for name, sets in config.feature_sets.items():
        present = tuple(b for b in sets if b in available)
        if present:
            runs.append((name, present, y))
    if not runs:
        raise StudyConfigError(
            f"none of the feature sets {dict(config.feature_sets)} has columns; blocks "
            f"present: {sorted(available)}"
        )
    if config.negative_control:
        widest = max(runs, key=lambda r: sum(len(available[b]) for b in r[1]))
        rng = np.random.default_rng(config.seed)
        runs.append(
            (
                "negative control (shuffled labels)",
                widest[1],
                np.asarray(y)[rng.permutation(len(y))],
            )
        )
    rows = []
    for name, present, target in runs:
        n = sum(len(available[b]) for b in present)
        pipe, grid = build_pipeline(config, task, present, n_features=n)
        result = nested_cv(
            pipe, X, target, param_grid=grid, settings=config.cv_settings(), task=task
        )
        results[name] = result
        head = "harrell_c" if task == "survival" else "auc"
        s = result.summary
        row: dict[str, Any] = {
            "feature_set": name,
            "blocks": "+".join(present),
            "n_features": n,
            head: s.loc[head, "estimate"],
            "ci_low": s.loc[head, "ci_low"],
            "ci_high": s.loc[head, "ci_high"],
        }
        for metric in s.index:
            if metric != head:
                row[metric] = s.loc[metric, "estimate"]
        if task == "survival" and not result.risk_groups.empty:
            first = result.risk_groups.iloc[0]
            row["logrank_p"] = first["logrank_p"]
            row["hazard_ratio"] = first["hazard_ratio"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("feature_set"), results
