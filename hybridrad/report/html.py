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
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.report._rundir import (
    ReportInputError,
    ReportWarning,
    Run,
    Target,
    final_dir,
    final_meta,
    fmt,
    load_run,
    mapping,
    median_follow_up,
    probability_column,
    provenance_files,
    radiomics_settings,
    read_csv,
    read_json,
    slug,
)
from hybridrad.report.checklist import TO_COMPLETE, checklist_table, collect_facts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ReportInputError",
    "ReportWarning",
    "binary_calibration",
    "model_importance",
    "render_report",
    "write_report",
]

log = logging.getLogger(__name__)

#: Where :func:`write_report` writes by default, relative to the run directory.
DEFAULT_REPORT = Path("report") / "report.html"

#: Overlays shown in the segmentation section (worst, median and best case by Dice).
N_OVERLAY_CASES = 3


# --- small HTML helpers ---------------------------------------------------------------------


def _problem(run: Run, section: str, message: str) -> str:
    """Record (and warn about) a part that could not be computed; its note in the page."""
    run.note(section, message)
    return _note(f"Not shown: {message}")


def _e(value: Any) -> str:
    """Escaped text."""
    return html.escape(str(value), quote=True)


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
    wrap: bool = False,
) -> str:
    """An escaped HTML table of ``frame`` (``wrap``: long cells such as hashes break
    anywhere)."""
    head = ([_e(frame.index.name or "")] if index else []) + [_e(c) for c in frame.columns]
    rows = []
    for key, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = ([f"<th>{_e(key)}</th>"] if index else []) + [
            f"<td>{_e(fmt(v, digits))}</td>" for v in row
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    body = (
        ('<table class="wrap">' if wrap else "<table>")
        + f"{cap}<thead><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return f'<div class="scroll">{body}</div>' if scroll else body


def _kv_table(pairs: Iterable[tuple[str, Any]], *, caption: str | None = None) -> str:
    frame = pd.DataFrame([(k, fmt(v)) for k, v in pairs], columns=["item", "value"])
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


def _section(sid: str, title: str, intro: str, body: str) -> tuple[str, str, str]:
    return sid, title, f'<section id="{_e(sid)}"><h2>{_e(title)}</h2>{_p(intro)}{body}</section>'


# --- 1. cohort ------------------------------------------------------------------------------


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
                    f"median {fmt(med)} [IQR {fmt(q1)}\u2013{fmt(q3)}], "
                    f"range {fmt(numeric.min())}\u2013{fmt(numeric.max())}",
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


def _cohort_section(run: Run) -> tuple[str, str, str] | None:
    manifest_path = run.path("cohort", "manifest.csv")
    manifest = (
        read_csv(manifest_path, ["case_id"], dtype={"case_id": str})
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
                follow = median_follow_up(clin, run.time, run.event)
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
                    f"median {fmt(med)} [IQR {fmt(q1)}\u2013{fmt(q3)}], "
                    f"range {fmt(a.min())}\u2013{fmt(a.max())}",
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
        return Cohort.from_csv(path, allow_outside=True)  # written by the run itself
    except HybridradError as exc:
        raise ReportInputError(f"{path}: {exc}") from exc


def _overlay_html(run: Run, quality: pd.DataFrame | None) -> str:
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
            blocks.append(_problem(run, "segmentation", f"overlay of case {case_id!r}: {exc}"))
            continue
        pred_arr = arrays[0] if pred is not None else None
        truth_arr = arrays[-1] if truth is not None else None
        fig = overlay_figure(
            arr, truth_arr, pred_arr, f"{case_id} ({seq})", spacing=spacing, max_slices=8
        )
        caption = f"Case {case_id}" + (f", {why}" if why else "") + f"; background {seq}."
        blocks.append(_figure_block(_img(fig, f"overlay of case {case_id}", dpi=80), caption))
    return "".join(blocks)


def _segmentation_section(run: Run) -> tuple[str, str, str] | None:
    if not run.exists("segmentation"):
        return None
    quality_path = run.path("segmentation", "quality.csv")
    quality = (
        read_csv(quality_path, ["case_id", "region", "dice", "hd95_mm"], dtype={"case_id": str})
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


#: Columns of the comparison table shown after those of ``models.pipelines.HEADLINE_COLUMNS``.
OTHER_METRICS = ("uno_c", "td_auc", "ibs", "balanced_accuracy", "logrank_p", "hazard_ratio")


def _comparison_section(run: Run) -> tuple[str, str, str] | None:
    if not run.targets:
        return None
    from hybridrad.models.pipelines import HEADLINE_COLUMNS
    from hybridrad.report.plots import comparison_plot

    shown = ("blocks", "n_features", "harrell_c", "auc", *HEADLINE_COLUMNS[1:], *OTHER_METRICS)
    body = ""
    for target in run.targets:
        table = target.comparison
        cols = [c for c in shown if c in table.columns]
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
        settings = mapping(target.provenance.get("config"))
        if settings:
            body += _note(
                f"Nested cross-validation: {settings.get('outer_splits')} outer folds x "
                f"{settings.get('outer_repeats')} repeat(s), {settings.get('inner_splits')} "
                f"inner folds; {settings.get('n_boot')} bootstrap resamples"
                + (f"; CI: {ci}" if ci and not interpretation.is_file() else "")
                + "."
            )
    intro = (
        "Each feature set (clinical, handcrafted, deep, hybrid ...) evaluated on the same "
        "outer folds of a nested cross-validation: the headline metric with its 95 % CI, "
        "the other metrics, and the sentences hybridrad writes about the comparison."
    )
    return _section("comparison", "Feature-set comparison", intro, body)


def _difference_section(run: Run) -> tuple[str, str, str] | None:
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
        ref = str(mapping(target.provenance.get("config")).get("reference_set", reference))
        body += f"<h3>{_e(target.title)}</h3>"
        metric = "C" if target.metric == "harrell_c" else "AUC"
        sentences = []
        for name, row in rows.iterrows():
            lo, hi = row.get("delta_ci_low", np.nan), row.get("delta_ci_high", np.nan)
            p = row.get("delta_p", np.nan)
            sentences.append(
                f"{name} \u2212 {ref}: \u0394{metric} = {float(row['delta']):+.3f} "
                f"(95 % CI {fmt(lo)} to {fmt(hi)}; p = {fmt(p, 2)})"
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


def _km_section(run: Run) -> tuple[str, str, str] | None:
    from hybridrad.models.stratify import compare_groups
    from hybridrad.report.plots import km_plot

    body = ""
    for target in run.target("survival"):
        figures = []
        for name in target.sets:
            first = target.first_repeat(name, "group")
            if first is None:
                continue
            got = run.survival_y(list(first["case_id"]))
            if got is None:
                body += _problem(
                    run,
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
                figures.append(_problem(run, "Kaplan-Meier", f"{name}: {exc}"))
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
            path = target.folder / f"risk_groups_{slug(name)}.csv"
            if path.is_file():
                rg = read_csv(path)
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


def _roc_section(run: Run) -> tuple[str, str, str] | None:
    from hybridrad.models.metrics import roc_curve_table
    from hybridrad.report.plots import roc_plot

    body = ""
    for target in run.target("classification"):
        curves = {}
        for name in target.sets:
            first = target.first_repeat(name, "label")
            if first is None:
                continue
            column = probability_column(first)
            y = pd.to_numeric(first["label"], errors="coerce")
            if column is None or y.nunique() != 2:
                continue
            row = target.comparison.loc[name]
            legend = f"{name} (AUC {fmt(row['auc'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}])"
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


def _final_set(run: Run, target: Target) -> str | None:
    folder = final_dir(target)
    if folder is not None:
        name = final_meta(folder).get("feature_set")
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


def _calibration_classification(run: Run, target: Target) -> str:
    from hybridrad.models.metrics import net_benefit
    from hybridrad.report.plots import calibration_plot, decision_curve_plot

    name = _final_set(run, target)
    pos = target.provenance.get("positive_class", "positive")
    curves: dict[str, pd.DataFrame] = {}
    body = ""
    ref = str(run.model.get("reference_set", "clinical"))
    for set_name in dict.fromkeys([n for n in (name, ref) if n in target.sets]):
        first = target.first_repeat(set_name, "label")
        column = None if first is None else probability_column(first)
        if first is None or column is None:
            continue
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
            body += _problem(run, "calibration", f"{target.name}, {set_name}: {exc}")
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
    run: Run, folder: Path, horizon: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Cases, their survival target and the final model's S(horizon | x) (apparent)."""
    from hybridrad.models.final import model_input
    from hybridrad.models.fusion import CLINICAL, block_prefix, fuse, load_feature_tables
    from hybridrad.models.persist import load_model
    from hybridrad.models.survival import survival_function_at

    meta = final_meta(folder)
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


def _calibration_survival(run: Run, target: Target) -> str:
    from hybridrad.models.final import CLINICAL_SUBFOLDER
    from hybridrad.models.metrics import calibration_at, net_benefit
    from hybridrad.report.plots import calibration_plot, decision_curve_plot

    folder = final_dir(target)
    if folder is None:
        return ""
    meta = final_meta(folder)
    horizon = meta.get("horizon")
    if horizon is None:
        return _problem(run, "calibration", f"{folder}/model.json has no horizon")
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
            body += _problem(run, "calibration", f"final model {model_dir}: {exc}")
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


def _calibration_section(run: Run) -> tuple[str, str, str] | None:
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
    meta = final_meta(folder)
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


def _importance_section(run: Run) -> tuple[str, str, str] | None:
    from hybridrad.report.plots import importance_plot

    body = ""
    for target in run.targets:
        folder = final_dir(target)
        if folder is None:
            continue
        meta = final_meta(folder)
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
        imaging_blocks = [b for b in meta.get("blocks", []) if b != "clin"]
        if (
            imaging_blocks
            and "clin" in meta.get("blocks", [])
            and not meta.get("n_imaging_features_active")
        ):
            why = (
                "the inner cross-validation chose the clinical-only candidate: imaging did not "
                "beat it by one standard error"
                if meta.get("clinical_fallback_chosen")
                else "no imaging feature kept a non-zero coefficient"
            )
            body += _note(
                f"The final {meta.get('feature_set')} model uses its clinical covariates only: "
                f"{why}."
            )
        try:
            values, kind = model_importance(folder)
        except ReportInputError as exc:
            body += _problem(run, "feature importance", str(exc))
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


def _correlation_section(run: Run) -> tuple[str, str, str] | None:
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
            _problem(run, "correlation", str(exc)),
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
    from hybridrad.report.plots import _figure

    fig, ax = _figure((6, 3.5))
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


def _external_section(run: Run) -> tuple[str, str, str] | None:
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
        metrics = mapping(read_json(folder / "metrics.json"))
        clinical = mapping(metrics.get("clinical"))
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
        ci = mapping(metrics.get("provenance")).get("ci_method")
        if ci:
            body += _note(f"CI: {ci}.")
        figures = [
            _figure_block(_img_bytes(png.read_bytes(), png.stem), _external_caption(png.name))
            for png in sorted(
                folder.glob("*.png"), key=lambda p: (p.name.startswith("clinical_"), p.name)
            )
            if png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        ]
        if figures:
            body += '<div class="grid">' + "".join(figures) + "</div>"
        calibration = folder / "calibration.csv"
        if calibration.is_file():
            body += _details(
                "calibration.csv", _table(read_csv(calibration), index=False, scroll=True)
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


def _external_caption(name: str) -> str:
    """What a figure of :func:`~hybridrad.study.external.score_model` shows."""
    stem = name.removesuffix(".png")
    model = "clinical reference model" if stem.startswith("clinical_") else "final model"
    what = {
        "calibration": "calibration at the horizon (observed Kaplan-Meier or fraction vs predicted)",
        "km": "Kaplan-Meier curves of the risk groups at the training cutoff",
        "roc": "ROC curve",
    }.get(stem.removeprefix("clinical_"), stem)
    return f"{model}: {what} ({name})"


def _as_number(value: Any) -> Any:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else value
    except (TypeError, ValueError):
        return value


# --- 10. reproducibility --------------------------------------------------------------------


_HASH = re.compile(r"^[0-9a-f]{16,128}$")


def _leaves(value: Any, keys: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every non-mapping value of nested mappings, with its path of keys."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*keys, str(k)))
    else:
        yield keys, value


def _short_key(key: str, root: Path) -> str:
    """A key that is a file path, relative to the run directory when inside it."""
    if "/" not in key and os.sep not in key:
        return key
    path = Path(key)
    for base in (root.resolve(), root):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return key


def _hash_rows(run: Run) -> pd.DataFrame:
    """Every hash-like value (16 to 128 hex digits) of the provenance files."""
    rows = []
    for path in provenance_files(run):
        for keys, value in _leaves(read_json(path)):
            if isinstance(value, str) and _HASH.match(value):
                key = " \u203a ".join(_short_key(k, run.root) for k in keys)
                rows.append((str(path.relative_to(run.root)), key, value))
    return pd.DataFrame(rows, columns=["file", "key", "sha256 / hash"])


def _reproducibility_section(run: Run) -> tuple[str, str, str] | None:
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
    stages = mapping(run.run.get("stages"))
    if stages:
        table = pd.DataFrame(
            [
                {"stage": name, **{k: mapping(info).get(k) for k in ("status", "key", "seconds")}}
                for name, info in stages.items()
            ]
        ).set_index("stage")
        body += "<h3>Stages</h3>" + _table(table)
    versions = mapping(run.run.get("versions"))
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
        body += "<h3>Hashes of inputs and stages</h3>" + _table(
            hashes, index=False, scroll=True, wrap=True
        )
    for path in provenance_files(run):
        body += _details(
            f"{path.relative_to(run.root)}", _pre(json.dumps(read_json(path), indent=2))
        )
    settings = radiomics_settings(run)
    if settings is not None:
        cfg, text = settings
        body += "<h3>Radiomics (IBSI) settings</h3>"
        s = mapping(cfg.get("setting"))
        if s:
            body += _kv_table(s.items(), caption="setting (handcrafted/radiomics.yaml)")
        rows = [("image types", ", ".join(map(str, mapping(cfg.get("imageType")))))]
        rows.append(("feature classes", ", ".join(map(str, mapping(cfg.get("featureClass"))))))
        body += _kv_table(rows)
        body += _details("handcrafted/radiomics.yaml", _pre(text))
    table = checklist_table(collect_facts(run))
    if not body and not run.targets:
        return None
    n_filled = int(table["filled"].sum())
    body += "<h3>CLEAR and TRIPOD+AI checklist</h3>" + _p(
        f"{n_filled} of {len(table)} items are filled from the run; the others are "
        f"marked '{TO_COMPLETE}'. Item numbers follow TRIPOD+AI (Collins et al., BMJ "
        "2024;385:e078378) and CLEAR (Kocak et al., Insights Imaging 2023;14:75)."
    )
    for name in dict.fromkeys(table["checklist"]):
        trs: list[str] = []
        for item, topic, value, filled in table.loc[
            table["checklist"] == name, ["item", "topic", "value", "filled"]
        ].itertuples(index=False):
            cls = "" if filled else ' class="todo"'
            trs.append(f"<tr><th>{_e(item)}</th><td>{_e(topic)}</td><td{cls}>{_e(value)}</td></tr>")
        body += (
            f"<table><caption>{_e(name)}</caption><thead><tr><th>item</th><th>topic</th>"
            "<th>value from the run</th></tr></thead><tbody>" + "".join(trs) + "</tbody></table>"
        )
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
th,td{border:1px solid #d8dee8;padding:.25em .55em;text-align:left;vertical-align:top;
overflow-wrap:break-word}
table.wrap td{overflow-wrap:anywhere}
thead th{background:#f1f4f8}
tbody tr:nth-child(even){background:#fafbfd}
.scroll{max-height:28em;overflow:auto;max-width:100%}
figure{margin:.8em 0;display:inline-block;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{font-size:.85em;color:#4a5468;max-width:700px}
.grid{display:flex;flex-wrap:wrap;gap:1em}
.grid figure{flex:0 1 480px}
td.todo{color:#8a93a6;font-style:italic}
.note{color:#6b4f00;background:#fff8e1;border-left:3px solid #f0b400;padding:.3em .6em}
pre{background:#f6f8fa;border:1px solid #e3e7ee;padding:.6em;overflow:auto;font-size:.82em}
details{margin:.5em 0}
summary{cursor:pointer;color:#1d3557}
"""

_SECTIONS: tuple[Callable[[Run], tuple[str, str, str] | None], ...] = (
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
    run = load_run(root)
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
