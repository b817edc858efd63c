"""Writing a plot never switches the user's matplotlib backend or leaves pyplot figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_overlay_leaves_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    script = f"""
import matplotlib
matplotlib.use("svg")  # the user's choice, e.g. a notebook's inline backend
import matplotlib.pyplot as plt
import numpy as np
from pathlib import Path
from hybridrad.segment.evaluate import write_overlay
image = np.random.default_rng(0).normal(size=(6, 20, 20))
truth = np.zeros_like(image, dtype=bool); truth[2:4, 5:10, 5:10] = True
write_overlay(image, truth, truth, Path({str(tmp_path)!r}) / "o.png", title="x")
print(matplotlib.get_backend(), len(plt.get_fignums()))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["svg", "0"]
    png = (tmp_path / "o.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_report_plots_leave_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    script = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pathlib import Path
from hybridrad.report.overlay import overlay_figure
from hybridrad.report.plots import comparison_plot, correlation_heatmap, importance_plot
table = pd.DataFrame({{"auc": [0.6], "ci_low": [0.5], "ci_high": [0.7]}}, index=["hybrid"])
figures = [
    comparison_plot(table, "auc"),
    importance_plot(pd.Series({{"a": 1.0, "b": -0.5}})),
    correlation_heatmap(pd.DataFrame([[0.2]], index=["r"], columns=["d"])),
    overlay_figure(np.zeros((3, 8, 8)), np.ones((3, 8, 8), bool), None, "x"),
]
comparison_plot(table, "auc", Path({str(tmp_path)!r}) / "c.png")
print(matplotlib.get_backend(), len(plt.get_fignums()), len(figures))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["svg", "0", "4"]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
