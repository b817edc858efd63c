"""Evaluation of predicted masks against a manifest's ground truth.

Per case and region: Dice (MONAI ``DiceMetric``), 95th-percentile Hausdorff distance
in mm (``HausdorffDistanceMetric(percentile=95)`` with the image spacing) and volume
error; plus overlay PNGs for visual review.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import SimpleITK as sitk

from hybridrad.io.images import read_image
from hybridrad.io.labels import LabelMap
from hybridrad.io.manifest import CASE_ID, MASK, Cohort
from hybridrad.segment._deps import require_torch
from hybridrad.segment.errors import SegmentationInputError

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
        ``dice`` (1 when both are empty, 0 when only one is), ``hd95_mm`` (NaN unless
        both are non-empty), ``volume_true_ml``, ``volume_pred_ml``, ``volume_error_ml``
        (pred - true) and ``volume_error_rel`` (relative to the true volume).

    Examples
    --------
    >>> t = np.zeros((1, 10, 10), bool); t[0, :, :4] = True
    >>> p = np.zeros((1, 10, 10), bool); p[0, :, 2:6] = True
    >>> round(region_metrics(t, p, (1.0, 1.0, 1.0))["dice"], 3)
    0.5
    """
    torch = require_torch()
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    y = torch.as_tensor(truth.astype(np.float32))[None, None]
    yp = torch.as_tensor(pred.astype(np.float32))[None, None]
    dice_metric = DiceMetric(include_background=True, ignore_empty=False)
    dice_value = dice_metric(y_pred=yp, y=y)
    assert isinstance(dice_value, torch.Tensor)
    dice = float(dice_value[0, 0])
    hd95 = math.nan
    if truth.any() and pred.any():
        hd = HausdorffDistanceMetric(include_background=True, percentile=95)
        hd_value = hd(y_pred=yp, y=y, spacing=list(spacing))
        assert isinstance(hd_value, torch.Tensor)
        hd95 = float(hd_value[0, 0])
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


def prediction_paths(cohort: Cohort, pred_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Predicted mask of each case: from ``pred_dir/manifest.csv`` (``mask`` column) when
    present, else ``pred_dir/masks/<case_id>.nii.gz`` or ``pred_dir/<case_id>.nii.gz``.

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
        for p in (folder / "masks" / f"{case.case_id}.nii.gz", folder / f"{case.case_id}.nii.gz"):
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

    Parameters
    ----------
    cohort
        Cases with ground-truth masks.
    pred_dir
        Output folder of ``hybridrad segment`` (or a folder of ``<case_id>.nii.gz``).
    label_map
        Regions to score (default: the cohort's label map).
    overlay_dir
        Write ``<case_id>.png`` overlays there (image, truth and prediction contours on
        the axial slice with the largest true tumour area).
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
    """
    lm = label_map or cohort.label_map
    preds = prediction_paths(cohort, pred_dir)
    rows: list[dict[str, Any]] = []
    for case in cohort:
        truth_img = case.read_mask()
        pred_img = read_image(preds[case.case_id])
        if truth_img.GetSize() != pred_img.GetSize() or not np.allclose(
            truth_img.GetSpacing(), pred_img.GetSpacing(), atol=1e-4
        ):
            raise SegmentationInputError(
                f"case {case.case_id!r}: prediction {preds[case.case_id]} has size "
                f"{pred_img.GetSize()} / spacing {pred_img.GetSpacing()} but the true mask has "
                f"{truth_img.GetSize()} / {truth_img.GetSpacing()}; predict on the same images."
            )
        truth = sitk.GetArrayViewFromImage(truth_img)
        pred = sitk.GetArrayViewFromImage(pred_img)
        spacing = tuple(float(s) for s in truth_img.GetSpacing()[::-1])
        for region, values in lm.regions.items():
            m = region_metrics(np.isin(truth, values), np.isin(pred, values), spacing)
            rows.append({CASE_ID: case.case_id, "region": region, **m})
        if overlay_dir is not None:
            seq = overlay_sequence or ("flair" if "flair" in case.images else cohort.sequences[0])
            image = sitk.GetArrayFromImage(case.read(seq))
            write_overlay(
                image, truth > 0, pred > 0, Path(overlay_dir) / f"{case.case_id}.png", case.case_id
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, median and standard deviation of each metric per region."""
    metrics = [c for c in METRIC_COLUMNS if c not in (CASE_ID, "region")]
    return table.groupby("region", sort=False)[metrics].agg(["mean", "median", "std"])


def write_overlay(
    image: npt.NDArray[Any],
    truth: npt.NDArray[np.bool_],
    pred: npt.NDArray[np.bool_],
    path: Path,
    title: str = "",
) -> Path:
    """PNG of the axial slice with the largest true area: image, truth (green) and
    prediction (red) contours. Uses matplotlib's Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    area = truth.reshape(truth.shape[0], -1).sum(axis=1)
    if area.max() == 0:
        area = pred.reshape(pred.shape[0], -1).sum(axis=1)
    z = int(np.argmax(area))
    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(np.asarray(image[z], dtype=float), cmap="gray", origin="lower")
    for mask, colour in ((truth, "lime"), (pred, "red")):
        if mask[z].any():
            ax.contour(mask[z].astype(float), levels=[0.5], colors=colour, linewidths=1.0)
    ax.set_title(f"{title} z={z} (green truth, red prediction)", fontsize=8)
    ax.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
