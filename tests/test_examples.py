"""The examples run (documentation is executed)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    table = pd.read_parquet(tmp_path / "radiomics.parquet")
    assert table.shape[0] == 6
    assert "rad__mask__WT__original__shape__VoxelVolume" in table.columns


def _run_notebook(path: Path) -> dict[str, object]:
    """Execute a notebook's code cells in order, in one namespace (no Jupyter needed)."""
    import json

    cells = json.loads(path.read_text())["cells"]
    namespace: dict[str, object] = {"__name__": "__main__"}
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}[cell {i}]", "exec"), namespace)
    return namespace


@pytest.mark.slow
def test_survival_analysis_notebook() -> None:
    ns = _run_notebook(EXAMPLES / "survival_analysis.ipynb")
    table = ns["table"]
    assert isinstance(table, pd.DataFrame)
    assert table.loc["hybrid", "harrell_c"] > 0.6
    null = [i for i in table.index if i.startswith("permutation null")]
    assert len(null) == 1 and abs(table.loc[null[0], "harrell_c"] - 0.5) < 0.15
    assert table.loc["hybrid", "perm_p"] < 0.1
    assert table.loc["hybrid", "delta"] == pytest.approx(
        table.loc["hybrid", "harrell_c"] - table.loc["clinical", "harrell_c"]
    )
    assert (ns["work"] / "km_hybrid.png").is_file()  # type: ignore[operator]
