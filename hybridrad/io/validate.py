"""Cohort validation that reports every problem at once.

Each problem carries a specific exception (see :mod:`hybridrad.errors`) whose message
names the case, file or column and what to do. :meth:`ValidationReport.raise_if_failed`
raises a :class:`~hybridrad.errors.CohortValidationError` holding all of them. Findings
that do not stop a run (a constant image, ignored mask values) are reported as warnings.

The checks are the readers' own (:func:`~hybridrad.io.images.read_geometry`,
:func:`~hybridrad.io.images.read_image`, :meth:`~hybridrad.io.labels.LabelMap.check_values`),
so validation and extraction refuse the same inputs with the same messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.errors import (
    CaseMismatchError,
    ClinicalError,
    CohortValidationError,
    ConstantImageWarning,
    DuplicateSequenceWarning,
    EventError,
    HybridradError,
    MaskGeometryError,
    MaskLabelError,
    MissingSequenceError,
    SequenceGeometryError,
    SurvivalTimeError,
)
from hybridrad.io.images import (
    Geometry,
    constant_message,
    constant_value,
    read_geometry,
    read_image,
)
from hybridrad.io.labels import LabelMap

if TYPE_CHECKING:
    from hybridrad.io.manifest import Case, Cohort


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a cohort."""

    error: Exception
    case_id: str | None = None
    column: str | None = None
    path: str | None = None

    @property
    def kind(self) -> str:
        """The exception class name, e.g. ``MaskGeometryError``."""
        return type(self.error).__name__

    @property
    def message(self) -> str:
        """The exception message."""
        return str(self.error)


@dataclass
class ValidationReport:
    """Every problem found in a cohort (empty when all is well), and warnings.

    ``warnings`` (their ``error`` a :class:`~hybridrad.errors.HybridradWarning`) do not
    make the report fail: a constant image, mask values the label map ignores.
    """

    n_cases: int
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings do not count)."""
        return not self.problems

    def add(
        self,
        error: Exception,
        case_id: str | None = None,
        column: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        """Record one problem."""
        self.problems.append(Problem(error, case_id, column, None if path is None else str(path)))

    def of_kind(self, kind: type[Exception]) -> list[Problem]:
        """The problems whose error is an instance of ``kind``."""
        return [p for p in self.problems if isinstance(p.error, kind)]

    def to_frame(self) -> pd.DataFrame:
        """Problems, then warnings, as a table: kind, case_id, column, path, message."""
        return pd.DataFrame(
            [
                {
                    "kind": p.kind,
                    "case_id": p.case_id,
                    "column": p.column,
                    "path": p.path,
                    "message": p.message,
                }
                for p in [*self.problems, *self.warnings]
            ],
            columns=["kind", "case_id", "column", "path", "message"],
        )

    def summary(self, limit: int = 50) -> str:
        """Human-readable report (the first ``limit`` problems and warnings, then counts)."""
        if self.ok:
            lines = [f"OK: {self.n_cases} cases, no problems found."]
        else:
            lines = [f"{len(self.problems)} problem(s) in {self.n_cases} cases:"]
            for p in self.problems[:limit]:
                lines.append(f"  [{p.kind}] {p.message}")
            if len(self.problems) > limit:
                lines.append(f"  ... and {len(self.problems) - limit} more (see the table)")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            for p in self.warnings[:limit]:
                lines.append(f"  [{p.kind}] {p.message}")
            if len(self.warnings) > limit:
                lines.append(f"  ... and {len(self.warnings) - limit} more (see the table)")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`CohortValidationError` with all problems, if there are any."""
        if not self.ok:
            raise CohortValidationError(self.summary(), [p.error for p in self.problems])


def _wrap(exc: Exception, cid: str, column: str) -> Exception:
    """The same kind of error, its message prefixed with the case and column."""
    return type(exc)(f"case {cid!r}, column {column!r}: {exc}")


