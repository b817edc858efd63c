"""Brain extraction: threshold method, deepbet orientation round trip, fallback, real data."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hybridrad.errors import ImageDimensionError
from hybridrad.preprocess import brain
from hybridrad.preprocess.brain import (
    INSTALL_HINT,
    BrainExtractionError,
    BrainExtractionFallbackWarning,
    BrainMask,
    DeepbetNotInstalledError,
    extract_brain,
    from_canonical_array,
    to_canonical_array,
)

# --- synthetic images -------------------------------------------------------------------------


def synthetic_head(
    shape: tuple[int, int, int] = (48, 44, 40), seed: int = 0
) -> tuple[sitk.Image, np.ndarray]:
    """A head: bright ellipsoid brain, dark CSF gap, thin bright skull ring, noise.

    ``shape`` is (x, y, z); returns the image and the true brain as a [z, y, x] bool array.
    """
    nx, ny, nz = shape
    z, y, x = np.mgrid[:nz, :ny, :nx].astype(float)
    centre = (nz / 2 - 0.5, ny / 2 - 0.5, nx / 2 - 0.5)
    r2 = (
        ((x - centre[2]) / 15.0) ** 2
        + ((y - centre[1]) / 13.0) ** 2
        + ((z - centre[0]) / 11.0) ** 2
    )
    brain_true = r2 <= 1.0
    # the skull: a thin shell of the same ellipsoid scaled 1.35x, ~1.5 voxels thick
    skull = (r2 > 1.35**2) & (r2 <= 1.47**2)
    rng = np.random.default_rng(seed)
    image = np.where(brain_true, 100.0, 0.0) + np.where(skull, 120.0, 0.0)
    image += np.where(brain_true, 15.0 * np.sin(x / 3.0), 0.0)  # grey/white texture
    image += rng.normal(0.0, 10.0, image.shape)
    img = sitk.GetImageFromArray(image.astype(np.float32))
    img.SetSpacing((1.0, 1.0, 1.2))
    return img, brain_true


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def asymmetric_image() -> sitk.Image:
    """An image with every axis flipped and x/y swapped in storage, with one bright corner."""
    arr = np.zeros((9, 11, 13), dtype=np.int16)  # [z, y, x]: size (13, 11, 9)
    arr[1:3, 2:5, 8:12] = 500
    arr[:, :, :2] = 7  # a low-x slab, so no axis is symmetric
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.9, 1.1, 2.5))
    img.SetOrigin((12.0, -30.0, 4.5))
    # columns = physical direction of index axes i, j, k: i -> -y, j -> +x, k -> -z
    img.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    return img


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetOrigin(), b.GetOrigin())
        and np.allclose(a.GetSpacing(), b.GetSpacing())
        and np.allclose(a.GetDirection(), b.GetDirection())
    )


# --- threshold method -------------------------------------------------------------------------


def test_threshold_recovers_synthetic_brain() -> None:
    img, truth = synthetic_head()
    result = extract_brain(img, method="threshold")
    mask = sitk.GetArrayFromImage(result.mask)
    assert result.method == "threshold" and result.fallback_reason is None
    assert result.mask.GetPixelID() == sitk.sitkUInt8 and set(np.unique(mask)) == {0, 1}
    assert dice(mask, truth) >= 0.95
    assert not (mask.astype(bool) & ~truth).sum() > 0.05 * truth.sum()  # skull left out
    assert result.volume_ml == pytest.approx(mask.sum() * 1.2 / 1000.0)


def test_threshold_keeps_input_grid_with_flipped_direction() -> None:
    img, truth = synthetic_head(seed=1)
    flipped = sitk.Flip(img, [True, False, True])  # same physical image, flipped storage
    assert flipped.GetDirection() != img.GetDirection()
    result = extract_brain(flipped, method="threshold")
    assert same_grid(result.mask, flipped)
    mask = sitk.GetArrayFromImage(result.mask)
    assert dice(mask, truth[::-1, :, ::-1]) >= 0.95


def test_threshold_errors() -> None:
    with pytest.raises(BrainExtractionError, match=r"case7.*constant"):
        extract_brain(sitk.Image([16, 16, 16], sitk.sitkInt16), method="threshold", name="case7")
    with pytest.raises(ImageDimensionError, match="scalar 3D"):
        extract_brain(sitk.Image([16, 16], sitk.sitkFloat32), method="threshold")
    with pytest.raises(ImageDimensionError, match="component"):
        extract_brain(sitk.Image([8, 8, 8], sitk.sitkVectorFloat32, 3), method="threshold")
    img, _ = synthetic_head()
    with pytest.raises(ValueError, match="not one of"):
        extract_brain(img, method="bet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        extract_brain(img, method="threshold", threshold=1.5)


# --- deepbet orientation, without the network -------------------------------------------------


def test_canonical_array_matches_nibabel(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    img = asymmetric_image()
    path = tmp_path / "asym.nii.gz"
    sitk.WriteImage(img, str(path))
    expected = nib.as_closest_canonical(nib.load(str(path))).get_fdata(dtype=np.float32)
    canonical = to_canonical_array(img)
    # x (R-L) runs along index j (11), y (A-P) along i (13), z along k (9)
    assert canonical.shape == expected.shape == (11, 13, 9)
    np.testing.assert_array_equal(canonical, expected)
    # for axis-aligned grids this is ITK's DICOMOrient code "RAS" (direction diag(-1,-1,1))
    oriented = sitk.DICOMOrient(img, "RAS")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(oriented).transpose(2, 1, 0), canonical)
    back = from_canonical_array(canonical > 100, img)
    assert same_grid(back, img)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(back), (sitk.GetArrayFromImage(img) > 100).astype(np.uint8)
    )


class _FirstHalf:
    """Stands in for deepbet: 'brain' = the first half of the canonical RAS+ axis 0.

    That axis increases towards patient Right, so its first half is the patient's LEFT
    half: in SimpleITK's LPS+ space, the voxels with the largest x.
    """

    def predict(self, array: np.ndarray, threshold: float) -> np.ndarray:
        mask = np.zeros(array.shape, dtype=bool)
        mask[: array.shape[0] // 2] = True
        return mask


def test_deepbet_mask_lands_on_the_input_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nibabel")
    monkeypatch.setattr(brain, "_deepbet_import_error", lambda: None)
    monkeypatch.setattr(brain, "_resolve_device", lambda device: device)
    monkeypatch.setattr(brain, "_load_deepbet", lambda device: _FirstHalf())
    img = asymmetric_image()
    result = extract_brain(img, method="deepbet")
    assert result.method == "deepbet" and same_grid(result.mask, img)
    mask = sitk.GetArrayFromImage(result.mask)  # [k, j, i]
    size = img.GetSize()
    xs = np.array(
        [
            img.TransformIndexToPhysicalPoint((i, j, k))[0]
            for k in range(size[2])
            for j in range(size[1])
            for i in range(size[0])
        ]
    ).reshape(mask.shape)
    # x runs along index axis j (11 voxels): the 5 voxel columns with the largest x
    assert mask.sum() == mask.size * 5 // 11
    assert xs[mask == 1].min() > xs[mask == 0].max()
    expected = np.zeros(mask.shape, dtype=np.uint8)
    expected[:, -5:, :] = 1  # direction column j = +x, so the largest j hold the largest x
    np.testing.assert_array_equal(mask, expected)


# --- auto: fallback when deepbet cannot be imported -------------------------------------------


def hide_deepbet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import deepbet`` fail (a None entry in sys.modules raises ImportError)."""
    monkeypatch.setitem(sys.modules, "deepbet", None)
    monkeypatch.setitem(sys.modules, "deepbet.bet", None)


