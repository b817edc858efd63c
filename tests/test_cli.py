"""The command line, called in-process through ``main(argv)``."""

from __future__ import annotations

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
    """The README's main job: segmentation, features and the survival comparison."""
    demo = tmp_path / "demo"
    assert main(["demo", str(demo), "--cases", "40", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "validation: OK" in out
    dice = {k: float(v) for k, v in re.findall(r"(WT|TC|ET) ([0-9.]+)", out)}
    assert min(dice.values()) > 0.8, dice
    table = pd.read_csv(demo / "comparison.csv", index_col=0)
    c = table["harrell_c"]
    oracle = float(re.search(r"oracle C-index \(true risk\): ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    # 40 cases: the hybrid's inner CV (3 folds of about 21 training cases) falls back to
    # the clinical model in some outer folds when imaging's advantage is within one
    # standard error (measured 2026-12-04, 2 repeats: 2 of 10 folds, hybrid 0.702 against
    # handcrafted 0.764 and clinical 0.587): the price of never losing the clinical
    # baseline on noise. So the hybrid must clearly beat clinical and deep, not match
    # handcrafted.
    assert c["hybrid"] > c["clinical"] + 0.05 and c["hybrid"] > c["deep"]
    assert oracle - 0.15 < c["hybrid"] <= oracle + 0.02
    # The permutation null: the mean C of 20 shuffles through the whole pipeline.
    null = [i for i in table.index if i.startswith("permutation null")]
    assert len(null) == 1 and abs(c[null[0]] - 0.5) < 0.1
    assert table.loc["hybrid", "perm_p"] <= 0.1
    assert "delta" in table.columns and "CI:" in out
    for name in ("radiomics.parquet", "deep.parquet", "segmentation/manifest.csv"):
        assert (demo / name).is_file(), name
