"""Fusion of feature tables (handcrafted, deep, clinical) by ``case_id``.

Columns keep their namespace, whose first part names the block a column came from:
``rad__...`` (handcrafted), ``deep__...`` (deep), ``clin__...`` (clinical covariates).

External tables (a pyradiomics batch CSV, a spreadsheet of features) are made to fit on
reading, never silently: :func:`load_feature_tables` finds the id column (``case_id`` or
the one named), refuses duplicate ids, puts unprefixed columns into a block, drops
non-feature columns (pyradiomics ``diagnostics_*``, text) and cases without any feature
value, and says so each time.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hybridrad.errors import (
    ClinicalError,
    DuplicateCaseError,
    HybridradWarning,
    ManifestError,
)
from hybridrad.io.manifest import CASE_ID

log = logging.getLogger(__name__)

SEP = "__"
CLINICAL = "clin"
KNOWN_BLOCKS = ("rad", "deep", CLINICAL)
"""Blocks the study configurations refer to; other prefixes belong to no feature set."""

_SHOW = 10  # names listed in a message before "... and N more"


class FeatureTableError(ManifestError):
    """A feature table cannot be used as it is (no id column, no feature column ...)."""


class ClinicalCovariateError(ClinicalError):
    """A clinical covariate holds a value that cannot be used (text in a numeric column)."""


class FeatureTableWarning(HybridradWarning):
    """Columns or cases of a feature table were left out (non-numeric, no values)."""


def _shown(names: Sequence[object]) -> str:
    """The first names, then how many more."""
    head = ", ".join(repr(str(n)) for n in names[:_SHOW])
    return head + (f" ... and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def block_prefix(column: str) -> str:
    """The text before a column name's first ``__``: the block of a namespaced column, the
    whole name of one without ``__`` (``site``). :func:`hybridrad.models.transformers.block_of`
    gives ``None`` for the latter instead."""
    return column.split(SEP, 1)[0]


def blocks(columns: Sequence[str]) -> dict[str, list[str]]:
    """Columns grouped by block, in order."""
    out: dict[str, list[str]] = {}
    for col in columns:
        out.setdefault(block_prefix(col), []).append(col)
    return out


def _numeric_or_none(values: pd.Series) -> pd.Series | None:
    """``values`` as numbers when every non-missing value is one, else ``None``."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    present = values.dropna()
    if present.map(lambda v: isinstance(v, (bool, np.bool_))).all() and len(present):
        return values.map(lambda v: float(v) if pd.notna(v) else np.nan).astype(float)
    converted = pd.to_numeric(values, errors="coerce")
    if converted[values.notna()].notna().all():
        return converted.astype(float)
    return None


