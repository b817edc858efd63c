"""Image readers and writers (NIfTI, NRRD, MetaImage, DICOM series) through SimpleITK."""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import ImageNotFoundError, ImageReadError, UnsupportedFormatError

_gzip_reader: types.ModuleType
_INFLATE_ERRORS: tuple[type[BaseException], ...]
try:  # ISA-L inflate, about 2x zlib's speed; the same bytes come out
    from isal import igzip, isal_zlib

    _gzip_reader = igzip
    _INFLATE_ERRORS = (OSError, EOFError, zlib.error, cast(type[Exception], isal_zlib.error))
except ImportError:  # pragma: no cover - isal is a dependency; plain zlib still works
    _gzip_reader = gzip
    _INFLATE_ERRORS = (OSError, EOFError, zlib.error)

#: File name endings SimpleITK reads for us. A folder is read as a DICOM series.
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".nii.gz",
    ".nii",
    ".nrrd",
    ".nhdr",
    ".mha",
    ".mhd",
    ".dcm",
)


@dataclass(frozen=True)
class Geometry:
    """The voxel grid of an image: size (x, y, z), spacing (mm), origin (mm), direction."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image | sitk.ImageFileReader) -> Geometry:
        """Geometry of a loaded image or of a reader after ``ReadImageInformation``."""
        return cls(
            size=tuple(int(s) for s in image.GetSize()),
            spacing=tuple(float(s) for s in image.GetSpacing()),
            origin=tuple(float(o) for o in image.GetOrigin()),
            direction=tuple(float(d) for d in image.GetDirection()),
        )

    def mismatch(self, other: Geometry, tolerance: float = 1e-3) -> str | None:
        """Describe how ``other`` differs from this grid, or ``None`` when they agree.

        Sizes must be equal; spacing, origin (mm) and direction cosines must agree
        within ``tolerance`` (absolute), as pyradiomics' ``geometryTolerance`` does.
        """
        if self.size != other.size:
            return f"size {other.size} != {self.size}"
        for name in ("spacing", "origin", "direction"):
            a = np.asarray(getattr(self, name))
            b = np.asarray(getattr(other, name))
            if a.shape != b.shape:
                return f"{name} has {b.size} components, expected {a.size}"
            diff = float(np.max(np.abs(a - b)))
            if diff > tolerance:
                return (
                    f"{name} {tuple(round(x, 4) for x in b)} != "
                    f"{tuple(round(x, 4) for x in a)} (max difference {diff:.4g} > "
                    f"tolerance {tolerance:g})"
                )
        return None


def _check_nifti_complete(path: Path) -> None:
    """Raise :class:`ImageReadError` when a NIfTI-1 file holds less voxel data than its
    header promises. ITK reads such files silently (the missing voxels are garbage)."""
    gz = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            header = fh.read(352)
        if len(header) < 348:
            raise ImageReadError(f"cannot read image {path}: the NIfTI header is truncated")
        for endian in "<>":
            if struct.unpack(endian + "i", header[:4])[0] == 348:
                break
        else:  # NIfTI-2 or not NIfTI: leave it to ITK
            return
        dims = struct.unpack(endian + "8h", header[40:56])
        bitpix = struct.unpack(endian + "h", header[72:74])[0]
        vox_offset = int(struct.unpack(endian + "f", header[108:112])[0])
        n_voxels = int(np.prod([max(d, 1) for d in dims[1 : 1 + max(dims[0], 1)]]))
        expected = vox_offset + n_voxels * bitpix // 8
        if gz:
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                isize = struct.unpack("<I", fh.read(4))[0]
            complete = isize == expected % (1 << 32)
            actual = "the gzip stream ends early or is damaged"
        else:
            size = path.stat().st_size
            complete = size >= expected
            actual = f"the file holds {size} bytes"
    except (OSError, EOFError, struct.error, zlib.error) as exc:
        if isinstance(exc, ImageReadError):
            raise
        raise ImageReadError(f"cannot read image {path}: {exc}") from exc
    if not complete:
        raise ImageReadError(
            f"image {path} is truncated: its header promises {expected} bytes, but "
            f"{actual}. Re-export or re-copy the file."
        )


#: Compressed NIfTI files up to this size are decompressed once by Python's zlib before
#: ITK reads them (see :func:`_read_nifti_gz`); larger ones are handed to ITK directly.
NIFTI_GZ_FAST_MAX_BYTES = 512 * 1024**2


def _scratch_dir() -> str | None:
    """A memory-backed folder for short-lived files where there is one (else the temp dir)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _read_nifti_gz(path: Path) -> sitk.Image:
    """Read a ``.nii.gz`` by decompressing it once into a scratch ``.nii`` that ITK reads.

    ITK's NIfTI reader inflates a gzip file twice (header pass, then data pass) with a
    slower inflate than ISA-L's (``isal``) or Python's zlib: a 64^3 int16 volume took
    5.7 ms that way against 2.0 ms here (``benchmarks/deep_throughput.py``). The voxels,
    geometry and metadata are ITK's own reading of the same bytes.
    """
    with tempfile.NamedTemporaryFile(suffix=".nii", dir=_scratch_dir()) as tmp:
        with _gzip_reader.open(path, "rb") as src:
            while True:
                try:
                    chunk = src.read(1 << 20)
                except _INFLATE_ERRORS as exc:
                    raise ImageReadError(
                        f"cannot read image {path}: the gzip stream is damaged ({exc}). "
                        "Re-export or re-copy the file."
                    ) from exc
                if not chunk:
                    break
                try:
                    tmp.write(chunk)
                except OSError:  # scratch space full: let ITK inflate it itself
                    return sitk.ReadImage(str(path))
        try:
            tmp.flush()
        except OSError:
            return sitk.ReadImage(str(path))
        return sitk.ReadImage(tmp.name, imageIO="NiftiImageIO")


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise ImageNotFoundError(
            f"image file not found: {p}. Check the path in the manifest (paths are "
            "relative to the manifest's folder)."
        )
    if p.is_file() and not p.name.lower().endswith(SUPPORTED_SUFFIXES):
        raise UnsupportedFormatError(
            f"unsupported image format: {p.name}. Supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)}, or a folder holding one DICOM series."
        )
    if p.is_file() and p.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti_complete(p)
    return p


