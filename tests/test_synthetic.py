"""Tests for the synthetic ground-truth glioma cohort generator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_censored

from hybridrad.datasets import (
    SEQUENCES,
    SyntheticCohort,
    load_synthetic_truth,
    make_synthetic_cohort,
)
from hybridrad.datasets.synthetic import _draw_latent, _render_case


def _mk(out: Path, n_cases: int, seed: int = 0, overwrite: bool = False) -> SyntheticCohort:
    """Small, fast cohort: 32^3 voxels at 6 mm (same 192 mm field of view)."""
    return make_synthetic_cohort(
        out, n_cases, seed, shape=(32, 32, 32), spacing=(6.0, 6.0, 6.0), overwrite=overwrite
    )


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCohort:
    out = tmp_path_factory.mktemp("big")
    return _mk(out, 120, 0)


@pytest.fixture(scope="module")
def default_geom(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCohort:
    return make_synthetic_cohort(tmp_path_factory.mktemp("default"), n_cases=2, seed=3)


# ---- determinism --------------------------------------------------------------------------


def test_same_seed_byte_identical(tmp_path: Path) -> None:
    a = _mk(tmp_path / "a", 3, 11)
    b = _mk(tmp_path / "b", 3, 11)
    ha, hb = _hashes(a.root), _hashes(b.root)
    assert len(ha) == 3 * 5 + 4
    assert ha == hb
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert a.oracle_cindex == b.oracle_cindex or (
        np.isnan(a.oracle_cindex) and np.isnan(b.oracle_cindex)
    )


def test_different_seed_differs(tmp_path: Path) -> None:
    a = _mk(tmp_path / "a", 3, 1)
    b = _mk(tmp_path / "b", 3, 2)
    ha, hb = _hashes(a.root), _hashes(b.root)
    assert ha.keys() == hb.keys()
    for key in ha:
        if key.endswith(".nii.gz") or key in {"clinical.csv", "truth.csv"}:
            assert ha[key] != hb[key], key


def test_cases_independent_of_n_cases(tmp_path: Path, big: SyntheticCohort) -> None:
    small = _mk(tmp_path / "s", 2, 0)
    hs, hb = _hashes(small.root), _hashes(big.root)
    for key, h in hs.items():
        if key.startswith("images/"):
            assert hb[key] == h
    pd.testing.assert_frame_equal(small.truth, big.truth.iloc[:2])


def test_load_truth_roundtrip(big: SyntheticCohort) -> None:
    loaded = load_synthetic_truth(big.root)
    pd.testing.assert_frame_equal(loaded, big.truth, check_exact=False, rtol=1e-12)


def test_cohort_json(big: SyntheticCohort) -> None:
    meta = json.loads((big.root / "cohort.json").read_text())
    assert meta["seed"] == 0 and meta["n_cases"] == 120
    assert meta["shape"] == [32, 32, 32] and meta["spacing"] == [6.0, 6.0, 6.0]
    assert "hybridrad_version" in meta and "generator" in meta
    assert "survival" in meta["model"] and "phenotype" in meta["model"]
    hashes = _hashes(big.root)
    hashes.pop("cohort.json")
    assert meta["files"] == hashes


# ---- files, columns, geometry ------------------------------------------------------------


def test_files_and_columns(big: SyntheticCohort) -> None:
    root = big.root
    assert big.manifest_path == root / "manifest.csv"
    assert big.clinical_path == root / "clinical.csv"
    man = pd.read_csv(big.manifest_path)
    assert list(man.columns) == ["case_id", "t1", "t1c", "t2", "flair", "mask", "site"]
    assert list(man.case_id[:3]) == ["syn_0000", "syn_0001", "syn_0002"]
    assert set(man.site) == {"site_A", "site_B"}
    for col in [*SEQUENCES, "mask"]:
        assert all((root / p).is_file() for p in man[col])
        assert not any(Path(p).is_absolute() for p in man[col])
    clin = pd.read_csv(big.clinical_path)
    assert list(clin.columns) == [
        "case_id",
        "age",
        "sex",
        "os_months",
        "death",
        "idh",
        "codeletion_1p19q",
        "subtype",
        "mgmt_promoter",
    ]
    assert set(clin.idh) == {"Mutant", "WT"}
    assert set(clin.codeletion_1p19q) == {"codel", "non-codel"}
    assert set(clin.subtype) == {"IDHmut-codel", "IDHmut-non-codel", "IDHwt"}
    assert set(clin.mgmt_promoter) == {"Methylated", "Unmethylated"}
    assert set(clin.sex) <= {"female", "male"}
    assert clin.death.dtype.kind == "i" and set(clin.death) == {0, 1}
    assert (clin.os_months > 0).all()
    assert np.allclose(clin.os_months, clin.os_months.round(3))
    assert clin.age.between(18, 90).all()
    # consistency between subtype and markers
    assert ((clin.idh == "WT") == (clin.subtype == "IDHwt")).all()
    assert ((clin.codeletion_1p19q == "codel") == (clin.subtype == "IDHmut-codel")).all()
    truth = big.truth
    assert list(truth.index) == list(clin.case_id)
    for col in ["risk_score", "subtype", "p_idh_wt", "p_codel", "log_core_radius_mm"]:
        assert col in truth.columns
    assert (
        truth[["p_IDHmut-codel", "p_IDHmut-non-codel", "p_IDHwt"]].sum(axis=1).sub(1).abs().max()
        < 1e-9
    )
    cens = 1.0 - clin.death.mean()
    assert 0.15 < cens < 0.55


def test_geometry_default_shape(default_geom: SyntheticCohort) -> None:
    man = pd.read_csv(default_geom.manifest_path)
    for _, row in man.iterrows():
        imgs = [sitk.ReadImage(str(default_geom.root / row[c])) for c in [*SEQUENCES, "mask"]]
        for img in imgs:
            assert img.GetSize() == (64, 64, 64)
            assert img.GetSpacing() == pytest.approx((3.0, 3.0, 3.0))
            assert img.GetOrigin() == pytest.approx((-94.5, -94.5, -94.5))
            assert img.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
        for img in imgs[:4]:
            assert img.GetPixelID() == sitk.sitkInt16
            arr = sitk.GetArrayFromImage(img)
            assert arr.min() >= 0 and 500 < arr.max() < 12000
        assert imgs[4].GetPixelID() == sitk.sitkUInt8


def test_anisotropic_geometry(tmp_path: Path) -> None:
    c = make_synthetic_cohort(tmp_path, n_cases=2, shape=(40, 48, 32), spacing=(4.0, 3.5, 5.0))
    img = sitk.ReadImage(str(c.root / "images/syn_0000/mask.nii.gz"))
    assert img.GetSize() == (40, 48, 32)
    assert img.GetSpacing() == pytest.approx((4.0, 3.5, 5.0))
    assert img.GetOrigin() == pytest.approx((-78.0, -82.25, -77.5))
    assert c.truth.tumour_inside_brain.all()


def test_mask_labels(big: SyntheticCohort) -> None:
    man = pd.read_csv(big.manifest_path)
    for rel in man["mask"]:
        m = _read(big.root / rel)
        assert set(np.unique(m)) == {0, 1, 2, 4}
        # tumour never touches the volume border
        border = np.concatenate(
            [m[[0, -1]].ravel(), m[:, [0, -1]].ravel(), m[:, :, [0, -1]].ravel()]
        )
        assert (border == 0).all()
    assert big.truth.tumour_inside_brain.all()
    assert not big.truth.label_fallback.any()


@pytest.mark.parametrize("i", range(6))
def test_render_tumour_inside_brain(i: int) -> None:
    ss = np.random.SeedSequence(5).spawn(6)[i]
    lat, img = ss.spawn(2)
    p = _draw_latent(np.random.default_rng(lat))
    r = _render_case(p, np.random.default_rng(img), (48, 48, 48), (4.0, 4.0, 4.0))
    tumour = r["mask"] > 0
    assert tumour.any()
    assert not (tumour & ~r["brain"]).any()
    frac = r["brain"].mean()
    assert 0.1 < frac < 0.3  # deformed ellipsoid spanning ~60-80 % of each FOV axis
    for arr in r["images"].values():
        assert arr.dtype == np.int16
        # brain is much brighter than the (noise-only) background
        assert np.median(arr[r["brain"]]) > 5 * np.median(arr[~r["brain"]])


# ---- oracle performance ---------------------------------------------------------------


def test_oracle_ranges(big: SyntheticCohort) -> None:
    assert 0.65 < big.oracle_cindex < 0.95
    assert 0.7 < big.oracle_auc_idh < 0.98
    assert 0.6 < big.oracle_auc_codel < 0.98
    t = big.truth
    assert big.oracle_auc_idh == pytest.approx(roc_auc_score(t.idh_wt, t.p_idh_wt))
    assert big.oracle_auc_codel == pytest.approx(roc_auc_score(t.codel, t.p_codel))
    clin = pd.read_csv(big.clinical_path)
    c = concordance_index_censored(
        clin.death.to_numpy(bool), clin.os_months.to_numpy(float), t.risk_score.to_numpy()
    )[0]
    assert big.oracle_cindex == pytest.approx(c)


def test_raw_tumour_mean_is_weak(big: SyntheticCohort) -> None:
    man = pd.read_csv(big.manifest_path)
    means: dict[str, list[float]] = {s: [] for s in SEQUENCES}
    for _, row in man.iterrows():
        m = _read(big.root / row["mask"]) > 0
        for s in SEQUENCES:
            means[s].append(float(_read(big.root / row[s])[m].mean()))
    y = big.truth.loc[man.case_id, "idh_wt"].to_numpy()
    for s in SEQUENCES:
        auc = roc_auc_score(y, means[s])
        folded = max(auc, 1.0 - auc)
        assert folded <= big.oracle_auc_idh - 0.1, (s, folded, big.oracle_auc_idh)


# ---- argument validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cases": 1}, "n_cases"),
        ({"n_cases": 0}, "n_cases"),
        ({"shape": (31, 64, 64)}, "shape"),
        ({"shape": (64, 64, 161)}, "shape"),
        ({"shape": (64, 64)}, "shape"),
        ({"spacing": (3.0, 0.0, 3.0)}, "spacing"),
        ({"spacing": (3.0, -1.0, 3.0)}, "spacing"),
        ({"spacing": (3.0, float("nan"), 3.0)}, "spacing"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_synthetic_cohort(tmp_path / "x", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "c"
    _mk(out, 2, 0)
    with pytest.raises(FileExistsError, match="overwrite=True") as ei:
        _mk(out, 2, 0)
    assert str(out) in str(ei.value) and "--overwrite" in str(ei.value)
    before = _hashes(out)
    (out / "images" / "syn_0005").mkdir()  # stale case from a larger cohort
    c = _mk(out, 2, 0, overwrite=True)
    assert _hashes(c.root) == before
    assert not (out / "images" / "syn_0005").exists()
    # an existing but empty folder is fine without overwrite
    empty = tmp_path / "empty"
    empty.mkdir()
    _mk(empty, 2)


def test_out_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises((ValueError, FileExistsError)):
        _mk(f, 2)


def test_load_truth_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_synthetic_truth(tmp_path)
