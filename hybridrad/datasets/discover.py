"""Write manifests for common public dataset layouts (BraTS-style folders, TCGA-LGG)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from hybridrad.errors import ManifestError
from hybridrad.io.images import SUPPORTED_SUFFIXES
from hybridrad.io.manifest import CASE_ID, MASK

#: tokens in a file name -> the sequence (or mask) they name; first match wins.
_TOKENS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"brainmask", "brain"}), ""),  # brain masks are not tumour masks
    (frozenset({"seg", "truth", "gt", "label", "labels", "otmulticlass", "mask"}), MASK),
    (frozenset({"flair"}), "flair"),
    (frozenset({"t1c", "t1ce", "t1gd", "t1post", "t1contrast"}), "t1c"),
    (frozenset({"t1", "t1n", "t1pre"}), "t1"),
    (frozenset({"t2", "t2w"}), "t2"),
)


def _strip_suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if lower.endswith(suffix):
            return lower[: -len(suffix)]
    return None


def classify_file(name: str) -> str | None:
    """The sequence (or ``"mask"``) a BraTS-style file name denotes, else ``None``.

    Examples
    --------
    >>> classify_file("Brats18_2013_2_1_t1ce.nii.gz")
    't1c'
    >>> classify_file("Flair_subtrMeanDivStd.nii.gz")
    'flair'
    >>> classify_file("BRATS_HG0015_truth.mha")
    'mask'
    >>> classify_file("brainmask.nii.gz") is None
    True
    """
    stem = _strip_suffix(name)
    if stem is None:
        return None
    tokens = set(re.split(r"[_\-. ]+", stem))
    for keys, target in _TOKENS:
        if tokens & keys:
            return target or None
    return None


def discover_brats(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Manifest table for a BraTS-style folder: one sub-folder per case.

    Each case folder holds one file per sequence and optionally a label file; names are
    matched on tokens (``flair``, ``t1``, ``t1ce``/``t1c``, ``t2``, ``seg``/``truth``/``GT``
    ...). The case id is the folder name. Paths are absolute; write the table with
    :func:`hybridrad.io.write_manifest`.

    Raises
    ------
    FileNotFoundError
        ``folder`` does not exist.
    ManifestError
        No case folder was found, or a case holds two files for one sequence.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    rows = []
    for case_dir in sorted(p for p in root.rglob("*") if p.is_dir()) or [root]:
        found: dict[str, str] = {}
        for f in sorted(case_dir.iterdir()):
            kind = classify_file(f.name) if f.is_file() else None
            if kind is None:
                continue
            if kind in found:
                raise ManifestError(
                    f"case folder {case_dir}: both {Path(found[kind]).name} and {f.name} look "
                    f"like {kind!r}; rename one or write the manifest by hand"
                )
            found[kind] = str(f.resolve())
        if any(k != MASK for k in found):
            rows.append({CASE_ID: case_dir.name, **found})
    if not rows:
        raise ManifestError(
            f"no case folders with recognisable image files under {root}; expected "
            "sub-folders holding e.g. *_flair.nii.gz, *_t1.nii.gz, *_seg.nii.gz"
        )
    table = pd.DataFrame(rows)
    order = [CASE_ID, *(s for s in ("t1", "t1c", "t2", "flair") if s in table)]
    if MASK in table:
        order.append(MASK)
    return table[order]


def discover_lgg_tcga(folder: str | os.PathLike[str]) -> tuple[pd.DataFrame, Path]:
    """Manifest table for the TCGA-LGG layout ``cases/<id>/{t1,t1c,flair,mask}.nii.gz``.

    Returns
    -------
    manifest : pandas.DataFrame
        Absolute paths, columns ``case_id, t1, t1c, flair, mask``.
    clinical : pathlib.Path
        The cohort's ``clinical.csv``.
    """
    root = Path(folder)
    cases = root / "cases"
    if not cases.is_dir():
        raise FileNotFoundError(f"{root} has no 'cases' folder; is this the lgg-tcga layout?")
    rows = [
        {
            CASE_ID: case_dir.name,
            **{
                name: str((case_dir / f"{name}.nii.gz").resolve())
                for name in ("t1", "t1c", "flair", MASK)
            },
        }
        for case_dir in sorted(p for p in cases.iterdir() if p.is_dir())
    ]
    if not rows:
        raise ManifestError(f"no case folders in {cases}")
    return pd.DataFrame(rows), root / "clinical.csv"
