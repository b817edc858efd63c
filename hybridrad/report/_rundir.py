"""Reading a run directory of ``hybridrad run`` for the report (internal).

Every reader raises :class:`ReportInputError` naming the file when a file is malformed;
absent files are the callers' business (a section without inputs is left out).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hybridrad.errors import HybridradError, HybridradWarning


class ReportInputError(HybridradError, ValueError):
    """A file of the run directory that the report reads is malformed (unreadable JSON,
    YAML or CSV, or a table without the columns its stage writes)."""


class ReportWarning(HybridradWarning):
    """A report section, or part of it, could not be computed from the run's results
    (the reason is also written in the report)."""


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: numbers to ``digits`` significant digits, missing as an en dash."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "\u2013"
        if math.isinf(v):
            return "\u221e" if v > 0 else "-\u221e"
        if v != 0 and (abs(v) < 10**-(digits) or abs(v) >= 10**6):
            return f"{v:.{digits - 1}e}"
        if float(v).is_integer() and abs(v) < 10**6:
            return str(int(v))
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(digits, 4)}g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(
            f"{path}: not readable JSON ({exc}); rerun the stage that writes it "
            "(hybridrad run STUDY --force) or remove the file"
        ) from exc


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ReportInputError(f"{path}: not readable YAML ({exc}); fix or rewrite it") from exc


def read_csv(path: Path, required: Sequence[str] = (), **kwargs: Any) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, **kwargs)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReportInputError(f"{path}: not a readable CSV table ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReportInputError(
            f"{path} has no column(s) {missing} (columns: {list(frame.columns)}); it was not "
            "written by the stage the report expects, rerun that stage"
        )
    return frame


def mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def slug(feature_set: str) -> str:
    """File-name part of a feature set's outputs (as ``evaluate_study`` writes them)."""
    return feature_set.split(" ")[0].replace("/", "_")


@dataclass
class Target:
    """One ``evaluation/<name>/`` folder."""

    name: str
    folder: Path
    task: str
    comparison: pd.DataFrame
    metric: str
    provenance: dict[str, Any]

    @property
    def sets(self) -> list[str]:
        return [s for s in self.comparison.index if not str(s).startswith("permutation null")]

    def predictions(self, feature_set: str) -> pd.DataFrame | None:
        path = self.folder / f"predictions_{slug(feature_set)}.csv"
        if not path.is_file():
            return None
        return read_csv(path, ["case_id"], dtype={"case_id": str})

    def first_repeat(self, feature_set: str, column: str) -> pd.DataFrame | None:
        """The predictions of ``feature_set`` in the first CV repeat; None when there are
        none or they have no ``column``."""
        pred = self.predictions(feature_set)
        if pred is None or column not in pred.columns:
            return None
        return pred[pred["repeat"] == pred["repeat"].min()] if "repeat" in pred.columns else pred

    @property
    def title(self) -> str:
        if self.task == "survival":
            return "overall survival" if self.name == "survival" else self.name
        pos = self.provenance.get("positive_class")
        return f"{self.name} ({pos} vs rest)" if pos is not None else self.name


@dataclass
class Run:
    root: Path
    study: dict[str, Any]
    run: dict[str, Any]
    clinical: pd.DataFrame | None
    time: str | None
    event: str | None
    labels: dict[str, dict[str, Any]]
    covariates: list[str]
    targets: list[Target]
    problems: list[str] = field(default_factory=list)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def exists(self, *parts: str) -> bool:
        return self.path(*parts).exists()

    @property
    def model(self) -> dict[str, Any]:
        return mapping(self.study.get("model"))

    @property
    def title(self) -> str:
        report = mapping(self.study.get("report"))
        return str(
            report.get("title") or self.study.get("name") or self.run.get("study") or self.root.name
        )

    def target(self, task: str) -> list[Target]:
        return [t for t in self.targets if t.task == task]

    def survival_y(self, case_ids: Sequence[str]) -> tuple[list[str], np.ndarray] | None:
        """The (event, time) target of the cases with both values, or None."""
        if self.clinical is None or self.time is None or self.event is None:
            return None
        clin = self.clinical
        if self.time not in clin.columns or self.event not in clin.columns:
            return None
        from hybridrad.models.target import survival_target

        complete = clin[[self.time, self.event]].notna().all(axis=1)
        ids = [c for c in case_ids if c in clin.index and bool(complete.loc[c])]
        return ids, survival_target(clin, self.time, self.event, ids)

    def note(self, section: str, message: str) -> None:
        """Record a part that could not be computed, and warn (:class:`ReportWarning`)."""
        text = f"{section}: {message}"
        self.problems.append(text)
        warnings.warn(text, ReportWarning, stacklevel=4)