def _dicom_files(folder: Path, series_uid: str | None) -> list[str]:
    reader = sitk.ImageSeriesReader
    uids = list(reader.GetGDCMSeriesIDs(str(folder)))
    if not uids:
        raise ImageReadError(
            f"no DICOM series found in folder {folder}. Point the manifest at a folder "
            "holding the .dcm files of one series, or at an image file."
        )
    if series_uid is None:
        if len(uids) > 1:
            raise ImageReadError(
                f"folder {folder} holds {len(uids)} DICOM series ({', '.join(uids)}); "
                "put each series in its own folder or pass series_uid."
            )
        series_uid = uids[0]
    elif series_uid not in uids:
        raise ImageReadError(f"series {series_uid} not in {folder}; found {', '.join(uids)}")
    return list(reader.GetGDCMSeriesFileNames(str(folder), series_uid))


def read_image(path: str | os.PathLike[str], *, series_uid: str | None = None) -> sitk.Image:
    """Read an image file, or a folder holding one DICOM series.

    Parameters
    ----------
    path
        ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``, ``.mha``/``.mhd``, ``.dcm``, or a folder of
        DICOM slices.
    series_uid
        Which series to read when a DICOM folder holds several.

    Returns
    -------
    SimpleITK.Image

    Raises
    ------
    ImageNotFoundError
        The path does not exist.
    UnsupportedFormatError
        The file extension is not supported.
    ImageReadError
        The file is corrupt or not an image.
    """
    p = _check_path(path)
    try:
        if p.is_dir():
            series = sitk.ImageSeriesReader()
            series.SetFileNames(_dicom_files(p, series_uid))
            return series.Execute()
        if p.name.lower().endswith(".nii.gz") and p.stat().st_size <= NIFTI_GZ_FAST_MAX_BYTES:
            return _read_nifti_gz(p)
        return sitk.ReadImage(str(p))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ImageReadError(
            f"cannot read image {p}: {first}. The file may be corrupt or truncated; "
            "re-export or re-convert it."
        ) from exc


def read_geometry(path: str | os.PathLike[str]) -> tuple[Geometry, str]:
    """Read only the header of an image: its :class:`Geometry` and pixel type.

    Much faster than :func:`read_image` for large volumes. A DICOM folder is read fully.

    Raises
    ------
    ImageNotFoundError, UnsupportedFormatError, ImageReadError
        As :func:`read_image`.
    """
    p = _check_path(path)
    if p.is_dir():
        image = read_image(p)
        return Geometry.of(image), image.GetPixelIDTypeAsString()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageReadError(
            f"cannot read the header of {p}: the file may be corrupt or truncated; "
            "re-export or re-convert it."
        ) from exc
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    return Geometry.of(reader), pixel


def write_image(image: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write ``image`` (format from the extension), creating parent folders.

    The write is atomic: the file appears complete or not at all.
    """
    p = Path(path)
    if not p.name.lower().endswith(SUPPORTED_SUFFIXES[:-1]):
        raise UnsupportedFormatError(f"cannot write {p.name}: use .nii.gz, .nrrd or .mha")
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if p.name.lower().endswith(".nii.gz") else p.suffix
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}{suffix}")
    sitk.WriteImage(image, str(tmp), compress)
    os.replace(tmp, p)
    return p
