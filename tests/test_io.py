"""Image readers, label maps and discovery helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from hybridrad.datasets.discover import classify_file, discover_brats
from hybridrad.errors import (
    ImageNotFoundError,
    ImageReadError,
    LabelMapError,
    ManifestError,
    UnsupportedFormatError,
)
from hybridrad.io import Cohort, LabelMap, load_label_map, read_geometry, read_image, write_image
from tests.conftest import make_image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_roundtrip_formats(tmp_path: Path, suffix: str) -> None:
    img = make_image(spacing=(0.9, 0.8, 2.5), origin=(-10.0, 5.0, 3.0))
    path = write_image(img, tmp_path / f"img{suffix}")
    back = read_image(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    geom, pixel = read_geometry(path)
    assert geom.size == (12, 10, 8)
    assert geom.mismatch(read_geometry(path)[0]) is None
    np.testing.assert_allclose(geom.spacing, (0.9, 0.8, 2.5), atol=1e-6)
    assert pixel == "16-bit signed integer"
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temp file


def test_nifti_gz_fast_read_equals_itk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_image inflates .nii.gz once in Python; the result must be ITK's own reading."""
    from hybridrad.io import images

    img = sitk.Cast(make_image(shape=(20, 18, 9), spacing=(0.9, 0.8, 2.5)), sitk.sitkFloat32)
    c, s_ = np.cos(0.3), np.sin(0.3)
    img.SetDirection((c, -s_, 0.0, s_, c, 0.0, 0.0, 0.0, 1.0))  # oblique
    img.SetOrigin((-10.0, 5.0, 3.0))
    path = tmp_path / "obl.nii.gz"
    sitk.WriteImage(img, str(path))
    ref = sitk.ReadImage(str(path))
    with monkeypatch.context() as m:  # without ISA-L: Python's gzip
        import gzip

        m.setattr(images, "_gzip_reader", gzip)
        plain = images._read_nifti_gz(path)
    for back in (read_image(path), images._read_nifti_gz(path), plain):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(ref))
        assert back.GetPixelID() == ref.GetPixelID()
        assert back.GetOrigin() == ref.GetOrigin() and back.GetSpacing() == ref.GetSpacing()
        assert back.GetDirection() == ref.GetDirection()
        assert {k: back.GetMetaData(k) for k in back.GetMetaDataKeys()} == {
            k: ref.GetMetaData(k) for k in ref.GetMetaDataKeys()
        }
    # a damaged deflate stream (size trailer intact) is a clear error naming the file
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"obl\.nii\.gz.*gzip stream is damaged"):
        read_image(path)
    # no scratch space: ITK reads the file itself
    good = tmp_path / "good.nii.gz"
    sitk.WriteImage(img, str(good))

    class Full:
        name = str(tmp_path / "never.nii")

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def write(self, chunk: bytes) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.tempfile, "NamedTemporaryFile", lambda **kw: Full())
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(read_image(good)), sitk.GetArrayFromImage(ref)
    )


def test_dicom_series_folder(tmp_path: Path) -> None:
    img = make_image(spacing=(0.7, 0.7, 3.0), origin=(1.0, 2.0, 3.0))
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uid = "1.2.826.0.1.3680043.2.1125.1"
    for z in range(img.GetDepth()):
        s = img[:, :, z]
        pos = img.TransformIndexToPhysicalPoint((0, 0, z))
        for tag, value in {
            "0008|0060": "MR",
            "0020|000d": uid + ".1",
            "0020|000e": uid + ".2",
            "0020|0032": "\\".join(map(str, pos)),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(z),
            "0028|0030": "0.7\\0.7",
            "0018|0050": "3.0",
        }.items():
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{z:03d}.dcm"))
        writer.Execute(s)
    back = read_image(folder)
    assert back.GetSize() == img.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), (0.7, 0.7, 3.0), atol=1e-4)
    np.testing.assert_allclose(back.GetOrigin(), (1.0, 2.0, 3.0), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    # a DICOM folder works as a manifest entry too
    (tmp_path / "m.csv").write_text("case_id,ct\nc1,series\n")
    assert Cohort.from_csv(tmp_path / "m.csv").validate().ok
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_image(empty)


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match=r"absent\.nii\.gz"):
        read_image(tmp_path / "absent.nii.gz")
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(UnsupportedFormatError, match=r"x\.png"):
        read_image(tmp_path / "x.png")
    bad = tmp_path / "bad.nrrd"
    bad.write_text("NRRD0004\ntype: nonsense\n\n")
    with pytest.raises(ImageReadError, match=r"bad\.nrrd"):
        read_image(bad)
    # truncated gzip: header fine, data cut
    good = write_image(make_image(), tmp_path / "t.nii.gz")
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"t\.nii\.gz"):
        read_image(good)


def test_label_map_presets_and_yaml(tmp_path: Path) -> None:
    brats = LabelMap.preset("brats")
    assert brats.regions == {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
    arr = np.array([0, 1, 2, 4, 4])
    np.testing.assert_array_equal(brats.region_mask(arr, "TC"), [False, True, False, True, True])
    with pytest.raises(LabelMapError, match="'XX'"):
        brats.region_mask(arr, "XX")
    with pytest.raises(LabelMapError, match="unknown label-map preset"):
        LabelMap.preset("nope")
    spec = tmp_path / "lungs.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"labels": {1: "nodule", 2: "vessel"}, "regions": {"nodule": [1], "all": [1, 2]}}
        )
    )
    lm = load_label_map(spec)
    assert lm.name == "lungs" and lm.regions["all"] == (1, 2)
    assert LabelMap.from_dict(lm.to_dict()) == lm
    spec.write_text(yaml.safe_dump({"labels": {1: "a"}, "regions": {"r": [1, 3]}}))
    with pytest.raises(LabelMapError, match=r"\[3\]"):
        load_label_map(spec)
    spec.write_text(yaml.safe_dump({"labels": {1: "a"}, "regions": {"r": [1]}, "colour": 1}))
    with pytest.raises(LabelMapError, match="colour"):
        load_label_map(spec)
    with pytest.raises(LabelMapError, match="background"):
        LabelMap("x", {0: "bg"}, {"r": (0,)})
    with pytest.raises(LabelMapError, match="neither a preset"):
        load_label_map(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Brats18_2013_2_1_t1ce.nii.gz", "t1c"),
        ("Brats18_2013_2_1_t1.nii.gz", "t1"),
        ("Brats18_2013_2_1_seg.nii.gz", "mask"),
        ("BRATS_HG0015_T1C.mha", "t1c"),
        ("BRATS_HG0015_truth.mha", "mask"),
        ("GT_W.nii.gz", "mask"),
        ("OTMultiClass.nii.gz", "mask"),
        ("T2.nii.gz", "t2"),
        ("brainmask.nii.gz", None),
        ("subject_id.txt", None),
    ],
)
def test_classify_file(name: str, kind: str | None) -> None:
    assert classify_file(name) == kind


def test_discover_brats_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no case folders"):
        discover_brats(tmp_path)
    case = tmp_path / "c1"
    case.mkdir()
    for name in ("a_flair.nii.gz", "b_flair.nii.gz"):
        write_image(make_image(), case / name)
    with pytest.raises(ManifestError, match="flair"):
        discover_brats(tmp_path)
