"""The study report: one self-contained HTML file written from a run directory.

:func:`write_report` reads the folder ``hybridrad run`` writes (the layout is described
in ``docs``: ``study.yaml``, ``run.json``, ``cohort/``, ``segmentation/``,
``handcrafted/``, ``deep/``, ``evaluation/<target>/``, ``external/<target>/``) and writes
one HTML file: inline CSS, every plot an embedded PNG (``data:`` URI), no script and no
external URL, so it opens offline, can be e-mailed and archived, and renders the same in
any browser.

Each section is present only when its inputs exist, and says in a sentence what it
shows: cohort summary; segmentation quality with overlays in the radiological display;
the comparison of the feature sets with CIs; the paired difference of each set to the
reference set (hybrid - clinical); Kaplan-Meier curves by risk group with the log-rank
p; ROC curves of the subtype labels; calibration and decision curves; the final model's
coefficients; the correlation of handcrafted with deep features; external validation;
and a reproducibility section (versions, the study file verbatim, hashes, the IBSI
settings, and the CLEAR and TRIPOD+AI items the run fills in).

The report reads results only: it never imports ``hybridrad.study``, ``hybridrad.segment``
or the CLI. Text from the run (case ids, column names, file contents) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from hybridrad.errors import HybridradError, HybridradWarning

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CLEAR",
    "TRIPOD_AI",
    "ReportInputError",
    "ReportWarning",
    "binary_calibration",
    "checklist",
    "model_importance",
    "render_report",
    "write_report",
]

log = logging.getLogger(__name__)

#: Where :func:`write_report` writes by default, relative to the run directory.
DEFAULT_REPORT = Path("report") / "report.html"

#: Overlays shown in the segmentation section (worst, median and best case by Dice).
N_OVERLAY_CASES = 3

TO_COMPLETE = "to be completed by the authors"


class ReportInputError(HybridradError, ValueError):
    """A file of the run directory that the report reads is malformed (unreadable JSON,
    YAML or CSV, or a table without the columns its stage writes)."""


class ReportWarning(HybridradWarning):
    """A report section, or part of it, could not be computed from the run's results
    (the reason is also written in the report)."""


# --- small HTML helpers ---------------------------------------------------------------------


def _e(value: Any) -> str:
    """Escaped text."""
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 3) -> str:
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
        return ", ".join(_fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _p(text: str) -> str:
    return f"<p>{_e(text)}</p>"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _table(
    frame: pd.DataFrame,
    *,
    index: bool = True,
    digits: int = 3,
    caption: str | None = None,
    scroll: bool = False,
) -> str:
    """An escaped HTML table of ``frame``."""
    head = ([_e(frame.index.name or "")] if index else []) + [_e(c) for c in frame.columns]
    rows = []
    for key, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = ([f"<th>{_e(key)}</th>"] if index else []) + [
            f"<td>{_e(_fmt(v, digits))}</td>" for v in row
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    body = (
        f"<table>{cap}<thead><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return f'<div class="scroll">{body}</div>' if scroll else body


def _kv_table(pairs: Iterable[tuple[str, Any]], *, caption: str | None = None) -> str:
    frame = pd.DataFrame([(k, _fmt(v)) for k, v in pairs], columns=["item", "value"])
    return _table(frame.set_index("item").rename_axis(""), caption=caption)


def _figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _img_bytes(png: bytes, alt: str, *, width: int | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    style = f' style="max-width:{width}px"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}"{style}>'


def _img(fig: Figure, alt: str, *, dpi: int = 100, width: int | None = None) -> str:
    """A figure as an embedded PNG."""
    return _img_bytes(_figure_png(fig, dpi), alt, width=width)


def _figure_block(img: str, caption: str) -> str:
    return f"<figure>{img}<figcaption>{_e(caption)}</figcaption></figure>"


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{_e(summary)}</summary>{body}</details>"


# --- reading the run directory ------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(
            f"{path}: not readable JSON ({exc}); rerun the stage that writes it "
            "(hybridrad run STUDY --force) or remove the file"
        ) from exc


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ReportInputError(f"{path}: not readable YAML ({exc}); fix or rewrite it") from exc


def _read_csv(path: Path, required: Sequence[str] = (), **kwargs: Any) -> pd.DataFrame:
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


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _slug(feature_set: str) -> str:
    """File-name part of a feature set's outputs (as ``evaluate_study`` writes them)."""
    return feature_set.split(" ")[0].replace("/", "_")


@dataclass
class _Target:
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
        path = self.folder / f"predictions_{_slug(feature_set)}.csv"
        if not path.is_file():
            return None
        return _read_csv(path, ["case_id"], dtype={"case_id": str})

    @property
    def title(self) -> str:
        if self.task == "survival":
            return "overall survival" if self.name == "survival" else self.name
        pos = self.provenance.get("positive_class")
        return f"{self.name} ({pos} vs rest)" if pos is not None else self.name


@dataclass
class _Run:
    root: Path
    study: dict[str, Any]
    run: dict[str, Any]
    clinical: pd.DataFrame | None
    time: str | None
    event: str | None
    labels: dict[str, dict[str, Any]]
    covariates: list[str]
    targets: list[_Target]
    problems: list[str] = field(default_factory=list)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def exists(self, *parts: str) -> bool:
        return self.path(*parts).exists()

    @property
    def model(self) -> dict[str, Any]:
        return _mapping(self.study.get("model"))

    @property
    def title(self) -> str:
        report = _mapping(self.study.get("report"))
        return str(
            report.get("title") or self.study.get("name") or self.run.get("study") or self.root.name
        )

    def target(self, task: str) -> list[_Target]:
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

    def note(self, section: str, message: str) -> str:
        """Record a part that could not be computed (warned once) and return its note."""
        text = f"{section}: {message}"
        self.problems.append(text)
        warnings.warn(text, ReportWarning, stacklevel=3)
        return _note(f"Not shown: {message}")


