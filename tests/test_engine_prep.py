"""The native engine's image side (hybridrad.features.engine.prep) against pyradiomics.

The reference is pyradiomics' own ``featureextractor.execute`` with ``computeShape`` and
``computeFeatures`` replaced by hooks that record what the feature classes receive: the
cropped shape mask, and per image type the ROI values and ``binImage``'s levels (the
classes' ``_applyBinning``). Values must agree to 1e-12 (relative to the image's
largest ROI value) and levels, ROI masks, names and order exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from hybridrad.errors import (
    EmptyROIError,
    EngineUnsupportedError,
    MaskGeometryError,
    ROITooSmallError,
)
from hybridrad.features.engine import prep
from hybridrad.features.radiomics import shipped_configs

radiomics = pytest.importorskip("radiomics")
from radiomics import featureextractor, imageoperations  # noqa: E402


def _reference(params: dict[str, Any], image: sitk.Image, mask: sitk.Image, label: int) -> dict:
    ext = featureextractor.RadiomicsFeatureExtractor(params)
    ext.settings["additionalInfo"] = False
    got: dict[str, Any] = {"types": []}

    def shape(img: sitk.Image, msk: sitk.Image, bb: Any, **kw: Any) -> dict:
        ci, cm = imageoperations.cropToTumorMask(img, msk, bb)
        got["shape"] = sitk.GetArrayFromImage(cm) == label
        got["spacing"] = ci.GetSpacing()
        return {}

    def feats(img: sitk.Image, msk: sitk.Image, name: str, **kw: Any) -> dict:
        a = sitk.GetArrayFromImage(img)
        m = sitk.GetArrayFromImage(msk) == label
        lv, _ = imageoperations.binImage(a.copy(), m, **kw)
        got["types"].append((name, a[m].astype("float"), lv[m], m, kw))
        return {}

    ext.computeShape = shape  # type: ignore[method-assign]
    ext.computeFeatures = feats  # type: ignore[method-assign]
    ext.execute(image, mask, label=label)
    return got


def _params(name: str) -> dict[str, Any]:
    params = yaml.safe_load(shipped_configs()[name].read_text(encoding="utf-8"))
    params["setting"].pop("normalizeRegion", None)
    params.pop("engine", None)
    return params


def _assert_same(
    params: dict[str, Any], images: dict[str, sitk.Image], mask: sitk.Image, label: int = 1
) -> dict[str, prep.Prepared]:
    settings = dict(params.get("setting") or {})
    itypes = {k: (v or {}) for k, v in (params.get("imageType") or {}).items()}
    out = prep.prepare_many(images, mask, settings, itypes, label=label)
    assert list(out) == list(images)
    for key, image in images.items():
        ref = _reference(params, image, mask, label)
        p = out[key]
        assert np.array_equal(ref["shape"], p.shape_mask), key
        assert tuple(ref["spacing"]) == p.shape_spacing
        assert [t[0] for t in ref["types"]] == p.names
        assert p.values.shape == p.levels.shape == (len(p.names), p.roi.n)
        assert p.values.dtype == np.float64 and p.levels.dtype == np.int64
        for b, (name, values, levels, m, kw) in enumerate(ref["types"]):
            assert np.array_equal(m, p.roi.mask), (key, name)
            scale = max(np.abs(values).max(), 1e-300)
            np.testing.assert_allclose(p.values[b], values, rtol=0, atol=1e-12 * scale)
            assert np.array_equal(p.levels[b], levels), (key, name)
            drop = {"additionalInfo"}  # switched off in the reference (no hashing)
            mine = {k: v for k, v in p.settings[b].items() if k not in drop}
            assert mine == {k: v for k, v in kw.items() if k not in drop}, (key, name)
    return out


# --- synthetic images ----------------------------------------------------------------------


def _synthetic(
    dtype: Any,
    *,
    size: tuple[int, int, int] = (40, 36, 24),
    spacing: tuple[float, float, float] = (0.9, 0.9, 2.5),
    seed: int = 0,
) -> tuple[sitk.Image, sitk.Image]:
    """A smooth random image (x, y, z size) with an off-grid origin and an oblique
    direction, and a blob mask with a second label."""
    rng = np.random.default_rng(seed)
    shape = size[::-1]
    noise = rng.normal(size=shape)
    img = sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(noise), 1.5)
    arr = sitk.GetArrayFromImage(img)
    arr = (arr - arr.min()) / (arr.max() - arr.min())
    if np.dtype(dtype).kind == "f":
        arr = (arr * 900 - 300).astype(dtype)
    elif np.dtype(dtype) == np.uint8:
        arr = (arr * 255).astype(dtype)
    else:
        arr = (arr * 2000 - 1000).astype(dtype)
    zz, yy, xx = np.indices(shape)
    c = np.array(shape) / 2
    blob = ((zz - c[0]) / 6) ** 2 + ((yy - c[1]) / 9) ** 2 + ((xx - c[2]) / 11) ** 2 < 1
    blob &= rng.random(shape) > 0.1
    lab = blob.astype(np.uint8)
    lab[blob & (xx > c[2] + 6)] = 2
    theta = 0.2
    direction = (np.cos(theta), -np.sin(theta), 0, np.sin(theta), np.cos(theta), 0, 0, 0, 1)
    out = []
    for a in (arr, lab):
        im = sitk.GetImageFromArray(a)
        im.SetSpacing(spacing)
        im.SetOrigin((-12.3456, 7.891, 33.3333))
        im.SetDirection([float(d) for d in direction])
        out.append(im)
    return out[0], out[1]


@pytest.mark.parametrize("config", sorted(shipped_configs()))
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
def test_shipped_configs_on_synthetic_images(config: str, dtype: Any) -> None:
    image, mask = _synthetic(dtype)
    image2, _ = _synthetic(dtype, seed=1)
    params = _params(config)
    if dtype == np.uint8 and config.startswith("ibsi_ct"):
        params["setting"].pop("resegmentRange", None)  # HU ranges empty a 0..255 image
    out = _assert_same(params, {"a": image, "b": image2}, mask)
    if params["setting"].get("resegmentRange") is None:
        assert out["a"].roi is out["b"].roi  # mask work shared across sequences


_ALL_TYPES: dict[str, Any] = {
    "Original": {},
    "LoG": {"sigma": [1.0, 2.5], "binWidth": 2},
    "Wavelet": {"wavelet": "haar", "start_level": 1, "level": 2, "binCount": 16},
    "Square": {},
    "SquareRoot": {},
    "Logarithm": {},
    "Exponential": {"binCount": 20},
    "Gradient": {"gradientUseSpacing": False},
}


@pytest.mark.parametrize(
    "settings",
    [
        {"binWidth": 10},
        {"binCount": 32, "normalize": True, "normalizeScale": 50, "removeOutliers": 2.5},
        {"resampledPixelSpacing": [1.5, 1.5, 0], "interpolator": "sitkBSpline", "padDistance": 3},
        {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear", "binWidth": 15},
        {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkNearestNeighbor"},
        {"resampledPixelSpacing": [0.9, 0.9, 2.5], "padDistance": 2},  # same spacing: crop only
        {"preCrop": True, "padDistance": 4, "binWidth": 7},
        {"resegmentRange": [-100, 300], "resegmentShape": True, "binWidth": 20},
        {"resegmentRange": [0.2, 0.9], "resegmentMode": "relative", "binWidth": 20},
        {"resegmentRange": [-2], "resegmentMode": "sigma", "preCrop": True},
        {"force2D": True, "force2Ddimension": 0, "minimumROIDimensions": 2},
        {"resampledPixelSpacing": [1, 1, 1], "normalize": True},
        {"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkLinear", "normalize": True},
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_settings_and_all_image_types(settings: dict[str, Any], dtype: Any) -> None:
    image, mask = _synthetic(dtype, seed=3)
    params = {"setting": dict(settings), "imageType": _ALL_TYPES}
    _assert_same(params, {"img": image}, mask)
    _assert_same(params, {"img": image}, mask, label=2)


def test_float64_image_and_wavelet_level_names() -> None:
    image, mask = _synthetic(np.float64, size=(33, 31, 17))  # odd sizes: wavelet padding
    params = {
        "setting": {"binWidth": 25, "resampledPixelSpacing": [1.3, 1.3, 1.3]},
        "imageType": {"Wavelet": {"level": 2}, "Original": {}},
    }
    out = _assert_same(params, {"img": image}, mask)
    assert out["img"].names[0] == "wavelet-LLH" and "wavelet2-LLL" in out["img"].names
    assert out["img"].names[-1] == "original"
    again = prep.prepare(image, mask, params["setting"], {"Original": None})  # YAML "Original:"
    assert np.array_equal(again.levels[0], out["img"].levels[-1])


def test_correct_mask_and_geometry_errors() -> None:
    image, mask = _synthetic(np.float32)
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(o + 0.5 for o in mask.GetOrigin()))
    params = {"setting": {"correctMask": True, "binWidth": 10}, "imageType": {"Original": {}}}
    _assert_same(params, {"img": image}, shifted)
    with pytest.raises(MaskGeometryError, match="geometry mismatch"):
        prep.prepare(image, shifted, {"binWidth": 10}, {"Original": {}})
    far = sitk.Image(mask)
    far.SetOrigin(tuple(o + 500.0 for o in mask.GetOrigin()))
    with pytest.raises(MaskGeometryError, match="larger than the image"):
        prep.prepare(image, far, {"correctMask": True}, {"Original": {}})
    with pytest.raises(MaskGeometryError, match="larger than the image"):
        prep.prepare(image, far, {"resampledPixelSpacing": [2, 2, 2]}, {"Original": {}})


def test_geometry_tolerance_is_honoured_and_restored() -> None:
    image, mask = _synthetic(np.float32)
    nudged = sitk.Image(mask)
    nudged.SetOrigin(tuple(o + 1e-4 for o in mask.GetOrigin()))
    before = sitk.ProcessObject.GetGlobalDefaultCoordinateTolerance()
    with pytest.raises(MaskGeometryError):
        prep.prepare(image, nudged, {"geometryTolerance": 1e-6}, {"Original": {}})
    p = prep.prepare(image, nudged, {"geometryTolerance": 1e-3}, {"Original": {}})
    assert p.roi.n > 0
    assert sitk.ProcessObject.GetGlobalDefaultCoordinateTolerance() == before


def test_bad_masks_raise_hybridrad_errors() -> None:
    image, mask = _synthetic(np.float32)
    arr = sitk.GetArrayFromImage(mask)

    def with_mask(a: np.ndarray) -> sitk.Image:
        m = sitk.GetImageFromArray(a)
        m.CopyInformation(mask)
        return m

    with pytest.raises(EmptyROIError, match="nothing is segmented"):
        prep.prepare(image, with_mask(np.zeros_like(arr)), {}, {"Original": {}})
    with pytest.raises(EmptyROIError, match="label 3 not present"):
        prep.prepare(image, mask, {}, {"Original": {}}, label=3)
    one = np.zeros_like(arr)
    one[5, 5, 5] = 1
    with pytest.raises(ROITooSmallError, match="1 segmented voxel"):
        prep.prepare(image, with_mask(one), {}, {"Original": {}})
    line = np.zeros_like(arr)
    line[5, 5, 3:9] = 1
    with pytest.raises(ROITooSmallError, match="too few dimensions"):
        prep.prepare(image, with_mask(line), {}, {"Original": {}})
    with pytest.raises(ROITooSmallError, match="minimumROISize"):
        prep.prepare(image, mask, {"minimumROISize": 10**6}, {"Original": {}})
    with pytest.raises(ROITooSmallError, match="resegment"):
        prep.prepare(image, mask, {"resegmentRange": [10**6]}, {"Original": {}})


@pytest.mark.parametrize(
    ("settings", "types", "what"),
    [
        ({}, {"LBP2D": {}}, "LBP2D"),
        ({}, {"LBP3D": {}}, "LBP3D"),
        ({}, {"Fancy": {}}, "Fancy"),
        ({"voxelBased": True}, {"Original": {}}, "voxelBased"),
        ({"label_channel": 1}, {"Original": {}}, "label_channel"),
    ],
)
def test_unsupported_settings_raise(settings: dict, types: dict, what: str) -> None:
    image, mask = _synthetic(np.float32)
    with pytest.raises(EngineUnsupportedError, match=f"{what}.*use engine: pyradiomics"):
        prep.prepare(image, mask, settings, types)


def test_integer_image_at_integer_values_falls_back_to_whole_image() -> None:
    """Resampling onto a grid that hits input voxel centres gives (near-)integer values;
    for an integer pixel type the window path must defer to whole-image resampling."""
    image, mask = _synthetic(np.int16, spacing=(1.0, 1.0, 1.0))
    params = {
        "setting": {"resampledPixelSpacing": [3, 3, 3], "interpolator": "sitkBSpline"},
        "imageType": {"Original": {}},
    }
    _assert_same(params, {"img": image}, mask)


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_bspline_prefilter_is_itks_to_the_bit(order: int) -> None:
    """The numpy B-spline prefilter equals ITK's BSplineDecompositionImageFilter exactly,
    for lines longer and shorter than the causal horizon and single-voxel axes."""
    rng = np.random.default_rng(order)
    for shape in [(31, 27, 40), (5, 17, 19), (1, 18, 3), (2, 30, 1)]:
        arr = rng.normal(size=shape) * 100
        dec = sitk.BSplineDecompositionImageFilter()
        dec.SetSplineOrder(order)
        ref = sitk.GetArrayFromImage(dec.Execute(sitk.GetImageFromArray(arr)))
        mine = np.ascontiguousarray(arr.transpose(2, 1, 0))  # x, y, z: ITK's pass order
        for axis in range(3):
            lead = np.moveaxis(mine, axis, 0).copy()
            prep._decompose(lead, prep._BSPLINE_POLES[order])
            mine = np.moveaxis(lead, 0, axis)
        assert np.array_equal(mine.transpose(2, 1, 0), ref), shape


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
@pytest.mark.parametrize(
    "settings",
    [
        {"resampledPixelSpacing": [1.1, 1.3, 1.7], "interpolator": "sitkBSpline"},
        {"resampledPixelSpacing": [2, 2, 2], "normalize": True, "normalizeScale": 100},
        {"resampledPixelSpacing": [0.7, 0.8, 1.1], "interpolator": "sitkBSpline5"},
    ],
)
def test_bspline_resampling_matches_whole_image_resampling(
    dtype: Any, settings: dict[str, Any]
) -> None:
    """The windowed, trimmed B-spline resampling gives ITK's resampling of the whole
    (normalised) image: bit-identical for cubic splines on these (oblique) images."""
    image, mask = _synthetic(dtype, size=(150, 100, 60), spacing=(0.8, 0.8, 1.0), seed=5)
    s = prep.effective_settings(settings, label=1)
    m, sel = prep._get_mask(mask, 1)
    grid = prep._make_grid(image, m, sel, s)
    assert grid.mode == "resample"
    got = sitk.GetArrayFromImage(prep._load(image, grid, s))
    win = grid.bspline
    assert win is not None  # windowed, passes trimmed to the footprint
    assert np.prod(win.size) < np.prod(image.GetSize())
    assert (win.foot_size < win.size).all()
    whole = image
    if s["normalize"]:
        whole = sitk.Normalize(image) * s["normalizeScale"]
    args = grid.rif_args
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(args["spacing"])
    rif.SetOutputDirection(args["direction"])
    rif.SetSize(args["size"])
    rif.SetOutputOrigin(args["origin"])
    rif.SetOutputPixelType(whole.GetPixelID())
    rif.SetInterpolator(args["interpolator"])
    ref = sitk.GetArrayFromImage(rif.Execute(whole))
    assert got.dtype == ref.dtype
    if args["interpolator"] == sitk.sitkBSpline:
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15 * np.abs(ref).max())


def test_bin_edges_match_pyradiomics() -> None:
    rng = np.random.default_rng(1)
    for values in (
        rng.normal(50, 30, 500).astype(np.float32),
        rng.integers(0, 250, 500).astype(np.uint8),
        rng.normal(0, 1, 500),
        np.full(20, 3.0),
    ):
        for s in ({"binWidth": 25}, {"binWidth": 0.5}, {"binCount": 16}, {}):
            ref = imageoperations.getBinEdges(values, **s)
            mine = prep.bin_edges(values, s)
            assert np.array_equal(np.asarray(ref), mine) and np.asarray(ref).dtype == mine.dtype


# --- real data -----------------------------------------------------------------------------


def _lgg(data_dir: Path) -> tuple[dict[str, sitk.Image], sitk.Image]:
    folder = data_dir / "lgg-tcga" / "cases" / "TCGA_CS_4942"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    images = {s: sitk.ReadImage(str(folder / f"{s}.nii.gz")) for s in ("flair", "t1", "t1c")}
    mask = sitk.ReadImage(str(folder / "mask.nii.gz"))
    return images, sitk.Cast(mask > 0, sitk.sitkUInt8)


@pytest.mark.data
@pytest.mark.parametrize("config", sorted(shipped_configs()))
def test_lgg_case_every_shipped_config(data_dir: Path, config: str) -> None:
    images, mask = _lgg(data_dir)
    out = _assert_same(_params(config), images, mask)
    if _params(config)["setting"].get("resegmentRange") is None:
        assert out["flair"].roi is out["t1"].roi is out["t1c"].roi


@pytest.mark.data
@pytest.mark.parametrize("case", ["brain1", "breast1", "prostate_phantom_subvolume"])
@pytest.mark.parametrize("config", ["mri_glioma", "ct_default", "ibsi_ct_D"])
def test_pyradiomics_test_cases(data_dir: Path, case: str, config: str) -> None:
    folder = data_dir / "pyradiomics-testcases" / "images"
    if case.startswith("prostate"):
        img, lab = folder / f"{case}.nrrd", folder / f"{case}-label.nrrd"
    else:
        img, lab = folder / f"{case}_image.nrrd", folder / f"{case}_label.nrrd"
    if not img.is_file():
        pytest.skip(f"{img} absent")
    _assert_same(_params(config), {"img": sitk.ReadImage(str(img))}, sitk.ReadImage(str(lab)))
