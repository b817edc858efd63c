"""Deep features: label-map semantics of masks, DataLoader workers that die with the
run, and a batched path that caches every batch as it finishes (under the runner's
per-case locks), so that a killed run resumes without recomputing."""

from __future__ import annotations

import functools
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

pytest.importorskip("torch")
pytest.importorskip("monai")

import torch

from hybridrad.errors import LabelValueWarning, MaskLabelError
from hybridrad.features import deep
from hybridrad.features.deep import DeepFeatureTask, PatchSpec, extract_deep, roi_array
from hybridrad.io.labels import LabelMap
from hybridrad.io.manifest import Cohort
from hybridrad.runner import CaseOutput, ResultCache
from tests.conftest import make_mask
from tests.test_deep import tiny_encoder_dir
from tests.test_runner_hardening import REPO, _alive, _entries, _poll

posix_only = pytest.mark.skipif(os.name != "posix", reason="signals: POSIX only")


@pytest.fixture(scope="module")
def encoder_2(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny 2-channel (t1, flair) encoder directory."""
    return str(tiny_encoder_dir(tmp_path_factory.mktemp("enc2") / "enc", n_in=2))


@pytest.fixture(scope="module")
def encoder_4(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny 4-channel encoder directory (the synthetic cohort's sequences)."""
    return str(tiny_encoder_dir(tmp_path_factory.mktemp("enc4") / "enc", n_in=4))


@pytest.fixture(scope="module")
def synthetic5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hybridrad.datasets.synthetic import make_synthetic_cohort

    return make_synthetic_cohort(tmp_path_factory.mktemp("syn5"), n_cases=5, seed=0).manifest_path


# --- 1. masks are read through the label map, as radiomics reads them --------------------------

# make_mask draws one 30-voxel block per value


def test_roi_array_follows_the_label_map() -> None:
    mask = make_mask(values=(1, 2, 4))
    binary, brats = LabelMap.preset("binary"), LabelMap.preset("brats")
    assert roi_array(mask, label_map=binary, region="tumor").sum() == 90
    assert roi_array(mask, label_map=binary).sum() == 90
    assert roi_array(mask, label_map=brats, region="TC").sum() == 60
    assert roi_array(mask, label_map=brats, region="ET").sum() == 30
    with pytest.raises(MaskLabelError, match=r"case 'c9': mask holds value\(s\) 7 \(30 voxels\)"):
        roi_array(make_mask(values=(1, 7)), label_map=brats, where="case 'c9': mask")
    ignoring = LabelMap.from_dict({**brats.to_dict(), "ignore": [7]})
    with pytest.warns(LabelValueWarning, match=r"7 \(30 voxels\) read as background"):
        assert roi_array(make_mask(values=(1, 7)), label_map=ignoring, region="WT").sum() == 30


def test_binary_region_uses_every_nonzero_voxel(
    small_cohort: Callable[..., Path], encoder_2: str
) -> None:
    manifest = small_cohort(mask_values=(1, 2, 4), n=2)
    cohort = Cohort.from_csv(manifest, label_map="binary")
    patch = PatchSpec(size=(16, 16, 16), sequences=("t1", "flair"), region="tumor")
    for batch_size in (2, 1):
        res = extract_deep(
            cohort, encoder_2, patch=patch, batch_size=batch_size, num_workers=0, device="cpu"
        )
        assert res.ok
        assert res.diagnostics["patch__roi_voxels"].eq(90).all()
        assert res.diagnostics["patch__region"].eq("tumor").all()
        assert res.diagnostics["patch__label_map"].eq("binary").all()
    brats = Cohort.from_csv(manifest, label_map="brats")
    tc = extract_deep(brats, encoder_2, patch=replace_region(patch, "TC"), device="cpu")
    assert tc.ok and tc.diagnostics["patch__roi_voxels"].eq(60).all()


def replace_region(patch: PatchSpec, region: str) -> PatchSpec:
    from dataclasses import replace

    return replace(patch, region=region)


def test_mask_value_the_map_does_not_name_fails_the_case(
    small_cohort: Callable[..., Path], encoder_2: str
) -> None:
    manifest = small_cohort(mask_values=(1, 2, 4), n=3)
    cohort = Cohort.from_csv(manifest, label_map="brats")
    bad = cohort.cases[1].mask
    assert bad is not None
    sitk.WriteImage(make_mask(values=(1, 2, 7)), str(bad))
    for batch_size, workers in ((2, 0), (2, 1), (1, 0)):
        res = extract_deep(
            cohort, encoder_2, batch_size=batch_size, num_workers=workers, device="cpu"
        )
        assert res.features.index.tolist() == ["case0", "case2"]
        assert res.failures["case_id"].tolist() == ["case1"]
        row = res.failures.iloc[0]
        assert row["exception"] == "MaskLabelError" and row["stage"] == "deep:patch"
        assert "case 'case1': mask" in row["message"] and "mask.nii.gz" in row["message"]
        assert "7 (30 voxels)" in row["message"] and "'brats'" in row["message"]
    # the binary map reads the 7s as tumour: every non-zero voxel
    binary = Cohort.from_csv(manifest, label_map="binary")
    res = extract_deep(binary, encoder_2, batch_size=2, num_workers=0, device="cpu")
    assert res.ok and res.diagnostics["patch__roi_voxels"].eq(90).all()


def test_pretrain_reads_masks_through_the_label_map(
    small_cohort: Callable[..., Path], tmp_path: Path
) -> None:
    from hybridrad.features.pretrain import PretrainConfig, pretrain

    cohort = Cohort.from_csv(small_cohort(mask_values=(1, 2, 4), n=4), label_map="brats")
    bad = cohort.cases[2].mask
    assert bad is not None
    sitk.WriteImage(make_mask(values=(7,)), str(bad))
    spec = PatchSpec(size=(8, 8, 8), spacing=(2.0, 2.0, 2.0))
    with pytest.raises(MaskLabelError, match=r"case 'case2': mask .*7 \(30 voxels\).*'brats'"):
        pretrain(cohort, tmp_path / "enc", patch=spec, config=PretrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"region 'tumor' is not in label map 'brats'"):
        pretrain(cohort, tmp_path / "enc", patch=replace_region(spec, "tumor"))


def test_label_map_is_part_of_the_plan_and_survives_pickling(
    small_cohort: Callable[..., Path], encoder_2: str
) -> None:
    case = Cohort.from_csv(small_cohort(mask_values=(1, 2, 4), n=1)).cases[0]
    brats = LabelMap.preset("brats")

    def task(label_map: Any, region: str | None = None) -> DeepFeatureTask:
        spec = PatchSpec(size=(16, 16, 16), sequences=("t1", "flair"), region=region)
        return DeepFeatureTask(encoder=encoder_2, patch=spec, label_map=label_map)

    tasks = [
        task(None),
        task("brats"),
        task(LabelMap.from_dict({**brats.to_dict(), "ignore": [7]})),
        task("brats", "TC"),
    ]
    assert tasks[0].labels == LabelMap.preset("binary")
    assert tasks[1].plan()["label_map"] == brats.to_dict()
    assert len({t.cache_key(case) for t in tasks}) == len(tasks)
    # a map given as a LabelMap, its dict form or a preset name: one task, one key
    assert task(brats.to_dict()).cache_key(case) == tasks[1].cache_key(case)
    assert task(brats).cache_key(case) == tasks[1].cache_key(case)
    clone = pickle.loads(pickle.dumps(tasks[3]))
    assert clone.labels == brats and clone.cache_key(case) == tasks[3].cache_key(case)
    with pytest.raises(ValueError, match=r"region 'tumor' is not in label map 'brats'"):
        task("brats", "tumor")


# --- 2. DataLoader workers die with the run ----------------------------------------------------


def test_dataloader_workers_get_the_parent_pid(
    monkeypatch: pytest.MonkeyPatch, small_cohort: Callable[..., Path], encoder_2: str
) -> None:
    calls: list[int | None] = []
    monkeypatch.setattr(deep, "init_worker", lambda parent_pid=None: calls.append(parent_pid))
    threads = torch.get_num_threads()
    try:
        deep._worker_init(0, parent_pid=4242)
        assert calls == [4242] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)

    seen: dict[str, Any] = {}
    real = torch.utils.data.DataLoader

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.utils.data, "DataLoader", spy)
    cohort = Cohort.from_csv(small_cohort(n=2))
    assert extract_deep(cohort, encoder_2, batch_size=2, num_workers=1, device="cpu").ok
    init = seen["worker_init_fn"]
    assert isinstance(init, functools.partial) and init.func is deep._worker_init
    assert init.keywords == {"parent_pid": os.getpid()}


