"""Native GLCM / GLRLM against pyradiomics 3.0.1's own feature classes.

Each case builds a cropped image + mask, lets the pyradiomics class bin and compute all
its features, and feeds the binned levels of B images (``classobj.imageArray`` inside
the mask, ``np.nonzero`` order) to the batched native function at once.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
radiomics = pytest.importorskip("radiomics")
from radiomics import glcm as r_glcm  # noqa: E402
from radiomics import glrlm as r_glrlm  # noqa: E402

from hybridrad.errors import EngineUnsupportedError, ROITooSmallError  # noqa: E402
from hybridrad.features.engine import glcm as glcm_module  # noqa: E402
from hybridrad.features.engine.glcm import FEATURES as GLCM_FEATURES  # noqa: E402
from hybridrad.features.engine.glcm import compact_levels, glcm_features  # noqa: E402
from hybridrad.features.engine.glrlm import FEATURES as GLRLM_FEATURES  # noqa: E402
from hybridrad.features.engine.glrlm import glrlm_features  # noqa: E402
from hybridrad.features.engine.roi import Roi  # noqa: E402

logging.getLogger("radiomics").setLevel(logging.CRITICAL)

RTOL, ATOL = 1e-6, 1e-9
NORMS: tuple[str | None, ...] = (None, "manhattan", "euclidean", "infinity", "no_weighting")


def _crop(mask: np.ndarray) -> tuple[slice, ...]:
    nz = np.argwhere(mask)
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(nz.min(0), nz.max(0), strict=True))


def _pyradiomics(
    cls: Any, img: np.ndarray, mask: np.ndarray, spacing: Sequence[float], settings: dict[str, Any]
) -> tuple[dict[str, float], np.ndarray]:
    im = sitk.GetImageFromArray(img.astype(np.float64))
    im.SetSpacing(tuple(float(s) for s in spacing))
    mk = sitk.GetImageFromArray(mask.astype(np.uint8))
    mk.SetSpacing(tuple(float(s) for s in spacing))
    obj = cls(im, mk, **settings)
    obj.enableAllFeatures()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {k: float(v) for k, v in obj.execute().items()}
    return values, obj.imageArray[obj.maskArray].astype(np.int64)


def _compare(
    kind: str,
    images: Sequence[np.ndarray],
    mask: np.ndarray,
    spacing: Sequence[float],
    settings: dict[str, Any],
) -> None:
    """All features of ``images`` (same ROI) natively in one batch vs pyradiomics per image."""
    cls = r_glcm.RadiomicsGLCM if kind == "glcm" else r_glrlm.RadiomicsGLRLM
    refs, levels = [], []
    for img in images:
        ref, lev = _pyradiomics(cls, img, mask, spacing, settings)
        refs.append(ref)
        levels.append(lev)
    roi = Roi(mask, spacing)
    f2 = settings.get("force2Ddimension", 0) if settings.get("force2D") else None
    wn = settings.get("weightingNorm")
    if kind == "glcm":
        got = glcm_features(
            np.stack(levels),
            roi,
            distances=settings.get("distances", [1]),
            symmetrical=settings.get("symmetricalGLCM", True),
            weighting_norm=wn,
            force2d_dimension=f2,
            features=GLCM_FEATURES,
        )
        assert set(refs[0]) == set(GLCM_FEATURES)
    else:
        got = glrlm_features(
            np.stack(levels), roi, weighting_norm=wn, force2d_dimension=f2, features=GLRLM_FEATURES
        )
        assert set(refs[0]) == set(GLRLM_FEATURES)
    for name in refs[0]:
        expected = np.array([r[name] for r in refs])
        assert got[name].shape == (len(images),)
        np.testing.assert_allclose(
            got[name],
            expected,
            rtol=RTOL,
            atol=ATOL,
            equal_nan=True,
            err_msg=f"{kind} {name} {settings}",
        )


def _random_case(
    rng: np.random.Generator, shape: Sequence[int], fill: float, b: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """``b`` random images on one random ROI, each with its own palette (empty levels, Ng)."""
    mask = np.zeros((1, 1, 1), bool)
    while not mask.any():
        mask = rng.random(tuple(shape)) < fill
    mask = mask[_crop(mask)]
    images = []
    for _ in range(b):
        palette = rng.choice(np.arange(1, 14), size=int(rng.integers(1, 7)), replace=False)
        images.append(rng.choice(palette, size=mask.shape).astype(np.float64))
    return images, mask


def _cases(n: int, seed: int) -> list[tuple[list[np.ndarray], np.ndarray, tuple[float, ...]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        shape = [int(s) for s in rng.integers(1, 8, size=3)]
        images, mask = _random_case(rng, shape, float(rng.choice([0.35, 0.7, 1.0])), 3)
        spacing = tuple(float(s) for s in rng.choice([0.5, 1.0, 2.5], size=3))
        out.append((images, mask, spacing))
    return out


def _settings(k: int, kind: str) -> dict[str, Any]:
    st: dict[str, Any] = {"binWidth": 1, "weightingNorm": NORMS[k % 5]}
    if kind == "glcm":
        st["symmetricalGLCM"] = bool(k % 2)
        st["distances"] = [1] if k % 3 else [1, 2]
    f2 = (None, 0, 1, 2)[k % 4]
    if f2 is not None:
        st.update(force2D=True, force2Ddimension=f2)
    return st


def _run(kind: str, seed: int) -> None:
    for k, (images, mask, spacing) in enumerate(_cases(24, seed)):
        st = _settings(k + seed, kind)
        try:
            _pyradiomics(
                r_glcm.RadiomicsGLCM if kind == "glcm" else r_glrlm.RadiomicsGLRLM,
                images[0],
                mask,
                spacing,
                st,
            )
        except RuntimeError:  # no angle fits the box: pyradiomics fails (tested below)
            continue
        _compare(kind, images, mask, spacing, st)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_glcm_random_rois(seed: int) -> None:
    """Random ROIs (tiny, one-slice, holey), palettes with gaps, Ng=1, every setting."""
    _run("glcm", seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_glcm_dense_path_random_rois(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense pyradiomics-order GLCM path (rounding-sensitive rows, MCC) on every row."""
    monkeypatch.setattr(glcm_module, "_SPARSE_MIN_G", 10**9)
    _run("glcm", seed)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_glrlm_random_rois(seed: int) -> None:
    """Random ROIs (tiny, one-slice, holey), palettes with gaps, Ng=1, every setting."""
    _run("glrlm", seed)


