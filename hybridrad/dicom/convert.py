"""DICOM folder -> one NIfTI per series, a manifest, a series table and a failures table.

:func:`find_series` reads every file's header with pydicom (``stop_before_pixels``) and
groups the slices by ``SeriesInstanceUID``; :func:`check_series` sorts a series along its
slice normal (``ImageOrientationPatient``) by ``ImagePositionPatient`` and refuses what
would become a wrong volume: missing slices, uneven spacing, repeated positions (4D),
multi-frame files, mixed orientations or sizes. :func:`convert` reads the pixels of each
good series with SimpleITK's ``ImageSeriesReader`` (in that order, so the origin is the
first slice's position), copies the voxels into a fresh image (no DICOM attribute reaches
the NIfTI header) and writes::

    OUT/<case_id>/<series>.nii.gz
    OUT/manifest.csv     case_id + one column per series (hybridrad validate/extract read it)
    OUT/series.csv       one row per series: modality, slices, size, spacing, dates, output
    OUT/failures.csv     one row per file or series that was not converted, and why

A bad file or series is recorded in ``failures.csv`` and the others are converted.

With ``deidentify=True`` the headers are de-identified in memory
(:mod:`hybridrad.dicom.deidentify`) before anything is written; pixels are read from
de-identified copies in a temporary folder that is deleted afterwards; case ids are
pseudonyms, input files are named ``input file #<n>`` in messages, and the key linking
them to the originals goes to a separate key file.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.dicom.deidentify import (
    Pseudonymizer,
    check_key_path,
    default_key_path,
    read_key,
    require,
    write_key,
)
from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.io.images import Geometry

logger = logging.getLogger(__name__)

#: File name endings that are taken for DICOM (besides none at all); a file with another
#: ending that is not DICOM is skipped (with one log line), not counted as a failure.
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima", ".img")

FAILURE_COLUMNS = ["case_id", "series", "file", "error", "message"]
SERIES_COLUMNS = [
    "case_id",
    "series",
    "series_index",
    "modality",
    "description",
    "series_number",
    "n_slices",
    "size",
    "spacing",
    "study_date",
    "series_date",
    "output",
    "status",
]


class DicomError(HybridradError, ValueError):
    """Base class of the DICOM conversion errors."""


class DicomReadError(DicomError):
    """A file is not readable DICOM (corrupt, truncated, not DICOM at all)."""


class DicomSeriesError(DicomError):
    """A series would not make a correct 3D volume (missing slices, uneven spacing,
    mixed orientations or sizes, missing geometry attributes)."""


class Dicom4DError(DicomSeriesError):
    """A series holds more than one volume (repeated slice positions: temporal positions,
    echoes, diffusion directions) or is a multi-frame file."""


class NoDicomError(DicomError):
    """The input folder holds no DICOM series at all."""


class MixedSeriesWarning(HybridradWarning):
    """A folder holds slices of several series; each is converted on its own."""


@dataclass
class SeriesInfo:
    """One series found by :func:`find_series` (headers only, sorted later).

    ``files`` are the slice files; ``headers`` their pydicom datasets (no pixels);
    ``label`` the manifest column name (``t1``, ``flair``, ``mr_3``, ``series_2``).
    """

    uid: str
    patient_id: str
    files: list[Path]
    headers: list[Any]
    modality: str = ""
    description: str = ""
    series_number: str = ""
    label: str = ""

    @property
    def n_slices(self) -> int:
        """Number of slice files."""
        return len(self.files)


@dataclass
class ConversionResult:
    """What :func:`convert` wrote: tables and paths."""

    out: Path
    manifest: pd.DataFrame
    series: pd.DataFrame
    failures: pd.DataFrame
    manifest_path: Path
    key_path: Path | None = None
    outputs: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file and series was converted."""
        return self.failures.empty


