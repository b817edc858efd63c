"""Tests of the segmentation fixes: content-addressed cache, case-id path safety, the
``--labels`` default and label checks, postprocessing flags, overlay montages,
seg-eval's output, and numeric runner diagnostics.

The model is a stand-in network (logits = the normalised first channel: bright voxels
are tumour), so every mask is known exactly and each test runs in about a second.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from hybridrad.cli import main  # noqa: E402
from hybridrad.cli.segment import add_parsers  # noqa: E402
from hybridrad.errors import MaskLabelError  # noqa: E402
from hybridrad.io.labels import LabelMap  # noqa: E402
from hybridrad.io.manifest import Cohort, safe_filename  # noqa: E402
from hybridrad.runner import parquet_safe  # noqa: E402
from hybridrad.segment import SegConfig, SegmentationInputError  # noqa: E402
from hybridrad.segment.config import PostprocessConfig  # noqa: E402
from hybridrad.segment.evaluate import (  # noqa: E402
    EmptyRegionWarning,
    check_training_labels,
    evaluate_masks,
    hd95_mm,
    overlay_slices,
    region_metrics,
    write_overlay,
)
from hybridrad.segment.infer import segment_cohort  # noqa: E402
from hybridrad.segment.model import FORMAT, SegModel  # noqa: E402

BINARY = LabelMap.preset("binary")
SIZE = (24, 20, 10)  # x, y, z
BIG = (slice(3, 7), slice(4, 10), slice(4, 12))  # z, y, x: 4 * 6 * 8 = 192 voxels
SMALL = (slice(6, 8), slice(14, 16), slice(18, 20))  # 8 voxels, apart from BIG


class _Threshold(torch.nn.Module):
    """Logits = 10 x the normalised first channel: predicts the bright voxels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * x[:, :1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    return parser


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A binary one-sequence (flair) model directory whose network is :class:`_Threshold`;
    its postprocessing keeps the largest component."""
    folder = tmp_path / "model"
    folder.mkdir()
    cfg = SegConfig(
        sequences=["flair"],
        roi_size=[16, 16, 16],
        postprocess=PostprocessConfig(keep_largest=True, min_size=0, fill_holes=False),
    )
    meta = {
        "format": FORMAT,
        "network": {"name": cfg.network, "kwargs": cfg.network_kwargs},
        "in_channels": 1,
        "out_channels": 1,
        "sequences": ["flair"],
        "spacing": None,
        "label_map": BINARY.to_dict(),
        "config": cfg.to_dict(),
    }
    (folder / "model.json").write_text(json.dumps(meta))
    (folder / "model.pt").write_bytes(b"stand-in weights")  # hashed into the plan

    def load(path: object = None) -> SegModel:
        return SegModel(_Threshold(), meta, folder)

    monkeypatch.setattr("hybridrad.segment.infer.load_model", load)
    monkeypatch.setattr("hybridrad.segment.model.load_model", load)
    return folder


def _volume(small: bool = True, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = np.full(SIZE[::-1], 5.0, np.float32) + rng.uniform(0, 0.5, SIZE[::-1]).astype(np.float32)
    arr[BIG] = 100.0
    if small:
        arr[SMALL] = 100.0
    return arr


def _write(arr: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    return path


def _cohort(root: Path, ids: list[str], labels: str = "binary") -> Cohort:
    """Cases ``ids`` (flair + a mask of the large blob) and their manifest under ``root``."""
    rows = []
    for i, cid in enumerate(ids):
        flair = _write(_volume(seed=i), root / "in" / f"c{i}" / "flair.nii.gz")
        truth = np.zeros(SIZE[::-1], np.uint8)
        truth[BIG] = 1
        mask = _write(truth, root / "in" / f"c{i}" / "mask.nii.gz")
        rows.append({"case_id": cid, "flair": str(flair), "mask": str(mask)})
    pd.DataFrame(rows).to_csv(root / "in" / "manifest.csv", index=False)
    return Cohort.from_csv(root / "in" / "manifest.csv", label_map=labels)


# --- 1. cache key: inputs only; a hit needs its mask --------------------------------


def test_rerun_is_served_from_cache_and_a_kill_resumes(tmp_path: Path, model_dir: Path) -> None:
    cohort = _cohort(tmp_path, ["a", "b", "c"])
    out, cache = tmp_path / "out", tmp_path / "cache"

    def run(c: Cohort = cohort) -> tuple[int, int]:
        result, _ = segment_cohort(c, out, model_dir=model_dir, device="cpu", cache_dir=cache)
        assert result.ok, result.failures
        return result.n_cached, result.n_computed

    # a run killed after case "a": only "a" finished (and was cached)
    assert run(cohort.subset(["a"])) == (0, 1)
    assert run() == (1, 2)
    assert run() == (3, 0)  # the first rerun recomputes nothing
    saved = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}
    assert sorted(saved) == ["a.nii.gz", "b.nii.gz", "c.nii.gz"]

    (out / "masks" / "b.nii.gz").unlink()  # output deleted: that case only
    assert run() == (2, 1)
    assert (out / "masks" / "b.nii.gz").read_bytes() == saved["b.nii.gz"]

    (out / "masks" / "c.nii.gz").write_bytes(saved["a.nii.gz"][:100])  # damaged/overwritten
    assert run() == (2, 1)
    assert (out / "masks" / "c.nii.gz").read_bytes() == saved["c.nii.gz"]

    entries = sorted(cache.rglob("*.json"))
    assert len(entries) == 3
    entries[0].unlink()  # one cache entry lost
    assert run() == (2, 1)

    # 7. diagnostics read back numeric
    diag = pd.read_parquet(out / "volumes.diagnostics.parquet")
    assert diag["runner__seconds"].dtype == np.float64
    assert diag["runner__peak_rss_mb"].dtype == np.float64
    assert diag["mask_path"].map(lambda v: isinstance(v, str)).all()


def test_parquet_safe_keeps_numbers_numeric() -> None:
    table = pd.DataFrame(
        {
            "seconds": pd.Series([0.5, 2], dtype=object),
            "n": [1, 2],
            "path": ["x", None],
            "mixed": [{"k": 1}, 3.0],
            "flag": [True, False],
        }
    )
    safe = parquet_safe(table)
    assert safe["seconds"].dtype == np.float64 and safe["n"].dtype == np.int64
    assert safe["flag"].dtype == bool
    assert safe["path"].tolist() == ["x", None]
    assert safe["mixed"].tolist() == ["{'k': 1}", "3.0"]


# --- 2. case ids never escape the output folder ---------------------------------------

HOSTILE = ["../../x", "/abs/path", "a/b", "a_b", "..", ".", "CON", "nul.txt", "two words", "tümör"]


def test_safe_filename() -> None:
    names = [safe_filename(c) for c in HOSTILE]
    assert len(set(names)) == len(HOSTILE)  # "a/b" and "a_b" do not collide
    assert safe_filename("a_b") == "a_b" and safe_filename("BraTS-2021_00001.v2") == (
        "BraTS-2021_00001.v2"
    )
    for cid, name in zip(HOSTILE, names, strict=True):
        assert name and not name.startswith(".") and not name.endswith(".")
        assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name), name
        assert name.split(".")[0].lower() not in {"con", "nul"}
        assert safe_filename(cid) == name  # stable
    assert len(safe_filename("x" * 500)) <= 109


def test_hostile_case_ids_stay_inside_out(tmp_path: Path, model_dir: Path) -> None:
    cohort = _cohort(tmp_path, HOSTILE)
    out = tmp_path / "work" / "out"
    result, manifest = segment_cohort(cohort, out, model_dir=model_dir, device="cpu")
    assert result.ok, result.failures
    masks = sorted((out / "masks").iterdir())
    assert len(masks) == len(HOSTILE)
    table = evaluate_masks(cohort, out, overlay_dir=out / "overlays")
    assert len(sorted((out / "overlays").iterdir())) == len(HOSTILE)
    assert table.groupby("case_id")["dice"].first().loc[HOSTILE].gt(0.99).all()
    # without the manifest, the masks are found under their safe names
    manifest.unlink()
    assert len(evaluate_masks(cohort, out)) == len(HOSTILE)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.parts[-2] not in ("model",)]
    written = [p for p in written if not p.is_relative_to(tmp_path / "in")]
    outside = [p for p in written if not p.resolve().is_relative_to(out.resolve())]
    assert not outside and not Path("/abs/path.nii.gz").exists()


# --- 3. --labels: one default, and checks -------------------------------------------


@pytest.mark.parametrize("command", ["seg-train", "segment", "seg-eval"])
def test_labels_default_is_binary_and_stated(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    required = {"seg-train": ["--out", "m"], "segment": ["--out", "o"], "seg-eval": ["--pred", "p"]}
    args = _parser().parse_args([command, "m.csv", *required[command]])
    assert args.labels == "binary"
    with pytest.raises(SystemExit):
        _parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: binary" in text
    if command == "segment":
        assert "the predicted masks use the model's label map" in text


def test_seg_train_rejects_region_absent_from_every_mask(tmp_path: Path) -> None:
    cohort = _cohort(tmp_path, ["a", "b"], labels="brats")  # 0/1 masks, BraTS map
    with pytest.raises(SegmentationInputError) as err:
        check_training_labels(cohort)
    msg = str(err.value)
    assert "'ET'" in msg and "'TC'" not in msg and "values found: [0, 1]" in msg
    assert "--labels binary" in msg
    assert check_training_labels(cohort.subset(["a"]), every_region=False) == {"a": [0, 1]}
    argv = ["seg-train", str(tmp_path / "in" / "manifest.csv"), "--labels", "brats"]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 2  # before any training


#: A label map naming only 1 (the masks of :func:`_cohort`): 2 and 4 are not its values.
TUMOUR_ONLY_YAML = "name: tumour_only\nlabels: {1: tumor}\nregions: {tumor: [1]}\n"


def test_seg_train_rejects_values_outside_label_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cohort = _cohort(tmp_path, ["a", "b"])
    brats = np.zeros(SIZE[::-1], np.uint8)
    brats[BIG] = 2
    brats[4, 5:7, 5:7] = 4
    _write(brats, cohort["b"].mask)  # type: ignore[arg-type]
    # binary reads every non-zero voxel as tumour: a BraTS mask trains as its whole tumour
    assert check_training_labels(cohort) == {"a": [0, 1], "b": [0, 2, 4]}
    assert check_training_labels(cohort.subset(["b"])) == {"b": [0, 2, 4]}  # no 1: not empty
    labels = tmp_path / "tumour_only.yaml"
    labels.write_text(TUMOUR_ONLY_YAML)
    manifest = tmp_path / "in" / "manifest.csv"
    strict = Cohort.from_csv(manifest, label_map=labels)
    with pytest.raises(
        MaskLabelError,
        match=r"case 'b'.*value\(s\) 2 \(188 voxels\), 4 \(4 voxels\) that label map "
        r"'tumour_only' does not define.*--labels brats fits",
    ):
        check_training_labels(strict)
    assert check_training_labels(strict.subset(["a"])) == {"a": [0, 1]}
    # the command line: one line on stderr, exit 2, before any training
    capsys.readouterr()
    argv = ["seg-train", str(manifest), "--labels", str(labels), "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MaskLabelError: ") and "case 'b'" in err
    assert "value(s) 2 (188 voxels), 4 (4 voxels)" in err and "--labels brats" in err
    assert not (tmp_path / "m" / "model.json").exists()


def _brats_eval_case(tmp_path: Path, n: int = 2) -> Path:
    """``n`` cases with BraTS masks lacking ET (values 1, 2) and exact predictions."""
    rows = []
    for i in range(n):
        truth = np.zeros(SIZE[::-1], np.uint8)
        truth[BIG] = 2
        truth[4, 5:8, 5:8] = 1
        flair = _write(_volume(seed=i), tmp_path / f"c{i}" / "flair.nii.gz")
        mask = _write(truth, tmp_path / f"c{i}" / "mask.nii.gz")
        _write(truth, tmp_path / "pred" / "masks" / f"case{i}.nii.gz")
        rows.append({"case_id": f"case{i}", "flair": str(flair), "mask": str(mask)})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv"


def test_seg_eval_empty_region_is_nan_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _brats_eval_case(tmp_path)
    argv = ["seg-eval", str(manifest), "--labels", "brats", "--pred", str(tmp_path / "pred")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    table = pd.read_csv(tmp_path / "pred" / "evaluation.csv")
    et = table[table["region"] == "ET"]
    assert et["dice"].isna().all() and et["hd95_mm"].isna().all()
    assert table[table["region"] == "WT"]["dice"].eq(1.0).all()
    # 6. no MONAI FutureWarning; one warning naming the region and the count
    assert "FutureWarning" not in captured.err
    assert captured.err.count("EmptyRegionWarning") == 1
    assert "ET in 2 of 2 case(s)" in captured.err
    # the summary prints unwrapped, within 100 columns
    lines = captured.out.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if "dice_mean" in line)
    assert "vol_err_rel" in header
    et_row = next(line for line in lines if line.startswith("ET "))
    assert "NaN" in et_row and "1.000" not in et_row

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = Cohort.from_csv(manifest, label_map="brats")
        evaluate_masks(cohort, tmp_path / "pred")
    assert [w.category for w in caught] == [EmptyRegionWarning]


def test_seg_eval_wrong_label_map_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _brats_eval_case(tmp_path, n=1)
    pred = tmp_path / "pred"
    # the default, binary, scores the whole tumour of the 0/1/2 masks
    assert main(["seg-eval", str(manifest), "--pred", str(pred)]) == 0
    table = pd.read_csv(pred / "evaluation.csv")
    assert table["region"].tolist() == ["tumor"] and table["dice"].eq(1.0).all()
    assert table["volume_true_ml"].iloc[0] == pytest.approx(192 * 1e-3)  # 1s and 2s alike
    # a map that does not name 2: an error naming the case, the file and the fix
    labels = tmp_path / "tumour_only.yaml"
    labels.write_text(TUMOUR_ONLY_YAML)
    capsys.readouterr()
    assert main(["seg-eval", str(manifest), "--labels", str(labels), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MaskLabelError: case 'case0': true mask ")
    assert "mask.nii.gz holds value(s) 2 (" in err and "--labels brats" in err
    # a predicted mask holding a value the map does not define is named as such
    bad = np.zeros(SIZE[::-1], np.uint8)
    bad[BIG] = 7
    _write(bad, pred / "masks" / "case0.nii.gz")
    with pytest.raises(MaskLabelError, match=r"case 'case0': predicted mask .*value\(s\) 7"):
        evaluate_masks(Cohort.from_csv(manifest, label_map="brats"), pred)


def test_seg_eval_empty_prediction_and_ignored_values(tmp_path: Path) -> None:
    """An empty predicted (or true) mask is no ConstantImageWarning: empty regions have
    their own warning; ``ignore`` values read as background in both masks."""
    manifest = _brats_eval_case(tmp_path, n=2)
    empty = np.zeros(SIZE[::-1], np.uint8)
    _write(empty, tmp_path / "c1" / "mask.nii.gz")
    _write(empty, tmp_path / "pred" / "masks" / "case1.nii.gz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = evaluate_masks(Cohort.from_csv(manifest), tmp_path / "pred")
    assert [w.category for w in caught] == [EmptyRegionWarning]
    assert "tumor in 1 of 2 case(s)" in str(caught[0].message)
    assert table["dice"].iloc[0] == 1.0 and math.isnan(table["dice"].iloc[1])
    # oedema (2) ignored: the tumour is the 9 voxels of 1; one warning per mask holding 2
    ignoring = LabelMap("core", {1: "core"}, {"core": (1,)}, ignore=(2,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = evaluate_masks(
            Cohort.from_csv(manifest).subset(["case0"]), tmp_path / "pred", label_map=ignoring
        )
    assert [w.category.__name__ for w in caught] == ["LabelValueWarning"] * 2
    assert "case 'case0': predicted mask" in str(caught[1].message)
    assert table["volume_true_ml"].iloc[0] == pytest.approx(9e-3)
    assert table["dice"].iloc[0] == 1.0


def test_region_metrics_empty_and_hd95_without_future_warning() -> None:
    empty = np.zeros((4, 10, 10), bool)
    m = region_metrics(empty, empty, (1.0, 1.0, 1.0))
    assert math.isnan(m["dice"]) and math.isnan(m["hd95_mm"]) and m["volume_true_ml"] == 0
    rng = np.random.default_rng(3)
    t = np.zeros((12, 30, 30), bool)
    t[3:9, 5:20, 4:18] = True
    p = t ^ (rng.random(t.shape) < 0.05)
    spacing = (2.5, 0.9, 1.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning (nor any other)
        ours = region_metrics(t, p, spacing)["hd95_mm"]
    # reference: MONAI's metric class (deprecated argument inside; warning silenced here)
    from monai.metrics import HausdorffDistanceMetric

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        y = torch.as_tensor(t, dtype=torch.float32)[None, None]
        yp = torch.as_tensor(p, dtype=torch.float32)[None, None]
        ref = HausdorffDistanceMetric(include_background=True, percentile=95)(
            y_pred=yp, y=y, spacing=list(spacing)
        )
    assert isinstance(ref, torch.Tensor)
    assert ours == pytest.approx(float(ref[0, 0]), rel=1e-5)
    assert hd95_mm(t, t, spacing) == 0.0


# --- 4. postprocessing flags ----------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "voxels"),
    [
        ([], 192),  # the model's keep_largest
        (["--no-keep-largest"], 200),
        (["--no-keep-largest", "--min-size", "10"], 192),
    ],
)
def test_segment_postprocessing_flags(
    tmp_path: Path, model_dir: Path, flags: list[str], voxels: int
) -> None:
    _cohort(tmp_path, ["a"])
    out = tmp_path / "out"
    argv = ["segment", str(tmp_path / "in" / "manifest.csv"), "--model", str(model_dir)]
    args = _parser().parse_args([*argv, "--out", str(out), "--no-progress", *flags])
    assert args.func(args) == 0
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "masks" / "a.nii.gz")))
    assert int((mask > 0).sum()) == voxels


def test_postprocess_flags_override_only_what_is_given() -> None:
    from hybridrad.cli.segment import _postprocess

    model = PostprocessConfig(keep_largest=True, min_size=5, fill_holes=False)
    base = ["segment", "m.csv", "--out", "o"]
    assert _postprocess(_parser().parse_args(base), model) == model
    args = _parser().parse_args([*base, "--no-keep-largest", "--fill-holes", "--min-size", "0"])
    assert _postprocess(args, model) == PostprocessConfig(False, 0, True)
    with pytest.raises(SystemExit):
        _parser().parse_args([*base, "--min-size", "-1"])


# --- 5. overlays ------------------------------------------------------------------------


def test_overlay_slices_show_distant_false_positive() -> None:
    truth = np.zeros((60, 8, 8), bool)
    truth[10:41, 2:6, 2:6] = True
    pred = truth.copy()
    pred[25, :, :] = True  # largest disagreement
    pred[55, 0, 0] = True  # a lone false positive far away
    chosen = overlay_slices(truth, pred)
    assert 25 in chosen and 55 in chosen and len(chosen) == 12
    assert chosen == sorted(chosen) and all(truth[z].any() or pred[z].any() for z in chosen)
    assert overlay_slices(np.zeros_like(truth), np.zeros_like(truth)) == [30]


def _colour_centroid(png: np.ndarray, colour: str) -> tuple[float, float]:
    r, g, b = png[..., 0], png[..., 1], png[..., 2]
    hit = (
        (g > 0.7) & (r < 0.4) & (b < 0.4) if colour == "lime" else (r > 0.7) & (b > 0.7) & (g < 0.4)
    )
    hit[int(0.85 * hit.shape[0]) :] = False  # leave out the legend below the panels
    rows, cols = np.nonzero(hit)
    assert rows.size > 50, colour
    return float(rows.mean()), float(cols.mean())


def _overlay_case(root: Path, ras: bool) -> Cohort:
    """One slice: truth anterior-left (low y, high x in LPS), prediction posterior-right;
    stored in LPS or, flipped, in RAS order (the same physical image)."""
    shape = (3, 48, 48)
    image = np.full(shape, 10.0, np.float32)
    image[:, :, 24:] = 20.0
    truth = np.zeros(shape, np.uint8)
    truth[1, 4:16, 32:44] = 1
    pred = np.zeros(shape, np.uint8)
    pred[1, 32:44, 4:16] = 1
    rows = []
    for name, arr in (("flair", image), ("mask", truth), ("pred", pred)):
        img = sitk.GetImageFromArray(arr[:, ::-1, ::-1].copy() if ras else arr)
        img.SetSpacing((1.0, 1.0, 3.0))
        if ras:
            img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
            img.SetOrigin((47.0, 47.0, 0.0))
        folder = root / "pred" / "masks" if name == "pred" else root
        _write_image(img, folder / ("x.nii.gz" if name == "pred" else f"{name}.nii.gz"))
    rows.append({"case_id": "x", "flair": "flair.nii.gz", "mask": "mask.nii.gz"})
    pd.DataFrame(rows).to_csv(root / "m.csv", index=False)
    return Cohort.from_csv(root / "m.csv")


def _write_image(img: sitk.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


def test_overlay_is_radiological_whatever_the_storage_order(tmp_path: Path) -> None:
    import matplotlib.image

    pngs = []
    for ras in (False, True):
        root = tmp_path / ("ras" if ras else "lps")
        cohort = _overlay_case(root, ras)
        evaluate_masks(cohort, root / "pred", overlay_dir=root / "overlays")
        pngs.append(matplotlib.image.imread(root / "overlays" / "x.png"))
    np.testing.assert_array_equal(pngs[0], pngs[1])
    t_row, t_col = _colour_centroid(pngs[0], "lime")
    p_row, p_col = _colour_centroid(pngs[0], "magenta")
    assert t_row < p_row  # anterior truth drawn above the posterior prediction
    assert t_col > p_col  # the patient's left on the viewer's right


def test_write_overlay_montage(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(size=(40, 16, 16))
    truth = np.zeros(image.shape, bool)
    truth[5:30, 4:10, 4:10] = True
    path = write_overlay(image, truth, truth.copy(), tmp_path / "o" / "c.png", "c")
    assert path.stat().st_size > 5000
