"""Shape (3D) and shape2D features: pyradiomics 3.0.1's marching cubes, vectorised.

pyradiomics (``radiomics/src/cshape.c``) pads the mask with one empty voxel on every
side and walks every 2x2x2 cube of the padded mask: the 8 corners give a cube index,
indices above 127 are flipped (``idx ^ 0xFF``) with a sign correction of -1 for the
volume, and the triangles of the index (its 128-entry triangle table, vertices at edge
midpoints) add ``0.5 |(a - c) x (b - c)|`` to the surface area and
``sign (a x b) . c / 6`` to the mesh volume, with ``a, b, c`` the vertices'
*absolute* positions ``(index + vertex offset) * spacing``.

Here the same sums are taken per cube index instead of per cube:

- the area of a cube's triangles does not depend on where the cube is, so the surface
  area is ``counts @ area_table`` where ``counts`` is a 256-bin histogram of the cube
  indices of the whole padded mask;
- for a cube at origin ``o`` and triangle ``(a', b', c')`` relative to it,
  ``det(o + a', o + b', o + c') = det(a', b', c') + o . (a' x b' + b' x c' + c' x a')``
  (multilinearity), so the volume is ``counts @ v0_table + sum_d s_d (S_d @ n_table[:, d])``
  with ``S_d[k]`` the sum of the cube origins' index ``d`` over the cubes of index
  ``k`` (one weighted ``bincount`` per axis over the surface cubes).

Both are the same sums as the C loop in a different order (rounding differences of
order 1e-15 relative).

Diameters: the C code stores one vertex per mask transition edge (the midpoint of
every pair of 6-adjacent voxels, one inside and one outside) and takes the largest
distance over all pairs (3D), and over the pairs with an equal z / y / x coordinate
(``Maximum2DDiameterSlice`` / ``Column`` / ``Row``). The largest distance within a
point set is attained between two vertices of its convex hull, so here the vertices are
reduced to the hull's (``scipy.spatial.ConvexHull``; in each plane for the 2D
diameters) before the all-pairs maximum, with the vertex coordinates and the squared
distances computed with the same floating-point operations as the C code (the
maximum is bit-identical).

Eigenvalues (axis lengths, elongation, flatness) follow pyradiomics' Python code
line by line on the padded mask's voxel coordinates.

The 2D version (``shape2D`` with ``force2D``) is the same with marching squares:
per square index, the line segments' lengths (perimeter) and cross products (mesh
surface), and the maximum diameter over the transition-edge midpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from hybridrad.features.engine._common import check_features

SHAPE_FEATURES = (
    "MeshVolume",
    "VoxelVolume",
    "SurfaceArea",
    "SurfaceVolumeRatio",
    "Sphericity",
    "Compactness1",
    "Compactness2",
    "SphericalDisproportion",
    "Maximum3DDiameter",
    "Maximum2DDiameterSlice",
    "Maximum2DDiameterColumn",
    "Maximum2DDiameterRow",
    "MajorAxisLength",
    "MinorAxisLength",
    "LeastAxisLength",
    "Elongation",
    "Flatness",
)
"""pyradiomics' shape feature names (Compactness1/2 and SphericalDisproportion are deprecated there)."""

SHAPE2D_FEATURES = (
    "MeshSurface",
    "PixelSurface",
    "Perimeter",
    "PerimeterSurfaceRatio",
    "Sphericity",
    "SphericalDisproportion",
    "MaximumDiameter",
    "MajorAxisLength",
    "MinorAxisLength",
    "Elongation",
)
"""pyradiomics' shape2D feature names (SphericalDisproportion is deprecated there)."""

