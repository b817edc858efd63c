"""The script example runs (the notebooks: tests/test_notebooks.py)."""

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
