"""Native first-order, shape and shape2D features against pyradiomics 3.0.1's classes.

Each case builds a cropped image + mask, runs the pyradiomics feature class itself with
every feature enabled (deprecated ones included) and compares with the native function
fed the same ROI values and binned levels: relative 1e-6, absolute 1e-9 near zero,
NaN where pyradiomics gives NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from radiomics import firstorder, imageoperations, shape, shape2D
from scipy import ndimage

from hybridrad.errors import EngineUnsupportedError
from hybridrad.features.engine.firstorder import FIRSTORDER_FEATURES, firstorder_features
from hybridrad.features.engine.roi import Roi
from hybridrad.features.engine.shape import (
    SHAPE2D_FEATURES,
    SHAPE_FEATURES,
    shape2d_features,
    shape_features,
)

logging.getLogger("radiomics").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

RTOL, ATOL = 1e-6, 1e-9


def _images(arr: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...]) -> tuple[Any, Any]:
    img = sitk.GetImageFromArray(arr.astype(np.float64))
    img.SetSpacing(spacing)
    msk = sitk.GetImageFromArray(mask.astype(np.uint8))
    msk.SetSpacing(spacing)
    return img, msk


def _enabled(cls: Any, names: tuple[str, ...]) -> dict[str, float]:
    cls.disableAllFeatures()
    for name in names:
        cls.enableFeatureByName(name)
    return {k: float(v) for k, v in cls.execute().items()}


def _assert_close(got: Mapping[str, Any], ref: Mapping[str, float], what: str) -> None:
    assert set(got) == set(ref), what
    for name, r in ref.items():
        g = float(got[name])
        if np.isnan(r):
            assert np.isnan(g), f"{what} {name}: {g} != NaN"
        else:
            assert np.isclose(g, r, rtol=RTOL, atol=ATOL), f"{what} {name}: {g!r} != {r!r}"


# ---------------------------------------------------------------- first order


def _firstorder_ref(
    arr: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...], settings: dict[str, Any]
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """pyradiomics' features plus the ROI values and binned levels its class sees."""
    img, msk = _images(arr, mask, spacing)
    cls = firstorder.RadiomicsFirstOrder(img, msk, **settings)
    ref = _enabled(cls, FIRSTORDER_FEATURES)
    values = cls.imageArray[cls.maskArray].astype(np.float64)
    levels = cls.discretizedImageArray[cls.maskArray].astype(np.int64)
    return ref, values, levels  # boolean indexing: np.nonzero (Roi.coords) order


