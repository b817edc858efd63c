"""Cohort manifest: which images, masks and clinical data make up a study.

A manifest is a CSV with one row per case:

``case_id``
    Unique case identifier (required).
``mask``
    Optional path to the segmentation mask; its values are read with a :class:`LabelMap`.
``site``
    Optional acquisition site / scanner (used by harmonisation).
any other column
    One image sequence each; the column name is the sequence name (``t1``, ``t1c``,
    ``t2``, ``flair``, ``ct`` ...). Pass ``sequences=`` to pick some and keep the rest as
    metadata.

Paths are relative to the CSV's folder (absolute paths are kept as they are). A file
path is an image (NIfTI, NRRD, MHA, DICOM file); a folder path is a DICOM series.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import SimpleITK as sitk

from hybridrad.errors import ClinicalError, ManifestError
from hybridrad.io.images import read_image
from hybridrad.io.labels import LabelMap, load_label_map

CASE_ID = "case_id"
MASK = "mask"
SITE = "site"
RESERVED_COLUMNS = (CASE_ID, MASK, SITE)

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
    """

    case_id: str
    images: dict[str, Path]
    mask: Path | None = None
    site: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def read(self, sequence: str) -> sitk.Image:
        """Read one sequence of this case."""
        if sequence not in self.images:
            raise ManifestError(
                f"case {self.case_id!r} has no {sequence!r} image; it has "
                f"{sorted(self.images)}. Fill the {sequence!r} column of the manifest."
            )
        return read_image(self.images[sequence])

    def read_mask(self) -> sitk.Image:
        """Read this case's mask."""
        if self.mask is None:
            raise ManifestError(
                f"case {self.case_id!r} has no mask. Fill the 'mask' column of the manifest "
                "or run `hybridrad segment` first."
            )
        return read_image(self.mask)


def _resolve(root: Path, cell: object) -> Path | None:
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return None
    text = str(cell).strip()
    if not text:
        return None
    p = Path(text).expanduser()
    return p if p.is_absolute() else root / p


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
    ) -> None:
        if CASE_ID not in table.columns:
            raise ManifestError(
                f"manifest {source or ''} has no {CASE_ID!r} column (columns: "
                f"{list(table.columns)}). Add a {CASE_ID!r} column with one id per row."
            )
        candidates = [c for c in table.columns if c not in RESERVED_COLUMNS]
        if sequences is None:
            seqs = candidates
        else:
            seqs = list(sequences)
            missing = [s for s in seqs if s not in table.columns]
            if missing:
                raise ManifestError(
                    f"manifest {source or ''} has no column for sequence(s) {missing}; "
                    f"columns are {list(table.columns)}"
                )
        if not seqs:
            raise ManifestError(
                f"manifest {source or ''} has no image columns: add one column per sequence "
                "(e.g. t1, t1c, t2, flair, ct) holding image paths"
            )
        self.table = table.reset_index(drop=True)
        self.table[CASE_ID] = self.table[CASE_ID].astype(str).str.strip()
        self.root = Path(root)
        self.sequences: tuple[str, ...] = tuple(seqs)
        self.label_map = load_label_map(label_map)
        self.clinical = clinical
        self.source = source
        metadata_cols = [c for c in candidates if c not in self.sequences]
        self._cases = [self._row_to_case(row, metadata_cols) for row in self.table.itertuples()]

    def _row_to_case(self, row: object, metadata_cols: list[str]) -> Case:
        data = row._asdict()  # type: ignore[attr-defined]
        # itertuples renames columns that are not identifiers; map by position instead.
        values = dict(zip(self.table.columns, list(data.values())[1:], strict=True))
        images = {s: p for s in self.sequences if (p := _resolve(self.root, values[s])) is not None}
        site = values.get(SITE)
        return Case(
            case_id=str(values[CASE_ID]),
            images=images,
            mask=_resolve(self.root, values.get(MASK)),
            site=None if site is None or pd.isna(site) else str(site),
            metadata={c: str(values[c]) for c in metadata_cols},
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        sequences: Sequence[str] | None = None,
        label_map: str | os.PathLike[str] | LabelMap = "binary",
        clinical: str | os.PathLike[str] | pd.DataFrame | None = None,
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

        Raises
        ------
        FileNotFoundError
            The CSV does not exist.
        ManifestError
            No ``case_id`` column, or no sequence columns.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"manifest not found: {p}")
        table = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
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


def read_clinical(path: str | os.PathLike[str], *, id_column: str = CASE_ID) -> pd.DataFrame:
    """Read a clinical CSV, indexed by ``case_id`` (as strings).

    Values are not checked here; :func:`hybridrad.io.validate.validate_clinical` does that
    and reports every problem at once.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ClinicalError
        The file is not a readable CSV, or the id column is missing.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"clinical table not found: {p}")
    try:
        table = pd.read_csv(p, dtype={id_column: str})  # ids as text: "007" stays "007"
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ClinicalError(f"cannot read clinical table {p} as CSV: {exc}") from exc
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
                return os.path.relpath(Path(cell).resolve(), base)
            return cell

        rel[col] = rel[col].map(relative)
    tmp = out.with_name(f".{out.name}.tmp")
    rel.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out
