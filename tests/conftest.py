"""Shared fixtures: a tiny valid cohort on disk, and the reference-data locator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from hybridrad.datasets.reference import reference_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared reference data (``$HYBRIDRAD_DATA`` or ../shared/data); skip if absent."""
    path = reference_data_dir()
    if path is None:
        pytest.skip("reference data not found: set HYBRIDRAD_DATA or place ../shared/data")
    return path


def make_image(
    shape: tuple[int, int, int] = (12, 10, 8),
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    seed: int = 0,
) -> sitk.Image:
    """A small int16 noise volume; ``shape`` is (x, y, z)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 1000, size=shape[::-1]).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def make_mask(
    shape: tuple[int, int, int] = (12, 10, 8),
    values: tuple[int, ...] = (1,),
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
) -> sitk.Image:
    """A uint8 mask with a block per value."""
    arr = np.zeros(shape[::-1], dtype=np.uint8)
    for i, v in enumerate(values):
        arr[2:5, 2 + 2 * i : 4 + 2 * i, 3:8] = v
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    return img


CohortFactory = Callable[..., Path]


@pytest.fixture
def small_cohort(tmp_path: Path) -> CohortFactory:
    """Write a valid 3-case, 2-sequence cohort with clinical table; returns the manifest path.

    Keyword ``mask_values`` sets the labels drawn into each mask.
    """

    def build(mask_values: tuple[int, ...] = (1,), n: int = 3) -> Path:
        rows, clin = [], []
        for i in range(n):
            cid = f"case{i}"
            d = tmp_path / "images" / cid
            d.mkdir(parents=True)
            for j, seq in enumerate(("t1", "flair")):  # distinct scans per sequence
                sitk.WriteImage(make_image(seed=100 * j + i), str(d / f"{seq}.nii.gz"))
            sitk.WriteImage(make_mask(values=mask_values), str(d / "mask.nii.gz"))
            rows.append(
                {
                    "case_id": cid,
                    "t1": f"images/{cid}/t1.nii.gz",
                    "flair": f"images/{cid}/flair.nii.gz",
                    "mask": f"images/{cid}/mask.nii.gz",
                    "site": "A",
                }
            )
            clin.append({"case_id": cid, "os_months": 10.0 + i, "death": i % 2, "idh": "WT"})
        pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
        pd.DataFrame(clin).to_csv(tmp_path / "clinical.csv", index=False)
        return tmp_path / "manifest.csv"

    return build
