"""Cohort manifest: which images, masks and clinical data make up a study.

A manifest is a CSV with one row per case:

- ``case_id``: Unique case identifier (required).
- ``mask``: Optional path to the segmentation mask; its values are read with a
  :class:`LabelMap`.
- ``site``: Optional acquisition site / scanner (used by harmonisation).
- any other column: One image sequence each; the column name is the sequence name (``t1``,
  ``t1c``, ``t2``, ``flair``, ``ct`` ...). Pass ``sequences=`` to pick some and keep the
  rest as metadata.

Paths are relative to the CSV's folder (absolute paths are kept as they are); a relative
path that climbs out of that folder (``../``) is refused unless ``allow_outside=True``
(``--allow-outside``). A file path is an image (NIfTI, NRRD, MHA, DICOM file); a folder
path is a DICOM series.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.errors import (
    ClinicalError,
    DuplicateCaseError,
    EmptyInputError,
    HybridradError,
    ManifestError,
    PathEscapeError,
)
from hybridrad.io.images import NONFINITE_MODES, check_nonfinite_mode, read_image
from hybridrad.io.labels import LabelMap, load_label_map

CASE_ID = "case_id"
MASK = "mask"
SITE = "site"
#: Optional column: a brain mask (1 = brain) per case, as ``hybridrad preprocess`` writes;
#: radiomics settings ``normalizeRegion: brain`` z-score inside it.
BRAIN_MASK = "brain_mask"
RESERVED_COLUMNS = (CASE_ID, MASK, SITE, BRAIN_MASK)

if TYPE_CHECKING:  # avoids an import cycle at run time
    from hybridrad.io.validate import ValidationReport

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# Device names Windows reserves in any folder, with or without an extension.
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
_MAX_STEM = 100


def safe_filename(case_id: str) -> str:
    """A file name (without extension) for ``case_id`` that stays inside its folder.

    Characters other than ``A-Z a-z 0-9 . _ -`` become ``_``; the name never starts or
    ends with ``.``, is never empty, never a Windows device name (``CON``, ``nul.txt`` ...)
    and at most 109 characters long. An id that needed any change gets ``-`` and the
    first 8 hex digits of its sha256 appended, so two different ids never share a
    name; an id that is already safe is returned unchanged.

    Every path built from a case id (masks, overlays ...) goes through this function.

    Examples
    --------
    >>> safe_filename("BraTS_001")
    'BraTS_001'
    >>> safe_filename("../../x")
    '_._.._x-9cdf6a50'
    >>> safe_filename("a/b") != safe_filename("a_b")
    True
    """
    text = str(case_id)
    stem = _UNSAFE.sub("_", text)
    if stem.startswith("."):
        stem = "_" + stem[1:]
    if stem.endswith("."):
        stem = stem[:-1] + "_"
    if stem.split(".")[0].lower() in _RESERVED_NAMES:
        stem = "_" + stem
    changed = stem != text or not stem
    if len(stem) > _MAX_STEM:
        stem, changed = stem[:_MAX_STEM], True
    if not changed:
        return stem
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem or '_'}-{digest}"


@dataclass(frozen=True)
class Case:
    """One row of a manifest, with absolute paths.

    ``images`` maps sequence name -> path and leaves out sequences whose cell is empty.
    ``nonfinite`` says what reading does with NaN/Inf voxels (see
    :func:`~hybridrad.io.images.read_image`): ``"error"`` or ``"replace"``.
    """

    case_id: str
    images: dict[str, Path]
    mask: Path | None = None
    site: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    nonfinite: str = "error"
    brain_mask: Path | None = None

    def row(self) -> dict[str, str]:
        """The case as a manifest row of absolute paths: ``case_id``, one column per
        sequence, ``mask`` and ``site`` when the case has them."""
        out = {CASE_ID: self.case_id, **{s: str(p.resolve()) for s, p in self.images.items()}}
        if self.mask is not None:
            out[MASK] = str(self.mask.resolve())
        if self.site is not None:
            out["site"] = self.site
        if self.brain_mask is not None:
            out[BRAIN_MASK] = str(self.brain_mask.resolve())
        return out

    def read(self, sequence: str, *, allow_2d: bool = False) -> sitk.Image:
        """Read (and check, see :func:`~hybridrad.io.images.read_image`) one sequence."""
        if sequence not in self.images:
            raise ManifestError(
                f"case {self.case_id!r} has no {sequence!r} image; it has "
                f"{sorted(self.images)}. Fill the {sequence!r} column of the manifest."
            )
        try:
            return read_image(self.images[sequence], nonfinite=self.nonfinite, allow_2d=allow_2d)
        except HybridradError as exc:
            raise _in_case(exc, self.case_id, sequence) from exc

    def read_mask(self, *, allow_2d: bool = False) -> sitk.Image:
        """Read this case's mask (no warning when it is blank: an empty region is an
        :class:`~hybridrad.errors.EmptyROIError` where it matters)."""
        if self.mask is None:
            raise ManifestError(
                f"case {self.case_id!r} has no mask. Fill the 'mask' column of the manifest "
                "or run `hybridrad segment` first."
            )
        try:
            return read_image(
                self.mask, nonfinite=self.nonfinite, allow_2d=allow_2d, warn_constant=False
            )
        except HybridradError as exc:
            raise _in_case(exc, self.case_id, MASK) from exc

    def read_brain_mask(self) -> sitk.Image:
        """Read this case's brain mask (the ``brain_mask`` column)."""
        if self.brain_mask is None:
            raise ManifestError(
                f"case {self.case_id!r} has no brain mask. Run `hybridrad preprocess` with a "
                "brain_extraction step (e.g. --config glioma_mri), or fill the 'brain_mask' "
                "column of the manifest."
            )
        try:
            return read_image(self.brain_mask, nonfinite=self.nonfinite, warn_constant=False)
        except HybridradError as exc:
            raise _in_case(exc, self.case_id, BRAIN_MASK) from exc


