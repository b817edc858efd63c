"""Plots as functions of results; models have no plotting methods.

matplotlib is imported lazily, and figures are made with ``matplotlib.figure.Figure``
rather than pyplot: a plot written here never switches the user's backend (a notebook's
inline backend stays as it was) and leaves no figure open in pyplot's state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrad.models.stratify import GroupComparison


class _Figures:
    """The two pyplot calls the plots use, on plain ``Figure`` objects (no backend)."""

    @staticmethod
    def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*args, **kwargs)

    @staticmethod
    def close(fig: Any) -> None:
        """Nothing to close: the figure was never registered with pyplot."""


def _pyplot() -> _Figures:
    return _Figures()


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out, write (120 dpi) and close a figure; returns the path."""
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def km_plot(
    comparison: GroupComparison,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    time_label: str = "time",
) -> Path:
    """Kaplan-Meier curves with 95 % bands per risk group, log-rank p and hazard ratio."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
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
    return _save(plt, fig, path)


def roc_plot(
    curves: dict[str, pd.DataFrame], path: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """ROC curves (tables with ``fpr``/``tpr``, e.g. from ``roc_curve_table``) by name."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, table in curves.items():
        ax.plot(table["fpr"], table["tpr"], label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right")
    return _save(plt, fig, path)


def comparison_plot(table: pd.DataFrame, metric: str, path: str | os.PathLike[str]) -> Path:
    """Point estimates with CIs per feature set (the comparison table)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.5 * len(table)))
    y = np.arange(len(table))
    est = table[metric].to_numpy(float)
    err = np.vstack([est - table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float) - est])
    ax.errorbar(est, y, xerr=np.abs(err), fmt="o", capsize=3)
    ax.axvline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, table.index)
    ax.set_xlabel(metric)
    return _save(plt, fig, path)


def calibration_plot(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "predicted",
    ylabel: str = "observed",
    slope: float | None = None,
    intercept: float | None = None,
) -> Path:
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
        PNG file to write.
    title, xlabel, ylabel
        Labels.
    slope, intercept
        Calibration slope and intercept to print in the corner (skipped when None or NaN).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
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
    return _save(plt, fig, path)
