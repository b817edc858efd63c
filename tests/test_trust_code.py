"""Reliability and security of deep features: TorchScript only on explicit trust, stages
of TorchScript encoders, no silent NaN features, clear dimension and device errors."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

pytest.importorskip("torch")
pytest.importorskip("monai")

import torch

from hybridrad.errors import (
    DeviceError,
    ImageDimensionError,
    NonFiniteImageError,
    UntrustedCodeError,
)
from hybridrad.features.deep import (
    DeepFeatureTask,
    NonFiniteFeatureError,
    PatchSpec,
    extract_deep,
    extract_patch,
    resolve_device,
)
from hybridrad.features.encoders import (
    TRUST_HINT,
    Encoder,
    EncoderError,
    load_torchscript,
    resolve_encoder,
)
from hybridrad.io.manifest import Cohort


class TwoStages(torch.nn.Module):
    """A small 3D CNN returning two feature maps (4 and 6 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv3d(2, 4, 3, padding=1)
        self.b = torch.nn.Conv3d(4, 6, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = torch.relu(self.a(x))
        return [y, self.b(y)]


class NamedStages(torch.nn.Module):
    """Returns a dict: the keys name the stages."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv3d(2, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.a(x)
        return {"low": y, "pooled": torch.nn.functional.avg_pool3d(y, 2)}


class Empty(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return []


class NaNOut(torch.nn.Module):
    """Every output is NaN (a broken encoder, or an input with non-finite values)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv3d(2, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.a(x) * float("nan")]


def _script(module: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    torch.jit.script(module).save(str(path))
    return path


@pytest.fixture
def ts_file(tmp_path: Path) -> Path:
    return _script(TwoStages(), tmp_path / "two.ts")


@pytest.fixture
def cohort(small_cohort: Callable[..., Path]) -> Cohort:
    return Cohort.from_csv(small_cohort(n=3), label_map="binary")


@pytest.fixture
def jit_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every torch.jit.load call (and still loads)."""
    calls: list[Any] = []
    real = torch.jit.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "load", spy)
    return calls


# --- 1. TorchScript only on explicit trust -----------------------------------------------


def test_torchscript_is_not_loaded_without_trust(
    ts_file: Path, cohort: Cohort, jit_calls: list[Any]
) -> None:
    for call in (
        lambda: load_torchscript(ts_file),
        lambda: resolve_encoder(f"torchscript:{ts_file}"),
        lambda: resolve_encoder(str(ts_file)),  # by suffix
        lambda: extract_deep(cohort, f"torchscript:{ts_file}", device="cpu"),
        lambda: DeepFeatureTask(encoder=f"torchscript:{ts_file}"),
    ):
        with pytest.raises(UntrustedCodeError) as err:
            call()
        assert str(ts_file) in str(err.value) and TRUST_HINT in str(err.value)
        assert isinstance(err.value, PermissionError)
    assert jit_calls == []  # refused before the file was opened


def test_weights_loaders_never_run_torchscript(ts_file: Path, jit_calls: list[Any]) -> None:
    """A TorchScript file given as weights is refused by torch.load(weights_only=True)."""
    for spec in (f"resnet18:{ts_file}", f"fmcib:{ts_file}", f"medicalnet-resnet10:{ts_file}"):
        with pytest.raises(EncoderError, match="--trust-code"):
            resolve_encoder(spec, trust_code=True)
    assert jit_calls == []


def test_torchscript_with_trust_yields_features(
    ts_file: Path, cohort: Cohort, jit_calls: list[Any]
) -> None:
    enc = load_torchscript(ts_file, trust_code=True)
    assert len(jit_calls) == 1 and enc.in_channels == 2 and enc.stage_names == []
    batched = extract_deep(
        cohort, f"torchscript:{ts_file}", device="cpu", batch_size=3, num_workers=0, trust_code=True
    )
    assert batched.ok and batched.features.shape == (3, 4 + 6)
    cols = list(batched.features.columns)
    assert cols[0] == "deep__two__stage1__0000" and cols[-1] == "deep__two__stage2__0005"
    assert np.isfinite(batched.features.to_numpy()).all()
    assert batched.diagnostics["encoder__stages"].eq("stage1,stage2").all()
    per_case = extract_deep(
        cohort, f"torchscript:{ts_file}", device="cpu", batch_size=1, trust_code=True
    )
    assert per_case.ok and list(per_case.features.columns) == cols
    np.testing.assert_allclose(
        per_case.features.loc[batched.features.index].to_numpy(),
        batched.features.to_numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    # one stage only
    one = extract_deep(
        cohort, str(ts_file), device="cpu", stages=["stage2"], num_workers=0, trust_code=True
    )
    assert one.features.shape == (3, 6)


def test_trust_travels_with_the_task_to_worker_processes(ts_file: Path) -> None:
    task = DeepFeatureTask(encoder=f"torchscript:{ts_file}", trust_code=True).with_sequences(
        ["t1", "flair"]
    )
    assert task.stages == ("stage1", "stage2")
    clone = pickle.loads(pickle.dumps(task))  # what a process pool / Dask worker gets
    assert clone._encoder is None and clone.trust_code
    assert clone.encoder_module.in_channels == 2


def test_dict_outputs_name_the_stages(tmp_path: Path, cohort: Cohort) -> None:
    path = _script(NamedStages(), tmp_path / "named.jit")
    res = extract_deep(cohort, str(path), device="cpu", num_workers=0, trust_code=True)
    assert res.ok and res.features.shape == (3, 6)
    assert {c.split("__")[2] for c in res.features.columns} == {"low", "pooled"}


def test_cli_without_trust_code_stops_with_one_line(
    ts_file: Path,
    small_cohort: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    jit_calls: list[Any],
) -> None:
    from hybridrad.cli import main

    manifest = small_cohort(n=3)
    out = tmp_path / "deep.parquet"
    argv = [
        "deep-features",
        str(manifest),
        "--encoder",
        f"torchscript:{ts_file}",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert str(ts_file) in lines[0] and "--trust-code" in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists() and jit_calls == []

    assert main([*argv, "--trust-code", "--batch-size", "2", "--num-workers", "0"]) == 0
    table = pd.read_parquet(out)
    assert table.shape == (3, 10)


def test_encoder_dir_weights_must_match_their_recorded_hash(tmp_path: Path) -> None:
    from hybridrad.features.encoders import build_resnet, save_encoder_dir

    tiny: dict[str, Any] = {"block": "basic", "layers": [1, 1, 1, 1], "block_inplanes": [4] * 4}
    net = build_resnet("ResNet", n_input_channels=1, **tiny)
    arch = {"arch": "ResNet", "kwargs": {**tiny, "n_input_channels": 1}}
    save_encoder_dir(tmp_path / "enc", net, {"name": "t", "architecture": arch, "patch": {}})
    assert resolve_encoder(str(tmp_path / "enc")).name == "t"
    state = {k: v + 1 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save(state, tmp_path / "enc" / "encoder.pt")  # weights swapped after saving
    with pytest.raises(EncoderError, match=r"encoder.pt differs from the file encoder.json"):
        resolve_encoder(str(tmp_path / "enc"))


# --- 2. no silent 0-feature tables ---------------------------------------------------------


def test_encoder_without_stages_is_an_error_before_any_case(
    tmp_path: Path, cohort: Cohort, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _script(Empty(), tmp_path / "empty.ts")

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a case was read")

    monkeypatch.setattr(Cohort, "__iter__", never)
    with pytest.raises(EncoderError, match=r"'empty'.*returned no tensor.*yields no feature"):
        extract_deep(cohort, str(path), device="cpu", trust_code=True)
    two = _script(TwoStages(), tmp_path / "two.ts")
    with pytest.raises(EncoderError, match=r"no stage\(s\) \['layer9'\].*'stage1', 'stage2'"):
        extract_deep(cohort, str(two), device="cpu", stages=["layer9"], trust_code=True)


class Broken(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise RuntimeError("shapes do not fit\nsecond line")


def test_encoder_that_fails_on_the_patch_is_named() -> None:
    with pytest.raises(
        EncoderError, match=r"'broken'.*fails on a patch of shape \(1, 2, 4, 4, 4\).*do not fit"
    ):
        DeepFeatureTask(
            encoder=Encoder(Broken(), name="broken", in_channels=2),
            patch=PatchSpec(size=(4, 4, 4), sequences=("t1", "flair")),
        )


# --- 3. NaN / Inf and dimensions -----------------------------------------------------------


def test_nan_encoder_output_fails_the_case_naming_it(cohort: Cohort) -> None:
    enc = Encoder(NaNOut(), name="nanny", in_channels=2)
    for batch_size in (3, 1):
        res = extract_deep(cohort, enc, device="cpu", batch_size=batch_size, num_workers=0)
        assert not res.ok and res.features.empty
        assert res.failures["exception"].eq("NonFiniteFeatureError").all()
        assert res.failures["stage"].eq("deep:encode").all()
        msg = res.failures.set_index("case_id").loc["case1", "message"]
        assert "case 'case1'" in msg and "encoder 'nanny'" in msg and "gave 3 non-finite" in msg
    task = DeepFeatureTask(encoder=enc).with_sequences(["t1", "flair"])
    with pytest.raises(NonFiniteFeatureError, match=r"gave 1 non-finite .* of 2"):
        task.check_finite("x", {"a": 1.0, "b": float("inf")})


def test_nan_voxels_in_memory_and_in_files(small_cohort: Callable[..., Path]) -> None:
    arr = np.ones((8, 10, 12), np.float32)
    arr[4, 5, 6] = np.nan
    arr[1, 1, 1] = np.inf
    mask = np.zeros((8, 10, 12), np.uint8)
    mask[3:6, 3:6, 3:6] = 1
    spec = PatchSpec(size=(8, 8, 8), sequences=("t1",))
    images = {"t1": sitk.GetImageFromArray(arr)}
    with pytest.raises(NonFiniteImageError, match=r"case 'c7': sequence 't1' has 2 NaN/Inf"):
        extract_patch(images, sitk.GetImageFromArray(mask), spec, case_id="c7")
    # on disk (NRRD keeps NaN; ITK's NIfTI reader would turn it into 0): the case fails
    # (its reader or the patch check says why), the others pass
    manifest = small_cohort(n=3)
    table = pd.read_csv(manifest)
    table.loc[1, "t1"] = "images/case1/t1.nrrd"
    table.to_csv(manifest, index=False)
    t1 = manifest.parent / "images" / "case1" / "t1.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(t1))
    cohort = Cohort.from_csv(manifest, label_map="binary")
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(cohort.cases[1].mask))
    res = extract_deep(
        cohort, Encoder(TwoStages(), name="two", in_channels=2), device="cpu", num_workers=0
    )
    assert list(res.failures["case_id"]) == ["case1"] and len(res.features) == 2
    assert res.failures["exception"].iloc[0] == "NonFiniteImageError"
    assert "case1" in res.failures["message"].iloc[0] or str(t1) in res.failures["message"].iloc[0]
    assert np.isfinite(res.features.to_numpy()).all()


def test_2d_and_4d_images_name_case_and_file(cohort: Cohort) -> None:
    vol = np.ones((8, 10, 12), np.float32)
    mask3 = np.zeros((8, 10, 12), np.uint8)
    mask3[3:6, 3:6, 3:6] = 1
    spec = PatchSpec(size=(8, 8, 8), sequences=("t1",))
    img3, m3 = sitk.GetImageFromArray(vol), sitk.GetImageFromArray(mask3)
    m2 = sitk.GetImageFromArray(mask3[4])
    with pytest.raises(ImageDimensionError, match=r"case 'c': the mask \(m.nii\) is a 2D image"):
        extract_patch({"t1": img3}, m2, spec, case_id="c", files={"mask": "m.nii"})
    img4 = sitk.JoinSeries([img3, img3])
    with pytest.raises(ImageDimensionError, match=r"sequence 't1' \(t.nii\) is a 4D image"):
        extract_patch({"t1": img4}, m3, spec, case_id="c", files={"t1": "t.nii"})
    rgb = sitk.Compose([img3, img3, img3])
    with pytest.raises(ImageDimensionError, match="3 components per voxel"):
        extract_patch({"t1": rgb}, m3, spec, case_id="c")
    # on disk, through the runner: failure rows naming case and file, never an IndexError
    sitk.WriteImage(sitk.GetImageFromArray(mask3[4]), str(cohort.cases[1].mask))
    four = cohort.cases[2].images["flair"]
    sitk.WriteImage(sitk.JoinSeries([sitk.ReadImage(str(four))] * 2), str(four))
    res = extract_deep(
        cohort, Encoder(TwoStages(), name="two", in_channels=2), device="cpu", num_workers=0
    )
    fails = res.failures.set_index("case_id")
    assert sorted(fails.index) == ["case1", "case2"] and len(res.features) == 1
    assert fails["exception"].eq("ImageDimensionError").all(), fails
    assert "case1" in fails.loc["case1", "message"] and "2D" in fails.loc["case1", "message"]
    assert "case2" in fails.loc["case2", "message"] and "4D" in fails.loc["case2", "message"]
    assert "index 2" not in " ".join(fails["message"])


# --- 4. devices ----------------------------------------------------------------------------


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == "cpu" and resolve_device(" CPU ") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    for name in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(DeviceError, match=rf"'{name}'.*CUDA is not available.*--device cpu"):
            resolve_device(name)
    for name in ("tpu", "cuda:x", "", "gpu"):
        with pytest.raises(DeviceError, match="not one of auto, cpu, cuda, cuda:N"):
            resolve_device(name)
    # a machine with two GPUs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(DeviceError, match=r"'cuda:2'.*2 CUDA device\(s\).*--device cpu or auto"):
        resolve_device("cuda:2")


def test_cuda_without_cuda_fails_before_any_case(
    monkeypatch: pytest.MonkeyPatch,
    small_cohort: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hybridrad.cli import main

    manifest = small_cohort(n=3)
    cohort = Cohort.from_csv(manifest, label_map="binary")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    enc = Encoder(TwoStages(), name="two", in_channels=2)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a case was read")

    monkeypatch.setattr(Cohort, "__iter__", never)
    with pytest.raises(DeviceError, match="use --device cpu or auto"):
        extract_deep(cohort, enc, device="cuda")
    out = tmp_path / "d.parquet"
    code = main(["deep-features", str(manifest), "--device", "cuda", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "'cuda'" in err and "Traceback" not in err and not out.exists()
