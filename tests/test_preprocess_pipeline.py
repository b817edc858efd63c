"""The preprocessing pipeline: its file, one case, a cohort through the CLI, the
brain-masked radiomics normalisation, and real scans (skipped without the shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from hybridrad.io.manifest import Cohort
from hybridrad.preprocess.pipeline import (
    SHIPPED_PIPELINES,
    PreprocessConfigError,
    load_pipeline,
    parse_pipeline,
    preprocess_cohort,
    run_pipeline,
)

SHAPE = (40, 40, 24)  # x, y, z
SPACING = (2.0, 2.0, 3.0)


def _head(seed: int, contrast: float = 1.0) -> tuple[sitk.Image, sitk.Image, np.ndarray]:
    """A synthetic head: bright ellipsoid 'brain' (with a tumour) inside a dark CSF gap and
    a bright 'skull' shell. Returns (image, tumour mask, true brain array)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE[::-1]), indexing="ij")
    c = [(n - 1) / 2 for n in SHAPE[::-1]]
    r = np.sqrt(((z - c[0]) / 9) ** 2 + ((y - c[1]) / 15) ** 2 + ((x - c[2]) / 15) ** 2)
    brain = r < 1.0
    skull = (r > 1.15) & (r < 1.3)
    arr = np.where(brain, 100.0 * contrast, 0.0) + np.where(skull, 160.0, 0.0)
    tumour = brain & ((z - c[0]) ** 2 + (y - c[1] - 4) ** 2 + (x - c[2] + 3) ** 2 < 16)
    arr[tumour] = 150.0 * contrast
    arr += rng.normal(0, 4.0, arr.shape)
    img = sitk.GetImageFromArray(np.clip(arr, 0, None).astype(np.float32))
    img.SetSpacing(SPACING)
    mask = sitk.GetImageFromArray(tumour.astype(np.uint8))
    mask.CopyInformation(img)
    return img, mask, brain


def _cohort(root: Path, n: int = 3, broken: str | None = None) -> Path:
    rows = []
    for i in range(n):
        cid = f"p{i}"
        d = root / "images" / cid
        d.mkdir(parents=True)
        row = {"case_id": cid}
        for j, seq in enumerate(("flair", "t1")):
            img, mask, _ = _head(10 * i + j, contrast=1.0 + 0.3 * j)
            sitk.WriteImage(img, str(d / f"{seq}.nii.gz"))
            row[seq] = f"images/{cid}/{seq}.nii.gz"
        sitk.WriteImage(mask, str(d / "mask.nii.gz"))
        row["mask"] = f"images/{cid}/mask.nii.gz"
        if cid == broken:
            (d / "t1.nii.gz").write_bytes(b"not an image at all")
        rows.append(row)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


CONFIG = {
    "reference": ["flair"],
    "reorient": {"orientation": "LPS"},
    "brain_extraction": {"method": "threshold", "sequence": ["flair"]},
    "normalise": {"region": "brain", "clip_percentiles": None},
}


# -- the pipeline file ---------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED_PIPELINES)
def test_shipped_pipelines_load(name: str) -> None:
    cfg, path = load_pipeline(name)
    assert path.name == f"{name}.yaml"
    assert cfg.steps()
    assert cfg.hash == load_pipeline(path)[0].hash  # the same file, the same hash


def test_glioma_mri_preset_is_what_the_issue_asks() -> None:
    cfg, _ = load_pipeline("glioma_mri")
    assert cfg.steps() == [
        "reorient",
        "coregister",
        "bias_correction",
        "brain_extraction",
        "normalise",
    ]
    assert cfg.reference == ["flair", "t1c"]
    assert cfg.normalise is not None and cfg.normalise.region == "brain"


def test_every_problem_is_named_with_its_key_path() -> None:
    with pytest.raises(PreprocessConfigError) as info:
        parse_pipeline(
            {
                "resample": {"spacing": [1, 1, -1]},
                "normalise": {"region": "skull"},
                "bias_corection": {},
            },
            source="p.yaml",
        )
    keys = [k for k, _ in info.value.key_problems]
    assert "resample.spacing" in keys
    assert "normalise.region" in keys
    assert "bias_corection" in keys
    assert str(info.value).startswith("p.yaml: 3 problem(s)")


