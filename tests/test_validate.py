"""One bad manifest or table per validation problem: class and message checked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from hybridrad.errors import (
    CaseMismatchError,
    ClinicalError,
    CohortValidationError,
    DuplicateCaseError,
    EventError,
    ImageNotFoundError,
    ImageReadError,
    ManifestError,
    MaskGeometryError,
    MaskLabelError,
    MissingSequenceError,
    SequenceGeometryError,
    SurvivalTimeError,
)
from hybridrad.io import Cohort, Problem, ValidationReport, read_clinical, validate_clinical
from tests.conftest import CohortFactory, make_image, make_mask


def _only(report: ValidationReport, kind: type[Exception]) -> list[Problem]:
    found = report.of_kind(kind)
    assert found, report.summary()
    assert len(found) == len(report.problems), report.summary()
    return found


def test_valid_cohort_has_no_problems(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    cohort = Cohort.from_csv(m, clinical=m.parent / "clinical.csv")
    report = cohort.validate(time="os_months", event="death")
    assert report.ok, report.summary()
    report.raise_if_failed()  # does nothing
    assert cohort.sequences == ("t1", "flair")
    assert cohort["case1"].site == "A"
    assert cohort["case1"].images["t1"].is_absolute()


def test_missing_file(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    (m.parent / "images/case1/flair.nii.gz").unlink()
    report = Cohort.from_csv(m).validate()
    (p,) = _only(report, ImageNotFoundError)
    assert isinstance(p.error, FileNotFoundError)
    assert p.case_id == "case1" and p.column == "flair"
    assert "case1" in p.message and "flair.nii.gz" in p.message


def test_empty_sequence_cell(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    t = pd.read_csv(m)
    t.loc[2, "t1"] = ""
    t.to_csv(m, index=False)
    (p,) = _only(Cohort.from_csv(m).validate(), MissingSequenceError)
    assert "case2" in p.message and "'t1'" in p.message


def test_unreadable_file(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    (m.parent / "images/case0/t1.nii.gz").write_bytes(b"this is not a nifti file")
    (p,) = _only(Cohort.from_csv(m).validate(), ImageReadError)
    assert isinstance(p.error, OSError)
    assert "case0" in p.message and "t1.nii.gz" in p.message


def test_duplicate_ids(small_cohort: CohortFactory) -> None:
    """Every command builds a Cohort, so the Cohort itself refuses repeated ids."""
    m = small_cohort()
    t = pd.read_csv(m)
    t.loc[2, "case_id"] = "case0"
    t.to_csv(m, index=False)
    with pytest.raises(DuplicateCaseError, match=r"'case0' in row 1 and row 3"):
        Cohort.from_csv(m)


def test_sequence_geometry_differs(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    sitk.WriteImage(
        make_image(spacing=(1.0, 1.0, 3.0), seed=1), str(m.parent / "images/case1/flair.nii.gz")
    )
    report = Cohort.from_csv(m).validate(check_mask_values=False)
    (p,) = _only(report, SequenceGeometryError)
    assert "case1" in p.message and "'flair'" in p.message and "spacing" in p.message


def test_mask_geometry_mismatch_and_tolerance(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    mask = make_mask()
    mask.SetOrigin((0.0, 0.0, 0.01))  # 0.01 mm shift
    sitk.WriteImage(mask, str(m.parent / "images/case2/mask.nii.gz"))
    (p,) = _only(Cohort.from_csv(m).validate(), MaskGeometryError)
    assert "case2" in p.message and "origin" in p.message and "tolerance" in p.message
    assert Cohort.from_csv(m).validate(tolerance=0.05).ok


def test_mask_size_mismatch(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    sitk.WriteImage(make_mask(shape=(12, 10, 9)), str(m.parent / "images/case0/mask.nii.gz"))
    (p,) = _only(Cohort.from_csv(m).validate(), MaskGeometryError)
    assert "case0" in p.message and "size" in p.message


def test_mask_values_not_in_label_map(small_cohort: CohortFactory) -> None:
    m = small_cohort(mask_values=(1, 2, 4))
    assert Cohort.from_csv(m, label_map="brats").validate().ok
    assert Cohort.from_csv(m, label_map="binary").validate().ok  # every non-zero voxel
    report = Cohort.from_csv(m, label_map="brats2012").validate()
    problems = _only(report, MaskLabelError)
    assert len(problems) == 3
    assert "value(s) 4 (" in problems[0].message and "'brats2012'" in problems[0].message
    assert "case0" in problems[0].message and "mask.nii.gz" in problems[0].message


@pytest.mark.parametrize(
    ("value", "why"),
    [("abc", "not a number"), (-3, "negative"), (None, "missing"), ("inf", "not finite")],
)
def test_bad_survival_time(small_cohort: CohortFactory, value: object, why: str) -> None:
    m = small_cohort()
    c = pd.read_csv(m.parent / "clinical.csv")
    c["os_months"] = c["os_months"].astype(object)
    c.loc[1, "os_months"] = value
    c.to_csv(m.parent / "clinical.csv", index=False)
    report = Cohort.from_csv(m, clinical=m.parent / "clinical.csv").validate(
        time="os_months", event="death"
    )
    (p,) = _only(report, SurvivalTimeError)
    assert "case1" in p.message and "'os_months'" in p.message and why in p.message


@pytest.mark.parametrize("value", [2, "yes", None, 0.5])
def test_bad_event(small_cohort: CohortFactory, value: object) -> None:
    m = small_cohort()
    c = pd.read_csv(m.parent / "clinical.csv")
    c["death"] = c["death"].astype(object)
    c.loc[0, "death"] = value
    c.to_csv(m.parent / "clinical.csv", index=False)
    report = Cohort.from_csv(m, clinical=m.parent / "clinical.csv").validate(
        time="os_months", event="death"
    )
    (p,) = _only(report, EventError)
    assert "case0" in p.message and "'death'" in p.message


def test_missing_clinical_column(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    report = Cohort.from_csv(m, clinical=m.parent / "clinical.csv").validate(
        time="survival", event="death"
    )
    (p,) = _only(report, ClinicalError)
    assert "'survival'" in p.message and "os_months" in p.message


def test_clinical_rows_without_images_and_reverse(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    c = pd.read_csv(m.parent / "clinical.csv")
    c.loc[1, "case_id"] = "orphan"
    c.to_csv(m.parent / "clinical.csv", index=False)
    report = Cohort.from_csv(m, clinical=m.parent / "clinical.csv").validate()
    problems = _only(report, CaseMismatchError)
    messages = " ".join(p.message for p in problems)
    assert "'case1' has images but no row" in messages
    assert "'orphan' has a clinical row but no images" in messages


def test_every_problem_reported_at_once(small_cohort: CohortFactory) -> None:
    m = small_cohort()
    (m.parent / "images/case0/t1.nii.gz").unlink()
    sitk.WriteImage(make_mask(values=(7,)), str(m.parent / "images/case1/mask.nii.gz"))
    c = pd.read_csv(m.parent / "clinical.csv")
    c.loc[2, "death"] = 3
    c.to_csv(m.parent / "clinical.csv", index=False)
    report = Cohort.from_csv(m, label_map="brats", clinical=m.parent / "clinical.csv").validate(
        time="os_months", event="death"
    )
    kinds = sorted(p.kind for p in report.problems)
    assert kinds == ["EventError", "ImageNotFoundError", "MaskLabelError"]
    with pytest.raises(CohortValidationError) as info:
        report.raise_if_failed()
    assert isinstance(info.value, ValueError)
    assert len(info.value.problems) == 3
    table = report.to_frame()
    assert list(table["case_id"]) == [p.case_id for p in report.problems]


def test_manifest_structure_errors(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    pd.DataFrame({"id": ["a"], "t1": ["x.nii.gz"]}).to_csv(p, index=False)
    with pytest.raises(ManifestError, match="no 'case_id' column"):
        Cohort.from_csv(p)
    pd.DataFrame({"case_id": ["a"], "mask": ["x.nii.gz"]}).to_csv(p, index=False)
    with pytest.raises(ManifestError, match="no image columns"):
        Cohort.from_csv(p)
    pd.DataFrame({"case_id": ["a"], "t1": ["x.nii.gz"]}).to_csv(p, index=False)
    with pytest.raises(ManifestError, match="'t2'"):
        Cohort.from_csv(p, sequences=["t2"])
    with pytest.raises(FileNotFoundError):
        Cohort.from_csv(tmp_path / "absent.csv")


def test_clinical_duplicate_ids_and_missing_id_column(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    pd.DataFrame({"case_id": ["a", "a"], "t": [1, 2], "e": [1, 0]}).to_csv(p, index=False)
    report = validate_clinical(read_clinical(p), time="t", event="e")
    (problem,) = _only(report, ClinicalError)
    assert "'a'" in problem.message and "more than once" in problem.message
    pd.DataFrame({"patient": ["a"]}).to_csv(p, index=False)
    with pytest.raises(ClinicalError, match="'case_id'"):
        read_clinical(p)
    assert validate_clinical(read_clinical(p, id_column="patient")).ok


def test_boolean_events_accepted(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    pd.DataFrame({"case_id": ["a", "b"], "t": [1.5, 0], "e": [True, False]}).to_csv(p, index=False)
    assert validate_clinical(read_clinical(p), time="t", event="e").ok