#: Recognised sequence names, first match wins (searched in the lower-cased description).
_SEQUENCE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("flair", r"flair|\bdark[\s_-]?fluid"),
    ("t1c", r"t1.*(\+c\b|\bpost|gd|gad|contrast|\bce\b)|(\bpost|gd|gad|contrast).*t1"),
    ("t1", r"t1|mprage|spgr|bravo"),
    ("t2", r"t2"),
    ("adc", r"\badc\b|apparent"),
    ("dwi", r"dwi|diffusion|\btrace\b"),
    ("swi", r"\bswi\b|susceptib"),
    ("pd", r"\bpd\b|proton[\s_-]?density"),
)


def sequence_name(description: str, modality: str = "") -> str | None:
    """A standard sequence name recognised in a SeriesDescription, else ``None``.

    Examples
    --------
    >>> sequence_name("AX T1 POST GD"), sequence_name("Sag FLAIR 3D"), sequence_name("t2_tse")
    ('t1c', 'flair', 't2')
    >>> sequence_name("localizer") is None, sequence_name("Head 5mm", "CT")
    (True, 'ct')
    """
    text = description.lower()
    for name, pattern in _SEQUENCE_PATTERNS:
        if re.search(pattern, text):
            return name
    return "ct" if modality.upper() == "CT" else None


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


class _Names:
    """How input files are named in messages: their path below the input folder, or
    ``input file #<n>`` when de-identifying (paths may hold names; the key maps them)."""

    def __init__(self, root: Path, deidentify: bool) -> None:
        self.root, self.deidentify = root, deidentify
        self.hidden: dict[str, str] = {}
        self._index: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if not self.deidentify:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                return str(path)
        if path not in self._index:
            name = f"input file #{len(self._index) + 1}"
            self._index[path] = name
            self.hidden[name] = str(path)
        return self._index[path]

    def scrub(self, text: str) -> str:
        """``text`` with the input folder's path replaced (messages of other libraries)."""
        return text.replace(str(self.root), "DICOM_DIR") if self.deidentify else text


def _list_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def find_series(
    folder: str | os.PathLike[str],
    *,
    failures: list[dict[str, str]] | None = None,
    names: Any = None,
) -> list[SeriesInfo]:
    """The series under ``folder`` (searched recursively), from pydicom headers.

    Parameters
    ----------
    folder
        A folder of DICOM files (any depth, any file names).
    failures
        When given, unreadable DICOM files are appended to it (``file``, ``error``,
        ``message``) and skipped; otherwise the first raises :class:`DicomReadError`.
    names
        How files are named in messages (a callable ``Path -> str``); default: the path
        below ``folder``.

    Returns
    -------
    list of SeriesInfo
        Grouped by ``SeriesInstanceUID``, in order of patient, series number and uid; one
        :class:`MixedSeriesWarning` names each folder that holds several series.
    """
    pydicom = require("pydicom")
    from pydicom.errors import InvalidDicomError

    root = Path(folder)
    if not root.is_dir():
        raise NoDicomError(f"DICOM input {root} is not a folder; give the folder of the scans")
    name = names or _Names(root, deidentify=False)
    groups: dict[str, SeriesInfo] = {}
    skipped: list[Path] = []
    for path in _list_files(root):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
            if path.suffix and path.suffix.lower() not in DICOM_SUFFIXES:
                skipped.append(path)
                continue
            error = DicomReadError(
                f"{name(path)} is not readable DICOM ({type(exc).__name__}); it may be "
                "corrupt or truncated: export it again from the scanner or PACS, or delete it"
            )
            if failures is None:
                raise error from exc
            failures.append(
                {"file": name(path), "error": type(error).__name__, "message": str(error)}
            )
            continue
        uid = _text(ds, "SeriesInstanceUID")
        if not uid or "Rows" not in ds:
            skipped.append(path)  # DICOMDIR, structured reports, presentation states
            continue
        if uid not in groups:
            groups[uid] = SeriesInfo(
                uid=uid,
                patient_id=_text(ds, "PatientID"),
                files=[],
                headers=[],
                modality=_text(ds, "Modality"),
                description=_text(ds, "SeriesDescription"),
                series_number=_text(ds, "SeriesNumber"),
            )
        groups[uid].files.append(path)
        groups[uid].headers.append(ds)
    if skipped:
        logger.info("skipped %d file(s) that hold no image series", len(skipped))
    by_folder: dict[Path, set[str]] = {}
    for info in groups.values():
        for f in info.files:
            by_folder.setdefault(f.parent, set()).add(info.uid)
    for path, uids in by_folder.items():
        if len(uids) > 1:
            if path == root:
                where = "the input folder"
            elif getattr(name, "deidentify", False):
                where = "a folder of the input"
            else:
                where = f"folder {path.relative_to(root).as_posix()}"
            warnings.warn(
                MixedSeriesWarning(
                    f"{where} holds slices of {len(uids)} series; each is converted on its "
                    "own (see series.csv)"
                ),
                stacklevel=2,
            )

    def order(s: SeriesInfo) -> tuple[str, int, str]:
        number = int(s.series_number) if s.series_number.lstrip("-").isdigit() else 0
        return (s.patient_id, number, s.uid)

    return sorted(groups.values(), key=order)


