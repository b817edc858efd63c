"""DICOM conversion (``hybridrad convert``): geometry, de-identification, bad input.

Every series is generated here with pydicom (16 x 16 MR slices with known positions,
orientation, spacing and voxel values, and known PHI strings)."""

from __future__ import annotations

import gzip
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("dicognito")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from hybridrad.cli import main  # noqa: E402
from hybridrad.dicom import (  # noqa: E402
    Dicom4DError,
    DicomDependencyError,
    DicomSeriesError,
    KeyFileError,
    MixedSeriesWarning,
    convert,
    find_series,
)
from hybridrad.dicom.deidentify import require  # noqa: E402
from hybridrad.io import Cohort  # noqa: E402

PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN123456",
    "PatientBirthDate": "19610704",
    "AccessionNumber": "ACC998877",
    "InstitutionName": "Saint Elsewhere Hospital",
    "DeviceSerialNumber": "SN-4455-XYZ",
    "ReferringPhysicianName": "House^Gregory",
    "OperatorsName": "Ratched^Mildred",
    "StationName": "MRSCAN07",
    "StudyID": "STUDY4242",
}
#: Strings that must appear nowhere in the output (the PHI above, in the forms it could
#: take: names with and without ^, dates as written in DICOM and ISO).
FORBIDDEN = [
    *PHI.values(),
    "Doe",
    "Jane",
    "House",
    "Gregory",
    "Elsewhere",
    "1961-07-04",
    "20210314",
    "2021-03-14",
    "20210320",
    "2021-03-20",
]


@pytest.fixture(autouse=True)
def _drop_cli_log_handler() -> Iterator[None]:
    """``main`` logs to the stderr of its test; take its handler away afterwards."""
    yield
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_hybridrad", False)]


ROW = np.array([1.0, 0.0, 0.0])
COL = np.array([0.0, np.cos(0.3), -np.sin(0.3)])  # oblique: tilted 0.3 rad about x
NORMAL = np.cross(ROW, COL)
PIXEL_SPACING = (0.5, 0.8)  # (between rows, between columns) as DICOM orders it
ORIGIN = np.array([-10.0, 20.0, 5.0])


