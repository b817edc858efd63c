"""Parity of the native engine (``engine: native``) with pyradiomics 3.0.1.

Every feature of every shipped radiomics config must agree with pyradiomics to relative
1e-6 (absolute 1e-9 near zero), :func:`hybridrad.features.engine.parity.agrees`:

- synthetic MRI-like and CT-like cases (always run);
- pyradiomics' own test cases and one TCGA-LGG case (``data``: skipped without
  ../shared/data);
- BraTS four-sequence cases through ``hybridrad extract`` with both engines (``slow``).

The IBSI conformance table with either engine is compared in tests/test_ibsi_engine.py;
``benchmarks/engine.py parity`` runs every config on every case of ../shared/data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hybridrad.errors import EngineUnsupportedError, RadiomicsConfigError
from hybridrad.features.engine.parity import compare
from hybridrad.features.radiomics import RadiomicsConfig, shipped_configs

logging.getLogger("radiomics").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings(
    "ignore:the load_module\\(\\) method is deprecated:DeprecationWarning"
)

CONFIGS = sorted(shipped_configs())


def _params(name: str) -> dict:
    """The shipped config as pyradiomics runs it (hybridrad's brain normalisation happens
    before either engine, so it is left out here)."""
    params = dict(RadiomicsConfig.load(name).params)
    params["setting"] = {k: v for k, v in params["setting"].items() if k != "normalizeRegion"}
    return params


def synthetic_case(kind: str, seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """A textured lesion in a smooth background, 48 x 44 x 20 voxels of
    0.9 x 0.9 x 2.5 mm (anisotropic, so resampling configs resample).

    ``kind`` ``mri``: float32 arbitrary units; ``ct``: int16 Hounsfield units spanning
    the CT configs' re-segmentation ranges.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = (20, 44, 48)
    z, y, x = np.indices(shape)
    r = np.sqrt(((z - 10) / 6.0) ** 2 + ((y - 22) / 13.0) ** 2 + ((x - 24) / 15.0) ** 2)
    wobble = ndimage.gaussian_filter(rng.normal(size=shape), 2.0) * 2.0
    mask = (r + wobble * 0.15) < 1.0
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.0)
    texture = texture / texture.std()
    if kind == "mri":
        arr = 120 + 60 * np.exp(-((r - 0.6) ** 2) * 4) * 3 + 40 * texture + 15 * mask
        arr = arr.astype(np.float32)
    else:
        arr = np.where(mask, 40 + 120 * texture, -700 + 250 * texture)
        arr = np.clip(arr, -1024, 1500).astype(np.int16)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.9, 0.9, 2.5))
    image.SetOrigin((-20.0, 13.5, 7.0))
    m = sitk.GetImageFromArray(mask.astype(np.uint8))
    m.CopyInformation(image)
    return image, m


def _assert_parity(frame, what: str) -> None:
    bad = frame[~frame["ok"]]
    assert len(frame) > 1, f"{what}: no features ({frame.to_dict('records')})"
    assert bad.empty, (
        f"{what}: {len(bad)} of {len(frame)} features differ from pyradiomics:\n"
        + bad.head(20).to_string()
    )


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", ["mri", "ct"])
def test_every_shipped_config_matches_pyradiomics_on_synthetic_cases(
    config: str, kind: str
) -> None:
    image, mask = synthetic_case(kind)
    frame = compare(image, mask, _params(config))
    _assert_parity(frame, f"{config} / synthetic {kind}")


