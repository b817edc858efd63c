"""Preprocessing before segmentation and extraction: resampling a cohort to one grid.

Images are resampled with linear interpolation (to ``float32``, so integer images are
not truncated), masks with nearest neighbour onto the same grid, keeping origin and
direction. A case that cannot be read or resampled is recorded and left out; the others
go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.errors import HybridradError
from hybridrad.io.manifest import CASE_ID, MASK, Cohort, safe_filename

log = logging.getLogger(__name__)


def resample_image(image: sitk.Image, spacing: Sequence[float], *, is_mask: bool) -> sitk.Image:
    """``image`` on a grid of ``spacing`` (mm) covering the same extent.

    Examples
    --------
    >>> img = sitk.Image([10, 10, 4], sitk.sitkUInt8)
    >>> img.SetSpacing((1.0, 1.0, 5.0))
    >>> out = resample_image(img, (2.0, 2.0, 2.0), is_mask=True)
    >>> out.GetSize(), out.GetSpacing()
    ((5, 5, 10), (2.0, 2.0, 2.0))
    """
    old_size = np.array(image.GetSize(), dtype=float)
    old_spacing = np.array(image.GetSpacing(), dtype=float)
    new_spacing = np.array(spacing, dtype=float)
    size = np.maximum(1, np.round(old_size * old_spacing / new_spacing)).astype(int)
    if is_mask:
        interpolator, pixel = sitk.sitkNearestNeighbor, image.GetPixelID()
    else:
        interpolator, pixel = sitk.sitkLinear, sitk.sitkFloat32
    return sitk.Resample(
        image,
        [int(v) for v in size],
        sitk.Transform(),
        interpolator,
        image.GetOrigin(),
        tuple(float(v) for v in new_spacing),
        image.GetDirection(),
        0,
        pixel,
    )


def resample_cohort(
    cohort: Cohort, out: str | os.PathLike[str], spacing: Sequence[float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resample every image and mask of ``cohort`` to ``spacing`` under ``out``.

    Returns
    -------
    manifest : pandas.DataFrame
        The cases done: ``case_id``, one absolute path per sequence, ``mask``, ``site``.
    failures : pandas.DataFrame
        ``case_id``, ``error`` for the cases left out.
    """
    root = Path(out)
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    for case in cohort:
        folder = root / "images" / safe_filename(case.case_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            row: dict[str, Any] = {CASE_ID: case.case_id}
            for seq in case.images:
                path = folder / f"{seq}.nii.gz"
                sitk.WriteImage(resample_image(case.read(seq), spacing, is_mask=False), path)
                row[seq] = str(path.resolve())
            if case.mask is not None:
                path = folder / "mask.nii.gz"
                sitk.WriteImage(resample_image(case.read_mask(), spacing, is_mask=True), path)
                row[MASK] = str(path.resolve())
            if case.site is not None:
                row["site"] = case.site
            rows.append(row)
        except (HybridradError, RuntimeError, OSError) as exc:
            log.warning("case %s: resampling failed: %s", case.case_id, exc)
            failures.append({CASE_ID: case.case_id, "error": f"{type(exc).__name__}: {exc}"})
    return pd.DataFrame(rows), pd.DataFrame(failures, columns=[CASE_ID, "error"])
