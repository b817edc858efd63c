"""The shipped segmentation models: the registry, 2D slice-wise networks, the
missing-sequence error, automatic model choice, and the glioma models on real scans."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from hybridrad.cli import main  # noqa: E402
from hybridrad.errors import ConstantImageWarning  # noqa: E402
from hybridrad.io.manifest import Cohort  # noqa: E402
from hybridrad.segment import (  # noqa: E402
    InferenceConfig,
    ModelDirError,
    SegConfig,
    SegmentationConfigError,
    SequenceMismatchError,
)
from hybridrad.segment.infer import Segmenter, predict_probabilities  # noqa: E402
from hybridrad.segment.model import build_network, load_model  # noqa: E402
from hybridrad.segment.registry import (  # noqa: E402
    SHIPPED,
    check_inputs,
    models_table,
    pick_model,
    resolve_model,
    shipped_models,
)
from hybridrad.segment.train import train_model  # noqa: E402

GLIOMA = ("glioma-flair", "glioma-flair-t1-t1c")


def _write(arr: np.ndarray, path: Path) -> Path:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.875, 1.875, 5.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def _flair_cohort(root: Path, n: int = 4, seed: int = 0) -> Path:
    """Tiny FLAIR-only cohort: a bright ellipsoid lesion in a dimmer head."""
    rng = np.random.default_rng(seed)
    rows = []
    z, y, x = np.mgrid[:8, :32, :32]
    for i in range(n):
        head = ((y - 16) ** 2 + (x - 16) ** 2) < 14**2
        cy, cx = rng.integers(10, 22, size=2)
        lesion = ((y - cy) ** 2 + (x - cx) ** 2 < 16) & (np.abs(z - 4) < 3)
        img = (head * 60 + lesion * 80 + rng.normal(0, 3, head.shape)).clip(0).astype(np.float32)
        case = root / f"c{i}"
        rows.append(
            {
                "case_id": f"c{i}",
                "flair": str(_write(img, case / "flair.nii.gz")),
                "mask": str(_write(lesion.astype(np.uint8), case / "mask.nii.gz")),
            }
        )
    manifest = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


# --- 2D slice-wise networks ----------------------------------------------------------


def test_2d_config_validation() -> None:
    cfg = SegConfig(network="UNet", spatial_dims=2, roi_size=[32, 32, 1])
    assert cfg.spatial_dims == 2
    with pytest.raises(SegmentationConfigError, match="end in 1"):
        SegConfig(network="UNet", spatial_dims=2, roi_size=[32, 32, 8])
    with pytest.raises(SegmentationConfigError, match="spatial_dims"):
        SegConfig(spatial_dims=4)
    with pytest.raises(SegmentationConfigError, match=">= 8"):
        SegConfig(roi_size=[32, 32, 1])  # 3D network: a 1-voxel crop is a mistake


def test_slice_inference_equals_a_loop_over_slices() -> None:
    """MONAI's SliceInferer path = the network applied to every axial slice by hand."""
    net = build_network("UNet", 2, 1, {"channels": (4, 8, 16), "strides": (2, 2)}, 2)
    net.eval()
    x = torch.randn(1, 2, 32, 32, 5)
    settings = InferenceConfig(roi_size=None, sw_batch_size=3, mode="constant")
    prob = predict_probabilities(net, x, [32, 32, 1], settings, "cpu", spatial_dims=2)
    with torch.no_grad():
        manual = torch.stack([torch.sigmoid(net(x[..., k])) for k in range(5)], dim=-1)
    assert prob.shape == (1, 1, 32, 32, 5)
    torch.testing.assert_close(prob, manual, atol=1e-5, rtol=1e-4)
    tta = predict_probabilities(
        net, x, [32, 32, 1], dataclasses.replace(settings, tta=True), "cpu", spatial_dims=2
    )
    assert tta.shape == prob.shape and float(tta.min()) >= 0 and float(tta.max()) <= 1


