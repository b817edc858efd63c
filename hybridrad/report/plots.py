"""Plots as functions of results; models have no plotting methods.

Every function takes result objects or tables (never paths to read), so a notebook
calls it on what :func:`~hybridrad.models.pipelines.compare_feature_sets`,
:func:`~hybridrad.models.stratify.compare_groups` or the metrics of
:mod:`hybridrad.models.metrics` return. With ``path`` it writes a PNG (120 dpi) and
returns the path; without, it returns the ``matplotlib.figure.Figure`` (which a notebook
displays).

matplotlib is imported lazily, and figures are made with ``matplotlib.figure.Figure``
rather than pyplot: a plot made here never switches the user's backend (a notebook's
inline backend stays as it was) and leaves no figure open in pyplot's state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hybridrad.models.stratify import GroupComparison

__all__ = [
    "calibration_plot",
    "comparison_plot",
    "correlation_heatmap",
    "decision_curve_plot",
    "dice_plot",
    "difference_plot",
    "importance_plot",
    "km_plot",
    "roc_plot",
]

PathLike = str | os.PathLike[str]


def _figure(figsize: tuple[float, float], *args: Any, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure not registered with pyplot (no backend involved) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _finish(fig: Figure, path: PathLike | None) -> Figure | Path:
    """Lay out; write a PNG (120 dpi) when ``path`` is given and return it, else the
    figure."""
    fig.tight_layout()
    return fig if path is None else _save_png(fig, path)


def _save_png(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as a PNG (120 dpi), creating the folders; the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


# --- Kaplan-Meier ---------------------------------------------------------------------------


@overload
def km_plot(
    comparison: GroupComparison, path: None = None, *, title: str = "", time_label: str = "time"
) -> Figure: ...
@overload
def km_plot(
    comparison: GroupComparison, path: PathLike, *, title: str = "", time_label: str = "time"
) -> Path: ...
def km_plot(
    comparison: GroupComparison,
    path: PathLike | None = None,
    *,
    title: str = "",
    time_label: str = "time",
) -> Figure | Path:
    """Kaplan-Meier curves with 95 % bands per risk group, log-rank p and hazard ratio.

    Parameters
    ----------
    comparison
        The result of :func:`~hybridrad.models.stratify.compare_groups`.
    path
        PNG file to write and return; None returns the figure.
    title
        Figure title.
    time_label
        Label of the time axis (e.g. ``months``).
    """
    fig, ax = _figure((6, 4.5))
    for group in comparison.groups:
        table = comparison.survival_tables[group]
        t = table.index.to_numpy(float)
        ax.step(
            t,
            table["survival"],
            where="post",
            label=f"{group} (n={comparison.n[group]}, events={comparison.n_events[group]})",
        )
        ax.fill_between(t, table["lower"], table["upper"], step="post", alpha=0.15)
    text = f"log-rank p = {comparison.logrank_p_value:.3g}"
    if len(comparison.groups) == 2:
        lo, hi = comparison.hazard_ratio_ci
        text += f"\nHR = {comparison.hazard_ratio:.2f} ({lo:.2f}-{hi:.2f})"
    ax.text(0.98, 0.95, text, transform=ax.transAxes, ha="right", va="top")
    ax.set(xlabel=time_label, ylabel="survival probability", ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left")
    return _finish(fig, path)


# --- ROC ------------------------------------------------------------------------------------


@overload
def roc_plot(
    curves: Mapping[str, pd.DataFrame], path: None = None, *, title: str = ""
) -> Figure: ...
@overload
def roc_plot(curves: Mapping[str, pd.DataFrame], path: PathLike, *, title: str = "") -> Path: ...
def roc_plot(
    curves: Mapping[str, pd.DataFrame], path: PathLike | None = None, *, title: str = ""
) -> Figure | Path:
    """ROC curves by name.

    Parameters
    ----------
    curves
        Name (the legend entry) -> table with ``fpr`` and ``tpr`` (e.g. from
        :func:`~hybridrad.models.metrics.roc_curve_table`).
    path
        PNG file to write and return; None returns the figure.
    title
        Figure title.
    """
    fig, ax = _figure((5, 5))
    for name, table in curves.items():
        ax.plot(table["fpr"], table["tpr"], label=name, drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    return _finish(fig, path)


# --- feature-set comparison ----------------------------------------------------------------


@overload
def comparison_plot(
    table: pd.DataFrame,
    metric: str,
    path: None = None,
    *,
    reference: float | None = 0.5,
    title: str = "",
) -> Figure: ...
@overload
def comparison_plot(
    table: pd.DataFrame,
    metric: str,
    path: PathLike,
    *,
    reference: float | None = 0.5,
    title: str = "",
) -> Path: ...
def comparison_plot(
    table: pd.DataFrame,
    metric: str,
    path: PathLike | None = None,
    *,
    reference: float | None = 0.5,
    title: str = "",
) -> Figure | Path:
    """Forest plot: the point estimate and CI of ``metric`` per feature set.

    Parameters
    ----------
    table
        The comparison table of
        :func:`~hybridrad.models.pipelines.compare_feature_sets` (one row per set,
        indexed by set name, with ``metric``, ``ci_low`` and ``ci_high``).
    metric
        Column of the estimate (``harrell_c`` or ``auc``).
    path
        PNG file to write and return; None returns the figure.
    reference
        Value drawn as a dashed line (0.5: chance); None for none.
    title
        Figure title.
    """
    fig, ax = _figure((6, 0.9 + 0.45 * len(table)))
    y = np.arange(len(table))[::-1]
    est = table[metric].to_numpy(float)
    lo = table["ci_low"].to_numpy(float)
    hi = table["ci_high"].to_numpy(float)
    err = np.nan_to_num(np.abs(np.vstack([est - lo, hi - est])))
    ax.errorbar(est, y, xerr=err, fmt="o", capsize=3, color="C0")
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.set(xlabel=f"{metric} (95 % CI)", title=title)
    return _finish(fig, path)


@overload
def difference_plot(
    table: pd.DataFrame, path: None = None, *, reference_set: str = "clinical", title: str = ""
) -> Figure: ...
@overload
def difference_plot(
    table: pd.DataFrame, path: PathLike, *, reference_set: str = "clinical", title: str = ""
) -> Path: ...
def difference_plot(
    table: pd.DataFrame,
    path: PathLike | None = None,
    *,
    reference_set: str = "clinical",
    title: str = "",
) -> Figure | Path:
    """Forest plot of the paired differences to the reference set, with their CIs.

    Parameters
    ----------
    table
        The comparison table; rows with a finite ``delta`` are drawn with
        ``delta_ci_low``/``delta_ci_high`` (and ``delta_p`` written beside them).
    path
        PNG file to write and return; None returns the figure.
    reference_set
        Name of the reference set (axis label).
    title
        Figure title.
    """
    rows = table[np.isfinite(pd.to_numeric(table["delta"], errors="coerce"))]
    fig, ax = _figure((6, 1.0 + 0.55 * max(1, len(rows))))
    y = np.arange(len(rows))[::-1]
    est = rows["delta"].to_numpy(float)
    lo = rows.get("delta_ci_low", rows["delta"]).to_numpy(float)
    hi = rows.get("delta_ci_high", rows["delta"]).to_numpy(float)
    err = np.nan_to_num(np.abs(np.vstack([est - lo, hi - est])))
    ax.errorbar(est, y, xerr=err, fmt="o", capsize=3, color="C1")
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    if "delta_p" in rows.columns:
        for yi, xi, p in zip(y, est, rows["delta_p"].to_numpy(float), strict=True):
            if np.isfinite(p):
                ax.annotate(
                    f"p={p:.2g}",
                    (xi, yi),
                    textcoords="offset points",
                    xytext=(0, -13),
                    ha="center",
                    fontsize=8,
                )
    ax.set_yticks(y, [str(i) for i in rows.index])
    ax.set_ylim(-0.7, len(rows) - 0.4)
    ax.set(xlabel=f"difference to {reference_set} (95 % CI)", title=title)
    return _finish(fig, path)


# --- calibration and decision curves ------------------------------------------------------


@overload
def calibration_plot(
    table: pd.DataFrame,
    path: None = None,
    *,
    title: str = "",
    xlabel: str = "predicted",
    ylabel: str = "observed",
    slope: float | None = None,
    intercept: float | None = None,
) -> Figure: ...
@overload
def calibration_plot(
    table: pd.DataFrame,
    path: PathLike,
    *,
    title: str = "",
    xlabel: str = "predicted",
    ylabel: str = "observed",
    slope: float | None = None,
    intercept: float | None = None,
) -> Path: ...
def calibration_plot(
    table: pd.DataFrame,
    path: PathLike | None = None,
    *,
    title: str = "",
    xlabel: str = "predicted",
    ylabel: str = "observed",
    slope: float | None = None,
    intercept: float | None = None,
) -> Figure | Path:
    """Observed versus mean predicted value per group, with the diagonal of perfect
    calibration.

    Parameters
    ----------
    table
        One row per group with ``predicted`` and ``observed``; optional
        ``observed_lower``/``observed_upper`` (drawn as 95 % error bars) and ``n``
        (written beside each point). The tables of
        :func:`hybridrad.models.metrics.calibration_at` and of
        :func:`hybridrad.study.external.score_model` (``calibration.csv``) fit.
    path
        PNG file to write and return; None returns the figure.
    title, xlabel, ylabel
        Labels.
    slope, intercept
        Calibration slope and intercept to print in the corner (skipped when None or NaN).
    """
    fig, ax = _figure((5, 5))
    x = table["predicted"].to_numpy(float)
    y = table["observed"].to_numpy(float)
    if {"observed_lower", "observed_upper"} <= set(table.columns):
        lo = table["observed_lower"].to_numpy(float)
        hi = table["observed_upper"].to_numpy(float)
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, label="groups (95% CI)")
    else:
        ax.plot(x, y, "o", label="groups")
    if "n" in table.columns:
        for xi, yi, ni in zip(x, y, table["n"].to_numpy(), strict=True):
            ax.annotate(f"n={int(ni)}", (xi, yi), textcoords="offset points", xytext=(5, -10))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    lines = []
    if slope is not None and np.isfinite(slope):
        lines.append(f"slope = {slope:.2f}")
    if intercept is not None and np.isfinite(intercept):
        lines.append(f"intercept = {intercept:.2f}")
    if lines:
        ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, ha="left", va="top")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right")
    return _finish(fig, path)


@overload
def decision_curve_plot(
    curves: Mapping[str, pd.DataFrame],
    path: None = None,
    *,
    title: str = "",
    xlabel: str = "threshold probability",
) -> Figure: ...
@overload
def decision_curve_plot(
    curves: Mapping[str, pd.DataFrame],
    path: PathLike,
    *,
    title: str = "",
    xlabel: str = "threshold probability",
) -> Path: ...
def decision_curve_plot(
    curves: Mapping[str, pd.DataFrame],
    path: PathLike | None = None,
    *,
    title: str = "",
    xlabel: str = "threshold probability",
) -> Figure | Path:
    """Decision curves: net benefit against the threshold probability.

    Parameters
    ----------
    curves
        Model name -> table of :func:`~hybridrad.models.metrics.net_benefit`
        (``threshold``, ``net_benefit``, ``treat_all``, ``treat_none``). "Treat all" and
        "treat none" are drawn from the first table.
    path
        PNG file to write and return; None returns the figure.
    title
        Figure title.
    xlabel
        Label of the threshold axis.
    """
    fig, ax = _figure((6, 4.5))
    first: pd.DataFrame | None = None
    for name, table in curves.items():
        first = table if first is None else first
        ax.plot(table["threshold"], table["net_benefit"], label=name)
    lows = [0.0]
    if first is not None:
        ax.plot(first["threshold"], first["treat_all"], color="grey", lw=1, label="treat all")
        ax.plot(first["threshold"], first["treat_none"], color="black", lw=1, label="treat none")
        lows.append(float(np.nanmax(first["treat_all"].to_numpy(float))))
    top = max(
        [*lows, *(float(np.nanmax(t["net_benefit"].to_numpy(float))) for t in curves.values())]
    )
    ax.set_ylim(-0.05 * max(top, 0.05), 1.1 * max(top, 0.05))
    ax.set(xlabel=xlabel, ylabel="net benefit", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return _finish(fig, path)


# --- model and features --------------------------------------------------------------------


@overload
def importance_plot(
    importance: pd.Series,
    path: None = None,
    *,
    top: int = 20,
    title: str = "",
    xlabel: str = "coefficient",
) -> Figure: ...
@overload
def importance_plot(
    importance: pd.Series,
    path: PathLike,
    *,
    top: int = 20,
    title: str = "",
    xlabel: str = "coefficient",
) -> Path: ...
def importance_plot(
    importance: pd.Series,
    path: PathLike | None = None,
    *,
    top: int = 20,
    title: str = "",
    xlabel: str = "coefficient",
) -> Figure | Path:
    """Horizontal bars of the ``top`` features by absolute importance, signed.

    Parameters
    ----------
    importance
        Importance per feature (index: feature names), e.g. the coefficients of a
        final model; zeros are left out.
    path
        PNG file to write and return; None returns the figure.
    top
        Most features shown.
    title
        Figure title.
    xlabel
        Label of the value axis.
    """
    values = pd.to_numeric(importance, errors="coerce").dropna()
    values = values[values != 0]
    values = values.reindex(values.abs().sort_values(ascending=False).index[:top])
    fig, ax = _figure((7, 1.0 + 0.3 * max(1, len(values))))
    y = np.arange(len(values))[::-1]
    colours = ["C3" if v > 0 else "C0" for v in values.to_numpy(float)]
    ax.barh(y, values.to_numpy(float), color=colours)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(y, [_short(str(n)) for n in values.index], fontsize=7)
    ax.set(xlabel=xlabel, title=title)
    return _finish(fig, path)


def _short(name: str, width: int = 48) -> str:
    """A long feature name shortened in its middle (the block and the feature stay)."""
    if len(name) <= width:
        return name
    keep = (width - 3) // 2
    return f"{name[:keep]}...{name[-keep:]}"


@overload
def correlation_heatmap(
    matrix: pd.DataFrame,
    path: None = None,
    *,
    title: str = "",
    label: str = "Spearman r",
) -> Figure: ...
@overload
def correlation_heatmap(
    matrix: pd.DataFrame,
    path: PathLike,
    *,
    title: str = "",
    label: str = "Spearman r",
) -> Path: ...
def correlation_heatmap(
    matrix: pd.DataFrame,
    path: PathLike | None = None,
    *,
    title: str = "",
    label: str = "Spearman r",
) -> Figure | Path:
    """Heatmap of a correlation matrix on a fixed -1..1 diverging scale.

    Parameters
    ----------
    matrix
        Rows and columns named by feature (e.g. handcrafted x deep).
    path
        PNG file to write and return; None returns the figure.
    title
        Figure title.
    label
        Label of the colour bar.
    """
    n_rows, n_cols = matrix.shape
    fig, ax = _figure((3.5 + 0.22 * n_cols, 2.5 + 0.2 * n_rows))
    image = ax.imshow(matrix.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(np.arange(n_cols), [_short(str(c), 32) for c in matrix.columns], fontsize=6)
    ax.set_yticks(np.arange(n_rows), [_short(str(r), 48) for r in matrix.index], fontsize=6)
    ax.tick_params(axis="x", labelrotation=90)
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    ax.set_title(title)
    return _finish(fig, path)


# --- segmentation -------------------------------------------------------------------------


@overload
def dice_plot(quality: pd.DataFrame, path: None = None, *, title: str = "") -> Figure: ...
@overload
def dice_plot(quality: pd.DataFrame, path: PathLike, *, title: str = "") -> Path: ...
def dice_plot(
    quality: pd.DataFrame, path: PathLike | None = None, *, title: str = ""
) -> Figure | Path:
    """Dice per region: a box per region with every case as a point.

    Parameters
    ----------
    quality
        The per-case table of :func:`hybridrad.segment.evaluate.evaluate_masks`
        (``region`` and ``dice``; NaN Dice, a region empty in both masks, left out).
    path
        PNG file to write and return; None returns the figure.
    title
        Figure title.
    """
    regions = list(dict.fromkeys(quality["region"].astype(str)))
    data = [
        pd.to_numeric(quality.loc[quality["region"].astype(str) == r, "dice"], errors="coerce")
        .dropna()
        .to_numpy(float)
        for r in regions
    ]
    fig, ax = _figure((1.5 + 1.2 * max(1, len(regions)), 4))
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(np.arange(1, len(regions) + 1), regions)
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for i, values in enumerate(data, start=1):
        ax.plot(i + rng.uniform(-0.12, 0.12, values.size), values, "o", ms=3, alpha=0.6)
    ax.set(ylabel="Dice", ylim=(0, 1.02), title=title)
    return _finish(fig, path)