def clinical_block(clinical: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Clinical covariates as ``clin__`` columns.

    Numeric columns (booleans as 0/1) are kept as numbers. A text column is either a
    numeric column with a stray value (more than half of its values are numbers: an
    error naming the case and the value) or a categorical one, one-hot encoded with the
    first level (in sorted order) dropped as the reference; the encoding is logged in one
    INFO line.

    Parameters
    ----------
    clinical
        Clinical table indexed by ``case_id``.
    columns
        The covariates.

    Returns
    -------
    pandas.DataFrame
        Float columns ``clin__<name>`` (numeric) or ``clin__<name>__<level>`` (one-hot),
        missing values kept as NaN.

    Raises
    ------
    ManifestError
        A covariate is not a column of the clinical table.
    ClinicalCovariateError
        A mostly numeric covariate holds text (e.g. ``"unknown"`` or ``"45y"`` in ``age``).

    Examples
    --------
    >>> clin = pd.DataFrame({"age": [50, 61], "sex": ["F", "M"]}, index=["a", "b"])
    >>> clinical_block(clin, ["age", "sex"]).columns.tolist()
    ['clin__age', 'clin__sex__M']
    """
    source = clinical.attrs.get("source", "the clinical table")
    missing = [c for c in columns if c not in clinical.columns]
    if missing:
        raise ManifestError(
            f"clinical covariate(s) {missing} not in {source} (columns: "
            f"{list(clinical.columns)}); set `covariates` in the study config or pass "
            "--covariates (--covariates none for no clinical block)"
        )
    parts = []
    encoded: list[str] = []
    for col in columns:
        values = clinical[col]
        if isinstance(values, pd.DataFrame):
            raise ClinicalCovariateError(f"{source}: column {col!r} appears more than once")
        numeric = _numeric_or_none(values)
        if numeric is not None:
            parts.append(numeric.rename(f"{CLINICAL}{SEP}{col}"))
            continue
        text = values.astype("string").str.strip()
        as_number = pd.to_numeric(values, errors="coerce")
        present = values.notna()
        if as_number[present].notna().mean() > 0.5:
            bad = values[present & as_number.isna()]
            shown = ", ".join(f"case {cid!r}: {v!r}" for cid, v in bad.iloc[:_SHOW].items())
            more = f" ... and {len(bad) - _SHOW} more" if len(bad) > _SHOW else ""
            raise ClinicalCovariateError(
                f"{source}: clinical covariate {col!r} is numeric but holds text in "
                f"{len(bad)} case(s) ({shown}{more}); write a number, or leave the cell "
                "empty for a missing value"
            )
        levels = sorted(text.dropna().unique().tolist())
        dummies = pd.get_dummies(
            text, prefix=f"{CLINICAL}{SEP}{col}", prefix_sep=SEP, drop_first=True, dtype=float
        )
        dummies.loc[values.isna()] = float("nan")
        parts.append(dummies)
        encoded.append(
            f"{col!r} ({len(levels)} levels, reference {levels[0]!r} dropped"
            + (f": {list(dummies.columns)}" if len(dummies.columns) <= _SHOW else "")
            + ")"
            if levels
            else f"{col!r} (no values)"
        )
    if encoded:
        log.info("categorical covariate(s) one-hot encoded: %s", "; ".join(encoded))
    table = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=clinical.index)
    table.index.name = CASE_ID
    return table


def fuse(
    tables: Sequence[pd.DataFrame] | Mapping[str, pd.DataFrame],
    *,
    clinical: pd.DataFrame | None = None,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """Join feature tables (and clinical covariates) on ``case_id``.

    Only cases present in every table are kept; the dropped ones are logged. Columns
    must be unique across tables (namespaces make them so).

    Raises
    ------
    ManifestError
        Duplicate columns across tables, or no case in common.
    """
    frames = list(tables.values()) if isinstance(tables, Mapping) else list(tables)
    if clinical is not None and covariates:
        frames.append(clinical_block(clinical, covariates))
    if not frames:
        raise ManifestError("nothing to fuse: give at least one feature table")
    seen: dict[str, int] = {}
    for i, frame in enumerate(frames):
        for col in frame.columns:
            if col in seen:
                raise ManifestError(
                    f"column {col!r} appears in tables {seen[col]} and {i}; give each "
                    "table its own namespace (e.g. --block deep for a deep-feature table)"
                )
            seen[col] = i
    common = frames[0].index
    for frame in frames[1:]:
        common = common.intersection(frame.index, sort=False)
    all_ids = set().union(*(set(f.index) for f in frames))
    dropped = sorted(all_ids - set(common))
    if dropped:
        log.warning("%d case(s) not in every table were dropped: %s", len(dropped), dropped[:10])
    if len(common) == 0:
        sources = [str(f.attrs.get("source", f"table {i}")) for i, f in enumerate(frames)]
        raise ManifestError(
            f"the feature tables have no case_id in common ({', '.join(sources)}; e.g. "
            f"{_shown([str(f.index[0]) for f in frames if len(f.index)])}); check that they "
            "describe the same cases, and --id-column"
        )
    fused = pd.concat([f.loc[common] for f in frames], axis=1)
    fused.index.name = CASE_ID
    fused.attrs["dropped_cases"] = dropped
    return fused


def _read_table(path: Path, id_column: str | None) -> pd.DataFrame:
    """The table at ``path`` with its ids as an ordinary column (nothing as index).

    Text tables read the id column as text, so ``"007"`` stays ``"007"``.
    """
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            if not isinstance(table.index, pd.RangeIndex) or table.index.name is not None:
                table = table.reset_index()
            return table
        sep = "\t" if path.suffix in (".tsv", ".tab") else ","
        return pd.read_csv(path, sep=sep, dtype={id_column or CASE_ID: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV/TSV"
        detail = " ".join(str(exc).split())
        raise FeatureTableError(f"cannot read feature table {path} as {kind}: {detail}") from exc


def _set_ids(table: pd.DataFrame, path: Path, id_column: str | None) -> pd.DataFrame:
    """Index ``table`` by its id column, as stripped strings; refuse missing or duplicate ids."""
    column = id_column if id_column is not None else CASE_ID
    if column not in table.columns:
        if id_column is not None:
            raise FeatureTableError(
                f"feature table {path} has no id column {id_column!r} (--id-column); its "
                f"columns are {_shown(list(table.columns))}"
            )
        raise FeatureTableError(
            f"feature table {path} has no 'case_id' column (columns: "
            f"{_shown(list(table.columns))}); pass --id-column NAME with the column that "
            "holds the case ids"
        )
    ids = table[column]
    absent = ids.isna() | (ids.astype(str).str.strip() == "")
    if absent.any():
        rows = [int(i) + 1 for i in np.flatnonzero(absent.to_numpy())]
        raise FeatureTableError(
            f"feature table {path}: {int(absent.sum())} row(s) have no id in column "
            f"{column!r} (data rows {rows[:_SHOW]}, counting from 1 below the header); "
            "fill or remove them"
        )
    if table.empty:
        raise FeatureTableError(
            f"feature table {path} has no rows; give a table with one row per case"
        )
    table = table.set_index(ids.astype(str).str.strip().rename(CASE_ID)).drop(columns=column)
    dup = table.index[table.index.duplicated()].unique().tolist()
    if dup:
        raise DuplicateCaseError(
            f"feature table {path}: {len(dup)} case id(s) appear more than once in column "
            f"{column!r}: {_shown(dup)}; keep one row per case"
        )
    return table


def _rename_unprefixed(table: pd.DataFrame, path: Path, block: str) -> pd.DataFrame:
    """Put columns without a known block prefix into ``block`` (one INFO line)."""
    names = [str(c) for c in table.columns]
    renamed = {
        c: f"{block}{SEP}{c}" for c in names if SEP not in c or block_prefix(c) not in KNOWN_BLOCKS
    }
    if renamed:
        log.info(
            "%s: %d column(s) without a block prefix (%s) put into block %r as %s__<name>, "
            "e.g. %s (choose the block with --block)",
            path,
            len(renamed),
            "/".join(KNOWN_BLOCKS),
            block,
            block,
            _shown(list(renamed.values())[:3]),
        )
    table = table.copy()
    table.columns = pd.Index([renamed.get(c, c) for c in names])
    return table


def _keep_numeric(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Drop non-feature columns (pyradiomics ``diagnostics_*``, text) with one warning."""
    kept: dict[str, pd.Series] = {}
    diagnostics: list[str] = []
    text: list[str] = []
    for col in table.columns:
        name = str(col)
        if name.startswith("diagnostics_"):
            diagnostics.append(name)
            continue
        numeric = _numeric_or_none(table[col])
        if numeric is None:
            values = table[col]
            present = values.notna()
            as_number = pd.to_numeric(values, errors="coerce")
            if as_number[present].notna().mean() > 0.5:  # a numeric column with stray text
                bad = values[present & as_number.isna()]
                shown = ", ".join(f"case {c!r}: {v!r}" for c, v in bad.iloc[:_SHOW].items())
                raise FeatureTableError(
                    f"feature table {path}: column {name!r} is numeric but holds text in "
                    f"{len(bad)} case(s) ({shown}); write a number, or leave the cell empty "
                    "for a missing value"
                )
            text.append(name)
        else:
            kept[name] = numeric
    if diagnostics or text:
        what = []
        if diagnostics:
            what.append(
                f"{len(diagnostics)} pyradiomics diagnostics column(s) ({_shown(diagnostics)})"
            )
        if text:
            what.append(f"{len(text)} non-numeric column(s) ({_shown(text)})")
        warnings.warn(
            f"{path}: dropped {' and '.join(what)}: they are not features",
            FeatureTableWarning,
            stacklevel=3,
        )
    out = pd.DataFrame(kept, index=table.index)
    out.index.name = CASE_ID
    return out


def _drop_empty_cases(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Drop the cases whose every feature is missing (one warning naming them)."""
    if table.shape[1] == 0:
        return table
    empty = table.index[table.isna().all(axis=1)].tolist()
    if empty:
        warnings.warn(
            f"{path}: {len(empty)} case(s) have no feature value at all and were dropped "
            f"(not imputed): {_shown(empty)}",
            FeatureTableWarning,
            stacklevel=3,
        )
        table = table.drop(index=empty)
    return table


def load_feature_tables(
    paths: Sequence[str | os.PathLike[str]],
    *,
    id_column: str | None = None,
    block: str = "rad",
) -> list[pd.DataFrame]:
    """Read feature tables (Parquet, CSV or TSV) as float tables indexed by ``case_id``.

    Each table is made to fit the modelling code, and every change is reported:

    - the ids come from ``id_column``, else from a ``case_id`` column (or index);
    - columns without a known block prefix (``rad__``, ``deep__``, ``clin__``), such as
      a pyradiomics batch CSV's ``original_firstorder_Mean``, become
      ``<block>__<name>`` (one INFO log line per table);
    - pyradiomics ``diagnostics_*`` columns and non-numeric columns are dropped (one
      :class:`FeatureTableWarning` per table); booleans become 0/1;
    - cases whose every feature is missing are dropped (one :class:`FeatureTableWarning`).

    Parameters
    ----------
    paths
        The tables; ``.parquet`` is read as Parquet, ``.tsv`` as tab-separated text,
        anything else as CSV.
    id_column
        Column holding the case ids (default: ``case_id``).
    block
        Block that unprefixed columns go to: ``rad``, ``deep`` or ``clin``.

    Returns
    -------
    list of pandas.DataFrame
        One table per path, index ``case_id`` (strings), float columns; the path is in
        ``attrs["source"]``.

    Raises
    ------
    FileNotFoundError
        A table does not exist.
    FeatureTableError
        Unreadable file, no id column, missing ids, or no feature column left.
    DuplicateCaseError
        A case id appears more than once in a table.
    ValueError
        ``block`` is not a known block.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "features.csv"
    >>> _ = path.write_text("id,original_firstorder_Mean\\na,1.5\\nb,2.0\\n")
    >>> load_feature_tables([path], id_column="id")[0].columns.tolist()
    ['rad__original_firstorder_Mean']
    """
    if block not in KNOWN_BLOCKS:
        raise FeatureTableError(f"unknown block {block!r}; choose one of {KNOWN_BLOCKS}")
    tables = []
    for p in map(Path, paths):
        if not p.is_file():
            raise FileNotFoundError(f"feature table not found: {p}")
        table = _set_ids(_read_table(p, id_column), p, id_column)
        table = _rename_unprefixed(_keep_numeric(table, p), p, block)
        if table.shape[1] == 0:
            raise FeatureTableError(f"feature table {p} has no numeric feature column")
        table = _drop_empty_cases(table, p)
        table.attrs["source"] = str(p)
        tables.append(table)
    return tables