@pytest.mark.slow
def test_2d_training_learns_a_bright_lesion(tmp_path: Path) -> None:
    """A few epochs of the slice-wise recipe find an obvious lesion (bounded by epochs)."""
    manifest = _flair_cohort(tmp_path / "data", n=4)
    cohort = Cohort.from_csv(manifest, label_map="binary")
    cfg = SegConfig(
        network="UNet",
        network_kwargs={"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1},
        spatial_dims=2,
        sequences=["flair"],
        roi_size=[32, 32, 1],
        training=dataclasses.replace(
            SegConfig().training,
            epochs=30,
            batch_size=1,
            samples_per_case=16,
            lr=1e-2,
            val_fraction=0.0,
            patience=1000,
        ),
        inference=InferenceConfig(sw_batch_size=8, mode="constant", crop_foreground=False),
    )
    meta = train_model(cohort, tmp_path / "model", cfg, device="cpu", progress=False)
    assert meta["network"]["spatial_dims"] == 2 and meta["metrics"]["epochs_run"] == 30
    model = load_model(tmp_path / "model")
    mask = Segmenter(model, device="cpu").predict_case(cohort["c0"])
    truth = sitk.GetArrayFromImage(cohort["c0"].read_mask()) > 0
    pred = sitk.GetArrayFromImage(mask) > 0
    dice = 2 * (truth & pred).sum() / (truth.sum() + pred.sum())
    assert dice > 0.6, dice
    assert mask.GetSize() == (32, 32, 8) and mask.GetSpacing() == (1.875, 1.875, 5.0)


# --- the registry ----------------------------------------------------------------------


def test_every_shipped_model_is_listed_loads_and_is_small() -> None:
    names = [m.name for m in shipped_models()]
    assert names == list(SHIPPED)  # all installed, in preference order
    for m in shipped_models():
        weights = m.path / m.metadata["weights"]["file"]
        assert weights.stat().st_size <= 20e6, (m.name, weights.stat().st_size)
        model = load_model(m.path)  # weights_only / safetensors: nothing unpickled
        assert model.sequences == m.sequences
        assert "/tmp" not in json.dumps(m.metadata["training_data"])  # no machine paths
    for name in GLIOMA:
        row = next(r for r in models_table() if r["name"] == name)
        assert row["output"] == "tumor" and row["network"] == "UNet 2D"
        assert 0.5 < row["cv_mean_dice"] <= 1.0 and row["cv"] == "5-fold, 39 cases"


def test_resolve_model_by_name_or_path(tmp_path: Path) -> None:
    assert resolve_model("glioma-flair") == SHIPPED["glioma-flair"][0]
    assert resolve_model(tmp_path) == tmp_path
    with pytest.raises(ModelDirError, match=r"glioma-flair.*models"):
        resolve_model("glioma-flare")


def test_pick_model_takes_the_best_measured_real_data_model() -> None:
    assert pick_model(["flair"]).name == "glioma-flair"
    models = {m.name: m for m in shipped_models()}
    both = [models["glioma-flair"], models["glioma-flair-t1-t1c"]]
    best = max(both, key=lambda m: m.cv["mean_dice"]).name
    assert pick_model(["t1", "flair", "t1c"]).name == best
    assert pick_model(["t1", "t1c", "t2", "flair"]).name == best  # never the phantom model
    with pytest.raises(SequenceMismatchError, match="glioma-flair: flair"):
        pick_model(["t2", "adc"])


def test_missing_sequence_error_names_model_needs_and_has() -> None:
    with pytest.raises(SequenceMismatchError) as err:
        check_inputs("glioma-flair-t1-t1c", ["flair", "t1", "t1c"], ["flair", "t2"], "m.csv")
    text = str(err.value)
    assert "glioma-flair-t1-t1c" in text and "['flair', 't1', 't1c']" in text
    assert "['flair', 't2']" in text and "['t1', 't1c']" in text
    assert "glioma-flair" in text.split("Shipped models that fit")[1]


def test_models_command_lists_inputs_and_dice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out
    assert "CV Dice mean" in out and "inputs  : flair  ->  tumor" in out
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(SHIPPED)


def test_segment_by_name_and_automatic_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _flair_cohort(tmp_path / "data", n=2)
    assert (
        main(
            [
                "segment",
                str(manifest),
                "--model",
                "glioma-flair",
                "--out",
                str(tmp_path / "named"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "named" / "masks").glob("*.nii.gz"))) == 2
    capsys.readouterr()
    assert main(["segment", str(manifest), "--out", str(tmp_path / "auto"), "--no-progress"]) == 0
    assert "glioma-flair" in capsys.readouterr().out  # says which model it picked
    rc = main(
        [
            "segment",
            str(manifest),
            "--model",
            "glioma-flair-t1-t1c",
            "--out",
            str(tmp_path / "bad"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err  # one `error: ...` line on stderr, exit 2
    assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "glioma-flair-t1-t1c" in err and "['t1', 't1c']" in err


# --- real data ---------------------------------------------------------------------------


def test_glioma_flair_segments_real_lgg_cases(data_dir: Path) -> None:
    """The shipped model on three TCGA-LGG cases it was trained on: a sanity floor, not
    a performance claim (the CV figures in model.json are the held-out ones)."""
    from hybridrad.datasets.discover import discover_lgg_tcga

    table, _ = discover_lgg_tcga(data_dir / "lgg-tcga")
    cohort = Cohort(table.head(3), data_dir / "lgg-tcga", sequences=["flair"])
    seg = Segmenter(load_model(resolve_model("glioma-flair")), device="cpu")
    for case in cohort:
        truth = sitk.GetArrayFromImage(case.read_mask()) > 0
        pred = sitk.GetArrayFromImage(seg.predict_case(case)) > 0
        dice = 2 * (truth & pred).sum() / (truth.sum() + pred.sum())
        assert dice > 0.6, (case.case_id, dice)


def test_2d_model_is_refused_as_deep_feature_encoder() -> None:
    from hybridrad.segment.model import load_encoder

    with pytest.raises(ModelDirError, match="2D slice-wise"):
        load_encoder(resolve_model("glioma-flair"))


def test_empty_predictions_get_one_warning_naming_them(tmp_path: Path) -> None:
    """A scan the model finds nothing in (here: a blank volume) is not passed on silently."""
    from hybridrad.segment.infer import EmptyPredictionWarning, segment_cohort

    manifest = _flair_cohort(tmp_path / "data", n=1)
    blank = tmp_path / "blank.nii.gz"
    _write(np.zeros((8, 32, 32), np.float32), blank)
    table = pd.read_csv(manifest)
    table.loc[1] = ["blank", str(blank), table.loc[0, "mask"]]
    table.to_csv(manifest, index=False)
    cohort = Cohort.from_csv(manifest, label_map="binary")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        segment_cohort(cohort, tmp_path / "out", model_dir="glioma-flair", device="cpu")
    empty = [str(w.message) for w in rec if w.category is EmptyPredictionWarning]
    assert len(empty) == 1 and re.search(r"of 2 case.*glioma-flair.*'blank'", empty[0])
    # the blank input scan is named too; its empty predicted mask is not "constant"
    constant = [str(w.message) for w in rec if w.category is ConstantImageWarning]
    assert len(constant) == 1 and "blank.nii.gz" in constant[0]
