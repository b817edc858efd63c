"""Checks run before any case is computed: can the outputs be written, does the device exist.

A run that computes every case and then fails to write its table loses the work; these
checks move such failures to the first second. Each raises a specific exception
(:class:`~hybridrad.errors.OutputPathError`, :class:`~hybridrad.errors.DeviceError`)
naming the path or device and the fix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hybridrad.errors import OutputPathError


def _writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and parents) if needed and prove a file can be written in it."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputPathError(
            f"{what}: {existing} is a file, so {folder} cannot be a folder; choose another "
            "output path"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".hybridrad-write-test-"):
            pass
    except OSError as exc:
        raise OutputPathError(
            f"{what}: cannot write in folder {folder} ({exc.strerror or exc}); choose a "
            "writable output path or fix the folder's permissions"
        ) from exc


def output_file(
    path: str | os.PathLike[str], suffixes: Sequence[str], *, what: str = "--out"
) -> Path:
    """Check that ``path`` can be written as a file of one of ``suffixes``.

    Raises
    ------
    OutputPathError
        The suffix does not match the format written, ``path`` is a folder, or its folder
        is not writable.

    Examples
    --------
    >>> output_file("features.csv", (".parquet",))
    Traceback (most recent call last):
    ...
    hybridrad.errors.OutputPathError: --out features.csv: this command writes .parquet; name the file features.parquet
    """
    p = Path(path)
    name = p.name.lower()
    if not any(name.endswith(s) for s in suffixes):
        stem = p.name[: -len(p.suffix)] if p.suffix else p.name
        raise OutputPathError(
            f"{what} {p}: this command writes {' or '.join(suffixes)}; name the file "
            f"{stem}{suffixes[0]}"
        )
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a folder; give a file name ending {suffixes[0]}")
    _writable_folder(p.parent if str(p.parent) else Path("."), f"{what} {p}")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{what} {p} exists and is read-only; remove it or choose another")
    return p


def output_folder(path: str | os.PathLike[str], *, what: str = "--out") -> Path:
    """Check that ``path`` is (or can be created as) a writable folder.

    Raises
    ------
    OutputPathError
        ``path`` is a file, or the folder cannot be written.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(
            f"{what} {p} is a file, but this command writes a folder; choose a folder path"
        )
    _writable_folder(p, f"{what} {p}")
    return p


def check_device(name: str) -> str:
    """The torch device ``name`` resolves to, or :class:`~hybridrad.errors.DeviceError`."""
    from hybridrad.features.deep import resolve_device

    return resolve_device(name)
