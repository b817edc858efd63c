"""Conformance of hybridrad's pyradiomics wrapper with pyradiomics' own regression baselines.

The reference data (``pyradiomics-testcases``, see its README.md) holds pyradiomics'
``data/baseline/baseline_<class>.csv`` tables: transposed, one column per test
configuration, the exact settings of each column in its ``diagnostics_Configuration_Settings``
row. For every (feature class, column) we

1. check the SimpleITK SHA-1 hashes of the image and mask against the baseline's
   ``diagnostics_Image-original_Hash`` / ``diagnostics_Mask-original_Hash`` rows (as
   pyradiomics' ``tests/testUtils.py`` does before comparing anything);
2. build the column's settings, validate them through :class:`RadiomicsConfig`, enable only
   that feature class and only the ``Original`` image type, and extract through
   ``RadiomicsConfig(...).extractor().execute(image, mask, label=...)``;
3. compare every feature of the class with pyradiomics' own 3 % rule.

Columns whose test-case files are not in the data folder (lung1, lung2: images too large to
ship; every shape2D column: needs the single-slice ``<case>_label_2D.nrrd`` masks) are
collected and skipped with the reason. The texture matrices of ``<case>_<class>.npy`` are
compared as in pyradiomics' ``tests/test_matrices.py``.
"""

from __future__ import annotations

import ast
import csv
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from hybridrad.datasets.reference import reference_data_dir
from hybridrad.features.radiomics import RadiomicsConfig

pytestmark = [
    pytest.mark.data,
    # pykwalify (pyradiomics' schema validation) loads the schema extension with the
    # deprecated importlib load_module(); upstream noise, one warning per validation.
    pytest.mark.filterwarnings(
        "ignore:the load_module\\(\\) method is deprecated:DeprecationWarning"
    ),
]

TESTCASES = "pyradiomics-testcases"
SETTINGS_ROW = "diagnostics_Configuration_Settings"
TESTCASE_ROW = "diagnostics_Configuration_TestCase"
IMAGE_HASH_ROW = "diagnostics_Image-original_Hash"
MASK_HASH_ROW = "diagnostics_Mask-original_Hash"
#: pyradiomics tests/testUtils.py, ``RadiomicsTestUtils.checkResult``:
#:     if baselineValue == 0.0: percentDiff = 0.0 if value - baselineValue == 0.0 else 1.0
#:     else: percentDiff = abs(1.0 - (value / baselineValue))
#:     ...
#:     assert (percentDiff < 0.03)
#: i.e. relative difference below 3 %, exact match when the baseline is 0 (NaN never passes).
REL_TOLERANCE = 0.03
#: pyradiomics tests/test_matrices.py: ``assert numpy.max(numpy.abs(baselineMatrix - cMat)) < 1e-3``
MATRIX_TOLERANCE = 1e-3
MATRIX_CLASSES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")

logging.getLogger("radiomics").setLevel(logging.ERROR)


# --- baseline tables -------------------------------------------------------------------


Baseline = dict[str, dict[str, str]]  # column -> row name -> cell text