@dataclass(frozen=True)
class SliceGeometry:
    """The checked geometry of a series: files in slice order and the grid."""

    files: list[Path]
    headers: list[Any]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]
    size: tuple[int, int, int]


def _floats(ds: Any, keyword: str, n: int, what: str) -> np.ndarray:
    value = ds.get(keyword)
    try:
        arr = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise DicomSeriesError(
            f"{what}: {keyword} is missing or malformed ({value!r}); the slice geometry is "
            "unknown, so no volume can be built. Export the series with its geometry attributes"
        )
    return arr


def check_series(info: SeriesInfo, *, what: str, names: Any = None) -> SliceGeometry:
    """Sort the slices of ``info`` along the slice normal and check they make one volume.

    Parameters
    ----------
    info
        A series from :func:`find_series`.
    what
        How the series is named in messages (``case X, series 3 (t1)``).
    names
        How files are named in messages (callable ``Path -> str``).

    Raises
    ------
    Dicom4DError
        Multi-frame files, or slices repeating positions (several volumes in one series).
    DicomSeriesError
        Mixed orientations or sizes, a single slice, missing slices (a gap of a whole
        multiple of the spacing) or otherwise uneven slice spacing.
    """
    name = names or str
    headers = info.headers
    for f, ds in zip(info.files, headers, strict=True):
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            raise Dicom4DError(
                f"{what}: {name(f)} is a multi-frame file ({frames} frames, e.g. enhanced "
                "MR/CT or a 4D acquisition); hybridrad converts one slice per file only: "
                "convert it with dcm2niix"
            )
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise DicomSeriesError(
                f"{what}: {name(f)} is a colour image (SamplesPerPixel "
                f"{ds.get('SamplesPerPixel')}); only greyscale scans are converted"
            )
    if len(headers) < 2:
        raise DicomSeriesError(
            f"{what}: a single slice ({name(info.files[0])}), not a volume; a localizer or "
            "screenshot is not converted"
        )
    orient = [_floats(ds, "ImageOrientationPatient", 6, what) for ds in headers]
    if np.max(np.abs(np.asarray(orient) - orient[0])) > 1e-4:
        raise DicomSeriesError(
            f"{what}: the slices have different ImageOrientationPatient (e.g. a 3-plane "
            "localizer); no single volume fits them. Split the series before converting"
        )
    sizes = {(int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) for ds in headers}
    if len(sizes) > 1:
        raise DicomSeriesError(
            f"{what}: the slices have different sizes {sorted(sizes)} (rows, columns); "
            "split the series before converting"
        )
    pixel = {tuple(_floats(ds, "PixelSpacing", 2, what)) for ds in headers}
    if len(pixel) > 1:
        raise DicomSeriesError(
            f"{what}: the slices have different PixelSpacing {sorted(pixel)}; split the series"
        )
    row, col = orient[0][:3], orient[0][3:]
    normal = np.cross(row, col)
    positions = np.asarray([_floats(ds, "ImagePositionPatient", 3, what) for ds in headers])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    steps = np.diff(along)
    repeated = int(np.sum(steps < 1e-3))
    if repeated:
        distinct = len(along) - repeated
        temporal = {_text(ds, "TemporalPositionIdentifier") for ds in headers} - {""}
        hint = f", {len(temporal)} temporal positions" if len(temporal) > 1 else ""
        raise Dicom4DError(
            f"{what}: {len(along)} slices at only {distinct} distinct positions{hint}: the "
            "series holds several volumes (4D: time points, echoes or diffusion directions). "
            "hybridrad converts 3D series only: split it by volume (e.g. with dcm2niix)"
        )
    spacing = float(np.median(steps))
    tol = max(1e-3, 0.01 * spacing)
    bad = np.flatnonzero(np.abs(steps - spacing) > tol)
    if bad.size:
        i = int(bad[0])
        gap = float(steps[i])
        missing = gap / spacing
        first = name(info.files[int(order[i])])
        after = name(info.files[int(order[i + 1])])
        if gap > spacing and abs(missing - round(missing)) * spacing <= tol:
            raise DicomSeriesError(
                f"{what}: missing slices: a gap of {gap:.4g} mm between {first} and {after} "
                f"where the slice spacing is {spacing:.4g} mm ({round(missing) - 1} slice(s) "
                "missing, of the series' other gaps: "
                f"{bad.size}). Export the complete series again; a stretched volume would "
                "be geometrically wrong"
            )
        raise DicomSeriesError(
            f"{what}: inconsistent slice spacing: steps between slice positions range from "
            f"{steps.min():.4g} to {steps.max():.4g} mm (median {spacing:.4g}; first odd step "
            f"{gap:.4g} mm between {first} and {after}). The volume would be distorted: "
            "resample it with a tool that handles variable spacing, or export it again"
        )
    ordered = [info.files[int(k)] for k in order]
    pr, pc = next(iter(pixel))  # PixelSpacing: row spacing (between rows), column spacing
    direction = (row[0], col[0], normal[0], row[1], col[1], normal[1], row[2], col[2], normal[2])
    (rows, cols) = next(iter(sizes))
    return SliceGeometry(
        files=ordered,
        headers=[headers[int(k)] for k in order],
        origin=tuple(float(v) for v in positions[int(order[0])]),  # type: ignore[arg-type]
        spacing=(float(pc), float(pr), spacing),
        direction=tuple(float(v) for v in direction),
        size=(cols, rows, len(ordered)),
    )


