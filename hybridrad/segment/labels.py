"""Conversions between label masks and overlapping region channels (numpy only).

The network predicts one sigmoid channel per region of the label map (BraTS: WT, TC,
ET, overlapping); the label values are reconstructed voxel by voxel as the label whose
region memberships agree best with the predicted channels, ties going to the more
specific label (so ``ET`` wins over ``WT``-only, as in the BraTS convention).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hybridrad.io.labels import LabelMap


def labels_to_channels(
    labels: npt.NDArray[np.integer], label_map: LabelMap
) -> npt.NDArray[np.uint8]:
    """One binary channel per region of ``label_map``.

    Parameters
    ----------
    labels
        Integer label array of any shape.
    label_map
        Defines the regions (channel order = ``label_map.regions`` order).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(n_regions, *labels.shape)``.

    Examples
    --------
    >>> from hybridrad.io.labels import LabelMap
    >>> labels_to_channels(np.array([0, 1, 2, 4]), LabelMap.preset("brats")).tolist()
    [[0, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]]
    >>> labels_to_channels(np.array([0, 1, 2, 4]), LabelMap.preset("binary")).tolist()
    [[0, 1, 1, 1]]
    """
    # region_mask, not np.isin(labels, values): a ``nonzero`` map (binary) counts every
    # non-zero value, e.g. all of a BraTS mask's 1, 2 and 4 voxels.
    return np.stack([label_map.region_mask(labels, region) for region in label_map.regions]).astype(
        np.uint8
    )


def membership_table(label_map: LabelMap) -> tuple[list[int], npt.NDArray[np.uint8]]:
    """Label values (background 0 first) and their region membership, shape (L+1, R)."""
    values = [0, *sorted(label_map.labels)]
    table = np.array(
        [[int(v in members) for members in label_map.regions.values()] for v in values],
        dtype=np.uint8,
    )
    return values, table


def channels_to_labels(
    channels: npt.NDArray[np.bool_ | np.integer], label_map: LabelMap
) -> npt.NDArray[np.uint8]:
    """Label values from binary region channels (inverse of :func:`labels_to_channels`).

    Parameters
    ----------
    channels
        Binary array ``(n_regions, *spatial)``.
    label_map
        The label map whose regions the channels are.

    Returns
    -------
    numpy.ndarray
        ``uint8`` label array of shape ``spatial``.

    Examples
    --------
    >>> from hybridrad.io.labels import LabelMap
    >>> ch = np.array([[0, 1, 1, 1, 1], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]])
    >>> channels_to_labels(ch, LabelMap.preset("brats")).tolist()
    [0, 2, 1, 4, 4]
    """
    values, table = membership_table(label_map)
    n_regions = len(label_map.regions)
    if channels.shape[0] != n_regions:
        raise ValueError(
            f"{channels.shape[0]} channels given but label map {label_map.name!r} has "
            f"{n_regions} regions {list(label_map.regions)}"
        )
    flat = channels.reshape(n_regions, -1).astype(np.int16)
    best = np.zeros(flat.shape[1], dtype=np.int64)
    best_cost = np.full(flat.shape[1], np.inf)
    for i, row in enumerate(table.astype(np.int16)):
        # Hamming distance; a tiny bonus per membership breaks ties to the specific label.
        cost = np.abs(flat - row[:, None]).sum(axis=0) - 1e-3 * row.sum()
        better = cost < best_cost
        best[better] = i
        best_cost[better] = cost[better]
    return np.asarray(values, dtype=np.uint8)[best].reshape(channels.shape[1:])
