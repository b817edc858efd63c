"""Segmentation overlays in the radiological display.

A montage of axial slices with the true and the predicted contour over the image, drawn
as radiologists read it: anterior at the top, the patient's right on the viewer's left
(and so the patient's left on the viewer's right), with the four directions written at
the edges of every panel. :func:`radiological_arrays` reorients images to LPS with
``sitk.DICOMOrient`` so that any storage order (LPS, RAS, oblique-free permutations)
draws the same; :func:`overlay_figure` draws the montage and :func:`write_overlay`
writes it as a PNG.

matplotlib is imported lazily and figures are plain ``matplotlib.figure.Figure``
objects: drawing an overlay never switches the user's backend.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hybridrad.report.plots import _figure, _save_png

if TYPE_CHECKING:
    import SimpleITK as sitk
    from matplotlib.figure import Figure

__all__ = [
    "ORIENTATION_NOTE",
    "overlay_figure",
    "overlay_slices",
    "radiological_arrays",
    "write_overlay",
]

#: What the overlays show, as written under their titles.
ORIENTATION_NOTE = "axial, radiological view: anterior up, patient's right on the left"


def overlay_slices(
    truth: npt.NDArray[np.bool_], pred: npt.NDArray[np.bool_], max_slices: int = 12
) -> list[int]:
    """Axial slices (first axis) worth showing: at most ``max_slices``, in order.

    Always the slice of largest disagreement (truth XOR prediction) and, for every run
    of consecutive slices holding truth or prediction (a distant false positive makes a
    run of its own), its slice of largest area, largest runs first; the rest evenly
    spaced over the slices holding truth or prediction. The middle slice when both
    masks are empty.

    Parameters
    ----------
    truth, pred
        Boolean arrays ``(z, y, x)`` of one shape.
    max_slices
        Most slices returned.

    Returns
    -------
    list of int
        Slice indices, ascending.
    """
    truth = np.asarray(truth, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    n_z = truth.shape[0]
    area = (truth | pred).reshape(n_z, -1).sum(axis=1)
    candidates = np.flatnonzero(area)
    if candidates.size == 0:
        return [n_z // 2]
    chosen: list[int] = []
    disagreement = (truth ^ pred).reshape(n_z, -1).sum(axis=1)
    if disagreement.max() > 0:
        chosen.append(int(np.argmax(disagreement)))
    runs = np.split(candidates, np.flatnonzero(np.diff(candidates) > 1) + 1)
    for run in sorted(runs, key=lambda r: -int(area[r].max())):
        z = int(run[np.argmax(area[run])])
        if len(chosen) < max_slices and z not in chosen:
            chosen.append(z)
    spread = np.unique(np.linspace(0, candidates.size - 1, max_slices).round().astype(int))
    for z in candidates[spread].tolist():
        if len(chosen) < max_slices and int(z) not in chosen:
            chosen.append(int(z))
    return sorted(chosen)


def radiological_arrays(
    image: sitk.Image, *masks: sitk.Image
) -> tuple[npt.NDArray[np.float64], list[npt.NDArray[np.bool_]], tuple[float, float]]:
    """An image and masks as ``(z, y, x)`` arrays in LPS order, ready for
    :func:`overlay_figure`.

    Every input is reoriented with ``sitk.DICOMOrient(img, "LPS")``: array rows then run
    anterior to posterior and columns from the patient's right to left, so drawing row 0
    at the top shows anterior up and the patient's right on the viewer's left. The image
    is resampled (linear) onto the first mask's grid when the grids differ.

    Parameters
    ----------
    image
        The background image (a scalar 3D image).
    *masks
        Label images; every non-zero voxel counts. Masks after the first are resampled
        (nearest neighbour) onto the first one's grid when the grids differ.

    Returns
    -------
    image : numpy.ndarray
        Float array ``(z, y, x)``.
    masks : list of numpy.ndarray
        Boolean arrays of the same shape.
    spacing : tuple of float
        In-plane spacing ``(row, column)`` in mm (for the pixel aspect).
    """
    import SimpleITK as sitk

    from hybridrad.preprocess.resample import resample_onto

    if masks and not _same_grid(image, masks[0]):
        image = resample_onto(image, masks[0], pixel_type=image.GetPixelID())
    masks = tuple(
        m if i == 0 or _same_grid(m, masks[0]) else resample_onto(m, masks[0], is_mask=True)
        for i, m in enumerate(masks)
    )
    lps = sitk.DICOMOrient(image, "LPS")
    arrays = [sitk.GetArrayFromImage(sitk.DICOMOrient(m, "LPS")) != 0 for m in masks]
    spacing = lps.GetSpacing()
    return (
        sitk.GetArrayFromImage(lps).astype(np.float64),
        arrays,
        (float(spacing[1]), float(spacing[0])),
    )


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return a.GetSize() == b.GetSize() and all(
        np.allclose(x, y, atol=1e-4)
        for x, y in (
            (a.GetSpacing(), b.GetSpacing()),
            (a.GetOrigin(), b.GetOrigin()),
            (a.GetDirection(), b.GetDirection()),
        )
    )


def _orientation_letters(ax: Any) -> None:
    """'A' at the top, 'P' at the bottom, 'R' on the left, 'L' on the right."""
    style = {"color": "yellow", "fontsize": 7, "fontweight": "bold", "transform": ax.transAxes}
    ax.text(0.5, 0.99, "A", ha="center", va="top", **style)
    ax.text(0.5, 0.01, "P", ha="center", va="bottom", **style)
    ax.text(0.01, 0.5, "R", ha="left", va="center", **style)
    ax.text(0.99, 0.5, "L", ha="right", va="center", **style)


def overlay_figure(
    image: npt.NDArray[Any],
    truth: npt.NDArray[np.bool_] | None,
    pred: npt.NDArray[np.bool_] | None,
    title: str = "",
    *,
    spacing: tuple[float, float] | None = None,
    max_slices: int = 12,
    ncols: int = 4,
) -> Figure:
    """Montage of axial slices: image, truth and prediction contours, legend, directions.

    The slices are those of :func:`overlay_slices` (up to ``max_slices``: the largest
    disagreement, every separate run of truth or prediction, the rest evenly spaced),
    so a false positive far from the tumour shows.

    Parameters
    ----------
    image
        Array ``(z, y, x)`` of an image in LPS orientation (see
        :func:`radiological_arrays`). Rows run anterior to posterior and columns from
        the patient's right to left; row 0 is drawn at the top (``origin="upper"``),
        which gives the radiological display.
    truth, pred
        Boolean arrays of the same shape, or None when absent (a prediction without
        reference mask, or the reverse).
    title
        Figure title (the case id).
    spacing
        In-plane spacing ``(row, column)`` in mm, for the pixel aspect (square without).
    max_slices
        Most slices shown.
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        The montage (not registered with pyplot).
    """
    from matplotlib.lines import Line2D

    image = np.asarray(image)
    empty = np.zeros(image.shape, dtype=bool)
    t = empty if truth is None else np.asarray(truth, dtype=bool)
    p = empty if pred is None else np.asarray(pred, dtype=bool)
    slices = overlay_slices(t, p, max_slices)
    aspect = 1.0 if spacing is None else float(spacing[0]) / float(spacing[1])
    ncols = max(1, min(ncols, len(slices)))
    nrows = math.ceil(len(slices) / ncols)
    fig, axes = _figure((max(2.6 * ncols, 4.5), 2.6 * nrows + 0.9), nrows, ncols, squeeze=False)
    colours = {}
    if truth is not None:
        colours["truth"] = "lime"
    if pred is not None:
        colours["prediction"] = "magenta"
    for ax, z in zip(axes.ravel(), slices, strict=False):
        ax.imshow(np.asarray(image[z], dtype=float), cmap="gray", aspect=aspect, origin="upper")
        for name, mask in (("truth", t), ("prediction", p)):
            if name in colours and mask[z].any():
                ax.contour(
                    mask[z].astype(float), levels=[0.5], colors=colours[name], linewidths=1.0
                )
        ax.set_title(f"z={z}", fontsize=8)
        _orientation_letters(ax)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(f"{title}\n{ORIENTATION_NOTE}", fontsize=9)
    handles = [Line2D([], [], color=c, lw=2, label=name) for name, c in colours.items()]
    if handles:
        # an axes legend (below the bottom-left panel) counts in tight_layout; a figure one not
        axes[-1, 0].legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.02),
            ncol=2,
            fontsize=8,
            frameon=False,
        )
    fig.tight_layout()
    return fig


def write_overlay(
    image: npt.NDArray[Any],
    truth: npt.NDArray[np.bool_],
    pred: npt.NDArray[np.bool_],
    path: str | os.PathLike[str],
    title: str = "",
    *,
    spacing: tuple[float, float] | None = None,
    max_slices: int = 12,
) -> Path:
    """Write the montage of :func:`overlay_figure` as a PNG (120 dpi).

    Parameters
    ----------
    image, truth, pred
        Arrays ``(z, y, x)`` in LPS orientation (``sitk.DICOMOrient(img, "LPS")`` then
        ``sitk.GetArrayFromImage``; see :func:`radiological_arrays`).
    path
        PNG file to write (folders are created).
    title, spacing, max_slices
        As for :func:`overlay_figure`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    fig = overlay_figure(image, truth, pred, title, spacing=spacing, max_slices=max_slices)
    return _save_png(fig, path)