def _load_run(root: Path) -> _Run:
    study = _mapping(_read_yaml(root / "study.yaml")) if (root / "study.yaml").is_file() else {}
    run = _mapping(_read_json(root / "run.json")) if (root / "run.json").is_file() else {}
    cohort = _mapping(study.get("cohort"))
    targets_spec = _mapping(study.get("targets"))
    survival = _mapping(targets_spec.get("survival"))
    time = survival.get("time", cohort.get("time"))
    event = survival.get("event", cohort.get("event"))
    labels_raw = _mapping(targets_spec.get("labels")) or _mapping(cohort.get("labels"))
    labels = {}
    for name, spec in labels_raw.items():
        spec_map = _mapping(spec)
        labels[str(name)] = {"column": spec_map.get("column", name), **spec_map}
    covariates = _mapping(study.get("model")).get("covariates", cohort.get("covariates")) or []
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
        comparison = _read_csv(comparison_path, ["feature_set"]).set_index("feature_set")
        metric = next((m for m in ("harrell_c", "auc") if m in comparison.columns), None)
        if metric is None or not {"ci_low", "ci_high"} <= set(comparison.columns):
            raise ReportInputError(
                f"{comparison_path} has neither harrell_c nor auc with ci_low/ci_high; it was "
                "not written by hybridrad's evaluate_study, rerun the evaluation stage"
            )
        provenance = (
            _mapping(_read_json(folder / "provenance.json"))
            if (folder / "provenance.json").is_file()
            else {}
        )
        task = str(
            provenance.get("task") or ("survival" if metric == "harrell_c" else "classification")
        )
        targets.append(_Target(folder.name, folder, task, comparison, metric, provenance))
    return _Run(
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


def _section(sid: str, title: str, intro: str, body: str) -> tuple[str, str, str]:
    return sid, title, f'<section id="{_e(sid)}"><h2>{_e(title)}</h2>{_p(intro)}{body}</section>'


# --- 1. cohort ------------------------------------------------------------------------------


def _reverse_km_median(time: np.ndarray, event: np.ndarray) -> float:
    """Median follow-up by the reverse Kaplan-Meier method (censoring as the event)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    censored = ~event.astype(bool)
    if not censored.any():
        return float(np.median(time))
    times, surv = kaplan_meier_estimator(censored, time)
    below = np.flatnonzero(surv <= 0.5)
    return float(times[below[0]]) if below.size else float("nan")


def _variable_rows(clin: pd.DataFrame, skip: set[str]) -> list[tuple[str, str, str, int]]:
    rows = []
    for col in clin.columns:
        if col in skip:
            continue
        values = clin[col]
        missing = int(values.isna().sum())
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() == values.notna().sum() and values.nunique(dropna=True) > 5:
            q1, med, q3 = np.nanpercentile(numeric, [25, 50, 75])
            rows.append(
                (
                    str(col),
                    "numeric",
                    f"median {_fmt(med)} [IQR {_fmt(q1)}\u2013{_fmt(q3)}], "
                    f"range {_fmt(numeric.min())}\u2013{_fmt(numeric.max())}",
                    missing,
                )
            )
        else:
            counts = values.dropna().astype(str).value_counts()
            shown = ", ".join(f"{k}: {v}" for k, v in counts.iloc[:8].items())
            if len(counts) > 8:
                shown += f", ... ({len(counts)} values)"
            rows.append((str(col), "categorical", shown, missing))
    return rows


def _cohort_section(run: _Run) -> tuple[str, str, str] | None:
    manifest_path = run.path("cohort", "manifest.csv")
    manifest = (
        _read_csv(manifest_path, ["case_id"], dtype={"case_id": str})
        if manifest_path.is_file()
        else None
    )
    if manifest is None and run.clinical is None:
        return None
    facts: list[tuple[str, Any]] = []
    if manifest is not None:
        facts.append(("cases in the manifest", len(manifest)))
        images = [c for c in manifest.columns if c not in ("case_id", "mask", "site")]
        facts.append(("image columns", ", ".join(images)))
        facts.append(("reference masks", "yes" if "mask" in manifest.columns else "no"))
        if "site" in manifest.columns:
            counts = manifest["site"].astype(str).value_counts()
            facts.append(("sites", ", ".join(f"{k}: {v}" for k, v in counts.items())))
    clin = run.clinical
    body = ""
    if clin is not None:
        facts.append(("cases in the clinical table", len(clin)))
        skip: set[str] = set()
        if run.time and run.event and {run.time, run.event} <= set(clin.columns):
            skip |= {run.time, run.event}
            t = pd.to_numeric(clin[run.time], errors="coerce")
            e = pd.to_numeric(clin[run.event], errors="coerce")
            ok = t.notna() & e.notna()
            n_event = int((e[ok] == 1).sum())
            facts.append(
                (
                    f"events ({run.event} = 1)",
                    f"{n_event} of {int(ok.sum())} ({100 * n_event / max(1, int(ok.sum())):.0f} %)",
                )
            )
            if ok.any():
                follow = _reverse_km_median(t[ok].to_numpy(float), (e[ok] == 1).to_numpy())
                facts.append((f"median follow-up ({run.time}, reverse Kaplan-Meier)", follow))
                facts.append((f"median observed {run.time}", float(t[ok].median())))
            if int((~ok).sum()):
                facts.append(("cases without survival time or event", int((~ok).sum())))
        age = next((c for c in clin.columns if str(c).lower() == "age"), None)
        if age is not None:
            a = pd.to_numeric(clin[age], errors="coerce")
            q1, med, q3 = np.nanpercentile(a, [25, 50, 75])
            facts.append(
                (
                    "age",
                    f"median {_fmt(med)} [IQR {_fmt(q1)}\u2013{_fmt(q3)}], "
                    f"range {_fmt(a.min())}\u2013{_fmt(a.max())}",
                )
            )
        for name, spec in run.labels.items():
            col = str(spec["column"])
            if col in clin.columns:
                counts = clin[col].astype("string").fillna("(missing)").value_counts()
                facts.append(
                    (f"label {name} ({col})", ", ".join(f"{k}: {v}" for k, v in counts.items()))
                )
        rows = _variable_rows(clin, skip)
        if rows:
            table = pd.DataFrame(rows, columns=["variable", "type", "summary", "missing"])
            body = _table(table.set_index("variable"), caption="Every column of the clinical table")
    if run.covariates:
        facts.append(("clinical covariates of the models", ", ".join(run.covariates)))
    intro = (
        "The cases the run analysed: size, outcome events and follow-up, age and the "
        "subtype labels, read from cohort/manifest.csv and cohort/clinical.csv with the "
        "column names of study.yaml."
    )
    return _section("cohort", "Cohort", intro, _kv_table(facts) + body)


# --- 2. segmentation --------------------------------------------------------------------------


def _quality_summary(quality: pd.DataFrame) -> pd.DataFrame:
    g = quality.groupby("region", sort=False)
    out = pd.DataFrame(
        {
            "cases": g.size(),
            "empty in both": g["dice"].apply(lambda d: int(d.isna().sum())),
            "Dice mean": g["dice"].mean(),
            "Dice SD": g["dice"].std(),
            "Dice median": g["dice"].median(),
            "Dice min": g["dice"].min(),
            "HD95 median (mm)": g["hd95_mm"].median(),
        }
    )
    if "volume_error_ml" in quality.columns:
        out["volume error mean (mL)"] = g["volume_error_ml"].mean()
    return out


def _overlay_cases(quality: pd.DataFrame | None, cases: list[str]) -> list[tuple[str, str]]:
    """(case, why) of the worst, median and best cases by mean Dice (else the first)."""
    if quality is None or quality.empty:
        return [(c, "") for c in cases[:N_OVERLAY_CASES]]
    mean = quality.groupby("case_id", sort=False)["dice"].mean().dropna().sort_values()
    if mean.empty:
        return [(c, "") for c in cases[:N_OVERLAY_CASES]]
    picks = [
        (mean.index[0], "lowest mean Dice"),
        (mean.index[len(mean) // 2], "median mean Dice"),
        (mean.index[-1], "highest mean Dice"),
    ]
    out: list[tuple[str, str]] = []
    for case, why in picks:
        if case not in [c for c, _ in out] and case in cases:
            out.append((str(case), f"{why}: {mean[case]:.3f}"))
    return out


def _cohort_or_none(path: Path) -> Any:
    from hybridrad.io.manifest import Cohort

    if not path.is_file():
        return None
    try:
        return Cohort.from_csv(path)
    except HybridradError as exc:
        raise ReportInputError(f"{path}: {exc}") from exc


def _overlay_html(run: _Run, quality: pd.DataFrame | None) -> str:
    from hybridrad.io.images import read_image
    from hybridrad.report.overlay import overlay_figure, radiological_arrays

    predicted = _cohort_or_none(run.path("segmentation", "manifest.csv"))
    if predicted is None:
        return ""
    reference = _cohort_or_none(run.path("preprocess", "manifest.csv")) or _cohort_or_none(
        run.path("cohort", "manifest.csv")
    )
    blocks = []
    for case_id, why in _overlay_cases(quality, predicted.case_ids):
        case = predicted[case_id]
        seq = "flair" if "flair" in case.images else next(iter(case.images))
        try:
            image = read_image(case.images[seq], warn_constant=False)
            masks = []
            truth = None
            if reference is not None and case_id in reference.case_ids:
                truth_path = reference[case_id].mask
                if truth_path is not None:
                    truth = read_image(truth_path, warn_constant=False)
            pred = read_image(case.mask, warn_constant=False) if case.mask is not None else None
            masks = [m for m in (pred, truth) if m is not None]
            if not masks:
                continue
            arr, arrays, spacing = radiological_arrays(image, *masks)
        except (HybridradError, RuntimeError) as exc:
            blocks.append(run.note("segmentation", f"overlay of case {case_id!r}: {exc}"))
            continue
        pred_arr = arrays[0] if pred is not None else None
        truth_arr = arrays[-1] if truth is not None else None
        fig = overlay_figure(
            arr, truth_arr, pred_arr, f"{case_id} ({seq})", spacing=spacing, max_slices=8
        )
        caption = f"Case {case_id}" + (f", {why}" if why else "") + f"; background {seq}."
        blocks.append(_figure_block(_img(fig, f"overlay of case {case_id}", dpi=80), caption))
    return "".join(blocks)


def _segmentation_section(run: _Run) -> tuple[str, str, str] | None:
    if not run.exists("segmentation"):
        return None
    quality_path = run.path("segmentation", "quality.csv")
    quality = (
        _read_csv(quality_path, ["case_id", "region", "dice", "hd95_mm"], dtype={"case_id": str})
        if quality_path.is_file()
        else None
    )
    body = ""
    if quality is not None and not quality.empty:
        from hybridrad.report.plots import dice_plot

        summary = _quality_summary(quality)
        body += _table(
            summary, caption="Per region (Dice NaN where a region is empty in both masks)"
        )
        body += _figure_block(
            _img(dice_plot(quality, title="Dice per region"), "Dice per region"),
            "Dice of every case per region (box: quartiles).",
        )
        wide = quality.pivot_table(
            index="case_id", columns="region", values=["dice", "hd95_mm"], sort=False
        )
        wide.columns = [f"{region} {metric}" for metric, region in wide.columns]
        wide = wide[sorted(wide.columns, key=lambda c: (not c.endswith("dice"), c))]
        dice_cols = [c for c in wide.columns if c.endswith("dice")]
        wide = wide.loc[wide[dice_cols].mean(axis=1).sort_values().index]
        body += _details(
            f"Per case ({len(wide)} cases, lowest mean Dice first)",
            _table(wide.rename_axis("case"), scroll=True),
        )
        intro = (
            "Predicted masks against the reference masks of the manifest: Dice and the "
            "95th-percentile Hausdorff distance per region, then overlays of the cases "
            "with the lowest, median and highest mean Dice (reference in green, "
            "prediction in magenta)."
        )
    else:
        intro = (
            "The masks the segmentation stage predicted. The manifest has no reference "
            "masks, so no Dice is computed; the overlays show the prediction (magenta) "
            "on a few cases."
        )
    body += _p(
        "Overlays are axial slices in the radiological convention: images are reoriented "
        "to LPS (sitk.DICOMOrient), anterior (A) at the top and the patient's right (R) "
        "on the viewer's left."
    )
    body += _overlay_html(run, quality)
    return _section("segmentation", "Segmentation quality", intro, body)


# --- 3. comparison and paired difference ----------------------------------------------------


HEADLINE = (
    "blocks",
    "n_features",
    "harrell_c",
    "auc",
    "ci_low",
    "ci_high",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "delta_p",
    "perm_p",
    "imaging_folds",
    "uno_c",
    "td_auc",
    "ibs",
    "balanced_accuracy",
    "logrank_p",
    "hazard_ratio",
)


def _comparison_section(run: _Run) -> tuple[str, str, str] | None:
    if not run.targets:
        return None
    from hybridrad.report.plots import comparison_plot

    body = ""
    for target in run.targets:
        table = target.comparison
        cols = [c for c in HEADLINE if c in table.columns]
        metric_name = "Harrell's C" if target.metric == "harrell_c" else "ROC AUC"
        fig = comparison_plot(table, target.metric, title=f"{target.title}: {metric_name}")
        body += f"<h3>{_e(target.title)}</h3>"
        body += _figure_block(
            _img(fig, f"comparison of the feature sets, {target.name}"),
            f"{metric_name} of each feature set, out-of-fold, with its 95 % CI; dashed: chance.",
        )
        body += _table(table[cols], scroll=True)
        interpretation = target.folder / "interpretation.txt"
        if interpretation.is_file():
            lines = [
                ln for ln in interpretation.read_text(encoding="utf-8").splitlines() if ln.strip()
            ]
            body += "<ul>" + "".join(f"<li>{_e(ln)}</li>" for ln in lines) + "</ul>"
        ci = target.provenance.get("ci_method") or table.attrs.get("ci_method")
        settings = _mapping(target.provenance.get("config"))
        if settings:
            body += _note(
                f"Nested cross-validation: {settings.get('outer_splits')} outer folds x "
                f"{settings.get('outer_repeats')} repeat(s), {settings.get('inner_splits')} "
                f"inner folds; {settings.get('n_boot')} bootstrap resamples"
                + (f"; CI: {ci}" if ci else "")
                + "."
            )
    intro = (
        "Each feature set (clinical, handcrafted, deep, hybrid ...) evaluated on the same "
        "outer folds of a nested cross-validation: the headline metric with its 95 % CI, "
        "the other metrics, and the sentences hybridrad writes about the comparison."
    )
    return _section("comparison", "Feature-set comparison", intro, body)


def _difference_section(run: _Run) -> tuple[str, str, str] | None:
    from hybridrad.report.plots import difference_plot

    reference = str(run.model.get("reference_set", "clinical"))
    body = ""
    for target in run.targets:
        table = target.comparison
        if "delta" not in table.columns:
            continue
        rows = table[pd.to_numeric(table["delta"], errors="coerce").notna()]
        if rows.empty:
            continue
        ref = str(_mapping(target.provenance.get("config")).get("reference_set", reference))
        body += f"<h3>{_e(target.title)}</h3>"
        metric = "C" if target.metric == "harrell_c" else "AUC"
        sentences = []
        for name, row in rows.iterrows():
            lo, hi = row.get("delta_ci_low", np.nan), row.get("delta_ci_high", np.nan)
            p = row.get("delta_p", np.nan)
            sentences.append(
                f"{name} \u2212 {ref}: \u0394{metric} = {float(row['delta']):+.3f} "
                f"(95 % CI {_fmt(lo)} to {_fmt(hi)}; p = {_fmt(p, 2)})"
            )
        body += "<ul>" + "".join(f"<li>{_e(s)}</li>" for s in sentences) + "</ul>"
        body += _figure_block(
            _img(
                difference_plot(table, reference_set=ref, title=f"{target.title}: \u0394{metric}"),
                f"paired differences to {ref}, {target.name}",
            ),
            f"Difference of each set's {metric} to the {ref} set on the same folds and "
            "bootstrap resamples; a CI crossing 0 (dashed) means no clear gain.",
        )
        cols = [c for c in ("delta", "delta_ci_low", "delta_ci_high", "delta_p") if c in rows]
        body += _table(rows[cols])
    if not body:
        return None
    intro = (
        "The question the study asks: does imaging add to the clinical model? Each set's "
        f"paired difference to the reference set ({reference}), hybrid \u2212 clinical "
        "first of all, computed on the same outer folds and bootstrap resamples."
    )
    return _section("difference", "Paired difference to the reference set", intro, body)


# --- 4. Kaplan-Meier --------------------------------------------------------------------------


def _km_section(run: _Run) -> tuple[str, str, str] | None:
    targets = run.target("survival")
    if not targets:
        return None
    from hybridrad.models.stratify import compare_groups
    from hybridrad.report.plots import km_plot

    body = ""
    for target in targets:
        figures = []
        for name in target.sets:
            pred = target.predictions(name)
            if pred is None or "group" not in pred.columns:
                continue
            first = pred[pred["repeat"] == pred["repeat"].min()] if "repeat" in pred else pred
            got = run.survival_y(list(first["case_id"]))
            if got is None:
                body += run.note(
                    "Kaplan-Meier",
                    "the survival columns are not known (study.yaml targets.survival) or "
                    "absent from cohort/clinical.csv",
                )
                return _section("km", "Kaplan-Meier curves by risk group", "", body)
            ids, y = got
            groups = first.set_index("case_id").loc[ids, "group"].astype(str).to_numpy()
            try:
                cmp = compare_groups(y, groups, reference="low")
            except ValueError as exc:
                figures.append(run.note("Kaplan-Meier", f"{name}: {exc}"))
                continue
            fig = km_plot(cmp, title=f"{name}", time_label=run.time or "time")
            figures.append(
                _figure_block(
                    _img(fig, f"Kaplan-Meier curves of {name}", dpi=80),
                    f"{name}: log-rank p = {cmp.logrank_p_value:.3g}",
                )
            )
        if figures:
            body += f"<h3>{_e(target.title)}</h3>"
            body += '<div class="grid">' + "".join(figures) + "</div>"
        risk_tables = []
        for name in target.sets:
            path = target.folder / f"risk_groups_{_slug(name)}.csv"
            if path.is_file():
                rg = _read_csv(path)
                rg.insert(0, "feature_set", name)
                risk_tables.append(rg)
        if risk_tables:
            merged = pd.concat(risk_tables, ignore_index=True)
            cols = [
                c
                for c in (
                    "feature_set",
                    "repeat",
                    "n_high",
                    "n_low",
                    "logrank_p",
                    "hazard_ratio",
                    "hr_low",
                    "hr_high",
                    "degenerate",
                )
                if c in merged.columns
            ]
            body += _table(
                merged[cols], index=False, caption="Risk groups of every CV repeat", scroll=True
            )
    if not body:
        return None
    intro = (
        "Cases split into high and low risk inside each outer fold, at the median risk of "
        "that fold's training cases, so no case's group depends on its own outcome. The "
        "curves pool the test folds of the first CV repeat; the table gives every repeat."
    )
    return _section("km", "Kaplan-Meier curves by risk group", intro, body)


# --- 5. ROC ------------------------------------------------------------------------------------


def _probability_column(pred: pd.DataFrame) -> str | None:
    cols = [c for c in pred.columns if str(c).startswith("p_")]
    if len(cols) == 1:
        return cols[0]
    return "p_1" if "p_1" in cols else None


def _first_repeat(pred: pd.DataFrame) -> pd.DataFrame:
    return pred[pred["repeat"] == pred["repeat"].min()] if "repeat" in pred.columns else pred


def _roc_section(run: _Run) -> tuple[str, str, str] | None:
    targets = run.target("classification")
    if not targets:
        return None
    from hybridrad.models.metrics import roc_curve_table
    from hybridrad.report.plots import roc_plot

    body = ""
    for target in targets:
        curves = {}
        for name in target.sets:
            pred = target.predictions(name)
            if pred is None or "label" not in pred.columns:
                continue
            column = _probability_column(pred)
            first = _first_repeat(pred)
            y = pd.to_numeric(first["label"], errors="coerce")
            if column is None or y.nunique() != 2:
                continue
            row = target.comparison.loc[name]
            legend = (
                f"{name} (AUC {_fmt(row['auc'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}])"
            )
            curves[legend] = roc_curve_table(y.to_numpy() == 1, first[column].to_numpy(float))
        if curves:
            body += f"<h3>{_e(target.title)}</h3>"
            body += _figure_block(
                _img(roc_plot(curves, title=target.title), f"ROC curves, {target.name}"),
                "Out-of-fold ROC curves of the first CV repeat; the AUC in the legend is the "
                "cross-validated estimate with its 95 % CI.",
            )
    if not body:
        return None
    intro = (
        "How well each feature set separates the subtype classes: ROC curves from the "
        "out-of-fold predicted probabilities of the positive class."
    )
    return _section("roc", "ROC curves of the subtype labels", intro, body)


# --- 6. calibration and decision curves -----------------------------------------------------


def _final_dir(target: _Target) -> Path | None:
    folder = target.folder / "final"
    return folder if (folder / "model.json").is_file() else None


def _final_meta(folder: Path) -> dict[str, Any]:
    from hybridrad.models.persist import read_model_info

    try:
        return _mapping(read_model_info(folder).get("metadata"))
    except HybridradError as exc:
        raise ReportInputError(f"{folder}: {exc}") from exc


def _final_set(run: _Run, target: _Target) -> str | None:
    folder = _final_dir(target)
    if folder is not None:
        name = _final_meta(folder).get("feature_set")
        if name in target.sets:
            return str(name)
    name = run.study.get("final_model")
    if name in target.sets:
        return str(name)
    return "hybrid" if "hybrid" in target.sets else (target.sets[-1] if target.sets else None)


def _n_groups(n: int) -> int:
    return int(np.clip(n // 10, 2, 5))


THRESHOLDS = np.round(np.arange(0.0, 0.96, 0.01), 2)


def _binary_as_survival(y: np.ndarray) -> np.ndarray:
    """A binary outcome as survival data: every case followed to t = 1, the positive
    class as the event, so that Kaplan-Meier at t = 1 is the observed proportion and
    :func:`~hybridrad.models.metrics.net_benefit` is Vickers' TP/n - FP/n * pt/(1-pt)."""
    out = np.empty(len(y), dtype=[("event", bool), ("time", float)])
    out["event"] = np.asarray(y, dtype=bool)
    out["time"] = 1.0
    return out


def binary_calibration(
    y: Sequence[int] | np.ndarray, probability: Sequence[float] | np.ndarray, n_groups: int = 5
) -> tuple[pd.DataFrame, float, float]:
    """Grouped calibration of predicted probabilities of a binary outcome.

    The outcome is read as survival data followed to t = 1 with the positive class as
    the event (see :func:`hybridrad.models.metrics.calibration_at`): the observed value
    of a group is then its proportion of positives, with a log-log 95 % CI.

    Parameters
    ----------
    y
        Outcome, 1 positive, 0 negative.
    probability
        Predicted probability of the positive class.
    n_groups
        Quantile groups of the prediction.

    Returns
    -------
    table : pandas.DataFrame
        One row per group: ``n``, ``predicted``, ``observed``, ``observed_lower``,
        ``observed_upper`` (probabilities of the positive class).
    slope, intercept : float
        Size-weighted least-squares line of observed on predicted (1 and 0 when perfect).
    """
    from hybridrad.models.metrics import calibration_at

    p = np.asarray(probability, dtype=float)
    result = calibration_at(_binary_as_survival(np.asarray(y)), 1.0 - p, 1.0, n_groups)
    t = result.table
    table = pd.DataFrame(
        {
            "n": t["n"],
            "predicted": 1.0 - t["predicted"],
            "observed": 1.0 - t["observed"],
            "observed_lower": 1.0 - t["observed_upper"],
            "observed_upper": 1.0 - t["observed_lower"],
        }
    ).iloc[::-1]
    slope = float(result.slope)
    return table.reset_index(drop=True), slope, float(1.0 - result.intercept - slope)


def _calibration_classification(run: _Run, target: _Target) -> str:
    from hybridrad.models.metrics import net_benefit
    from hybridrad.report.plots import calibration_plot, decision_curve_plot

    name = _final_set(run, target)
    pos = target.provenance.get("positive_class", "positive")
    curves: dict[str, pd.DataFrame] = {}
    body = ""
    ref = str(run.model.get("reference_set", "clinical"))
    for set_name in dict.fromkeys([n for n in (name, ref) if n in target.sets]):
        pred = target.predictions(set_name)
        column = None if pred is None else _probability_column(pred)
        if pred is None or column is None or "label" not in pred.columns:
            continue
        first = _first_repeat(pred)
        y = pd.to_numeric(first["label"], errors="coerce").to_numpy()
        prob = first[column].to_numpy(float)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HybridradWarning)
                if set_name == name:
                    table, slope, intercept = binary_calibration(y, prob, _n_groups(len(y)))
                    body += _figure_block(
                        _img(
                            calibration_plot(
                                table,
                                title=f"{set_name}: out-of-fold calibration",
                                xlabel=f"predicted probability of {pos}",
                                ylabel=f"observed fraction of {pos}",
                                slope=slope,
                                intercept=intercept,
                            ),
                            f"calibration of {set_name}, {target.name}",
                        ),
                        "Observed fraction against mean predicted probability in quantile "
                        "groups of the out-of-fold predictions (first repeat).",
                    )
                curves[set_name] = net_benefit(_binary_as_survival(y == 1), prob, 1.0, THRESHOLDS)
        except ValueError as exc:
            body += run.note("calibration", f"{target.name}, {set_name}: {exc}")
    if curves:
        body += _figure_block(
            _img(
                decision_curve_plot(curves, title=f"{target.title}: decision curves"),
                f"decision curves, {target.name}",
            ),
            f"Net benefit of calling {pos} when the out-of-fold probability reaches the "
            "threshold, against treating everyone or no one.",
        )
    return body