@pytest.mark.parametrize(
    "setting",
    [
        {"binCount": 16, "distances": [1, 2], "symmetricalGLCM": False},
        {"binWidth": 10, "weightingNorm": "euclidean", "gldm_a": 1},
        {"binWidth": 10, "weightingNorm": "manhattan", "force2D": True, "force2Ddimension": 0},
        {"binWidth": 10, "force2D": True, "force2Ddimension": 2, "weightingNorm": "infinity"},
        {
            "binWidth": 20,
            "normalize": True,
            "removeOutliers": 2,
            "resegmentRange": [-2, 2],
            "resegmentMode": "sigma",
            "resegmentShape": True,
        },
        {
            "binWidth": 10,
            "resampledPixelSpacing": [1.5, 1.5, 1.5],
            "interpolator": "sitkLinear",
            "padDistance": 3,
            "resegmentRange": [100, 10000],
        },
    ],
    ids=[
        "bincount-dist12-asym",
        "euclid-a1",
        "2d-axial",
        "2d-sagittal",
        "sigma-reseg",
        "linear-resample",
    ],
)
def test_settings_beyond_the_shipped_configs(setting: dict) -> None:
    image, mask = synthetic_case("mri", seed=3)
    params = {
        "imageType": {
            "Original": {},
            "LoG": {"sigma": [1.5]},
            "Wavelet": {"start_level": 0, "level": 1},
            "Square": {},
            "SquareRoot": {},
            "Logarithm": {},
            "Exponential": {},
            "Gradient": {},
        },
        "featureClass": {
            c: None for c in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
        },
        "setting": {"minimumROIDimensions": 1, **setting},
    }
    frame = compare(image, mask, RadiomicsConfig(params).params)
    _assert_parity(frame, str(setting))


def test_unsupported_settings_are_refused_by_name() -> None:
    base = {"imageType": {"Original": {}}, "featureClass": {"glcm": None}}
    with pytest.raises(EngineUnsupportedError, match=r"LBP3D.*engine: pyradiomics"):
        RadiomicsConfig({**base, "imageType": {"LBP3D": {}}, "engine": "native"})
    with pytest.raises(EngineUnsupportedError, match="voxel-based"):
        RadiomicsConfig({**base, "voxelSetting": {"kernelRadius": 1}, "engine": "native"})
    with pytest.raises(EngineUnsupportedError, match="lbp2DRadius"):
        RadiomicsConfig({**base, "setting": {"lbp2DRadius": 2}, "engine": "native"})
    with pytest.raises(RadiomicsConfigError, match="engine 'fast'"):
        RadiomicsConfig({**base, "engine": "fast"})
    # the pyradiomics engine keeps taking them
    assert RadiomicsConfig({**base, "imageType": {"LBP3D": {}}}).engine == "pyradiomics"


def test_engine_key_is_part_of_the_hash_and_default_hash_is_unchanged() -> None:
    cfg = RadiomicsConfig.load("mri_glioma_fast")
    native = cfg.with_engine("native")
    assert native.engine == "native" and cfg.engine == "pyradiomics"
    assert native.hash != cfg.hash
    assert cfg.with_engine("pyradiomics") is cfg
    assert "engine" not in cfg.params  # shipped configs hash as before


# --- real data -------------------------------------------------------------------------

PYRAD_CASES = ("brain1", "brain2", "breast1", "prostate_phantom_subvolume")


def _pyrad_case(data_dir: Path, case: str) -> tuple[sitk.Image, sitk.Image]:
    folder = data_dir / "pyradiomics-testcases" / "images"
    if case.startswith("prostate"):
        img, lab = folder / f"{case}.nrrd", folder / f"{case}-label.nrrd"
    else:
        img, lab = folder / f"{case}_image.nrrd", folder / f"{case}_label.nrrd"
    if not img.is_file():
        pytest.skip(f"{img} absent")
    return sitk.ReadImage(str(img)), sitk.ReadImage(str(lab))


@pytest.mark.data
@pytest.mark.parametrize("config", ["mri_glioma_fast", "mri_glioma", "ct_default"])
@pytest.mark.parametrize("case", PYRAD_CASES)
def test_pyradiomics_test_cases(data_dir: Path, case: str, config: str) -> None:
    image, mask = _pyrad_case(data_dir, case)
    frame = compare(image, mask, _params(config))
    _assert_parity(frame, f"{config} / {case}")


def _lgg_case(data_dir: Path, case: str = "TCGA_CS_4942") -> Path:
    folder = data_dir / "lgg-tcga" / "cases" / case
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    return folder


@pytest.mark.data
@pytest.mark.parametrize("config", ["mri_glioma", "mri_glioma_fast"])
def test_lgg_case_every_sequence(data_dir: Path, config: str) -> None:
    folder = _lgg_case(data_dir)
    mask = sitk.Cast(sitk.ReadImage(str(folder / "mask.nii.gz")) > 0, sitk.sitkUInt8)
    for seq in ("flair", "t1", "t1c"):
        image = sitk.ReadImage(str(folder / f"{seq}.nii.gz"))
        _assert_parity(compare(image, mask, _params(config)), f"{config} / LGG {seq}")


