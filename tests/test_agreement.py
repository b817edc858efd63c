"""Contour agreement: ICC(3,1) against published values, the cohort analysis, the CLI."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from hybridrad.cli.features import add_parsers
from hybridrad.features.agreement import (
    AGREEMENT_COLUMNS,
    AgreementError,
    ExcludedCasesWarning,
    UndefinedICCWarning,
    contour_agreement,
    feature_agreement,
    icc_consistency,
    reliability_band,
    summarize_agreement,
)
from hybridrad.io import Cohort

FAST: dict[str, Any] = {
    "imageType": {"Original": {}, "LoG": {"sigma": [2.0]}},
    "featureClass": {
        "shape": ["VoxelVolume", "MeshVolume", "Sphericity"],
        "firstorder": ["Mean", "Median", "Energy"],
    },
    "setting": {"binWidth": 25},
}
VOLUME = "rad__mask__tumor__original__shape__VoxelVolume"
N_CASES = 5
EMPTY_CASE = "case2"


# --- ICC(3,1) against published values -------------------------------------------------


def test_icc_shrout_fleiss_table_4() -> None:
    # Shrout PE, Fleiss JL (1979). Intraclass correlations: uses in assessing rater
    # reliability. Psychol Bull 86(2):420-428. Table 2 data (6 targets x 4 judges);
    # Table 4 gives ICC(3,1) = .71; F = BMS / EMS = 11.03 on (5, 15) df.
    x = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    r = icc_consistency(x)
    assert round(r.icc, 2) == 0.71
    assert r.icc == pytest.approx(0.7148, abs=5e-4)
    assert r.f_value == pytest.approx(11.03, abs=5e-3)
    assert (r.df1, r.df2, r.n, r.k) == (5, 15, 6, 4)
    assert r.ci_low < r.icc < r.ci_high
    # the interval is McGraw & Wong's F-based one, recomputed here from its definition
    from scipy import stats

    fl = r.f_value / stats.f.ppf(0.975, 5, 15)
    fu = r.f_value * stats.f.ppf(0.975, 15, 5)
    assert r.ci_low == pytest.approx((fl - 1) / (fl + 3))
    assert r.ci_high == pytest.approx((fu - 1) / (fu + 3))


def test_icc_mcgraw_wong_two_raters_with_ci() -> None:
    # Two-rater example data given as McGraw KO, Wong SP (1996). Forming inferences about
    # some intraclass correlation coefficients. Psychol Methods 1(1):30-46, Table 6; for it,
    # R DescTools::ICC reports ICC3 (= ICC(C,1)) 0.714, F 6.00 on (9, 9) df, p 0.00677,
    # 95 % CI 0.197 - 0.920.
    x = [
        [103, 119], [82, 65], [116, 106], [102, 102], [99, 105],
        [98, 100], [104, 107], [62, 85], [97, 101], [107, 110],
    ]  # fmt: skip
    r = icc_consistency(x)
    assert r.icc == pytest.approx(0.714, abs=5e-4)
    assert r.f_value == pytest.approx(6.00, abs=5e-3)
    assert r.p_value == pytest.approx(0.00677, abs=5e-5)
    assert r.ci_low == pytest.approx(0.197, abs=5e-4)
    assert r.ci_high == pytest.approx(0.920, abs=5e-4)
    wider = icc_consistency(x, confidence=0.99)
    assert wider.ci_low < r.ci_low and wider.ci_high > r.ci_high


def test_icc_identical_ratings_constant_and_bad_input() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=12)
    same = icc_consistency(np.column_stack([v, v]))
    assert same.icc == pytest.approx(1.0)
    assert same.ci_low == pytest.approx(1.0) and same.ci_high == pytest.approx(1.0)
    # consistency ignores a constant offset between the raters
    assert icc_consistency(np.column_stack([v, v + 3.0])).icc == pytest.approx(1.0)
    for seed in range(5):
        noisy = np.column_stack([v, v + np.random.default_rng(seed).normal(0, 0.5, 12)])
        r = icc_consistency(noisy)
        assert -1.0 <= r.ci_low <= r.icc <= r.ci_high <= 1.0
    assert math.isnan(icc_consistency(np.ones((5, 2))).icc)
    with pytest.raises(ValueError, match="2 targets"):
        icc_consistency(np.ones((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        icc_consistency([[1.0, 2.0], [np.nan, 1.0], [3.0, 3.0]])
    with pytest.raises(ValueError, match="confidence"):
        icc_consistency(np.eye(3), confidence=1.5)


def test_reliability_bands_koo_li() -> None:
    assert [reliability_band(v) for v in (-0.2, 0.49, 0.5, 0.749, 0.75, 0.899, 0.9, 1.0)] == [
        "poor",
        "poor",
        "moderate",
        "moderate",
        "good",
        "good",
        "excellent",
        "excellent",
    ]


def test_feature_agreement_constant_features_are_nan_with_warning() -> None:
    idx = pd.Index([f"c{i}" for i in range(6)], name="case_id")
    base = np.arange(1.0, 7.0)
    ref = pd.DataFrame(
        {
            "rad__mask__tumor__original__shape__VoxelVolume": base * 10,
            "rad__t1__tumor__original__firstorder__Mean": base,
            "rad__t1__tumor__original__firstorder__Minimum": np.zeros(6),
        },
        index=idx,
    )
    pred = ref.copy()
    pred.iloc[:, 0] += 5.0  # an additive bias: perfect consistency
    pred.iloc[:, 1] += [0.3, -0.2, 0.1, 0.0, -0.3, 0.2]
    with pytest.warns(UndefinedICCWarning, match="firstorder__Minimum"):
        table = feature_agreement(ref, pred)
    assert list(table.columns) == AGREEMENT_COLUMNS
    assert list(table.index) == list(ref.columns)  # nothing dropped
    rows: list[dict[Any, Any]] = list(table.to_dict(orient="index").values())
    vol, mean, minimum = rows
    assert vol["icc"] == pytest.approx(1.0) and vol["reliability"] == "excellent"
    assert vol["median_abs_rel_diff"] == pytest.approx(np.median(5.0 / (base * 10)))
    assert vol["median_rel_diff"] == vol["median_abs_rel_diff"]
    assert (vol["feature_class"], vol["sequence"], vol["region"]) == ("shape", "mask", "tumor")
    assert 0.9 < mean["icc"] < 1.0 and mean["icc_ci_low"] < mean["icc"] < mean["icc_ci_high"]
    assert math.isnan(minimum["icc"]) and minimum["note"].startswith("constant")
    assert math.isnan(minimum["median_abs_rel_diff"])  # zero reference values are left out
    summary = summarize_agreement(table)
    assert summary["n_features"] == 3 and summary["n_defined"] == 2
    assert summary["undefined_features"] == ["rad__t1__tumor__original__firstorder__Minimum"]
    assert summary["fraction_icc_ge_0.90"] == 1.0
    assert summary["by_class"]["firstorder"]["n_features"] == 2
    assert summary["by_class"]["firstorder"]["n_defined"] == 1
    assert summary["reliability"] == {"poor": 0, "moderate": 0, "good": 0, "excellent": 2}


# --- the cohort analysis on tiny synthetic volumes ---------------------------------------


def _write(arr: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(img, str(path))


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five 24^3 cases with a sphere of growing radius; predictions = sphere dilated by
    one voxel, except ``case2`` whose prediction is empty. Written both as a folder of
    ``<case_id>.nii.gz`` masks and as a ``hybridrad segment``-style folder."""
    from scipy import ndimage

    root = tmp_path_factory.mktemp("agreement")
    flat = root / "pred_flat"
    seg = root / "pred_seg"
    for d in (root / "images", flat, seg / "masks"):
        d.mkdir(parents=True)
    z, y, x = np.indices((24, 24, 24))
    rows, seg_rows = [], []
    for i in range(N_CASES):
        cid = f"case{i}"
        rng = np.random.default_rng(i)
        r = np.sqrt((z - 12) ** 2 + (y - 11.5) ** 2 + (x - 12.5) ** 2)
        mask = (r < 4.0 + 1.2 * i).astype(np.uint8)
        image = (200.0 + 30.0 * i + 60.0 * mask + 3.0 * x + rng.normal(0, 15, r.shape)).astype(
            np.float32
        )
        _write(image, root / "images" / f"{cid}_flair.nii.gz")
        _write(image[::-1].copy(), root / "images" / f"{cid}_t1.nii.gz")
        _write(mask, root / "images" / f"{cid}_mask.nii.gz")
        pred = ndimage.binary_dilation(mask).astype(np.uint8)
        if cid == EMPTY_CASE:
            pred[:] = 0
        _write(pred, flat / f"{cid}.nii.gz")
        _write(pred, seg / "masks" / f"{cid}.nii.gz")
        rows.append(
            {
                "case_id": cid,
                "flair": f"images/{cid}_flair.nii.gz",
                "t1": f"images/{cid}_t1.nii.gz",
                "mask": f"images/{cid}_mask.nii.gz",
            }
        )
        seg_rows.append({"case_id": cid, "mask": f"masks/{cid}.nii.gz"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    pd.DataFrame(seg_rows).to_csv(seg / "manifest.csv", index=False)
    config = root / "fast.yaml"
    config.write_text(yaml.safe_dump(FAST))
    return {"manifest": root / "manifest.csv", "flat": flat, "seg": seg, "config": config}


def test_contour_agreement_end_to_end(cohort_files: dict[str, Path], tmp_path: Path) -> None:
    cohort = Cohort.from_csv(cohort_files["manifest"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = contour_agreement(cohort, cohort_files["flat"], config=FAST)
    excluded = [w for w in caught if issubclass(w.category, ExcludedCasesWarning)]
    assert len(excluded) == 1 and EMPTY_CASE in str(excluded[0].message)
    # the empty prediction is a recorded failure, and the case is left out of both tables
    assert not result.ok
    assert result.failures[["case_id", "mask", "exception"]].to_dict(orient="records") == [
        {"case_id": EMPTY_CASE, "mask": "predicted", "exception": "EmptyROIError"}
    ]
    used = [f"case{i}" for i in range(N_CASES) if f"case{i}" != EMPTY_CASE]
    assert list(result.reference.index) == used == list(result.predicted.index)
    assert list(result.reference.columns) == list(result.predicted.columns)
    # image type Original only by default, first sequence (flair) only
    assert all("__original__" in c for c in result.reference.columns)
    assert {c.split("__")[1] for c in result.reference.columns} == {"mask", "flair"}
    table = result.agreement
    assert len(table) == result.reference.shape[1] == 6
    volume: dict[Any, Any] = dict(table.loc[VOLUME])
    assert volume["icc"] > 0.95 and volume["n_cases"] == len(used)
    assert volume["icc_ci_low"] <= volume["icc"] <= volume["icc_ci_high"]
    assert volume["median_rel_diff"] > 0.2  # one-voxel dilation: a systematic volume bias
    s = result.summary
    assert (s["n_cases"], s["n_cases_total"], s["n_excluded"]) == (4, 5, 1)
    assert s["excluded_cases"] == [EMPTY_CASE] and s["n_features"] == 6
    assert set(s["by_class"]) == {"shape", "firstorder"}
    assert s["median_icc"] == pytest.approx(float(table["icc"].median()))

    paths = result.save(tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {
        "features_reference.csv",
        "features_reference.parquet",
        "features_predicted.csv",
        "features_predicted.parquet",
        "agreement.csv",
        "summary.json",
        "failures.csv",
    } <= names
    record = json.loads(paths["summary"].read_text(), parse_constant=pytest.fail)  # strict JSON
    prov = record["provenance"]
    assert prov["hybridrad_version"] and prov["versions"]["pyradiomics"]
    assert prov["manifest_sha256"] and len(prov["settings_hash"]) == 16
    assert prov["settings"]["sequence"] == "flair" and prov["settings"]["image_types"] == [
        "Original"
    ]
    assert set(prov["input_sha256"]["case0"]) == {"image", "reference_mask", "predicted_mask"}
    assert "predicted_mask" not in prov["input_sha256"][EMPTY_CASE]
    again = pd.read_parquet(paths["reference_parquet"])
    pd.testing.assert_frame_equal(again, result.reference)
    assert pd.read_csv(paths["failures"])["case_id"].tolist() == [EMPTY_CASE]


def test_contour_agreement_inputs(cohort_files: dict[str, Path], tmp_path: Path) -> None:
    cohort = Cohort.from_csv(cohort_files["manifest"])
    with pytest.raises(AgreementError, match="'adc'"):
        contour_agreement(cohort, cohort_files["flat"], config=FAST, sequence="adc")
    with pytest.raises(AgreementError, match="case4"):
        contour_agreement(
            cohort, {f"case{i}": cohort_files["flat"] / f"case{i}.nii.gz" for i in range(4)}
        )
    with pytest.raises(FileNotFoundError):
        contour_agreement(cohort, tmp_path / "nowhere", config=FAST)
    from hybridrad.segment.errors import SegmentationInputError

    (tmp_path / "partial").mkdir()
    with pytest.raises(SegmentationInputError, match="case0"):
        contour_agreement(cohort, tmp_path / "partial", config=FAST)
    # too few usable cases
    two = cohort.subset(["case0", EMPTY_CASE])
    with pytest.warns(ExcludedCasesWarning), pytest.raises(AgreementError, match="at least 2"):
        contour_agreement(two, cohort_files["flat"], config=FAST)


def test_add_parsers_runs_the_command(
    cohort_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="hybridrad")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "agreement"
    args = parser.parse_args(
        [
            "contour-agreement",
            str(cohort_files["manifest"]),
            "--pred",
            str(cohort_files["seg"]),
            "--out",
            str(out),
            "--config",
            str(cohort_files["config"]),
            "--sequence",
            "t1",
            "--image-types",
            "config",
            "--no-progress",
        ]
    )
    with pytest.warns(ExcludedCasesWarning):
        status = args.func(args)
    assert status == 1  # a case was excluded
    text = capsys.readouterr().out
    assert "median ICC" in text and f"excluded: {EMPTY_CASE}" in text
    table = pd.read_csv(out / "agreement.csv", index_col="feature")
    assert {"original", "log-sigma-2-0-mm-3D"} == set(table["image_type"])
    assert VOLUME in table.index and "rad__t1__tumor__original__firstorder__Mean" in table.index
    record = json.loads((out / "summary.json").read_text())
    prov = record["provenance"]
    assert prov["command"] == "hybridrad contour-agreement"
    assert prov["predictions"]["manifest_sha256"]
    assert prov["settings"]["image_types"] == "config"
    assert (out / ".hybridrad-cache").is_dir()
