"""Evaluation of predicted masks against a manifest's ground truth.

Per case and region: Dice (MONAI ``DiceMetric``), 95th-percentile Hausdorff distance
in mm (MONAI's surface distances with the image spacing) and volume error; plus overlay
PNGs for visual review. Also :func:`check_training_labels`, which checks a cohort's masks
against its label map before training.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import SimpleITK as sitk

from hybridrad.errors import HybridradError, HybridradWarning, MaskLabelError
from hybridrad.io.images import read_image
from hybridrad.io.labels import PRESETS, LabelMap
from hybridrad.io.manifest import CASE_ID, MASK, Cohort, safe_filename
from hybridrad.preprocess.resample import resample_onto
from hybridrad.report.overlay import _same_grid
from hybridrad.report.overlay import overlay_slices as overlay_slices  # re-export
from hybridrad.report.overlay import write_overlay as write_overlay  # re-export
from hybridrad.segment._deps import require_torch
from hybridrad.segment.errors import SegmentationInputError


class EmptyRegionWarning(HybridradWarning):
    """A region is empty in both the true and the predicted mask of some cases, so its
    Dice and HD95 are undefined (NaN) there."""


METRIC_COLUMNS = [
    CASE_ID,
    "region",
    "dice",
    "hd95_mm",
    "volume_true_ml",
    "volume_pred_ml",
    "volume_error_ml",
    "volume_error_rel",
]


def region_metrics(
    truth: npt.NDArray[np.bool_],
    pred: npt.NDArray[np.bool_],
    spacing: tuple[float, ...],
) -> dict[str, float]:
    """Dice, HD95 (mm) and volumes (mL) of one binary region.

    Parameters
    ----------
    truth, pred
        Boolean arrays of one shape (numpy order ``z, y, x``).
    spacing
        Voxel spacing in the same axis order as the arrays (mm).

    Returns
    -------
    dict
        ``dice`` (NaN when both are empty: undefined, not a perfect score; 0 when only
        one is), ``hd95_mm`` (NaN unless both are non-empty), ``volume_true_ml``,
        ``volume_pred_ml``, ``volume_error_ml`` (pred - true) and ``volume_error_rel``
        (relative to the true volume).

    Examples
    --------
    >>> t = np.zeros((1, 10, 10), bool); t[0, :, :4] = True
    >>> p = np.zeros((1, 10, 10), bool); p[0, :, 2:6] = True
    >>> round(region_metrics(t, p, (1.0, 1.0, 1.0))["dice"], 3)
    0.5
    """
    torch = require_torch()
    from monai.metrics import DiceMetric

    truth = np.asarray(truth, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    y = torch.as_tensor(truth.astype(np.float32))[None, None]
    yp = torch.as_tensor(pred.astype(np.float32))[None, None]
    dice = math.nan
    if truth.any() or pred.any():
        dice_value = DiceMetric(include_background=True, ignore_empty=False)(y_pred=yp, y=y)
        assert isinstance(dice_value, torch.Tensor)
        dice = float(dice_value[0, 0])
    hd95 = hd95_mm(truth, pred, spacing) if truth.any() and pred.any() else math.nan
    voxel_ml = float(np.prod(spacing)) / 1000.0
    vt = float(truth.sum()) * voxel_ml
    vp = float(pred.sum()) * voxel_ml
    return {
        "dice": dice,
        "hd95_mm": hd95,
        "volume_true_ml": vt,
        "volume_pred_ml": vp,
        "volume_error_ml": vp - vt,
        "volume_error_rel": (vp - vt) / vt if vt > 0 else math.nan,
    }


def hd95_mm(
    truth: npt.NDArray[np.bool_], pred: npt.NDArray[np.bool_], spacing: tuple[float, ...]
) -> float:
    """Symmetric 95th-percentile Hausdorff distance (mm) of two non-empty binary masks.

    The same numbers as MONAI's ``HausdorffDistanceMetric(percentile=95)``: edges by
    :func:`monai.metrics.utils.get_mask_edges` (cropped to the union, binary erosion),
    Euclidean surface distances both ways by
    :func:`monai.metrics.utils.get_surface_distance` with ``spacing``, the larger of the
    two 95th percentiles. Called directly because the metric class passes an argument
    MONAI 1.5+ deprecates (a ``FutureWarning`` on every call).
    """
    from monai.metrics.utils import get_mask_edges, get_surface_distance

    edges_pred, edges_true = get_mask_edges(np.asarray(pred, bool), np.asarray(truth, bool))
    spc = [float(s) for s in spacing]
    worst = -math.inf
    for a, b in ((edges_pred, edges_true), (edges_true, edges_pred)):
        dist = np.asarray(get_surface_distance(a, b, distance_metric="euclidean", spacing=spc))
        if dist.size == 0:
            return math.nan
        worst = max(worst, float(np.quantile(dist, 0.95)))
    return worst


def prediction_paths(cohort: Cohort, pred_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Predicted mask of each case: from ``pred_dir/manifest.csv`` (``mask`` column) when
    present, else ``pred_dir/masks/<name>.nii.gz`` or ``pred_dir/<name>.nii.gz``, with
    ``<name>`` the case id made safe by :func:`hybridrad.io.manifest.safe_filename` (the
    id itself for ordinary ids), never a path outside ``pred_dir``.

    Raises
    ------
    SegmentationInputError
        No prediction found for some case.
    """
    folder = Path(pred_dir)
    found: dict[str, Path] = {}
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        table = pd.read_csv(manifest, dtype=str)
        for cid, cell in zip(table[CASE_ID], table[MASK], strict=True):
            p = Path(cell)
            found[str(cid)] = p if p.is_absolute() else (folder / p)
    for case in cohort:
        if case.case_id in found:
            continue
        name = f"{safe_filename(case.case_id)}.nii.gz"
        for p in (folder / "masks" / name, folder / name):
            if p.is_file():
                found[case.case_id] = p
                break
    missing = [c for c in cohort.case_ids if c not in found]
    if missing:
        raise SegmentationInputError(
            f"no predicted mask in {folder} for case(s) {missing[:10]}; run `hybridrad segment "
            f"MANIFEST --out {folder}` first or drop those cases from the manifest."
        )
    return {c: found[c] for c in cohort.case_ids}


