"""Default modelling pipelines, the study configuration and the feature-set comparison.

A pipeline puts every learning step inside the cross-validation folds:
block selection -> (ComBat) -> imputation -> near-zero-variance filter -> scaling ->
(ICC filter) -> univariate pre-screen -> correlation filter -> univariate screening ->
model. Clinical covariates (the ``clin`` block) skip the three selection steps: they are
forced into the model, as in a clinical + imaging signature.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from hybridrad.errors import HybridradError
from hybridrad.io.yamlfile import read_mapping
from hybridrad.models.evaluate import CVSettings, EvaluationResult, Task, infer_task, nested_cv
from hybridrad.models.fusion import CLINICAL
from hybridrad.models.fusion import blocks as column_blocks
from hybridrad.provenance import config_hash

log = logging.getLogger(__name__)

SURVIVAL_MODELS = ("coxnet", "cox", "xgb_cox", "xgb_aft", "rsf")
CLASSIFIERS = ("logistic", "xgb")
SELECTION_RULES = ("one_se", "best")


class StudyConfigError(HybridradError, ValueError):
    """A study configuration is invalid (unknown key, bad value)."""


@dataclass(frozen=True)
class StudyConfig:
    """What ``hybridrad evaluate`` / ``fit`` do; loaded from YAML, unknown keys are errors.

    The defaults are those of the shipped ``configs/models/default.yaml`` (a test keeps
    the two equal), so the API, every command and the shipped file mean the same thing.

    Attributes
    ----------
    model
        Survival model: ``cox`` (ridge-penalised Cox, lifelines; the default), ``coxnet``
        (elastic-net Cox, scikit-survival), ``xgb_cox``, ``xgb_aft``, ``rsf``.
    classifier
        Classification model (``--label``): ``logistic`` (ridge, the default) or ``xgb``.
    feature_sets
        Name -> blocks (``rad``, ``deep``, ``clin``) compared on the same folds.
    covariates
        Clinical columns added as the ``clin`` block.
    clinical_unpenalized
        Leave the clinical block unpenalised in ``cox`` (per-column penalizer 0) and
        ``logistic`` (:class:`~hybridrad.models.transformers.PenaltyFactor`), so imaging
        features cannot shrink a known prognostic factor away.
    clinical_fallback
        In a set with clinical and imaging blocks, the inner CV also weighs the
        clinical-only model; the hybrid falls back to it when imaging adds nothing.
    selection_rule
        How the inner CV picks a candidate: ``one_se`` (the simplest candidate, clinical
        only first, within one standard error of the best inner score) or ``best``.
    reference_set
        The feature set every other set is compared with (paired difference on the same
        folds, with CI and p-value).
    n_permutations
        Label permutations of the permutation test of the widest set (0: none).
    screen_k
        Candidate numbers of features kept by univariate screening (tuned inside).
    prescreen_k
        Features kept by a univariate pre-screen before the correlation filter.
    correlation_threshold
        |r| above which features are redundant (Spearman).
    icc_table, icc_threshold
        Optional robustness table (``hybridrad robustness``) and the ICC to keep.
    combat
        Harmonise the imaging features across the clinical ``site`` column with ComBat,
        inside the folds.
    """

    model: str = "cox"
    classifier: str = "logistic"
    feature_sets: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "clinical": ("clin",),
            "handcrafted": ("rad",),
            "deep": ("deep",),
            "hybrid": ("rad", "deep", "clin"),
        }
    )
    covariates: tuple[str, ...] = ("age",)
    clinical_unpenalized: bool = True
    clinical_fallback: bool = True
    selection_rule: str = "one_se"
    reference_set: str = "clinical"
    n_permutations: int = 20
    screen_k: tuple[int, ...] = (10, 30)
    prescreen_k: int = 200
    correlation_threshold: float = 0.9
    icc_table: str | None = None
    icc_threshold: float = 0.75
    combat: bool = False
    outer_splits: int = 5
    outer_repeats: int = 3
    inner_splits: int = 3
    seed: int = 0
    n_boot: int = 200
    times: tuple[float, ...] | None = None
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.model not in SURVIVAL_MODELS:
            hint = " (a classifier: set it as `classifier`)" if self.model in CLASSIFIERS else ""
            raise StudyConfigError(
                f"unknown survival model {self.model!r}{hint}; choose one of {SURVIVAL_MODELS}"
            )
        if self.classifier not in CLASSIFIERS:
            raise StudyConfigError(
                f"unknown classifier {self.classifier!r}; choose one of {CLASSIFIERS}"
            )
        if self.selection_rule not in SELECTION_RULES:
            raise StudyConfigError(
                f"selection_rule must be one of {SELECTION_RULES}; got {self.selection_rule!r}"
            )
        if self.n_permutations < 0:
            raise StudyConfigError("n_permutations must be >= 0 (0: no permutation test)")
        if self.n_boot < 0:
            raise StudyConfigError("n_boot must be >= 0")
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
        kw = {key: _check_type(key, value) for key, value in data.items()}
        return cls(**kw)

    @classmethod
    def load(cls, spec: str | os.PathLike[str] | None = None) -> StudyConfig:
        """From a YAML file or a shipped study name (``default``); ``None``: the default.

        Raises
        ------
        StudyConfigError
            Neither a shipped name nor an existing file, or an invalid configuration.
        """
        if spec is None:
            return cls()
        shipped = shipped_studies()
        path = shipped.get(str(spec), Path(spec))
        if not path.is_file():
            raise StudyConfigError(
                f"study config {str(spec)!r} is neither a shipped study "
                f"({', '.join(sorted(shipped))}) nor an existing YAML file"
            )
        data = read_mapping(
            path, StudyConfigError, "study config", "See configs/models/default.yaml."
        )
        try:
            return cls.from_dict(data)
        except StudyConfigError as exc:
            raise StudyConfigError(f"{path}: {exc}") from exc

    def model_for(self, task: Task) -> str:
        """The model used for ``task``: ``model`` (survival) or ``classifier``."""
        return self.model if task == "survival" else self.classifier

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
            selection_rule=self.selection_rule,
        )


_SCALARS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "classifier": (str,),
    "clinical_unpenalized": (bool,),
    "clinical_fallback": (bool,),
    "selection_rule": (str,),
    "reference_set": (str,),
    "n_permutations": (int,),
    "prescreen_k": (int,),
    "correlation_threshold": (float, int),
    "icc_table": (str, type(None)),
    "icc_threshold": (float, int),
    "combat": (bool,),
    "outer_splits": (int,),
    "outer_repeats": (int,),
    "inner_splits": (int,),
    "seed": (int,),
    "n_boot": (int,),
    "n_jobs": (int,),
}


def _check_type(key: str, value: Any) -> Any:
    """``value`` in the form the field ``key`` takes; a wrong type names the key."""

    def bad(expected: str) -> StudyConfigError:
        return StudyConfigError(f"study key {key!r}: expected {expected}, got {value!r}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if key in _SCALARS:
        kinds = _SCALARS[key]
        ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
        if not ok:
            raise bad(" or ".join(k.__name__ for k in kinds))
        return value
    if key == "covariates":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise bad("a list of column names")
        return tuple(value)
    if key == "screen_k":
        if not isinstance(value, list | tuple) or not all(is_int(v) for v in value):
            raise bad("a list of integers")
        return tuple(value)
    if key == "times":
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise bad("a list of numbers or null")
        return tuple(float(v) for v in value)
    if key == "feature_sets":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str)
            and isinstance(v, list | tuple)
            and all(isinstance(b, str) for b in v)
            for k, v in value.items()
        ):
            raise bad("a mapping of set name -> list of blocks")
        return {k: tuple(v) for k, v in value.items()}
    return value


def shipped_studies() -> dict[str, Path]:
    """Shipped study configurations by name (``configs/models/<name>.yaml``)."""
    folder = Path(__file__).resolve().parents[1] / "configs" / "models"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def build_pipeline(
    config: StudyConfig,
    task: Task,
    blocks: Sequence[str] | None = None,
    n_features: int | None = None,
) -> tuple[Pipeline, list[dict[str, list[Any]]]]:
    """The pipeline and hyper-parameter grid for ``config``.

    ``n_features`` (of the selected blocks) caps the screening grid. When the blocks
    hold the clinical block and an imaging block and ``config.clinical_fallback`` is
    set, the grid (a list of sub-grids, as :class:`~sklearn.model_selection.GridSearchCV`
    takes) also holds the clinical-only candidate (``screen__others=False``).
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
        PenaltyFactor,
        UnivariateCoxSelector,
    )

    name = config.model_for(task)
    if (task == "survival") != (name in SURVIVAL_MODELS):
        raise StudyConfigError(
            f"model {name!r} does not fit a {task} target; use one of "
            f"{SURVIVAL_MODELS if task == 'survival' else CLASSIFIERS}"
        )
    seed = config.seed
    has_clin = blocks is None or CLINICAL in blocks
    has_imaging = blocks is None or any(b != CLINICAL for b in blocks)
    steps: list[tuple[str, Any]] = []
    if blocks is not None:
        passthrough = ("site",) if config.combat else ()
        steps.append(("blocks", BlockSelector(tuple(blocks), passthrough=passthrough)))
    if config.combat:
        imaging = tuple(b for b in (blocks or ("rad", "deep")) if b != CLINICAL)
        steps.append(("combat", ComBat(batch_col="site", blocks=imaging, impute=True)))
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
    model_grid: dict[str, list[Any]] = {}
    unpenalized = (CLINICAL,) if config.clinical_unpenalized and has_clin else ()
    model: Any
    if task == "survival":
        steps.append(("prescreen", KeepBlocks(UnivariateCoxSelector(k=max(pre_k, ks[-1])))))
        steps.append(("corr", KeepBlocks(CorrelationFilter(config.correlation_threshold))))
        steps.append(("screen", KeepBlocks(UnivariateCoxSelector(k=ks[0]))))
        if name == "coxnet":
            model = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.1], fit_baseline_model=True)
            model_grid["model__alphas"] = [[0.1], [0.3]]
        elif name == "cox":
            model = PenalizedCox(penalizer=0.3, l1_ratio=0.0, unpenalized=unpenalized)
            model_grid["model__penalizer"] = [0.1, 1.0]
        elif name == "xgb_cox":
            model = XGBSurvivalCox(
                n_estimators=200, learning_rate=0.05, max_depth=2, random_state=seed
            )
            model_grid["model__max_depth"] = [1, 2]
        elif name == "xgb_aft":
            model = XGBSurvivalAFT(
                n_estimators=200, learning_rate=0.05, max_depth=2, random_state=seed
            )
            model_grid["model__max_depth"] = [1, 2]
        else:
            model = RandomSurvivalForest(
                n_estimators=200, min_samples_leaf=5, random_state=seed, n_jobs=1
            )
            model_grid["model__max_features"] = ["sqrt", 0.3]
    else:
        steps.append(("prescreen", KeepBlocks(SelectKBest(f_classif, k=max(pre_k, ks[-1])))))
        steps.append(("corr", KeepBlocks(CorrelationFilter(config.correlation_threshold))))
        steps.append(("screen", KeepBlocks(SelectKBest(f_classif, k=ks[0]))))
        if name == "logistic":
            if unpenalized:
                steps.append(("penalty", PenaltyFactor(unpenalized, factor=100.0)))
            model = LogisticRegression(C=0.3, l1_ratio=0.0, max_iter=5000, random_state=seed)
            model_grid["model__C"] = [0.1, 1.0]
        else:
            model = XGBLabelClassifier(
                n_estimators=200, learning_rate=0.05, max_depth=2, random_state=seed
            )
            model_grid["model__max_depth"] = [1, 2]
    steps.append(("model", model))
    imaging_grid = dict(model_grid)
    if len(ks) > 1:
        imaging_grid["screen__selector__k"] = ks
    grid = [imaging_grid]
    if config.clinical_fallback and has_clin and has_imaging:
        imaging_grid["screen__others"] = [True]
        grid.insert(0, {"screen__others": [False], **model_grid})
    return Pipeline(steps).set_output(transform="pandas"), grid