@pytest.mark.parametrize("kind", ["glcm", "glrlm"])
@pytest.mark.parametrize("norm", NORMS)
def test_textured_block_anisotropic(kind: str, norm: str | None) -> None:
    """A larger holey ROI with a smooth texture, anisotropic spacing, B=4, binCount binning."""
    rng = np.random.default_rng(7)
    zz, yy, xx = np.mgrid[0:9, 0:14, 0:12]
    mask = ((zz - 4) ** 2 / 16 + (yy - 7) ** 2 / 40 + (xx - 6) ** 2 / 30) < 1
    mask &= rng.random(mask.shape) > 0.1
    mask = mask[_crop(mask)]
    base = np.sin(np.arange(mask.size).reshape(mask.shape) / 7.0) * 50
    images = [base + rng.normal(0, s, mask.shape) for s in (1, 5, 20, 60)]
    for distances in ([1], [1, 2]):
        st: dict[str, Any] = {"binCount": 24, "weightingNorm": norm}
        if kind == "glcm":
            st.update(distances=distances, symmetricalGLCM=distances == [1])
        _compare(kind, images, mask, (0.7, 0.9, 3.0), st)


@pytest.mark.parametrize("kind", ["glcm", "glrlm"])
@pytest.mark.parametrize("f2", [0, 1, 2])
def test_force2d_each_dimension(kind: str, f2: int) -> None:
    rng = np.random.default_rng(f2)
    mask = rng.random((5, 6, 7)) < 0.8
    mask = mask[_crop(mask)]
    images = [rng.integers(1, 9, size=mask.shape).astype(float) for _ in range(3)]
    _compare(
        kind,
        images,
        mask,
        (1.0, 1.5, 2.0),
        {"binWidth": 1, "force2D": True, "force2Ddimension": f2},
    )


