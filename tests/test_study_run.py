"""`hybridrad run STUDY.yaml`: the study file's validation and the stage cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from hybridrad.models.pipelines import StudyConfig
from hybridrad.study.run import run_study
from hybridrad.study.spec import (
    SHIPPED_STUDIES,
    StudyFileError,
    load_study_file,
    parse_study,
    shipped_study,
)


def _minimal(**over: Any) -> dict[str, Any]:
    study: dict[str, Any] = {
        "name": "t",
        "cohort": {"synthetic": {"n_cases": 20, "seed": 3}, "label_map": "brats"},
        "targets": {"survival": {"time": "os_months", "event": "death"}},
    }
    study.update(over)
    return study


@pytest.mark.parametrize("name", SHIPPED_STUDIES)
def test_shipped_studies_validate(name: str) -> None:
    spec, path = load_study_file(name)
    assert path == shipped_study(name).resolve()
    assert spec.name
    assert spec.final_model in spec.model["feature_sets"]


def test_model_section_defaults_are_the_study_config_defaults() -> None:
    spec = parse_study(_minimal())
    assert spec.model == StudyConfig().to_dict()
    assert spec.config == StudyConfig()


def test_every_problem_is_reported_with_its_key_path() -> None:
    bad = _minimal(
        features={"deep": {"batch_sise": 4}, "handcrafted": {"tolerance": "small"}},
        report={"title": "x", "colour": "red"},
    )
    with pytest.raises(StudyFileError) as info:
        parse_study(bad, source="bad.yaml")
    paths = [p for p, _ in info.value.key_problems]
    assert "features.deep.batch_sise" in paths
    assert "features.handcrafted.tolerance" in paths
    assert "report.colour" in paths
    assert str(info.value).startswith("bad.yaml: 3 problem(s)")


@pytest.mark.parametrize(
    ("over", "path", "words"),
    [
        ({"model": {"n_boots": 5}}, "model", "unknown study key"),
        ({"model": {"n_boot": "many"}}, "model", "n_boot"),
        ({"cohort": {"label_map": "brats"}}, "cohort", "exactly one of synthetic"),
        (
            {"cohort": {"manifest": "m.csv"}},
            "cohort",
            "needs a clinical table",
        ),
        ({"targets": {}}, "targets", "at least one target"),
        ({"final_model": "everything"}, "(top level)", "not a feature set"),
        (
            {"features": {"handcrafted": None}},
            "(top level)",
            "model.feature_sets.handcrafted uses block(s) ['rad']",
        ),
        ({"segmentation": {}}, "(top level)", "synthetic-brats"),
        ({"preprocess": {"spacing": [1, 1, 0]}}, "preprocess.spacing", "between 0.01"),
        (
            {"features": {"handcrafted": {"engine": "fast"}}},
            "features.handcrafted.engine",
            "'pyradiomics' or 'native'",
        ),
    ],
)
def test_impossible_studies_are_refused(over: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(StudyFileError) as info:
        parse_study(_minimal(**over))
    assert any(p == path and words in msg for p, msg in info.value.key_problems), (
        info.value.key_problems
    )


def test_study_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="shipped study"):
        load_study_file(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyFileError, match=r"bad\.yaml"):
        load_study_file(bad)
    bad.write_text("- a list\n")
    with pytest.raises(StudyFileError, match="mapping"):
        load_study_file(bad)


def test_handcrafted_engine_is_part_of_the_stage_key(tmp_path: Path) -> None:
    """``features.handcrafted.engine`` reaches the config the stage hashes, so switching
    engines recomputes the handcrafted stage instead of serving the other engine's table."""
    from hybridrad.features.radiomics import RadiomicsConfig
    from hybridrad.study.run import _Runner

    hashes = {}
    for engine in (None, "pyradiomics", "native"):
        spec = parse_study(
            _minimal(features={"handcrafted": {"config": "mri_glioma_fast", "engine": engine}})
        )
        runner = _Runner(spec, tmp_path, tmp_path / "out", jobs=1, force=False, progress=False)
        hashes[engine] = runner.content_hashes("handcrafted")["config"]
    assert hashes[None] == hashes["pyradiomics"] == RadiomicsConfig.load("mri_glioma_fast").hash
    assert hashes["native"] != hashes["pyradiomics"]