def compare_feature_sets(
    X: pd.DataFrame,
    y: Any,
    config: StudyConfig | None = None,
    *,
    task: Task | None = None,
) -> tuple[pd.DataFrame, dict[str, EvaluationResult]]:
    """The central comparison: each feature set of ``config`` on the same outer folds.

    Every set is evaluated with the same outer folds and bootstrap resamples, so each
    is compared with ``config.reference_set`` (default ``clinical``) as a paired
    difference (``delta`` with CI and p-value): the direct answer to "does imaging add
    to the clinical model?". The widest set also gets a permutation test
    (``config.n_permutations`` shuffles of the outcome through the whole pipeline;
    ``perm_p``), whose null distribution is reported as its own row.

    Returns
    -------
    table, results
        The comparison table (a row per set: the headline metric with its CI, the paired
        difference to the reference set, the permutation p-value, the fraction of outer
        folds whose model used imaging features, the other metrics, and for survival the
        first repeat's risk-group log-rank p and hazard ratio with a degenerate flag;
        ``table.attrs["ci_method"]`` says how the CIs are built) and the full result of
        every set (plus ``"permutation null"`` when computed).
    """
    from hybridrad.models.evaluate import CI_METHOD, paired_difference, permutation_test

    config = config or StudyConfig()
    task = task or infer_task(y)
    available = column_blocks(list(X.columns))
    results: dict[str, EvaluationResult] = {}
    runs: list[tuple[str, tuple[str, ...]]] = []
    for name, sets in config.feature_sets.items():
        present = tuple(b for b in sets if b in available)
        if present:
            if present != tuple(sets):
                log.warning(
                    "feature set %r: block(s) %s absent from the tables; evaluated with %s",
                    name,
                    sorted(set(sets) - set(present)),
                    list(present),
                )
            runs.append((name, present))
        else:
            log.warning("feature set %r skipped: none of its blocks %s has columns", name, sets)
    if not runs:
        raise StudyConfigError(
            f"none of the feature sets {dict(config.feature_sets)} has columns; blocks "
            f"present: {sorted(available)}"
        )
    head = "harrell_c" if task == "survival" else "auc"
    settings = config.cv_settings()
    rows = []
    prepared = {}
    for name, present in runs:
        columns = [c for b in present for c in available[b]]
        if config.combat:
            if "site" not in X.columns:
                raise StudyConfigError("combat: true needs a 'site' column in the data")
            columns.append("site")
        n = sum(len(available[b]) for b in present)
        n_imaging = sum(len(available[b]) for b in present if b != CLINICAL)
        n_clin = n - n_imaging
        most = n_clin + min(n_imaging, max(config.screen_k))
        pipe, grid = build_pipeline(config, task, present, n_features=n)
        prepared[name] = (pipe, grid, columns)
        result = nested_cv(
            pipe,
            X[columns],
            y,
            param_grid=grid,
            settings=settings,
            task=task,
            label=name,
            n_model_features=most,
        )
        results[name] = result
        s = result.summary
        row: dict[str, Any] = {
            "feature_set": name,
            "blocks": "+".join(present),
            "n_features": n,
            head: s.loc[head, "estimate"],
            "ci_low": s.loc[head, "ci_low"],
            "ci_high": s.loc[head, "ci_high"],
        }
        if n_imaging and n_clin:
            row["imaging_folds"] = float((result.folds["n_imaging_features"] > 0).mean())
        for metric in s.index:
            if metric != head:
                row[metric] = s.loc[metric, "estimate"]
        if task == "survival" and not result.risk_groups.empty:
            first = result.risk_groups.iloc[0]
            row["logrank_p"] = first.get("logrank_p", float("nan"))
            row["hazard_ratio"] = first.get("hazard_ratio", float("nan"))
            row["risk_groups_degenerate"] = bool(first["degenerate"])
        rows.append(row)
    reference = results.get(config.reference_set)
    if reference is None and config.reference_set in config.feature_sets:
        log.warning("reference set %r not evaluated: no paired differences", config.reference_set)
    elif reference is not None:
        for row in rows:
            if row["feature_set"] != config.reference_set:
                row.update(paired_difference(results[row["feature_set"]], reference))
    if config.n_permutations > 0:
        widest = max(runs, key=lambda r: sum(len(available[b]) for b in r[1]))[0]
        pipe, grid, columns = prepared[widest]
        p, permuted = permutation_test(
            pipe,
            X[columns],
            y,
            results[widest],
            param_grid=grid,
            settings=settings,
            n_permutations=config.n_permutations,
            seed=config.seed,
            label=f"{widest} (permutation test)",
        )
        for row in rows:
            if row["feature_set"] == widest:
                row["perm_p"] = p
        rows.append(
            {
                "feature_set": f"permutation null ({widest}, {config.n_permutations} shuffles)",
                "blocks": "+".join(dict(runs)[widest]),
                "n_features": sum(len(available[b]) for b in dict(runs)[widest]),
                head: float(np.mean(permuted)),
                "ci_low": float(np.percentile(permuted, 2.5)),
                "ci_high": float(np.percentile(permuted, 97.5)),
            }
        )
    table = pd.DataFrame(rows).set_index("feature_set")
    table.attrs["ci_method"] = CI_METHOD
    table.attrs["permutation_null_interval"] = "2.5th-97.5th percentiles of the permuted scores"
    return table, results


