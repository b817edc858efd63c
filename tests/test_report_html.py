"""The HTML study report (hybridrad.report.html) and its plots.

A small run directory is built once per session with the real stages where they are
cheap (synthetic cohort, mask evaluation, nested-CV evaluation, final models, external
scoring) and synthetic feature tables in the place of the extraction stages. One case
id is ``<script>...</script>`` so that every table and caption is checked for escaping.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import shutil
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from hybridrad.report._rundir import fmt
from hybridrad.report.checklist import CLEAR, TRIPOD_AI, checklist
from hybridrad.report.html import (
    ReportInputError,
    binary_calibration,
    model_importance,
    render_report,
    write_report,
)
from hybridrad.segment.evaluate import METRIC_COLUMNS  # the columns of quality.csv

PACKAGE = Path(__file__).resolve().parents[1] / "hybridrad"
HOSTILE_ID = '<script>alert("x")</script>&co'
PNG = b"\x89PNG\r\n\x1a\n"
ALL_SECTIONS = (
    "cohort",
    "segmentation",
    "comparison",
    "difference",
    "km",
    "roc",
    "calibration",
    "importance",
    "correlation",
    "external",
    "reproducibility",
)


# --- the run directory ------------------------------------------------------------------------


def _rename(frame: pd.DataFrame, column: str | None, old: str, new: str) -> pd.DataFrame:
    if column is None:
        return frame.rename(index={old: new})
    frame[column] = frame[column].replace(old, new)
    return frame


def _feature_tables(truth: pd.DataFrame, ids: list[str], seed: int = 0) -> tuple[Any, Any]:
    """Handcrafted and deep tables: a few columns carry the true risk, the rest is noise;
    three deep columns are monotone transforms of handcrafted ones (|r| = 1)."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    risk = truth["risk_score"].to_numpy(float)
    rad = {}
    for i in range(16):
        cls = ("firstorder", "glcm", "shape", "glrlm")[i % 4]
        signal = risk if i < 4 else 0.0
        rad[f"rad__flair__WT__original__{cls}__f{i:02d}"] = signal + rng.normal(0, 1, n)
    deep = {f"deep__segresnet__enc1__{j:04d}": rng.normal(0, 1, n) for j in range(10)}
    keys = list(rad)
    for j in range(3):
        deep[f"deep__segresnet__enc2__{j:04d}"] = np.exp(rad[keys[j]])
    index = pd.Index(ids, name="case_id")
    return pd.DataFrame(rad, index=index), pd.DataFrame(deep, index=index)


def _quality_rows(
    case_id: str, truth: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...]
) -> list[dict[str, Any]]:
    """The rows ``segment.evaluate.evaluate_masks`` writes (Dice exact; HD95 the slice
    spacing, as one slice of tumour was removed), computed without torch."""
    rows = []
    ml = float(np.prod(spacing)) / 1000
    for region, values in (("WT", (1, 2, 3, 4)), ("TC", (1, 3, 4)), ("ET", (3, 4))):
        t, p = np.isin(truth, values), np.isin(pred, values)
        dice = 2 * (t & p).sum() / (t.sum() + p.sum()) if t.any() or p.any() else np.nan
        rows.append(
            {
                "case_id": case_id,
                "region": region,
                "dice": dice,
                "hd95_mm": float(spacing[2]) if (t != p).any() else 0.0,
                "volume_true_ml": t.sum() * ml,
                "volume_pred_ml": p.sum() * ml,
                "volume_error_ml": (p.sum() - t.sum()) * ml,
                "volume_error_rel": (p.sum() - t.sum()) / t.sum() if t.any() else np.nan,
            }
        )
    return rows


