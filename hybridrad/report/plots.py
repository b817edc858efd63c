"""Plots as functions of results; models have no plotting methods.

matplotlib is imported lazily with the non-interactive Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrad.models.stratify import GroupComparison


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


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
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


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
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