def _final_survival_at(
    run: _Run, folder: Path, horizon: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Cases, their survival target and the final model's S(horizon | x) (apparent)."""
    from hybridrad.models.final import model_input
    from hybridrad.models.fusion import CLINICAL, block_prefix, fuse, load_feature_tables
    from hybridrad.models.persist import load_model
    from hybridrad.models.survival import survival_function_at

    meta = _final_meta(folder)
    features = [str(c) for c in meta.get("features", [])]
    tables = [
        p
        for p, block in (
            (run.path("handcrafted", "features.parquet"), "rad"),
            (run.path("deep", "features.parquet"), "deep"),
        )
        if p.is_file() and any(block_prefix(c) == block for c in features)
    ]
    covariates = sorted({c.split("__")[1] for c in features if block_prefix(c) == CLINICAL})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HybridradWarning)
        frames = load_feature_tables(tables) if tables else []
        X = fuse(frames, clinical=run.clinical, covariates=covariates)
        Xin = model_input(meta, X, where="the run's feature tables")
        got = run.survival_y(list(Xin.index))
        if got is None:
            raise ValueError("the survival columns are not known")
        ids, y = got
        model = load_model(folder)
        surv = survival_function_at(model, Xin.loc[ids], [horizon])[:, 0]
    return ids, y, np.clip(surv, 0.0, 1.0)