# --- 3. the batched path caches every batch as it finishes --------------------------------------


def _validated_entries(cache: Path) -> int:
    store = ResultCache(cache)
    return sum(store.get(p.stem) is not None for p in _entries(cache))


def test_batched_run_caches_each_batch_and_reruns_from_the_cache(
    synthetic5: Path, encoder_4: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = Cohort.from_csv(synthetic5, label_map="brats")
    cache = tmp_path / "cache"
    seen_at_encode: list[int] = []
    encode = DeepFeatureTask.encode

    def counting(self: DeepFeatureTask, x: torch.Tensor, roi: torch.Tensor) -> Any:
        seen_at_encode.append(len(_entries(cache)))
        return encode(self, x, roi)

    monkeypatch.setattr(DeepFeatureTask, "encode", counting)
    first = extract_deep(
        cohort, encoder_4, batch_size=2, num_workers=0, device="cpu", cache_dir=cache
    )
    assert first.ok and (first.n_cached, first.n_computed) == (0, 5)
    assert seen_at_encode == [0, 2, 4]  # each batch is in the cache before the next runs
    assert len(_entries(cache)) == _validated_entries(cache) == 5
    assert not list(cache.rglob("*.tmp*"))
    assert first.diagnostics["deep__path"].str.startswith("batched:").all()
    assert first.diagnostics["runner__peak_rss_mb"].gt(0).all()

    seen_at_encode.clear()
    again = extract_deep(
        cohort, encoder_4, batch_size=2, num_workers=0, device="cpu", cache_dir=cache
    )
    assert (again.n_cached, again.n_computed) == (5, 0) and seen_at_encode == []
    pd.testing.assert_frame_equal(again.features, first.features, check_exact=True)
    pd.testing.assert_frame_equal(again.diagnostics, first.diagnostics)

    # a damaged entry is recomputed by the batched path and rewritten
    damaged = _entries(cache)[3]
    damaged.write_text(damaged.read_text().replace('"features": {"', '"features": {"x": 1, "'))
    third = extract_deep(
        cohort, encoder_4, batch_size=2, num_workers=0, device="cpu", cache_dir=cache
    )
    assert (third.n_cached, third.n_computed) == (4, 1) and seen_at_encode == [5]
    # (encoded in a batch of one instead of two: equal to float32 rounding)
    pd.testing.assert_frame_equal(third.features, first.features, rtol=1e-5)
    assert _validated_entries(cache) == 5


@pytest.mark.parametrize("other_run", ["finishes", "dies"])
def test_case_locked_by_another_run_is_left_to_it(
    other_run: str, synthetic5: Path, encoder_4: str, tmp_path: Path
) -> None:
    """The batched path skips a case whose lock another run holds; the final pass reads
    it from the cache once that run is done, or computes it (per case) if that run let
    go of it unfinished."""
    cohort = Cohort.from_csv(synthetic5, label_map="brats")
    cache = tmp_path / "cache"
    case = cohort.cases[2]
    key = (
        DeepFeatureTask(encoder=encoder_4, label_map=cohort.label_map)
        .with_sequences(cohort.sequences)
        .cache_key(case)
    )
    lock = ResultCache(cache).lock(key)
    lock.acquire()
    theirs = CaseOutput(features={"deep__other__x__0000": 1.5}, diagnostics={"by": "other"})

    def let_go() -> None:
        if other_run == "finishes":
            ResultCache(cache).put(key, theirs)
        lock.release()

    timer = threading.Timer(1.0, let_go)
    timer.start()
    try:
        res = extract_deep(
            cohort, encoder_4, batch_size=2, num_workers=0, device="cpu", cache_dir=cache
        )
    finally:
        timer.join()
    assert res.ok and len(res.features) == 5
    paths = res.diagnostics["deep__path"]
    assert paths.drop(case.case_id).str.startswith("batched:").all()
    if other_run == "finishes":
        assert (res.n_cached, res.n_computed) == (1, 4)
        assert res.diagnostics.loc[case.case_id, "by"] == "other"
        assert res.features.loc[case.case_id, "deep__other__x__0000"] == 1.5
    else:
        assert (res.n_cached, res.n_computed) == (0, 5)
        assert paths[case.case_id] == "per-case"
    assert ResultCache(cache).get(key) is not None and _validated_entries(cache) == 5


# --- SIGKILL with the default batch size, through the command line -------------------------------

N_KILL = 12  # more than one batch of the default 8


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _children(pid: int) -> list[int]:
    """Pids of the live children of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.append(int(stat.parent.name))
    return out


@posix_only
def test_batched_deep_features_killed_resumes_without_recomputing(
    tmp_path: Path, one_torch_thread: None
) -> None:
    """``deep-features`` with the default batch size (8) and DataLoader workers, on 12
    cases: SIGKILLed once the first batch is cached, its workers die with it, and the
    resumed run computes only the second batch; the table equals an uninterrupted run's."""
    from hybridrad.cli import main
    from hybridrad.datasets.synthetic import make_synthetic_cohort
    from hybridrad.features.encoders import EncoderError, resolve_encoder

    try:
        resolve_encoder(None)
    except EncoderError as exc:
        pytest.skip(f"no default encoder: {exc}")
    manifest = make_synthetic_cohort(tmp_path / "syn", n_cases=N_KILL, seed=0).manifest_path

    def argv(out: Path) -> list[str]:
        return [
            "deep-features", str(manifest), "--labels", "brats", "--device", "cpu",
            "--threads", "1", "--patch-size", "64", "--out", str(out / "deep.parquet"),
            "--cache-dir", str(out / "cache"), "--no-progress",
        ]  # fmt: skip

    ref, run = tmp_path / "ref", tmp_path / "run"
    assert main(argv(ref)) == 0
    cache = run / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    log = tmp_path / "killed.stderr"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybridrad", *argv(run)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            seen = _poll(
                lambda: bool(cache.is_dir() and _entries(cache)) or proc.poll() is not None,
                polls=12_000,
                every=0.01,
            )
            assert seen and proc.poll() is None, f"run ended early:\n{log.read_text()[-3000:]}"
            workers = _children(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    if deep.available_cores() > 1 and Path("/proc/self/stat").is_file():
        # killed while the DataLoader was still reading: the first batch was cached
        # before the last one was read (not all at the end, after the loader is done)
        assert workers, "no DataLoader worker was running when the first entry appeared"
    # the DataLoader workers die with the run (PR_SET_PDEATHSIG), not seconds later
    assert _poll(lambda: not any(_alive(w) for w in workers), polls=100, every=0.01), workers
    n_done = len(_entries(cache))
    assert 1 <= n_done < N_KILL, n_done
    assert main(argv(run)) == 0
    provenance = json.loads((run / "deep.provenance.json").read_text())
    assert (provenance["n_cached"], provenance["n_computed"]) == (n_done, N_KILL - n_done)
    assert provenance["n_failed"] == 0
    # killed between batches (the usual case: a batch's entries are written within
    # milliseconds), the resumed run encodes the reference run's last batch: identical
    # tables. Killed while a batch was being written, it encodes its rest with the next
    # batch; CPU kernels may then round differently (float32: within 1e-5)
    resumed, reference = (
        pd.read_parquet(run / "deep.parquet"),
        pd.read_parquet(ref / "deep.parquet"),
    )
    if n_done % 8 == 0:
        pd.testing.assert_frame_equal(resumed, reference, check_exact=True)
    else:
        pd.testing.assert_frame_equal(resumed, reference, rtol=1e-5)
    assert len(_entries(cache)) == _validated_entries(cache) == N_KILL
    assert np.isfinite(resumed.to_numpy()).all()