def test_auto_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_deepbet(monkeypatch)
    assert not brain.deepbet_available()
    img, truth = synthetic_head()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = extract_brain(img, name="case3")
    fallback = [w for w in caught if issubclass(w.category, BrainExtractionFallbackWarning)]
    assert len(caught) == len(fallback) == 1
    message = str(fallback[0].message)
    assert "case3" in message and "deepbet" in message and INSTALL_HINT in message
    assert isinstance(result, BrainMask)
    assert result.method == "threshold"
    assert result.fallback_reason is not None and "deepbet" in result.fallback_reason
    assert dice(sitk.GetArrayFromImage(result.mask), truth) >= 0.95


def test_deepbet_named_but_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_deepbet(monkeypatch)
    img, _ = synthetic_head()
    with pytest.raises(DeepbetNotInstalledError, match=r"case3.*hybridrad\[brain\]"):
        extract_brain(img, method="deepbet", name="case3")


# --- real data --------------------------------------------------------------------------------


def head_shell(image: sitk.Image, mm: float = 5.0) -> np.ndarray:
    """The head's outer shell: voxels of the filled head within ``mm`` of its boundary."""
    as_float = sitk.Cast(image, sitk.sitkFloat32)
    smooth = sitk.SmoothingRecursiveGaussian(as_float, [0.75 * s for s in image.GetSpacing()])
    arr = sitk.GetArrayFromImage(smooth)
    head = sitk.GetImageFromArray((arr > brain._otsu(arr.ravel())).astype(np.uint8))
    head.CopyInformation(image)
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(head, True), sortByObjectSize=True)
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.Equal(labels, 1)))
    for k in range(filled.shape[0]):
        filled[k] = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(filled[k])))
    head = sitk.GetImageFromArray(filled)
    head.CopyInformation(image)
    distance = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(
            head, insideIsPositive=True, squaredDistance=False, useImageSpacing=True
        )
    )
    return filled.astype(bool) & (distance <= mm)