def _calibration_survival(run: _Run, target: _Target) -> str:
    from hybridrad.models.final import CLINICAL_SUBFOLDER
    from hybridrad.models.metrics import calibration_at, net_benefit
    from hybridrad.report.plots import calibration_plot, decision_curve_plot

    folder = _final_dir(target)
    if folder is None:
        return ""
    meta = _final_meta(folder)
    horizon = meta.get("horizon")
    if horizon is None:
        return run.note("calibration", f"{folder}/model.json has no horizon")
    h = float(horizon)
    body = ""
    curves: dict[str, pd.DataFrame] = {}
    models = [(str(meta.get("feature_set", "final")), folder)]
    sub = meta.get("clinical_model")
    if sub and (folder / str(sub) / "model.json").is_file():
        models.append((CLINICAL_SUBFOLDER, folder / str(sub)))
    for name, model_dir in models:
        try:
            _ids, y, surv = _final_survival_at(run, model_dir, h)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HybridradWarning)
                if model_dir == folder:
                    cal = calibration_at(y, surv, h, _n_groups(len(y)))
                    body += _figure_block(
                        _img(
                            calibration_plot(
                                cal.table,
                                title=f"{name}: apparent calibration at t = {h:.4g}",
                                xlabel=f"predicted survival at {h:.4g}",
                                ylabel=f"observed (Kaplan-Meier) survival at {h:.4g}",
                                slope=cal.slope,
                                intercept=cal.intercept,
                            ),
                            f"calibration of the final {name} model",
                        ),
                        f"Kaplan-Meier survival at {h:.4g} ({meta.get('horizon_rule', '')}) "
                        "against the mean predicted survival, in quantile groups.",
                    )
                curves[name] = net_benefit(y, 1.0 - surv, h, THRESHOLDS)
        except (HybridradError, ValueError, AttributeError, NotImplementedError, TypeError) as exc:
            body += run.note("calibration", f"final model {model_dir}: {exc}")
    if curves:
        body += _figure_block(
            _img(
                decision_curve_plot(
                    curves,
                    title=f"decision curves at t = {h:.4g}",
                    xlabel=f"threshold probability of an event by {h:.4g}",
                ),
                f"decision curves, {target.name}",
            ),
            "Net benefit of calling a patient high risk when the predicted probability of "
            f"an event by {h:.4g} reaches the threshold (censoring-aware, Kaplan-Meier).",
        )
    if body:
        body = (
            _note(
                "Apparent (in-sample) performance: the final model predicts the cases it was "
                "fitted on, which flatters it. The external validation section, when "
                "present, shows calibration on new cases."
            )
            + body
        )
    return body


def _calibration_section(run: _Run) -> tuple[str, str, str] | None:
    body = ""
    for target in run.targets:
        part = (
            _calibration_survival(run, target)
            if target.task == "survival"
            else _calibration_classification(run, target)
        )
        if part:
            body += f"<h3>{_e(target.title)}</h3>" + part
    if not body:
        return None
    intro = (
        "Whether predicted probabilities match what happened (calibration, in quantile "
        "groups), and whether acting on the model beats acting on everyone or no one "
        "(decision curves, net benefit). Survival: the final model at its horizon, with "
        "the clinical-only reference model; labels: the out-of-fold predictions."
    )
    return _section("calibration", "Calibration and decision curves", intro, body)


# --- 7. feature importance ----------------------------------------------------------------


