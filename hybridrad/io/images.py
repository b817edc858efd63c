"""Image readers and writers (NIfTI, NRRD, MetaImage, DICOM series) through SimpleITK.

Every image read here is checked before it is used: the header describes one plausible 3D
scalar volume (:func:`check_header`), NIfTI files hold all the data their header promises,
no voxel is NaN or infinite (ITK's NIfTI reader silently turns those into 0, so float NIfTI
files are scanned in their raw bytes), and an image holding a single value is named in a
:class:`~hybridrad.errors.ConstantImageWarning`.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import types
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hybridrad.errors import (
    ConstantImageWarning,
    HybridradWarning,
    ImageDimensionError,
    ImageHeaderError,
    ImageNotFoundError,
    ImageReadError,
    NonFiniteImageError,
    UnsupportedFormatError,
)

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


# --- header sanity ------------------------------------------------------------------------

#: Voxel spacing (mm) a header may give per axis; outside it the header is taken to be
#: broken (or in other units): no scanner images at 1 micrometre or 1 metre voxels.
SPACING_RANGE_MM: tuple[float, float] = (1e-3, 1e3)
#: The most voxels one image may hold (2**31: 8 GiB as float32) ...
MAX_VOXELS = 2**31
#: ... and the longest axis. Beyond either the header is taken to be broken.
MAX_AXIS = 10**5


def _values(values: tuple[float, ...]) -> str:
    """``(1, 1e-06, 1)``: header values as a reader would write them."""
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def _check_size(size: tuple[int, ...], path: Path) -> None:
    n = int(np.prod([max(int(s), 1) for s in size], dtype=np.float64))
    if n > MAX_VOXELS or any(int(s) > MAX_AXIS for s in size):
        raise ImageHeaderError(
            f"image {path}: its header describes a grid of size {tuple(size)} ({n:,} voxels); "
            f"more than {MAX_VOXELS:,} voxels or an axis over {MAX_AXIS:,} voxels means a "
            "broken header. Check the file (re-export or re-convert it); nothing was read."
        )


def check_header(
    geometry: Geometry, components: int, path: str | os.PathLike[str], *, allow_2d: bool = False
) -> None:
    """Refuse a header that does not describe one plausible 3D scalar volume.

    Called on the header alone (before any voxel is read) by :func:`read_image` and
    :func:`read_geometry`.

    Parameters
    ----------
    geometry
        The header's grid.
    components
        Values per voxel (1 for a scalar image; 3 for RGB ...).
    path
        The file, named in the messages.
    allow_2d
        Accept a 2D image too (a 3D image with a size-1 axis is always accepted).

    Raises
    ------
    ImageDimensionError
        Not 3D (a 2D slice, a 4D series), or several components per voxel.
    ImageHeaderError
        Spacing outside :data:`SPACING_RANGE_MM` or not finite; more than
        :data:`MAX_VOXELS` voxels or an axis over :data:`MAX_AXIS`; a direction matrix
        or origin that is singular or not finite.

    Examples
    --------
    >>> g = Geometry((10, 10, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    >>> check_header(g, 1, "t1.nii.gz")
    >>> check_header(g, 3, "rgb.nii.gz")
    Traceback (most recent call last):
    ...
    hybridrad.errors.ImageDimensionError: image rgb.nii.gz has 3 components per voxel ...
    """
    p = Path(path)
    size = geometry.size
    dim = len(size)
    if dim > 3:
        raise ImageDimensionError(
            f"image {p} is {dim}D (size {size}); hybridrad reads one 3D volume per file. "
            f"Split the {dim}D series into one 3D volume per sequence (one file per time "
            "point, echo or sequence) and list each in its own manifest column."
        )
    if dim < 3 and not (dim == 2 and allow_2d):
        raise ImageDimensionError(
            f"image {p} is {dim}D (size {size}); give a 3D volume (a single slice can be "
            "saved as a 3D volume one voxel deep), or, for 2D radiomics, a config that "
            "sets 'force2D: true'."
        )
    if components != 1:
        raise ImageDimensionError(
            f"image {p} has {components} components per voxel (RGB or vector image); "
            "convert it to one scalar volume per sequence (one file per channel or "
            "component) and list each in its own manifest column."
        )
    _check_size(size, p)
    lo, hi = SPACING_RANGE_MM
    spacing = np.asarray(geometry.spacing, dtype=np.float64)
    if not (np.isfinite(spacing).all() and ((spacing >= lo) & (spacing <= hi)).all()):
        raise ImageHeaderError(
            f"image {p}: voxel spacing {_values(geometry.spacing)} mm is not finite or outside "
            f"[{lo:g}, {hi:g}] mm per axis; the header is broken or in other units. Fix the "
            "spacing in the header (re-export, or set it with SimpleITK's SetSpacing)."
        )
    if not np.isfinite(np.asarray(geometry.origin, dtype=np.float64)).all():
        raise ImageHeaderError(
            f"image {p}: origin {_values(geometry.origin)} is not finite; the header is broken. "
            "Re-export the image."
        )
    direction = np.asarray(geometry.direction, dtype=np.float64)
    if direction.size == dim * dim:
        matrix = direction.reshape(dim, dim)
        if not np.isfinite(matrix).all() or abs(float(np.linalg.det(matrix))) < 1e-6:
            raise ImageHeaderError(
                f"image {p}: its direction matrix {_values(geometry.direction)} is singular or not "
                "finite, so voxel positions are undefined; the header's orientation is "
                "broken. Re-export the image with a valid orientation (qform/sform in NIfTI)."
            )


# --- NIfTI raw data -------------------------------------------------------------------------

#: NIfTI datatype codes of float voxels -> numpy type (without byte order).
_NIFTI_FLOATS = {16: "f4", 64: "f8"}


@dataclass(frozen=True)
class _NiftiLayout:
    """Where and how a NIfTI-1 file stores its voxels."""

    endian: str
    dims: tuple[int, ...]
    datatype: int
    bitpix: int
    vox_offset: int

    @property
    def n_voxels(self) -> int:
        return int(np.prod([max(d, 1) for d in self.dims], dtype=np.float64))

    @property
    def nbytes(self) -> int:
        return self.vox_offset + self.n_voxels * self.bitpix // 8

    @property
    def float_dtype(self) -> np.dtype | None:
        """The numpy type of float voxels (NaN/Inf possible), else ``None``."""
        code = _NIFTI_FLOATS.get(self.datatype)
        return None if code is None else np.dtype(self.endian + code)


def _nifti_layout(header: bytes) -> _NiftiLayout | None:
    """Parse a NIfTI-1 header (either byte order); ``None`` if it is not one.

    NIfTI-2 files are left to ITK (this SimpleITK build does not read them).
    """
    for endian in "<>":
        size = struct.unpack(endian + "i", header[:4])[0]
        if size == 348:
            n = struct.unpack(endian + "h", header[40:42])[0]
            dims = struct.unpack(endian + "7h", header[42:56])
            datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
            vox_offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
    else:
        return None
    if not 1 <= n <= 7:
        return None
    return _NiftiLayout(endian, tuple(int(d) for d in dims[:n]), datatype, bitpix, vox_offset)


def _check_nifti(path: Path) -> _NiftiLayout | None:
    """Check a NIfTI file's header and size before ITK reads it; return its layout.

    Raises :class:`ImageHeaderError` for an absurd grid (before anything is allocated) and
    :class:`ImageReadError` when the file holds less voxel data than its header promises
    (ITK reads such files silently: the missing voxels are garbage).
    """
    gz = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            header = fh.read(352)
        if len(header) < 348:
            raise ImageReadError(f"cannot read image {path}: the NIfTI header is truncated")
        layout = _nifti_layout(header)
        if layout is None:  # not NIfTI after all: leave it to ITK
            return None
        _check_size(layout.dims, path)
        expected = layout.nbytes
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
    return layout


@dataclass(frozen=True)
class _NonFinite:
    """Where the non-finite voxels of an image are (flat, in voxel order) and how many."""

    bad: npt.NDArray[np.bool_]
    n_nan: int
    n_inf: int


def _count_nonfinite(values: np.ndarray) -> _NonFinite | None:
    """The non-finite voxels of a float array, or ``None`` when all are finite.

    One vectorised pass in the common case (the sum of finite values is finite).
    """
    flat = values.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(flat)):
            return None
    bad = ~np.isfinite(flat)
    if not bad.any():  # the sum overflowed; every value is finite
        return None
    n_nan = int(np.count_nonzero(np.isnan(flat[bad])))
    return _NonFinite(bad, n_nan, int(np.count_nonzero(bad)) - n_nan)


def _scan_nifti(path: Path, layout: _NiftiLayout) -> _NonFinite | None:
    """Non-finite voxels in the raw data of a float NIfTI file (memory-mapped; a ``.gz``
    is inflated in chunks). ITK's reader turns them into 0, so the file is what counts."""
    dtype = layout.float_dtype
    if dtype is None:
        return None
    n = layout.n_voxels
    if path.name.lower().endswith(".gz"):
        parts: list[np.ndarray] = []
        n_nan = 0
        with _gzip_reader.open(path, "rb") as fh:
            fh.read(layout.vox_offset)
            chunk = (1 << 22) // dtype.itemsize * dtype.itemsize
            done = 0
            while done < n:
                data = fh.read(min(chunk, (n - done) * dtype.itemsize))
                block = np.frombuffer(data[: len(data) // dtype.itemsize * dtype.itemsize], dtype)
                if block.size == 0:
                    break
                part = _count_nonfinite(block)
                if part is not None:
                    parts.append(np.flatnonzero(part.bad) + done)
                    n_nan += part.n_nan
                done += block.size
        if not parts:
            return None
        bad = np.zeros(n, dtype=bool)
        bad[np.concatenate(parts)] = True
        return _NonFinite(bad, n_nan, int(np.count_nonzero(bad)) - n_nan)
    if path.stat().st_size < layout.vox_offset + n * dtype.itemsize:
        return None  # truncated: reported by _check_nifti
    raw = np.memmap(path, dtype=dtype, mode="r", offset=layout.vox_offset, shape=(n,))
    try:
        return _count_nonfinite(raw)
    finally:
        del raw


def _handle_nonfinite(
    image: sitk.Image, path: Path, found: _NonFinite | None, mode: str
) -> sitk.Image:
    """Raise for non-finite voxels, or (``mode="replace"``) replace them with the image's
    minimum finite value and warn once naming the file."""
    if found is None:
        return image
    total = int(np.prod(image.GetSize())) * image.GetNumberOfComponentsPerPixel()
    what = f"{found.n_nan} NaN and {found.n_inf} infinite voxel(s) (of {total})"
    if mode != "replace":
        raise NonFiniteImageError(
            f"image {path} holds {what}; fix the file, or pass --nonfinite replace "
            "(nonfinite='replace' in Python) to replace them with the image's minimum "
            "finite value"
        )
    arr = sitk.GetArrayFromImage(image)
    flat = arr.reshape(-1)
    if flat.size != found.bad.size:
        raise NonFiniteImageError(
            f"image {path} holds {what}, and its voxel layout is not the one its header "
            "describes, so they cannot be replaced safely; fix the file"
        )
    finite = flat[~found.bad]
    if finite.size == 0:
        raise NonFiniteImageError(
            f"image {path}: every voxel is NaN or infinite ({what}); there is no finite "
            "value to replace them with. Fix the file."
        )
    low = finite.min()
    flat[found.bad] = low
    out = sitk.GetImageFromArray(arr, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        out.SetMetaData(key, image.GetMetaData(key))
    warnings.warn(
        f"image {path}: replaced {what} with the image's minimum finite value {float(low):g} "
        "(--nonfinite replace)",
        HybridradWarning,
        stacklevel=3,
    )
    return out


def constant_value(image: sitk.Image) -> float | None:
    """The single value of an image holding one value only, else ``None``.

    Cheap for ordinary images: a strided sample nearly always differs already.

    Examples
    --------
    >>> constant_value(sitk.Image(4, 4, 4, sitk.sitkInt16))
    0.0
    >>> constant_value(sitk.GetImageFromArray(np.arange(8).reshape(2, 2, 2)))
    """
    flat = sitk.GetArrayViewFromImage(image).reshape(-1)
    if flat.size == 0:
        return None
    first = flat[0]
    if (flat[::97] != first).any() or (flat != first).any():
        return None
    return float(first)


def constant_message(path: str | os.PathLike[str], value: float, image: sitk.Image) -> str:
    """The message of a :class:`~hybridrad.errors.ConstantImageWarning` about ``path``."""
    return (
        f"image {path} holds a single value ({value:g}) in all "
        f"{int(np.prod(image.GetSize())):,} voxels (blank or saturated?); features of it "
        "are meaningless. Check the file, or drop it from the manifest."
    )


# --- reading ------------------------------------------------------------------------------

#: Compressed NIfTI files up to this size are decompressed once by Python's zlib before
#: ITK reads them (see :func:`_read_nifti_gz`); larger ones are handed to ITK directly.
NIFTI_GZ_FAST_MAX_BYTES = 512 * 1024**2


def _scratch_dir() -> str | None:
    """A memory-backed folder for short-lived files where there is one (else the temp dir)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _read_nifti_gz(path: Path, inspect: Callable[[Path], None] | None = None) -> sitk.Image:
    """Read a ``.nii.gz`` by decompressing it once into a scratch ``.nii`` that ITK reads.

    ITK's NIfTI reader inflates a gzip file twice (header pass, then data pass) with a
    slower inflate than ISA-L's (``isal``) or Python's zlib: a 64^3 int16 volume took
    5.7 ms that way against 2.0 ms here (``benchmarks/deep_throughput.py``). The voxels,
    geometry and metadata are ITK's own reading of the same bytes.

    ``inspect`` is called with the file ITK is about to read (the scratch ``.nii``, or the
    ``.gz`` itself when there is no scratch space), before it reads the voxels.
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
                    return _read_itk(path, inspect)
        try:
            tmp.flush()
        except OSError:
            return _read_itk(path, inspect)
        if inspect is not None:
            inspect(Path(tmp.name))
        return sitk.ReadImage(tmp.name, imageIO="NiftiImageIO")


def _read_itk(path: Path, inspect: Callable[[Path], None] | None) -> sitk.Image:
    if inspect is not None:
        inspect(path)
    return sitk.ReadImage(str(path))


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
    return p


def _is_nifti(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith((".nii", ".nii.gz"))


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


#: Pixel types that can hold NaN or infinite values.
_FLOAT_PIXELS = frozenset(
    {
        sitk.sitkFloat32,
        sitk.sitkFloat64,
        sitk.sitkVectorFloat32,
        sitk.sitkVectorFloat64,
    }
)


#: Values of ``read_image(nonfinite=...)`` (and ``--nonfinite``).
NONFINITE_MODES = ("error", "replace")


def check_nonfinite_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`NONFINITE_MODES`, else raise."""
    if mode not in NONFINITE_MODES:
        raise NonFiniteImageError(
            f"nonfinite={mode!r} is not one of {list(NONFINITE_MODES)}: 'error' refuses "
            "images with NaN/Inf voxels, 'replace' replaces them with the image's minimum "
            "finite value"
        )
    return mode


def read_image(
    path: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    nonfinite: str = "error",
    allow_2d: bool = False,
    warn_constant: bool = True,
) -> sitk.Image:
    """Read an image file, or a folder holding one DICOM series, and check it.

    Parameters
    ----------
    path
        ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``, ``.mha``/``.mhd``, ``.dcm``, or a folder of
        DICOM slices.
    series_uid
        Which series to read when a DICOM folder holds several.
    nonfinite
        ``"error"`` (default): NaN or infinite voxels raise :class:`NonFiniteImageError`.
        ``"replace"``: they are replaced with the image's minimum finite value, with one
        :class:`~hybridrad.errors.HybridradWarning` naming the file and the count. Float
        NIfTI files are checked in their raw bytes (ITK's reader turns NaN/Inf into 0);
        integer images cannot hold such values and are not scanned.
    allow_2d
        Accept a 2D image (default: 3D only; see :func:`check_header`).
    warn_constant
        Warn (:class:`~hybridrad.errors.ConstantImageWarning`) when every voxel holds the
        same value. Off for masks, where an empty mask is an error found elsewhere.

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
        The file is corrupt, truncated or not an image.
    ImageDimensionError, ImageHeaderError
        The header is not one plausible 3D scalar volume (see :func:`check_header`);
        raised before any voxel is read.
    NonFiniteImageError
        NaN or infinite voxels (with ``nonfinite="error"``).
    """
    check_nonfinite_mode(nonfinite)
    p = _check_path(path)
    layout = _check_nifti(p) if _is_nifti(p) else None
    found: list[_NonFinite | None] = []

    def inspect(f: Path) -> None:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(f))
        if f.name.lower().endswith(".nii"):
            reader.SetImageIO("NiftiImageIO")
        reader.ReadImageInformation()
        check_header(Geometry.of(reader), reader.GetNumberOfComponents(), p, allow_2d=allow_2d)
        if layout is not None:
            found.append(_scan_nifti(f, layout))

    try:
        if p.is_dir():
            series = sitk.ImageSeriesReader()
            series.SetFileNames(_dicom_files(p, series_uid))
            image = series.Execute()
            check_header(
                Geometry.of(image), image.GetNumberOfComponentsPerPixel(), p, allow_2d=allow_2d
            )
        elif p.name.lower().endswith(".nii.gz") and p.stat().st_size <= NIFTI_GZ_FAST_MAX_BYTES:
            image = _read_nifti_gz(p, inspect)
        else:
            image = _read_itk(p, inspect)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ImageReadError(
            f"cannot read image {p}: {first}. The file may be corrupt or truncated; "
            "re-export or re-convert it."
        ) from exc
    raw_scanned = layout is not None and layout.float_dtype is not None
    if not raw_scanned and image.GetPixelID() in _FLOAT_PIXELS:  # NRRD, MHA, DICOM, scaled ints
        found = [_count_nonfinite(sitk.GetArrayViewFromImage(image))]
    image = _handle_nonfinite(image, p, found[0] if found else None, nonfinite)
    if warn_constant:
        value = constant_value(image)
        if value is not None:
            warnings.warn(constant_message(p, value, image), ConstantImageWarning, stacklevel=2)
    return image


def read_geometry(path: str | os.PathLike[str], *, allow_2d: bool = False) -> tuple[Geometry, str]:
    """Read only the header of an image: its :class:`Geometry` and pixel type.

    Much faster than :func:`read_image` for large volumes. A DICOM folder is read fully.
    The header is checked as :func:`read_image` checks it (:func:`check_header`).

    Raises
    ------
    ImageNotFoundError, UnsupportedFormatError, ImageReadError
        As :func:`read_image`.
    ImageDimensionError, ImageHeaderError
        As :func:`read_image` (the header checks, without reading voxels).
    """
    p = _check_path(path)
    if p.is_dir():
        image = read_image(p, allow_2d=allow_2d, warn_constant=False)
        return Geometry.of(image), image.GetPixelIDTypeAsString()
    if _is_nifti(p):
        _check_nifti(p)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageReadError(
            f"cannot read the header of {p}: the file may be corrupt or truncated; "
            "re-export or re-convert it."
        ) from exc
    geometry = Geometry.of(reader)
    check_header(geometry, reader.GetNumberOfComponents(), p, allow_2d=allow_2d)
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    return geometry, pixel


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
