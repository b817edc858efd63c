"""Reliability of the readers: every surprising input is an error or one warning naming it.

NaN/Inf voxels (ITK's NIfTI reader turns them into 0 silently), headers that are not one
plausible 3D scalar volume, constant images, mask values a label map does not name, and
manifests that are empty, repeat ids or climb out of their folder. Each case asserts the
exception class and a message fragment naming the file, case or column. Property-based
tests (hypothesis) cover safe_filename, Geometry.mismatch and label-map region masks.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hybridrad.errors import (
    ClinicalError,
    ConstantImageWarning,
    DuplicateCaseError,
    DuplicateSequenceWarning,
    EmptyInputError,
    HybridradWarning,
    ImageDimensionError,
    ImageHeaderError,
    LabelMapError,
    LabelValueWarning,
    ManifestError,
    MaskLabelError,
    NonFiniteImageError,
    PathEscapeError,
)
from hybridrad.io import (
    Cohort,
    Geometry,
    LabelMap,
    load_label_map,
    read_clinical,
    read_geometry,
    read_image,
    write_manifest,
)
from hybridrad.io import images as images_module
from hybridrad.io.images import check_header
from hybridrad.io.manifest import safe_filename
from tests.conftest import make_image, make_mask

FAST = {
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": ["Mean"]},
    "setting": {"binWidth": 25},
}


def _float_image(shape: tuple[int, int, int] = (12, 10, 8), seed: int = 0) -> np.ndarray:
    """A (z, y, x) float32 noise array."""
    return np.random.default_rng(seed).normal(100.0, 10.0, size=shape[::-1]).astype(np.float32)


def _write(arr: np.ndarray, path: Path, spacing: tuple[float, ...] = (1.0, 1.0, 2.0)) -> Path:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def _nifti1(path: Path, arr: np.ndarray, endian: str, dims: tuple[int, ...] | None = None) -> Path:
    """A hand-written single-file NIfTI-1 in either byte order (ITK writes only its own)."""
    header = bytearray(352)
    struct.pack_into(endian + "i", header, 0, 348)
    shape = dims or arr.shape[::-1]
    struct.pack_into(endian + "8h", header, 40, len(shape), *shape, *([1] * (7 - len(shape))))
    code = {np.dtype("f4"): 16, np.dtype("f8"): 64, np.dtype("i2"): 4}[arr.dtype.newbyteorder("=")]
    struct.pack_into(endian + "2h", header, 70, code, arr.dtype.itemsize * 8)
    struct.pack_into(endian + "8f", header, 76, 1, 1, 1, 2, 1, 1, 1, 1)
    struct.pack_into(endian + "2f", header, 108, 352.0, 1.0)  # vox_offset, scl_slope
    header[123] = 2  # mm
    header[344:348] = b"n+1\0"
    path.write_bytes(bytes(header) + arr.astype(arr.dtype.newbyteorder(endian)).tobytes())
    return path


def _metaimage(path: Path, **fields: str) -> Path:
    """A MetaImage header (+ 8 voxels of data) with the given fields overriding the defaults."""
    meta = {
        "ObjectType": "Image",
        "NDims": "3",
        "BinaryData": "True",
        "BinaryDataByteOrderMSB": "False",
        "TransformMatrix": "1 0 0 0 1 0 0 0 1",
        "Offset": "0 0 0",
        "ElementSpacing": "1 1 1",
        "DimSize": "2 2 2",
        "ElementType": "MET_UCHAR",
        "ElementDataFile": "LOCAL",
        **fields,
    }
    text = "".join(f"{k} = {v}\n" for k, v in meta.items())
    path.write_bytes(text.encode() + bytes(range(8)))
    return path


# --- 1. NaN / Inf voxels --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize(
    ("values", "counts"),
    [((np.nan,), "1 NaN and 0 infinite"), ((np.inf, -np.inf, np.nan), "1 NaN and 2 infinite")],
)
def test_nonfinite_voxels_are_an_error_naming_file_and_counts(
    tmp_path: Path, suffix: str, values: tuple[float, ...], counts: str
) -> None:
    arr = _float_image()
    for i, v in enumerate(values):
        arr[1, 2, 3 + i] = v
    path = _write(arr, tmp_path / f"scan{suffix}")
    if suffix.startswith(".nii"):  # the bug: ITK's own reader hides them
        assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).all()
    with pytest.raises(NonFiniteImageError, match=re.escape(f"scan{suffix} holds")) as info:
        read_image(path)
    message = str(info.value)
    assert counts in message and "--nonfinite replace" in message and "minimum finite" in message


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd"])
def test_nonfinite_replace_uses_minimum_finite_value_and_warns_once(
    tmp_path: Path, suffix: str
) -> None:
    arr = _float_image()
    arr[0, 0, 0], arr[4, 4, 4] = np.nan, np.inf
    path = _write(arr, tmp_path / f"scan{suffix}")
    with pytest.warns(HybridradWarning, match=r"scan.*replaced 1 NaN and 1 infinite") as caught:
        back = read_image(path, nonfinite="replace")
    assert len([w for w in caught if issubclass(w.category, HybridradWarning)]) == 1
    out = sitk.GetArrayFromImage(back)
    low = np.nanmin(arr[np.isfinite(arr)])
    assert np.isfinite(out).all()
    assert out[0, 0, 0] == low and out[4, 4, 4] == low
    keep = np.isfinite(arr)
    np.testing.assert_array_equal(out[keep], arr[keep])
    assert back.GetSpacing() == (1.0, 1.0, 2.0)


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_nonfinite_found_in_raw_nifti_of_either_byte_order(
    tmp_path: Path, endian: str, dtype: str
) -> None:
    arr = _float_image().astype(dtype)
    arr[2, 3, 4] = np.nan
    path = _nifti1(tmp_path / "hand.nii", arr, endian)
    np.testing.assert_allclose(  # ITK reads the file (and drops the NaN)
        sitk.GetArrayFromImage(sitk.ReadImage(str(path)))[0], arr[0], rtol=1e-6
    )
    with pytest.raises(NonFiniteImageError, match=r"hand\.nii holds 1 NaN"):
        read_image(path)


def test_nonfinite_found_without_scratch_space_and_for_large_gz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .nii.gz paths that hand the compressed file to ITK scan it in chunks."""
    arr = _float_image()
    arr[3, 3, 3] = -np.inf
    path = _write(arr, tmp_path / "big.nii.gz")
    with monkeypatch.context() as m:
        m.setattr(images_module, "NIFTI_GZ_FAST_MAX_BYTES", 0)
        with pytest.raises(NonFiniteImageError, match=r"big\.nii\.gz holds 0 NaN and 1 inf"):
            read_image(path)
        with pytest.warns(HybridradWarning, match="replaced"):
            out = sitk.GetArrayFromImage(read_image(path, nonfinite="replace"))
        assert out[3, 3, 3] == arr[np.isfinite(arr)].min()

    class Full:
        name = str(tmp_path / "never.nii")

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def write(self, chunk: bytes) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(images_module.tempfile, "NamedTemporaryFile", lambda **kw: Full())
    with pytest.raises(NonFiniteImageError, match=r"big\.nii\.gz"):
        read_image(path)


