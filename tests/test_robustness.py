"""Perturbation robustness: ICC against Shrout & Fleiss, perturbations, the cohort stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from hybridrad.cli import main
from hybridrad.features.robustness import feature_icc, icc, perturb, robustness_icc
from hybridrad.io import Cohort

FAST: dict[str, Any] = {
    "imageType": {"Original": {}},
    "featureClass": {"shape": ["VoxelVolume", "Sphericity"], "firstorder": ["Mean", "Median"]},
    "setting": {"binWidth": 25},
}


def test_icc_shrout_fleiss_and_vectorised() -> None:
    # Shrout & Fleiss (1979) Psychol Bull 86:420, Table 2 data; Table 4: ICC(1,1) = .17,
    # ICC(2,1) = .29, ICC(3,1) = .71
    x = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float
    )
    assert icc(x, "1,1") == pytest.approx(0.1657, abs=5e-4)
    assert icc(x, "2,1") == pytest.approx(0.2898, abs=5e-4)
    assert icc(x, "3,1") == pytest.approx(0.7148, abs=5e-4)
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(7, 3, 5))
    cube[:, :, 4] = 1.0  # constant feature
    out = icc(cube)
    for j in range(4):
        assert out[j] == pytest.approx(icc(cube[:, :, j]))
    assert np.isnan(out[4])
    with pytest.raises(ValueError, match="2 targets"):
        icc(np.ones((1, 3)))


def _case(radius: float, seed: int) -> tuple[sitk.Image, sitk.Image]:
    shape = (24, 32, 32)
    z, y, x = np.indices(shape)
    r = np.sqrt(((z - 12) * 1.5) ** 2 + (y - 16) ** 2 + (x - 16) ** 2)
    labels = np.zeros(shape, np.uint8)
    labels[r < radius] = 2
    labels[r < radius * 0.6] = 4
    labels[r < radius * 0.3] = 1
    rng = np.random.default_rng(seed)
    arr = (300.0 + 40.0 * labels + rng.normal(0, 10, shape)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.5))
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(img)
    return img, mask


def test_perturb_is_deterministic_and_keeps_labels_nested() -> None:
    img, mask = _case(9.0, 0)
    a_img, a_mask = perturb({"t1": img}, mask, np.random.default_rng(3))
    b_img, b_mask = perturb({"t1": img}, mask, np.random.default_rng(3))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a_mask), sitk.GetArrayFromImage(b_mask))
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(a_img["t1"]), sitk.GetArrayFromImage(b_img["t1"])
    )
    before = sitk.GetArrayFromImage(mask)
    after = sitk.GetArrayFromImage(a_mask)
    assert set(np.unique(after)) == {0, 1, 2, 4}
    assert not np.array_equal(before, after)
    assert 0.8 < (after > 0).sum() / (before > 0).sum() < 1.2
    assert a_mask.GetSize() == mask.GetSize() and a_mask.GetSpacing() == mask.GetSpacing()
    # volume only: the image is untouched
    v_img, _ = perturb({"t1": img}, mask, np.random.default_rng(1), kinds=["volume"])
    assert v_img["t1"] is img
    with pytest.raises(ValueError, match="rotate"):
        perturb({"t1": img}, mask, np.random.default_rng(1), kinds=["rotate"])


def test_robustness_stage_on_a_cohort(tmp_path: Path) -> None:
    rows = []
    for i, radius in enumerate((5.0, 7.0, 9.0, 11.0)):
        img, mask = _case(radius, i)
        d = tmp_path / f"c{i}"
        d.mkdir()
        sitk.WriteImage(img, str(d / "t1.nii.gz"))
        sitk.WriteImage(mask, str(d / "mask.nii.gz"))
        rows.append({"case_id": f"c{i}", "t1": f"c{i}/t1.nii.gz", "mask": f"c{i}/mask.nii.gz"})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    cohort = Cohort.from_csv(tmp_path / "manifest.csv", label_map="brats")
    table, result = robustness_icc(
        cohort, FAST, n_perturbations=3, regions=["WT", "ET"], cache_dir=tmp_path / "cache"
    )
    assert result.ok and result.features.shape[0] == 4
    volume = table.loc["rad__mask__WT__original__shape__VoxelVolume", "icc"]
    assert volume > 0.95  # volumes differ a lot between cases, little under perturbation
    assert (table["n_perturbations"] == 3).all() and (table["n_cases"] == 4).all()
    assert table["icc"].between(-1, 1).all()
    # the ICC equals a direct computation on the perturbed values
    cols = [f"p{k}@rad__t1__ET__original__firstorder__Mean" for k in range(3)]
    direct = icc(result.features[cols].to_numpy())
    assert table.loc["rad__t1__ET__original__firstorder__Mean", "icc"] == pytest.approx(direct)
    again = feature_icc(result.features)
    pd.testing.assert_frame_equal(again, table)
    # CLI, from the warm cache
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(str(FAST).replace("'", '"').replace("None", "null"))
    out = tmp_path / "icc.csv"
    code = main(
        [
            "robustness",
            str(tmp_path / "manifest.csv"),
            "--config",
            str(cfg),
            "--labels",
            "brats",
            "--regions",
            "WT,ET",
            "--perturbations",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert pd.read_csv(out, index_col=0).shape == table.shape
