"""Are auto-contours good enough for radiomics? Feature agreement, expert vs predicted masks.

For every case, handcrafted pyradiomics features are extracted twice from the same image
(one sequence): once inside the reference (expert) mask and once inside the predicted
mask (e.g. from ``hybridrad segment``). Per feature, the agreement between the two
across cases is summarised by

- ICC(3,1) (Shrout & Fleiss 1979), i.e. McGraw & Wong's (1996) ICC(C,1): two-way mixed
  effects, consistency, single rater, with its F-distribution based confidence interval;
- the median absolute relative difference ``|pred - ref| / |ref|`` (and the signed median
  relative difference, which shows a systematic bias that a consistency ICC ignores);
- its Koo & Li (2016) reliability band: < 0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good,
  >= 0.9 excellent.

Extraction reuses :class:`~hybridrad.features.radiomics.RadiomicsTask` and the cohort
runner (cache, process pool or Dask, failures table), so the settings are the project's
(a shipped preset or a pyradiomics YAML, as ``hybridrad extract`` takes them). Cases
where either mask fails (empty predicted mask, geometry mismatch ...) are recorded with
the reason and left out; features whose ICC is undefined (constant across cases) are
kept as NaN and named in a warning.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.features.radiomics import (
    SEP,
    RadiomicsConfig,
    RadiomicsTask,
)
from hybridrad.features.robustness import icc
from hybridrad.io.manifest import CASE_ID, MASK, Cohort
from hybridrad.provenance import config_hash, file_sha256, library_versions
from hybridrad.runner import FAILURE_COLUMNS, CohortResult, run_cohort

#: Koo & Li (2016) reliability bands of an ICC: (lower bound inclusive, label).
KOO_LI_BANDS: tuple[tuple[float, str], ...] = (
    (0.9, "excellent"),
    (0.75, "good"),
    (0.5, "moderate"),
    (-math.inf, "poor"),
)
#: Thresholds whose fractions the summary reports.
ICC_THRESHOLDS: tuple[float, ...] = (0.75, 0.90)
#: Columns of the failures table: which case, which mask, where and why it failed.
AGREEMENT_FAILURE_COLUMNS = [CASE_ID, "mask", *FAILURE_COLUMNS[1:]]
AGREEMENT_COLUMNS = [
    "sequence",
    "region",
    "image_type",
    "feature_class",
    "n_cases",
    "icc",
    "icc_ci_low",
    "icc_ci_high",
    "f_value",
    "p_value",
    "reliability",
    "median_abs_rel_diff",
    "median_rel_diff",
    "note",
]
CONSTANT_NOTE = "constant across cases: ICC undefined"


class AgreementError(HybridradError, ValueError):
    """The agreement analysis cannot run (too few usable cases, unknown sequence ...)."""


class ExcludedCasesWarning(HybridradWarning):
    """Some cases were left out because a mask was empty or its extraction failed."""


class UndefinedICCWarning(HybridradWarning):
    """Some features have no ICC (constant across cases, or fewer than 2 complete cases)."""


# --- statistics --------------------------------------------------------------------------


@dataclass(frozen=True)
class ICCResult:
    """ICC(3,1) = ICC(C,1) with its confidence interval and F test.

    Attributes
    ----------
    icc
        The estimate (NaN when undefined).
    ci_low, ci_high
        Confidence interval (McGraw & Wong 1996, F-distribution based).
    f_value, df1, df2
        ``F = MS_rows / MS_error`` and its degrees of freedom ``n - 1``,
        ``(n - 1)(k - 1)``.
    p_value
        One-sided p of the F test of ``ICC = 0``.
    n, k
        Targets (cases) and raters (masks).
    """

    icc: float
    ci_low: float
    ci_high: float
    f_value: float
    df1: int
    df2: int
    p_value: float
    n: int
    k: int


def icc_consistency(values: npt.ArrayLike, confidence: float = 0.95) -> ICCResult:
    """ICC(3,1): two-way mixed effects, consistency, single rater, with its CI.

    Shrout & Fleiss (1979) ICC(3,1), the same as McGraw & Wong (1996) ICC(C,1):
    ``(MS_R - MS_E) / (MS_R + (k - 1) MS_E)`` from the two-way ANOVA of ``n`` targets by
    ``k`` raters. The estimate comes from :func:`hybridrad.features.robustness.icc`;
    the F statistic ``F = MS_R / MS_E`` follows from it exactly
    (``F = (1 + (k - 1) ICC) / (1 - ICC)``), and the confidence interval is McGraw &
    Wong's (1996) for ICC(C,1):
    ``F_L = F / F_{1-a/2}(n-1, (n-1)(k-1))``, ``F_U = F * F_{1-a/2}((n-1)(k-1), n-1)``,
    limits ``(F_L - 1) / (F_L + k - 1)`` and ``(F_U - 1) / (F_U + k - 1)``.

    Parameters
    ----------
    values
        Ratings, shape ``(n targets, k raters)``, no missing values.
    confidence
        Coverage of the interval (default 0.95).

    Returns
    -------
    ICCResult
        Estimate, interval, F test; all NaN when every rating is equal (undefined).

    Raises
    ------
    ValueError
        Fewer than 2 targets or raters, missing values, or ``confidence`` outside (0, 1).

    Examples
    --------
    Shrout & Fleiss (1979), Table 2 data (6 targets, 4 judges); Table 4: ICC(3,1) = .71.

    >>> x = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...      [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> r = icc_consistency(x)
    >>> round(r.icc, 2), round(r.f_value, 2), (r.df1, r.df2)
    (0.71, 11.03, (5, 15))
    """
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ICC needs at least 2 targets and 2 raters, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("ICC ratings must be finite; drop incomplete targets first")
    n, k = x.shape
    df1, df2 = n - 1, (n - 1) * (k - 1)
    nan = math.nan
    estimate = float(icc(x, "3,1"))
    if not math.isfinite(estimate):
        return ICCResult(nan, nan, nan, nan, df1, df2, nan, n, k)
    if estimate >= 1.0:  # no residual variance: perfect consistency
        return ICCResult(1.0, 1.0, 1.0, math.inf, df1, df2, 0.0, n, k)
    f_value = (1.0 + (k - 1) * estimate) / (1.0 - estimate)
    alpha = 1.0 - confidence
    f_low = f_value / float(stats.f.ppf(1.0 - alpha / 2.0, df1, df2))
    f_high = f_value * float(stats.f.ppf(1.0 - alpha / 2.0, df2, df1))
    return ICCResult(
        icc=estimate,
        ci_low=(f_low - 1.0) / (f_low + k - 1.0),
        ci_high=(f_high - 1.0) / (f_high + k - 1.0),
        f_value=f_value,
        df1=df1,
        df2=df2,
        p_value=float(stats.f.sf(f_value, df1, df2)),
        n=n,
        k=k,
    )


def reliability_band(value: float) -> str:
    """Koo & Li (2016) band of an ICC: ``poor``, ``moderate``, ``good``, ``excellent``.

    Examples
    --------
    >>> [reliability_band(v) for v in (0.3, 0.5, 0.8, 0.9)]
    ['poor', 'moderate', 'good', 'excellent']
    >>> reliability_band(float("nan"))
    ''
    """
    if not math.isfinite(value):
        return ""
    return next(label for low, label in KOO_LI_BANDS if value >= low)


def _describe_column(column: str) -> dict[str, str]:
    """Sequence, region, image type and class of a ``rad__...`` feature column."""
    parts = column.split(SEP)
    if len(parts) == 6:
        return dict(
            zip(("sequence", "region", "image_type", "feature_class"), parts[1:5], strict=True)
        )
    return {"sequence": "", "region": "", "image_type": "", "feature_class": ""}


def feature_agreement(
    reference: pd.DataFrame, predicted: pd.DataFrame, *, confidence: float = 0.95
) -> pd.DataFrame:
    """Per-feature agreement between two wide feature tables of the same cases.

    Parameters
    ----------
    reference, predicted
        One row per case (index ``case_id``), one column per feature; rows are matched
        by index and columns by name (those of ``reference`` that ``predicted`` also has).
    confidence
        Coverage of the ICC confidence interval.

    Returns
    -------
    pandas.DataFrame
        Indexed by feature, columns :data:`AGREEMENT_COLUMNS`: ICC(3,1) with CI, F and p,
        Koo & Li band, median absolute / signed relative difference (cases with a zero
        reference value left out) and a ``note`` saying why an ICC is NaN. Features
        constant across cases in both tables, or with fewer than 2 complete cases, get
        NaN (never dropped) and are named in an :class:`UndefinedICCWarning`.
    """
    cases = [c for c in reference.index if c in predicted.index]
    columns = [c for c in reference.columns if c in predicted.columns]
    ref = reference.loc[cases, columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    pred = predicted.loc[cases, columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    rows: list[dict[str, Any]] = []
    undefined: list[str] = []
    for j, name in enumerate(columns):
        ok = np.isfinite(ref[:, j]) & np.isfinite(pred[:, j])
        r, p = ref[ok, j], pred[ok, j]
        note = ""
        result: ICCResult | None = None
        if len(r) < 2:
            note = f"{len(r)} complete case(s): ICC undefined"
        elif np.ptp(r) == 0 and np.ptp(p) == 0:
            note = CONSTANT_NOTE
        else:
            result = icc_consistency(np.column_stack([r, p]), confidence)
            if not math.isfinite(result.icc):
                note, result = CONSTANT_NOTE, None
        if result is None:
            undefined.append(name)
        nonzero = r != 0
        rel = (p[nonzero] - r[nonzero]) / np.abs(r[nonzero])
        value = result.icc if result else math.nan
        rows.append(
            {
                **_describe_column(name),
                "n_cases": len(r),
                "icc": value,
                "icc_ci_low": result.ci_low if result else math.nan,
                "icc_ci_high": result.ci_high if result else math.nan,
                "f_value": result.f_value if result else math.nan,
                "p_value": result.p_value if result else math.nan,
                "reliability": reliability_band(value),
                "median_abs_rel_diff": float(np.median(np.abs(rel))) if len(rel) else math.nan,
                "median_rel_diff": float(np.median(rel)) if len(rel) else math.nan,
                "note": note,
            }
        )
    table = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS, index=pd.Index(columns, name="feature"))
    if undefined:
        shown = ", ".join(undefined[:20]) + (
            f" ... and {len(undefined) - 20} more" if len(undefined) > 20 else ""
        )
        warnings.warn(
            f"ICC undefined (NaN) for {len(undefined)} feature(s), constant across cases or "
            f"with fewer than 2 complete cases: {shown}. They are kept in the table with a "
            "note.",
            UndefinedICCWarning,
            stacklevel=2,
        )
    return table


def _median(values: pd.Series) -> float | None:
    finite = values.dropna()
    return float(finite.median()) if len(finite) else None


def _block(table: pd.DataFrame) -> dict[str, Any]:
    """Counts, median ICC and threshold fractions of some rows of an agreement table."""
    defined = table["icc"].dropna()
    out: dict[str, Any] = {
        "n_features": len(table),
        "n_defined": len(defined),
        "median_icc": _median(table["icc"]),
    }
    for t in ICC_THRESHOLDS:
        n_at = int((defined >= t).sum())
        out[f"n_icc_ge_{t:.2f}"] = n_at
        out[f"fraction_icc_ge_{t:.2f}"] = n_at / len(defined) if len(defined) else None
    out["median_abs_rel_diff"] = _median(table["median_abs_rel_diff"])
    return out


def summarize_agreement(table: pd.DataFrame) -> dict[str, Any]:
    """Summary of an agreement table (from :func:`feature_agreement`).

    Returns
    -------
    dict
        ``n_features``, ``n_defined`` (features with an ICC), ``median_icc``,
        ``n_icc_ge_0.75`` / ``fraction_icc_ge_0.75`` and the same for 0.90 (fractions of
        the features with a defined ICC), ``median_abs_rel_diff`` (median over features),
        ``reliability`` (features per Koo & Li band), ``undefined_features`` and
        ``by_class`` (the same block per feature class). Missing values are ``None``.
    """
    summary = _block(table)
    summary["reliability"] = {
        label: int((table["reliability"] == label).sum()) for _, label in reversed(KOO_LI_BANDS)
    }
    summary["undefined_features"] = [str(f) for f in table.index[table["icc"].isna()]]
    summary["by_class"] = {
        str(cls): _block(part) for cls, part in table.groupby("feature_class", sort=True)
    }
    return summary


# --- the cohort analysis -----------------------------------------------------------------


@dataclass
class AgreementResult:
    """Output of :func:`contour_agreement`.

    Attributes
    ----------
    reference, predicted
        Wide feature tables (index ``case_id``) of the cases used, same rows and columns.
    agreement
        Per-feature table (see :func:`feature_agreement`).
    summary
        See :func:`summarize_agreement`, plus case counts.
    failures
        Excluded cases: ``case_id``, ``mask`` (reference / predicted), ``stage``,
        ``exception``, ``message``.
    provenance
        Versions, settings and their hash, input file hashes.
    """

    reference: pd.DataFrame
    predicted: pd.DataFrame
    agreement: pd.DataFrame
    summary: dict[str, Any]
    failures: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no case was excluded."""
        return self.failures.empty

    def save(
        self, out: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
    ) -> dict[str, Path]:
        """Write the tables and ``summary.json`` into folder ``out``.

        Files: ``features_reference.{parquet,csv}``, ``features_predicted.{parquet,csv}``,
        ``agreement.csv``, ``failures.csv``, ``summary.json`` (summary + provenance, with
        ``extra`` merged into the provenance). Returns the paths by name.
        """
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name, frame in (("reference", self.reference), ("predicted", self.predicted)):
            paths[f"{name}_parquet"] = folder / f"features_{name}.parquet"
            paths[f"{name}_csv"] = folder / f"features_{name}.csv"
            frame.to_parquet(paths[f"{name}_parquet"])
            frame.to_csv(paths[f"{name}_csv"])
        paths["agreement"] = folder / "agreement.csv"
        self.agreement.to_csv(paths["agreement"])
        paths["failures"] = folder / "failures.csv"
        self.failures.to_csv(paths["failures"], index=False)
        paths["summary"] = folder / "summary.json"
        record = {
            "summary": self.summary,
            "provenance": {**self.provenance, **dict(extra or {})},
        }
        paths["summary"].write_text(json.dumps(_jsonable(record), indent=2, default=str))
        return paths


def _jsonable(obj: Any) -> Any:
    """NaN / inf -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def restrict_image_types(config: RadiomicsConfig, image_types: Sequence[str]) -> RadiomicsConfig:
    """``config`` with only ``image_types`` enabled (their own settings kept if present).

    Examples
    --------
    >>> cfg = restrict_image_types(RadiomicsConfig.load("mri_glioma"), ["Original"])
    >>> list(cfg.params["imageType"])
    ['Original']
    """
    params = copy.deepcopy(config.params)
    current = params.get("imageType") or {}
    params["imageType"] = {t: copy.deepcopy(current.get(t) or {}) for t in image_types}
    return RadiomicsConfig(params, name=f"{config.name} (imageType: {', '.join(image_types)})")


def _predicted_paths(
    cohort: Cohort, pred_masks: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]
) -> dict[str, Path]:
    if isinstance(pred_masks, Mapping):
        missing = [c for c in cohort.case_ids if c not in pred_masks]
        if missing:
            raise AgreementError(
                f"no predicted mask given for case(s) {missing[:10]}; add them to pred_masks "
                "or drop them from the cohort (Cohort.subset)"
            )
        return {c: Path(pred_masks[c]).expanduser().resolve() for c in cohort.case_ids}
    folder = Path(pred_masks)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"predicted-mask folder not found: {folder} (give the output folder of "
            "`hybridrad segment` or a folder of <case_id>.nii.gz masks)"
        )
    from hybridrad.segment.evaluate import prediction_paths

    return {c: p.resolve() for c, p in prediction_paths(cohort, folder).items()}


def _with_masks(cohort: Cohort, masks: Mapping[str, Path]) -> Cohort:
    """The same cases and images with other masks."""
    table = cohort.table.copy()
    table[MASK] = [str(masks[c]) for c in table[CASE_ID]]
    return Cohort(
        table,
        cohort.root,
        sequences=cohort.sequences,
        label_map=cohort.label_map,
        clinical=cohort.clinical,
        nonfinite=cohort.nonfinite,
        allow_outside=cohort.allow_outside,
    )


def _failures(result: CohortResult, which: str) -> pd.DataFrame:
    table = result.failures.copy()
    table.insert(1, "mask", which)
    return table[AGREEMENT_FAILURE_COLUMNS]


def _input_hashes(
    reference: CohortResult, predicted: CohortResult, sequence: str
) -> dict[str, dict[str, Any]]:
    """Per-case SHA-256 of image and both masks, from the extraction diagnostics."""
    out: dict[str, dict[str, Any]] = {}
    for which, result in (("reference_mask", reference), ("predicted_mask", predicted)):
        diag = result.diagnostics
        for cid in diag.index:
            entry = out.setdefault(str(cid), {})
            if f"sha256__{sequence}" in diag.columns:
                entry["image"] = diag.at[cid, f"sha256__{sequence}"]
            if "sha256__mask" in diag.columns:
                entry[which] = diag.at[cid, "sha256__mask"]
    return out


def contour_agreement(
    cohort: Cohort,
    pred_masks: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]],
    *,
    config: str | os.PathLike[str] | Mapping[str, Any] | RadiomicsConfig = "mri_glioma",
    image_types: Sequence[str] | None = ("Original",),
    sequence: str | None = None,
    regions: Sequence[str] | None = None,
    confidence: float = 0.95,
    jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    tolerance: float = 1e-3,
) -> AgreementResult:
    """Agreement of radiomics features from reference (expert) vs predicted masks.

    Parameters
    ----------
    cohort
        Cases whose ``mask`` column holds the reference masks.
    pred_masks
        The output folder of ``hybridrad segment`` (its ``manifest.csv`` names the
        predicted masks), a folder of ``<case_id>.nii.gz`` masks, or a mapping
        ``case_id -> path``. A prediction is needed for every case.
    config
        pyradiomics settings as ``hybridrad extract`` takes them: shipped preset
        (``mri_glioma`` ...), YAML file, mapping or :class:`RadiomicsConfig`.
    image_types
        Image types to keep from ``config`` (default only ``Original``); ``None`` keeps
        the config's own.
    sequence
        The image both masks are applied to (default: the cohort's first sequence).
    regions
        Label-map regions (default: all of the cohort's label map).
    confidence
        Coverage of the ICC confidence intervals.
    jobs, scheduler, cache_dir, progress
        As for :func:`~hybridrad.features.extract_radiomics`.
    tolerance
        Image/mask geometry tolerance when the config sets no ``geometryTolerance``.

    Returns
    -------
    AgreementResult
        Feature tables of the cases used, the per-feature agreement, its summary, the
        failures table and provenance.

    Raises
    ------
    AgreementError
        Unknown sequence, a prediction missing from a mapping, or fewer than 2 cases
        with features from both masks.
    SegmentationInputError
        ``pred_masks`` is a folder without a mask for some case.

    Warns
    -----
    ExcludedCasesWarning
        Once, naming the cases left out because a mask failed (see ``failures``).
    UndefinedICCWarning
        Naming the features with a NaN ICC.
    """
    seq = sequence or cohort.sequences[0]
    if seq not in cohort.sequences:
        raise AgreementError(
            f"sequence {seq!r} is not in the manifest (sequences: {list(cohort.sequences)})"
        )
    rad_config = RadiomicsConfig.load(config)
    if image_types is not None:
        rad_config = restrict_image_types(rad_config, image_types)
    task = RadiomicsTask(
        config=rad_config,
        label_map=cohort.label_map,
        sequences=(seq,),
        regions=tuple(regions or ()),
        tolerance=tolerance,
    )
    predicted_masks = _predicted_paths(cohort, pred_masks)
    run = {"jobs": jobs, "scheduler": scheduler, "cache_dir": cache_dir, "progress": progress}
    ref = run_cohort(cohort, task, **run)
    pred = run_cohort(_with_masks(cohort, predicted_masks), task, **run)

    parts = [_failures(ref, "reference"), _failures(pred, "predicted")]
    failures = pd.concat([f for f in parts if len(f)] or parts[:1], ignore_index=True)
    order = {c: i for i, c in enumerate(cohort.case_ids)}
    failures = failures.sort_values(
        CASE_ID, key=lambda s: s.map(order), kind="stable", ignore_index=True
    )
    used = [c for c in cohort.case_ids if c in ref.features.index and c in pred.features.index]
    excluded = [c for c in cohort.case_ids if c not in used]
    if excluded:
        reasons = "; ".join(
            f"{row.case_id} ({row.mask} mask, {row.exception})"
            for row in failures.head(10).itertuples(index=False)
        )
        warnings.warn(
            f"{len(excluded)} of {len(cohort)} case(s) excluded from the agreement analysis "
            f"because a mask was empty or its extraction failed: {reasons}"
            + (" ..." if len(failures) > 10 else "")
            + " (all reasons in the failures table)",
            ExcludedCasesWarning,
            stacklevel=2,
        )
    if len(used) < 2:
        raise AgreementError(
            f"only {len(used)} case(s) have features from both masks; an ICC needs at least "
            f"2 (failures: {failures[[CASE_ID, 'mask', 'exception']].to_dict(orient='records')})"
        )
    columns = [c for c in ref.features.columns if c in pred.features.columns]
    reference = ref.features.loc[used, columns]
    predicted = pred.features.loc[used, columns]
    agreement = feature_agreement(reference, predicted, confidence=confidence)
    summary = {
        "n_cases": len(used),
        "n_cases_total": len(cohort),
        "n_excluded": len(excluded),
        "excluded_cases": excluded,
        "icc": "ICC(3,1) = ICC(C,1): two-way mixed, consistency, single rater",
        "confidence": confidence,
        "fractions_of": "features with a defined ICC",
        **summarize_agreement(agreement),
    }
    settings = {
        "config_name": rad_config.name,
        "config_hash": rad_config.hash,
        "config": rad_config.params,
        "image_types": list(image_types) if image_types is not None else "config",
        "sequence": seq,
        "regions": list(task.regions),
        "label_map": cohort.label_map.to_dict(),
        "confidence": confidence,
        "tolerance": tolerance,
    }
    pred_source: dict[str, Any]
    if isinstance(pred_masks, Mapping):
        pred_source = {"mapping": {c: str(p) for c, p in predicted_masks.items()}}
    else:
        pred_manifest = Path(pred_masks) / "manifest.csv"
        pred_source = {
            "folder": str(Path(pred_masks).resolve()),
            "manifest_sha256": file_sha256(pred_manifest) if pred_manifest.is_file() else None,
        }
    provenance = {
        "hybridrad_version": library_versions(["hybridrad"]).get("hybridrad"),
        "versions": library_versions(),
        "settings": settings,
        "settings_hash": config_hash(settings),
        "manifest": str(cohort.source) if cohort.source else None,
        "manifest_sha256": file_sha256(cohort.source) if cohort.source else None,
        "predictions": pred_source,
        "input_sha256": _input_hashes(ref, pred, seq),
    }
    return AgreementResult(
        reference=reference,
        predicted=predicted,
        agreement=agreement,
        summary=summary,
        failures=failures,
        provenance=provenance,
    )


# --- terminal summary --------------------------------------------------------------------


def format_summary(summary: Mapping[str, Any]) -> str:
    """A few lines for the terminal from :attr:`AgreementResult.summary`."""

    def num(value: Any, fmt: str = ".3f") -> str:
        return "n/a" if value is None else format(value, fmt)

    lines = [
        f"ICC(3,1) reference vs predicted masks: {summary['n_cases']} of "
        f"{summary['n_cases_total']} cases ({summary['n_excluded']} excluded), "
        f"{summary['n_features']} features ({summary['n_features'] - summary['n_defined']} "
        "with undefined ICC)",
        f"  median ICC {num(summary['median_icc'])}; "
        + "; ".join(
            f"ICC >= {t:.2f}: {summary[f'n_icc_ge_{t:.2f}']}/{summary['n_defined']} "
            f"({num(summary[f'fraction_icc_ge_{t:.2f}'], '.0%')})"
            for t in ICC_THRESHOLDS
        ),
        f"  median |pred - ref| / |ref|: {num(summary['median_abs_rel_diff'], '.1%')}",
        "  median ICC by class: "
        + ", ".join(f"{c} {num(b['median_icc'], '.2f')}" for c, b in summary["by_class"].items()),
    ]
    return "\n".join(lines)
