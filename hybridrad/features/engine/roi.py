"""The region of interest as the texture classes see it: voxel list, angles, neighbours.

Every texture matrix of the native engine is built from *paired voxel indices*: for an
offset ``o``, :meth:`Roi.neighbours` gives, for each ROI voxel ``n``, the index of the
ROI voxel at ``coords[n] + o`` (or -1 when that voxel is outside the ROI). Grey levels
of all image types of a case are an array ``levels`` of shape ``(B, N)`` in the same
voxel order, so a pair table indexes every image type at once
(``levels[:, nbr]``), and the whole construction is expressible in torch as well.

The ROI is the mask cropped to its bounding box without padding, exactly the
``maskArray`` a pyradiomics feature class receives; offsets are in array axes
``(z, y, x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

T = TypeVar("T")


def angles(
    size: Sequence[int],
    distances: Iterable[int] = (1,),
    *,
    force2d_dimension: int | None = None,
    bidirectional: bool = False,
) -> np.ndarray:
    """The neighbour offsets pyradiomics' C core generates (``build_angles``), in its order.

    Parameters
    ----------
    size
        Array shape of the cropped ROI box, ``(z, y, x)``: offsets that do not fit in
        the box are left out, as pyradiomics does.
    distances
        Chebyshev (infinity-norm) distances to include.
    force2d_dimension
        Axis that is not moved along (``force2D``), or None for 3D.
    bidirectional
        Both ``o`` and ``-o`` (GLSZM connectivity) or only the first of each pair
        (GLCM, GLRLM, NGTDM, GLDM).

    Returns
    -------
    numpy.ndarray
        ``(Na, ndim)`` int offsets.

    Examples
    --------
    >>> angles((5, 5, 5)).shape
    (13, 3)
    >>> angles((5, 5, 5))[0].tolist()
    [1, 1, 1]
    >>> angles((1, 5, 5)).tolist()  # a single slice: in-plane only
    [[0, 1, 1], [0, 1, 0], [0, 1, -1], [0, 0, 1]]
    >>> len(angles((5, 5, 5), [1, 2]))
    62
    """
    size = [int(s) for s in size]
    dists = sorted({int(d) for d in distances})
    if not dists or dists[0] < 1:
        raise ValueError(f"distances must be positive integers, got {list(distances)}")
    dmax = dists[-1]
    steps = np.arange(dmax, -dmax - 1, -1)  # max_d ... -max_d, C's enumeration order
    grid = np.stack(np.meshgrid(*([steps] * len(size)), indexing="ij"), -1).reshape(-1, len(size))
    ok = np.all((grid < np.array(size)) & (grid > -np.array(size)), axis=1)
    if force2d_dimension is not None:
        ok &= grid[:, force2d_dimension] == 0
    cheb = np.abs(grid).max(axis=1)
    ok &= np.isin(cheb, dists)
    out = grid[ok]
    if not bidirectional:
        out = out[
            : len(out) // 2
        ]  # the enumeration is antisymmetric: first half is one of each pair
    return out.astype(np.int64)


class Roi:
    """A boolean ROI box with its voxel list and cached neighbour tables.

    Parameters
    ----------
    mask
        Boolean array ``(z, y, x)``, cropped to the ROI's bounding box (pyradiomics'
        ``cropToTumorMask`` with no padding).
    spacing
        Voxel spacing in SimpleITK order ``(x, y, z)``, mm.

    Attributes
    ----------
    coords
        ``(N, ndim)`` voxel indices in C order (``np.nonzero`` order): the order of the
        ``levels`` / ``values`` arrays every class receives.
    n
        Number of ROI voxels.

    Examples
    --------
    >>> m = np.zeros((1, 2, 3), bool); m[0, 0, :] = True; m[0, 1, 0] = True
    >>> roi = Roi(m, (1.0, 1.0, 1.0))
    >>> roi.n
    4
    >>> roi.neighbours((0, 0, 1)).tolist()  # right-hand neighbour of each voxel
    [1, 2, -1, -1]
    >>> roi.neighbours((0, 1, 0)).tolist()  # the one below
    [3, -1, -1, -1]
    """

    def __init__(self, mask: np.ndarray, spacing: Sequence[float]) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            raise ValueError("the ROI is empty")
        self.mask = mask
        self.spacing = tuple(float(s) for s in spacing)
        self.coords = np.argwhere(mask)
        self.n = len(self.coords)
        self._pad = -1
        self._lut = np.empty(0, np.int64)
        self._flat = np.empty(0, np.int64)
        self._strides: np.ndarray = np.empty(0, np.int64)
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        self._memo: dict[Hashable, Any] = {}

    @property
    def shape(self) -> tuple[int, ...]:
        """The box shape ``(z, y, x)``."""
        return tuple(int(s) for s in self.mask.shape)

    def angles(
        self,
        distances: Iterable[int] = (1,),
        *,
        force2d_dimension: int | None = None,
        bidirectional: bool = False,
    ) -> np.ndarray:
        """:func:`angles` for this box."""
        return angles(
            self.shape, distances, force2d_dimension=force2d_dimension, bidirectional=bidirectional
        )

    def _build(self, pad: int) -> None:
        padded = tuple(s + 2 * pad for s in self.mask.shape)
        lut = np.full(padded, -1, dtype=np.int64)
        inner = tuple(slice(pad, pad + s) for s in self.mask.shape)
        lut[inner][self.mask] = np.arange(self.n)
        self._lut = lut.ravel()
        self._strides = np.array(lut.strides, dtype=np.int64) // lut.itemsize
        self._flat = (self.coords + pad) @ self._strides
        self._pad = pad

    def neighbours(self, offset: Sequence[int]) -> np.ndarray:
        """For each ROI voxel, the index of the ROI voxel at ``coords + offset``, or -1.

        Tables are cached per offset.
        """
        key = tuple(int(o) for o in offset)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        reach = max((abs(o) for o in key), default=0)
        if reach > self._pad:
            self._build(max(reach, 1))
        out = self._lut[self._flat + int(np.dot(key, self._strides))]
        self._cache[key] = out
        return out

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, computed once per ROI and ``key``: geometry that depends on the
        mask only (pair lists, line orders) is shared by every image, batch and class."""
        if key not in self._memo:
            self._memo[key] = build()
        return cast(T, self._memo[key])

    def neighbour_table(self, offsets: np.ndarray) -> np.ndarray:
        """:meth:`neighbours` of each row of ``offsets``: ``(K, N)`` int64."""
        if len(offsets) == 0:
            return np.empty((0, self.n), dtype=np.int64)
        return np.stack([self.neighbours(o) for o in offsets])