@functools.cache
def _read_baseline(path: Path) -> Baseline:
    """A transposed baseline CSV as {column: {row: cell}} (read once per file)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        columns: Baseline = {c: {} for c in header[1:]}
        for row in reader:
            for column, cell in zip(header[1:], row[1:], strict=True):
                columns[column][row[0]] = cell
    return columns


def _baseline_dir(root: Path | None) -> Path | None:
    folder = root / TESTCASES / "baseline" if root is not None else None
    return folder if folder is not None and folder.is_dir() else None


def _class_of(path: Path) -> str:
    return path.stem[len("baseline_") :]


def _feature_params() -> list[Any]:
    """(class, column) for every column of every baseline table, read at collection time."""
    folder = _baseline_dir(reference_data_dir())
    if folder is None:  # the data_dir fixture skips with the reason
        return [pytest.param("", "", id="no-reference-data")]
    return [
        pytest.param(_class_of(path), column, id=f"{_class_of(path)}-{column}")
        for path in sorted(folder.glob("baseline_*.csv"))
        for column in _read_baseline(path)
    ]


def _class_params() -> list[str]:
    folder = _baseline_dir(reference_data_dir())
    return [_class_of(p) for p in sorted(folder.glob("baseline_*.csv"))] if folder else [""]


def _matrix_params() -> list[Any]:
    folder = _baseline_dir(reference_data_dir())
    if folder is None:
        return [pytest.param("", "", id="no-reference-data")]
    return [
        pytest.param(cls, path.name[: -len(f"_{cls}.npy")], id=path.stem)
        for cls in MATRIX_CLASSES
        for path in sorted(folder.glob(f"*_{cls}.npy"))
    ]


def _testcases(data_dir: Path) -> Path:
    folder = data_dir / TESTCASES
    if not (folder / "baseline").is_dir():
        pytest.skip(f"{folder} not found (pyradiomics test cases and baselines)")
    return folder


def _column(folder: Path, cls: str, column: str) -> dict[str, str]:
    if not cls:
        pytest.skip("no pyradiomics baseline tables at collection time")
    return _read_baseline(folder / "baseline" / f"baseline_{cls}.csv")[column]


# --- settings --------------------------------------------------------------------------


@functools.cache
def _schema_setting_keys() -> frozenset[str]:
    """The keys pyradiomics' parameter schema allows in a ``setting`` block."""
    from radiomics import getParameterValidationFiles

    schema_file, _ = getParameterValidationFiles()
    with open(schema_file, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    return frozenset(schema["mapping"]["setting"]["mapping"])


#: Keys of old baseline settings rows that pyradiomics 3.0.1's schema no longer knows, with
#: their current name. The baselines of the data's pyradiomics commit (8ed5793) need none:
#: every key of every settings row (additionalInfo, binCount, binWidth, correctMask,
#: distances, force2D, force2Ddimension, gldm_a, interpolator, label, minimumROIDimensions,
#: minimumROISize, normalize, normalizeScale, padDistance, preCrop, removeOutliers,
#: resampledPixelSpacing, resegmentMode, resegmentRange, voxelArrayShift, weightingNorm)
#: is in the schema, which test_baseline_settings_are_valid_pyradiomics_settings asserts.
#: A key that is neither in the schema nor here fails the test: it is never dropped silently.
RENAMED_SETTINGS: dict[str, str] = {}


def _settings(cls: str, cells: dict[str, str]) -> dict[str, Any]:
    """The column's settings (parsed with ``ast.literal_eval``, never eval), translated so
    that they pass pyradiomics' schema."""
    raw = ast.literal_eval(cells[SETTINGS_ROW])
    assert isinstance(raw, dict), f"settings row is not a dict: {cells[SETTINGS_ROW]!r}"
    unknown = set(raw) - _schema_setting_keys() - set(RENAMED_SETTINGS)
    assert not unknown, (
        f"baseline settings key(s) {sorted(unknown)} are not in pyradiomics' schema; add an "
        "explicit translation to RENAMED_SETTINGS"
    )
    # ``None`` values (interpolator, weightingNorm, resegmentRange, ...) are kept: the schema
    # accepts None for optional keys and pyradiomics reads None as "feature off / default".
    settings = {RENAMED_SETTINGS.get(k, k): v for k, v in raw.items()}
    if cls == "shape":
        # As pyradiomics' PyRadiomicsBaseline.getTestConfig: "ensure resegmentation is
        # disabled for shape class" (a no-op for these rows, which hold None already).
        settings["resegmentRange"] = None
    return settings


def _config(cls: str, settings: dict[str, Any], features: list[str]) -> RadiomicsConfig:
    """Only ``cls`` (exactly the baseline's features, deprecated ones included, as
    pyradiomics' test enables each baseline feature by name) and only ``Original``."""
    return RadiomicsConfig(
        {"setting": settings, "imageType": {"Original": {}}, "featureClass": {cls: features}}
    )


# --- images ----------------------------------------------------------------------------


def _case_files(folder: Path, case: str) -> tuple[Path, Path]:
    """Image and mask of a pyradiomics test case (as ``radiomics.getTestCase`` names them;
    a ``_2D`` suffix selects the single-slice label)."""
    if case.lower().endswith("_2d"):
        base = case[: -len("_2d")]
        return folder / "images" / f"{base}_image.nrrd", folder / "images" / f"{base}_label_2D.nrrd"
    return folder / "images" / f"{case}_image.nrrd", folder / "images" / f"{case}_label.nrrd"


@functools.cache
def _read_case(image_path: Path, mask_path: Path) -> tuple[sitk.Image, sitk.Image]:
    """Read once per case. The mask is read as UInt32, as pyradiomics' testUtils does
    (``sitk.ReadImage(maskName, sitk.sitkUInt32)``): the baseline mask hash is of that type
    (the files store int16, whose hash differs)."""
    return sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path), sitk.sitkUInt32)