def model_importance(model_dir: str | os.PathLike[str]) -> tuple[pd.Series, str]:
    """Importance of each feature of a final model (:func:`~hybridrad.models.final.fit_final`).

    Parameters
    ----------
    model_dir
        The model folder.

    Returns
    -------
    importance : pandas.Series
        Coefficients (Cox, logistic, Coxnet at its chosen penalty) or xgboost gain per
        feature, indexed by feature name, largest absolute value first.
    kind : str
        What the numbers are (written as the axis label).

    Raises
    ------
    ReportInputError
        The model's last step has neither coefficients nor an xgboost booster.
    """
    from hybridrad.models.persist import load_model

    folder = Path(model_dir)
    meta = _final_meta(folder)
    features = [str(c) for c in meta.get("features", [])]
    model = load_model(folder)
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    scaled = any(type(step).__name__ == "StandardScaler" for _, step in getattr(model, "steps", []))
    per = " per SD of the feature" if scaled else ""
    names = [str(n) for n in getattr(est, "feature_names_in_", features)]
    coef = getattr(est, "coef_", None)
    if isinstance(coef, pd.Series):
        values = coef.astype(float)
        kind = f"Cox coefficient (log hazard ratio{per})"
    elif coef is not None:
        arr = np.asarray(coef, dtype=float)
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
            kind = f"logistic coefficient (log odds ratio{per})"
        elif arr.ndim == 2:  # a coefficient path (Coxnet): the last penalty is the chosen one
            arr = arr[:, -1]
            kind = f"Cox coefficient (log hazard ratio{per})"
        else:
            kind = f"coefficient{per}"
        if len(names) != arr.size:
            names = features if len(features) == arr.size else [f"x{i}" for i in range(arr.size)]
        values = pd.Series(arr, index=names)
    else:
        booster = getattr(est, "booster_", None) or getattr(est, "get_booster", lambda: None)()
        if booster is None:
            raise ReportInputError(
                f"{folder}: the model ({type(est).__name__}) has no coefficients and no "
                "xgboost booster; its importance cannot be shown"
            )
        gain = booster.get_score(importance_type="gain")
        mapped = {
            (
                features[int(k[1:])]
                if re.fullmatch(r"f\d+", k) and int(k[1:]) < len(features)
                else k
            ): v
            for k, v in gain.items()
        }
        values = pd.Series(mapped, dtype=float)
        kind = "xgboost gain"
    values = values.reindex(values.abs().sort_values(ascending=False).index)
    return values, kind


def _importance_section(run: _Run) -> tuple[str, str, str] | None:
    from hybridrad.report.plots import importance_plot

    body = ""
    for target in run.targets:
        folder = _final_dir(target)
        if folder is None:
            continue
        meta = _final_meta(folder)
        body += f"<h3>{_e(target.title)}: final {_e(meta.get('feature_set', ''))} model</h3>"
        facts = [
            (k, meta.get(k))
            for k in (
                "feature_set",
                "model",
                "best_params",
                "n_cases",
                "n_events",
                "n_features",
                "n_features_active",
                "n_imaging_features_active",
                "inner_cv_score",
                "apparent_c_index",
                "apparent_auc",
                "risk_cutoff",
                "horizon",
                "threshold",
                "clinical_fallback_chosen",
            )
            if k in meta
        ]
        body += _kv_table(facts)
        try:
            values, kind = model_importance(folder)
        except ReportInputError as exc:
            body += run.note("feature importance", str(exc))
            continue
        nonzero = values[values != 0]
        if nonzero.empty:
            body += _p(
                "The final model has no non-zero coefficient: it predicts the same value for "
                "every case (the inner cross-validation found no usable signal)."
            )
            continue
        body += _figure_block(
            _img(
                importance_plot(
                    values, xlabel=kind, title=f"top features of the {target.name} model"
                ),
                f"feature importance, {target.name}",
            ),
            f"The {min(20, len(nonzero))} largest of {len(nonzero)} non-zero values "
            f"({kind}); red raises, blue lowers the "
            + ("risk." if target.task == "survival" else "probability of the positive class."),
        )
        table = pd.DataFrame({"value": nonzero})
        if "Cox" in kind and "per SD" in kind:
            table["hazard ratio per SD"] = np.exp(nonzero)
        elif "logistic" in kind:
            table["odds ratio per SD" if "per SD" in kind else "odds ratio"] = np.exp(nonzero)
        body += _details(
            f"All {len(nonzero)} non-zero values", _table(table.rename_axis("feature"), scroll=True)
        )
    if not body:
        return None
    intro = (
        "What the final model (tuned and fitted on every case, evaluation/<target>/final) "
        "uses: its coefficients on standardised features, so their sizes compare."
    )
    return _section("importance", "Feature importance", intro, body)


# --- 8. handcrafted vs deep correlation ---------------------------------------------------


def _correlation_section(run: _Run) -> tuple[str, str, str] | None:
    rad_path = run.path("handcrafted", "features.parquet")
    deep_path = run.path("deep", "features.parquet")
    if not (rad_path.is_file() and deep_path.is_file()):
        return None
    from hybridrad.models.fusion import load_feature_tables
    from hybridrad.report.correlation import feature_correlation, strength
    from hybridrad.report.plots import correlation_heatmap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HybridradWarning)
        try:
            rad, deep = load_feature_tables([rad_path, deep_path])
        except HybridradError as exc:
            raise ReportInputError(f"feature tables of {run.root}: {exc}") from exc
    try:
        result = feature_correlation(rad, deep)
    except ValueError as exc:
        return _section(
            "correlation",
            "Handcrafted versus deep features",
            "Spearman correlation of every handcrafted with every deep feature.",
            run.note("correlation", str(exc)),
        )
    med = float(result.max_abs.median())
    null_med = float(result.null_max_abs.median())
    share = float((result.max_abs >= 0.7).mean())
    top_name = str(result.max_abs.index[0])
    partner = str(result.partner.iloc[0])
    r_top = float(result.matrix.loc[[top_name], [partner]].to_numpy()[0, 0])
    text = (
        f"Over {result.n_cases} cases, {len(result.max_abs)} handcrafted and "
        f"{result.matrix.shape[1]} deep features: the typical handcrafted feature correlates "
        f"{strength(med)} with its best-matching deep feature (median of the largest |r| "
        f"per handcrafted feature: {med:.2f}; with the cases shuffled, chance alone gives "
        f"{null_med:.2f}). {100 * share:.0f} % of the handcrafted features have some deep "
        f"feature with |r| \u2265 0.7. Strongest pair: {top_name} with "
        f"{partner} (r = {r_top:+.2f})."
    )
    body = _p(text)
    if result.dropped:
        body += _note(f"{len(result.dropped)} column(s) left out (missing values or constant).")
    fig = _hist_figure(result.max_abs.to_numpy(float), result.null_max_abs.to_numpy(float))
    body += _figure_block(
        _img(fig, "distribution of the largest |r| per handcrafted feature"),
        "Largest |Spearman r| of each handcrafted feature with any deep feature, observed "
        "and with the case pairing shuffled.",
    )
    top = result.top(20)
    body += _figure_block(
        _img(
            correlation_heatmap(top, title="top handcrafted x deep features"),
            "correlation heatmap of the top features",
        ),
        f"Spearman r of the {top.shape[0]} handcrafted features with the largest |r| and "
        f"the {top.shape[1]} deep features most correlated with them.",
    )
    body += _table(
        result.by_group(),
        caption="By handcrafted feature class: the largest |r| with any deep feature",
    )
    listing = pd.DataFrame(
        {
            "max |r|": result.max_abs,
            "deep feature": result.partner,
            "chance (shuffled)": result.null_max_abs,
        }
    ).iloc[:50]
    body += _details(
        "The 50 handcrafted features most correlated with a deep feature",
        _table(listing.rename_axis("handcrafted feature"), scroll=True),
    )
    intro = (
        "Do the deep features measure what the handcrafted ones do? Spearman correlation "
        "of every handcrafted with every deep feature, summarised per handcrafted feature "
        "by its largest absolute correlation."
    )
    return _section("correlation", "Handcrafted versus deep features", intro, body)


def _hist_figure(observed: np.ndarray, null: np.ndarray) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.hist(observed, bins=40, range=(0.0, 1.0), alpha=0.7, label="observed")
    ax.hist(null, bins=40, range=(0.0, 1.0), alpha=0.5, label="cases shuffled")
    ax.set(xlabel="largest |Spearman r| with a deep feature", ylabel="handcrafted features")
    ax.legend()
    fig.tight_layout()
    return fig


# --- 9. external validation ---------------------------------------------------------------


EXTERNAL_KEYS = (
    "n",
    "n_events",
    "n_positive",
    "c_index",
    "auc",
    "ci_low",
    "ci_high",
    "calibration_slope",
    "calibration_intercept",
    "horizon",
    "observed_survival_at_horizon",
    "predicted_survival_at_horizon",
    "logrank_p",
    "hazard_ratio",
    "hr_low",
    "hr_high",
    "n_high",
    "n_low",
    "threshold",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
)


def _external_section(run: _Run) -> tuple[str, str, str] | None:
    root = run.path("external")
    folders = (
        [f for f in sorted(root.iterdir()) if (f / "metrics.json").is_file()]
        if root.is_dir()
        else []
    )
    if not folders:
        return None
    body = ""
    for folder in folders:
        metrics = _mapping(_read_json(folder / "metrics.json"))
        clinical = _mapping(metrics.get("clinical"))
        body += f"<h3>{_e(folder.name)}: final {_e(metrics.get('feature_set', ''))} model</h3>"
        rows = {
            key: {
                str(metrics.get("feature_set", "model")): metrics.get(key),
                **({"clinical": clinical.get(key)} if clinical else {}),
            }
            for key in EXTERNAL_KEYS
            if key in metrics
        }
        frame = pd.DataFrame(rows).T.rename_axis("metric")
        body += _table(frame.apply(lambda col: col.map(_as_number)))
        ci = _mapping(metrics.get("provenance")).get("ci_method")
        if ci:
            body += _note(f"CI: {ci}.")
        figures = [
            _figure_block(_img_bytes(png.read_bytes(), png.stem), png.name)
            for png in sorted(folder.glob("*.png"))
            if png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        ]
        if figures:
            body += '<div class="grid">' + "".join(figures) + "</div>"
        calibration = folder / "calibration.csv"
        if calibration.is_file():
            body += _details(
                "calibration.csv", _table(_read_csv(calibration), index=False, scroll=True)
            )
        others = [p.name for p in sorted(folder.glob("*.csv")) if p.name != "calibration.csv"]
        if others:
            body += _note("Also in " + str(folder.relative_to(run.root)) + ": " + ", ".join(others))
    intro = (
        "The final model scored unchanged on a second cohort (external/<target>/): "
        "discrimination with its CI, calibration, and the risk groups at the training "
        "cutoff, beside the clinical-only reference model."
    )
    return _section("external", "External validation", intro, body)


