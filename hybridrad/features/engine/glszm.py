"""Grey Level Size Zone Matrix (GLSZM) features of B images of one ROI at once.

pyradiomics 3.0.1 (``radiomics.glszm`` with the C ``calculate_glszm``) grows every zone
by flood fill: a zone is a connected set of ROI voxels with the same grey level, voxels
being connected when their Chebyshev distance is 1 (26-connectivity in 3D, 8 in the
``force2D`` plane; the offsets are the C ``build_angles`` ones, i.e. those that fit in the
cropped box). ``P(i, j)`` counts the zones of grey level ``i`` and size ``j``.

Here the zones of all ``B`` rows are found in one graph: node ``b * N + n`` is voxel
``n`` of image ``b``, and an edge joins two ROI voxels that are neighbours (one offset
of each ``+o/-o`` pair suffices for an undirected graph) and share the grey level in
that image. :func:`scipy.sparse.csgraph.connected_components` labels the zones; their
sizes are a ``bincount`` of the labels. Rows are processed in chunks so the edge list
stays bounded (about 64 MB).

``P`` is never built densely (pyradiomics' matrix is ``Ng x`` the largest zone): every
feature is a sum over the non-zero entries ``(b, i, j, P)`` of the matrix, its row sums
``pg(i)`` and its column sums ``ps(j)``, which equals pyradiomics' sums over the matrix
with empty grey levels and empty zone sizes deleted (zero entries contribute exactly
zero to each of them). The same entry-wise evaluation serves the GLDM
(:mod:`hybridrad.features.engine.gldm`), whose features are the GLSZM formulas with
``j`` the dependence size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from hybridrad.errors import EngineUnsupportedError
from hybridrad.features.engine._common import check_features
from hybridrad.features.engine.roi import Roi

__all__ = ["GLSZM_FEATURES", "glszm_features"]

GLSZM_FEATURES: tuple[str, ...] = (
    "SmallAreaEmphasis",
    "LargeAreaEmphasis",
    "GrayLevelNonUniformity",
    "GrayLevelNonUniformityNormalized",
    "SizeZoneNonUniformity",
    "SizeZoneNonUniformityNormalized",
    "ZonePercentage",
    "GrayLevelVariance",
    "ZoneVariance",
    "ZoneEntropy",
    "LowGrayLevelZoneEmphasis",
    "HighGrayLevelZoneEmphasis",
    "SmallAreaLowGrayLevelEmphasis",
    "SmallAreaHighGrayLevelEmphasis",
    "LargeAreaLowGrayLevelEmphasis",
    "LargeAreaHighGrayLevelEmphasis",
)

# the GLSZM formula each name stands for (GLDM names map onto the same keys)
_GLSZM_FORMULA: dict[str, str] = {
    "SmallAreaEmphasis": "SE",
    "LargeAreaEmphasis": "LE",
    "GrayLevelNonUniformity": "GLN",
    "GrayLevelNonUniformityNormalized": "GLNN",
    "SizeZoneNonUniformity": "SN",
    "SizeZoneNonUniformityNormalized": "SNN",
    "ZonePercentage": "ZP",
    "GrayLevelVariance": "GLV",
    "ZoneVariance": "SV",
    "ZoneEntropy": "E",
    "LowGrayLevelZoneEmphasis": "LGLE",
    "HighGrayLevelZoneEmphasis": "HGLE",
    "SmallAreaLowGrayLevelEmphasis": "SLGLE",
    "SmallAreaHighGrayLevelEmphasis": "SHGLE",
    "LargeAreaLowGrayLevelEmphasis": "LLGLE",
    "LargeAreaHighGrayLevelEmphasis": "LHGLE",
}

_EDGE_BUDGET = 2_000_000  # candidate edges per connected_components call (<= ~64 MB in all)


def check_levels(levels: np.ndarray, roi: Roi, cls: str) -> np.ndarray:
    """Validate ``levels`` against ``roi`` and return it as a C-contiguous int64 array.

    Parameters
    ----------
    levels
        ``(B, N)`` binned grey levels (``>= 1``), ``N = roi.n``.
    roi
        The ROI the levels belong to.
    cls
        Feature class name, for messages.

    Returns
    -------
    numpy.ndarray
        ``(B, N)`` int64.
    """
    lv = np.ascontiguousarray(levels, dtype=np.int64)
    if lv.ndim != 2 or lv.shape[1] != roi.n:
        raise ValueError(f"{cls}: levels must have shape (B, {roi.n}), got {lv.shape}")
    if lv.size and lv.min() < 1:
        raise ValueError(f"{cls}: binned grey levels must be >= 1 (got {lv.min()})")
    return lv


def check_angles(offsets: np.ndarray, roi: Roi, cls: str) -> None:
    """pyradiomics' C core fails ("Error getting angle count") when no offset fits the box."""
    if len(offsets) == 0:
        raise EngineUnsupportedError(
            f"{cls}: no neighbour offset fits the ROI box {roi.shape} with these distances / "
            "force2D settings; pyradiomics fails on it too (use engine: pyradiomics to see its error)"
        )


