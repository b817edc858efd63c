"""Known-answer tests of N4 bias correction, denoising and intensity normalisation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from hybridrad.errors import (
    EmptyROIError,
    HybridradError,
    MaskGeometryError,
    NonFiniteImageError,
)
from hybridrad.preprocess.bias import NegativeIntensityWarning, n4_bias_correction
from hybridrad.preprocess.denoise import denoise, stable_time_step
from hybridrad.preprocess.intensity import (
    ConstantRegionError,
    IntensityStats,
    clip_percentiles,
    ct_window,
    zscore,
)

N, SPACING = 48, 2.0


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = (np.arange(N) - (N - 1) / 2) * SPACING
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    return x, y, z


def _image(arr: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((SPACING,) * 3)
    img.SetOrigin((-47.0, -47.0, -47.0))
    return img


def _mask(arr: np.ndarray) -> sitk.Image:
    m = sitk.GetImageFromArray(arr.astype(np.uint8))
    m.SetSpacing((SPACING,) * 3)
    m.SetOrigin((-47.0, -47.0, -47.0))
    return m


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


# --- N4 ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def biased() -> dict[str, np.ndarray | sitk.Image]:
    """A piecewise-uniform head (scalp 60, brain 100, lesion 160) times a smooth field.

    The field is exp(0.25 x/40 - 0.2 (y/40)^2 + 0.15 z/40): 0.76 to 1.32 over the head.
    Noise SD 1 (1 % of the brain's 100) sets the floor of the coefficient of variation.
    """
    x, y, z = _grid()
    head = (x / 40) ** 2 + (y / 36) ** 2 + (z / 32) ** 2 <= 1
    brain = (x / 32) ** 2 + (y / 28) ** 2 + (z / 24) ** 2 <= 1
    lesion = ((x - 8) / 10) ** 2 + ((y + 4) / 8) ** 2 + ((z - 4) / 8) ** 2 <= 1
    truth = np.zeros(x.shape)
    truth[head], truth[brain], truth[lesion] = 60.0, 100.0, 160.0
    field = np.exp(0.25 * (x / 40) - 0.2 * (y / 40) ** 2 + 0.15 * (z / 40))
    rng = np.random.default_rng(0)
    arr = truth * field + rng.normal(0.0, 1.0, truth.shape)
    # the uniform region: brain without the lesion, 2 voxels from either boundary
    inner = (x / 28) ** 2 + (y / 24) ** 2 + (z / 20) ** 2 <= 1
    lesion_margin = ((x - 8) / 14) ** 2 + ((y + 4) / 12) ** 2 + ((z - 4) / 12) ** 2 <= 1
    return {"image": _image(arr), "arr": arr, "region": inner & ~lesion_margin, "head": head}


def test_n4_removes_a_known_bias_field(biased: dict) -> None:
    region = biased["region"]
    before = _cv(biased["arr"][region])
    # measured 0.0874: the field's doing, the noise alone gives 0.01
    assert 0.08 < before < 0.095
    out = n4_bias_correction(biased["image"])
    after = _cv(sitk.GetArrayFromImage(out)[region])
    # measured 0.0108 (shrink 2): down to the noise floor of 0.01, an 8-fold drop
    assert after < 0.02
    assert after < before / 4
    assert out.GetPixelID() == sitk.sitkFloat32
    assert out.GetSize() == biased["image"].GetSize()
    assert out.GetOrigin() == biased["image"].GetOrigin()
    assert out.GetSpacing() == biased["image"].GetSpacing()


def test_n4_with_a_given_mask_and_a_coarse_shrink(biased: dict) -> None:
    out = n4_bias_correction(
        biased["image"], _mask(biased["head"]), shrink_factor=4, iterations=(50, 50, 50)
    )
    assert _cv(sitk.GetArrayFromImage(out)[biased["region"]]) < 0.02  # measured 0.014


def test_n4_refuses_blank_image_and_empty_mask() -> None:
    blank = _image(np.full((N, N, N), 7.0))
    with pytest.raises(ConstantRegionError, match="blank"):
        n4_bias_correction(blank, name="case1/t1")
    x, _, _ = _grid()
    img = _image(100 + x)
    with pytest.raises(EmptyROIError, match="case1/t1: the mask holds no nonzero voxel"):
        n4_bias_correction(img, _mask(np.zeros((N, N, N))), name="case1/t1")
    assert issubclass(ConstantRegionError, HybridradError)


def test_n4_warns_once_on_negative_intensities() -> None:
    x, _, _ = _grid()
    img = _image(x)  # -47..47 mm: half negative, like a z-scored image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n4_bias_correction(img, _mask(np.ones((N, N, N))), iterations=(5,))
    negative = [w for w in caught if issubclass(w.category, NegativeIntensityWarning)]
    assert len(negative) == 1
    assert "before z-scoring" in str(negative[0].message)


# --- denoising -----------------------------------------------------------------------------


def _edge_position(arr: np.ndarray) -> float:
    """x (voxels) where the profile, averaged away from the faces, crosses 50."""
    prof = arr[8:-8, 8:-8, :].mean(axis=(0, 1))
    i = int(np.nonzero(prof >= 50)[0][0])
    return float(i - 1 + (50 - prof[i - 1]) / (prof[i] - prof[i - 1]))


def test_denoise_reduces_noise_and_keeps_the_edge() -> None:
    arr = np.zeros((48, 48, 48), np.float32)
    arr[:, :, 24:] = 100.0  # a step edge between x = 23 and x = 24: position 23.5
    rng = np.random.default_rng(0)
    noisy = arr + rng.normal(0, 10, arr.shape).astype(np.float32)
    img = sitk.GetImageFromArray(noisy)  # 1 mm voxels
    out = denoise(img)  # 5 iterations, time step 0.0625, conductance 3
    smooth = sitk.GetArrayFromImage(out)
    sd_before = float(noisy[8:-8, 8:-8, 4:16].std())
    sd_after = float(smooth[8:-8, 8:-8, 4:16].std())
    assert 9.5 < sd_before < 10.5
    assert sd_after < sd_before / 4  # measured 9.97 -> 1.49, a factor of 6.7
    assert abs(_edge_position(smooth) - 23.5) < 0.1  # measured 23.501
    # the edge stays one voxel sharp: the jump between voxels 23 and 24 keeps > 80 of 100
    profile = smooth[8:-8, 8:-8, :].mean(axis=(0, 1))
    assert profile[24] - profile[23] > 80  # measured 93.4
    assert out.GetPixelID() == sitk.sitkFloat32


def test_denoise_time_step_follows_spacing() -> None:
    img = sitk.Image([8, 8, 8], sitk.sitkFloat32)
    img.SetSpacing((0.5, 1.0, 3.0))
    assert stable_time_step(img) == 0.5 / 16
    with pytest.raises(ValueError, match="stability limit"):
        denoise(img, time_step=0.0625)


# --- z-score ---------------------------------------------------------------------------------


def test_brain_masked_zscore_has_mean_0_sd_1_inside_the_mask() -> None:
    x, y, z = _grid()
    brain = (x / 30) ** 2 + (y / 25) ** 2 + (z / 22) ** 2 <= 1
    rng = np.random.default_rng(1)
    arr = np.where(brain, rng.normal(400.0, 50.0, x.shape), rng.normal(5.0, 2.0, x.shape))
    out, stats = zscore(_image(arr), _mask(brain))
    z_in = sitk.GetArrayFromImage(out).astype(np.float64)[brain]
    assert abs(z_in.mean()) < 1e-6
    assert abs(z_in.std() - 1.0) < 1e-6
    inside = arr.astype(np.float32).astype(np.float64)[brain]
    assert stats.method == "zscore" and stats.region == "mask"
    assert stats.n_voxels == int(brain.sum())
    assert stats.mean == pytest.approx(inside.mean(), rel=1e-12)
    assert stats.sd == pytest.approx(inside.std(), rel=1e-12)
    assert 395 < stats.mean < 405 and 48 < stats.sd < 52
    # background is transformed too: (5 - 400) / 50 = -7.9
    assert sitk.GetArrayFromImage(out)[~brain].mean() == pytest.approx(-7.9, abs=0.1)
    # z-score over all voxels (pyradiomics' normalize) gives another scale: air dominates
    _, whole = zscore(_image(arr))
    assert whole.region == "image" and whole.mean < 150
    d = stats.to_dict()
    assert d["mean"] == stats.mean and d["low"] is None and d["n_clipped"] == 0


def test_zscore_errors_name_the_problem() -> None:
    img = _image(np.full((N, N, N), 3.0))
    with pytest.raises(ConstantRegionError, match="SD 0"):
        zscore(img)
    with pytest.raises(EmptyROIError, match="BraTS_001/flair: the mask holds no nonzero"):
        zscore(img, _mask(np.zeros((N, N, N))), name="BraTS_001/flair")
    shifted = _mask(np.ones((N, N, N)))
    shifted.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(MaskGeometryError, match="resample the mask"):
        zscore(img, shifted)
    bad = np.ones((N, N, N))
    bad[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteImageError):
        zscore(_image(bad))


# --- clipping and CT windows -------------------------------------------------------------------


def test_clip_percentiles_exact_values() -> None:
    # 0..999 inside the mask, 5000 outside (an artefact the percentiles must not see)
    arr = np.full((10, 10, 20), 5000.0)
    mask = np.zeros(arr.shape, bool)
    mask[:, :, :10] = True
    arr[mask] = np.arange(1000.0)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    m = sitk.GetImageFromArray(mask.astype(np.uint8))
    out, stats = clip_percentiles(img, m, 1.0, 99.0)
    # numpy's linear percentile of 0..999: 1 % -> 9.99, 99 % -> 989.01
    assert stats.low == pytest.approx(9.99) and stats.high == pytest.approx(989.01)
    res = sitk.GetArrayFromImage(out)
    assert res[mask].min() == pytest.approx(9.99) and res[mask].max() == pytest.approx(989.01)
    assert np.all(res[~mask] == pytest.approx(989.01))  # applied everywhere
    # 10 clipped low (0..9), 10 high (990..999), 1000 outside the mask
    assert stats.n_clipped == 1020
    assert stats.mean == pytest.approx(499.5) and stats.n_voxels == 1000
    assert (stats.low_percentile, stats.high_percentile) == (1.0, 99.0)
    assert isinstance(stats, IntensityStats)
    with pytest.raises(ValueError, match="low < high"):
        clip_percentiles(img, m, 99.0, 1.0)


def test_ct_window_exact_values() -> None:
    hu = np.array([[[-1000, -41, -40, 0, 40, 80, 120, 121, 3000]]], np.int16)
    img = sitk.GetImageFromArray(hu)
    img.SetOrigin((1.0, 2.0, 3.0))
    out = ct_window(img, level=40, width=160)  # [-40, 120]
    assert sitk.GetArrayFromImage(out).ravel().tolist() == [
        -40.0,
        -40.0,
        -40.0,
        0.0,
        40.0,
        80.0,
        120.0,
        120.0,
        120.0,
    ]
    assert out.GetPixelID() == sitk.sitkFloat32 and out.GetOrigin() == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="positive width"):
        ct_window(img, 40, 0)
