"""Provenance: content hashes, configuration hashes and library versions.

Every output hybridrad writes carries these so a result can be traced to the exact
inputs, settings and software that produced it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

#: Packages whose versions can change a result.
TRACKED_PACKAGES: tuple[str, ...] = (
    "hybridrad",
    "numpy",
    "scipy",
    "pandas",
    "SimpleITK",
    "pyradiomics",
    "PyWavelets",
    "torch",
    "monai",
    "scikit-learn",
    "scikit-survival",
    "lifelines",
    "xgboost",
    "xgboost-cpu",
)


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes (a DICOM folder: of its sorted files).

    Parameters
    ----------
    path
        A file, or a folder whose files are hashed in sorted order with their names.
    chunk_size
        Bytes read at a time.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk_size):
                digest.update(block)
    return digest.hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, the form that is hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a configuration mapping (first 16 hex digits)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def library_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (those not installed are left out), plus Python."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