def write_series(
    folder: Path,
    *,
    n: int = 8,
    steps: list[float] | None = None,
    patient: dict[str, str] | None = None,
    series_uid: str | None = None,
    description: str = "AX T1",
    series_number: int = 1,
    study_date: str = "20210314",
    implicit: bool = False,
    prefix: str = "img",
    extra: dict[str, object] | None = None,
) -> list[Path]:
    """Write ``n`` slices (in shuffled file order) along ``NORMAL`` at cumulative
    ``steps`` (default 2 mm each); voxel value = 100 * slice + row."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = steps if steps is not None else [2.0] * (n - 1)
    offsets = np.concatenate([[0.0], np.cumsum(steps)])
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid(entropy_srcs=[study_date])
    info = {**PHI, **(patient or {})}
    paths = []
    for k in np.random.default_rng(series_number).permutation(len(offsets)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        for key, value in info.items():
            setattr(ds, key, value)
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = study_date
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.Modality = "MR"
        ds.SeriesDescription = description
        ds.SeriesNumber = series_number
        ds.InstanceNumber = int(k) + 1
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = study_uid
        ds.ImagePositionPatient = [float(v) for v in ORIGIN + offsets[k] * NORMAL]
        ds.ImageOrientationPatient = [float(v) for v in (*ROW, *COL)]
        ds.PixelSpacing = list(PIXEL_SPACING)
        ds.SliceThickness = 2.0
        ds.Rows = ds.Columns = 16
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        for key, value in (extra or {}).items():
            setattr(ds, key, value(k) if callable(value) else value)
        pixels = 100 * int(k) + np.repeat(np.arange(16, dtype=np.uint16)[:, None], 16, axis=1)
        ds.PixelData = pixels.astype(np.uint16).tobytes()
        path = folder / f"{prefix}{len(paths):03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_geometry_voxels_and_manifest(tmp_path: Path) -> None:
    src, out = tmp_path / "dicom", tmp_path / "out"
    write_series(src / "a", implicit=True)
    write_series(src / "b", description="Sag FLAIR", series_number=2, steps=[2.5] * 5)
    result = convert(src, out)
    assert result.ok and len(result.outputs) == 2
    t1 = sitk.ReadImage(str(out / "MRN123456" / "t1.nii.gz"))
    assert t1.GetSize() == (16, 16, 8)
    assert np.allclose(t1.GetSpacing(), (0.8, 0.5, 2.0))
    assert np.allclose(t1.GetOrigin(), ORIGIN)
    assert np.allclose(t1.GetDirection(), np.column_stack([ROW, COL, NORMAL]).ravel())
    # voxel (column 3, row 5, slice k) lies where the DICOM header puts it, holds its value
    for k in range(8):
        point = t1.TransformIndexToPhysicalPoint((3, 5, k))
        expected = ORIGIN + k * 2.0 * NORMAL + 3 * 0.8 * ROW + 5 * 0.5 * COL
        assert np.allclose(point, expected)
        assert t1[3, 5, k] == 100 * k + 5
    flair = sitk.ReadImage(str(out / "MRN123456" / "flair.nii.gz"))
    assert flair.GetSize() == (16, 16, 6) and np.isclose(flair.GetSpacing()[2], 2.5)
    # no DICOM attribute in the NIfTI header (descrip, aux_file, intent name)
    header = gzip.decompress((out / "MRN123456" / "t1.nii.gz").read_bytes())[:352]
    assert b"AX T1" not in header and b"MRN" not in header and b"Doe" not in header
    assert header[148:228].strip(b"\0") == b""  # descrip
    cohort = Cohort.from_csv(out / "manifest.csv")
    assert [c.case_id for c in cohort] == ["MRN123456"]
    assert set(cohort.sequences) == {"t1", "flair"}
    series = pd.read_csv(out / "series.csv", dtype=str)
    assert list(series["series"]) == ["t1", "flair"] and list(series["n_slices"]) == ["8", "6"]
    assert list(series["spacing"]) == ["0.8x0.5x2", "0.8x0.5x2.5"]
    assert pd.read_csv(out / "failures.csv").empty


def _all_text(out: Path) -> list[tuple[str, bytes]]:
    found = []
    for path in out.rglob("*"):
        found.append((str(path), path.relative_to(out.parent).as_posix().encode()))
        if path.is_file():
            data = path.read_bytes()
            found.append((str(path), gzip.decompress(data) if path.suffix == ".gz" else data))
    return found


def test_deidentify_leaves_no_phi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    src, out = tmp_path / "Doe_Jane_MRN123456", tmp_path / "out"
    write_series(src / "Doe^Jane" / "s1", study_date="20210314")
    write_series(src / "Doe^Jane" / "s2", study_date="20210320", series_number=2,
                 description="FLAIR ax")  # fmt: skip
    (src / "Doe^Jane" / "s1" / "Doe_Jane_garbage.dcm").write_bytes(b"\x00" * 40 + b"MRN123456")
    caplog.set_level(logging.DEBUG)
    assert main(["-vv", "convert", str(src), str(out), "--deidentify"]) == 1  # the garbage
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    key_path = tmp_path / "out.key.csv"
    for text in FORBIDDEN:
        assert text not in logs, text
    for where, data in _all_text(out):
        for text in FORBIDDEN:
            assert text.encode() not in data, f"{text!r} in {where}"
    # the key, beside OUT, links the original id to the pseudonym and names the bad file
    if sys.platform != "win32":
        assert key_path.stat().st_mode & 0o077 == 0  # owner only
    key = pd.read_csv(key_path, dtype=str)
    patient = key[key["kind"] == "patient"].iloc[0]
    assert patient["original"] == "MRN123456"
    cohort = Cohort.from_csv(out / "manifest.csv")
    assert [c.case_id for c in cohort] == [patient["pseudonym"]]
    failures = pd.read_csv(out / "failures.csv", dtype=str)
    assert failures["message"].str.contains("input file #").all()
    hidden = key[key["kind"] == "file"]
    assert hidden["original"].str.endswith("Doe_Jane_garbage.dcm").any()
    # dates shifted, by one offset per patient: the 6 days between the studies are kept
    series = pd.read_csv(out / "series.csv", dtype=str)
    dates = pd.to_datetime(series["study_date"])
    assert (dates - pd.Timestamp("2021-03-14")).abs().min() > pd.Timedelta(days=30)
    assert dates.iloc[1] - dates.iloc[0] == pd.Timedelta(days=6)
    shift = float(patient["date_shift_days"])
    assert dates.iloc[0] == pd.Timestamp("2021-03-14") + pd.Timedelta(days=round(shift))
    # a second run with the same key gives the patient the same pseudonym and shift
    again = convert(src, tmp_path / "out2", deidentify=True, key_file=key_path)
    assert list(again.manifest["case_id"]) == [patient["pseudonym"]]
    assert list(again.series["study_date"]) == list(series["study_date"])


def test_key_file_must_stay_outside_output(tmp_path: Path) -> None:
    write_series(tmp_path / "dicom")
    with pytest.raises(KeyFileError, match="inside the output folder"):
        convert(tmp_path / "dicom", tmp_path / "out", deidentify=True,
                key_file=tmp_path / "out" / "key.csv")  # fmt: skip


def test_bad_inputs_are_named_and_others_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "dicom", tmp_path / "out"
    write_series(src / "good")
    # two series in one folder: each converted on its own
    write_series(src / "mixed", patient={"PatientID": "P2"}, series_number=3, prefix="x",
                 description="scan")  # fmt: skip
    write_series(src / "mixed", patient={"PatientID": "P2"}, series_number=4, prefix="y",
                 description="t2 tse")  # fmt: skip
    (src / "good" / "broken.dcm").write_bytes(b"not a dicom file at all" * 10)
    p3: dict[str, object] = {"patient": {"PatientID": "P3"}, "description": "scan"}
    write_series(src / "gap", **p3, series_number=5, steps=[2, 2, 4, 2, 2, 2, 2])
    write_series(src / "uneven", **p3, series_number=6, steps=[2, 2, 2.7, 1.3, 2, 2, 2])
    write_series(src / "4d", **p3, series_number=7, steps=[2, 2, 2, -6, 2, 2, 2],
                 extra={"TemporalPositionIdentifier": lambda k: 1 + k // 4})  # fmt: skip
    write_series(src / "frames", **p3, series_number=8, extra={"NumberOfFrames": 2})
    truncated = write_series(src / "trunc", **p3, series_number=9)[2]
    truncated.write_bytes(truncated.read_bytes()[:-200])
    with pytest.warns(MixedSeriesWarning, match="mixed holds slices of 2 series"):
        result = convert(src, out)
    ok = result.series[result.series["status"] == "ok"]
    assert sorted(zip(ok["case_id"], ok["series"], strict=True)) == [
        ("MRN123456", "t1"),
        ("P2", "mr_3"),
        ("P2", "t2"),
    ]
    failures = result.failures.set_index("series")
    assert failures.loc["", "file"] == "good/broken.dcm"
    assert failures.loc["", "error"] == "DicomReadError"
    gap = failures.loc["mr_5"]
    assert gap["error"] == "DicomSeriesError" and "missing slices: a gap of 4 mm" in gap["message"]
    assert "case P3, series" in gap["message"] and "spacing is 2 mm (1 slice(s)" in gap["message"]
    assert "inconsistent slice spacing" in failures.loc["mr_6", "message"]
    assert failures.loc["mr_7", "error"] == "Dicom4DError"
    assert "8 slices at only 4 distinct positions, 2 temporal" in failures.loc["mr_7", "message"]
    assert failures.loc["mr_8", "error"] == "Dicom4DError"
    assert "multi-frame" in failures.loc["mr_8", "message"]
    assert failures.loc["mr_9", "error"] == "DicomReadError"
    assert "trunc/" in failures.loc["mr_9", "message"]
    # the written files make a manifest that hybridrad reads
    cohort = Cohort.from_csv(out / "manifest.csv")
    assert sorted(c.case_id for c in cohort) == ["MRN123456", "P2"]
    assert pd.read_csv(out / "failures.csv").shape[0] == 6
    # the command line: the others are written, exit 1, one line per failure, no traceback
    assert main(["convert", str(src), str(tmp_path / "cli")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "3 of 8 series converted" in captured.out
    assert "Dicom4DError" in captured.out


def test_find_series_and_api_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "d")
    write_series(tmp_path / "d2", n=1, series_number=2)
    series = find_series(tmp_path / "d")
    assert len(series) == 1 and series[0].n_slices == 8 and series[0].modality == "MR"
    from hybridrad.dicom import check_series

    with pytest.raises(DicomSeriesError, match="a single slice"):
        check_series(find_series(tmp_path / "d2")[0], what="s")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no scans here", encoding="utf-8")
    assert main(["convert", str(empty), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "error: NoDicomError: no DICOM image series" in err and "Traceback" not in err
    assert issubclass(Dicom4DError, DicomSeriesError)


def test_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dicognito", None)
    with pytest.raises(DicomDependencyError, match=r"pip install 'hybridrad\[dicom\]'"):
        require("dicognito")