def test_integer_images_are_not_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("an integer image was scanned for NaN")

    monkeypatch.setattr(images_module, "_count_nonfinite", boom)
    for suffix in (".nii", ".nii.gz", ".nrrd"):
        read_image(_write(sitk.GetArrayFromImage(make_image()), tmp_path / f"int{suffix}"))


def test_nonfinite_everywhere_and_bad_mode(tmp_path: Path) -> None:
    path = _write(np.full((4, 5, 6), np.nan, np.float32), tmp_path / "allnan.nrrd")
    with pytest.raises(NonFiniteImageError, match=r"allnan\.nrrd: every voxel is NaN"):
        read_image(path, nonfinite="replace")
    with pytest.raises(NonFiniteImageError, match=r"nonfinite='zero'.*'error', 'replace'"):
        read_image(path, nonfinite="zero")
    with pytest.raises(NonFiniteImageError, match="'zero'"):
        Cohort(pd.DataFrame({"case_id": ["a"], "t1": ["x.nii"]}), tmp_path, nonfinite="zero")


def test_cohort_passes_nonfinite_to_cases_and_subset(tmp_path: Path) -> None:
    arr = _float_image()
    arr[1, 1, 1] = np.nan
    for cid in ("a", "b"):
        _write(arr, tmp_path / cid / "t1.nii.gz")
        sitk.WriteImage(make_mask(), str(tmp_path / cid / "mask.nii.gz"))
    pd.DataFrame(
        {
            "case_id": ["a", "b"],
            "t1": ["a/t1.nii.gz", "b/t1.nii.gz"],
            "mask": ["a/mask.nii.gz", "b/mask.nii.gz"],
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    strict = Cohort.from_csv(tmp_path / "m.csv")
    with pytest.raises(NonFiniteImageError, match=r"case 'a', column 't1': image .*t1\.nii\.gz"):
        strict["a"].read("t1")
    lenient = Cohort.from_csv(tmp_path / "m.csv", nonfinite="replace")
    assert lenient["b"].nonfinite == "replace"
    sub = lenient.subset(["b"])
    assert sub.nonfinite == "replace" and sub["b"].nonfinite == "replace"
    with pytest.warns(HybridradWarning, match="replaced 1 NaN"):
        assert np.isfinite(sitk.GetArrayViewFromImage(sub["b"].read("t1"))).all()


# --- 2. header sanity ------------------------------------------------------------------------


def _image_2d(tmp_path: Path) -> Path:
    return _write(
        np.ones((10, 12), np.int16) * np.arange(12, dtype=np.int16), tmp_path / "flat.nii.gz"
    )


def _image_4d(tmp_path: Path) -> Path:
    vol = make_image()
    path = tmp_path / "series.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([vol, vol]), str(path))
    return path


def _rgb(tmp_path: Path) -> Path:
    arr = np.random.default_rng(0).integers(0, 255, (8, 10, 12, 3)).astype(np.uint8)
    img = sitk.GetImageFromArray(arr, isVector=True)
    path = tmp_path / "rgb.nrrd"
    sitk.WriteImage(img, str(path))
    return path


def _spacing(value: float) -> object:
    def build(tmp_path: Path) -> Path:
        img = make_image()
        img.SetSpacing((1.0, value, 1.0))
        path = tmp_path / "odd_spacing.nii.gz"
        sitk.WriteImage(img, str(path))
        return path

    return build


HEADER_CASES = [
    ("2d", _image_2d, ImageDimensionError, r"flat\.nii\.gz is 2D \(size \(12, 10\)\); give a 3D"),
    ("4d", _image_4d, ImageDimensionError, r"series\.nii\.gz is 4D .*Split the 4D series"),
    ("rgb", _rgb, ImageDimensionError, r"rgb\.nrrd has 3 components per voxel.*one scalar"),
    ("spacing-tiny", _spacing(1e-6), ImageHeaderError, r"odd_spacing\.nii\.gz: voxel spacing"),
    ("spacing-huge", _spacing(1e6), ImageHeaderError, r"odd_spacing\.nii\.gz: voxel spacing"),
    (
        "spacing-zero",
        lambda d: _metaimage(d / "zero_spacing.mha", ElementSpacing="1 0 1"),
        ImageHeaderError,
        r"zero_spacing\.mha: voxel spacing \(1, 0, 1\)",
    ),
    (
        "huge-grid",
        lambda d: _metaimage(d / "huge.mha", DimSize="100000 100000 10"),
        ImageHeaderError,
        r"huge\.mha: its header describes a grid of size \(100000, 100000, 10\)",
    ),
    (
        "long-axis",
        lambda d: _metaimage(d / "long.mha", DimSize="200000 1 1"),
        ImageHeaderError,
        r"long\.mha: .*an axis over 100,000",
    ),
    (
        "huge-nifti",
        lambda d: _nifti1(d / "huge.nii", np.zeros(8, np.int16), "<", dims=(5000, 5000, 5000)),
        ImageHeaderError,
        r"huge\.nii: its header describes a grid of size \(5000, 5000, 5000\)",
    ),
    (
        "singular-direction",
        lambda d: _metaimage(d / "flat_dir.mha", TransformMatrix="1 0 0 1 0 0 0 0 1"),
        ImageHeaderError,
        r"flat_dir\.mha: its direction matrix .* is singular",
    ),
]


@pytest.mark.parametrize(
    ("build", "error", "pattern"),
    [pytest.param(b, e, p, id=name) for name, b, e, p in HEADER_CASES],
)
def test_absurd_headers_refused_by_read_image_and_read_geometry(
    tmp_path: Path, build: object, error: type[Exception], pattern: str
) -> None:
    path = build(tmp_path)  # type: ignore[operator]
    with pytest.raises(error, match=pattern):
        read_geometry(path)
    with pytest.raises(error, match=pattern):
        read_image(path)


def test_2d_allowed_only_when_asked_and_size1_axis_is_3d(tmp_path: Path) -> None:
    path = _image_2d(tmp_path)
    assert read_image(path, allow_2d=True).GetDimension() == 2
    assert read_geometry(path, allow_2d=True)[0].size == (12, 10)
    one_slice = _write(np.arange(30, dtype=np.int16).reshape(1, 5, 6), tmp_path / "slice.nii.gz")
    assert read_image(one_slice).GetSize() == (6, 5, 1)
    with pytest.raises(ImageDimensionError, match="is 4D"):
        read_image(_image_4d(tmp_path), allow_2d=True)


def test_check_header_accepts_ordinary_grids() -> None:
    oblique = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    check_header(Geometry((240, 240, 155), (1.0, 1.0, 1.0), (-120.0, 0.0, 3.0), oblique), 1, "x")
    check_header(Geometry((512, 512, 1), (0.4, 0.4, 5.0), (0.0, 0.0, 0.0), oblique), 1, "ct")
    with pytest.raises(ImageHeaderError, match=r"x: origin \(nan"):
        check_header(Geometry((2, 2, 2), (1.0,) * 3, (np.nan, 0.0, 0.0), oblique), 1, "x")
    # ITK's readers turn a NaN spacing into 0 or 1 already; the check stands on its own
    with pytest.raises(ImageHeaderError, match=r"y: voxel spacing \(1, nan, 1\)"):
        check_header(Geometry((2, 2, 2), (1.0, np.nan, 1.0), (0.0,) * 3, oblique), 1, "y")
    with pytest.raises(ImageHeaderError, match=r"z: its direction matrix .*singular"):
        check_header(Geometry((2, 2, 2), (1.0,) * 3, (0.0,) * 3, (np.inf, *oblique[1:])), 1, "z")


def test_constant_image_warns_once_naming_file_and_value(tmp_path: Path) -> None:
    path = _write(np.full((6, 7, 8), 42, np.int16), tmp_path / "blank.nii.gz")
    with pytest.warns(ConstantImageWarning, match=r"blank\.nii\.gz holds a single value \(42\)"):
        read_image(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(path, warn_constant=False)
        read_image(_write(_float_image(), tmp_path / "ok.nii.gz"))


def test_blank_mask_does_not_warn(tmp_path: Path) -> None:
    sitk.WriteImage(make_image(), str(tmp_path / "t1.nii.gz"))
    sitk.WriteImage(make_mask(values=()), str(tmp_path / "mask.nii.gz"))
    (tmp_path / "m.csv").write_text("case_id,t1,mask\na,t1.nii.gz,mask.nii.gz\n")
    case = Cohort.from_csv(tmp_path / "m.csv")["a"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        case.read_mask()
        case.read("t1")


# --- validate reports the same findings ----------------------------------------------------


def _one_case(
    tmp_path: Path, image: np.ndarray | None = None, mask: np.ndarray | None = None
) -> Path:
    _write(_float_image() if image is None else image, tmp_path / "c1" / "t1.nrrd")
    m = sitk.GetArrayFromImage(make_mask()) if mask is None else mask
    _write(m, tmp_path / "c1" / "mask.nii.gz")
    (tmp_path / "m.csv").write_text("case_id,t1,mask\nc1,c1/t1.nrrd,c1/mask.nii.gz\n")
    return tmp_path / "m.csv"


def test_validate_reports_nonfinite_only_with_full_reads(tmp_path: Path) -> None:
    arr = _float_image()
    arr[2, 2, 2] = np.inf
    cohort = Cohort.from_csv(_one_case(tmp_path, image=arr))
    report = cohort.validate()
    (p,) = report.problems
    assert isinstance(p.error, NonFiniteImageError) and p.case_id == "c1" and p.column == "t1"
    assert "case 'c1', column 't1'" in p.message and "t1.nrrd" in p.message
    assert cohort.validate(check_mask_values=False).ok  # --headers-only reads no voxel
    relaxed = Cohort.from_csv(tmp_path / "m.csv", nonfinite="replace")
    with pytest.warns(HybridradWarning, match="replaced"):
        assert relaxed.validate().ok


def test_validate_reports_header_problems_even_headers_only(tmp_path: Path) -> None:
    manifest = _one_case(tmp_path)
    img = sitk.ReadImage(str(tmp_path / "c1" / "t1.nrrd"))
    img.SetSpacing((1.0, 1.0, 1e5))
    sitk.WriteImage(img, str(tmp_path / "c1" / "t1.nrrd"))
    for full in (True, False):
        (p,) = Cohort.from_csv(manifest).validate(check_mask_values=full).problems
        assert isinstance(p.error, ImageHeaderError)
        assert "case 'c1', column 't1'" in p.message and "spacing" in p.message


def test_validate_lists_constant_image_as_warning(tmp_path: Path) -> None:
    manifest = _one_case(tmp_path, image=np.zeros((8, 10, 12), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported, not emitted
        report = Cohort.from_csv(manifest).validate()
    assert report.ok, report.summary()
    (w,) = report.warnings
    assert isinstance(w.error, ConstantImageWarning) and w.case_id == "c1"
    assert "t1.nrrd holds a single value (0)" in w.message
    assert "1 warning(s)" in report.summary() and "ConstantImageWarning" in report.summary()
    assert list(report.to_frame()["kind"]) == ["ConstantImageWarning"]


def test_validate_warns_once_when_two_sequences_hold_the_same_voxels(tmp_path: Path) -> None:
    manifest = _one_case(tmp_path)
    (tmp_path / "c1" / "flair.nrrd").write_bytes((tmp_path / "c1" / "t1.nrrd").read_bytes())
    _write(_float_image() + 1.0, tmp_path / "c1" / "t2.nrrd")
    manifest.write_text(
        "case_id,t1,t2,flair,mask\nc1,c1/t1.nrrd,c1/t2.nrrd,c1/flair.nrrd,c1/mask.nii.gz\n"
    )
    report = Cohort.from_csv(manifest).validate()
    assert report.ok
    (w,) = report.warnings
    assert isinstance(w.error, DuplicateSequenceWarning) and w.column == "flair"
    assert "columns 't1' and 'flair' hold identical voxels" in w.message
    assert Cohort.from_csv(manifest).validate(check_mask_values=False).warnings == []


def test_synthetic_cohort_and_fixtures_pass_every_new_check(tmp_path: Path) -> None:
    from hybridrad.datasets.synthetic import make_synthetic_cohort

    syn = make_synthetic_cohort(tmp_path / "syn", n_cases=2, shape=(32, 32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = Cohort.from_csv(syn.manifest_path, label_map="brats").validate()
        assert report.ok and not report.warnings, report.summary()
        for case in Cohort.from_csv(syn.manifest_path, label_map="brats"):
            case.read_mask()
            for seq in case.images:
                case.read(seq)


@pytest.mark.data
def test_ibsi_phantoms_read_cleanly(data_dir: Path) -> None:
    """Every IBSI phantom is one 3D volume; only the 'empty' phantom (and masks, which are
    not checked for it) is constant."""
    found = sorted((data_dir / "ibsi").rglob("*.nii*"))
    if not found:
        pytest.skip("no IBSI NIfTI files in the reference data")
    for path in found:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert read_image(path, warn_constant="mask" not in path.parts).GetDimension() == 3
        kinds = {w.category for w in caught if issubclass(w.category, HybridradWarning)}
        assert kinds <= ({ConstantImageWarning} if "empty" in path.parts else set()), path


# --- 3. label maps -----------------------------------------------------------------------------


def test_binary_preset_reads_every_nonzero_voxel_and_round_trips(tmp_path: Path) -> None:
    binary = LabelMap.preset("binary")
    arr = np.array([0, 1, 2, 4, 7, 0])
    np.testing.assert_array_equal(binary.region_mask(arr, "tumor"), arr != 0)
    np.testing.assert_array_equal(binary.check_values(arr, "m"), (arr != 0).astype(arr.dtype))
    assert binary.accepts(7) and not binary.accepts(0.5)
    assert binary.to_dict()["nonzero"] is True
    assert LabelMap.from_dict(binary.to_dict()) == binary
    spec = tmp_path / "any.yaml"
    spec.write_text(yaml.safe_dump({"nonzero": True, "ignore": [9]}))
    lm = load_label_map(spec)
    assert lm.nonzero and lm.ignore == (9,) and lm.regions == {"tumor": (1,)}
    assert LabelMap.from_dict(lm.to_dict()) == lm
    np.testing.assert_array_equal(
        lm.region_mask(np.array([0, 3, 9]), "tumor"), [False, True, False]
    )


def test_segmentation_channels_of_binary_map_see_every_nonzero_voxel() -> None:
    from hybridrad.segment.labels import labels_to_channels

    labels = np.array([[0, 1], [2, 4]])
    np.testing.assert_array_equal(
        labels_to_channels(labels, LabelMap.preset("binary"))[0], labels != 0
    )


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"nonzero": True, "labels": {1: "a", 2: "b"}, "regions": {"r": [1]}}, "exactly one label"),
        ({"nonzero": "yes"}, "'nonzero' must be true or false"),
        ({"labels": {1: "a"}, "regions": {"r": [1]}, "ignore": [1]}, r"'ignore' lists \[1\]"),
        ({"labels": {1: "a"}, "regions": {"r": [1]}, "ignore": [0]}, "background"),
        ({"labels": {1: "a"}, "regions": {"r": [1]}, "ignore": ["x"]}, "'ignore' must be a list"),
    ],
)
def test_bad_label_map_specs(spec: dict[str, object], pattern: str) -> None:
    with pytest.raises(LabelMapError, match=pattern):
        LabelMap.from_dict(spec)


MASK_VALUE_CASES = [
    ("brats", [0, 1, 7, 7], MaskLabelError, r"value\(s\) 7 \(2 voxels\) that label map 'brats'"),
    ("brats", [0, 1, 3], MaskLabelError, r"--labels brats2023 fits these values"),
    ("brats2012", [0, 1, 2, 4], MaskLabelError, r"0 = background, 1 = edema, 2 = active_tumor"),
    ("binary", [0.0, 0.5, 1.0], MaskLabelError, r"non-integer value\(s\) 0\.5 \(1 voxel\)"),
    ("brats", [0.0, np.nan], MaskLabelError, r"non-integer value\(s\) nan"),
]


@pytest.mark.parametrize(("labels", "values", "error", "pattern"), MASK_VALUE_CASES)
def test_check_values_errors_name_mask_values_counts_and_fix(
    labels: str, values: list[float], error: type[Exception], pattern: str
) -> None:
    where = "case 'c9': mask c9_seg.nii.gz"
    with pytest.raises(error, match=pattern) as info:
        LabelMap.preset(labels).check_values(np.array(values), where)
    assert str(info.value).startswith(where)
    if "that label map" in str(info.value):
        assert "values found: 0 (" in str(info.value) and "'ignore:'" in str(info.value)


def test_ignored_values_become_background_with_one_warning() -> None:
    lm = LabelMap("lesions", {1: "lesion"}, {"lesion": (1,)}, ignore=(5, 6))
    arr = np.array([0, 1, 5, 5, 6, 1])
    with pytest.warns(LabelValueWarning) as caught:
        out = lm.check_values(arr, "case 'c2': mask m.nii.gz")
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "case 'c2'" in text and "5 (2 voxels), 6 (1 voxel)" in text and "background" in text
    np.testing.assert_array_equal(out, [0, 1, 0, 0, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lm.check_values(np.array([0, 1]), "x") is not None


def _label_cohort(root: Path, mask_values: dict[str, list[int]]) -> Path:
    """One case per entry; each mask draws a 5x4x4 block (80 voxels) per listed value."""
    rows = []
    for i, (cid, values) in enumerate(mask_values.items()):
        d = root / cid
        _write(_float_image((16, 16, 12), seed=i), d / "t1.nii.gz", (1.0, 1.0, 1.0))
        arr = np.zeros((12, 16, 16), np.uint8)
        for j, v in enumerate(values):
            arr[3:7, 2 + 4 * j : 6 + 4 * j, 3:8] = v
        _write(arr, d / "mask.nii.gz", (1.0, 1.0, 1.0))
        rows.append({"case_id": cid, "t1": f"{cid}/t1.nii.gz", "mask": f"{cid}/mask.nii.gz"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_validate_and_extract_agree_on_mask_values(tmp_path: Path) -> None:
    from hybridrad.features import extract_radiomics

    manifest = _label_cohort(tmp_path, {"multi": [1, 2, 4], "odd": [1, 7]})
    binary = Cohort.from_csv(manifest, label_map="binary")
    assert binary.validate().ok
    result = extract_radiomics(binary, FAST)
    assert result.ok, result.failures
    for cid in ("multi", "odd"):
        mask = sitk.GetArrayFromImage(binary[cid].read_mask())
        assert result.diagnostics.loc[cid, "voxels__tumor"] == np.count_nonzero(mask)
    assert result.diagnostics.loc["multi", "voxels__tumor"] == 3 * 80  # all of 1, 2 and 4

    brats = Cohort.from_csv(manifest, label_map="brats")
    fragment = "holds value(s) 7 (80 voxels) that label map 'brats' does not define"
    (problem,) = brats.validate().problems
    assert isinstance(problem.error, MaskLabelError) and fragment in problem.message
    assert problem.case_id == "odd" and "mask.nii.gz" in problem.message
    failed = extract_radiomics(brats, FAST, regions=["WT"])
    (row,) = failed.failures.to_dict(orient="records")
    assert row["case_id"] == "odd" and row["exception"] == "MaskLabelError"
    assert fragment in row["message"] and "case 'odd'" in row["message"]


def test_extraction_reads_ignored_values_as_background(tmp_path: Path) -> None:
    from hybridrad.features import extract_radiomics

    manifest = _label_cohort(tmp_path, {"c": [1, 9]})
    lm = LabelMap("with_ignore", {1: "lesion"}, {"lesion": (1,)}, ignore=(9,))
    cohort = Cohort.from_csv(manifest, label_map=lm)
    with pytest.warns(LabelValueWarning, match=r"case 'c'.*9 \(80 voxels\)"):
        result = extract_radiomics(cohort, FAST)
    assert result.diagnostics.loc["c", "voxels__lesion"] == 80
    report = cohort.validate()
    assert report.ok and [w.kind for w in report.warnings] == ["LabelValueWarning"]


# --- 4. manifests ---------------------------------------------------------------------------


def _manifest(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "data" / "manifest.csv"
    path.write_text(text)
    return path


MANIFEST_CASES = [
    (
        "zero-bytes",
        "",
        EmptyInputError,
        r"manifest .*manifest\.csv has no cases: the file is empty",
    ),
    ("blank-lines", "\n\n", EmptyInputError, r"manifest\.csv has no cases"),
    ("header-only", "case_id,t1,mask\n", EmptyInputError, r"manifest\.csv has no cases: .*no rows"),
    (
        "duplicate",
        "case_id,t1\na,x.nii\nb,y.nii\na,z.nii\n",
        DuplicateCaseError,
        r"manifest\.csv: case ids must be unique, but 'a' in row 1 and row 3",
    ),
    (
        "triplicate",
        "case_id,t1\na,x\na,y\nb,z\na,w\nb,v\n",
        DuplicateCaseError,
        r"'a' in row 1, row 2 and row 4; 'b' in row 3 and row 5",
    ),
    ("empty-id", "case_id,t1\na,x\n,y\n", EmptyInputError, r"manifest\.csv: row 2 has no case_id"),
    ("blank-id", "case_id,t1\na,x\nb,y\n  ,z\n", EmptyInputError, r"row 3 has no case_id"),
    ("ragged", "case_id,t1\na,b,c,d\n", ManifestError, r"manifest\.csv .*more fields than"),
    ("bad-quote", 'case_id,t1\n"a,x\n', ManifestError, r"cannot read manifest .*manifest\.csv"),
    (
        "escape",
        "case_id,t1\nok,images/x.nii\nbad,../x.nii\n",
        PathEscapeError,
        r"case 'bad', column 't1': path '\.\./x\.nii' climbs out .*--allow-outside",
    ),
    (
        "escape-deep",
        "case_id,t1,mask\nc,a.nii,images/../../../etc/m.nii\n",
        PathEscapeError,
        r"case 'c', column 'mask': path 'images/\.\./\.\./\.\./etc/m\.nii'",
    ),
]


@pytest.mark.parametrize(
    ("text", "error", "pattern"),
    [pytest.param(t, e, p, id=name) for name, t, e, p in MANIFEST_CASES],
)
def test_bad_manifests(tmp_path: Path, text: str, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        Cohort.from_csv(_manifest(tmp_path, text))


def test_non_utf8_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("case_id,t1\ncafé,x.nii\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin\.csv as CSV.*UTF-8"):
        Cohort.from_csv(path)


def test_paths_outside_allowed_when_asked_absolute_always(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.nii"
    manifest = _manifest(
        tmp_path,
        f"case_id,t1,mask\nup,../elsewhere.nii,\nabs,{outside},\nin,img/../img/x.nii,img/./m.nii\n",
    )
    with pytest.raises(PathEscapeError, match="'up'"):
        Cohort.from_csv(manifest)
    cohort = Cohort.from_csv(manifest, allow_outside=True)
    assert cohort["up"].images["t1"] == manifest.parent / ".." / "elsewhere.nii"
    assert cohort.subset(["up", "in"]).allow_outside
    table = pd.read_csv(manifest, dtype=str).iloc[1:]
    inside = Cohort(table, manifest.parent)  # absolute and inside paths need nothing
    assert inside["abs"].images["t1"] == outside


def test_clinical_tables_that_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "clin.csv"
    path.write_text("")
    with pytest.raises(ClinicalError, match=r"clin\.csv has no rows: the file is empty"):
        read_clinical(path)
    path.write_text("case_id,os,death\n")
    with pytest.raises(ClinicalError, match=r"clin\.csv has no rows: .*header \(case_id, os"):
        read_clinical(path)
    path.write_text("case_id,os\na,1,2\n")
    with pytest.raises(ClinicalError, match=r"clin\.csv .*more fields than"):
        read_clinical(path)


def test_write_manifest_never_climbs_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inside = write_image_file(tmp_path / "study" / "images" / "a.nii.gz")
    outside = write_image_file(data / "b.nii.gz")
    table = pd.DataFrame({"case_id": ["a", "b"], "t1": [str(inside), str(outside)]})
    path = write_manifest(table, tmp_path / "study" / "manifest.csv")
    written = pd.read_csv(path)
    assert written.loc[0, "t1"] == os.path.join("images", "a.nii.gz")
    assert written.loc[1, "t1"] == str(outside.resolve())
    cohort = Cohort.from_csv(path)  # no allow_outside needed
    assert cohort["b"].images["t1"] == outside.resolve()


def write_image_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(make_image(), str(path))
    return path


# --- property-based -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=150))
def test_safe_filename_stays_in_its_folder(case_id: str) -> None:
    name = safe_filename(case_id)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..") and not name.startswith(".")
    assert len(name) <= 109
    folder = Path("/out/masks")
    target = folder / f"{name}.nii.gz"
    assert target.parent == folder and ".." not in target.parts
    assert os.path.normpath(target).startswith(str(folder) + os.sep)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=2, max_size=30, unique=True))
def test_safe_filename_is_injective_on_a_sample(ids: list[str]) -> None:
    names = [safe_filename(i) for i in ids]
    assert len(set(names)) == len(names)


_finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@st.composite
def _geometries(draw: st.DrawFn) -> Geometry:
    size = tuple(draw(st.lists(st.integers(1, 5), min_size=3, max_size=3)))
    spacing = tuple(draw(st.lists(st.floats(0.1, 5.0), min_size=3, max_size=3)))
    origin = tuple(draw(st.lists(_finite, min_size=3, max_size=3)))
    direction = tuple(draw(st.lists(st.floats(-1.0, 1.0), min_size=9, max_size=9)))
    return Geometry(size, spacing, origin, direction)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(_geometries(), _geometries(), st.floats(0.0, 2.0))
def test_geometry_mismatch_is_symmetric_and_zero_on_itself(
    a: Geometry, b: Geometry, tolerance: float
) -> None:
    assert a.mismatch(a, tolerance) is None
    assert (a.mismatch(b, tolerance) is None) == (b.mismatch(a, tolerance) is None)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.int16, hnp.array_shapes(max_dims=3, max_side=6), elements=st.integers(0, 9)))
def test_label_map_region_masks(arr: np.ndarray) -> None:
    binary = LabelMap.preset("binary")
    np.testing.assert_array_equal(binary.region_mask(arr, "tumor"), arr != 0)
    np.testing.assert_array_equal(binary.check_values(arr, "m") != 0, arr != 0)
    brats = LabelMap.preset("brats")
    np.testing.assert_array_equal(brats.region_mask(arr, "WT"), np.isin(arr, (1, 2, 4)))
    np.testing.assert_array_equal(brats.region_mask(arr, "ET"), arr == 4)
    if set(np.unique(arr).tolist()) <= {0, 1, 2, 4}:
        assert brats.check_values(arr, "m") is arr
    else:
        with pytest.raises(MaskLabelError, match="that label map 'brats' does not define"):
            brats.check_values(arr, "m")


@pytest.mark.parametrize(
    "content", [b"labels: {1: tumor\nregions: [", "labels: {1: t\xfcm}\n".encode("latin-1")]
)
def test_unreadable_label_map_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mylabels.yaml"
    path.write_bytes(content)
    with pytest.raises(LabelMapError, match=r"cannot read label map .*mylabels\.yaml"):
        load_label_map(path)
