"""Study-level API behind ``hybridrad evaluate``: load the tables, compare the feature sets."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrad.errors import HybridradError
from hybridrad.io.manifest import read_clinical
from hybridrad.models.evaluate import EvaluationResult, Task
from hybridrad.models.fusion import fuse, load_feature_tables
from hybridrad.models.pipelines import StudyConfig, compare_feature_sets
from hybridrad.models.target import class_target, survival_target
from hybridrad.provenance import file_sha256, library_versions


@dataclass
class StudyData:
    """Fused features and the target of a study."""

    X: pd.DataFrame
    y: Any
    task: Task
    inputs: dict[str, str]


def load_study(
    features: Sequence[str | os.PathLike[str]],
    clinical: str | os.PathLike[str],
    *,
    time: str | None = None,
    event: str | None = None,
    label: str | None = None,
    covariates: Sequence[str] = (),
    site: bool = False,
) -> StudyData:
    """Read feature tables and the clinical table, fuse them and build the target.

    Give ``time`` and ``event`` for survival, or ``label`` for classification.
    ``site=True`` adds the clinical ``site`` column (for ComBat).
    """
    if (label is None) == (time is None or event is None):
        raise HybridradError(
            "give either --time and --event (survival) or --label (classification)"
        )
    clin = read_clinical(clinical)
    X = fuse(load_feature_tables(features), clinical=clin, covariates=list(covariates))
    if site:
        if "site" not in clin.columns:
            raise HybridradError("ComBat needs a 'site' column in the clinical table")
        X["site"] = clin.loc[X.index, "site"].astype(str)
    y: Any
    if label is None:
        assert time is not None and event is not None
        y, task = survival_target(clin, time, event, list(X.index)), "survival"
    else:
        y, task = class_target(clin, label, list(X.index)).to_numpy(), "classification"
    inputs = {str(p): file_sha256(p) for p in [*features, clinical]}
    return StudyData(X=X, y=y, task=task, inputs=inputs)  # type: ignore[arg-type]


def evaluate_study(
    data: StudyData, config: StudyConfig, out: str | os.PathLike[str]
) -> tuple[pd.DataFrame, dict[str, EvaluationResult]]:
    """Compare the feature sets of ``config`` with nested CV and write the results."""
    from hybridrad.models.stratify import compare_groups
    from hybridrad.report.plots import comparison_plot, km_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table, results = compare_feature_sets(data.X, data.y, config, task=data.task)
    table.to_csv(out / "comparison.csv")
    for name, result in results.items():
        slug = name.split(" ")[0].replace("/", "_")
        result.folds.to_csv(out / f"folds_{slug}.csv", index=False)
        result.summary.to_csv(out / f"summary_{slug}.csv")
        result.predictions.to_csv(out / f"predictions_{slug}.csv", index=False)
        if data.task == "survival" and not result.risk_groups.empty:
            result.risk_groups.to_csv(out / f"risk_groups_{slug}.csv", index=False)
            first = result.predictions[result.predictions["repeat"] == 0]
            idx = [list(data.X.index).index(c) for c in first["case_id"]]
            cmp = compare_groups(data.y[idx], first["group"].to_numpy(), reference="low")
            km_plot(cmp, out / f"km_{slug}.png", title=f"{name}: test-fold risk groups")
    head = "harrell_c" if data.task == "survival" else "auc"
    comparison_plot(table, head, out / "comparison.png")
    provenance = {
        "command": "hybridrad evaluate",
        "task": data.task,
        "config": config.to_dict(),
        "config_hash": config.hash,
        "seed": config.seed,
        "inputs_sha256": data.inputs,
        "n_cases": len(data.X),
        "n_features": data.X.shape[1],
        "versions": library_versions(),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    return table, results