def test_combinations_that_cannot_work_are_refused() -> None:
    with pytest.raises(PreprocessConfigError, match=r"normalise\.region: 'brain' needs"):
        parse_pipeline({"normalise": {"region": "brain"}})
    with pytest.raises(PreprocessConfigError, match="ct_window: is for CT"):
        parse_pipeline({"ct_window": {"level": 40, "width": 400}})
    with pytest.raises(PreprocessConfigError, match="bias_correction: is for MRI"):
        parse_pipeline({"modality": "ct", "bias_correction": {}})


def test_unknown_preset_names_the_presets() -> None:
    with pytest.raises(FileNotFoundError, match="glioma_mri"):
        load_pipeline("no_such_pipeline")


# -- one case ------------------------------------------------------------------------------


def test_one_case_skull_stripped_and_z_scored_inside_the_brain() -> None:
    flair, mask, brain = _head(1)
    t1, _, _ = _head(2, contrast=1.5)
    out = run_pipeline(parse_pipeline(CONFIG), {"flair": flair, "t1": t1}, mask, case_id="x")
    assert out.brain is not None and out.mask is not None
    found = sitk.GetArrayFromImage(out.brain) > 0
    dice = 2 * np.sum(found & brain) / (found.sum() + brain.sum())
    assert dice > 0.9
    for seq in ("flair", "t1"):
        arr = sitk.GetArrayFromImage(out.images[seq])
        inside = arr[found]
        assert abs(inside.mean()) < 1e-4 and abs(inside.std() - 1) < 1e-3
        assert np.all(arr[~found] == 0)  # skull and background set to 0
        stats = out.log["normalise"][seq]["zscore"]
        assert stats["mean"] == pytest.approx(
            sitk.GetArrayFromImage({"flair": flair, "t1": t1}[seq])[found].mean(), rel=1e-4
        )
    assert np.array_equal(sitk.GetArrayFromImage(out.mask), sitk.GetArrayFromImage(mask))
    assert set(out.log["seconds"]) == {"reorient", "brain_extraction", "normalise"}


def test_the_mask_follows_reorientation_and_cropping() -> None:
    flair, mask, _ = _head(3)
    flipped = sitk.Flip(flair, [True, False, True])
    flipped_mask = sitk.Flip(mask, [True, False, True])
    cfg = parse_pipeline({**CONFIG, "crop": {"to": "brain", "margin_mm": 4}})
    out = run_pipeline(cfg, {"flair": flipped}, flipped_mask)
    assert out.mask is not None
    assert out.images["flair"].GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert out.mask.GetSize() == out.images["flair"].GetSize() < flair.GetSize()
    # every tumour voxel is still where it was in physical space
    m = sitk.GetArrayFromImage(mask)
    for idx in np.argwhere(m > 0)[:20]:
        point = mask.TransformIndexToPhysicalPoint([int(i) for i in idx[::-1]])
        assert out.mask[out.mask.TransformPhysicalPointToIndex(point)] == 1
    assert int(sitk.GetArrayFromImage(out.mask).sum()) == int(m.sum())


def test_crop_to_the_foreground_keeps_the_head_and_drops_the_air() -> None:
    flair, mask, _ = _head(6)
    out = run_pipeline(
        parse_pipeline({"crop": {"to": "foreground", "margin_mm": 0}}), {"flair": flair}, mask
    )
    head = sitk.GetArrayFromImage(flair) > 80  # brain and skull; air and noise below
    box = np.argwhere(head)
    expected = tuple(int(v) for v in (box.max(axis=0) - box.min(axis=0) + 1)[::-1])
    assert out.images["flair"].GetSize() == expected
    assert out.mask is not None and int(sitk.GetArrayFromImage(out.mask).sum()) == int(
        sitk.GetArrayFromImage(mask).sum()
    )


def test_roi_normalisation_keeps_the_brain_and_skull_strips_only_outside_it() -> None:
    flair, mask, _ = _head(7)
    cfg = parse_pipeline({**CONFIG, "normalise": {"region": "roi", "clip_percentiles": None}})
    out = run_pipeline(cfg, {"flair": flair}, mask)
    arr = sitk.GetArrayFromImage(out.images["flair"])
    roi = sitk.GetArrayFromImage(mask) > 0
    assert abs(arr[roi].mean()) < 1e-4 and abs(arr[roi].std() - 1) < 1e-3
    found = sitk.GetArrayFromImage(out.brain) > 0
    assert np.count_nonzero(arr[found & ~roi]) > 0.9 * np.count_nonzero(found & ~roi)
    assert np.all(arr[~found] == 0)