def _random_case(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    shp = tuple(int(s) for s in rng.integers(2, 12, 3))
    if kind == "one-slice":
        shp = (1, *shp[1:])
    mask = rng.random(shp) < 0.6
    if kind == "tiny":
        mask[:] = False
        mask.flat[rng.choice(mask.size, size=min(3, mask.size), replace=False)] = True
    mask.flat[0] = True
    arr = rng.normal(100, 30, shp)
    if kind == "integer":
        arr = np.round(arr)
    elif kind == "flat":
        arr = np.full(shp, 0.1 * rng.integers(1, 30))
    elif kind == "negative":
        arr = rng.normal(-500, 300, shp)
    return arr, mask


@pytest.mark.parametrize("kind", ["float", "integer", "flat", "negative", "tiny", "one-slice"])
@pytest.mark.parametrize("seed", range(4))
def test_firstorder_matches_pyradiomics(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arr, mask = _random_case(rng, kind)
    spacing = (0.8, 1.1, 2.5)
    settings = {"binWidth": float(rng.choice([1, 5, 25])), "voxelArrayShift": int(seed * 300)}
    ref, values, levels = _firstorder_ref(arr, mask, spacing, settings)
    got = firstorder_features(
        values[None],
        levels[None],
        voxel_volume=float(np.prod(spacing)),
        voxel_array_shift=settings["voxelArrayShift"],
        features=FIRSTORDER_FEATURES,
    )
    assert all(v.shape == (1,) and v.dtype == np.float64 for v in got.values())
    _assert_close({k: v[0] for k, v in got.items()}, ref, f"{kind}/{seed}")


def test_firstorder_batch_rows_are_independent() -> None:
    """B > 1 with different Ng per row and a flat row gives each row's own result."""
    rng = np.random.default_rng(7)
    mask = rng.random((6, 9, 8)) < 0.5
    spacing = (1.0, 1.0, 1.0)
    rows = [
        (rng.normal(0, 1, mask.shape), {"binWidth": 0.1}),
        (rng.gamma(2.0, 50.0, mask.shape), {"binWidth": 25}),
        (np.full(mask.shape, 0.3), {"binWidth": 1}),
        (rng.integers(0, 4, mask.shape).astype(float), {"binCount": 3}),
    ]
    refs, values, levels = [], [], []
    for arr, settings in rows:
        r, v, lv = _firstorder_ref(arr, mask, spacing, settings)
        refs.append(r)
        values.append(v)
        levels.append(lv)
    got = firstorder_features(
        np.stack(values),
        np.stack(levels),
        voxel_volume=1.0,
        voxel_array_shift=0,
        features=FIRSTORDER_FEATURES,
    )
    for b, ref in enumerate(refs):
        _assert_close({k: v[b] for k, v in got.items()}, ref, f"row {b}")


def test_firstorder_chunking_keeps_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import hybridrad.features.engine.firstorder as fo

    rng = np.random.default_rng(3)
    values = rng.normal(size=(5, 40))
    levels = rng.integers(1, 6, size=(5, 40))
    kw: dict[str, Any] = {"voxel_volume": 1.0, "voxel_array_shift": 0}
    whole = firstorder_features(values, levels, features=FIRSTORDER_FEATURES, **kw)
    monkeypatch.setattr(fo, "_CHUNK_ELEMENTS", 80)  # two rows per chunk
    chunked = firstorder_features(values, levels, features=FIRSTORDER_FEATURES, **kw)
    for k in FIRSTORDER_FEATURES:
        np.testing.assert_array_equal(whole[k], chunked[k])


def test_unknown_feature_names_raise() -> None:
    v = np.ones((1, 3))
    with pytest.raises(EngineUnsupportedError, match="use engine: pyradiomics"):
        firstorder_features(v, v.astype(int), voxel_volume=1, voxel_array_shift=0, features=["X"])
    with pytest.raises(EngineUnsupportedError, match="use engine: pyradiomics"):
        shape_features(np.ones((2, 2, 2), bool), (1, 1, 1), features=["Volume"])
    with pytest.raises(EngineUnsupportedError, match="use engine: pyradiomics"):
        shape2d_features(np.ones((1, 2, 2), bool), (1, 1, 1), force2d_dimension=0, features=["X"])


# ---------------------------------------------------------------- shape


def _shape_ref(mask: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    img, msk = _images(mask, mask, spacing)
    return _enabled(shape.RadiomicsShape(img, msk), SHAPE_FEATURES)


def _shape2d_ref(mask: np.ndarray, spacing: tuple[float, ...], dim: int) -> dict[str, float]:
    img, msk = _images(mask, mask, spacing)
    cls = shape2D.RadiomicsShape2D(img, msk, force2D=True, force2Ddimension=dim)
    return _enabled(cls, SHAPE2D_FEATURES)


SPACINGS = [(1.0, 1.0, 1.0), (0.5, 0.7, 2.7), (1.3, 0.9, 0.6)]


@pytest.mark.parametrize("seed", range(30))
def test_shape_random_masks(seed: int) -> None:
    """Random (holey, non-convex, often several components) masks, all cube indices."""
    rng = np.random.default_rng(seed)
    shp = tuple(int(s) for s in rng.integers(1, 10, 3))
    mask = rng.random(shp) < rng.uniform(0.2, 0.9)
    mask.flat[0] = True
    spacing = SPACINGS[seed % 3]
    got = shape_features(mask, spacing, features=SHAPE_FEATURES)
    _assert_close(got, _shape_ref(mask, spacing), f"seed {seed}")


@pytest.mark.parametrize(
    "name", ["voxel", "line", "slice", "blob", "big-blob", "shell", "two-blobs"]
)
def test_shape_special_masks(name: str) -> None:
    rng = np.random.default_rng(1)
    if name == "voxel":
        mask = np.ones((1, 1, 1), bool)
    elif name == "line":
        mask = np.ones((1, 1, 7), bool)
    elif name == "slice":  # one slice: zero least-axis eigenvalue
        mask = ndimage.gaussian_filter(rng.random((1, 30, 25)), (0, 3, 3)) > 0.5
    elif name in ("blob", "big-blob"):
        shp = (14, 22, 18) if name == "blob" else (40, 56, 48)
        mask = ndimage.gaussian_filter(rng.random(shp), 3) > 0.5
    elif name == "shell":
        z, y, x = np.indices((15, 17, 19))
        r = np.sqrt((z - 7) ** 2 + (y - 8) ** 2 + (x - 9) ** 2)
        mask = (r < 7.5) & (r > 4)
    else:
        mask = np.zeros((9, 30, 9), bool)
        mask[2:7, 1:6, 2:7] = True
        mask[3:6, 22:29, 1:8] = True
    for spacing in SPACINGS:
        got = shape_features(mask, spacing, features=SHAPE_FEATURES)
        _assert_close(got, _shape_ref(mask, spacing), f"{name} {spacing}")


def test_shape_feature_subset_and_order() -> None:
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3, 1:4, 2:5] = True
    names = ["Flatness", "Maximum2DDiameterRow", "SurfaceArea"]
    got = shape_features(mask, (1, 1, 1), features=names)
    assert list(got) == names
    ref = _shape_ref(mask, (1.0, 1.0, 1.0))
    _assert_close(got, {k: ref[k] for k in names}, "subset")


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("seed", range(10))
def test_shape2d_random_masks(dim: int, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    shp = [int(s) for s in rng.integers(1, 25, 3)]
    shp[dim] = 1
    if seed % 2:
        mask = rng.random(shp) < rng.uniform(0.2, 0.9)
    else:
        mask = ndimage.gaussian_filter(rng.random(shp), 2) > 0.5
    mask.flat[0] = True
    spacing = SPACINGS[seed % 3]
    got = shape2d_features(mask, spacing, force2d_dimension=dim, features=SHAPE2D_FEATURES)
    _assert_close(got, _shape2d_ref(mask, spacing, dim), f"dim {dim} seed {seed}")


def test_shape2d_needs_one_slice() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        shape2d_features(
            np.ones((2, 3, 3), bool), (1, 1, 1), force2d_dimension=0, features=["Perimeter"]
        )


# ---------------------------------------------------------------- real data


@pytest.mark.data
def test_lgg_roi(data_dir: Path) -> None:
    """One TCGA-LGG FLAIR tumour ROI: first order (several bin widths in one batch) and shape."""
    case = data_dir / "lgg-tcga" / "cases" / "TCGA_CS_4942"
    if not case.is_dir():
        pytest.skip("TCGA_CS_4942 not in the reference data")
    img = sitk.ReadImage(str(case / "flair.nii.gz"))
    msk = sitk.Cast(sitk.ReadImage(str(case / "mask.nii.gz")) > 0, sitk.sitkUInt8)
    bbox, _ = imageoperations.checkMask(img, msk, label=1)
    img, msk = imageoperations.cropToTumorMask(img, msk, bbox, padDistance=0)
    spacing = img.GetSpacing()
    mask = sitk.GetArrayFromImage(msk) == 1

    refs, values, levels = [], [], []
    for bw in (1, 5, 25):
        cls = firstorder.RadiomicsFirstOrder(img, msk, binWidth=bw)
        refs.append(_enabled(cls, FIRSTORDER_FEATURES))
        values.append(cls.imageArray[cls.maskArray].astype(np.float64))
        levels.append(cls.discretizedImageArray[cls.maskArray].astype(np.int64))
    roi = Roi(mask, spacing)
    assert roi.n == len(values[0])
    got = firstorder_features(
        np.stack(values),
        np.stack(levels),
        voxel_volume=float(np.prod(spacing)),
        voxel_array_shift=0,
        features=FIRSTORDER_FEATURES,
    )
    for b, ref in enumerate(refs):
        _assert_close({k: v[b] for k, v in got.items()}, ref, f"LGG firstorder row {b}")

    ref_shape = _enabled(shape.RadiomicsShape(img, msk), SHAPE_FEATURES)
    _assert_close(shape_features(mask, spacing, features=SHAPE_FEATURES), ref_shape, "LGG shape")


@pytest.mark.parametrize("n", [30861, 11, 101, 1001, 12345])
def test_percentiles_are_numpys_to_the_bit_when_the_index_is_whole(n: int) -> None:
    """(n - 1) q is numpy's virtual index; n q + (1 - q) - 1 differs in the last bit for
    n = 30861 (TCGA_HT_A61A's ROI at 2 mm), which moved one voxel out of
    RobustMeanAbsoluteDeviation's 10-90 % range."""
    rng = np.random.default_rng(n)
    values = rng.normal(size=(2, n))
    levels = np.ones((2, n), dtype=np.int64)
    out = firstorder_features(
        values,
        levels,
        voxel_volume=1.0,
        voxel_array_shift=0.0,
        features=["10Percentile", "90Percentile", "RobustMeanAbsoluteDeviation"],
    )
    np.testing.assert_array_equal(out["10Percentile"], np.nanpercentile(values, 10, axis=1))
    np.testing.assert_array_equal(out["90Percentile"], np.nanpercentile(values, 90, axis=1))
    p10, p90 = np.nanpercentile(values, 10, axis=1), np.nanpercentile(values, 90, axis=1)
    for row in range(2):
        kept = values[row][(values[row] >= p10[row]) & (values[row] <= p90[row])]
        expected = np.mean(np.abs(kept - kept.mean()))
        np.testing.assert_allclose(out["RobustMeanAbsoluteDeviation"][row], expected, rtol=1e-12)