# Corners of the marching cube, (z, y, x) offsets; bit a of the cube index is corner a.
_CORNERS = np.array(
    [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 0, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0]]
)
# Edge midpoints (vertex positions relative to the cube origin), (z, y, x).
_EDGE_MIDPOINTS = np.array(
    [
        [0, 0, 0.5], [0, 0.5, 1], [0, 1, 0.5], [0, 0.5, 0],
        [1, 0, 0.5], [1, 0.5, 1], [1, 1, 0.5], [1, 0.5, 0],
        [0.5, 0, 0], [0.5, 0, 1], [0.5, 1, 1], [0.5, 1, 0],
    ]
)  # fmt: skip
# pyradiomics' triangle table for cube indices 0..127: each row lists the edge numbers
# (hex digits) of its triangles, three per triangle.
_TRIANGLES = (
    "", "083", "190", "183198", "12a", "08312a", "92a029", "2832a8a98",
    "b23", "b2008b", "190b23", "b2119b98b", "3a1ba3", "a1008a8ba", "9033b9ba9", "98aba8",
    "478", "043473", "190478", "194147173", "12a478", "34730412a", "92a902478", "2a9297273479",
    "478b23", "b47b24204", "190478b23", "47b94bb29192", "3a1ba3478", "ba114b10447b",
    "4789033b9ba9", "47b4b99ba",
    "954", "954083", "054015", "854835315", "12a954", "08312a954", "2a5542240", "2a5325354834",
    "954b23", "b2008b954", "054015b23", "215258b28548", "3a1ba3954", "549a1008a8ba",
    "54050ba5bb03", "548a58ba8",
    "789579", "309539357", "780017715", "157173", "78957912a", "12a309395357", "0288258572a5",
    "2a5253357",
    "579789b23", "579972209b27", "b23018178157", "21b17b157", "7895793a1ba3", "5705097b0a10ba0",
    "ba003ba50078570", "ba557b",
    "65a", "08365a", "19065a", "18319865a", "165126", "165126083", "965906026", "598582526832",
    "b2365a", "b2008b65a", "190b2365a", "b2119b98b65a", "63b653513", "08b0b50515b6",
    "63b036065059", "65969bb98",
    "47865a", "04347365a", "19047865a", "19414717365a", "478165126", "043473165126",
    "478965906026", "739479329596269",
    "b2347865a", "b47b2420465a", "190b2347865a", "47b94bb2919265a", "47863b653513",
    "51b5b610b47b04b", "47863b036065059", "65969b4797b9",
    "a4964a", "a4964a083", "01aa60640", "18316886461a", "149124264", "149124264083", "024426",
    "832824426",
    "b23a4964a", "b2008ba4964a", "b2301aa60640", "64161a148b2118b", "964369139b63",
    "18b081b61149641", "63b036640", "86468b",
    "67a78a89a", "67a0a709a073", "67a1a7178018", "67a1a7173", "126168189678", "269129679309739",
    "078706602", "273267",
    "b2367a78a89a", "207b2709767a9a7", "67a1a7178018b23", "b2117ba61167", "896678169b63136",
    "09167b", "07870603bb60", "67b",
)  # fmt: skip

# Marching squares: corners (y, x), segment table (pairs of edge numbers), edge midpoints.
_CORNERS_2D = np.array([[0, 0], [0, 1], [1, 1], [1, 0]])
_LINES_2D = (
    "", "30", "01", "31", "12", "1230", "02", "32", "23", "20", "0123", "21", "13", "10", "03", "",
)  # fmt: skip
_EDGE_MIDPOINTS_2D = np.array([[0, 0.5], [0.5, 1], [1, 0.5], [0.5, 0]])

_MAX_PAIRS = 2_000_000  # pair distances per block (16 MB of float64 per array)
_SMALL_PLANE = 48  # up to this many points: all pairs, no hull