def load_run(root: Path) -> Run:
    study = mapping(read_yaml(root / "study.yaml")) if (root / "study.yaml").is_file() else {}
    run = mapping(read_json(root / "run.json")) if (root / "run.json").is_file() else {}
    cohort = mapping(study.get("cohort"))
    targets_spec = mapping(study.get("targets"))
    survival = mapping(targets_spec.get("survival"))
    time = survival.get("time", cohort.get("time"))
    event = survival.get("event", cohort.get("event"))
    labels_raw = mapping(targets_spec.get("labels")) or mapping(cohort.get("labels"))
    labels = {}
    for name, spec in labels_raw.items():
        spec_map = mapping(spec)
        labels[str(name)] = {"column": spec_map.get("column", name), **spec_map}
    covariates = mapping(study.get("model")).get("covariates", cohort.get("covariates")) or []
    clinical = None
    clin_path = root / "cohort" / "clinical.csv"
    if clin_path.is_file():
        from hybridrad.io.manifest import read_clinical

        try:
            clinical = read_clinical(clin_path)
        except HybridradError as exc:
            raise ReportInputError(f"{clin_path}: {exc}") from exc
    targets = []
    evaluation = root / "evaluation"
    for folder in sorted(evaluation.iterdir()) if evaluation.is_dir() else []:
        comparison_path = folder / "comparison.csv"
        if not comparison_path.is_file():
            continue
        comparison = read_csv(comparison_path, ["feature_set"]).set_index("feature_set")
        metric = next((m for m in ("harrell_c", "auc") if m in comparison.columns), None)
        if metric is None or not {"ci_low", "ci_high"} <= set(comparison.columns):
            raise ReportInputError(
                f"{comparison_path} has neither harrell_c nor auc with ci_low/ci_high; it was "
                "not written by hybridrad's evaluate_study, rerun the evaluation stage"
            )
        provenance = (
            mapping(read_json(folder / "provenance.json"))
            if (folder / "provenance.json").is_file()
            else {}
        )
        task = str(
            provenance.get("task") or ("survival" if metric == "harrell_c" else "classification")
        )
        targets.append(Target(folder.name, folder, task, comparison, metric, provenance))
    targets.sort(key=lambda t: (t.task != "survival", t.name))
    return Run(
        root=root,
        study=study,
        run=run,
        clinical=clinical,
        time=None if time is None else str(time),
        event=None if event is None else str(event),
        labels=labels,
        covariates=[str(c) for c in covariates],
        targets=targets,
    )


def probability_column(pred: pd.DataFrame) -> str | None:
    cols = [c for c in pred.columns if str(c).startswith("p_")]
    if len(cols) == 1:
        return cols[0]
    return "p_1" if "p_1" in cols else None


def final_dir(target: Target) -> Path | None:
    folder = target.folder / "final"
    return folder if (folder / "model.json").is_file() else None


def final_meta(folder: Path) -> dict[str, Any]:
    from hybridrad.models.persist import read_model_info

    try:
        return mapping(read_model_info(folder).get("metadata"))
    except HybridradError as exc:
        raise ReportInputError(f"{folder}: {exc}") from exc


def provenance_files(run: Run) -> list[Path]:
    found = []
    for pattern in ("*/stage.json", "*/*.provenance.json", "evaluation/*/provenance.json"):
        found += sorted(run.root.glob(pattern))
    return found


def radiomics_settings(run: Run) -> tuple[dict[str, Any], str] | None:
    path = run.path("handcrafted", "radiomics.yaml")
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return mapping(read_yaml(path)), text


def n_columns(path: Path) -> int | None:
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"{path}: not a readable Parquet table ({exc})") from exc
    return sum(1 for n in names if n != "case_id" and not n.startswith("__index"))


def failures(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        return len(pd.read_csv(path))
    except pd.errors.EmptyDataError:
        return 0


def median_follow_up(clinical: pd.DataFrame, time: str, event: str) -> float | None:
    """Median follow-up by the reverse Kaplan-Meier method (censoring as the event), over
    the cases with both values; None when there is none."""
    from sksurv.nonparametric import kaplan_meier_estimator

    t = pd.to_numeric(clinical[time], errors="coerce")
    if event not in clinical.columns:
        return None
    e = pd.to_numeric(clinical[event], errors="coerce")
    ok = t.notna() & e.notna()
    if not ok.any():
        return None
    times = t[ok].to_numpy(float)
    censored = (e[ok] != 1).to_numpy()
    if not censored.any():
        return float(np.median(times))
    grid, surv = kaplan_meier_estimator(censored, times)
    below = np.flatnonzero(surv <= 0.5)
    return float(grid[below[0]]) if below.size else float("nan")
