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