def evaluate_masks(
    cohort: Cohort,
    pred_dir: str | os.PathLike[str],
    *,
    label_map: LabelMap | None = None,
    overlay_dir: str | os.PathLike[str] | None = None,
    overlay_sequence: str | None = None,
) -> pd.DataFrame:
    """Compare predicted masks with the manifest's masks, per case and region.

    A region empty in both masks of a case has Dice and HD95 NaN there (undefined, left
    out of means) and one :class:`EmptyRegionWarning` per call names such regions with
    their case counts.

    Parameters
    ----------
    cohort
        Cases with ground-truth masks.
    pred_dir
        Output folder of ``hybridrad segment`` (or a folder of ``<case_id>.nii.gz``).
    label_map
        Regions to score (default: the cohort's label map).
    overlay_dir
        Write ``<case_id>.png`` overlays there (see :func:`write_overlay`; ids that are no
        plain file name are made safe by :func:`hybridrad.io.manifest.safe_filename`).
    overlay_sequence
        Background image of the overlays (default ``flair`` when present, else the first).

    Returns
    -------
    pandas.DataFrame
        One row per case and region with :data:`METRIC_COLUMNS`.

    Raises
    ------
    SegmentationInputError
        Missing prediction, or a prediction not on its ground truth's grid.
    MaskLabelError
        A true or predicted mask holds values the label map does not define (evaluated
        with the wrong ``--labels``), or non-integer values; the message names the case,
        the file, the values and a label map that fits. Masks are read by
        :meth:`~hybridrad.io.labels.LabelMap.check_values`, so ``binary`` scores every
        non-zero voxel (a BraTS mask's whole tumour) and ``ignore`` values are background.
    """
    lm = label_map or cohort.label_map
    preds = prediction_paths(cohort, pred_dir)
    rows: list[dict[str, Any]] = []
    empty_both: dict[str, int] = {}
    for case in cohort:
        cid = case.case_id
        truth_img = case.read_mask()
        pred_img = _read_prediction(preds[cid], cid, case.nonfinite)
        if truth_img.GetSize() != pred_img.GetSize() or not np.allclose(
            truth_img.GetSpacing(), pred_img.GetSpacing(), atol=1e-4
        ):
            raise SegmentationInputError(
                f"case {cid!r}: prediction {preds[cid]} has size "
                f"{pred_img.GetSize()} / spacing {pred_img.GetSpacing()} but the true mask has "
                f"{truth_img.GetSize()} / {truth_img.GetSpacing()}; predict on the same images."
            )
        # the one mask-value check: unknown values are errors; ignored values read as
        # background; a ``nonzero`` map (binary) reads every other value as its label
        truth = lm.check_values(
            sitk.GetArrayViewFromImage(truth_img), f"case {cid!r}: true mask {case.mask}"
        )
        pred = lm.check_values(
            sitk.GetArrayViewFromImage(pred_img), f"case {cid!r}: predicted mask {preds[cid]}"
        )
        spacing = tuple(float(s) for s in truth_img.GetSpacing()[::-1])
        for region in lm.regions:
            m = region_metrics(lm.region_mask(truth, region), lm.region_mask(pred, region), spacing)
            if math.isnan(m["dice"]):
                empty_both[region] = empty_both.get(region, 0) + 1
            rows.append({CASE_ID: cid, "region": region, **m})
        if overlay_dir is not None:
            seq = overlay_sequence or ("flair" if "flair" in case.images else cohort.sequences[0])
            image_img = case.read(seq)
            if not _same_grid(image_img, truth_img):
                image_img = resample_onto(image_img, truth_img, pixel_type=image_img.GetPixelID())
            image, t_lps, p_lps = (
                sitk.DICOMOrient(img, "LPS")
                for img in (
                    image_img,
                    _foreground(truth, truth_img),
                    _foreground(pred, pred_img),
                )
            )
            write_overlay(
                sitk.GetArrayFromImage(image),
                sitk.GetArrayViewFromImage(t_lps) > 0,
                sitk.GetArrayViewFromImage(p_lps) > 0,
                Path(overlay_dir) / f"{safe_filename(cid)}.png",
                cid,
                spacing=(image.GetSpacing()[1], image.GetSpacing()[0]),
            )
    if empty_both:
        listed = ", ".join(f"{r} in {n} of {len(cohort)} case(s)" for r, n in empty_both.items())
        warnings.warn(
            f"region(s) empty in both the true and the predicted mask: {listed}; Dice and "
            "HD95 are NaN there (empty in both) and left out of the means. If the masks "
            "never hold a region, evaluate with the label map they were drawn with "
            f"(--labels; now {lm.name!r}).",
            EmptyRegionWarning,
            stacklevel=2,
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _read_prediction(path: Path, case_id: str, nonfinite: str) -> sitk.Image:
    """Read a predicted mask. No :class:`~hybridrad.errors.ConstantImageWarning` for an
    empty one: empty regions are reported by :class:`EmptyRegionWarning`."""
    try:
        return read_image(path, nonfinite=nonfinite, warn_constant=False)
    except HybridradError as exc:
        raise type(exc)(f"case {case_id!r}, predicted mask: {exc}") from exc


def _foreground(labels: npt.NDArray[Any], like: sitk.Image) -> sitk.Image:
    """The voxels of some label (ignored values are background) on the grid of ``like``."""
    out = sitk.GetImageFromArray(np.asarray(labels != 0, dtype=np.uint8))
    out.CopyInformation(like)
    return out


def _presets_for(values: Iterable[int], *, every_region: bool) -> list[str]:
    """Preset label maps that accept every value in ``values`` (see
    :meth:`~hybridrad.io.labels.LabelMap.accepts`; ``binary`` accepts any) and, with
    ``every_region``, none of whose regions would be empty."""
    found = sorted({int(v) for v in values} - {0})
    names = []
    for name, preset in PRESETS.items():
        if not all(preset.accepts(v) for v in found):
            continue
        if every_region and _empty_regions(preset, found):
            continue
        names.append(name)
    return names


def _empty_regions(lm: LabelMap, values: Iterable[int]) -> dict[str, tuple[int, ...]]:
    """The regions of ``lm`` that none of ``values`` falls in (read as ``lm`` reads them:
    every non-zero value for a ``nonzero`` map, never an ``ignore`` value)."""
    arr = np.asarray(sorted(set(values)), dtype=np.int64)
    return {r: v for r, v in lm.regions.items() if not lm.region_mask(arr, r).any()}


def check_training_labels(
    cohort: Cohort, *, every_region: bool = True, jobs: int = 4
) -> dict[str, list[int]]:
    """Check a cohort's masks against its label map before training on them.

    Values outside the label map are found by :func:`hybridrad.io.validate.validate_cohort`
    (its :class:`~hybridrad.errors.MaskLabelError` messages name the case, the file and the
    values). A region none of whose values occurs in any mask (the BraTS map on 0/1 masks:
    ET never present) would teach the network to predict nothing there.

    Parameters
    ----------
    cohort
        Cases with masks, read with ``cohort.label_map``.
    every_region
        Also require every region to occur in at least one mask.
    jobs
        Threads reading the masks.

    Returns
    -------
    dict
        The sorted mask values of each case.

    Raises
    ------
    MaskLabelError
        Some mask holds values the label map does not define (every such case listed).
    SegmentationInputError
        A region is empty in every mask (names the region, the values found and the fix).
    """
    from hybridrad.io.validate import validate_cohort

    lm = cohort.label_map
    report = validate_cohort(cohort, check_mask_values=True, jobs=jobs)
    bad = report.of_kind(MaskLabelError)
    if bad:
        lines = [p.message for p in bad[:10]]
        if len(bad) > 10:
            lines.append(f"... and {len(bad) - 10} more case(s)")
        raise MaskLabelError(
            f"{len(bad)} training mask(s) hold values label map {lm.name!r} does not define:\n  "
            + "\n  ".join(lines)
        )
    cases = [c for c in cohort if c.mask is not None]

    def values_of(case: Any) -> list[int]:
        mask = case.read_mask()  # keep the image alive while its array view is read
        return [int(v) for v in np.unique(sitk.GetArrayViewFromImage(mask)).tolist()]

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        found = dict(zip([c.case_id for c in cases], pool.map(values_of, cases), strict=True))
    if every_region and cases:
        present = set().union(*map(set, found.values()))
        empty = _empty_regions(lm, present)
        if empty:
            fits = [n for n in _presets_for(present, every_region=True) if n != lm.name]
            fix = (
                f"train with --labels {fits[0]}"
                + (f" (or {', '.join(fits[1:])})" if fits[1:] else "")
                if fits
                else "give a label map (YAML) without that region, or relabel the masks"
            )
            listed = ", ".join(f"{r!r} (values {list(v)})" for r, v in empty.items())
            raise SegmentationInputError(
                f"region(s) {listed} of label map {lm.name!r} are empty in every one of the "
                f"{len(cases)} training mask(s) of {cohort.source or 'the cohort'} (values "
                f"found: {sorted(present)}); the network would learn to predict nothing "
                f"there. Fix: {fix}."
            )
    return found


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, median and standard deviation of each metric per region."""
    metrics = [c for c in METRIC_COLUMNS if c not in (CASE_ID, "region")]
    return table.groupby("region", sort=False)[metrics].agg(["mean", "median", "std"])


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """A compact summary per region that prints within 80 columns.

    Columns: ``n`` cases, ``empty`` (cases where the region is empty in both masks:
    Dice NaN, left out), ``dice_mean``, ``dice_sd``, ``dice_median``, ``hd95_median``
    (mm), ``vol_err_ml`` (mean predicted - true volume) and ``vol_err_rel`` (median
    relative volume error).
    """
    g = table.groupby("region", sort=False)
    return pd.DataFrame(
        {
            "n": g.size(),
            "empty": g["dice"].apply(lambda d: int(d.isna().sum())),
            "dice_mean": g["dice"].mean(),
            "dice_sd": g["dice"].std(),
            "dice_median": g["dice"].median(),
            "hd95_median": g["hd95_mm"].median(),
            "vol_err_ml": g["volume_error_ml"].mean(),
            "vol_err_rel": g["volume_error_rel"].median(),
        }
    )