def _in_case(exc: HybridradError, case_id: str, column: str) -> HybridradError:
    """The same kind of error, its message prefixed with the case and the column."""
    return type(exc)(f"case {case_id!r}, column {column!r}: {exc}")


def _resolve(
    root: Path, cell: object, *, case_id: str, column: str, allow_outside: bool
) -> Path | None:
    """The path of a manifest cell (``None`` when empty), relative to ``root``.

    A relative path whose normalised form (``..`` folded, symlinks not followed) is not
    under ``root`` raises :class:`PathEscapeError` unless ``allow_outside``.
    """
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return None
    text = str(cell).strip()
    if not text:
        return None
    p = Path(text).expanduser()
    if p.is_absolute():
        return p
    full = root / p
    if not allow_outside:
        base = os.path.abspath(root)
        target = os.path.abspath(full)
        if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
            raise PathEscapeError(
                f"case {case_id!r}, column {column!r}: path {text!r} climbs out of the "
                f"manifest's folder {base} (it points to {target}). Move the file under "
                "that folder, write its absolute path, or pass --allow-outside "
                "(allow_outside=True) if reading outside the folder is intended."
            )
    return full


def _row_list(rows: Sequence[int]) -> str:
    """``row 3``, ``row 3 and row 7``, ``row 1, row 2 and row 9``."""
    named = [f"row {r}" for r in rows]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


