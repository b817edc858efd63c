"""The command line, called in-process through ``main(argv)``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hybridrad import __version__
from hybridrad.cli import main
from tests.conftest import CohortFactory


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("validate", "discover", "demo-cohort", "demo"):
        assert command in out


def test_validate_ok_and_failing(
    small_cohort: CohortFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = small_cohort()
    clinical = str(m.parent / "clinical.csv")
    args = ["validate", str(m), "--clinical", clinical, "--time", "os_months", "--event", "death"]
    assert main(args) == 0
    assert "no problems" in capsys.readouterr().out
    (m.parent / "images/case2/t1.nii.gz").unlink()
    report = tmp_path / "problems.csv"
    assert main([*args, "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "ImageNotFoundError" in out and "case2" in out
    table = pd.read_csv(report)
    assert table.loc[0, "kind"] == "ImageNotFoundError" and table.loc[0, "case_id"] == "case2"


def test_validate_bad_manifest_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.csv").write_text("id,t1\na,x.nii.gz\n")
    assert main(["validate", str(tmp_path / "m.csv")]) == 2
    assert "case_id" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "absent.csv")]) == 2


@pytest.mark.data
def test_discover_brats_and_validate(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    folder = data_dir / "brats-samples" / "brats2018-fourmodal"
    assert main(["discover", "brats", str(folder), "--out", str(out)]) == 0
    assert main(["validate", str(out), "--labels", "brats"]) == 0
    assert main(["validate", str(out), "--labels", "binary"]) == 0  # every non-zero voxel
    assert main(["validate", str(out), "--labels", "brats2012"]) == 1  # 4 is not a label


def test_demo_cohort_and_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "syn"
    assert main(["demo-cohort", str(out), "--cases", "4", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "oracle C-index" in text and "oracle AUC" in text
    assert main(["demo-cohort", str(out), "--cases", "4"]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job (`make demo` = `hybridrad run demo`): every stage, the report,
    and a rerun that recomputes nothing."""
    demo = tmp_path / "demo"
    assert main(["demo", str(demo)]) == 0
    out = capsys.readouterr().out
    assert "validation: OK" in out
    assert out.strip().splitlines()[-1] == f"report: {demo / 'report' / 'report.html'}"
    dice = {k: float(v) for k, v in re.findall(r"(WT|TC|ET) ([0-9.]+)", out)}
    assert min(dice.values()) > 0.8, dice
    table = pd.read_csv(demo / "evaluation" / "survival" / "comparison.csv", index_col=0)
    c = table["harrell_c"]
    oracle = json.loads((demo / "cohort" / "stage.json").read_text())["oracle_cindex"]
    # 40 cases: the hybrid's inner CV may fall back to the clinical model in some outer
    # folds when imaging's advantage is within one standard error, so the hybrid must
    # clearly beat clinical and deep, not match handcrafted.
    assert c["hybrid"] > c["clinical"] + 0.05 and c["hybrid"] > c["deep"], c
    assert oracle - 0.15 < c["hybrid"] <= oracle + 0.02
    assert "delta" in table.columns
    for target in ("idh", "codeletion"):
        auc = pd.read_csv(demo / "evaluation" / target / "comparison.csv", index_col=0)["auc"]
        assert auc["handcrafted"] > 0.7, (target, auc)
    metrics = json.loads((demo / "external" / "survival" / "metrics.json").read_text())
    assert metrics
    html = (demo / "report" / "report.html").read_text(encoding="utf-8")
    for section in ("Kaplan", "ROC", "External validation", "Reproducibility"):
        assert section in html, section
    assert main(["demo", str(demo)]) == 0
    assert "computing" not in capsys.readouterr().out