def test_unknown_sequence_names_in_a_step_are_refused(tmp_path: Path) -> None:
    manifest = _cohort(tmp_path / "in", n=1)
    cfg = parse_pipeline({"bias_correction": {"sequences": ["flair", "t1ce"]}})
    with pytest.raises(PreprocessConfigError, match=r"\['t1ce'\].*not in the manifest"):
        preprocess_cohort(Cohort.from_csv(manifest), cfg, tmp_path / "out")


def test_a_case_without_a_mask_is_fine_unless_a_step_needs_the_roi() -> None:
    flair, _, _ = _head(5)
    out = run_pipeline(parse_pipeline(CONFIG), {"flair": flair}, case_id="x")
    assert out.mask is None and out.brain is not None
    roi = parse_pipeline({"normalise": {"region": "roi", "clip_percentiles": None}})
    with pytest.raises(Exception, match=r"case 'x' has no mask.*ROI"):
        run_pipeline(roi, {"flair": flair}, case_id="x")


def test_a_missing_reference_sequence_names_the_case_and_the_fix() -> None:
    flair, _, _ = _head(4)
    cfg = parse_pipeline({"reference": ["t1c"], "reorient": {}})
    with pytest.raises(Exception, match=r"case 'x'.*t1c.*add one, or change `reference`"):
        run_pipeline(cfg, {"flair": flair}, case_id="x")


# -- a cohort --------------------------------------------------------------------------------


def test_cohort_writes_a_manifest_with_brain_masks_and_reruns_from_cache(tmp_path: Path) -> None:
    manifest = _cohort(tmp_path / "in", broken="p1")
    cfg = parse_pipeline(CONFIG)
    out = tmp_path / "out"
    result, written = preprocess_cohort(Cohort.from_csv(manifest), cfg, out, cache_dir=out / ".c")
    # the broken case is recorded, the others complete
    assert list(result.failures["case_id"]) == ["p1"]
    assert "p1" in result.failures["message"].iloc[0] or "t1" in result.failures["message"].iloc[0]
    table = pd.read_csv(written)
    assert list(table["case_id"]) == ["p0", "p2"]
    assert {"flair", "t1", "mask", "brain_mask"} <= set(table.columns)
    cohort = Cohort.from_csv(written)
    assert list(cohort.sequences) == ["flair", "t1"]  # brain_mask is no sequence
    case = next(iter(cohort))
    assert case.brain_mask is not None and case.read_brain_mask().GetSize() == SHAPE
    prov = json.loads((out / "steps.provenance.json").read_text(encoding="utf-8"))
    assert prov["config_hash"] == cfg.hash and prov["steps"] == cfg.steps()
    logs = [
        json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [e["case_id"] for e in logs] == ["p0", "p2"]
    assert logs[0]["brain_extraction"]["method"] == "threshold"
    # a rerun recomputes nothing; a changed config recomputes everything
    again, _ = preprocess_cohort(Cohort.from_csv(manifest), cfg, out, cache_dir=out / ".c")
    assert (again.n_cached, again.n_computed, len(again.failures)) == (2, 0, 1)  # p1 tried again
    other = parse_pipeline({**CONFIG, "normalise": {"region": "image", "clip_percentiles": None}})
    third, _ = preprocess_cohort(Cohort.from_csv(manifest), other, out, cache_dir=out / ".c")
    assert third.n_cached == 0
    # a deleted output makes the hit a miss
    (out / "images" / "p0" / "t1.nii.gz").unlink()
    fourth, _ = preprocess_cohort(Cohort.from_csv(manifest), other, out, cache_dir=out / ".c")
    assert fourth.n_cached == 1 and (out / "images" / "p0" / "t1.nii.gz").is_file()


def test_a_manifest_brain_mask_follows_the_geometric_steps(tmp_path: Path) -> None:
    manifest = _cohort(tmp_path / "in", n=1)
    _, written = preprocess_cohort(
        Cohort.from_csv(manifest), parse_pipeline(CONFIG), tmp_path / "a"
    )
    # the output (with its brain_mask column) through a resampling pipeline: the brain
    # mask is resampled with the images instead of being dropped
    cfg = parse_pipeline({"resample": {"spacing": [4.0, 4.0, 3.0]}})
    _, again = preprocess_cohort(Cohort.from_csv(written), cfg, tmp_path / "b")
    case = next(iter(Cohort.from_csv(again)))
    assert case.brain_mask is not None
    assert case.read_brain_mask().GetSize() == case.read("flair").GetSize() == (20, 20, 24)


def test_validate_checks_the_brain_mask_column(tmp_path: Path) -> None:
    manifest = _cohort(tmp_path / "in", n=2)
    _, written = preprocess_cohort(
        Cohort.from_csv(manifest), parse_pipeline(CONFIG), tmp_path / "o"
    )
    assert Cohort.from_csv(written).validate().ok
    table = pd.read_csv(written)
    other = tmp_path / "small.nii.gz"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8), str(other))
    table.loc[0, "brain_mask"] = str(other)
    table.loc[1, "brain_mask"] = str(tmp_path / "gone.nii.gz")
    table.to_csv(written, index=False)
    report = Cohort.from_csv(written).validate()
    text = " ".join(str(p.error) for p in report.problems)
    assert "case 'p0': brain mask small.nii.gz is not on the grid" in text
    assert "gone.nii.gz" in text


