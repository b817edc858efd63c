"""Fusion of feature tables (handcrafted, deep, clinical) by ``case_id``.

Columns keep their namespace, whose first part names the block a column came from:
``rad__...`` (handcrafted), ``deep__...`` (deep), ``clin__...`` (clinical covariates).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from hybridrad.errors import ManifestError
from hybridrad.io.manifest import CASE_ID

log = logging.getLogger(__name__)

SEP = "__"
CLINICAL = "clin"


def block_of(column: str) -> str:
    """The block a namespaced column belongs to (the text before the first ``__``)."""
    return column.split(SEP, 1)[0]


def blocks(columns: Sequence[str]) -> dict[str, list[str]]:
    """Columns grouped by block, in order."""
    out: dict[str, list[str]] = {}
    for col in columns:
        out.setdefault(block_of(col), []).append(col)
    return out


def clinical_block(clinical: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Clinical covariates as ``clin__`` columns; categorical ones one-hot encoded
    (first level dropped), numeric ones as they are."""
    missing = [c for c in columns if c not in clinical.columns]
    if missing:
        raise ManifestError(
            f"clinical covariate(s) {missing} not in the clinical table (columns: "
            f"{list(clinical.columns)})"
        )
    parts = []
    for col in columns:
        values = clinical[col]
        if pd.api.types.is_numeric_dtype(values):
            parts.append(values.astype(float).rename(f"{CLINICAL}{SEP}{col}"))
        else:
            dummies = pd.get_dummies(
                values.astype("string"),
                prefix=f"{CLINICAL}{SEP}{col}",
                prefix_sep=SEP,
                drop_first=True,
                dtype=float,
            )
            dummies.loc[values.isna()] = float("nan")
            parts.append(dummies)
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
                    "table its own namespace"
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
        raise ManifestError("the feature tables have no case_id in common")
    fused = pd.concat([f.loc[common] for f in frames], axis=1)
    fused.index.name = CASE_ID
    fused.attrs["dropped_cases"] = dropped
    return fused


def load_feature_tables(paths: Sequence[str | os.PathLike[str]]) -> list[pd.DataFrame]:
    """Read Parquet (or CSV) feature tables indexed by ``case_id``."""
    tables = []
    for p in map(Path, paths):
        if not p.is_file():
            raise FileNotFoundError(f"feature table not found: {p}")
        table = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, index_col=0)
        if table.index.name != "case_id" and "case_id" in table.columns:
            table = table.set_index("case_id")
        table.index = table.index.astype(str)
        tables.append(table)
    return tables