def _load_checked(
    folder: Path, column: str, cells: dict[str, str]
) -> tuple[sitk.Image, sitk.Image]:
    """The column's image and mask, skipping when absent, after checking their hashes."""
    case = cells[TESTCASE_ROW]
    files = _case_files(folder, case)
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        pytest.skip(
            f"{column}: test case {case!r} needs {', '.join(missing)}, not in the reference "
            f"data (see {TESTCASES}/README.md, 'Missing files')"
        )
    image, mask = _read_case(*files)
    assert sitk.Hash(image) == cells[IMAGE_HASH_ROW], f"{column}: image is not the baseline's"
    assert sitk.Hash(mask) == cells[MASK_HASH_ROW], f"{column}: mask is not the baseline's"
    return image, mask


# --- comparison ------------------------------------------------------------------------


def _within_tolerance(value: float, baseline: float) -> bool:
    """pyradiomics' rule (tests/testUtils.py, see REL_TOLERANCE)."""
    if baseline == 0.0:
        return value - baseline == 0.0
    return bool(abs(1.0 - value / baseline) < REL_TOLERANCE)


def _baseline_features(cls: str, cells: dict[str, str]) -> dict[str, float]:
    prefix = f"original_{cls}_"
    return {k[len(prefix) :]: float(v) for k, v in cells.items() if k.startswith(prefix)}


def _iter_mismatches(cls: str, expected: dict[str, float], result: dict[str, Any]) -> Iterator[str]:
    for name, base in sorted(expected.items()):
        key = f"original_{cls}_{name}"
        if key not in result:
            yield f"{name}: not computed"
            continue
        value = float(result[key])
        if not _within_tolerance(value, base):
            rel = abs(1.0 - value / base) if base else float("inf")
            yield f"{name}: baseline {base!r}, got {value!r} ({rel:.2%})"


# --- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", _class_params())
def test_baseline_covers_pyradiomics_features(data_dir: Path, cls: str) -> None:
    """As pyradiomics' test_features: every active feature of the class has a baseline and
    every baseline feature exists (deprecated ones may be in the baseline)."""
    folder = _testcases(data_dir)
    if not cls:
        pytest.skip("no pyradiomics baseline tables at collection time")
    from radiomics import getFeatureClasses

    names: dict[str, bool] = getFeatureClasses()[cls].getFeatureNames()
    active = {n for n, deprecated in names.items() if not deprecated}
    for column, cells in _read_baseline(folder / "baseline" / f"baseline_{cls}.csv").items():
        in_baseline = set(_baseline_features(cls, cells))
        assert active <= in_baseline, f"{column}: no baseline for {sorted(active - in_baseline)}"
        assert in_baseline <= set(names), f"{column}: unknown {sorted(in_baseline - set(names))}"