def build_run(root: Path) -> Path:
    """A complete run directory in ``root`` (built once; later calls return it)."""
    from hybridrad.datasets.synthetic import make_synthetic_cohort
    from hybridrad.models.final import fit_final
    from hybridrad.models.pipelines import StudyConfig
    from hybridrad.provenance import file_sha256, library_versions
    from hybridrad.study.evaluate import evaluate_study
    from hybridrad.study.external import score_model
    from hybridrad.study.load import load_study

    done = root / "run.json"
    if done.is_file():
        return root
    if root.exists():
        shutil.rmtree(root)
    cohort_dir = root / "cohort"
    make_synthetic_cohort(cohort_dir, n_cases=24, seed=3, shape=(32, 32, 32), spacing=(6, 6, 6))
    old = "syn_0001"
    for name in ("manifest.csv", "clinical.csv", "truth.csv"):
        table = pd.read_csv(cohort_dir / name, dtype={"case_id": str})
        _rename(table, "case_id", old, HOSTILE_ID).to_csv(cohort_dir / name, index=False)
    manifest = pd.read_csv(cohort_dir / "manifest.csv", dtype={"case_id": str})
    truth = pd.read_csv(cohort_dir / "truth.csv", dtype={"case_id": str}).set_index("case_id")
    ids = list(manifest["case_id"])

    # segmentation: the true masks with their top slice of tumour removed, as predictions
    seg = root / "segmentation"
    (seg / "masks").mkdir(parents=True)
    rows, quality = [], []
    for i, row in manifest.iterrows():
        img = sitk.ReadImage(str(cohort_dir / row["mask"]))
        true = sitk.GetArrayFromImage(img)
        arr = true.copy()
        z = np.flatnonzero(arr.reshape(arr.shape[0], -1).any(axis=1))
        if z.size:
            arr[z[-1]] = 0
        quality += _quality_rows(row["case_id"], true, arr, img.GetSpacing())
        pred = sitk.GetImageFromArray(arr)
        pred.CopyInformation(img)
        name = f"masks/case{i:03d}.nii.gz"
        sitk.WriteImage(pred, str(seg / name))
        images = {c: str((cohort_dir / row[c]).resolve()) for c in ("t1", "t1c", "t2", "flair")}
        rows.append({"case_id": row["case_id"], **images, "mask": name})
    pd.DataFrame(rows).to_csv(seg / "manifest.csv", index=False)
    pd.DataFrame(quality, columns=METRIC_COLUMNS).to_csv(seg / "quality.csv", index=False)

    # features
    rad, deep = _feature_tables(truth.loc[ids], ids)
    for stage, table in (("handcrafted", rad), ("deep", deep)):
        (root / stage).mkdir()
        table.to_parquet(root / stage / "features.parquet")
        pd.DataFrame(columns=["case_id", "error"]).to_csv(
            root / stage / "features.failures.csv", index=False
        )
        (root / stage / "stage.json").write_text(
            json.dumps(
                {
                    "stage": stage,
                    "key": f"{abs(hash(stage)) % 16**16:016x}",
                    "inputs": {"manifest": file_sha256(seg / "manifest.csv")},
                }
            )
        )
    shutil.copy(
        PACKAGE / "configs" / "radiomics" / "mri_glioma_fast.yaml",
        root / "handcrafted" / "radiomics.yaml",
    )

    # evaluation, final models, external scoring
    cfg = StudyConfig(
        feature_sets={"clinical": ("clin",), "hybrid": ("rad", "deep", "clin")},
        covariates=("age",),
        outer_splits=2,
        outer_repeats=1,
        inner_splits=2,
        n_boot=20,
        n_permutations=0,
        screen_k=(3,),
        prescreen_k=10,
        seed=0,
    )
    feats = [root / "handcrafted" / "features.parquet", root / "deep" / "features.parquet"]
    clinical = cohort_dir / "clinical.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target, kw in (
            ("survival", {"time": "os_months", "event": "death"}),
            ("idh", {"label": "idh", "positive": "Mutant"}),
        ):
            data = load_study(feats, clinical, covariates=cfg.covariates, **kw)
            evaluate_study(data, cfg, root / "evaluation" / target)
            fit_final(data, cfg, "hybrid", root / "evaluation" / target / "final")
            if target == "survival":
                score_model(
                    root / "evaluation" / target / "final",
                    data,
                    root / "external" / target,
                    n_boot=20,
                )
    study = {
        "name": "report test",
        "seed": 0,
        "cohort": {"synthetic": {"n_cases": 24, "seed": 3}, "label_map": "brats"},
        "segmentation": {"model": "synthetic-brats"},
        "features": {"handcrafted": {"config": "mri_glioma_fast"}, "deep": {"encoder": None}},
        "targets": {
            "survival": {"time": "os_months", "event": "death"},
            "labels": {"idh": {"column": "idh", "positive": "Mutant"}},
        },
        "model": cfg.to_dict(),
        "final_model": "hybrid",
        "report": {"title": "Report <test> & co"},
    }
    import yaml

    (root / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    run = {
        "study": "report test",
        "study_hash": "a1b2c3d4e5f60718",
        "hybridrad_version": library_versions().get("hybridrad"),
        "versions": library_versions(),
        "stages": {
            s: {"status": "computed", "key": f"{i:016x}", "seconds": float(i)}
            for i, s in enumerate(("cohort", "segmentation", "handcrafted", "deep", "evaluation"))
        },
        "started": "2026-11-22T10:00:00",
        "finished": "2026-11-22T10:01:00",
    }
    done.write_text(json.dumps(run, indent=2))
    return root


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.getbasetemp() / "report_run")


