"""Known answers for hybridrad.preprocess.resample and hybridrad.preprocess.geometry."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from hybridrad.errors import EmptyROIError, ImageDimensionError, MaskGeometryError
from hybridrad.preprocess.geometry import crop_to_mask, foreground_bbox, reorient
from hybridrad.preprocess.resample import (
    make_grid,
    resample_image,
    resample_onto,
    same_grid,
    spacing_grid,
)

ROT = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # a 90 degree rotation about z


def _image(
    array: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: tuple[float, ...] | None = None,
) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def _physical_points(img: sitk.Image) -> np.ndarray:
    """Physical (x, y, z) of every voxel, shaped (z, y, x, 3)."""
    size = np.asarray(img.GetSize())
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1)
    spacing = np.asarray(img.GetSpacing())
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    pts = np.asarray(img.GetOrigin()) + (idx * spacing) @ direction.T
    return pts.transpose(2, 1, 0, 3)


def _ramp(img: sitk.Image, coef: tuple[float, float, float], c0: float) -> np.ndarray:
    return _physical_points(img) @ np.asarray(coef) + c0


def _sphere(shape: tuple[int, int, int], spacing: tuple[float, float, float], radius: float):
    centre = (np.asarray(shape[::-1]) - 1) / 2 * np.asarray(spacing)
    img = _image(np.zeros(shape, np.uint8), spacing)
    pts = _physical_points(img)
    arr = (np.linalg.norm(pts - centre, axis=-1) <= radius).astype(np.uint8)
    return _image(arr, spacing), centre


# --- resample_image: geometry -------------------------------------------------------------


@pytest.mark.parametrize(
    "new_spacing",
    [(0.5, 0.5, 0.5), (2.0, 2.0, 2.0), (0.8, 1.5, 3.0), (1.0, 1.0, 1.0)],
    ids=["finer", "coarser", "anisotropic", "same"],
)
@pytest.mark.parametrize("direction", [None, ROT], ids=["identity", "rotated"])
def test_resample_keeps_origin_direction_and_extent(new_spacing, direction):
    img = _image(np.zeros((12, 20, 24), np.int16), (1.2, 0.9, 2.5), (-30.0, 12.5, 7.0), direction)
    out = resample_image(img, new_spacing)
    assert out.GetOrigin() == img.GetOrigin()
    assert out.GetDirection() == img.GetDirection()
    assert out.GetSpacing() == pytest.approx(new_spacing)
    old_extent = np.asarray(img.GetSize()) * np.asarray(img.GetSpacing())
    new_extent = np.asarray(out.GetSize()) * np.asarray(out.GetSpacing())
    # extent kept to within half a new voxel (size is rounded)
    assert np.all(np.abs(new_extent - old_extent) <= np.asarray(new_spacing) / 2 + 1e-9)
    assert out.GetPixelID() == sitk.sitkFloat32


def test_resample_sizes_and_none_axis():
    img = _image(np.zeros((4, 10, 10), np.uint8), (1.0, 1.0, 5.0))
    assert resample_image(img, (2.0, 2.0, 2.0)).GetSize() == (5, 5, 10)
    assert resample_image(img, (0.5, 0.5, None)).GetSize() == (20, 20, 4)
    assert resample_image(img, (3.0, 3.0, 3.0), rounding="ceil").GetSize() == (4, 4, 7)


def test_centre_aligned_grid_keeps_the_centre():
    img = _image(np.zeros((7, 9, 11), np.uint8), (1.0, 1.3, 2.0), (5.0, -2.0, 1.0), ROT)
    grid = spacing_grid(img, (0.7, 0.7, 0.7), align="centre", rounding="ceil")

    def centre(g: sitk.Image) -> np.ndarray:
        return np.asarray(
            g.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in g.GetSize()])
        )

    np.testing.assert_allclose(centre(grid), centre(img), atol=1e-9)


def test_bad_arguments_are_refused():
    img = _image(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="one spacing per axis"):
        resample_image(img, (1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        resample_image(img, (1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="unknown interpolator 'cubic'"):
        resample_image(img, (1.0, 1.0, 1.0), interpolator="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="B-spline"):
        resample_image(img, (2.0, 2.0, 2.0), is_mask=True, interpolator="bspline")
    with pytest.raises(ValueError, match="mask_method"):
        resample_image(img, (2.0, 2.0, 2.0), is_mask=True, mask_method="majority")  # type: ignore[arg-type]


# --- resample_image: values ---------------------------------------------------------------


def test_linear_reproduces_a_ramp_at_interior_points():
    coef, c0 = (0.7, -1.3, 2.1), 5.0
    img = _image(np.zeros((10, 12, 14)), (1.0, 1.5, 2.0), (3.0, -4.0, 2.0), ROT)
    ramp = sitk.GetImageFromArray(_ramp(img, coef, c0))
    ramp.CopyInformation(img)
    out = resample_image(ramp, (0.7, 1.1, 1.3))
    expected = _ramp(out, coef, c0)
    got = sitk.GetArrayFromImage(out)
    # interior: new voxel centres inside the hull of the old voxel centres
    direction = np.asarray(ramp.GetDirection()).reshape(3, 3)
    rel = (_physical_points(out) - np.asarray(ramp.GetOrigin())) @ direction
    cidx = rel / np.asarray(ramp.GetSpacing())
    inside = np.all((cidx >= -1e-9) & (cidx <= np.asarray(ramp.GetSize()) - 1 + 1e-9), axis=-1)
    assert inside.mean() > 0.7
    np.testing.assert_allclose(got[inside], expected[inside], atol=1e-4)


def test_bspline_beats_linear_on_a_smooth_image():
    img = _image(np.zeros((16, 16, 16)), (2.0, 2.0, 2.0))
    pts = _physical_points(img)

    def smooth(p: np.ndarray) -> np.ndarray:
        return np.sin(p[..., 0] / 5.0) * np.cos(p[..., 1] / 6.0) + 0.1 * p[..., 2]

    src = sitk.GetImageFromArray(smooth(pts))
    src.CopyInformation(img)
    errors = {}
    for interp in ("linear", "bspline"):
        out = resample_image(src, (0.7, 0.7, 0.7), interpolator=interp)  # type: ignore[arg-type]
        truth = smooth(_physical_points(out))
        # 5 source voxels away from the borders (B-spline boundary conditions)
        core = (slice(15, -15),) * 3
        errors[interp] = float(np.abs(sitk.GetArrayFromImage(out) - truth)[core].max())
    # measured: linear 0.029, B-spline 0.00065
    assert errors["bspline"] < 0.1 * errors["linear"]
    assert errors["bspline"] < 0.002


def test_nearest_for_images_keeps_type_and_values():
    arr = np.arange(27, dtype=np.int16).reshape(3, 3, 3)
    out = resample_image(_image(arr), (0.5, 0.5, 0.5), interpolator="nearest")
    assert out.GetPixelID() == sitk.sitkInt16
    assert set(np.unique(sitk.GetArrayViewFromImage(out))) <= set(arr.ravel())


def test_threshold_keeps_a_sphere_volume_better_than_nearest():
    radius = 9.0
    mask, _ = _sphere((48, 48, 48), (1.0, 1.0, 1.0), radius)
    exact = 4.0 / 3.0 * np.pi * radius**3
    errors = {}
    for method in ("nearest", "threshold"):
        out = resample_image(mask, (2.6, 2.6, 3.3), is_mask=True, mask_method=method)  # type: ignore[arg-type]
        assert out.GetPixelID() == sitk.sitkUInt8
        vol = sitk.GetArrayViewFromImage(out).sum() * np.prod(out.GetSpacing())
        errors[method] = abs(vol - exact) / exact
    # measured: nearest 11.8 %, threshold 4.5 % (docs/preprocessing.md)
    assert errors["threshold"] < 0.05
    assert errors["threshold"] < errors["nearest"]


def test_multilabel_masks_get_no_new_labels():
    mask, _ = _sphere((32, 32, 32), (1.0, 1.0, 1.0), 10.0)
    arr = sitk.GetArrayFromImage(mask).astype(np.uint8)
    arr[arr > 0] = 2
    arr[12:20, 12:20, 12:20] = 4  # core
    arr[0:3, 0:3, 0:3] = 1  # a corner blob
    src = _image(arr)
    for method in ("nearest", "threshold"):
        for spacing in ((1.7, 1.7, 1.7), (0.6, 0.6, 2.2)):
            out = resample_image(src, spacing, is_mask=True, mask_method=method)  # type: ignore[arg-type]
            values = set(np.unique(sitk.GetArrayViewFromImage(out)).tolist())
            assert values <= {0, 1, 2, 4}, (method, spacing, values)
            assert {2, 4} <= values
    # the threshold method on a binary mask is the IBSI partial-volume rule
    binary = _image((arr > 0).astype(np.uint8))
    out = resample_image(binary, (1.7, 1.7, 1.7), is_mask=True, mask_method="threshold")
    pv = resample_image(sitk.Cast(binary, sitk.sitkFloat64), (1.7, 1.7, 1.7))
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(out), (sitk.GetArrayViewFromImage(pv) >= 0.5).astype(np.uint8)
    )


# --- resample_onto ------------------------------------------------------------------------


def test_resample_onto_reference_grid_and_transform():
    src = _image(np.arange(8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8))
    ref = make_grid([6, 6, 6], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    out = resample_onto(src, ref)
    assert same_grid(out, ref)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(out), sitk.GetArrayViewFromImage(src)[1:7, 1:7, 1:7]
    )
    # a translation of one voxel in x: output point p reads the input at p + (1, 0, 0)
    moved = resample_onto(src, src, transform=sitk.TranslationTransform(3, (1.0, 0.0, 0.0)))
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(moved)[:, :, :7], sitk.GetArrayViewFromImage(src)[:, :, 1:]
    )
    # outside voxels get the default
    padded = resample_onto(
        src, src, transform=sitk.TranslationTransform(3, (1.0, 0.0, 0.0)), default=-7.0
    )
    assert np.all(sitk.GetArrayViewFromImage(padded)[:, :, 7] == -7.0)


def test_resample_onto_same_grid_is_a_no_op():
    src = _image(np.arange(27, dtype=np.int16).reshape(3, 3, 3))
    assert resample_onto(src, src, pixel_type=sitk.sitkInt16) is src
    out = resample_onto(src, src)
    assert out.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(out), sitk.GetArrayViewFromImage(src))


# --- reorient -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "direction",
    [
        (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),  # RAS (NIfTI)
        (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0),  # permuted and flipped
        (1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0),  # coronal
    ],
)
def test_reorient_to_lps_keeps_values_at_physical_points(direction):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1000, size=(5, 6, 7)).astype(np.int16)
    img = _image(arr, (0.8, 1.1, 2.5), (10.0, -20.0, 30.0), direction)
    out = reorient(img)
    assert out.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert sorted(out.GetSize()) == sorted(img.GetSize())
    assert sorted(out.GetSpacing()) == pytest.approx(sorted(img.GetSpacing()))
    for index in [(0, 0, 0), (6, 5, 4), (3, 2, 1), (1, 4, 3)]:
        point = img.TransformIndexToPhysicalPoint(index)
        new_index = out.TransformPhysicalPointToIndex(point)
        np.testing.assert_allclose(out.TransformIndexToPhysicalPoint(new_index), point, atol=1e-6)
        assert out[new_index] == img[index]


def test_reorient_other_orientation_and_errors():
    img = _image(np.zeros((2, 3, 4), np.uint8))
    ras = reorient(img, "RAS")
    assert ras.GetDirection() == pytest.approx((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="one of each pair"):
        reorient(img, "LRS")
    with pytest.raises(ValueError, match="one of each pair"):
        reorient(img, "LP")
    with pytest.raises(ImageDimensionError, match="3D"):
        reorient(sitk.Image([4, 4], sitk.sitkUInt8))


# --- crop ---------------------------------------------------------------------------------


def test_crop_keeps_physical_positions_and_mm_margins():
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(20, 30, 40)).astype(np.float32)
    img = _image(arr, (0.5, 1.0, 2.0), (-3.0, 4.0, 5.0), ROT)
    marr = np.zeros(arr.shape, np.uint8)
    marr[8:12, 10:15, 20:25] = 1  # z 8..11, y 10..14, x 20..24
    mask = _image(marr, (0.5, 1.0, 2.0), (-3.0, 4.0, 5.0), ROT)
    out = crop_to_mask(img, mask, margin_mm=3.0)
    # 3 mm: x ceil(3/0.5)=6 voxels, y 3 voxels, z ceil(3/2)=2 voxels
    index, size = foreground_bbox(mask, 3.0)
    assert index == (14, 7, 6)
    assert size == (5 + 12, 5 + 6, 4 + 4)
    assert out.GetSize() == size
    for i in [(0, 0, 0), (16, 10, 7), (3, 5, 2)]:
        src = tuple(a + b for a, b in zip(i, index, strict=True))
        assert out.TransformIndexToPhysicalPoint(i) == pytest.approx(
            img.TransformIndexToPhysicalPoint(src)
        )
        assert out[i] == img[src]
    # per-axis margins, and clamping at the borders
    assert foreground_bbox(mask, (0.0, 0.0, 0.0)) == ((20, 10, 8), (5, 5, 4))
    assert foreground_bbox(mask, 100.0) == ((0, 0, 0), img.GetSize())
    edge = np.zeros(arr.shape, np.uint8)
    edge[0, 0, 0] = 1
    assert foreground_bbox(_image(edge, (0.5, 1.0, 2.0)), 1.0) == ((0, 0, 0), (3, 2, 2))


def test_crop_errors_name_the_mask():
    img = _image(np.zeros((8, 8, 8), np.float32))
    empty = _image(np.zeros((8, 8, 8), np.uint8))
    with pytest.raises(EmptyROIError, match=r"case-7 mask m\.nii\.gz has no non-zero voxel"):
        crop_to_mask(img, empty, name="case-7 mask m.nii.gz")
    other = _image(np.ones((8, 8, 8), np.uint8), (2.0, 2.0, 2.0))
    with pytest.raises(MaskGeometryError, match="resample_onto"):
        crop_to_mask(img, other, name="m")
    with pytest.raises(ValueError, match="margin_mm"):
        foreground_bbox(other, -1.0)
