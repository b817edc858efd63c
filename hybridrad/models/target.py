"""Prediction targets built from the clinical table, validated once.

The survival target is scikit-survival's structured array with fields ``event`` (bool)
and ``time`` (float), the type every survival estimator and metric here takes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hybridrad.errors import CaseMismatchError, ClinicalError, CohortValidationError
from hybridrad.io.validate import ValidationReport, validate_clinical

log = logging.getLogger(__name__)

SURVIVAL_DTYPE = np.dtype([("event", bool), ("time", float)])

#: Two-valued labels whose positive class is obvious (compared case-insensitively).
POSITIVE_CONVENTIONS: tuple[tuple[str, str], ...] = (
    ("1", "0"),
    ("true", "false"),
    ("yes", "no"),
    ("positive", "negative"),
)

_SHOW = 10


class MissingTargetError(ClinicalError):
    """Cases with features have no target value (survival time, event or label)."""


class LabelError(ClinicalError):
    """A class label cannot be made a binary target as it is (too many values, unknown
    ``positive`` value)."""


def cases_missing_target(
    clinical: pd.DataFrame, columns: Sequence[str], index: Sequence[str] | None = None
) -> list[str]:
    """The cases of ``index`` (default: all rows) with no value in any of ``columns``.

    Cases without a clinical row are not listed here (:class:`CaseMismatchError` names
    them when the target is built); absent columns are left to the target builders.

    Examples
    --------
    >>> clin = pd.DataFrame({"t": [5.0, None], "e": [1, 0]}, index=["a", "b"])
    >>> cases_missing_target(clin, ["t", "e"])
    ['b']
    """
    rows = clinical if index is None else clinical.loc[[c for c in index if c in clinical.index]]
    present = [c for c in columns if c in rows.columns]
    if not present:
        return []
    values = rows[present]
    blank = values.isna() | values.apply(lambda s: s.astype(str).str.strip() == "")
    return [str(c) for c in rows.index[blank.any(axis=1).to_numpy()]]


def _missing_message(what: str, cases: Sequence[str]) -> str:
    shown = ", ".join(map(repr, cases[:_SHOW]))
    more = f" ... and {len(cases) - _SHOW} more" if len(cases) > _SHOW else ""
    return (
        f"{len(cases)} case(s) have no {what}: {shown}{more}. Fill the value, or pass "
        "--drop-missing (drop_missing=True) to leave these cases out"
    )


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
    MissingTargetError
        A case has no time or no event (drop such cases first, see
        :func:`cases_missing_target`).
    CaseMismatchError
        A case in ``index`` has no clinical row.

    Examples
    --------
    >>> clin = pd.DataFrame({"t": [5.0, 3.0], "e": [1, 0]}, index=["a", "b"])
    >>> survival_target(clin, "t", "e")
    array([( True, 5.), (False, 3.)], dtype=[('event', '?'), ('time', '<f8')])
    """
    table = _align(clinical, index, "survival target")
    missing = cases_missing_target(table, [time, event])
    if missing:
        raise MissingTargetError(
            _missing_message(f"survival time {time!r} or event {event!r}", missing)
        )
    report = validate_clinical(
        table, time=time, event=event, report=ValidationReport(n_cases=len(table))
    )
    if not report.ok:  # one line, as the command line prints it
        shown = "; ".join(pr.message for pr in report.problems[:5])
        more = f"; ... and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
        raise CohortValidationError(
            f"{len(report.problems)} problem(s) in the survival columns: {shown}{more}",
            [pr.error for pr in report.problems],
        )
    y = np.empty(len(table), dtype=SURVIVAL_DTYPE)
    y["time"] = pd.to_numeric(table[time]).to_numpy(float)
    y["event"] = pd.to_numeric(table[event].astype(int)).to_numpy() == 1
    if not y["event"].any():
        raise CohortValidationError(
            f"no events in column {event!r}: a survival model needs at least one observed event",
            [ClinicalError(f"no events in {event!r}")],
        )
    return y