def test_hash_ignores_defaults_written_out() -> None:
    """The same study written with or without its defaults has the same hash."""
    short = parse_study(_minimal())
    full = parse_study(short.canonical())
    assert short.hash == full.hash
    assert parse_study(_minimal(model={"seed": 1})).hash != short.hash


# -- the stage cache ------------------------------------------------------------------------
def _clinical_only(tmp_path: Path, **model: Any) -> Path:
    """A study with no imaging stages: cohort -> evaluation -> report (a few seconds)."""
    study = _minimal(
        features={"handcrafted": None, "deep": None},
        model={
            "feature_sets": {"clinical": ["clin"], "age_mgmt": ["clin"]},
            "covariates": ["age", "mgmt_promoter"],
            "outer_splits": 3,
            "outer_repeats": 1,
            "inner_splits": 2,
            "n_boot": 20,
            "n_permutations": 0,
            **model,
        },
        final_model="clinical",
    )
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_rerun_recomputes_nothing_and_a_model_edit_only_evaluation(tmp_path: Path) -> None:
    study = _clinical_only(tmp_path)
    out = tmp_path / "out"
    first = run_study(study, out, progress=False)
    assert first.computed() == ["cohort", "evaluation", "report"]
    assert first.report.is_file()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    again = run_study(study, out, progress=False)
    assert again.computed() == []
    assert {s["status"] for s in again.stages.values()} == {"cached", "skipped"}
    unchanged = {p: p.stat().st_mtime_ns for p in before if p.exists()}
    changed = [p for p in before if before[p] != unchanged.get(p)]
    assert [p.name for p in changed] == ["study.yaml", "run.json"] or set(
        p.name for p in changed
    ) <= {"study.yaml", "run.json"}

    edited = _clinical_only(tmp_path, n_boot=30)
    third = run_study(edited, out, progress=False)
    assert third.computed() == ["evaluation", "report"]
    record = json.loads((out / "run.json").read_text())
    assert record["study_hash"] == third.study_hash != first.study_hash
    assert json.loads((out / "evaluation" / "stage.json").read_text())["study_hash"] == (
        third.study_hash
    )
    # the written study file reproduces the run: rerunning it recomputes nothing
    assert run_study(out / "study.yaml", out, progress=False).computed() == []


def test_an_edited_input_table_recomputes_the_cohort(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_study(_clinical_only(tmp_path), out, progress=False)
    clinical = out / "cohort" / "clinical.csv"
    manifest = out / "cohort" / "manifest.csv"
    study = yaml.safe_load((tmp_path / "study.yaml").read_text())
    del study["cohort"]["synthetic"]
    study["cohort"].update(manifest=str(manifest), clinical=str(tmp_path / "clin.csv"))
    text = clinical.read_text()
    (tmp_path / "clin.csv").write_text(text)
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(study))
    real = run_study(path, tmp_path / "own", progress=False)
    assert real.computed() == ["cohort", "evaluation", "report"]
    assert run_study(path, tmp_path / "own", progress=False).computed() == []
    (tmp_path / "clin.csv").write_text(text.replace("\n", "\n", 1) + "")  # same bytes
    assert run_study(path, tmp_path / "own", progress=False).computed() == []
    lines = text.splitlines()
    (tmp_path / "clin.csv").write_text("\n".join([lines[0], *lines[2:], lines[1]]) + "\n")
    assert run_study(path, tmp_path / "own", progress=False).computed()[0] == "cohort"
    assert first.study_hash != real.study_hash


def test_a_failed_stage_is_recomputed_next_time(tmp_path: Path) -> None:
    study = yaml.safe_load(_clinical_only(tmp_path).read_text())
    study["targets"]["survival"]["time"] = "no_such_column"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    with pytest.raises(Exception, match="no_such_column"):
        run_study(path, out, progress=False)
    record = json.loads((out / "run.json").read_text())
    assert "no_such_column" in record["failed"]
    assert not (out / "evaluation" / "stage.json").exists()