#: Columns printed by the commands (the CSV has every column).
HEADLINE_COLUMNS = (
    "n_features",
    "ci_low",
    "ci_high",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "delta_p",
    "perm_p",
    "imaging_folds",
)


def headline(table: pd.DataFrame, task: Task) -> pd.DataFrame:
    """The comparison table's headline columns, in reading order."""
    head = "harrell_c" if task == "survival" else "auc"
    cols = ["n_features", head, *HEADLINE_COLUMNS[1:]]
    return table[[c for c in cols if c in table.columns]]


def interpret(
    table: pd.DataFrame, config: StudyConfig, task: Task, n_events: int | None = None
) -> list[str]:
    """Plain sentences answering the questions users ask of a comparison table.

    Does each set beat its reference (paired difference and its CI)? Does the widest
    set beat chance (permutation test)? Are there enough events for an imaging model?

    Examples
    --------
    >>> t = pd.DataFrame(
    ...     {"harrell_c": [0.70, 0.72], "delta": [np.nan, 0.02], "delta_ci_low": [np.nan, -0.03],
    ...      "delta_ci_high": [np.nan, 0.07], "delta_p": [np.nan, 0.4], "perm_p": [np.nan, 0.05]},
    ...     index=pd.Index(["clinical", "hybrid"], name="feature_set"))
    >>> for line in interpret(t, StudyConfig(n_permutations=20), "survival"):
    ...     print(line)
    hybrid vs clinical: +0.020 [-0.030, +0.070], p = 0.4: no evidence that hybrid adds to clinical
    hybrid vs chance: permutation p = 0.05 (20 shuffles)
    """
    head = "harrell_c" if task == "survival" else "auc"
    ref = config.reference_set
    lines = []
    if "delta" in table.columns:
        for name, row in table.iterrows():
            if name == ref or not np.isfinite(row.get("delta", np.nan)):
                continue
            lo, hi, p = row["delta_ci_low"], row["delta_ci_high"], row["delta_p"]
            if np.isfinite(lo) and lo > 0:
                verdict = f"{name} adds to {ref}"
            elif np.isfinite(hi) and hi < 0:
                verdict = f"{name} is worse than {ref}"
            else:
                verdict = f"no evidence that {name} adds to {ref}"
            p_text = f"{p:.2g}" if np.isfinite(p) else "n/a"
            lines.append(
                f"{name} vs {ref}: {row['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}], "
                f"p = {p_text}: {verdict}"
            )
    if "perm_p" in table.columns:
        for name, row in table.iterrows():
            if np.isfinite(row.get("perm_p", np.nan)):
                lines.append(
                    f"{name} vs chance: permutation p = {row['perm_p']:.2g} "
                    f"({config.n_permutations} shuffles)"
                )
    if config.outer_repeats < 2:
        lines.append(
            "one outer repeat: the CIs leave out training variability (too narrow); "
            "use outer_repeats >= 2 for reported figures"
        )
    if task == "survival" and n_events is not None:
        most = max(len(config.covariates), 1) + max(config.screen_k)
        if n_events < 10 * most:
            lines.append(
                f"{n_events} events: fewer than 10 per variable for a model of up to {most} "
                f"variables. This cohort cannot support an imaging survival model; read the "
                f"imaging {head} figures as exploratory and rely on the clinical model"
            )
    return lines