def _label_text(values: pd.Series) -> pd.Series:
    """Labels as stripped text; whole floats (``1.0``, read with a blank cell) as ``"1"``."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "true", False: "false"})
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == whole.round()).all():
            return values.map(lambda v: str(int(v)) if pd.notna(v) else v)
    return values.map(lambda v: str(v).strip() if pd.notna(v) else v)


def _pick_positive(column: str, counts: pd.Series) -> tuple[str, str]:
    """(positive, negative) of a two-valued label without a ``positive`` given."""
    a, b = (str(v) for v in counts.index)
    for pos, neg in POSITIVE_CONVENTIONS:
        if {a.lower(), b.lower()} == {pos, neg}:
            return (a, b) if a.lower() == pos else (b, a)
    # the minority class, as in most clinical questions (mutant, codeleted, high grade);
    # a tie goes to the value that sorts last, as scikit-learn does
    ordered = sorted([a, b], key=lambda v: (-int(counts[v]), v))
    negative, positive = ordered
    why = "the less frequent" if counts[a] != counts[b] else "a tie: the one sorting last"
    log.info(
        "label %r: positive class %r (%s, %d of %d cases), negative %r; "
        "pass --positive VALUE (positive= in Python) to choose the other",
        column,
        positive,
        why,
        int(counts[positive]),
        int(counts.sum()),
        negative,
    )
    return positive, negative


def class_target(
    clinical: pd.DataFrame,
    column: str,
    index: Sequence[str] | None = None,
    *,
    positive: str | None = None,
) -> pd.Series:
    """A binary target from the label ``column``: 1 for the positive class, 0 otherwise.

    The positive class is never an alphabetical guess: it is ``positive`` when given
    (that value against all the others), else the obvious one of a conventional pair
    (``1``/``0``, ``true``/``false``, ``yes``/``no``, ``positive``/``negative``, any
    case), else the less frequent class, named in one INFO log line.

    Parameters
    ----------
    clinical
        Clinical table indexed by ``case_id``.
    column
        The label column.
    index
        Case ids, in the order of the feature rows (default: all rows).
    positive
        The positive class (compared as text, case-insensitively when no exact match);
        required when the label has more than two values.

    Returns
    -------
    pandas.Series
        Integers 0/1 indexed by case id, named ``column``; ``attrs`` hold ``positive``
        and ``negative`` (the class names) and ``classes`` (``[negative, positive]``,
        the names of 0 and 1).

    Raises
    ------
    ClinicalError
        The column is absent, or holds a single class.
    MissingTargetError
        Cases have no label (each is named; drop them first, see
        :func:`cases_missing_target`).
    LabelError
        More than two values and no ``positive``, or ``positive`` is not a value of
        the label; the message lists the values with their counts.
    CaseMismatchError
        A case in ``index`` has no clinical row.

    Examples
    --------
    >>> clin = pd.DataFrame({"idh": ["WT", "mut", "WT"]}, index=["a", "b", "c"])
    >>> y = class_target(clin, "idh", positive="mut")
    >>> y.tolist(), y.attrs["classes"]
    ([0, 1, 0], ['WT', 'mut'])
    """
    if column not in clinical.columns:
        raise ClinicalError(
            f"no label column {column!r} in the clinical table; columns are "
            f"{list(clinical.columns)}"
        )
    raw = _align(clinical, index, f"label {column!r}")[column]
    missing = cases_missing_target(raw.to_frame(), [column])
    if missing:
        raise MissingTargetError(_missing_message(f"label {column!r}", missing))
    labels = _label_text(raw)
    counts = labels.value_counts(sort=False).sort_index()
    listing = ", ".join(f"{v!r} ({n})" for v, n in counts.items())
    if positive is not None:
        wanted = str(positive).strip()
        values = [str(v) for v in counts.index]
        matches = [v for v in values if v == wanted] or [
            v for v in values if v.lower() == wanted.lower()
        ]
        if len(matches) != 1:
            raise LabelError(
                f"--positive {positive!r} is not a value of label {column!r}; its values "
                f"are {listing}"
            )
        pos = matches[0]
        rest = [v for v in values if v != pos]
        if not rest:
            raise ClinicalError(f"label {column!r} has a single class {[pos]}")
        neg = rest[0] if len(rest) == 1 else f"not {pos}"
        if len(rest) > 1:
            log.info("label %r: %r (positive) against the %d other values", column, pos, len(rest))
    else:
        if len(counts) < 2:
            raise ClinicalError(f"label {column!r} has a single class {counts.index.tolist()}")
        if len(counts) > 2:
            raise LabelError(
                f"label {column!r} has {len(counts)} distinct values: {listing}. Only binary "
                "labels are modelled: fix the spellings, or pass --positive VALUE to model "
                "that value against the rest"
            )
        pos, neg = _pick_positive(column, counts)
    y = (labels == pos).astype(int).rename(column)
    y.attrs.update({"positive": pos, "negative": neg, "classes": [neg, pos]})
    return y