@pytest.mark.data
def test_deepbet_on_brats(data_dir: Path) -> None:
    pytest.importorskip("deepbet")
    path = data_dir / "brats-samples" / "brats2018-wholetumour" / "case_0" / "T1.nii.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    image = sitk.ReadImage(str(path))
    result = extract_brain(image, method="deepbet")
    assert result.method == "deepbet" and same_grid(result.mask, image)
    mask = sitk.GetArrayFromImage(result.mask).astype(bool)
    nonzero = sitk.GetArrayFromImage(image) != 0  # skull-stripped by the BraTS organisers
    assert (mask & nonzero).sum() >= 0.98 * nonzero.sum()  # measured 0.996
    assert 900.0 <= result.volume_ml <= 2000.0  # measured 1538 mL


@pytest.mark.data
@pytest.mark.slow
def test_deepbet_equals_its_own_nifti_route(data_dir: Path) -> None:
    """extract_brain gives deepbet's own file-based result voxel for voxel."""
    pytest.importorskip("deepbet")
    nib = pytest.importorskip("nibabel")
    from deepbet.utils import reoriented_nifti

    path = data_dir / "brats-samples" / "brats2018-wholetumour" / "case_3" / "T1.nii.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    image = sitk.ReadImage(str(path))
    flipped = sitk.Flip(image, [True, True, False])  # same head, other storage order
    ours = sitk.GetArrayFromImage(extract_brain(flipped, method="deepbet").mask)
    bet = brain._load_deepbet("cpu").bet
    nifti = nib.load(str(path))
    canonical = nib.as_closest_canonical(nifti).get_fdata(dtype=np.float32)
    reference = bet.postprocess(bet.run_model(canonical.copy()) > 0.5, 0).astype(np.uint8)
    theirs = np.asarray(reoriented_nifti(reference, nifti.affine, nifti.header).dataobj)
    np.testing.assert_array_equal(ours[:, ::-1, ::-1], theirs.transpose(2, 1, 0))


@pytest.mark.data
def test_deepbet_on_lgg_excludes_the_scalp(data_dir: Path) -> None:
    pytest.importorskip("deepbet")
    case = data_dir / "lgg-tcga" / "cases" / "TCGA_DU_5852"
    if not case.exists():
        pytest.skip(f"{case} not found")
    image = sitk.ReadImage(str(case / "t1c.nii.gz"))  # not skull-stripped, uint8
    result = extract_brain(image, method="deepbet")
    assert same_grid(result.mask, image)
    mask = sitk.GetArrayFromImage(result.mask).astype(bool)
    shell = head_shell(image)
    assert (mask & shell).sum() <= 0.05 * shell.sum()  # measured 0.001
    assert 1000.0 <= result.volume_ml <= 2000.0  # measured 1492 mL (nominal spacing)
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "mask.nii.gz"))).astype(bool)
    assert (mask & tumour).sum() >= 0.95 * tumour.sum()