def test_cli_preprocess_and_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybridrad.cli import main

    manifest = _cohort(tmp_path / "in", n=2)
    cfg = tmp_path / "p.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    rc = main(
        [
            "preprocess",
            str(manifest),
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "reorient -> brain_extraction -> normalise" in text
    assert "2 case(s)" in text and "0 failed" in text
    cfg.write_text("normalise: {region: skull}\n", encoding="utf-8")
    rc = main(["preprocess", str(manifest), "--config", str(cfg), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "normalise.region" in err and "Traceback" not in err


# -- radiomics normalised inside the brain -------------------------------------------------


def test_radiomics_normalize_region_brain(tmp_path: Path) -> None:
    pytest.importorskip("radiomics")
    from hybridrad.errors import RadiomicsConfigError
    from hybridrad.features.radiomics import RadiomicsConfig, RadiomicsTask
    from hybridrad.io.labels import load_label_map
    from hybridrad.preprocess.intensity import zscore

    manifest = _cohort(tmp_path / "in", n=1)
    _, written = preprocess_cohort(
        Cohort.from_csv(manifest),
        parse_pipeline({**CONFIG, "normalise": None}),
        tmp_path / "out",
    )
    case = next(iter(Cohort.from_csv(written)))
    params = {
        "setting": {
            "normalize": False,
            "normalizeRegion": "brain",
            "normalizeScale": 100,
            "binWidth": 5,
        },
        "featureClass": {"firstorder": ["Mean", "Variance"]},
    }
    cfg = RadiomicsConfig(params)
    assert cfg.normalize_region == "brain"
    task = RadiomicsTask(cfg, load_label_map("binary"), ("flair",))
    feats = task(case).features
    # the same numbers by hand: z-score inside the brain mask, times 100, in the tumour
    z, _ = zscore(case.read("flair"), case.read_brain_mask())
    inside = sitk.GetArrayFromImage(z)[sitk.GetArrayFromImage(case.read_mask()) > 0] * 100
    mean = next(v for k, v in feats.items() if k.endswith("firstorder__Mean"))
    assert mean == pytest.approx(inside.mean(), rel=1e-4)
    assert "brain_mask" in task.input_hashes(case)
    # pyradiomics' normalize on top would z-score twice
    with pytest.raises(RadiomicsConfigError, match="set normalize: false"):
        RadiomicsConfig({"setting": {"normalize": True, "normalizeRegion": "brain"}})
    with pytest.raises(RadiomicsConfigError, match="normalizeRegion 'skull'"):
        RadiomicsConfig({"setting": {"normalizeRegion": "skull"}})
    # a case without a brain mask is an error naming the case and the fix
    raw = next(iter(Cohort.from_csv(manifest)))
    with pytest.raises(Exception, match=r"case 'p0' has no brain mask.*hybridrad preprocess"):
        task(raw)


def test_shipped_brain_radiomics_config_loads() -> None:
    pytest.importorskip("radiomics")
    from hybridrad.features.radiomics import RadiomicsConfig

    cfg = RadiomicsConfig.load("mri_glioma_brain")
    base = RadiomicsConfig.load("mri_glioma")
    assert cfg.normalize_region == "brain" and base.normalize_region == "image"
    assert cfg.settings["normalize"] is False
    # otherwise the same extraction
    assert cfg.params["imageType"] == base.params["imageType"]
    assert cfg.params["featureClass"] == base.params["featureClass"]


# -- real scans (skipped without ../shared/data) ------------------------------------------


@pytest.mark.data
@pytest.mark.slow
def test_glioma_mri_preset_on_real_lgg_and_four_sequence_brats(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped preset through the CLI on two TCGA-LGG cases (one whose T1 and T1c are
    copies of its FLAIR) and a four-sequence BraTS 2018 case (t1, t1ce, t2, flair)."""
    pytest.importorskip("deepbet")
    from hybridrad.cli import main
    from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
    from hybridrad.io.manifest import write_manifest

    lgg, _ = discover_lgg_tcga(data_dir / "lgg-tcga")
    lgg = lgg[lgg["case_id"].isin(["TCGA_DU_5852", "TCGA_HT_7877"])]
    brats = discover_brats(data_dir / "brats-samples" / "brats2018-fourmodal").head(1)
    assert len(lgg) == 2 and len(brats) == 1
    results = {}
    for name, table in (("lgg", lgg), ("brats", brats)):
        manifest = write_manifest(table, tmp_path / f"{name}.csv")
        out = tmp_path / f"{name}-pre"
        argv = ["preprocess", str(manifest), "--config", "glioma_mri", "--out", str(out)]
        assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().out
        results[name] = (Cohort.from_csv(out / "manifest.csv"), out)
    assert len(next(iter(results["brats"][0])).images) == 4
    for cohort, out in results.values():
        logs = {
            e["case_id"]: e
            for e in map(json.loads, (out / "log.jsonl").read_text(encoding="utf-8").splitlines())
        }
        for case in cohort:
            brain = sitk.GetArrayFromImage(case.read_brain_mask()) > 0
            tumour = sitk.GetArrayFromImage(case.read_mask()) > 0
            assert logs[case.case_id]["brain_extraction"]["method"] == "deepbet"
            # the tumour lies in the brain (deepbet on glioma scans: >= 90 % of it)
            assert tumour[brain].sum() >= 0.9 * tumour.sum(), case.case_id
            for seq in case.images:
                arr = sitk.GetArrayFromImage(case.read(seq))
                inside = arr[brain]
                assert abs(inside.mean()) < 1e-3 and abs(inside.std() - 1) < 1e-3
                assert np.all(arr[~brain] == 0)  # skull and scalp gone
    copies = json.loads(
        (results["lgg"][1] / "log.jsonl").read_text(encoding="utf-8").splitlines()[1]
    )
    assert copies["case_id"] == "TCGA_HT_7877"
    assert set(copies["brain_extraction"]["skipped_copies"]) == {"t1c", "t1", "flair"}
    # BraTS is skull-stripped already: deepbet (on N4-corrected T1c) keeps most of the
    # challenge's non-zero T1 voxels (measured 0.928 on Brats18_2013_2_1)
    case = next(iter(results["brats"][0]))
    from hybridrad.preprocess.geometry import reorient

    raw = sitk.GetArrayFromImage(reorient(sitk.ReadImage(str(brats.iloc[0]["t1"])))) != 0
    brain = sitk.GetArrayFromImage(case.read_brain_mask()) > 0
    assert raw.shape == brain.shape
    assert (raw & brain).sum() >= 0.9 * raw.sum()


@pytest.mark.data
def test_threshold_pipeline_on_a_skull_stripped_brats_case(data_dir: Path, tmp_path: Path) -> None:
    """Fast real-data check without deepbet: a skull-stripped BraTS 2015 case with the
    challenge's own brain mask as the reference."""
    folder = data_dir / "brats-samples" / "brats2015-multiclass"
    case_dir = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    flair = sitk.ReadImage(str(next(case_dir.glob("Flair*.nii.gz"))))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "brainmask.nii.gz"))) > 0
    cfg = parse_pipeline(
        {
            "brain_extraction": {"method": "threshold"},
            "normalise": {"region": "brain", "clip_percentiles": [0.5, 99.5]},
            "crop": {"to": "brain", "margin_mm": 5},
        }
    )
    out = run_pipeline(cfg, {"flair": flair}, case_id=case_dir.name)
    assert out.brain is not None
    # back on the full grid to compare with the challenge's brain mask
    from hybridrad.preprocess.resample import resample_onto

    found = sitk.GetArrayFromImage(resample_onto(out.brain, flair, is_mask=True)) > 0
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    assert dice > 0.9, dice
    assert out.images["flair"].GetSize() < flair.GetSize()