def matrix_entry_features(
    eb: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    ec: np.ndarray,
    n_rows: int,
    formulas: dict[str, str],
) -> dict[str, np.ndarray]:
    """GLSZM-style features from the non-zero entries of B matrices ``P(i, j)``.

    Parameters
    ----------
    eb, ei, ej, ec
        Row (image) index, grey level value ``i``, column value ``j`` (zone size or
        dependence size) and count ``P(i, j)`` of each non-zero entry; ``i`` and ``j``
        are positive integers (int64). Each ``(b, i, j)`` appears once.
    n_rows
        Number of images ``B``.
    formulas
        Output name -> formula key (``SE, LE, GLN, GLNN, SN, SNN, ZP, GLV, SV, E, LGLE,
        HGLE, SLGLE, SHGLE, LLGLE, LHGLE``).

    Returns
    -------
    dict
        Output name -> ``(B,)`` float64, pyradiomics' formulas with ``Nz`` (and ``Np``)
        replaced by 1 where 0.
    """
    c = ec.astype(np.float64)
    i = ei.astype(np.float64)
    j = ej.astype(np.float64)
    i2 = i * i
    j2 = j * j

    def rowsum(w: np.ndarray) -> np.ndarray:
        return np.bincount(eb, weights=w, minlength=n_rows)

    nz = rowsum(c)
    nz[nz == 0] = 1
    keys = set(formulas.values())
    out: dict[str, np.ndarray] = {}
    if keys & {"GLN", "GLNN", "GLV"}:
        # pg(i): zone counts per grey level (dense over level values; zero entries add 0)
        gmax = int(ei.max()) + 1 if len(ei) else 1
        pg = np.bincount(eb * gmax + ei, weights=c, minlength=n_rows * gmax).reshape(n_rows, gmax)
        gsq = (pg * pg).sum(1)
        out["GLN"] = gsq / nz
        out["GLNN"] = gsq / nz**2
        if "GLV" in keys:
            pgn = pg / nz[:, None]
            iv = np.arange(gmax, dtype=np.float64)
            mu = (pgn * iv).sum(1, keepdims=True)
            out["GLV"] = (pgn * (iv - mu) ** 2).sum(1)
    if keys & {"SN", "SNN", "SV"}:
        # ps(j): counts per column value, sparse in j (zone sizes can reach N)
        jmax = int(ej.max()) + 1 if len(ej) else 1
        code = eb * jmax + ej
        uniq, inv = np.unique(code, return_inverse=True)
        ps = np.bincount(inv.ravel(), weights=c)
        pb = uniq // jmax
        pj = (uniq % jmax).astype(np.float64)
        ssq = np.bincount(pb, weights=ps * ps, minlength=n_rows)
        out["SN"] = ssq / nz
        out["SNN"] = ssq / nz**2
        if "SV" in keys:
            psn = ps / nz[pb]
            mu_j = np.bincount(pb, weights=psn * pj, minlength=n_rows)
            out["SV"] = np.bincount(pb, weights=psn * (pj - mu_j[pb]) ** 2, minlength=n_rows)
    if "ZP" in keys:
        npix = rowsum(c * j)
        npix[npix == 0] = 1
        out["ZP"] = nz / npix
    if "E" in keys:
        p = c / nz[eb]
        out["E"] = -rowsum(p * np.log2(p + np.spacing(1)))
    simple = {
        "SE": lambda: c / j2,
        "LE": lambda: c * j2,
        "LGLE": lambda: c / i2,
        "HGLE": lambda: c * i2,
        "SLGLE": lambda: c / (i2 * j2),
        "SHGLE": lambda: c * i2 / j2,
        "LLGLE": lambda: c * j2 / i2,
        "LHGLE": lambda: c * (i2 * j2),
    }
    for key, weight in simple.items():
        if key in keys:
            out[key] = rowsum(weight()) / nz
    return {name: out[key] for name, key in formulas.items()}


def voxel_major(lv: np.ndarray, sentinel: int, span: int) -> np.ndarray:
    """``(N + 1, B)`` copy of ``lv`` (voxel-major) with a sentinel last row.

    A neighbour table entry of -1 (outside the ROI) then gathers the sentinel row, and
    one gather of a neighbour's row fetches all ``B`` images at once. The dtype is the
    smallest signed integer holding every value in ``[-span, span]``.

    Parameters
    ----------
    lv
        ``(B, N)`` int64 grey levels.
    sentinel
        Value of the last row.
    span
        Largest magnitude the caller's arithmetic on the array reaches.
    """
    b, n = lv.shape
    dt = np.int16 if span < 2**15 else (np.int32 if span < 2**31 else np.int64)
    out = np.empty((n + 1, b), dt)
    out[:n] = lv.T
    out[n] = sentinel
    return out