@pytest.mark.parametrize("kind", ["glcm", "glrlm"])
def test_flat_and_isolated_rois(kind: str) -> None:
    """Ng = 1 (flat), and voxels that have no ROI neighbour at all (every angle empty)."""
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[2, 2, 2] = mask[0, 2, 0] = True
    flat = np.full(mask.shape, 5.0)
    two = np.where(np.indices(mask.shape).sum(0) % 2 == 0, 3.0, 8.0)
    for norm in (None, "infinity"):
        _compare(kind, [flat, two], mask, (1.0, 1.0, 1.0), {"binWidth": 1, "weightingNorm": norm})
    line = np.ones((1, 1, 4), bool)
    for img in (np.array([[[1.0, 1.0, 2.0, 2.0]]]), np.full((1, 1, 4), 3.0)):
        _compare(kind, [img, img + 3], line, (1.0, 1.0, 1.0), {"binWidth": 1})


@pytest.mark.parametrize("kind", ["glcm", "glrlm"])
def test_single_voxel_has_no_angle(kind: str) -> None:
    """pyradiomics fails ('Error getting angle count'); the engine says why."""
    mask = np.ones((1, 1, 1), bool)
    roi = Roi(mask, (1.0, 1.0, 1.0))
    with pytest.raises(RuntimeError):
        _pyradiomics(
            r_glcm.RadiomicsGLCM, np.ones((1, 1, 1)), mask, (1.0, 1.0, 1.0), {"binWidth": 1}
        )
    with pytest.raises(ROITooSmallError, match="angle"):
        if kind == "glcm":
            glcm_features(
                np.ones((1, 1), np.int64),
                roi,
                distances=[1],
                symmetrical=True,
                weighting_norm=None,
                force2d_dimension=None,
                features=["Contrast"],
            )
        else:
            glrlm_features(
                np.ones((1, 1), np.int64),
                roi,
                weighting_norm=None,
                force2d_dimension=None,
                features=["RunEntropy"],
            )


def test_unsupported_names_and_norms() -> None:
    roi = Roi(np.ones((2, 2, 2), bool), (1.0, 1.0, 1.0))
    lev = np.ones((1, 8), np.int64)
    kw: dict[str, Any] = {"distances": [1], "symmetrical": True, "force2d_dimension": None}
    for bad in ("Dissimilarity", "SumVariance", "Homogeneity1", "NotAFeature"):
        with pytest.raises(EngineUnsupportedError, match="engine: pyradiomics"):
            glcm_features(lev, roi, weighting_norm=None, features=[bad], **kw)
    with pytest.raises(EngineUnsupportedError, match="weightingNorm"):
        glcm_features(lev, roi, weighting_norm="chebyshev", features=["Contrast"], **kw)
    with pytest.raises(EngineUnsupportedError):
        glrlm_features(lev, roi, weighting_norm=None, force2d_dimension=None, features=["Contrast"])
    assert glcm_features(lev, roi, weighting_norm=None, features=[], **kw) == {}


def test_compact_levels_and_subset_order() -> None:
    rank, values, count, ngmax = compact_levels(np.array([[4, 2, 4, 9], [1, 1, 1, 1]]))
    assert rank.tolist() == [[1, 0, 1, 2], [0, 0, 0, 0]]
    assert values.tolist() == [[2.0, 4.0, 9.0], [1.0, 1.0, 1.0]]
    assert count.tolist() == [3, 1] and ngmax.tolist() == [9, 1]
    roi = Roi(np.ones((2, 2, 2), bool), (1.0, 1.0, 1.0))
    lev = np.arange(1, 9)[None] % 3 + 1
    out = glcm_features(
        lev,
        roi,
        distances=[1],
        symmetrical=True,
        weighting_norm=None,
        force2d_dimension=None,
        features=["MCC", "Contrast"],
    )
    assert list(out) == ["MCC", "Contrast"]


def test_lgg_roi(data_dir: Any) -> None:
    """One real LGG FLAIR ROI, B = 3 binnings in one batch (skipped without the data)."""
    case = data_dir / "lgg-tcga" / "cases" / "TCGA_CS_4942"
    if not case.is_dir():
        pytest.skip("LGG case TCGA_CS_4942 not present")
    img = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "flair.nii.gz"), sitk.sitkFloat64))
    mimg = sitk.ReadImage(str(case / "mask.nii.gz"))
    mask = sitk.GetArrayFromImage(mimg) > 0
    sl = _crop(mask)
    spacing = mimg.GetSpacing()
    for kind in ("glcm", "glrlm"):
        for bins in (16, 48):
            _compare(
                kind,
                [img[sl], np.sqrt(img[sl]), img[sl] ** 2],
                mask[sl],
                spacing,
                {"binCount": bins},
            )