def _as_number(value: Any) -> Any:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else value
    except (TypeError, ValueError):
        return value


# --- 10. reproducibility --------------------------------------------------------------------


_HASH = re.compile(r"^[0-9a-f]{16,128}$")


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, value


def _provenance_files(run: _Run) -> list[Path]:
    found = []
    for pattern in ("*/stage.json", "*/*.provenance.json", "evaluation/*/provenance.json"):
        found += sorted(run.root.glob(pattern))
    return found


def _hash_rows(run: _Run) -> pd.DataFrame:
    rows = []
    for path in _provenance_files(run):
        data = _read_json(path)
        for key, value in _flatten(data):
            if isinstance(value, str) and _HASH.match(value):
                rows.append((str(path.relative_to(run.root)), key, value))
    return pd.DataFrame(rows, columns=["file", "key", "sha256 / hash"])


def _radiomics_settings(run: _Run) -> tuple[dict[str, Any], str] | None:
    path = run.path("handcrafted", "radiomics.yaml")
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return _mapping(_read_yaml(path)), text


def _n_columns(path: Path) -> int | None:
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"{path}: not a readable Parquet table ({exc})") from exc
    return sum(1 for n in names if n != "case_id" and not n.startswith("__index"))


def _failures(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        return len(pd.read_csv(path))
    except pd.errors.EmptyDataError:
        return 0


@dataclass
class _Facts:
    """What the checklist items are filled from."""

    values: dict[str, str]

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if value else None


def _facts(run: _Run) -> _Facts:
    v: dict[str, str] = {}
    study, model = run.study, run.model
    cohort = _mapping(study.get("cohort"))
    synthetic = _mapping(cohort.get("synthetic"))
    if synthetic:
        v["source"] = (
            f"synthetic cohort generated by hybridrad ({synthetic.get('n_cases')} cases, "
            f"seed {synthetic.get('seed')})"
        )
    elif cohort.get("discover"):
        d = _mapping(cohort.get("discover"))
        v["source"] = f"dataset layout {d.get('layout')} in {d.get('folder')}"
    elif cohort.get("manifest"):
        v["source"] = f"manifest {cohort.get('manifest')}, clinical table {cohort.get('clinical')}"
    surv = run.target("survival")
    n_cases = None
    if surv:
        n_cases = surv[0].provenance.get("n_cases")
    elif run.targets:
        n_cases = run.targets[0].provenance.get("n_cases")
    if n_cases is None and run.clinical is not None:
        n_cases = len(run.clinical)
    outcome = []
    if run.time and run.event:
        outcome.append(
            f"overall survival: time column {run.time!r}, event column {run.event!r} "
            "(1 = event, 0 = censored)"
        )
    for name, spec in run.labels.items():
        pos = spec.get("positive")
        outcome.append(
            f"label {name}: column {spec['column']!r}"
            + (f", positive class {pos!r} vs the rest" if pos is not None else "")
        )
    if outcome:
        v["outcome"] = "; ".join(outcome)
    size = []
    if n_cases is not None:
        size.append(f"{n_cases} cases analysed")
    for t in run.targets:
        ev = t.provenance.get("n_events")
        if ev is not None:
            size.append(f"{ev} events ({t.name})")
        elif t.task == "classification" and t.provenance.get("positive_class") is not None:
            pred = t.predictions(t.sets[0]) if t.sets else None
            if pred is not None and "label" in pred.columns:
                first = _first_repeat(pred)
                n_pos = int((pd.to_numeric(first["label"], errors="coerce") == 1).sum())
                size.append(f"{n_pos} of {len(first)} positive ({t.name})")
    if size:
        v["size"] = "; ".join(size) + " (no sample-size calculation is made by the pipeline)"
    missing = []
    if run.clinical is not None:
        used = [c for c in [run.time, run.event, *run.covariates] if c and c in run.clinical]
        used += [str(s["column"]) for s in run.labels.values() if s["column"] in run.clinical]
        counts = {c: int(run.clinical[c].isna().sum()) for c in dict.fromkeys(used)}
        missing.append(
            "missing values in the clinical columns used: "
            + ", ".join(f"{c}: {n}" for c, n in counts.items())
        )
    for stage in ("handcrafted", "deep"):
        n = _failures(run.path(stage, "failures.csv"))
        if n is None:
            n = _failures(run.path(stage, "features.failures.csv"))
        if n is not None:
            missing.append(f"{n} case(s) failed {stage} extraction (left out)")
    for t in run.targets:
        dropped = _mapping(t.provenance.get("dropped_cases"))
        for why, cases in dropped.items():
            missing.append(f"{t.name}: {len(cases)} case(s) left out ({why})")
    if model or run.targets:
        missing.append(
            "missing feature values imputed with the training-fold median inside the "
            "cross-validation (SimpleImputer)"
        )
    v["missing"] = "; ".join(missing)
    cfg = model
    if not cfg and run.targets:
        cfg = _mapping(run.targets[0].provenance.get("config"))
    if cfg:
        v["validation"] = (
            f"nested cross-validation: {cfg.get('outer_splits')} outer folds x "
            f"{cfg.get('outer_repeats')} repeat(s), {cfg.get('inner_splits')} inner folds for "
            f"tuning (selection rule {cfg.get('selection_rule')}); {cfg.get('n_boot')} bootstrap "
            "resamples for the CIs"
        )
        if run.exists("external"):
            v["validation"] += "; external validation on a second cohort"
        v["model"] = (
            f"survival model {cfg.get('model')}, classifier {cfg.get('classifier')}; feature "
            f"sets {_fmt(cfg.get('feature_sets'))}"
        )
        v["reduction"] = (
            f"near-zero variance filter, univariate pre-screen to {cfg.get('prescreen_k')}, "
            f"Spearman correlation filter |r| > {cfg.get('correlation_threshold')}, screening "
            f"to k in {_fmt(cfg.get('screen_k'))} tuned in the inner CV"
            + (f"; ICC >= {cfg.get('icc_threshold')}" if cfg.get("icc_table") else "")
            + " (all inside the training folds)"
        )
        v["confounders"] = (
            f"clinical covariates {', '.join(run.covariates) or 'none'}"
            + (" unpenalised" if cfg.get("clinical_unpenalized") else "")
            + ("; ComBat harmonisation across sites" if cfg.get("combat") else "")
        )
        v["heterogeneity"] = (
            "ComBat harmonisation of imaging features across the clinical site column, inside "
            "the folds"
            if cfg.get("combat")
            else None
        ) or ""
        v["seed"] = str(study.get("seed", cfg.get("seed")))
        v["comparison"] = (
            f"every set compared with {cfg.get('reference_set')} as a paired difference on the "
            f"same folds and bootstrap resamples; permutation test of the widest set "
            f"({cfg.get('n_permutations')} shuffles)"
        )
    ci = next(
        (t.provenance.get("ci_method") for t in run.targets if t.provenance.get("ci_method")), None
    )
    measures = []
    if surv:
        measures.append(
            "Harrell's C (headline), Uno's C, time-dependent AUC, integrated Brier score"
        )
        measures.append("Kaplan-Meier risk groups with log-rank test and hazard ratio")
    if run.target("classification"):
        measures.append(
            "ROC AUC (headline), balanced accuracy at the training-fold Youden threshold"
        )
    if run.targets:
        measures.append("grouped calibration and decision curves (net benefit)")
        v["measures"] = "; ".join(measures)
    if ci:
        v["uncertainty"] = str(ci)
    perf = []
    for t in run.targets:
        metric = "C" if t.metric == "harrell_c" else "AUC"
        for name in t.sets:
            row = t.comparison.loc[name]
            perf.append(
                f"{t.name} {name}: {metric} {_fmt(row[t.metric])} "
                f"(95 % CI {_fmt(row['ci_low'])}\u2013{_fmt(row['ci_high'])})"
            )
    if perf:
        v["performance"] = "; ".join(perf)
    gain = []
    for t in run.targets:
        if "delta" in t.comparison.columns:
            for set_name, row in t.comparison.iterrows():
                if pd.notna(row.get("delta")):
                    gain.append(
                        f"{t.name} {set_name} \u2212 reference: {float(row['delta']):+.3f} "
                        f"(95 % CI {_fmt(row.get('delta_ci_low'))}\u2013{_fmt(row.get('delta_ci_high'))})"
                    )
    if gain:
        v["gain"] = "; ".join(gain)
    versions = _mapping(run.run.get("versions")) or next(
        (
            _mapping(t.provenance.get("versions"))
            for t in run.targets
            if t.provenance.get("versions")
        ),
        {},
    )
    if versions:
        v["versions"] = ", ".join(f"{k} {val}" for k, val in versions.items())
        extract = [f"{k} {versions[k]}" for k in ("pyradiomics", "torch", "monai") if k in versions]
        v["software"] = (
            "hybridrad "
            + str(run.run.get("hybridrad_version") or versions.get("hybridrad", "?"))
            + ("; " + ", ".join(extract) if extract else "")
        )
    settings = _radiomics_settings(run)
    if settings is not None:
        cfg_r = settings[0]
        s = _mapping(cfg_r.get("setting"))
        if s:
            if "binWidth" in s or "binCount" in s:
                v["discretisation"] = (
                    f"fixed bin width {s['binWidth']}"
                    if "binWidth" in s
                    else f"fixed bin count {s['binCount']}"
                )
            if "resampledPixelSpacing" in s:
                v["resampling"] = (
                    f"resampled to {_fmt(s['resampledPixelSpacing'])} mm, interpolator "
                    f"{s.get('interpolator', 'sitkBSpline (default)')}"
                )
            norm = [
                f"{k} {s[k]}" for k in ("normalize", "normalizeScale", "voxelArrayShift") if k in s
            ]
            if norm:
                v["preprocessing"] = "intensity normalisation: " + ", ".join(norm)
        if cfg_r.get("imageType"):
            v["image_types"] = ", ".join(
                f"{k} {_fmt(val)}" if val else str(k)
                for k, val in _mapping(cfg_r.get("imageType")).items()
            )
        if cfg_r.get("featureClass"):
            v["classes"] = ", ".join(str(k) for k in _mapping(cfg_r.get("featureClass")))
        v["defaults"] = (
            "settings not in handcrafted/radiomics.yaml (reproduced in this report) are "
            "pyradiomics defaults"
        )
    pre = _mapping(study.get("preprocess"))
    if pre.get("spacing"):
        v["preprocessing"] = (
            f"images resampled to {_fmt(pre['spacing'])} mm before segmentation and extraction; "
            + v.get("preprocessing", "")
        ).rstrip("; ")
    n_rad = _n_columns(run.path("handcrafted", "features.parquet"))
    n_deep = _n_columns(run.path("deep", "features.parquet"))
    n_feats = []
    if n_rad is not None:
        n_feats.append(f"{n_rad} handcrafted")
    if n_deep is not None:
        deep = _mapping(_mapping(study.get("features")).get("deep"))
        n_feats.append(
            f"{n_deep} deep (encoder {deep.get('encoder') or 'the segmentation network'})"
        )
    if n_feats:
        v["n_features"] = " + ".join(n_feats) + " features per case"
    seg = _mapping(study.get("segmentation"))
    if seg:
        how = (
            f"automatic, 3D, MONAI model {seg.get('model')}"
            if seg.get("model")
            else "automatic, 3D, model trained on the cohort's masks"
        )
        v["segmentation"] = how
    elif run.exists("cohort", "manifest.csv"):
        v["segmentation"] = "masks of the manifest (method to be described by the authors)"
    qpath = run.path("segmentation", "quality.csv")
    if qpath.is_file():
        q = _read_csv(qpath, ["region", "dice"])
        v["seg_reliability"] = "Dice against reference masks: " + ", ".join(
            f"{r} {d:.3f}" for r, d in q.groupby("region", sort=False)["dice"].mean().items()
        )
    steps = []
    for t in run.targets:
        folder = _final_dir(t)
        if folder is not None:
            meta = _final_meta(folder)
            steps.append(
                f"{t.name}: {meta.get('feature_set')} model, {meta.get('n_features_active')} "
                f"active of {meta.get('n_features')} features, steps {', '.join(meta.get('steps', []))}, "
                f"saved without pickle in {folder.relative_to(run.root)}"
            )
    if steps:
        v["final"] = "; ".join(steps)
    if run.targets:
        v["scaling"] = "standardisation (StandardScaler) fitted inside each training fold"
        v["output"] = "; ".join(
            (
                f"{t.name}: a risk score; high/low groups at the median training risk"
                if t.task == "survival"
                else f"{t.name}: probability of the positive class; decision threshold by "
                "Youden's J on the training data"
            )
            for t in run.targets
        )
    stages = _mapping(run.run.get("stages"))
    if stages:
        v["pipeline"] = " \u2192 ".join(str(s) for s in stages)
    if run.exists("study.yaml"):
        v["code"] = (
            f"hybridrad {run.run.get('hybridrad_version', '')}; the run is reproduced by "
            "`hybridrad run study.yaml` (availability to be stated by the authors)"
        ).replace("  ", " ")
        v["settings_shared"] = "study.yaml and handcrafted/radiomics.yaml (in this report)"
    if run.exists("handcrafted", "features.parquet") or run.exists("deep", "features.parquet"):
        v["feature_data"] = (
            "feature tables in handcrafted/ and deep/ of the run directory (sharing to be "
            "decided by the authors)"
        )
    if run.exists("external"):
        v["external"] = "the final model scored unchanged on the external cohort (no updating)"
    v["interpretability"] = "model coefficients on standardised features (feature importance)"
    return _Facts(v)


#: TRIPOD+AI items (Collins et al., BMJ 2024;385:e078378): (id, topic, fact key or None).
TRIPOD_AI: tuple[tuple[str, str, str | None], ...] = (
    ("1", "Title", None),
    ("2", "Abstract", None),
    ("3a", "Background: healthcare context and rationale", None),
    ("3b", "Background: target population and intended use", None),
    ("3c", "Background: known health inequalities", None),
    ("4", "Objectives", None),
    ("5a", "Data: sources", "source"),
    ("5b", "Data: dates of accrual and follow-up", None),
    ("6a", "Participants: setting and centres", None),
    ("6b", "Participants: eligibility criteria", None),
    ("6c", "Participants: treatments", None),
    ("7", "Data preparation and quality checking", "preprocessing"),
    ("8a", "Outcome: definition and time horizon", "outcome"),
    ("8b", "Outcome: assessor qualifications", None),
    ("8c", "Outcome: blinding", None),
    ("9a", "Predictors: choice and pre-selection", "reduction"),
    ("9b", "Predictors: definition and measurement", "n_features"),
    ("9c", "Predictors: assessor qualifications", None),
    ("10", "Sample size", "size"),
    ("11", "Missing data", "missing"),
    ("12a", "Analysis: how the data were used", "validation"),
    ("12b", "Analysis: handling of predictors", "scaling"),
    ("12c", "Analysis: model type, building, tuning, internal validation", "model"),
    ("12d", "Analysis: heterogeneity across clusters", "heterogeneity"),
    ("12e", "Analysis: performance measures", "measures"),
    ("12f", "Analysis: model updating", None),
    ("12g", "Analysis: how predictions were calculated (evaluation)", "external"),
    ("13", "Class imbalance", None),
    ("14", "Fairness", None),
    ("15", "Model output and thresholds", "output"),
    ("16", "Training versus evaluation data", None),
    ("17", "Ethical approval", None),
    ("18a", "Funding", None),
    ("18b", "Conflicts of interest", None),
    ("18c", "Protocol", None),
    ("18d", "Registration", None),
    ("18e", "Data sharing", "feature_data"),
    ("18f", "Code sharing", "code"),
    ("19", "Patient and public involvement", None),
    ("20a", "Participants: flow, outcome counts, follow-up", "size"),
    ("20b", "Participants: characteristics (see Cohort)", "size"),
    ("20c", "Participants: development vs evaluation data", None),
    ("21", "Model development: participants and events per analysis", "size"),
    ("22", "Model specification", "final"),
    ("23a", "Model performance with confidence intervals", "performance"),
    ("23b", "Heterogeneity of performance across clusters", None),
    ("24", "Model updating results", None),
    ("25", "Interpretation", None),
    ("26", "Limitations", None),
    ("27a", "Usability: poor or missing input data", None),
    ("27b", "Usability: user interaction and expertise", None),
    ("27c", "Usability: next steps", None),
)

#: CLEAR items (Kocak et al., Insights Imaging 2023;14:75): (id, topic, fact key or None).
CLEAR: tuple[tuple[str, str, str | None], ...] = (
    ("1", "Title specifying the radiomic methodology", None),
    ("2", "Structured abstract", None),
    ("3", "Keywords", None),
    ("4", "Scientific or clinical background", None),
    ("5", "Rationale for a radiomic approach", None),
    ("6", "Study objectives", None),
    ("7", "Adherence to guidelines or checklists", None),
    ("8", "Ethical details", None),
    ("9", "Sample size calculation", "size"),
    ("10", "Study nature (retrospective, prospective)", None),
    ("11", "Eligibility criteria", None),
    ("12", "Flowchart of the technical pipeline", "pipeline"),
    ("13", "Data source", "source"),
    ("14", "Data overlap with previous studies", None),
    ("15", "Data split methodology", "validation"),
    ("16", "Imaging protocol", None),
    ("17", "Non-radiomic predictor variables", "confounders"),
    ("18", "Reference standard (outcome)", "outcome"),
    ("19", "Segmentation strategy", "segmentation"),
    ("20", "Segmentation operators", None),
    ("21", "Image pre-processing", "preprocessing"),
    ("22", "Resampling method and parameters", "resampling"),
    ("23", "Discretisation method and parameters", "discretisation"),
    ("24", "Image types", "image_types"),
    ("25", "Feature extraction software and version", "software"),
    ("26", "Feature classes", "classes"),
    ("27", "Number of features", "n_features"),
    ("28", "Default configuration statement", "defaults"),
    ("29", "Handling of missing data", "missing"),
    ("30", "Class imbalance", None),
    ("31", "Segmentation reliability", "seg_reliability"),
    ("32", "Feature scaling", "scaling"),
    ("33", "Dimension reduction", "reduction"),
    ("34", "Algorithm details", "model"),
    ("35", "Training and tuning (seed)", "seed"),
    ("36", "Handling of confounders", "confounders"),
    ("37", "Model selection strategy", "validation"),
    ("38", "Testing technique", "validation"),
    ("39", "Performance metrics", "measures"),
    ("40", "Uncertainty evaluation", "uncertainty"),
    ("41", "Statistical performance comparison", "comparison"),
    ("42", "Comparison with non-radiomic and combined methods", "comparison"),
    ("43", "Interpretability and explainability", "interpretability"),
    ("44", "Baseline characteristics (see Cohort)", "size"),
    ("45", "Flowchart of eligibility", None),
    ("46", "Feature statistics", "final"),
    ("47", "Model performance", "performance"),
    ("48", "Comparison with non-radiomic and combined approaches", "gain"),
    ("49", "Overview of important findings", None),
    ("50", "Previous works", None),
    ("51", "Practical implications", None),
    ("52", "Strengths and limitations", None),
    ("53", "Sharing images and segmentations", None),
    ("54", "Sharing radiomic feature data", "feature_data"),
    ("55", "Sharing pre-processing scripts or settings", "settings_shared"),
    ("56", "Sharing modelling code", "code"),
    ("57", "Sharing final model files", "final"),
    ("58", "Sharing a ready-to-use system", None),
)


def checklist(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The CLEAR and TRIPOD+AI items a run fills in, and those left to the authors.

    Parameters
    ----------
    run_dir
        A run directory (``hybridrad run``).

    Returns
    -------
    pandas.DataFrame
        One row per item: ``checklist`` (``TRIPOD+AI`` or ``CLEAR``), ``item`` (its
        number), ``topic``, ``value`` (what the run recorded, or "to be completed by the
        authors") and ``filled`` (bool).
    """
    facts = _facts(_load_run(Path(run_dir)))
    return _checklist_table(facts)


def _checklist_table(facts: _Facts) -> pd.DataFrame:
    rows = []
    for name, items in (("TRIPOD+AI", TRIPOD_AI), ("CLEAR", CLEAR)):
        for item, topic, key in items:
            value = facts.get(key) if key else None
            rows.append((name, item, topic, value or TO_COMPLETE, value is not None))
    return pd.DataFrame(rows, columns=["checklist", "item", "topic", "value", "filled"])


def _reproducibility_section(run: _Run) -> tuple[str, str, str] | None:
    body = ""
    facts = []
    for key, label in (
        ("study", "study"),
        ("study_hash", "study hash"),
        ("hybridrad_version", "hybridrad version"),
        ("started", "started"),
        ("finished", "finished"),
    ):
        if run.run.get(key) is not None:
            facts.append((label, run.run[key]))
    if "seed" in run.study:
        facts.append(("seed", run.study["seed"]))
    if facts:
        body += _kv_table(facts)
    stages = _mapping(run.run.get("stages"))
    if stages:
        table = pd.DataFrame(
            [
                {"stage": name, **{k: _mapping(info).get(k) for k in ("status", "key", "seconds")}}
                for name, info in stages.items()
            ]
        ).set_index("stage")
        body += "<h3>Stages</h3>" + _table(table)
    versions = _mapping(run.run.get("versions"))
    if versions:
        body += "<h3>Software versions</h3>" + _kv_table(versions.items())
    if run.exists("study.yaml"):
        body += "<h3>study.yaml</h3>" + _p(
            "The validated study with every default filled in; `hybridrad run study.yaml` "
            "reruns it."
        )
        body += _pre(run.path("study.yaml").read_text(encoding="utf-8"))
    hashes = _hash_rows(run)
    if not hashes.empty:
        body += "<h3>Hashes of inputs and stages</h3>" + _table(hashes, index=False, scroll=True)
    for path in _provenance_files(run):
        body += _details(
            f"{path.relative_to(run.root)}", _pre(json.dumps(_read_json(path), indent=2))
        )
    settings = _radiomics_settings(run)
    if settings is not None:
        cfg, text = settings
        body += "<h3>Radiomics (IBSI) settings</h3>"
        s = _mapping(cfg.get("setting"))
        if s:
            body += _kv_table(s.items(), caption="setting (handcrafted/radiomics.yaml)")
        rows = [("image types", ", ".join(map(str, _mapping(cfg.get("imageType")))))]
        rows.append(("feature classes", ", ".join(map(str, _mapping(cfg.get("featureClass"))))))
        body += _kv_table(rows)
        body += _details("handcrafted/radiomics.yaml", _pre(text))
    table = _checklist_table(_facts(run))
    if not body and not run.targets:
        return None
    n_filled = int(table["filled"].sum())
    body += "<h3>CLEAR and TRIPOD+AI checklist</h3>" + _p(
        f"{n_filled} of {len(table)} items are filled from the run; the others are "
        f"marked '{TO_COMPLETE}'. Item numbers follow TRIPOD+AI (Collins et al., BMJ "
        "2024;385:e078378) and CLEAR (Kocak et al., Insights Imaging 2023;14:75)."
    )
    body += _table(table.drop(columns=["filled"]).set_index("checklist"), scroll=True, digits=3)
    intro = (
        "Everything needed to rerun and to audit the study: software versions, the study "
        "file verbatim, its hash and the stage keys, the hashes of the inputs, the "
        "radiomics settings, and the reporting-checklist items the run fills in."
    )
    return _section("reproducibility", "Reproducibility", intro, body)


# --- the page ------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1d2330;background:#fff;line-height:1.45}
header{background:#1d3557;color:#fff;padding:1.2em 2em}
header h1{margin:0 0 .2em 0;font-size:1.6em}
header p{margin:0;opacity:.85}
nav{padding:.6em 2em;background:#f1f4f8;border-bottom:1px solid #d8dee8;font-size:.92em}
nav a{margin-right:1.1em;color:#1d3557;text-decoration:none}
main{padding:0 2em 3em 2em;max-width:1200px}
section{border-bottom:1px solid #e3e7ee;padding-bottom:1.2em}
h2{margin-top:1.4em;color:#1d3557}
h3{margin-bottom:.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
caption{text-align:left;font-style:italic;padding:.2em 0}
th,td{border:1px solid #d8dee8;padding:.25em .55em;text-align:left;vertical-align:top}
thead th{background:#f1f4f8}
tbody tr:nth-child(even){background:#fafbfd}
.scroll{max-height:28em;overflow:auto;max-width:100%}
figure{margin:.8em 0;display:inline-block;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{font-size:.85em;color:#4a5468;max-width:700px}
.grid{display:flex;flex-wrap:wrap;gap:1em}
.grid figure{flex:0 1 480px}
.note{color:#6b4f00;background:#fff8e1;border-left:3px solid #f0b400;padding:.3em .6em}
pre{background:#f6f8fa;border:1px solid #e3e7ee;padding:.6em;overflow:auto;font-size:.82em}
details{margin:.5em 0}
summary{cursor:pointer;color:#1d3557}
"""

_SECTIONS: tuple[Callable[[_Run], tuple[str, str, str] | None], ...] = (
    _cohort_section,
    _segmentation_section,
    _comparison_section,
    _difference_section,
    _km_section,
    _roc_section,
    _calibration_section,
    _importance_section,
    _correlation_section,
    _external_section,
    _reproducibility_section,
)


def render_report(run_dir: str | os.PathLike[str]) -> str:
    """The HTML text of the report of a run directory (see :func:`write_report`).

    Parameters
    ----------
    run_dir
        The output folder of ``hybridrad run``.

    Returns
    -------
    str
        A complete, self-contained HTML document.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a folder.
    ReportInputError
        A file the report reads is malformed (named in the message).
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"run directory {root} not found; give the --out folder of `hybridrad run`"
        )
    run = _load_run(root)
    sections = [s for s in (build(run) for build in _SECTIONS) if s is not None]
    nav = "".join(f'<a href="#{_e(sid)}">{_e(title)}</a>' for sid, title, _ in sections)
    subtitle = " \u00b7 ".join(
        x
        for x in (
            f"study hash {run.run['study_hash']}" if run.run.get("study_hash") else "",
            f"hybridrad {run.run['hybridrad_version']}" if run.run.get("hybridrad_version") else "",
            f"finished {run.run['finished']}" if run.run.get("finished") else "",
        )
        if x
    )
    if not sections:
        content = _p(
            f"Nothing to report: {root} holds none of the outputs of `hybridrad run` "
            "(cohort/, segmentation/, evaluation/ ...)."
        )
    else:
        content = "".join(body for _, _, body in sections)
    problems = ""
    if run.problems:
        problems = (
            '<section id="problems"><h2>Not shown</h2><ul>'
            + "".join(f"<li>{_e(p)}</li>" for p in run.problems)
            + "</ul></section>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(run.title)} \u2013 hybridrad report</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>{_e(run.title)}</h1><p>{_e(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{content}{problems}</main></body></html>\n"
    )


def write_report(
    run_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None
) -> Path:
    """Write the self-contained HTML report of a run directory.

    Parameters
    ----------
    run_dir
        The output folder of ``hybridrad run`` (``study.yaml``, ``run.json``,
        ``cohort/``, ``segmentation/``, ``handcrafted/``, ``deep/``,
        ``evaluation/<target>/``, ``external/<target>/``). Sections whose inputs are
        absent are left out.
    path
        The HTML file to write (default ``run_dir/report/report.html``); written
        atomically.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a folder.
    ReportInputError
        A file the report reads is malformed (named in the message).

    Warns
    -----
    ReportWarning
        A part could not be computed (e.g. calibration of a model without a survival
        function); the report says so where the part would be.
    """
    text = render_report(run_dir)
    out = Path(path) if path is not None else Path(run_dir) / DEFAULT_REPORT
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    log.info("report written to %s", out)
    return out