def _read_volume(
    files: Sequence[Path], geometry: SliceGeometry, what: str, names: Any
) -> sitk.Image:
    """The voxels of ``files`` (in slice order) in a fresh image without metadata."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        bad = "one of its files"
        for f, original in zip(files, geometry.files, strict=True):
            try:
                sitk.ReadImage(str(f))
            except RuntimeError:
                bad = names(original)
                break
        raise DicomReadError(
            f"{what}: the pixels of {bad} cannot be read (truncated file or unsupported "
            "compression); export the series again, uncompressed"
        ) from exc
    array = sitk.GetArrayFromImage(image)
    if array.ndim != 3 or array.shape[0] != len(files):
        raise Dicom4DError(
            f"{what}: read as an image of shape {array.shape}, expected {len(files)} slices; "
            "the files hold several frames or volumes: convert it with dcm2niix"
        )
    clean = sitk.GetImageFromArray(array)  # no DICOM attribute comes along
    clean.SetOrigin(geometry.origin)
    clean.SetSpacing(geometry.spacing)
    clean.SetDirection(geometry.direction)
    problem = Geometry.of(clean).mismatch(Geometry.of(image), tolerance=1e-3)
    if problem:
        raise DicomSeriesError(
            f"{what}: SimpleITK read a grid that differs from the headers' ({problem}); "
            "refusing to guess. Please report this series"
        )
    return clean


def _unique(label: str, used: set[str]) -> str:
    name, k = label, 2
    while name in used:
        name, k = f"{label}_{k}", k + 1
    used.add(name)
    return name


def _labels(series: list[SeriesInfo]) -> None:
    """Give each series a manifest column name, unique within its patient."""
    from hybridrad.io.manifest import RESERVED_COLUMNS

    used: dict[str, set[str]] = {}
    for index, info in enumerate(series, start=1):
        label = sequence_name(info.description, info.modality)
        if label is None:
            modality = re.sub(r"[^a-z0-9]", "", info.modality.lower())
            number = re.sub(r"[^0-9]", "", info.series_number)
            label = f"{modality}_{number}" if modality and number else f"series_{index}"
        if label in RESERVED_COLUMNS:
            label = f"series_{label}"
        info.label = _unique(label, used.setdefault(info.patient_id, set()))


def _date(ds: Any, keyword: str) -> str:
    value = _text(ds, keyword)
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else ""


def convert(
    dicom_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    deidentify: bool = False,
    key_file: str | os.PathLike[str] | None = None,
) -> ConversionResult:
    """Convert every series under ``dicom_dir`` to NIfTI in ``out`` (see the module).

    Parameters
    ----------
    dicom_dir
        Folder of DICOM files (searched recursively; several patients and series allowed).
    out
        Output folder: ``<case_id>/<series>.nii.gz``, ``manifest.csv``, ``series.csv``,
        ``failures.csv``.
    deidentify
        De-identify (PS3.15 basic profile, via dicognito) before anything is written;
        case ids become pseudonyms.
    key_file
        Where the key (original id -> pseudonym) is written with ``deidentify``; default
        ``<out>.key.csv`` beside ``out``. It must not lie inside ``out``. An existing key
        file is reused: known patients keep their pseudonym and date shift.

    Returns
    -------
    ConversionResult
        The tables written; ``failures`` lists each file or series not converted.

    Raises
    ------
    NoDicomError
        No DICOM series at all under ``dicom_dir``.
    """
    from hybridrad.io.images import write_image
    from hybridrad.io.manifest import CASE_ID, safe_filename, write_manifest

    pydicom = require("pydicom")
    root, target = Path(dicom_dir), Path(out)
    key_path: Path | None = None
    pseudo: Pseudonymizer | None = None
    if deidentify:
        key_path = Path(key_file) if key_file is not None else default_key_path(target)
        check_key_path(key_path, target)
        pseudo = Pseudonymizer(read_key(key_path))
    names = _Names(root, deidentify)
    failures: list[dict[str, str]] = []
    with warnings.catch_warnings(record=deidentify) as caught:
        if deidentify:
            warnings.simplefilter("always")
        series = find_series(root, failures=failures, names=names)
    if caught:  # pydicom's messages may quote header values: counted, not shown
        lib = [w for w in caught if not issubclass(w.category, HybridradWarning)]
        for w in caught:
            if issubclass(w.category, HybridradWarning):
                warnings.warn(w.message, stacklevel=2)
        if lib:
            warnings.warn(
                f"pydicom raised {len(lib)} warning(s) on the input headers; not shown with "
                "--deidentify since they may quote identifying values",
                HybridradWarning,
                stacklevel=2,
            )
    if not series and not failures:
        raise NoDicomError(
            f"no DICOM image series found under {names.scrub(str(root))}; give the folder "
            "that holds the scans' .dcm files"
        )
    _labels(series)
    case_ids: dict[str, str] = {}
    for info in series:
        if info.patient_id not in case_ids:
            if pseudo is not None:
                case_ids[info.patient_id] = pseudo.pseudonym(info.patient_id)
            elif info.patient_id:
                case_ids[info.patient_id] = safe_filename(info.patient_id)
            else:
                case_ids[info.patient_id] = "unknown_patient"
                warnings.warn(
                    "some series have no PatientID; their case id is 'unknown_patient'",
                    HybridradWarning,
                    stacklevel=2,
                )
    if pseudo is not None:
        for info in series:
            for ds in info.headers:
                pseudo.anonymize(ds, info.patient_id)
    target.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, str]] = {}
    table: list[dict[str, Any]] = []
    outputs: list[Path] = []
    for index, info in enumerate(series, start=1):
        case_id = case_ids[info.patient_id]
        what = f"case {case_id}, series {index} ({info.label})"
        first = info.headers[0]
        record: dict[str, Any] = {
            "case_id": case_id,
            "series": info.label,
            "series_index": index,
            "modality": info.modality,
            "description": "" if deidentify else info.description,
            "series_number": info.series_number,
            "n_slices": info.n_slices,
            "size": "",
            "spacing": "",
            "study_date": _date(first, "StudyDate"),
            "series_date": _date(first, "SeriesDate"),
            "output": "",
            "status": "failed",
        }
        try:
            geometry = check_series(info, what=what, names=names)
            path = target / safe_filename(case_id) / f"{info.label}.nii.gz"
            if pseudo is not None:
                with tempfile.TemporaryDirectory(prefix="hybridrad-dicom-") as tmp:
                    copies = []
                    for k, f in enumerate(geometry.files):
                        try:
                            ds = pydicom.dcmread(f)
                            ds.PixelData  # noqa: B018 - a truncated file fails here
                        except Exception as exc:
                            raise DicomReadError(
                                f"{what}: {names(f)} cannot be read in full ({type(exc).__name__}:"
                                " truncated?); export the series again"
                            ) from exc
                        pseudo.anonymize(ds, info.patient_id)
                        copy = Path(tmp) / f"{k:05d}.dcm"
                        ds.save_as(copy)
                        copies.append(copy)
                    image = _read_volume(copies, geometry, what, names)
            else:
                image = _read_volume(geometry.files, geometry, what, names)
            write_image(image, path)
        except (DicomError, OSError) as exc:
            message = names.scrub(str(exc))
            logger.warning("%s", message)
            failures.append(
                {
                    "case_id": case_id,
                    "series": info.label,
                    "file": "",
                    "error": type(exc).__name__,
                    "message": message,
                }
            )
            table.append(record)
            continue
        outputs.append(path)
        record.update(
            size="x".join(str(v) for v in image.GetSize()),
            spacing="x".join(f"{v:.6g}" for v in image.GetSpacing()),
            output=path.relative_to(target).as_posix(),
            status="ok",
        )
        table.append(record)
        rows.setdefault(case_id, {CASE_ID: case_id})[info.label] = str(path)
        logger.info("%s: %d slices -> %s", what, info.n_slices, record["output"])
    manifest = pd.DataFrame(list(rows.values()))
    if manifest.empty:
        manifest = pd.DataFrame(columns=[CASE_ID])
    manifest_path = write_manifest(manifest, target / "manifest.csv")
    series_table = pd.DataFrame(table, columns=SERIES_COLUMNS)
    series_table.to_csv(target / "series.csv", index=False, encoding="utf-8")
    failure_table = pd.DataFrame(failures, columns=FAILURE_COLUMNS).fillna("")
    failure_table.to_csv(target / "failures.csv", index=False, encoding="utf-8")
    if pseudo is not None and key_path is not None:
        write_key(key_path, pseudo.patients, names.hidden)
        logger.info("de-identification key (holds PHI) written to %s", key_path)
    return ConversionResult(
        out=target,
        manifest=manifest,
        series=series_table,
        failures=failure_table,
        manifest_path=manifest_path,
        key_path=key_path,
        outputs=outputs,
    )