def test_cli_extract_with_either_engine_gives_the_same_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hybridrad extract --engine native`` writes the pyradiomics engine's table (same
    columns, values within 1e-6), records the engine, and never reuses the other engine's
    cache."""
    import json

    import pandas as pd

    from hybridrad.cli.main import main
    from hybridrad.datasets import make_synthetic_cohort
    from hybridrad.features.engine.parity import agrees

    manifest = make_synthetic_cohort(tmp_path / "syn", n_cases=3, shape=(40, 40, 40)).manifest_path
    cache = tmp_path / "cache"
    tables = {}
    for engine in ("pyradiomics", "native"):
        out = tmp_path / engine / "features.parquet"
        args = [
            "extract",
            str(manifest),
            "--config",
            "mri_glioma_fast",
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--engine",
            engine,
            "--no-progress",
        ]
        assert main(args) == 0
        assert "0 from cache, 3 computed" in capsys.readouterr().out
        tables[engine] = pd.read_parquet(out)
        prov = json.loads(out.with_name("features.provenance.json").read_text(encoding="utf-8"))
        assert prov["config"].get("engine", "pyradiomics") == engine
        diag = pd.read_parquet(out.with_name("features.diagnostics.parquet"))
        assert set(diag["engine"]) == {engine}
    pyr, nat = tables["pyradiomics"], tables["native"]
    assert list(pyr.columns) == list(nat.columns) and list(pyr.index) == list(nat.index)
    assert pyr.shape[1] > 500
    ok = agrees(pyr.to_numpy(float), nat.to_numpy(float))
    assert ok.all(), pyr.columns[~ok.all(axis=0)].tolist()


def test_native_extractor_without_shape_keeps_the_other_classes() -> None:
    image, mask = synthetic_case("mri")
    only_shape = RadiomicsConfig({"featureClass": {"shape": None}, "engine": "native"})
    assert not [
        k
        for k in only_shape.extractor(shape=False).execute(image, mask)
        if not k.startswith("diagnostics_")
    ]
    cfg = RadiomicsConfig.load("mri_glioma_fast").with_engine("native")
    keys = [
        k
        for k in cfg.extractor(shape=False).execute(image, mask)
        if not k.startswith("diagnostics_")
    ]
    assert keys and not any("_shape_" in k for k in keys)
    assert any("_shape_" in k for k in cfg.extractor().execute(image, mask))


@pytest.mark.parametrize("engine", ["pyradiomics", "native"])
def test_uint8_bin_edge_overflow_is_named(engine: str) -> None:
    """pyradiomics computes ``maximum + 2 * binWidth`` in the image's pixel type; for a uint8
    image (the TCGA-LGG scans) without normalisation it wraps around. Both engines do it, so
    the extraction names the case and sequence in one warning."""
    import warnings

    from hybridrad.errors import BinEdgeOverflowWarning
    from hybridrad.features.radiomics import RadiomicsTask
    from hybridrad.io.labels import load_label_map

    image, mask = synthetic_case("mri")
    arr = np.clip(sitk.GetArrayFromImage(image) + 40, 0, 255).astype(np.uint8)
    img8 = sitk.GetImageFromArray(arr)
    img8.CopyInformation(image)

    def task(config: str) -> RadiomicsTask:
        return RadiomicsTask(
            config=RadiomicsConfig.load(config).with_engine(engine),
            label_map=load_label_map("binary"),
            sequences=("flair",),
        )

    with pytest.warns(BinEdgeOverflowWarning, match=r"case 'c1': 'flair' is uint8") as seen:
        out = task("ct_default").extract("c1", {"flair": img8}, mask)
    assert len([w for w in seen if w.category is BinEdgeOverflowWarning]) == 1
    assert out.features
    with warnings.catch_warnings():  # normalised images are float: nothing to say
        warnings.simplefilter("error", BinEdgeOverflowWarning)
        task("mri_glioma_fast").extract("c1", {"flair": img8}, mask)
