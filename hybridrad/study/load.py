"""Study data behind ``hybridrad evaluate``/``fit``/``score``: read the feature tables and the
clinical table, fuse them and build the target."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from hybridrad.errors import ClinicalError, DuplicateCaseError, HybridradError
from hybridrad.io.manifest import CASE_ID, read_clinical
from hybridrad.models.data import StudyData
from hybridrad.models.fusion import fuse, load_feature_tables
from hybridrad.models.target import cases_missing_target, class_target, survival_target
from hybridrad.provenance import file_sha256

log = logging.getLogger(__name__)


def load_study(
    features: Sequence[str | os.PathLike[str]],
    clinical: str | os.PathLike[str],
    *,
    time: str | None = None,
    event: str | None = None,
    label: str | None = None,
    positive: str | None = None,
    covariates: Sequence[str] = (),
    site: bool = False,
    id_column: str | None = None,
    block: str = "rad",
    drop_missing: bool = False,
) -> StudyData:
    """Read feature tables and the clinical table, fuse them and build the target.

    Parameters
    ----------
    features
        Feature tables (Parquet, CSV or TSV), read with
        :func:`~hybridrad.models.fusion.load_feature_tables`.
    clinical
        Clinical CSV.
    time, event
        Survival columns (give both), or
    label
        a class label column (binary; see :func:`~hybridrad.models.target.class_target`).
    positive
        The positive class of ``label`` (required when it has more than two values).
    covariates
        Clinical columns forming the ``clin`` block.
    site
        Add the clinical ``site`` column (for ComBat).
    id_column
        Column of the case ids in the feature tables and the clinical table (default
        ``case_id``).
    block
        Block of feature columns without a block prefix (``rad``, ``deep`` or ``clin``).
    drop_missing
        Leave out cases with no target value (logged with their ids) instead of failing.

    Returns
    -------
    StudyData

    Raises
    ------
    HybridradError
        Neither survival columns nor a label, or ``positive`` without a label.
    MissingTargetError
        Cases without a target value and ``drop_missing`` not set; the message names them.
    ClinicalError, ManifestError
        A table cannot be used (missing column, duplicate ids, text in a numeric
        covariate, a label with more than two values ...).
    """
    if (label is None) == (time is None or event is None):
        raise HybridradError(
            "give either --time and --event (survival) or --label (classification)"
        )
    if positive is not None and label is None:
        raise HybridradError("--positive needs --label (it names the positive class)")
    clin = read_clinical(clinical, id_column=id_column or CASE_ID)
    dup = clin.index[clin.index.duplicated()].unique().tolist()
    if dup:
        raise DuplicateCaseError(
            f"clinical table {clinical}: {len(dup)} case id(s) appear more than once: "
            f"{dup[:10]}{' ...' if len(dup) > 10 else ''}; keep one row per case"
        )
    targets = [label] if label is not None else [str(time), str(event)]
    absent = [c for c in targets if c not in clin.columns]
    if absent:
        raise ClinicalError(
            f"clinical table {clinical} has no column(s) {absent}; its columns are "
            f"{list(clin.columns)}"
        )
    X = fuse(
        load_feature_tables(features, id_column=id_column, block=block),
        clinical=clin,
        covariates=list(covariates),
    )
    dropped: dict[str, list[str]] = {}
    if X.attrs.get("dropped_cases"):
        dropped["not in every table"] = list(X.attrs["dropped_cases"])
    missing = cases_missing_target(clin, targets, list(X.index)) if drop_missing else []
    if missing:  # without drop_missing, the target builders name them in the error
        log.warning(
            "--drop-missing: %d case(s) without a target value left out: %s%s",
            len(missing),
            ", ".join(missing[:20]),
            " ..." if len(missing) > 20 else "",
        )
        X = X.drop(index=missing)
        dropped["missing target"] = missing
    if site:
        if "site" not in clin.columns:
            raise HybridradError("ComBat needs a 'site' column in the clinical table")
        X["site"] = clin.loc[X.index, "site"].astype(str)
    inputs = {str(p): file_sha256(p) for p in [*features, clinical]}
    if label is None:
        assert time is not None and event is not None
        y = survival_target(clin, time, event, list(X.index))
        return StudyData(X=X, y=y, task="survival", inputs=inputs, dropped=dropped)
    labels = class_target(clin, label, list(X.index), positive=positive)
    return StudyData(
        X=X,
        y=labels.to_numpy(),
        task="classification",
        inputs=inputs,
        positive=labels.attrs["positive"],
        negative=labels.attrs["negative"],
        dropped=dropped,
    )