# All triangles of the table: owning cube index and the three edge numbers.
_TRI_OWNER = np.repeat(np.arange(128), [len(r) // 3 for r in _TRIANGLES])
_TRI_EDGES = np.array([int(c, 16) for r in _TRIANGLES for c in r], dtype=np.int64).reshape(-1, 3)


@functools.lru_cache(maxsize=64)
def _cube_tables(spacing_zyx: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Per raw cube index 0..255: triangle area, signed det(a', b', c'), signed normal sum."""
    verts = _EDGE_MIDPOINTS * np.array(spacing_zyx)
    a, b, c = (verts[_TRI_EDGES[:, i]] for i in range(3))
    tri_area = 0.5 * np.sqrt(np.sum(np.cross(a - c, b - c) ** 2, axis=1))
    ab = np.cross(a, b)
    tri_v0 = np.sum(ab * c, axis=1)
    tri_n = ab + np.cross(b, c) + np.cross(c, a)
    area = np.zeros(256)
    v0 = np.zeros(256)
    normal = np.zeros((256, 3))
    area[:128] = np.bincount(_TRI_OWNER, weights=tri_area, minlength=128)
    v0[:128] = np.bincount(_TRI_OWNER, weights=tri_v0, minlength=128)
    for d in range(3):
        normal[:128, d] = np.bincount(_TRI_OWNER, weights=tri_n[:, d], minlength=128)
    # indices >= 128 are the complement of a table entry, volume sign flipped
    flipped = np.arange(128, 256) ^ 0xFF
    area[128:] = area[flipped]
    v0[128:] = -v0[flipped]
    normal[128:] = -normal[flipped]
    for t in (area, v0, normal):
        t.setflags(write=False)
    return area, v0, normal


def _transition_vertices(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Midpoints of the edges between a voxel inside and a 6-neighbour outside.

    The vertex set of pyradiomics' diameter stack, with its coordinates computed the
    same way: ``(index + offset) * spacing`` with offset 0 or 0.5.
    """
    parts = []
    for d in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[d] = slice(0, -1)
        hi[d] = slice(1, None)
        idx = np.nonzero(mask[tuple(lo)] != mask[tuple(hi)])
        coords = np.stack(idx, axis=1).astype(np.float64)
        coords[:, d] += 0.5
        parts.append(coords * spacing)
    return np.concatenate(parts)


def _max_sq_distance(points: np.ndarray) -> float:
    """Largest squared distance between two rows of ``points``, summed as cshape.c does.

    ``sum_d (a_d - b_d) ** 2`` left to right; 0 for fewer than two points.
    """
    n = len(points)
    if n < 2:
        return 0.0
    best = 0.0
    step = max(1, _MAX_PAIRS // n)
    for start in range(0, n, step):
        block = points[start : start + step]
        diff = block[:, None, :] - points[None, :, :]
        diff *= diff
        dist = diff[..., 0]
        for d in range(1, points.shape[1]):
            dist = dist + diff[..., d]
        best = max(best, float(dist.max()))
    return best


def _line_extremes(points: np.ndarray, d: int) -> np.ndarray:
    """Mask of the rows of ``points`` that are first or last along ``d`` on their grid line.

    A line is the set of points equal in every coordinate but ``d``. A vertex of the
    convex hull of points on a grid is extreme on every line through it, so the other
    points can be dropped before the hull is taken.
    """
    n = len(points)
    line = np.zeros(n, dtype=bool)
    if n < 3:
        line[:] = True
        return line
    others = [points[:, e] for e in range(points.shape[1]) if e != d]
    order = np.lexsort([points[:, d], *others[::-1]])
    same = np.ones(n - 1, dtype=bool)
    for o in others:
        so = o[order]
        same &= so[1:] == so[:-1]
    first = np.concatenate(([True], ~same))
    last = np.concatenate((~same, [True]))
    line[order[first | last]] = True
    return line


def _diameter_sq(points: np.ndarray, *, reduced: bool = False) -> float:
    """Largest squared pairwise distance via the convex hull (brute force when small or flat)."""
    if len(points) > _SMALL_PLANE and not reduced:
        keep = np.ones(len(points), dtype=bool)
        for d in range(points.shape[1]):
            keep &= _line_extremes(points, d)
        points = points[keep]
    if len(points) > _SMALL_PLANE:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # degenerate (collinear / coplanar): all candidates
            pass
    return _max_sq_distance(points)


def _plane_diameters_sq(vertices: np.ndarray, axis: int, extremes: np.ndarray) -> float:
    """Largest squared distance between two vertices with equal coordinate ``axis``.

    Points are reduced per plane to the extremes of their in-plane grid lines (all planes
    at once); planes with few candidates are done together as padded all-pairs blocks
    (padding repeats a plane's first point, adding zero distances), larger ones one by
    one through their convex hull; planes whose bounding-box diagonal cannot beat the
    largest axis extent of any plane (a lower bound of the result) or the best so far
    are skipped.
    """
    if len(vertices) < 2:
        return 0.0
    rest = [e for e in range(vertices.shape[1]) if e != axis]
    v = vertices[np.all(extremes[rest], axis=0)]
    order = np.argsort(v[:, axis], kind="stable")
    v = v[order]
    key = v[:, axis]
    cuts = np.flatnonzero(key[1:] != key[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    sizes = np.diff(np.concatenate((starts, [len(v)])))
    planar = np.ascontiguousarray(v[:, rest])
    # a plane's largest axis extent is a lower bound of its diameter, its bounding-box
    # diagonal an upper bound: planes whose bound is below the best lower bound drop out
    ext = np.maximum.reduceat(planar, starts, axis=0) - np.minimum.reduceat(planar, starts, axis=0)
    bound = ext[:, 0] * ext[:, 0] + ext[:, 1] * ext[:, 1]
    lower = float(np.max(np.maximum(ext[:, 0], ext[:, 1]) ** 2))
    alive = bound >= lower * (1 - 1e-9)
    best = 0.0

    small = np.flatnonzero((sizes > 1) & (sizes <= _SMALL_PLANE) & alive)
    if len(small):
        width = int(sizes[small].max())
        per_block = max(1, _MAX_PAIRS // (width * width))
        for b0 in range(0, len(small), per_block):
            grp = small[b0 : b0 + per_block]
            j = np.arange(width)
            # index of the j-th point of each plane, the plane's first point as padding
            idx = starts[grp, None] + np.where(j < sizes[grp, None], j, 0)
            pts = planar[idx]  # (G, width, 2)
            diff = pts[:, :, None, :] - pts[:, None, :, :]
            diff *= diff
            best = max(best, float((diff[..., 0] + diff[..., 1]).max()))

    large = np.flatnonzero((sizes > _SMALL_PLANE) & alive)
    for g in large[np.argsort(-bound[large], kind="stable")]:
        if bound[g] * (1 + 1e-9) <= best:
            break
        best = max(best, _diameter_sq(planar[starts[g] : starts[g] + sizes[g]], reduced=True))
    return best


def _eigenvalues(mask_padded: np.ndarray, pixel_spacing: np.ndarray) -> tuple[np.ndarray, int]:
    """pyradiomics' sorted covariance eigenvalues of the physical voxel coordinates."""
    labelled = np.where(mask_padded != 0)
    n = len(labelled[0])
    coordinates = np.array(labelled, dtype="int").transpose((1, 0))
    physical = coordinates * pixel_spacing[None, :]
    physical -= np.mean(physical, axis=0)
    physical /= np.sqrt(n)
    covariance = np.dot(physical.T.copy(), physical)
    eig = np.linalg.eigvals(covariance)
    eig[(eig < 0) & (eig > -1e-10)] = 0
    eig.sort()
    return eig, n


def _sqrt_or_nan(x: np.floating) -> float:
    return float("nan") if x < 0 else float(np.sqrt(x) * 4)


def shape_features(
    mask: np.ndarray, spacing: Sequence[float], *, features: Sequence[str]
) -> dict[str, float]:
    """pyradiomics' ``RadiomicsShape`` features of a 3D mask.

    Parameters
    ----------
    mask
        Boolean ``(z, y, x)`` array: the mask exactly as ``RadiomicsShape`` receives it
        (cropped to the bounding box with pyradiomics' padding); it is padded with one
        empty voxel here, as pyradiomics does.
    spacing
        Voxel spacing ``(x, y, z)`` in mm (SimpleITK order).
    features
        pyradiomics feature names (see :data:`SHAPE_FEATURES`).

    Returns
    -------
    dict[str, float]
        Feature name to value.

    Raises
    ------
    EngineUnsupportedError
        For a feature name that is not a shape feature.

    Examples
    --------
    >>> m = np.ones((1, 1, 1), bool)
    >>> out = shape_features(m, (1.0, 1.0, 1.0), features=["MeshVolume", "Maximum3DDiameter"])
    >>> round(out["MeshVolume"], 4), round(out["Maximum3DDiameter"], 4)
    (0.1667, 1.0)
    """
    names = check_features(features, SHAPE_FEATURES, "shape")
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"shape features need a 3D mask, got shape {mask.shape}")
    pixel_spacing = np.array(spacing, dtype=np.float64)[::-1]  # (z, y, x)
    padded = np.pad(mask.astype(bool), 1)
    need = set(names)
    out: dict[str, float] = {}

    mesh = {"MeshVolume", "SurfaceArea", "SurfaceVolumeRatio", "Sphericity", "Compactness1",
            "Compactness2", "SphericalDisproportion"}  # fmt: skip
    if need & mesh:
        area_t, v0_t, normal_t = _cube_tables(tuple(float(v) for v in pixel_spacing))
        code = np.zeros(tuple(s - 1 for s in padded.shape), dtype=np.uint8)
        nz, ny, nx = code.shape
        for bit, (dz, dy, dx) in enumerate(_CORNERS):
            code |= padded[dz : dz + nz, dy : dy + ny, dx : dx + nx].view(np.uint8) << bit
        flat = code.ravel()
        surface_idx = np.flatnonzero((flat != 0) & (flat != 255))
        codes = flat[surface_idx]
        counts = np.bincount(codes, minlength=256).astype(np.float64)
        surface_area = np.float64(counts @ area_t)
        origin = np.unravel_index(surface_idx, code.shape)
        vol = counts @ v0_t
        for d in range(3):
            s_d = np.bincount(codes, weights=origin[d].astype(np.float64), minlength=256)
            vol += pixel_spacing[d] * (s_d @ normal_t[:, d])
        volume = np.float64(vol / 6)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {
                "MeshVolume": volume,
                "SurfaceArea": surface_area,
                "SurfaceVolumeRatio": surface_area / volume,
                "Sphericity": (36 * np.pi * volume**2) ** (1.0 / 3.0) / surface_area,
                "Compactness1": volume / (surface_area ** (3.0 / 2.0) * np.sqrt(np.pi)),
                "Compactness2": (36.0 * np.pi) * (volume**2.0) / (surface_area**3.0),
                "SphericalDisproportion": surface_area / (36 * np.pi * volume**2) ** (1.0 / 3.0),
            }
        out.update({k: float(v) for k, v in values.items() if k in need})

    diam = {"Maximum3DDiameter": None, "Maximum2DDiameterSlice": 0,
            "Maximum2DDiameterColumn": 1, "Maximum2DDiameterRow": 2}  # fmt: skip
    if need & set(diam):
        vertices = _transition_vertices(padded, pixel_spacing)
        # (3, M): is each vertex first/last on its grid line along z, y, x
        extremes = np.stack([_line_extremes(vertices, d) for d in range(3)])
        for name, axis in diam.items():
            if name in need:
                if axis is None:
                    sq = _diameter_sq(vertices[np.all(extremes, axis=0)], reduced=True)
                else:
                    sq = _plane_diameters_sq(vertices, axis, extremes)
                out[name] = float(np.sqrt(sq))

    axes = {"MajorAxisLength", "MinorAxisLength", "LeastAxisLength", "Elongation", "Flatness",
            "VoxelVolume"}  # fmt: skip
    if need & axes:
        eig, n = _eigenvalues(padded, pixel_spacing)
        z, y, x = pixel_spacing
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {
                "VoxelVolume": n * (z * x * y),
                "MajorAxisLength": _sqrt_or_nan(eig[2]),
                "MinorAxisLength": _sqrt_or_nan(eig[1]),
                "LeastAxisLength": _sqrt_or_nan(eig[0]),
                "Elongation": np.nan if eig[1] < 0 or eig[2] < 0 else np.sqrt(eig[1] / eig[2]),
                "Flatness": np.nan if eig[0] < 0 or eig[2] < 0 else np.sqrt(eig[0] / eig[2]),
            }
        out.update({k: float(v) for k, v in values.items() if k in need})
    return {k: out[k] for k in names}


def shape2d_features(
    mask: np.ndarray,
    spacing: Sequence[float],
    *,
    force2d_dimension: int,
    features: Sequence[str],
) -> dict[str, float]:
    """pyradiomics' ``RadiomicsShape2D`` features (``force2D``) of a one-slice 3D mask.

    Parameters
    ----------
    mask
        Boolean ``(z, y, x)`` array as ``RadiomicsShape2D`` receives it; its size along
        ``force2d_dimension`` must be 1 (pyradiomics raises ``ValueError`` otherwise,
        and so does this function). A 2D array is taken as the slice itself.
    spacing
        Voxel spacing ``(x, y, z)`` in mm (SimpleITK order).
    force2d_dimension
        The array axis (0 = z) the slice is orthogonal to.
    features
        pyradiomics feature names (see :data:`SHAPE2D_FEATURES`).

    Returns
    -------
    dict[str, float]
        Feature name to value.

    Examples
    --------
    >>> m = np.ones((1, 2, 2), bool)
    >>> out = shape2d_features(m, (1.0, 1.0, 1.0), force2d_dimension=0,
    ...                        features=["MeshSurface", "Perimeter", "PixelSurface"])
    >>> {k: round(v, 4) for k, v in out.items()}
    {'MeshSurface': 3.5, 'Perimeter': 6.8284, 'PixelSurface': 4.0}
    """
    names = check_features(features, SHAPE2D_FEATURES, "shape2D")
    mask = np.asarray(mask).astype(bool)
    sp = np.array(spacing, dtype=np.float64)[::-1]
    if mask.ndim == 3:
        if mask.shape[force2d_dimension] > 1:
            raise ValueError(
                f"Size of the mask in dimension {force2d_dimension} is more than 1, "
                "cannot compute 2D shape"
            )
        axes = [0, 1, 2]
        axes.remove(force2d_dimension)
        sp = sp[axes]
        mask = np.squeeze(mask, axis=force2d_dimension)
    elif mask.ndim == 2:
        sp = sp[-2:] if len(sp) == 3 else sp
    else:
        raise ValueError(f"shape2D needs a 2D or one-slice 3D mask, got shape {mask.shape}")
    padded = np.pad(mask, 1)
    need = set(names)
    out: dict[str, float] = {}

    if need - {"PixelSurface", "MaximumDiameter", "MajorAxisLength", "MinorAxisLength",
               "Elongation"}:  # fmt: skip
        perim_t = np.zeros(16)
        cross_t = np.zeros(16)
        diff_t = np.zeros((16, 2))
        verts = _EDGE_MIDPOINTS_2D * sp
        for k, row in enumerate(_LINES_2D):
            if not row:
                continue
            seg = verts[[int(c) for c in row]].reshape(-1, 2, 2)
            a, b = seg[:, 0], seg[:, 1]
            perim_t[k] = np.sum(np.sqrt(np.sum((a - b) ** 2, axis=1)))
            cross_t[k] = np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])
            diff_t[k] = np.sum(b - a, axis=0)
        ny, nx = padded.shape[0] - 1, padded.shape[1] - 1
        code = np.zeros((ny, nx), dtype=np.uint8)
        for bit, (dy, dx) in enumerate(_CORNERS_2D):
            code |= padded[dy : dy + ny, dx : dx + nx].view(np.uint8) << bit
        flat = code.ravel()
        idx = np.flatnonzero((flat != 0) & (flat != 15))
        codes = flat[idx]
        counts = np.bincount(codes, minlength=16).astype(np.float64)
        perimeter = np.float64(counts @ perim_t)
        oy, ox = np.unravel_index(idx, code.shape)
        sy = np.bincount(codes, weights=oy.astype(np.float64), minlength=16)
        sx = np.bincount(codes, weights=ox.astype(np.float64), minlength=16)
        # (o + a') x (o + b') = a' x b' + o x (b' - a'), o = (oy * sp_y, ox * sp_x)
        surface = (counts @ cross_t + sp[0] * (sy @ diff_t[:, 1]) - sp[1] * (sx @ diff_t[:, 0])) / 2
        surface = np.float64(surface)
        with np.errstate(divide="ignore", invalid="ignore"):
            sphericity = (2 * np.sqrt(np.pi * surface)) / perimeter
            values = {
                "MeshSurface": surface,
                "Perimeter": perimeter,
                "PerimeterSurfaceRatio": perimeter / surface,
                "Sphericity": sphericity,
                "SphericalDisproportion": 1.0 / sphericity,
            }
        out.update({k: float(v) for k, v in values.items() if k in need})

    if "MaximumDiameter" in need:
        out["MaximumDiameter"] = float(np.sqrt(_diameter_sq(_transition_vertices(padded, sp))))

    if need & {"PixelSurface", "MajorAxisLength", "MinorAxisLength", "Elongation"}:
        eig, n = _eigenvalues(padded, sp)
        y, x = sp
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {
                "PixelSurface": n * (x * y),
                "MajorAxisLength": _sqrt_or_nan(eig[1]),
                "MinorAxisLength": _sqrt_or_nan(eig[0]),
                "Elongation": np.nan if eig[0] < 0 or eig[1] < 0 else np.sqrt(eig[0] / eig[1]),
            }
        out.update({k: float(v) for k, v in values.items() if k in need})
    return {k: out[k] for k in names}