def _check_case(
    case: Case,
    sequences: Iterable[str],
    label_map: LabelMap,
    tolerance: float,
    check_mask_values: bool,
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of one case."""
    out: list[Problem] = []
    warned: list[Problem] = []
    cid = case.case_id
    reference: tuple[str, Geometry] | None = None
    seen: dict[str, str] = {}  # voxel digest -> the first sequence holding it
    for seq in sequences:
        path = case.images.get(seq)
        if path is None:
            err: Exception = MissingSequenceError(
                f"case {cid!r}: no path in column {seq!r}. Fill it, or drop the sequence "
                "from the manifest."
            )
            out.append(Problem(err, cid, seq))
            continue
        try:
            geom, _ = read_geometry(path)
        except (HybridradError, OSError, ValueError) as exc:
            out.append(Problem(_wrap(exc, cid, seq), cid, seq, str(path)))
            continue
        if check_mask_values:  # a full read: NaN/Inf voxels, a constant image
            try:
                image = read_image(path, nonfinite=case.nonfinite, warn_constant=False)
            except (HybridradError, OSError, ValueError) as exc:
                out.append(Problem(_wrap(exc, cid, seq), cid, seq, str(path)))
            else:
                value = constant_value(image)
                if value is not None:
                    warning = ConstantImageWarning(
                        f"case {cid!r}, column {seq!r}: {constant_message(path, value, image)}"
                    )
                    warned.append(Problem(warning, cid, seq, str(path)))
                digest = hashlib.sha256(sitk.GetArrayViewFromImage(image).tobytes()).hexdigest()
                if digest in seen and value is None:
                    copy = DuplicateSequenceWarning(
                        f"case {cid!r}: columns {seen[digest]!r} and {seq!r} hold identical "
                        f"voxels ({path.name}); a missing sequence replaced by a copy? The model "
                        f"would see one scan twice. Leave the cell empty for a missing sequence, "
                        "or drop the case or the sequence."
                    )
                    warned.append(Problem(copy, cid, seq, str(path)))
                seen.setdefault(digest, seq)
                del image
        if reference is None:
            reference = (seq, geom)
            continue
        why = reference[1].mismatch(geom, tolerance)
        if why:
            out.append(
                Problem(
                    SequenceGeometryError(
                        f"case {cid!r}: sequence {seq!r} ({path.name}) is not on the grid of "
                        f"{reference[0]!r}: {why}. Resample/co-register it to {reference[0]!r} "
                        "(see hybridrad.preprocess) or raise the tolerance."
                    ),
                    cid,
                    seq,
                    str(path),
                )
            )
    if case.brain_mask is not None:
        try:
            bgeom, _ = read_geometry(case.brain_mask)
        except (HybridradError, OSError, ValueError) as exc:
            out.append(
                Problem(_wrap(exc, cid, "brain_mask"), cid, "brain_mask", str(case.brain_mask))
            )
        else:
            why = reference[1].mismatch(bgeom, tolerance) if reference is not None else None
            if why and reference is not None:
                out.append(
                    Problem(
                        MaskGeometryError(
                            f"case {cid!r}: brain mask {case.brain_mask.name} is not on the grid "
                            f"of sequence {reference[0]!r}: {why}. Use the brain mask "
                            "`hybridrad preprocess` wrote with these images."
                        ),
                        cid,
                        "brain_mask",
                        str(case.brain_mask),
                    )
                )
    if case.mask is None:
        return out, warned
    try:
        mgeom, _ = read_geometry(case.mask)
    except (HybridradError, OSError, ValueError) as exc:
        out.append(Problem(_wrap(exc, cid, "mask"), cid, "mask", str(case.mask)))
        return out, warned
    if reference is not None:
        why = reference[1].mismatch(mgeom, tolerance)
        if why:
            out.append(
                Problem(
                    MaskGeometryError(
                        f"case {cid!r}: mask {case.mask.name} is not on the grid of sequence "
                        f"{reference[0]!r}: {why}. Resample the mask with nearest-neighbour "
                        "interpolation onto the image, or raise the tolerance "
                        "(--tolerance / tolerance=)."
                    ),
                    cid,
                    "mask",
                    str(case.mask),
                )
            )
    if check_mask_values:
        try:
            mask_image = read_image(case.mask, nonfinite=case.nonfinite, warn_constant=False)
            _, ignored = label_map.read_values(
                sitk.GetArrayViewFromImage(mask_image), f"case {cid!r}: mask {case.mask.name}"
            )
        except (HybridradError, OSError, ValueError) as exc:
            error = exc if isinstance(exc, MaskLabelError) else _wrap(exc, cid, "mask")
            out.append(Problem(error, cid, "mask", str(case.mask)))
            return out, warned
        if ignored is not None:
            warned.append(Problem(ignored, cid, "mask", str(case.mask)))
    return out, warned


def validate_clinical(
    clinical: pd.DataFrame,
    *,
    time: str | None = None,
    event: str | None = None,
    report: ValidationReport | None = None,
) -> ValidationReport:
    """Check survival columns of a clinical table indexed by ``case_id``.

    Times must be numeric, finite and non-negative; events 0/1 (booleans accepted).
    """
    report = report if report is not None else ValidationReport(n_cases=len(clinical))
    source = clinical.attrs.get("source", "clinical table")
    dup = clinical.index[clinical.index.duplicated()].unique().tolist()
    for cid in dup:
        report.add(
            ClinicalError(
                f"{source}: case_id {cid!r} appears more than once; keep one row per case"
            ),
            cid,
            "case_id",
        )
    for role, col in (("time", time), ("event", event)):
        if col is not None and col not in clinical.columns:
            report.add(
                ClinicalError(
                    f"{source}: no {role} column {col!r}; columns are {list(clinical.columns)}. "
                    f"Pass the right name (--{role})."
                ),
                None,
                col,
            )
    if time is not None and time in clinical.columns:
        raw = clinical[time]
        num = pd.to_numeric(raw, errors="coerce")
        for cid, r, v in zip(clinical.index, raw, num, strict=True):
            if pd.isna(r):
                why = "is missing"
            elif pd.isna(v):
                why = f"is not a number ({r!r})"
            elif not np.isfinite(v):
                why = f"is not finite ({v})"
            elif v < 0:
                why = f"is negative ({v:g})"
            else:
                continue
            report.add(
                SurvivalTimeError(
                    f"case {cid!r}: survival time in column {time!r} {why}. Give the time from "
                    "diagnosis to event or last follow-up as a non-negative number."
                ),
                str(cid),
                time,
            )
    if event is not None and event in clinical.columns:
        for cid, r in zip(clinical.index, clinical[event], strict=True):
            if isinstance(r, (bool, np.bool_)):
                continue
            v = pd.to_numeric(pd.Series([r]), errors="coerce").iloc[0]
            if pd.isna(v) or v not in (0, 1):
                report.add(
                    EventError(
                        f"case {cid!r}: event in column {event!r} is {r!r}; it must be 1 (event "
                        "observed, e.g. death) or 0 (censored)."
                    ),
                    str(cid),
                    event,
                )
    return report


def validate_cohort(
    cohort: Cohort,
    *,
    time: str | None = None,
    event: str | None = None,
    tolerance: float = 1e-3,
    check_mask_values: bool = True,
    jobs: int = 4,
) -> ValidationReport:
    """Check a cohort and report every problem at once.

    Checks: missing, unreadable or unsupported files; headers that are not one plausible
    3D scalar volume (2D/4D, RGB, absurd spacing or size, singular direction); sequences
    of one case on different grids; a mask not on the image grid (``tolerance`` in mm and
    direction cosines); with ``check_mask_values``, NaN/Inf voxels, constant images (a
    warning) and mask values the label map does not define (the label map's own
    :meth:`~hybridrad.io.labels.LabelMap.check_values`); and, with a clinical table,
    survival ``time`` / ``event`` values and cases present on one side only. Duplicate or
    empty case ids never get this far: :class:`~hybridrad.io.manifest.Cohort` refuses them.

    Parameters
    ----------
    cohort
        The cohort to check.
    time, event
        Clinical column names of the survival time and event indicator.
    tolerance
        Largest absolute difference in spacing, origin and direction that counts as the
        same grid.
    check_mask_values
        Read every image and mask fully: NaN/Inf voxels, constant images, mask values
        (headers only otherwise, as ``--headers-only``).
    jobs
        Threads reading headers and masks.

    Returns
    -------
    ValidationReport
    """
    report = ValidationReport(n_cases=len(cohort))

    def check(case: Case) -> tuple[list[Problem], list[Problem]]:
        return _check_case(case, cohort.sequences, cohort.label_map, tolerance, check_mask_values)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for problems, warned in pool.map(check, cohort.cases):
            report.problems.extend(problems)
            report.warnings.extend(warned)

    clinical = cohort.clinical
    if clinical is not None:
        validate_clinical(clinical, time=time, event=event, report=report)
        manifest_ids = set(cohort.case_ids)
        clinical_ids = set(clinical.index)
        for cid in sorted(manifest_ids - clinical_ids):
            report.add(
                CaseMismatchError(
                    f"case {cid!r} has images but no row in the clinical table; add its "
                    "clinical row or drop it from the manifest"
                ),
                cid,
                "case_id",
            )
        for cid in sorted(clinical_ids - manifest_ids):
            report.add(
                CaseMismatchError(
                    f"case {cid!r} has a clinical row but no images in the manifest; add its "
                    "images or drop the row"
                ),
                cid,
                "case_id",
            )
    elif time is not None or event is not None:
        report.add(ClinicalError("time/event columns given but no clinical table"))
    return report