def _zones(lv: np.ndarray, roi: Roi, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Zones of the rows of ``lv``: (row, grey level, size) of each zone."""
    b, n = lv.shape
    k = len(offsets)
    nbrs = [roi.neighbours(o) for o in offsets]
    step = max(1, min(b, _EDGE_BUDGET // max(n * k, 1)))
    idt = np.int32 if n * step < 2**31 - 1 else np.int64
    table = np.stack(nbrs, axis=1).astype(idt)  # (N, K): neighbour voxel of each offset
    zb, zi, zs = [], [], []
    for r0 in range(0, b, step):
        sub = lv[r0 : r0 + step]
        bc = len(sub)
        nodes = n * bc
        t = voxel_major(sub, 0, int(sub.max()))  # levels >= 1: the sentinel never matches
        eq = np.empty((n, bc, k), bool)
        for a, nbr in enumerate(nbrs):
            np.equal(t[:n], np.take(t, nbr, axis=0), out=eq[:, :, a])
        # node id = voxel * bc + row; candidate edges in (node, offset) order, so the
        # selected ones are sorted by source node and form the CSR arrays directly; the
        # target of edge (voxel, row, offset) is table[voxel, offset] * bc + row
        sel = np.flatnonzero(eq.reshape(-1))
        sdt = np.int32 if nodes * k < 2**31 else np.int64
        cand = sel.astype(sdt)
        node = cand // sdt(k)
        cand -= node * sdt(k)  # offset
        voxel = node // sdt(bc)
        row = node - voxel * sdt(bc)
        cand += voxel * sdt(k)  # flat index into table
        dst = np.take(table.reshape(-1), cand).astype(sdt, copy=False)
        dst *= sdt(bc)
        dst += row
        indptr = np.zeros(nodes + 1, idt)
        np.cumsum(np.bincount(node, minlength=nodes), out=indptr[1:])
        graph = csr_matrix((np.ones(len(dst)), dst, indptr), shape=(nodes, nodes))
        ncomp, label = connected_components(graph, directed=True, connection="weak")
        size = np.bincount(label, minlength=ncomp)
        rep = np.empty(ncomp, np.int64)
        rep[label] = np.arange(nodes)
        zb.append(rep % bc + r0)
        zi.append(t[:n].ravel()[rep].astype(np.int64))
        zs.append(size.astype(np.int64))
    return np.concatenate(zb), np.concatenate(zi), np.concatenate(zs)


def glszm_features(
    levels: np.ndarray,
    roi: Roi,
    *,
    force2d_dimension: int | None,
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """pyradiomics' GLSZM features of ``B`` images of one ROI.

    Parameters
    ----------
    levels
        ``(B, N)`` int64 binned grey levels of the ROI voxels in ``roi.coords`` order.
    roi
        The texture ROI (mask cropped to its bounding box).
    force2d_dimension
        None for 3D zones (26-connectivity), else the array axis held fixed
        (pyradiomics ``force2D`` with ``force2Ddimension``): zones are in-plane.
    features
        pyradiomics GLSZM feature names (see :data:`GLSZM_FEATURES`).

    Returns
    -------
    dict
        Feature name -> ``(B,)`` float64.

    Examples
    --------
    >>> m = np.ones((1, 2, 3), bool)
    >>> roi = Roi(m, (1.0, 1.0, 1.0))
    >>> lv = np.array([[1, 1, 2, 1, 2, 2]])
    >>> glszm_features(lv, roi, force2d_dimension=None, features=["ZonePercentage"])
    {'ZonePercentage': array([0.33333333])}
    """
    names = check_features(features, GLSZM_FEATURES, "GLSZM")
    lv = check_levels(levels, roi, "GLSZM")
    if not names or lv.shape[0] == 0:
        return {f: np.empty(lv.shape[0]) for f in names}
    offsets = roi.angles((1,), force2d_dimension=force2d_dimension)
    check_angles(offsets, roi, "GLSZM")
    zb, zi, zs = _zones(lv, roi, offsets)
    # entries of P: unique (row, level, size) with their zone counts
    smax = int(zs.max()) + 1
    gmax = int(zi.max()) + 1
    uniq, cnt = np.unique((zb * gmax + zi) * smax + zs, return_counts=True)
    ej = uniq % smax
    rest = uniq // smax
    return matrix_entry_features(
        rest // gmax,
        rest % gmax,
        ej,
        cnt,
        lv.shape[0],
        {f: _GLSZM_FORMULA[f] for f in names},
    )
