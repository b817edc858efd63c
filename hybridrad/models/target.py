"""Prediction targets built from the clinical table, validated once.

The survival target is scikit-survival's structured array with fields ``event`` (bool)
and ``time`` (float), the type every survival estimator and metric here takes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hybridrad.errors import CaseMismatchError, ClinicalError, CohortValidationError
from hybridrad.io.validate import ValidationReport, validate_clinical

SURVIVAL_DTYPE = np.dtype([("event", bool), ("time", float)])


def _align(clinical: pd.DataFrame, index: Sequence[str] | None, what: str) -> pd.DataFrame:
    if index is None:
        return clinical
    missing = [c for c in index if c not in clinical.index]
    if missing:
        shown = ", ".join(map(repr, missing[:10]))
        raise CaseMismatchError(
            f"{len(missing)} case(s) with features have no clinical row for the {what}: "
            f"{shown}{' ...' if len(missing) > 10 else ''}. Add them to the clinical table "
            "or drop them from the features."
        )
    return clinical.loc[list(index)]


def survival_target(
    clinical: pd.DataFrame,
    time: str,
    event: str,
    index: Sequence[str] | None = None,
) -> np.ndarray:
    """The (event, time) target for the cases in ``index`` (default: all rows).

    Parameters
    ----------
    clinical
        Clinical table indexed by ``case_id``.
    time, event
        Column names: non-negative times, events 1 (observed) / 0 (censored).
    index
        Case ids, in the order of the feature rows.

    Returns
    -------
    numpy.ndarray
        Structured array with fields ``event`` (bool) and ``time`` (float).

    Raises
    ------
    CohortValidationError
        With every bad value (:class:`~hybridrad.errors.SurvivalTimeError`,
        :class:`~hybridrad.errors.EventError`, :class:`~hybridrad.errors.ClinicalError`).
    CaseMismatchError
        A case in ``index`` has no clinical row.

    Examples
    --------
    >>> clin = pd.DataFrame({"t": [5.0, 3.0], "e": [1, 0]}, index=["a", "b"])
    >>> survival_target(clin, "t", "e")
    array([( True, 5.), (False, 3.)], dtype=[('event', '?'), ('time', '<f8')])
    """
    table = _align(clinical, index, "survival target")
    report = validate_clinical(
        table, time=time, event=event, report=ValidationReport(n_cases=len(table))
    )
    report.raise_if_failed()
    y = np.empty(len(table), dtype=SURVIVAL_DTYPE)
    y["time"] = pd.to_numeric(table[time]).to_numpy(float)
    y["event"] = pd.to_numeric(table[event].astype(int)).to_numpy() == 1
    if not y["event"].any():
        raise CohortValidationError(
            f"no events in column {event!r}: a survival model needs at least one observed event",
            [ClinicalError(f"no events in {event!r}")],
        )
    return y


def class_target(
    clinical: pd.DataFrame, column: str, index: Sequence[str] | None = None
) -> pd.Series:
    """Class labels from ``column`` for the cases in ``index``.

    Raises
    ------
    ClinicalError
        The column is absent, has missing labels, or fewer than two classes.
    """
    if column not in clinical.columns:
        raise ClinicalError(
            f"no label column {column!r} in the clinical table; columns are "
            f"{list(clinical.columns)}"
        )
    labels = _align(clinical, index, f"label {column!r}")[column]
    missing = labels.index[labels.isna()].tolist()
    if missing:
        raise ClinicalError(
            f"label {column!r} is missing for case(s) {missing[:10]}; drop those cases or "
            "fill the label"
        )
    if labels.nunique() < 2:
        raise ClinicalError(f"label {column!r} has a single class {labels.unique().tolist()}")
    return labels.astype(str)