@pytest.mark.parametrize("cls", _class_params())
def test_baseline_settings_are_valid_pyradiomics_settings(data_dir: Path, cls: str) -> None:
    """Every column's settings (all of them, testable or not) pass RadiomicsConfig."""
    folder = _testcases(data_dir)
    if not cls:
        pytest.skip("no pyradiomics baseline tables at collection time")
    for cells in _read_baseline(folder / "baseline" / f"baseline_{cls}.csv").values():
        settings = _settings(cls, cells)
        config = _config(cls, settings, sorted(_baseline_features(cls, cells)))
        assert config.settings == settings
        assert ast.literal_eval(cells["diagnostics_Configuration_EnabledImageTypes"]) == {
            "Original": {}
        }


@pytest.mark.parametrize("engine", ["pyradiomics", "native"])
@pytest.mark.parametrize(("cls", "column"), _feature_params())
def test_features_match_pyradiomics_baseline(
    data_dir: Path, cls: str, column: str, engine: str
) -> None:
    """Either engine (``engine: native`` is hybridrad.features.engine) against pyradiomics'
    own baseline values."""
    folder = _testcases(data_dir)
    cells = _column(folder, cls, column)
    image, mask = _load_checked(folder, column, cells)
    settings = _settings(cls, cells)
    expected = _baseline_features(cls, cells)
    assert expected, f"{column}: no {cls} features in the baseline"

    # One extraction per (class, column), shared by all of its features.
    extractor = _config(cls, settings, sorted(expected)).with_engine(engine).extractor()
    result = extractor.execute(image, mask, label=settings.get("label", 1))

    if engine == "pyradiomics":  # its own provenance must name the same inputs
        assert result[IMAGE_HASH_ROW] == cells[IMAGE_HASH_ROW]
        assert result[MASK_HASH_ROW] == cells[MASK_HASH_ROW]
    mismatches = list(_iter_mismatches(cls, expected, result))
    assert not mismatches, (
        f"{cls} / {column}: {len(mismatches)} of {len(expected)} features differ from "
        "pyradiomics' baseline by >= 3 %:\n  " + "\n  ".join(mismatches)
    )


@pytest.mark.parametrize(("cls", "case"), _matrix_params())
def test_texture_matrix_matches_pyradiomics_baseline(data_dir: Path, cls: str, case: str) -> None:
    """As pyradiomics' tests/test_matrices.py, with the settings of the case's plain column."""
    from radiomics import getFeatureClasses, imageoperations
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    folder = _testcases(data_dir)
    cells = _column(folder, cls, case)
    image, mask = _load_checked(folder, case, cells)
    settings = _config(cls, _settings(cls, cells), sorted(_baseline_features(cls, cells))).settings

    # The preprocessing of pyradiomics' testUtils: loadImage, checkMask, crop to the mask.
    image, mask = RadiomicsFeatureExtractor.loadImage(image, mask, **settings)
    bbox, corrected = imageoperations.checkMask(image, mask, **settings)
    assert bbox is not None, f"{case}: mask check failed"
    if corrected is not None:
        mask = corrected
    image, mask = imageoperations.cropToTumorMask(image, mask, bbox, **settings)

    feature_class = getFeatureClasses()[cls](image, mask, **settings)
    feature_class._initCalculation()
    matrix = np.asarray(getattr(feature_class, f"P_{cls}"))
    expected = np.load(folder / "baseline" / f"{case}_{cls}.npy")
    # pyradiomics 3.x keeps a leading voxel/batch axis the stored matrices lack.
    if matrix.ndim == expected.ndim + 1 and matrix.shape[0] == 1:
        matrix = matrix[0]
    assert matrix.shape == expected.shape, (
        f"{cls} matrix of {case}: {matrix.shape} vs {expected.shape}"
    )
    diff = float(np.max(np.abs(matrix - expected)))
    assert diff < MATRIX_TOLERANCE, f"{cls} matrix of {case}: max |diff| {diff:g}"
