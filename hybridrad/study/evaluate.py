"""``hybridrad evaluate``: compare the feature sets of a study with nested CV and write the
results (tables, plots, interpretation, provenance)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from hybridrad.models.data import StudyData
from hybridrad.models.evaluate import EvaluationResult
from hybridrad.models.pipelines import StudyConfig, compare_feature_sets, interpret
from hybridrad.provenance import library_versions


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
    n_events = int(data.y["event"].sum()) if data.task == "survival" else None
    lines = interpret(table, config, data.task, n_events=n_events)
    (out / "interpretation.txt").write_text(
        "\n".join([*lines, f"CI: {table.attrs['ci_method']}"]) + "\n"
    )
    provenance = {
        "command": "hybridrad evaluate",
        "task": data.task,
        "config": config.to_dict(),
        "config_hash": config.hash,
        "seed": config.seed,
        "ci_method": table.attrs["ci_method"],
        "inputs_sha256": data.inputs,
        "n_cases": len(data.X),
        "n_events": n_events,
        "positive_class": data.positive,
        "negative_class": data.negative,
        "dropped_cases": data.dropped,
        "n_features": data.X.shape[1],
        "versions": library_versions(),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    return table, results
