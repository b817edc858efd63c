"""Native GLSZM / GLDM / NGTDM against pyradiomics 3.0.1's own feature classes.

Each case builds a cropped image + mask, lets the pyradiomics class bin and compute all
its features, and feeds the same binned levels (``classobj.imageArray`` inside the mask,
``np.nonzero`` order) of B images to the batched native function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
radiomics = pytest.importorskip("radiomics")
from radiomics import gldm as r_gldm  # noqa: E402
from radiomics import glszm as r_glszm  # noqa: E402
from radiomics import ngtdm as r_ngtdm  # noqa: E402

from hybridrad.errors import EngineUnsupportedError  # noqa: E402
from hybridrad.features.engine.gldm import GLDM_DEPRECATED, GLDM_FEATURES, gldm_features  # noqa: E402
from hybridrad.features.engine.glszm import GLSZM_FEATURES, glszm_features  # noqa: E402
from hybridrad.features.engine.ngtdm import NGTDM_FEATURES, ngtdm_features  # noqa: E402
from hybridrad.features.engine.roi import Roi  # noqa: E402

logging.getLogger("radiomics").setLevel(logging.ERROR)

RTOL, ATOL = 1e-6, 1e-9


def _crop(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = np.argwhere(mask)
    sl = tuple(slice(int(a), int(b) + 1) for a, b in zip(nz.min(0), nz.max(0), strict=True))
    return img[sl], mask[sl]


def _pyradiomics(
    cls: Any, img: np.ndarray, mask: np.ndarray, spacing: Sequence[float], settings: dict[str, Any]
) -> tuple[dict[str, float], np.ndarray]:
    im = sitk.GetImageFromArray(img.astype(np.float64))
    im.SetSpacing(tuple(spacing))
    mk = sitk.GetImageFromArray(mask.astype(np.uint8))
    mk.SetSpacing(tuple(spacing))
    obj = cls(im, mk, **settings)
    obj.enableAllFeatures()
    values = {k: float(v) for k, v in obj.execute().items()}
    levels = obj.imageArray[obj.maskArray.astype(bool)].astype(np.int64)
    return values, levels


def _native(
    kind: str, settings: dict[str, Any]
) -> tuple[Any, Callable[..., dict[str, np.ndarray]]]:
    f2 = settings.get("force2Ddimension", 0) if settings.get("force2D") else None
    dist = settings.get("distances", [1])
    if kind == "glszm":
        return r_glszm.RadiomicsGLSZM, lambda lv, roi: glszm_features(
            lv, roi, force2d_dimension=f2, features=GLSZM_FEATURES
        )
    if kind == "gldm":
        return r_gldm.RadiomicsGLDM, lambda lv, roi: gldm_features(
            lv,
            roi,
            distances=dist,
            alpha=settings.get("gldm_a", 0),
            force2d_dimension=f2,
            features=GLDM_FEATURES,
        )
    return r_ngtdm.RadiomicsNGTDM, lambda lv, roi: ngtdm_features(
        lv, roi, distances=dist, force2d_dimension=f2, features=NGTDM_FEATURES
    )


def _compare(
    kind: str,
    images: Sequence[np.ndarray],
    mask: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    settings: dict[str, Any] | None = None,
) -> None:
    """All features of ``images`` (one B-row batch) against pyradiomics, image by image."""
    settings = {"binWidth": 1, **(settings or {})}
    cls, fn = _native(kind, settings)
    refs, levels = [], []
    cropped_mask = _crop(images[0], mask)[1]
    for img in images:
        ref, lv = _pyradiomics(cls, _crop(img, mask)[0], cropped_mask, spacing, settings)
        refs.append(ref)
        levels.append(lv)
    got = fn(np.stack(levels), Roi(cropped_mask, spacing))
    for b, ref in enumerate(refs):
        assert set(ref) == set(got)
        for name, value in ref.items():
            np.testing.assert_allclose(
                got[name][b], value, rtol=RTOL, atol=ATOL, err_msg=f"{kind} {name} row {b}"
            )


KINDS = ["glszm", "gldm", "ngtdm"]


def _random_case(seed: int, shape: tuple[int, int, int], fill: float, levels: Sequence[int]):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < fill
    mask.flat[0] = True
    images = [
        rng.integers(0, ng, shape) * step for ng, step in zip(levels, [1, 3, 2, 1], strict=False)
    ]
    return images, mask


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("seed", "shape", "fill", "levels"),
    [
        (
            0,
            (6, 9, 8),
            0.7,
            [4, 2, 9],
        ),  # holey ROI, B=3 with different Ng, empty levels (step 3, 2)
        (1, (5, 7, 6), 1.0, [1, 3]),  # Ng = 1 row (single level) beside Ng = 3
        (2, (1, 12, 10), 0.6, [5, 16]),  # one-slice ROI
        (3, (10, 10, 10), 0.5, [30, 7, 2, 12]),  # larger Ng, sparse non-convex ROI
        (4, (2, 1, 3), 1.0, [2]),  # tiny ROI
    ],
)
def test_random_textures(kind: str, seed: int, shape: Any, fill: float, levels: Any) -> None:
    images, mask = _random_case(seed, shape, fill, levels)
    _compare(kind, images, mask, spacing=(0.7, 1.3, 2.5))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_force2d(kind: str, dim: int) -> None:
    images, mask = _random_case(10 + dim, (5, 6, 7), 0.75, [3, 8])
    _compare(kind, images, mask, settings={"force2D": True, "force2Ddimension": dim})


@pytest.mark.parametrize("kind", ["gldm", "ngtdm"])
@pytest.mark.parametrize("distances", [[1], [1, 2], [2, 3]])
def test_distances(kind: str, distances: list[int]) -> None:
    images, mask = _random_case(20, (6, 7, 8), 0.7, [4, 11])
    _compare(kind, images, mask, settings={"distances": distances})
    _compare(
        kind,
        images,
        mask,
        settings={"distances": distances, "force2D": True, "force2Ddimension": 1},
    )


@pytest.mark.parametrize("alpha", [0, 1, 2, 5])
def test_gldm_alpha(alpha: int) -> None:
    images, mask = _random_case(30 + alpha, (6, 7, 8), 0.8, [6, 12, 3])
    _compare("gldm", images, mask, settings={"gldm_a": alpha, "distances": [1, 2]})


def test_binwidth_empty_levels() -> None:
    """Continuous values binned with binWidth leave gaps (empty grey levels)."""
    rng = np.random.default_rng(5)
    shape = (7, 8, 9)
    base = rng.normal(0, 1, shape)
    images = [base * 40, np.exp(base) * 10, base**2 * 30]
    mask = rng.random(shape) < 0.8
    for kind in KINDS:
        _compare(kind, images, mask, settings={"binWidth": 10})


def test_random_batches() -> None:
    """Many small random ROIs / settings; both sides raising on boxes with no angle."""
    rng = np.random.default_rng(123)
    for _ in range(25):
        shape = tuple(int(s) for s in rng.integers(1, 8, 3))
        mask = rng.random(shape) < rng.uniform(0.3, 1.0)
        if mask.sum() < 2:
            continue
        images = [rng.integers(0, int(rng.integers(1, 10)), shape) for _ in range(2)]
        settings: dict[str, Any] = {"distances": [1] if rng.random() < 0.5 else [1, 2]}
        settings["gldm_a"] = int(rng.integers(0, 3))
        if rng.random() < 0.5:
            settings.update(force2D=True, force2Ddimension=int(rng.integers(0, 3)))
        cropped = _crop(images[0], mask)[1]
        roi = Roi(cropped, (1.0, 1.0, 1.0))
        f2 = settings["force2Ddimension"] if settings.get("force2D") else None
        if len(roi.angles(settings["distances"], force2d_dimension=f2)) == 0:
            for kind in KINDS:
                cls, fn = _native(kind, settings)
                with pytest.raises(RuntimeError):
                    _pyradiomics(cls, _crop(images[0], mask)[0], cropped, (1, 1, 1), settings)
                with pytest.raises(EngineUnsupportedError, match="pyradiomics"):
                    fn(np.ones((1, roi.n), np.int64), roi)
            continue
        for kind in KINDS:
            _compare(kind, images, mask, settings=settings)


def test_unknown_and_deprecated_features() -> None:
    roi = Roi(np.ones((2, 2, 2), bool), (1.0, 1.0, 1.0))
    lv = np.ones((1, 8), np.int64)
    with pytest.raises(EngineUnsupportedError, match="engine: pyradiomics"):
        glszm_features(lv, roi, force2d_dimension=None, features=["Nope"])
    with pytest.raises(EngineUnsupportedError, match="engine: pyradiomics"):
        ngtdm_features(lv, roi, distances=[1], force2d_dimension=None, features=["Nope"])
    for name in GLDM_DEPRECATED:
        with pytest.raises(EngineUnsupportedError, match="deprecated"):
            gldm_features(lv, roi, distances=[1], alpha=0, force2d_dimension=None, features=[name])
    with pytest.raises(EngineUnsupportedError, match="gldm_a"):
        gldm_features(lv, roi, distances=[1], alpha=0.5, force2d_dimension=None, features=[])
    # a feature subset returns only those names
    out = glszm_features(lv, roi, force2d_dimension=None, features=["ZonePercentage"])
    assert list(out) == ["ZonePercentage"]
    np.testing.assert_allclose(out["ZonePercentage"], [1 / 8])


def _lgg_case() -> tuple[list[np.ndarray], np.ndarray, tuple[float, ...]] | None:
    from hybridrad.datasets.reference import reference_data_dir

    root = reference_data_dir()
    if root is None:
        return None
    cases = sorted((root / "lgg-tcga" / "cases").glob("*/mask.nii.gz"))
    if not cases:
        return None
    folder = cases[0].parent
    mask_img = sitk.ReadImage(str(folder / "mask.nii.gz"))
    mask = sitk.GetArrayFromImage(mask_img) > 0
    images = [
        sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f))).astype(np.float64)
        for f in ("flair.nii.gz", "t1.nii.gz")
        if (folder / f).exists()
    ]
    return images, mask, tuple(mask_img.GetSpacing())


@pytest.mark.parametrize("kind", KINDS)
def test_lgg_roi(kind: str) -> None:
    case = _lgg_case()
    if case is None:
        pytest.skip("reference data (../shared/data/lgg-tcga) absent")
    images, mask, spacing = case
    _compare(kind, images, mask, spacing=spacing, settings={"binWidth": 5})
    _compare(
        kind,
        images,
        mask,
        spacing=spacing,
        settings={"binWidth": 10, "force2D": True, "force2Ddimension": 0, "distances": [1, 2]},
    )
