"""The bad-input corpus: every row is a hostile but fair input to a real CLI command.

Each row builds its input from a small valid study (6 cases, two sequences, masks,
clinical and feature tables), runs ``hybridrad`` in-process through ``main(argv)`` and
states the expected exit status (2: bad input stopped the run; 1: some cases failed,
the others were written; 0: accepted, possibly with a warning), the exception (or
warning) class and a message fragment naming the case, file or column. No row may
print a Python traceback.

``test_every_command_refuses_bad_manifests`` runs every manifest-reading command over
the manifest rows, and ``test_every_table_command_refuses_bad_tables`` every modelling
command over the table rows.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from hybridrad.cli import main

N_CASES = 6
SHAPE = (16, 16, 12)  # x, y, z


def _image(seed: int, dtype: type = np.int16) -> sitk.Image:
    rng = np.random.default_rng(seed)
    arr = rng.normal(500, 100, size=SHAPE[::-1]).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    return img


def _mask(values: tuple[int, ...] = (1,)) -> sitk.Image:
    arr = np.zeros(SHAPE[::-1], dtype=np.uint8)
    for i, v in enumerate(values):
        arr[3:9, 4 + 3 * i : 7 + 3 * i, 4:10] = v
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    return img


FIRSTORDER_YAML = """\
imageType: {Original: {}}
featureClass: {firstorder: [Mean, Median, Energy]}
setting: {binWidth: 25, minimumROIDimensions: 2}
"""


def _build_study(root: Path) -> None:
    rows, clinical, features = [], [], []
    rng = np.random.default_rng(0)
    for i in range(N_CASES):
        cid = f"case{i}"
        d = root / "images" / cid
        d.mkdir(parents=True)
        for seq in ("t1", "flair"):
            sitk.WriteImage(_image(10 * i + len(seq)), str(d / f"{seq}.nii.gz"))
        sitk.WriteImage(_mask(), str(d / "mask.nii.gz"))
        rows.append(
            {
                "case_id": cid,
                "t1": f"images/{cid}/t1.nii.gz",
                "flair": f"images/{cid}/flair.nii.gz",
                "mask": f"images/{cid}/mask.nii.gz",
            }
        )
        clinical.append(
            {
                "case_id": cid,
                "os_months": float(5 + 3 * i),
                "death": i % 2,
                "age": 40 + 5 * i,
                "idh": (i + 1) % 2,
            }
        )
        features.append({"case_id": cid, **{f"rad__f{j}": rng.normal() for j in range(4)}})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    pd.DataFrame(clinical).to_csv(root / "clinical.csv", index=False)
    pd.DataFrame(features).to_csv(root / "features.csv", index=False)
    (root / "fo.yaml").write_text(FIRSTORDER_YAML)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("study")
    _build_study(root)
    return root


@pytest.fixture
def study(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "study"
    shutil.copytree(template, root)
    return root


# --- helpers that damage one part of the study ------------------------------------------


def _manifest(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifest.csv", dtype=str)


def _write_manifest(root: Path, table: pd.DataFrame) -> Path:
    table.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def _replace_image(root: Path, image: sitk.Image, case: str = "case1", seq: str = "t1") -> None:
    sitk.WriteImage(image, str(root / "images" / case / f"{seq}.nii.gz"))


def _replace_mask(root: Path, arr: np.ndarray, case: str = "case1") -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(img, str(root / "images" / case / "mask.nii.gz"))


def _float_image_with(value: float) -> sitk.Image:
    arr = sitk.GetArrayFromImage(_image(3, np.float32))
    arr[5, 5, 5] = value
    arr[6, 6, 6] = value
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    return img


def _extract(root: Path, *extra: str) -> list[str]:
    out = root.parent / "out" / "features.parquet"
    return ["extract", str(root / "manifest.csv"), "--config", str(root / "fo.yaml"),
            "--out", str(out), "--no-progress", *extra]  # fmt: skip


def _validate(root: Path, *extra: str) -> list[str]:
    return ["validate", str(root / "manifest.csv"), *extra]


def _evaluate(root: Path, *extra: str, features: str = "features.csv") -> list[str]:
    return ["evaluate", str(root / features), "--clinical", str(root / "clinical.csv"),
            "--time", "os_months", "--event", "death", "--out", str(root.parent / "ev"),
            *extra]  # fmt: skip


@dataclass(frozen=True)
class Row:
    name: str
    build: Callable[[Path], list[str]]
    exit: int
    fragments: tuple[str, ...]


CORPUS: list[Row] = []


def row(name: str, exit: int, *fragments: str) -> Callable[[Callable[[Path], list[str]]], None]:
    def register(build: Callable[[Path], list[str]]) -> None:
        CORPUS.append(Row(name, build, exit, fragments))

    return register


# --- images -----------------------------------------------------------------------------


@row("image-missing", 1, "ImageNotFoundError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    (root / "images/case1/t1.nii.gz").unlink()
    return _extract(root)


@row("image-truncated", 1, "ImageReadError", "case1", "truncated")
def _(root: Path) -> list[str]:
    p = root / "images/case1/t1.nii.gz"
    p.write_bytes(p.read_bytes()[:200])
    return _extract(root)


@row("image-garbage", 1, "ImageReadError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    (root / "images/case1/t1.nii.gz").write_bytes(b"this is not an image" * 50)
    return _extract(root)


@row("image-empty-file", 1, "ImageReadError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    (root / "images/case1/t1.nii.gz").write_bytes(b"")
    return _extract(root)


@row("image-unsupported-suffix", 1, "UnsupportedFormatError", "case1", "t1.png")
def _(root: Path) -> list[str]:
    (root / "images/case1/t1.png").write_bytes(b"\x89PNG")
    table = _manifest(root)
    table.loc[1, "t1"] = "images/case1/t1.png"
    _write_manifest(root, table)
    return _extract(root)


@row("image-nan", 1, "NonFiniteImageError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    _replace_image(root, _float_image_with(np.nan))
    return _extract(root)


@row("image-inf", 1, "NonFiniteImageError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    _replace_image(root, _float_image_with(np.inf))
    return _extract(root)


@row("image-nan-validate", 1, "NonFiniteImageError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    _replace_image(root, _float_image_with(-np.inf))
    return _validate(root)


@row("image-nan-replaced", 0, "HybridradWarning", "case1", "replace")
def _(root: Path) -> list[str]:
    _replace_image(root, _float_image_with(np.nan))
    return _extract(root, "--nonfinite", "replace")


@row("image-2d", 1, "ImageDimensionError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    img = sitk.GetImageFromArray(np.ones((16, 16), np.int16))
    _replace_image(root, img)
    return _extract(root)


@row("image-4d", 1, "ImageDimensionError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    img = sitk.GetImageFromArray(np.ones((2, 12, 16, 16), np.int16))
    _replace_image(root, img)
    return _extract(root)


@row("image-4d-validate", 1, "ImageDimensionError", "case1", "t1.nii.gz")
def _(root: Path) -> list[str]:
    img = sitk.GetImageFromArray(np.ones((2, 12, 16, 16), np.int16))
    _replace_image(root, img)
    return _validate(root)


@row("image-rgb", 1, "ImageDimensionError", "case1", "component")
def _(root: Path) -> list[str]:
    arr = np.ones((12, 16, 16, 3), np.uint8)
    _replace_image(root, sitk.GetImageFromArray(arr, isVector=True))
    return _extract(root)


@row("image-spacing-huge", 1, "ImageHeaderError", "case1", "spacing")
def _(root: Path) -> list[str]:
    img = _image(3)
    img.SetSpacing((1e6, 1e6, 1e6))
    _replace_image(root, img)
    return _extract(root)


@row("image-spacing-tiny", 1, "ImageHeaderError", "case1", "spacing")
def _(root: Path) -> list[str]:
    img = _image(3)
    img.SetSpacing((1e-6, 1e-6, 1e-6))
    _replace_image(root, img)
    return _validate(root)


@row("image-constant", 0, "ConstantImageWarning", "t1.nii.gz")
def _(root: Path) -> list[str]:
    img = sitk.GetImageFromArray(np.full(SHAPE[::-1], 7, np.int16))
    _replace_image(root, img)
    return _extract(root)


@row("image-other-grid", 1, "MaskGeometryError", "case1")
def _(root: Path) -> list[str]:
    img = _image(3)
    img.SetOrigin((5.0, 0.0, 0.0))
    _replace_image(root, img)
    return _extract(root)


@row("image-folder-without-dicom", 1, "ImageReadError", "case1", "DICOM")
def _(root: Path) -> list[str]:
    (root / "images/case1/dicom").mkdir()
    table = _manifest(root)
    table.loc[1, "t1"] = "images/case1/dicom"
    _write_manifest(root, table)
    return _extract(root)


# --- masks ------------------------------------------------------------------------------


@row("mask-empty", 1, "EmptyROIError", "case1")
def _(root: Path) -> list[str]:
    _replace_mask(root, np.zeros(SHAPE[::-1], np.uint8))
    return _extract(root)


@row("mask-one-voxel", 1, "ROITooSmallError", "case1")
def _(root: Path) -> list[str]:
    arr = np.zeros(SHAPE[::-1], np.uint8)
    arr[5, 5, 5] = 1
    _replace_mask(root, arr)
    return _extract(root)


@row("mask-value-outside-map", 1, "MaskLabelError", "case1", "7")
def _(root: Path) -> list[str]:
    arr = sitk.GetArrayFromImage(_mask((1, 2)))
    arr[arr == 2] = 7
    _replace_mask(root, arr)
    return _extract(root, "--labels", "brats")


@row("mask-value-outside-map-validate", 1, "MaskLabelError", "case1", "7")
def _(root: Path) -> list[str]:
    arr = sitk.GetArrayFromImage(_mask((1, 2)))
    arr[arr == 2] = 7
    _replace_mask(root, arr)
    return _validate(root, "--labels", "brats")


@row("mask-fractional", 1, "MaskLabelError", "case1", "0.5")
def _(root: Path) -> list[str]:
    arr = sitk.GetArrayFromImage(_mask()).astype(np.float32) * 0.5
    _replace_mask(root, arr)
    return _extract(root)


@row("mask-other-grid", 1, "MaskGeometryError", "case1")
def _(root: Path) -> list[str]:
    img = _mask()
    img.SetSpacing((2.0, 1.0, 1.0))
    sitk.WriteImage(img, str(root / "images/case1/mask.nii.gz"))
    return _extract(root)


@row("mask-missing-cell", 1, "ManifestError", "case1", "mask")
def _(root: Path) -> list[str]:
    table = _manifest(root)
    table.loc[1, "mask"] = None
    _write_manifest(root, table)
    return _extract(root)


# --- manifests --------------------------------------------------------------------------

MANIFEST_ROWS: list[Row] = []


def manifest_row(name: str, *fragments: str) -> Callable[[Callable[[Path], None]], None]:
    """A damaged manifest: every manifest-reading command must stop with exit 2."""

    def register(damage: Callable[[Path], None]) -> None:
        def build(root: Path) -> list[str]:
            damage(root)
            return _validate(root)

        entry = Row(name, build, 2, fragments)
        CORPUS.append(entry)
        MANIFEST_ROWS.append(Row(name, lambda root: damage(root) or [], 2, fragments))

    return register


@manifest_row("manifest-missing", "manifest.csv")
def _(root: Path) -> None:
    (root / "manifest.csv").unlink()


@manifest_row("manifest-zero-bytes", "EmptyInputError", "manifest.csv")
def _(root: Path) -> None:
    (root / "manifest.csv").write_bytes(b"")


@manifest_row("manifest-header-only", "EmptyInputError", "manifest.csv")
def _(root: Path) -> None:
    (root / "manifest.csv").write_text("case_id,t1,flair,mask\n")


@manifest_row("manifest-no-case-id", "ManifestError", "case_id")
def _(root: Path) -> None:
    _write_manifest(root, _manifest(root).rename(columns={"case_id": "patient"}))


@manifest_row("manifest-duplicate-id", "DuplicateCaseError", "case1")
def _(root: Path) -> None:
    table = _manifest(root)
    table.loc[2, "case_id"] = "case1"
    _write_manifest(root, table)


@manifest_row("manifest-empty-id", "EmptyInputError", "row 3")
def _(root: Path) -> None:
    table = _manifest(root)
    table.loc[2, "case_id"] = None
    _write_manifest(root, table)


@manifest_row("manifest-path-escape", "PathEscapeError", "case1", "--allow-outside")
def _(root: Path) -> None:
    table = _manifest(root)
    table.loc[1, "flair"] = "../../../etc/passwd.nii.gz"
    _write_manifest(root, table)


@manifest_row("manifest-no-sequences", "ManifestError", "no image columns")
def _(root: Path) -> None:
    _write_manifest(root, _manifest(root)[["case_id", "mask"]])


@manifest_row("manifest-binary", "ManifestError", "manifest.csv")
def _(root: Path) -> None:
    (root / "manifest.csv").write_bytes(bytes(range(256)) * 8)


@manifest_row("manifest-is-folder", "manifest.csv")
def _(root: Path) -> None:
    (root / "manifest.csv").unlink()
    (root / "manifest.csv").mkdir()


@row("manifest-unknown-sequence", 2, "ManifestError", "'t2'")
def _(root: Path) -> list[str]:
    return _validate(root, "--sequences", "t1,t2")


# --- label maps -------------------------------------------------------------------------


@row("labels-unknown-preset", 2, "LabelMapError", "bratz")
def _(root: Path) -> list[str]:
    return _extract(root, "--labels", "bratz")


@row("labels-yaml-syntax", 2, "LabelMapError", "labels.yaml")
def _(root: Path) -> list[str]:
    (root / "labels.yaml").write_text("labels: {1: tumor\nregions: [")
    return _extract(root, "--labels", str(root / "labels.yaml"))


@row("labels-unknown-key", 2, "LabelMapError", "colour")
def _(root: Path) -> list[str]:
    (root / "labels.yaml").write_text("labels: {1: t}\nregions: {t: [1]}\ncolour: red\n")
    return _extract(root, "--labels", str(root / "labels.yaml"))


@row("labels-region-undefined-value", 2, "LabelMapError", "'t'")
def _(root: Path) -> list[str]:
    (root / "labels.yaml").write_text("labels: {1: t}\nregions: {t: [1, 3]}\n")
    return _extract(root, "--labels", str(root / "labels.yaml"))


@row("labels-wrong-type", 2, "LabelMapError", "labels")
def _(root: Path) -> list[str]:
    (root / "labels.yaml").write_text("labels: [tumor]\nregions: {t: [1]}\n")
    return _extract(root, "--labels", str(root / "labels.yaml"))


@row("labels-not-a-mapping", 2, "LabelMapError", "labels.yaml")
def _(root: Path) -> list[str]:
    (root / "labels.yaml").write_text("- just\n- a list\n")
    return _validate(root, "--labels", str(root / "labels.yaml"))


# --- radiomics configs ------------------------------------------------------------------


@row("config-missing", 2, "RadiomicsConfigError", "nope.yaml")
def _(root: Path) -> list[str]:
    return [*_extract(root), "--config", str(root / "nope.yaml")]


@row("config-yaml-syntax", 2, "RadiomicsConfigError", "fo.yaml")
def _(root: Path) -> list[str]:
    (root / "fo.yaml").write_text("setting: {binWidth: 25\nfeatureClass: [")
    return _extract(root)


@row("config-unknown-key", 2, "RadiomicsConfigError", "binwidht")
def _(root: Path) -> list[str]:
    (root / "fo.yaml").write_text(FIRSTORDER_YAML.replace("binWidth", "binwidht"))
    return _extract(root)


@row("config-wrong-type", 2, "RadiomicsConfigError", "binWidth")
def _(root: Path) -> list[str]:
    (root / "fo.yaml").write_text(FIRSTORDER_YAML.replace("25", "wide"))
    return _extract(root)


@row("config-unknown-feature-class", 2, "RadiomicsConfigError", "firstordr")
def _(root: Path) -> list[str]:
    (root / "fo.yaml").write_text(FIRSTORDER_YAML.replace("firstorder", "firstordr"))
    return _extract(root)


@row("config-engine-unsupported", 2, "EngineUnsupportedError", "LBP3D")
def _(root: Path) -> list[str]:
    (root / "fo.yaml").write_text(FIRSTORDER_YAML.replace("Original", "LBP3D"))
    return _extract(root, "--engine", "native")


@row("config-engine-unknown", 2, "RadiomicsConfigError", "engine 'fast'")
def _(root: Path) -> list[str]:
    (root / "fo.yaml").write_text(FIRSTORDER_YAML + "\nengine: fast\n")
    return _extract(root)


@row("config-unknown-region", 2, "region", "XX")
def _(root: Path) -> list[str]:
    return _extract(root, "--regions", "XX")


# --- preprocessing pipelines and brain masks -----------------------------------------------


def _preprocess(root: Path, config: str) -> list[str]:
    return [
        "preprocess",
        str(root / "manifest.csv"),
        "--config",
        config,
        "--out",
        str(root.parent / "pre"),
        "--no-progress",
    ]


@row("pipeline-unknown-preset", 2, "FileNotFoundError", "glioma_mri")
def _(root: Path) -> list[str]:
    return _preprocess(root, "glioma-mri")


@row("pipeline-unknown-step", 2, "PreprocessConfigError", "bias_corection")
def _(root: Path) -> list[str]:
    (root / "p.yaml").write_text("bias_corection: {}\n", encoding="utf-8")
    return _preprocess(root, str(root / "p.yaml"))


@row("pipeline-bad-value", 2, "PreprocessConfigError", "resample.spacing", "between 0.01")
def _(root: Path) -> list[str]:
    (root / "p.yaml").write_text("resample: {spacing: [1, 1, 0]}\n", encoding="utf-8")
    return _preprocess(root, str(root / "p.yaml"))


@row("pipeline-brain-normalise-without-brain", 2, "normalise.region", "brain_extraction")
def _(root: Path) -> list[str]:
    (root / "p.yaml").write_text("normalise: {region: brain}\n", encoding="utf-8")
    return _preprocess(root, str(root / "p.yaml"))


@row("pipeline-missing-reference", 1, "add one, or change `reference`")
def _(root: Path) -> list[str]:
    (root / "p.yaml").write_text("reference: [t2]\nreorient: {}\n", encoding="utf-8")
    return _preprocess(root, str(root / "p.yaml"))


@row("brain-normalisation-without-brain-mask", 1, "has no brain mask", "hybridrad preprocess")
def _(root: Path) -> list[str]:
    text = FIRSTORDER_YAML.replace("{binWidth: 25,", "{normalizeRegion: brain, binWidth: 25,")
    (root / "fo.yaml").write_text(text, encoding="utf-8")
    return _extract(root)


# --- clinical tables --------------------------------------------------------------------


def _clinical(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "clinical.csv", dtype={"case_id": str})


def _validate_clinical(root: Path) -> list[str]:
    return _validate(
        root, "--clinical", str(root / "clinical.csv"), "--time", "os_months", "--event", "death"
    )


@row("clinical-zero-bytes", 2, "ClinicalError", "clinical.csv")
def _(root: Path) -> list[str]:
    (root / "clinical.csv").write_bytes(b"")
    return _validate_clinical(root)


@row("clinical-header-only", 2, "ClinicalError", "clinical.csv")
def _(root: Path) -> list[str]:
    (root / "clinical.csv").write_text("case_id,os_months,death\n")
    return _validate_clinical(root)


@row("clinical-no-id-column", 2, "ClinicalError", "case_id")
def _(root: Path) -> list[str]:
    _clinical(root).rename(columns={"case_id": "pid"}).to_csv(root / "clinical.csv", index=False)
    return _validate_clinical(root)


@row("clinical-duplicate-id", 1, "ClinicalError", "case2")
def _(root: Path) -> list[str]:
    table = _clinical(root)
    table.loc[3, "case_id"] = "case2"
    table.to_csv(root / "clinical.csv", index=False)
    return _validate_clinical(root)


@row("clinical-text-time", 1, "SurvivalTimeError", "case2", "os_months")
def _(root: Path) -> list[str]:
    table = _clinical(root).astype({"os_months": object})
    table.loc[2, "os_months"] = "ten"
    table.to_csv(root / "clinical.csv", index=False)
    return _validate_clinical(root)


@row("clinical-negative-time", 1, "SurvivalTimeError", "case2", "negative")
def _(root: Path) -> list[str]:
    table = _clinical(root)
    table.loc[2, "os_months"] = -3
    table.to_csv(root / "clinical.csv", index=False)
    return _validate_clinical(root)


@row("clinical-event-2", 1, "EventError", "case2", "death")
def _(root: Path) -> list[str]:
    table = _clinical(root)
    table.loc[2, "death"] = 2
    table.to_csv(root / "clinical.csv", index=False)
    return _validate_clinical(root)


@row("clinical-no-time-column", 1, "ClinicalError", "survival")
def _(root: Path) -> list[str]:
    return _validate(
        root, "--clinical", str(root / "clinical.csv"), "--time", "survival", "--event", "death"
    )


@row("clinical-missing-case", 1, "CaseMismatchError", "case5")
def _(root: Path) -> list[str]:
    _clinical(root).iloc[:5].to_csv(root / "clinical.csv", index=False)
    return _validate_clinical(root)


# --- feature tables and study configs (modelling commands) -------------------------------

TABLE_ROWS: list[Row] = []


def table_row(name: str, *fragments: str) -> Callable[[Callable[[Path], None]], None]:
    """A damaged feature or clinical table: every modelling command must stop with exit 2."""

    def register(damage: Callable[[Path], None]) -> None:
        def build(root: Path) -> list[str]:
            damage(root)
            return _evaluate(root)

        CORPUS.append(Row(name, build, 2, fragments))
        TABLE_ROWS.append(Row(name, lambda root: damage(root) or [], 2, fragments))

    return register


def _features(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "features.csv", dtype={"case_id": str})


@table_row("features-zero-bytes", "features.csv")
def _(root: Path) -> None:
    (root / "features.csv").write_bytes(b"")


@table_row("features-header-only", "features.csv")
def _(root: Path) -> None:
    (root / "features.csv").write_text("case_id,rad__f0\n")


@table_row("features-text-value", "rad__f1", "case3")
def _(root: Path) -> None:
    table = _features(root).astype({"rad__f1": object})
    table.loc[3, "rad__f1"] = "n/a?"
    table.to_csv(root / "features.csv", index=False)


@table_row("features-duplicate-id", "case4")
def _(root: Path) -> None:
    table = _features(root)
    table.loc[5, "case_id"] = "case4"
    table.to_csv(root / "features.csv", index=False)


@table_row("features-no-id-column", "case_id")
def _(root: Path) -> None:
    _features(root).rename(columns={"case_id": "pid"}).to_csv(root / "features.csv", index=False)


@table_row("features-no-overlap", "case")
def _(root: Path) -> None:
    table = _features(root)
    table["case_id"] = "other" + table["case_id"]
    table.to_csv(root / "features.csv", index=False)


@table_row("clinical-missing-target", "case2", "os_months")
def _(root: Path) -> None:
    table = _clinical(root)
    table.loc[2, "os_months"] = np.nan
    table.to_csv(root / "clinical.csv", index=False)


@table_row("clinical-text-target", "case2", "os_months")
def _(root: Path) -> None:
    table = _clinical(root).astype({"os_months": object})
    table.loc[2, "os_months"] = "alive"
    table.to_csv(root / "clinical.csv", index=False)


@table_row("clinical-text-covariate", "age", "case1")
def _(root: Path) -> None:
    table = _clinical(root).astype({"age": object})
    table.loc[1, "age"] = "old"
    table.to_csv(root / "clinical.csv", index=False)


@row("features-unsupported-suffix", 2, "features.xlsx")
def _(root: Path) -> list[str]:
    (root / "features.xlsx").write_bytes(b"PK\x03\x04")
    return _evaluate(root, features="features.xlsx")


@row("features-missing-file", 2, "nothere.csv")
def _(root: Path) -> list[str]:
    return _evaluate(root, features="nothere.csv")


@row("study-yaml-syntax", 2, "study.yaml")
def _(root: Path) -> list[str]:
    (root / "study.yaml").write_text("model: cox\nscreen_k: [10, 30\n")
    return _evaluate(root, "--config", str(root / "study.yaml"))


@row("study-unknown-key", 2, "modle")
def _(root: Path) -> list[str]:
    (root / "study.yaml").write_text("modle: cox\n")
    return _evaluate(root, "--config", str(root / "study.yaml"))


@row("study-wrong-type", 2, "outer_splits")
def _(root: Path) -> list[str]:
    (root / "study.yaml").write_text("outer_splits: five\n")
    return _evaluate(root, "--config", str(root / "study.yaml"))


@row("study-unknown-model", 2, "coxx")
def _(root: Path) -> list[str]:
    return _evaluate(root, "--model", "coxx")


# --- model and encoder files ------------------------------------------------------------


def _segment(root: Path, *extra: str) -> list[str]:
    return ["segment", str(root / "manifest.csv"), "--out", str(root.parent / "seg"),
            "--no-progress", *extra]  # fmt: skip


@row("segment-model-missing", 2, "ModelDirError", "nomodel")
def _(root: Path) -> list[str]:
    return _segment(root, "--model", str(root / "nomodel"))


def _model_copy(root: Path) -> Path:
    """A writable copy of the shipped glioma-flair model folder."""
    from hybridrad.segment.registry import resolve_model

    model = root / "model"
    shutil.copytree(resolve_model("glioma-flair"), model)
    return model


def _plant_payload(model: Path, marker: Path) -> None:
    """Replace the weights with a pickle that would create ``marker`` if it ever ran."""
    torch = pytest.importorskip("torch")

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": Payload()}, model / "model.pt")


def _segment_with(model: Path) -> list[str]:
    return _segment(model.parent, "--model", str(model), "--sequences", "flair")


@row("segment-model-garbage-weights", 2, "ModelDirError", "model.pt")
def _(root: Path) -> list[str]:
    model = _model_copy(root)
    (model / "model.pt").write_bytes(b"garbage" * 100)
    return _segment_with(model)


@row("segment-model-pickle-payload", 2, "ModelDirError", "model.pt")
def _(root: Path) -> list[str]:
    model = _model_copy(root)
    _plant_payload(model, root / "PWNED")
    return _segment_with(model)


@row("segment-model-pickle-payload-rehashed", 2, "ModelDirError", "weights_only=True")
def _(root: Path) -> list[str]:
    """An attacker who recomputes the recorded hash still cannot make the file run code."""
    from hybridrad.provenance import file_sha256

    model = _model_copy(root)
    _plant_payload(model, root / "PWNED")
    meta = json.loads((model / "model.json").read_text())
    meta["weights"]["sha256"] = file_sha256(model / "model.pt")
    (model / "model.json").write_text(json.dumps(meta))
    return _segment_with(model)


@row("segment-model-json-edited", 2, "ModelDirError", "model.json")
def _(root: Path) -> list[str]:
    model = _model_copy(root)
    (model / "model.json").write_text("{not json")
    return _segment_with(model)


@row("segment-sequence-mismatch", 2, "SequenceMismatchError", "t1c")
def _(root: Path) -> list[str]:
    return _segment(root, "--model", "glioma-flair-t1-t1c")


@row("segment-unknown-model-name", 2, "ModelDirError", "glioma-flare")
def _(root: Path) -> list[str]:
    return _segment(root, "--model", "glioma-flare")


def _deep(root: Path, encoder: Path, *extra: str) -> list[str]:
    return ["deep-features", str(root / "manifest.csv"), "--encoder", f"torchscript:{encoder}",
            "--out", str(root.parent / "d.parquet"), "--no-progress", *extra]  # fmt: skip


@row("deep-torchscript-untrusted", 2, "UntrustedCodeError", "enc.ts", "--trust-code")
def _(root: Path) -> list[str]:
    torch = pytest.importorskip("torch")
    module = torch.jit.script(torch.nn.Conv3d(2, 4, 3))
    module.save(str(root / "enc.ts"))
    return _deep(root, root / "enc.ts")


@row("deep-encoder-missing", 2, "EncoderError", "noenc")
def _(root: Path) -> list[str]:
    return _deep(root, root / "noenc.ts", "--trust-code")


@row("deep-encoder-garbage", 2, "EncoderError", "bad.ts")
def _(root: Path) -> list[str]:
    (root / "bad.ts").write_bytes(b"not a zip" * 20)
    return _deep(root, root / "bad.ts", "--trust-code")


@row("predict-model-missing", 2, "nomodel")
def _(root: Path) -> list[str]:
    return ["predict", str(root / "nomodel"), str(root / "features.csv"),
            "--out", str(root.parent / "p.csv")]  # fmt: skip


@row("predict-model-not-a-model", 2, "model")
def _(root: Path) -> list[str]:
    (root / "notmodel").mkdir()
    (root / "notmodel" / "model.json").write_text("[1, 2, 3]")
    return ["predict", str(root / "notmodel"), str(root / "features.csv"),
            "--out", str(root.parent / "p.csv")]  # fmt: skip


# --- outputs and devices ----------------------------------------------------------------


@row("out-wrong-suffix", 2, "OutputPathError", "features.parquet")
def _(root: Path) -> list[str]:
    argv = _extract(root)
    argv[argv.index("--out") + 1] = str(root.parent / "features.csv")
    return argv


@row("out-is-a-folder", 2, "OutputPathError", "folder")
def _(root: Path) -> list[str]:
    (root.parent / "x.parquet").mkdir()
    argv = _extract(root)
    argv[argv.index("--out") + 1] = str(root.parent / "x.parquet")
    return argv


@row("out-read-only", 2, "OutputPathError", "cannot write")
def _(root: Path) -> list[str]:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = root.parent / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    argv = _extract(root)
    argv[argv.index("--out") + 1] = str(ro / "f.parquet")
    return argv


@row("out-under-a-file", 2, "OutputPathError", "is a file")
def _(root: Path) -> list[str]:
    return [
        *_segment(root, "--model", "glioma-flair", "--sequences", "flair")[:3],
        str(root / "manifest.csv" / "seg"),
    ]


@row("device-cuda-absent", 2, "DeviceError", "cuda")
def _(root: Path) -> list[str]:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    return _segment(root, "--model", "glioma-flair", "--sequences", "flair", "--device", "cuda")


@row("device-unknown", 2, "DeviceError", "tpu")
def _(root: Path) -> list[str]:
    return ["deep-features", str(root / "manifest.csv"), "--device", "tpu",
            "--out", str(root.parent / "d.parquet")]  # fmt: skip


# --- cache entries ------------------------------------------------------------------------


def _poisoned_cache(root: Path, poison: Callable[[dict[str, object]], object]) -> list[str]:
    argv = _extract(root)
    assert main(argv) == 0
    entries = sorted((root.parent / "out" / ".hybridrad-cache").rglob("*.json"))
    assert len(entries) == N_CASES
    data = json.loads(entries[0].read_text())
    entries[0].write_text(json.dumps(poison(data)))
    return argv


@row("cache-null", 0, "1 computed")
def _(root: Path) -> list[str]:
    return _poisoned_cache(root, lambda d: None)


@row("cache-list", 0, "1 computed")
def _(root: Path) -> list[str]:
    return _poisoned_cache(root, lambda d: [])


@row("cache-value-is-text", 0, "1 computed")
def _(root: Path) -> list[str]:
    def poison(d: dict[str, object]) -> object:
        features = dict(d["features"])  # type: ignore[call-overload]
        features[next(iter(features))] = "oops"
        return {**d, "features": features}

    return _poisoned_cache(root, poison)


@row("cache-value-edited", 0, "1 computed")
def _(root: Path) -> list[str]:
    def poison(d: dict[str, object]) -> object:
        features = dict(d["features"])  # type: ignore[call-overload]
        key = next(iter(features))
        features[key] = float(features[key]) + 1.0
        return {**d, "features": features}

    return _poisoned_cache(root, poison)


# --- numeric options (usage errors: argparse's one line, exit 2) --------------------------


@row("option-jobs-zero", 2, "--jobs must be >= 1, got 0")
def _(root: Path) -> list[str]:
    return _extract(root, "--jobs", "0")


@row("option-tolerance-negative", 2, "--tolerance must be >= 0")
def _(root: Path) -> list[str]:
    return _validate(root, "--tolerance", "-1")


@row("option-tolerance-nan", 2, "--tolerance must be a finite number")
def _(root: Path) -> list[str]:
    return _extract(root, "--tolerance", "nan")


@row("option-perturbations-one", 2, "--perturbations must be >= 2")
def _(root: Path) -> list[str]:
    return [*MANIFEST_COMMANDS["robustness"](root), "--perturbations", "1"]


@row("option-kinds-unknown", 2, "unknown perturbation", "wobble")
def _(root: Path) -> list[str]:
    return [*MANIFEST_COMMANDS["robustness"](root), "--kinds", "translate,wobble"]


@row("option-cases-zero", 2, "--cases must be >= 2")
def _(root: Path) -> list[str]:
    return ["demo-cohort", str(root.parent / "demo"), "--cases", "0"]


@row("option-batch-size-zero", 2, "--batch-size must be >= 1")
def _(root: Path) -> list[str]:
    return [*MANIFEST_COMMANDS["deep-features"](root), "--batch-size", "0"]


@row("option-confidence-one", 2, "--confidence must be below 1")
def _(root: Path) -> list[str]:
    return [*MANIFEST_COMMANDS["contour-agreement"](root), "--confidence", "1"]


@row("option-epochs-zero", 2, "--epochs must be >= 1")
def _(root: Path) -> list[str]:
    return [*MANIFEST_COMMANDS["seg-train"](root)[:-3], "--epochs", "0"]


@row("seg-train-unknown-config-name", 2, "glioma-flare", "glioma-flair")
def _(root: Path) -> list[str]:
    argv = MANIFEST_COMMANDS["seg-train"](root)
    argv[argv.index("--config") + 1] = "glioma-flare"
    return argv


# --- the tests ----------------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _check(code: int, text: str, expected: Row) -> None:
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    assert code == expected.exit, f"exit {code}, expected {expected.exit}:\n{text}"
    for fragment in expected.fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_corpus_is_large_and_distinct() -> None:
    names = [r.name for r in CORPUS]
    assert len(names) == len(set(names))
    assert len(CORPUS) >= 60


@pytest.mark.parametrize("entry", CORPUS, ids=lambda r: r.name)
def test_bad_input(
    entry: Row, study: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(study.parent)
    argv = entry.build(study)
    code, text = _run(argv, capsys)
    _check(code, text, entry)
    assert not (study / "PWNED").exists(), "a model file ran code"


MANIFEST_COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "validate": lambda root: _validate(root),
    "extract": lambda root: _extract(root),
    "robustness": lambda root: [
        "robustness",
        str(root / "manifest.csv"),
        "--config",
        str(root / "fo.yaml"),
        "--out",
        str(root.parent / "icc.csv"),
        "--no-progress",
    ],
    "segment": lambda root: _segment(root, "--model", "glioma-flair", "--sequences", "flair"),
    "preprocess": lambda root: _preprocess(root, "resample_only"),
    "seg-eval": lambda root: ["seg-eval", str(root / "manifest.csv"), "--pred", str(root)],
    "seg-train": lambda root: [
        "seg-train",
        str(root / "manifest.csv"),
        "--config",
        "glioma-flair",
        "--out",
        str(root.parent / "m"),
        "--epochs",
        "1",
        "--no-progress",
    ],
    "deep-features": lambda root: [
        "deep-features",
        str(root / "manifest.csv"),
        "--out",
        str(root.parent / "d.parquet"),
        "--no-progress",
    ],
    "pretrain": lambda root: [
        "pretrain",
        str(root / "manifest.csv"),
        "--out",
        str(root.parent / "enc"),
        "--epochs",
        "1",
        "--no-progress",
    ],
    "contour-agreement": lambda root: [
        "contour-agreement",
        str(root / "manifest.csv"),
        "--pred",
        str(root),
        "--out",
        str(root.parent / "agree"),
    ],
}


@pytest.mark.parametrize("command", sorted(MANIFEST_COMMANDS))
@pytest.mark.parametrize("entry", MANIFEST_ROWS, ids=lambda r: r.name)
def test_every_command_refuses_bad_manifests(
    command: str, entry: Row, study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry.build(study)
    code, text = _run(MANIFEST_COMMANDS[command](study), capsys)
    _check(code, text, entry)


TABLE_COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "evaluate": lambda root: _evaluate(root),
    "fit": lambda root: [
        "fit",
        str(root / "features.csv"),
        "--clinical",
        str(root / "clinical.csv"),
        "--time",
        "os_months",
        "--event",
        "death",
        "--out",
        str(root.parent / "model"),
    ],
}


@pytest.mark.parametrize("command", sorted(TABLE_COMMANDS))
@pytest.mark.parametrize("entry", TABLE_ROWS, ids=lambda r: r.name)
def test_every_table_command_refuses_bad_tables(
    command: str, entry: Row, study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry.build(study)
    code, text = _run(TABLE_COMMANDS[command](study), capsys)
    _check(code, text, entry)


HOSTILE_IDS = ["../../escaped", "/tmp/absolute", "CON", "a/b\\c", ".hidden", "x" * 300]


def test_hostile_case_ids_stay_inside_the_output_folder(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _manifest(study)
    table.loc[: len(HOSTILE_IDS) - 1, "case_id"] = HOSTILE_IDS
    _write_manifest(study, table)
    before = {p for p in study.parent.parent.rglob("*")}
    out = study.parent / "seg"
    argv = _segment(study, "--model", "glioma-flair", "--sequences", "flair")
    code, text = _run(argv, capsys)
    assert "Traceback" not in text and code in (0, 1), text
    code, text = _run(["seg-eval", str(study / "manifest.csv"), "--pred", str(out)], capsys)
    assert "Traceback" not in text and code == 0, text
    new = {p for p in study.parent.parent.rglob("*")} - before
    assert new and all(out in p.parents or p == out for p in new), sorted(new)
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert len(masks) == N_CASES and not any(m.startswith(".") or "/" in m for m in masks)
    assert not Path("/tmp/absolute.nii.gz").exists()