@pytest.fixture(scope="session")
def report(run_dir: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = write_report(run_dir)
    assert path == run_dir / "report" / "report.html"
    return path.read_text(encoding="utf-8")


class _Page(HTMLParser):
    """The tags and attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _section_ids(text: str) -> set[str]:
    ids = {str(a["id"]) for t, a in _parse(text).tags if t == "section" and a.get("id")}
    return ids


# --- the report of a full run ----------------------------------------------------------------


def test_every_section_present(report: str) -> None:
    assert _section_ids(report) == set(ALL_SECTIONS)
    nav = [a["href"] for t, a in _parse(report).tags if t == "a"]
    assert nav == [f"#{s}" for s in ALL_SECTIONS]
    # each section says what it shows
    for sid in ALL_SECTIONS:
        start = report.index(f'<section id="{sid}">')
        assert "<p>" in report[start : start + 600], sid


def test_every_image_is_an_embedded_png(report: str) -> None:
    from PIL import Image

    imgs = [a for t, a in _parse(report).tags if t == "img"]
    assert len(imgs) >= 15
    for attrs in imgs:
        src = str(attrs["src"])
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        assert attrs.get("alt")


def test_self_contained_no_script_no_external_url(report: str) -> None:
    page = _parse(report)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in ("src", "href", "srcset", "action", "data"):
                assert value is not None and (value.startswith("#") or value.startswith("data:"))
            assert not name.startswith("on"), (tag, name)
    lowered = report.lower()
    for needle in ("http://", "https://", "url(", "@import", 'src="//'):
        assert needle not in lowered, needle


def test_text_from_the_run_is_escaped(report: str) -> None:
    assert "<script" not in report.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;co" in report
    # the hostile id reached the tables (KM risk groups use it only through the curves;
    # the segmentation per-case table lists it)
    start = report.index('<section id="segmentation">')
    assert "&lt;script&gt;" in report[start : report.index('<section id="comparison">')]
    assert "Report &lt;test&gt; &amp; co" in report  # the title from study.yaml


def test_report_numbers_come_from_the_run(report: str, run_dir: Path) -> None:
    clinical = pd.read_csv(run_dir / "cohort" / "clinical.csv")
    n_events = int(clinical["death"].sum())
    assert f"{n_events} of {len(clinical)}" in report
    comparison = pd.read_csv(run_dir / "evaluation" / "survival" / "comparison.csv")
    hybrid = comparison.set_index("feature_set").loc["hybrid"]
    assert f"\u0394C = {hybrid['delta']:+.3f}" in report  # the paired hybrid - clinical line
    quality = pd.read_csv(run_dir / "segmentation" / "quality.csv")
    wt = quality[quality["region"] == "WT"]["dice"].mean()
    assert fmt(wt) in report
    # the study file verbatim, escaped
    assert "os_months" in report and "mri_glioma_fast" in report


def test_checklist_fills_what_the_run_knows(run_dir: Path) -> None:
    table = checklist(run_dir)
    assert list(table.columns) == ["checklist", "item", "topic", "value", "filled"]
    assert (table["checklist"] == "CLEAR").sum() == len(CLEAR) == 58
    assert [i for i, _, _ in TRIPOD_AI][:3] == ["1", "2", "3a"] and TRIPOD_AI[-1][0] == "27c"
    assert (table["checklist"] == "TRIPOD+AI").sum() == len(TRIPOD_AI)
    item = table.set_index(["checklist", "item"])
    assert "24 cases analysed" in item.loc[("TRIPOD+AI", "10"), "value"]
    assert "'os_months'" in item.loc[("TRIPOD+AI", "8a"), "value"]
    assert "nested cross-validation" in item.loc[("TRIPOD+AI", "12a"), "value"]
    assert "95 % CI" in item.loc[("TRIPOD+AI", "23a"), "value"]
    assert "fixed bin width 5" in item.loc[("CLEAR", "23"), "value"]
    assert "pyradiomics" in item.loc[("CLEAR", "25"), "value"] or "hybridrad" in str(
        item.loc[("CLEAR", "25"), "value"]
    )
    assert item.loc[("CLEAR", "35"), "value"].endswith("seed 0")
    assert "stratified by class" in item.loc[("TRIPOD+AI", "13"), "value"]
    assert "median follow-up" in item.loc[("TRIPOD+AI", "20a"), "value"]
    assert "each outer fold trains on 12" in item.loc[("TRIPOD+AI", "21"), "value"]
    unfilled = table[~table["filled"]]
    assert len(unfilled) > 20 and (unfilled["value"] == "to be completed by the authors").all()
    assert not item.loc[("TRIPOD+AI", "17"), "filled"]  # ethics is the authors' to write


# --- sections present only when their inputs exist ------------------------------------------


def _copy(run_dir: Path, dest: Path, parts: list[str]) -> Path:
    dest.mkdir()
    for part in parts:
        src = run_dir / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copy(src, dest / part)
    return dest


def test_sections_follow_the_inputs(run_dir: Path, tmp_path: Path) -> None:
    partial = _copy(
        run_dir, tmp_path / "partial", ["cohort", "handcrafted", "evaluation", "study.yaml"]
    )
    shutil.rmtree(partial / "evaluation" / "idh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = render_report(partial)
    assert _section_ids(text) == {
        "cohort",
        "comparison",
        "difference",
        "km",
        "calibration",
        "importance",
        "reproducibility",
    }
    # no deep table: no correlation; the survival calibration still needs it (hybrid uses
    # deep features only if chosen) -- whatever it could not compute is said, not hidden
    cohort_only = _copy(run_dir, tmp_path / "cohort_only", ["cohort"])
    assert _section_ids(render_report(cohort_only)) == {"cohort"}
    empty = tmp_path / "empty"
    empty.mkdir()
    text = render_report(empty)
    assert _section_ids(text) == set() and "Nothing to report" in text


def test_missing_run_dir_and_malformed_files(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="hybridrad run"):
        write_report(tmp_path / "nowhere")
    broken = _copy(run_dir, tmp_path / "broken", ["cohort"])
    (broken / "run.json").write_text("{not json")
    with pytest.raises(ReportInputError, match=r"run\.json"):
        render_report(broken)
    (broken / "run.json").unlink()
    (broken / "segmentation").mkdir()
    pd.DataFrame({"case_id": ["a"], "dice": [1.0]}).to_csv(
        broken / "segmentation" / "quality.csv", index=False
    )
    with pytest.raises(ReportInputError, match=r"quality.csv.*\['region', 'hd95_mm'\]"):
        render_report(broken)


def test_what_cannot_be_computed_is_said(run_dir: Path, tmp_path: Path) -> None:
    import yaml

    from hybridrad.report.html import ReportWarning

    odd = _copy(run_dir, tmp_path / "odd", ["cohort", "evaluation", "run.json"])
    shutil.rmtree(odd / "evaluation" / "idh")
    study = yaml.safe_load((run_dir / "study.yaml").read_text())
    study["targets"]["survival"]["time"] = "no_such_column"
    (odd / "study.yaml").write_text(yaml.safe_dump(study))
    with pytest.warns(ReportWarning, match="survival columns"):
        text = render_report(odd)
    assert "km" in _section_ids(text) and "problems" in _section_ids(text)
    start = text.index('<section id="km">')
    assert "Not shown: the survival columns are not known" in text[start:]


def test_write_report_to_a_chosen_path(run_dir: Path, tmp_path: Path) -> None:
    cohort_only = _copy(run_dir, tmp_path / "c", ["cohort", "study.yaml", "run.json"])
    out = write_report(cohort_only, tmp_path / "x" / "r.html")
    assert out == tmp_path / "x" / "r.html" and out.read_text(encoding="utf-8").startswith(
        "<!DOCTYPE html>"
    )
    assert not (cohort_only / "report").exists()


# --- the pieces, as notebook users call them ----------------------------------------------


def test_model_importance_reads_the_final_model(run_dir: Path) -> None:
    from hybridrad.models.persist import load_model

    folder = run_dir / "evaluation" / "survival" / "final"
    values, kind = model_importance(folder)
    coef = load_model(folder).steps[-1][1].coef_
    pd.testing.assert_series_equal(
        values.sort_index(), coef.astype(float).sort_index(), check_names=False
    )
    assert "Cox coefficient" in kind and "per SD" in kind
    values, kind = model_importance(run_dir / "evaluation" / "idh" / "final")
    assert "logistic" in kind and len(values) > 0


def test_binary_calibration_is_the_observed_fraction() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200)
    y = (rng.uniform(0, 1, 200) < p).astype(int)
    table, slope, intercept = binary_calibration(y, p, n_groups=4)
    groups = pd.qcut(1 - p, 4, labels=False)
    expected = pd.DataFrame({"p": p, "y": y, "g": groups}).groupby("g").mean().iloc[::-1]
    np.testing.assert_allclose(table["predicted"], expected["p"], atol=1e-12)
    np.testing.assert_allclose(table["observed"], expected["y"], atol=1e-12)
    assert (table["observed_lower"] <= table["observed"]).all()
    assert (table["observed"] <= table["observed_upper"]).all()
    fit = np.polyfit(table["predicted"], table["observed"], 1, w=np.sqrt(table["n"]))
    assert slope == pytest.approx(fit[0]) and intercept == pytest.approx(fit[1])


def test_feature_correlation_is_spearman() -> None:
    from scipy.stats import spearmanr

    from hybridrad.report.correlation import feature_correlation, strength

    rng = np.random.default_rng(1)
    a = pd.DataFrame(
        rng.normal(size=(30, 5)), columns=[f"rad__s__WT__o__c{i % 2}__f{i}" for i in range(5)]
    )
    b = pd.DataFrame(rng.normal(size=(30, 4)), columns=[f"deep__e__s__{j}" for j in range(4)])
    b["deep__e__s__3"] = np.exp(a.iloc[:, 0])  # monotone: r = 1
    a["constant"] = 1.0
    result = feature_correlation(a, b)
    expected = spearmanr(a.iloc[:, :5], b).statistic[:5, 5:]
    np.testing.assert_allclose(result.matrix.to_numpy(), expected, atol=1e-12)
    assert result.dropped == ["constant"] and result.n_cases == 30
    assert result.max_abs.iloc[0] == pytest.approx(1.0)
    assert result.partner.iloc[0] == "deep__e__s__3"
    assert result.null_max_abs.iloc[0] < 0.9
    assert result.top(2).shape == (2, 2)
    assert set(result.by_group().index) == {"c0", "c1"}
    assert [strength(r) for r in (0.1, 0.3, 0.5, 0.7, 0.9)] == [
        "very weakly",
        "weakly",
        "moderately",
        "strongly",
        "very strongly",
    ]
    with pytest.raises(ValueError, match="share 0 case"):
        feature_correlation(a, b.set_index(pd.Index([f"x{i}" for i in range(30)])))


def test_plots_return_figures_or_write_pngs(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from hybridrad.report import plots

    table = pd.DataFrame(
        {
            "auc": [0.6, 0.7],
            "ci_low": [0.5, 0.6],
            "ci_high": [0.7, 0.8],
            "delta": [np.nan, 0.1],
            "delta_ci_low": [np.nan, -0.05],
            "delta_ci_high": [np.nan, 0.25],
            "delta_p": [np.nan, 0.2],
        },
        index=pd.Index(["clinical", "hybrid"], name="feature_set"),
    )
    nb = pd.DataFrame(
        {
            "threshold": [0.1, 0.2],
            "net_benefit": [0.2, 0.1],
            "treat_all": [0.15, 0.05],
            "treat_none": 0.0,
        }
    )
    calls = {
        "comparison": lambda p: plots.comparison_plot(table, "auc", p),
        "difference": lambda p: plots.difference_plot(table, p),
        "decision": lambda p: plots.decision_curve_plot({"m": nb}, p),
        "importance": lambda p: plots.importance_plot(
            pd.Series({"a": 0.5, "b": -0.2, "c": 0.0}), p
        ),
        "heatmap": lambda p: plots.correlation_heatmap(
            pd.DataFrame([[0.1, -0.9]], columns=["x", "y"]), p
        ),
        "dice": lambda p: plots.dice_plot(
            pd.DataFrame({"region": ["WT", "WT", "TC"], "dice": [0.9, 0.8, np.nan]}), p
        ),
        "roc": lambda p: plots.roc_plot(
            {"m": pd.DataFrame({"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]})}, p
        ),
        "calibration": lambda p: plots.calibration_plot(
            pd.DataFrame({"predicted": [0.2, 0.8], "observed": [0.3, 0.7], "n": [5, 5]}), p
        ),
    }
    for name, call in calls.items():
        assert isinstance(call(None), Figure), name
        out = call(tmp_path / f"{name}.png")
        assert out == tmp_path / f"{name}.png" and out.read_bytes()[:8] == PNG, name


def test_overlay_figure_is_labelled_radiologically() -> None:
    from hybridrad.report.overlay import overlay_figure, radiological_arrays

    # truth anterior-left in LPS (low row, high column); stored in RAS order
    arr = np.zeros((3, 20, 20), np.uint8)
    arr[1, 2:6, 14:18] = 1
    ras = sitk.GetImageFromArray(arr[:, ::-1, ::-1].copy())
    ras.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    image = sitk.Cast(ras, sitk.sitkFloat32)
    img, (mask,), spacing = radiological_arrays(image, ras)
    np.testing.assert_array_equal(mask, arr.astype(bool))
    assert spacing == (1.0, 1.0)
    fig = overlay_figure(img, mask, None, "x", spacing=spacing)
    ax = fig.axes[0]
    texts = {t.get_text(): t.get_position() for t in ax.texts}
    assert texts["A"][1] > 0.9 and texts["P"][1] < 0.1
    assert texts["R"][0] < 0.1 and texts["L"][0] > 0.9  # patient's right on the viewer's left
    assert "radiological" in fig._suptitle.get_text()  # type: ignore[union-attr]


def test_report_never_imports_study_segment_or_cli() -> None:
    banned = ("hybridrad.study", "hybridrad.segment", "hybridrad.cli", "hybridrad.features")
    for path in sorted((PACKAGE / "report").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"