def test_cli_run_prints_one_line_per_problem_and_the_report_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybridrad.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_minimal(features={"deep": {"batch_sise": 4}}, colour=1)))
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: StudyFileError: ") for line in err)
    assert any("features.deep.batch_sise: Extra inputs" in line for line in err)
    assert any(line.endswith("colour: Extra inputs are not permitted") for line in err)
    assert "Traceback" not in "".join(err)

    good = _clinical_only(tmp_path)
    assert main(["run", str(good), "--out", str(tmp_path / "o"), "--jobs", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"report: {tmp_path / 'o' / 'report' / 'report.html'}"


def test_preprocess_stage_runs_a_pipeline_file_and_an_edit_reruns_it(tmp_path: Path) -> None:
    import SimpleITK as sitk

    pipeline = tmp_path / "pipeline.yaml"
    steps = {
        "reference": ["flair"],
        "brain_extraction": {"method": "threshold"},
        "normalise": {"region": "brain", "clip_percentiles": None},
    }
    pipeline.write_text(yaml.safe_dump(steps), encoding="utf-8")
    study = yaml.safe_load(_clinical_only(tmp_path).read_text(encoding="utf-8"))
    study["preprocess"] = {"config": "pipeline.yaml"}  # relative to the study file
    path = tmp_path / "pre.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    out = tmp_path / "out"
    run = run_study(path, out, progress=False)
    assert run.computed() == ["cohort", "preprocess", "evaluation", "report"]
    manifest = pd.read_csv(out / "preprocess" / "manifest.csv")
    assert len(manifest) == 20 and manifest["brain_mask"].notna().all()
    pre = out / "preprocess"
    flair = sitk.GetArrayFromImage(sitk.ReadImage(str(pre / manifest.loc[0, "flair"])))
    brain = sitk.GetArrayFromImage(sitk.ReadImage(str(pre / manifest.loc[0, "brain_mask"]))) > 0
    assert abs(flair[brain].mean()) < 1e-4 and abs(flair[brain].std() - 1) < 1e-3
    record = json.loads((out / "preprocess" / "stage.json").read_text(encoding="utf-8"))
    assert record["steps"] == ["brain_extraction", "normalise"]
    assert run_study(path, out, progress=False).computed() == []
    # the pipeline file edited in place: the preprocess stage reruns, and the report; this
    # study has no image features, so its evaluation does not depend on the images
    steps["normalise"] = {"region": "image", "clip_percentiles": None}
    pipeline.write_text(yaml.safe_dump(steps), encoding="utf-8")
    assert run_study(path, out, progress=False).computed() == ["preprocess", "report"]


def test_preprocess_stage_resamples_images_and_masks(tmp_path: Path) -> None:
    import SimpleITK as sitk

    study = yaml.safe_load(_clinical_only(tmp_path).read_text())
    study["preprocess"] = {"spacing": [6.0, 6.0, 4.0]}
    path = tmp_path / "pre.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    run = run_study(path, out, progress=False)
    assert run.computed() == ["cohort", "preprocess", "evaluation", "report"]
    manifest = pd.read_csv(out / "preprocess" / "manifest.csv")
    original = pd.read_csv(out / "cohort" / "manifest.csv")
    assert len(manifest) == len(original) == 20
    before = sitk.ReadImage(str(out / "cohort" / original.loc[0, "mask"]))
    after = sitk.ReadImage(str(out / "preprocess" / manifest.loc[0, "mask"]))
    assert after.GetSpacing() == (6.0, 6.0, 4.0)  # synthetic: 3 mm isotropic, 64^3
    assert after.GetSize() == (32, 32, 48)
    assert after.GetPixelID() == before.GetPixelID()  # nearest neighbour keeps labels
    labels_before = set(np.unique(sitk.GetArrayFromImage(before)))
    assert set(np.unique(sitk.GetArrayFromImage(after))) <= labels_before
    flair = sitk.ReadImage(str(out / "preprocess" / manifest.loc[0, "flair"]))
    assert flair.GetPixelID() == sitk.sitkFloat32
    assert run_study(path, out, progress=False).computed() == []