class Cohort:
    """The cases of a study: images, masks, label map and (optionally) clinical data.

    Build one with :meth:`from_csv` or :meth:`from_frame`; check it with
    :meth:`validate`, which reports every problem at once.

    Examples
    --------
    >>> cohort = Cohort.from_csv("manifest.csv", label_map="brats")  # doctest: +SKIP
    >>> report = cohort.validate()  # doctest: +SKIP
    >>> report.raise_if_failed()  # doctest: +SKIP
    """

    def __init__(
        self,
        table: pd.DataFrame,
        root: str | os.PathLike[str],
        *,
        sequences: Sequence[str] | None = None,
        label_map: str | os.PathLike[str] | LabelMap = "binary",
        clinical: pd.DataFrame | None = None,
        source: Path | None = None,
        nonfinite: str = "error",
        allow_outside: bool = False,
    ) -> None:
        if CASE_ID not in table.columns:
            raise ManifestError(
                f"manifest {source or ''} has no {CASE_ID!r} column (columns: "
                f"{list(table.columns)}). Add a {CASE_ID!r} column with one id per row."
            )
        candidates = [c for c in table.columns if c not in RESERVED_COLUMNS]
        seqs = candidates if sequences is None else list(sequences)
        if not candidates or not seqs:
            raise ManifestError(
                f"manifest {source or ''} has no image columns: add one column per sequence "
                "(e.g. t1, t1c, t2, flair, ct) holding image paths"
            )
        missing = [s for s in seqs if s not in table.columns]
        if missing:
            raise ManifestError(
                f"manifest {source or ''} has no column for sequence(s) {missing}; "
                f"columns are {list(table.columns)}"
            )
        self.table = table.reset_index(drop=True)
        where = f"manifest {source}" if source is not None else "the manifest"
        ids = self.table[CASE_ID]
        blank = ids.isna() | (ids.astype(str).str.strip() == "")
        if blank.any():
            rows = [int(i) + 1 for i in np.flatnonzero(blank.to_numpy())]
            raise EmptyInputError(
                f"{where}: {_row_list(rows[:10])}{' ...' if len(rows) > 10 else ''} "
                f"{'has' if len(rows) == 1 else 'have'} no {CASE_ID} (rows counted from 1, "
                "after the header). Give every row a unique case id, or delete the row."
            )
        self.table[CASE_ID] = ids.astype(str).str.strip()
        repeated = self.table.groupby(CASE_ID, sort=False).indices
        dups = {cid: [int(i) + 1 for i in rows] for cid, rows in repeated.items() if len(rows) > 1}
        if dups:
            listed = "; ".join(f"{cid!r} in {_row_list(rows)}" for cid, rows in dups.items())
            raise DuplicateCaseError(
                f"{where}: case ids must be unique, but {listed} (rows counted from 1, after "
                "the header). Rename or remove the repeated rows."
            )
        self.root = Path(root)
        self.sequences: tuple[str, ...] = tuple(seqs)
        self.label_map = load_label_map(label_map)
        self.clinical = clinical
        self.source = source
        self.nonfinite = check_nonfinite_mode(nonfinite)
        self.allow_outside = bool(allow_outside)
        metadata_cols = [c for c in candidates if c not in self.sequences]
        self._cases = [self._row_to_case(row, metadata_cols) for row in self.table.itertuples()]

    def _row_to_case(self, row: object, metadata_cols: list[str]) -> Case:
        data = row._asdict()  # type: ignore[attr-defined]
        # itertuples renames columns that are not identifiers; map by position instead.
        values = dict(zip(self.table.columns, list(data.values())[1:], strict=True))
        cid = str(values[CASE_ID])

        def resolve(column: str) -> Path | None:
            return _resolve(
                self.root,
                values.get(column),
                case_id=cid,
                column=column,
                allow_outside=self.allow_outside,
            )

        images = {s: p for s in self.sequences if (p := resolve(s)) is not None}
        site = values.get(SITE)
        return Case(
            case_id=cid,
            images=images,
            mask=resolve(MASK),
            site=None if site is None or pd.isna(site) else str(site),
            metadata={c: str(values[c]) for c in metadata_cols},
            nonfinite=self.nonfinite,
            brain_mask=resolve(BRAIN_MASK),
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        sequences: Sequence[str] | None = None,
        label_map: str | os.PathLike[str] | LabelMap = "binary",
        clinical: str | os.PathLike[str] | pd.DataFrame | None = None,
        nonfinite: str = "error",
        allow_outside: bool = False,
    ) -> Cohort:
        """Read a manifest CSV; paths in it are relative to its folder.

        Parameters
        ----------
        path
            The manifest CSV.
        sequences
            Which columns are image sequences (default: every column but
            ``case_id``, ``mask`` and ``site``).
        label_map
            A preset name (``brats``, ``brats2015``, ``brats2012``, ``brats2023``,
            ``binary``), a YAML file, or a :class:`LabelMap`.
        clinical
            A clinical CSV (or DataFrame) joined on ``case_id``.
        nonfinite
            What reading an image does with NaN/Inf voxels: ``"error"`` (default) or
            ``"replace"`` (with the image's minimum finite value, with a warning).
        allow_outside
            Accept relative paths that climb out of the manifest's folder (``../``).

        Raises
        ------
        FileNotFoundError
            The CSV does not exist.
        EmptyInputError
            The CSV is empty (0 bytes, or a header without rows), or a row has no case id.
        DuplicateCaseError
            A case id appears in more than one row (the rows are named).
        PathEscapeError
            A relative path climbs out of the manifest's folder (without ``allow_outside``).
        ManifestError
            Not a readable CSV, no ``case_id`` column, or no sequence columns.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"manifest not found: {p}")
        table = _read_user_csv(
            p,
            "manifest",
            "cases",
            f"a header row ({CASE_ID}, one column per sequence, optionally {MASK})",
            EmptyInputError,
            ManifestError,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
        if isinstance(clinical, pd.DataFrame) or clinical is None:
            clin = clinical
        else:
            clin = read_clinical(clinical)
        return cls(
            table,
            p.resolve().parent,
            sequences=sequences,
            label_map=label_map,
            clinical=clin,
            source=p,
            nonfinite=nonfinite,
            allow_outside=allow_outside,
        )

    # --- container protocol -------------------------------------------------------

    @property
    def cases(self) -> list[Case]:
        """All cases, in manifest order."""
        return list(self._cases)

    @property
    def case_ids(self) -> list[str]:
        """Case ids in manifest order."""
        return [c.case_id for c in self._cases]

    @property
    def has_masks(self) -> bool:
        """Whether every case has a mask path."""
        return all(c.mask is not None for c in self._cases)

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self._cases)

    def __getitem__(self, case_id: str) -> Case:
        for case in self._cases:
            if case.case_id == case_id:
                return case
        raise KeyError(f"case {case_id!r} is not in the manifest")

    def __repr__(self) -> str:
        return (
            f"Cohort({len(self)} cases, sequences={list(self.sequences)}, "
            f"label_map={self.label_map.name!r}, clinical={self.clinical is not None})"
        )

    def subset(self, case_ids: Sequence[str]) -> Cohort:
        """A cohort with only ``case_ids`` (in the given order)."""
        order = {cid: i for i, cid in enumerate(case_ids)}
        table = self.table[self.table[CASE_ID].isin(order)].copy()
        table = table.sort_values(CASE_ID, key=lambda s: s.map(order))
        return Cohort(
            table,
            self.root,
            sequences=self.sequences,
            label_map=self.label_map,
            clinical=self.clinical,
            source=self.source,
            nonfinite=self.nonfinite,
            allow_outside=self.allow_outside,
        )

    def validate(
        self,
        *,
        time: str | None = None,
        event: str | None = None,
        tolerance: float = 1e-3,
        check_mask_values: bool = True,
        jobs: int = 4,
    ) -> ValidationReport:
        """Check the whole cohort and report every problem found.

        See :func:`hybridrad.io.validate.validate_cohort`.
        """
        from hybridrad.io.validate import validate_cohort

        return validate_cohort(
            self,
            time=time,
            event=event,
            tolerance=tolerance,
            check_mask_values=check_mask_values,
            jobs=jobs,
        )


def _read_user_csv(
    p: Path,
    what: str,
    nothing: str,
    header: str,
    empty: type[Exception],
    bad: type[Exception],
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Read a CSV a user wrote (manifest, clinical table), refusing what pandas would
    misread: an empty file, a header without rows (``empty``), text that is not UTF-8 CSV
    and rows with more fields than the header (``bad``); messages name ``what`` and ``p``
    and describe the ``header`` to write."""
    none = f"{what} {p} has no {nothing}"
    if p.stat().st_size == 0:
        raise empty(f"{none}: the file is empty (0 bytes). Write {header} and one row per case.")
    try:
        table = pd.read_csv(p, **read_kwargs)
    except pd.errors.EmptyDataError as exc:
        raise empty(
            f"{none}: the file holds no header and no rows. Write {header} and one row per case."
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise bad(
            f"cannot read {what} {p} as CSV: {exc}. Save it as a UTF-8 CSV with {header} and "
            "one row per case."
        ) from exc
    if not isinstance(table.index, pd.RangeIndex):  # pandas took extra fields as an index
        raise bad(
            f"cannot read {what} {p} as CSV: its rows hold more fields than its header names "
            f"({', '.join(map(str, table.columns))}); a cell holds an unquoted comma, or the "
            "header lacks column names. Quote such cells, or name every column."
        )
    if table.empty:
        raise empty(
            f"{none}: it holds a header ({', '.join(map(str, table.columns))}) but no rows. "
            "Add one row per case."
        )
    return table


def read_clinical(path: str | os.PathLike[str], *, id_column: str = CASE_ID) -> pd.DataFrame:
    """Read a clinical CSV, indexed by ``case_id`` (as strings).

    Values are not checked here; :func:`hybridrad.io.validate.validate_clinical` does that
    and reports every problem at once.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ClinicalError
        The file is empty (0 bytes, or a header without rows), not a readable CSV, or the id
        column is missing.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"clinical table not found: {p}")
    table = _read_user_csv(
        p,
        "clinical table",
        "rows",
        f"a header row ({id_column} and the clinical columns)",
        ClinicalError,
        ClinicalError,
        dtype={id_column: str},  # ids as text: "007" stays "007"
    )
    if id_column not in table.columns:
        raise ClinicalError(
            f"clinical table {p} has no {id_column!r} column (columns: {list(table.columns)}); "
            "add it, or name the id column with --id-column NAME (id_column= in Python)"
        )
    table[id_column] = table[id_column].astype(str).str.strip()
    table = table.rename(columns={id_column: CASE_ID}).set_index(CASE_ID)
    table.attrs["source"] = str(p)
    return table


def write_manifest(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a manifest CSV with image paths made relative to its folder.

    ``table`` holds ``case_id`` and path columns (absolute or relative to the current
    directory); cells that are not existing paths (``site``, metadata) are left as they are.
    A file outside the manifest's folder is written as its absolute path (never ``../``),
    so the manifest reads back without ``allow_outside``.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.resolve().parent
    rel = table.copy()
    for col in rel.columns:
        if col in (CASE_ID, SITE):
            continue

        def relative(cell: object) -> object:
            if isinstance(cell, (str, Path)) and str(cell) and Path(cell).exists():
                full = Path(cell).resolve()
                try:
                    rel = os.path.relpath(full, base)
                except ValueError:  # another drive (Windows)
                    return str(full)
                if rel == os.pardir or rel.startswith(os.pardir + os.sep):
                    return str(full)
                return rel
            return cell

        rel[col] = rel[col].map(relative)
    tmp = out.with_name(f".{out.name}.tmp")
    rel.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out


# --- command-line flags shared by every command that reads a manifest ---------------------


def comma_list(text: str | None) -> list[str]:
    """The items of a comma-separated command-line value, stripped, empty ones left out
    (``[]`` for ``None`` or an empty string)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """``--nonfinite`` and ``--allow-outside``: how a manifest's images are read."""
    p.add_argument(
        "--nonfinite",
        choices=NONFINITE_MODES,
        default="error",
        help="NaN/Inf voxels: error (default) stops the case; replace sets them to the "
        "image's smallest finite value, with a warning naming the file",
    )
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="let relative manifest paths climb out of the manifest's folder (../)",
    )


def cohort_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Cohort.from_csv`` that the input flags set."""
    return {
        "nonfinite": getattr(args, "nonfinite", "error"),
        "allow_outside": getattr(args, "allow_outside", False),
    }
