"""The radiomics engine and the cohort runner (cache, failures, process pool, Dask)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor

from hybridrad.cli import main
from hybridrad.errors import RadiomicsConfigError
from hybridrad.features import RadiomicsConfig, extract_radiomics
from hybridrad.features.radiomics import column_name
from hybridrad.io import Cohort

FAST: dict[str, Any] = {
    "imageType": {"Original": {}},
    "featureClass": {"shape": None, "firstorder": None, "glcm": ["Contrast", "JointEntropy"]},
    "setting": {"binWidth": 25, "label": 1},
}


def _volume(seed: int, shape: tuple[int, int, int] = (20, 24, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(500, 80, size=shape)).astype(np.float32)


def _labels(shape: tuple[int, int, int] = (20, 24, 24)) -> np.ndarray:
    z, y, x = np.indices(shape)
    r = np.sqrt((z - 10) ** 2 + (y - 12) ** 2 + (x - 12) ** 2)
    arr = np.zeros(shape, np.uint8)
    arr[r < 8] = 2
    arr[r < 5] = 4
    arr[r < 2.5] = 1
    return arr


def _write(arr: np.ndarray, path: Path, spacing: tuple[float, ...] = (1.0, 1.0, 1.5)) -> str:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return str(path)


@pytest.fixture
def cohort_dir(tmp_path: Path) -> Path:
    rows = []
    for i in range(4):
        d = tmp_path / f"c{i}"
        rows.append(
            {
                "case_id": f"c{i}",
                "t1": _write(_volume(i), d / "t1.nii.gz"),
                "flair": _write(_volume(10 + i) * 2, d / "flair.nii.gz"),
                "mask": _write(_labels(), d / "mask.nii.gz"),
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(RadiomicsConfigError, match="binWidht"):
        RadiomicsConfig({"setting": {"binWidht": 5}})
    with pytest.raises(RadiomicsConfigError, match="binWidth"):
        RadiomicsConfig({"setting": {"binWidth": -1}})
    with pytest.raises(RadiomicsConfigError, match="featureclass"):
        RadiomicsConfig({"featureclass": {}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("imageType:\n  Original: {}\n  Bogus: {}\n")
    with pytest.raises(RadiomicsConfigError, match=r"bad\.yaml"):
        RadiomicsConfig.load(bad)
    with pytest.raises(RadiomicsConfigError, match="mri_glioma"):
        RadiomicsConfig.load("no_such_preset")
    for name in ("mri_glioma", "ct_default", "ibsi"):
        cfg = RadiomicsConfig.load(name)
        assert len(cfg.hash) == 16
    assert RadiomicsConfig(FAST).hash == RadiomicsConfig(dict(FAST)).hash
    assert RadiomicsConfig(FAST).hash != RadiomicsConfig({**FAST, "setting": {"binWidth": 5}}).hash


def test_matches_plain_pyradiomics(cohort_dir: Path) -> None:
    cohort = Cohort.from_csv(cohort_dir / "manifest.csv", label_map="brats")
    result = extract_radiomics(cohort, FAST, regions=["WT", "ET"])
    assert result.ok and list(result.features.index) == ["c0", "c1", "c2", "c3"]
    # the same numbers as pyradiomics called directly on the region mask
    case = cohort["c2"]
    mask = sitk.ReadImage(str(case.mask))
    et = sitk.Cast(mask == 4, sitk.sitkUInt8)
    direct = RadiomicsFeatureExtractor(FAST).execute(str(case.images["flair"]), et, label=1)
    row = result.features.loc["c2"]
    for key, value in direct.items():
        if key.startswith("diagnostics_"):
            continue
        seq = "mask" if "_shape_" in key else "flair"
        assert row[column_name(seq, "ET", key)] == pytest.approx(float(value), rel=1e-12)
    # shape once per region, other classes per sequence x region
    cols = result.features.columns
    assert sum(c.startswith("rad__mask__WT__original__shape__") for c in cols) == 14
    assert not any(c.startswith("rad__t1__WT__original__shape__") for c in cols)
    assert {c.split("__")[1] for c in cols} == {"mask", "t1", "flair"}
    # provenance lives apart from the features
    diag = result.diagnostics.loc["c2"]
    assert diag["voxels__ET"] == int((_labels() == 4).sum()) + int((_labels() == 1).sum()) * 0
    assert len(diag["sha256__mask"]) == 64 and diag["config_hash"] == RadiomicsConfig(FAST).hash
    assert not any(c.startswith(("diagnostics", "sha256", "versions")) for c in cols)


def _break_cases(root: Path) -> dict[str, str]:
    """One case per bad input; returns case -> expected exception type."""
    expected = {}
    shape = (20, 24, 24)
    specs: dict[str, tuple[np.ndarray, np.ndarray, tuple[float, ...]]] = {}
    shifted = _labels()
    specs["geometry"] = (_volume(1), shifted, (1.0, 1.0, 1.5))
    empty = np.zeros(shape, np.uint8)
    specs["empty"] = (_volume(2), empty, (1.0, 1.0, 1.5))
    one = np.zeros(shape, np.uint8)
    one[5, 5, 5] = 4
    one[10:15, 10:15, 10:15] = 2
    specs["onevoxel"] = (_volume(3), one, (1.0, 1.0, 1.5))
    no_et = _labels()
    no_et[no_et == 4] = 2
    no_et[no_et == 1] = 2
    specs["noET"] = (_volume(4), no_et, (1.0, 1.0, 1.5))
    nan = _volume(5)
    nan[3, 3, 3] = np.nan
    specs["nan"] = (nan, _labels(), (1.0, 1.0, 1.5))
    rows = []
    for cid, (img, mask, spacing) in specs.items():
        d = root / cid
        mask_spacing = (1.0, 1.0, 2.0) if cid == "geometry" else spacing
        suffix = "nrrd" if cid == "nan" else "nii.gz"  # ITK's NIfTI writer drops NaN
        rows.append(
            {
                "case_id": cid,
                "t1": _write(img, d / f"t1.{suffix}", spacing),
                "mask": _write(mask, d / "mask.nii.gz", mask_spacing),
            }
        )
    expected.update(
        {
            "geometry": "MaskGeometryError",
            "empty": "EmptyROIError",
            "onevoxel": "ROITooSmallError",
            "noET": "EmptyROIError",
            "nan": "NonFiniteImageError",
        }
    )
    # a 2D image with a 3D config
    d = root / "flat"
    img2d = sitk.GetImageFromArray(_volume(6)[10])
    m2d = sitk.GetImageFromArray(_labels()[10])
    d.mkdir()
    sitk.WriteImage(img2d, str(d / "t1.nii.gz"))
    sitk.WriteImage(m2d, str(d / "mask.nii.gz"))
    rows.append({"case_id": "flat", "t1": str(d / "t1.nii.gz"), "mask": str(d / "mask.nii.gz")})
    expected["flat"] = "ImageDimensionError"
    # a corrupt file
    d = root / "corrupt"
    d.mkdir()
    (d / "t1.nii.gz").write_bytes(b"\x1f\x8b garbage")
    rows.append(
        {
            "case_id": "corrupt",
            "t1": str(d / "t1.nii.gz"),
            "mask": _write(_labels(), d / "mask.nii.gz"),
        }
    )
    expected["corrupt"] = "ImageReadError"
    for i in range(2):
        rows.append(
            {
                "case_id": f"good{i}",
                "t1": _write(_volume(20 + i), root / f"g{i}/t1.nii.gz"),
                "mask": _write(_labels(), root / f"g{i}/mask.nii.gz"),
            }
        )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return expected


def test_bad_inputs_fail_per_case_and_others_complete(tmp_path: Path) -> None:
    expected = _break_cases(tmp_path)
    cohort = Cohort.from_csv(tmp_path / "manifest.csv", label_map="brats")
    result = extract_radiomics(cohort, FAST, regions=["WT", "ET"], cache_dir=tmp_path / "cache")
    assert list(result.features.index) == ["good0", "good1"]
    failures = result.failures.set_index("case_id")
    assert failures["exception"].to_dict() == expected
    for cid, row in failures.iterrows():
        assert str(cid) in row["message"] or cid == "corrupt", row["message"]
        assert row["stage"].startswith("radiomics:")
    assert failures.loc["corrupt", "stage"] == "radiomics:read"
    assert "'ET'" in failures.loc["noET", "message"]
    assert "force2D" in failures.loc["flat", "message"]
    # nothing computed is lost: the good cases are cached, a rerun recomputes none of them
    again = extract_radiomics(cohort, FAST, regions=["WT", "ET"], cache_dir=tmp_path / "cache")
    assert again.n_cached == 2 and again.n_computed == 0
    pd.testing.assert_frame_equal(again.features, result.features)


def test_cache_resume_and_invalidation(cohort_dir: Path) -> None:
    cohort = Cohort.from_csv(cohort_dir / "manifest.csv", label_map="brats")
    cache = cohort_dir / "cache"
    first = extract_radiomics(cohort.subset(["c0", "c1"]), FAST, cache_dir=cache)  # "crash"
    assert first.n_computed == 2
    resumed = extract_radiomics(cohort, FAST, cache_dir=cache)
    assert (resumed.n_cached, resumed.n_computed) == (2, 2)
    rerun = extract_radiomics(cohort, FAST, cache_dir=cache)
    assert (rerun.n_cached, rerun.n_computed) == (4, 0)
    pd.testing.assert_frame_equal(rerun.features, resumed.features)
    # cached values round-trip exactly
    fresh = extract_radiomics(cohort, FAST)
    pd.testing.assert_frame_equal(rerun.features, fresh.features)
    # a changed input file or config is recomputed
    _write(_volume(99), cohort_dir / "c3" / "t1.nii.gz")
    changed = extract_radiomics(cohort, FAST, cache_dir=cache)
    assert (changed.n_cached, changed.n_computed) == (3, 1)
    other = extract_radiomics(cohort, {**FAST, "setting": {"binWidth": 10}}, cache_dir=cache)
    assert other.n_computed == 4
    # no temp files left behind by the atomic writes
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]


def test_process_pool_matches_serial(cohort_dir: Path) -> None:
    cohort = Cohort.from_csv(cohort_dir / "manifest.csv", label_map="brats")
    serial = extract_radiomics(cohort, FAST, jobs=1)
    pooled = extract_radiomics(cohort, FAST, jobs=2)
    pd.testing.assert_frame_equal(serial.features, pooled.features)


@pytest.mark.slow
def test_dask_local_cluster_matches_local(cohort_dir: Path) -> None:
    distributed = pytest.importorskip("distributed")
    cohort = Cohort.from_csv(cohort_dir / "manifest.csv", label_map="brats")
    local = extract_radiomics(cohort, FAST, jobs=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = extract_radiomics(cohort, FAST, scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            via_client = extract_radiomics(cohort, FAST, scheduler=client)
    pd.testing.assert_frame_equal(local.features, on_dask.features)
    pd.testing.assert_frame_equal(local.features, via_client.features)


def test_cli_extract_writes_tables_and_exit_code(
    cohort_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = cohort_dir / "fast.yaml"
    cfg.write_text(json.dumps(FAST))  # JSON is valid YAML
    out = cohort_dir / "out" / "features.parquet"
    args = [
        "extract",
        str(cohort_dir / "manifest.csv"),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--labels",
        "brats",
        "--regions",
        "WT,TC",
        "--no-progress",
    ]
    assert main(args) == 0
    table = pd.read_parquet(out)
    assert table.shape[0] == 4 and table.index.name == "case_id"
    prov = json.loads(out.with_name("features.provenance.json").read_text())
    assert prov["config_hash"] == RadiomicsConfig(FAST).hash and prov["regions"] == ["WT", "TC"]
    assert "pyradiomics" in prov["versions"] and len(prov["manifest_sha256"]) == 64
    assert pd.read_parquet(out.with_name("features.diagnostics.parquet")).shape[0] == 4
    assert main(args) == 0
    assert "4 from cache, 0 computed" in capsys.readouterr().out
    (cohort_dir / "c1" / "mask.nii.gz").unlink()
    assert main(args) == 1
    fails = pd.read_csv(out.with_name("features.failures.csv"))
    assert list(fails["case_id"]) == ["c1"] and fails.loc[0, "exception"] == "ImageNotFoundError"
    assert pd.read_parquet(out).shape[0] == 3
