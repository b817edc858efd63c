"""Fast tests of ``hybridrad seg-train`` (hybridrad.segment.train.train_model) on a tiny
cohort (12x10x8 voxels, 2 sequences, a 2-level SegResNet of 2 filters): progress
reporting, the time budget checked per batch, the stop reason, and the cosine schedule
that follows the budget. The clock is mocked (time.perf_counter in the train module, advanced by every
training batch), so the tests are bounded by counts, never by the wall clock."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from hybridrad.io.manifest import Cohort  # noqa: E402
from hybridrad.segment import train as train_module  # noqa: E402
from hybridrad.segment.config import SegConfig, TrainingConfig  # noqa: E402
from hybridrad.segment.train import cosine_lr, train_model  # noqa: E402
from tests.conftest import CohortFactory  # noqa: E402

LR = 0.01
SECONDS_PER_BATCH = 4.0  # mocked: every training batch advances the clock by this
# 1-minute budget, 4 batches an epoch: the lr of each epoch's last batch is set from the
# time used before it (batches 4, 8, 12 and 15, the last one stopped mid-epoch)
UNINTERRUPTED_LRS = [cosine_lr(LR, (b - 1) * SECONDS_PER_BATCH / 60) for b in (4, 8, 12, 15)]


def _config(epochs: int, patience: int = 100) -> SegConfig:
    return SegConfig(
        network="SegResNet",
        network_kwargs={
            "init_filters": 2,
            "blocks_down": (1, 1),
            "blocks_up": (1,),
            "norm": ("GROUP", {"num_groups": 1}),
        },
        roi_size=[8, 8, 8],
        training=TrainingConfig(
            epochs=epochs,
            batch_size=1,
            samples_per_case=1,
            lr=LR,
            val_fraction=0.2,
            patience=patience,
            augment=False,
        ),
    )


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on 2 busy cores a tiny network runs ~15x faster than with 2."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cohort(small_cohort: CohortFactory) -> Cohort:
    """5 cases: 4 train (4 batches of 1 per epoch), 1 validation."""
    return Cohort.from_csv(small_cohort(n=5), label_map="binary")


class _Clock:
    """A fake time.perf_counter that only moves when a training batch runs."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.batches = 0
        self.crash_at: int | None = None  # raise KeyboardInterrupt in this batch

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    """Mock the train module's clock; each loss evaluation (one per batch) costs
    SECONDS_PER_BATCH seconds."""
    fake = _Clock()
    monkeypatch.setattr(train_module.time, "perf_counter", fake)
    real_loss = train_module._loss

    def timed_loss(config: SegConfig) -> Any:
        inner = real_loss(config)

        def loss(pred: Any, target: Any) -> Any:
            if fake.batches + 1 == fake.crash_at:
                raise KeyboardInterrupt
            fake.now += SECONDS_PER_BATCH
            fake.batches += 1
            return inner(pred, target)

        return loss

    monkeypatch.setattr(train_module, "_loss", timed_loss)
    yield fake


def _history(model_dir: Path) -> list[dict[str, Any]]:
    return json.loads((model_dir / "history.json").read_text())


def test_cosine_lr_endpoints() -> None:
    assert cosine_lr(LR, 0.0) == pytest.approx(LR)
    assert cosine_lr(LR, 0.5) == pytest.approx(LR / 2)
    assert cosine_lr(LR, 1.0) == pytest.approx(0.0)
    assert cosine_lr(LR, 2.0) == pytest.approx(0.0)  # past the budget: stays at the minimum


def test_progress_loading_and_per_batch(
    cohort: Cohort,
    tmp_path: Path,
    clock: _Clock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No budget: says what it loads before and after, shows every batch, shows each
    epoch's own Dice (not the previous one's), keeps the per-epoch cosine decay."""
    caplog.set_level(logging.INFO, logger="hybridrad")
    meta = train_model(cohort, tmp_path / "m", _config(epochs=2), device="cpu", progress=True)
    err = capsys.readouterr().err

    messages = [r.getMessage() for r in caplog.records]
    loading = next(i for i, m in enumerate(messages) if m.startswith("loading 4 training cases"))
    assert messages[loading + 1].startswith("loaded 4 training cases in")
    assert any(m.startswith("loading 1 validation cases") for m in messages)
    for k in range(1, 5):  # a per-case bar
        assert re.search(rf"seg-train: loading training cases: .*\| {k}/4 ", err)

    for b in range(1, 5):
        assert f"epoch 1/2, batch {b}/4" in err  # per-batch progress
    hist = _history(tmp_path / "m")
    assert [h["batches"] for h in hist] == [4, 4]
    for h in hist:  # once validated, the bar shows this epoch's Dice, not the previous one's
        e, loss, dice = h["epoch"], h["loss"], h["val_dice_mean"]
        assert f"epoch {e}/2, batch 4/4, loss {loss:.3f}, dice {dice:.3f}]" in err
    # per-epoch cosine over the configured epochs, as before: lr, then lr/2
    assert [h["lr"] for h in hist] == pytest.approx([LR, LR / 2])
    assert meta["metrics"]["stopped"] == "completed"
    assert meta["metrics"]["epochs_run"] == 2


def test_time_budget_stops_mid_epoch_lr_at_minimum(
    cohort: Cohort,
    tmp_path: Path,
    clock: _Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """1 minute at 4 s a batch: 15 batches = 3 epochs of 4 and 3 of the 4th epoch's
    batches; the schedule (planned over 50 epochs) follows the budget instead."""
    out = tmp_path / "m"
    meta = train_model(cohort, out, _config(epochs=50), device="cpu", max_minutes=1.0)
    err = capsys.readouterr().err

    assert clock.batches == 15
    m = meta["metrics"]
    assert m["stopped"] == "time budget" and m["epochs_run"] == 4
    hist = _history(out)
    assert [h["batches"] for h in hist] == [4, 4, 4, 3]  # stopped mid-epoch
    assert (out / "model.json").is_file() and (out / "model.pt").is_file()
    state = json.loads((out / "checkpoint.json").read_text())
    assert state["epoch"] == 4 and state["stopped"] == "time budget"
    assert state["elapsed_seconds"] == pytest.approx(60.0)

    # lr follows the time used (14 batches x 4 s of 60 s before the last), not 4/50 epochs
    assert [h["lr"] for h in hist] == pytest.approx(UNINTERRUPTED_LRS)
    assert hist[-1]["lr"] < 0.02 * LR  # near the minimum (0) at the budget

    # the bar follows the budget: after 5 batches (20 s of 60) it shows 33 %, not 2.5 %
    line = next(s for s in re.split(r"[\r\n]", err) if "epoch 2/50, batch 1/4," in s)
    assert re.search(r"\b33%", line), line
    assert "/1 min" in line
    assert "100%" in err  # the budget is the whole bar


def test_resume_continues_the_budget(cohort: Cohort, tmp_path: Path, clock: _Clock) -> None:
    """Killed in epoch 3 (checkpoint of epoch 2 written), resumed with the same budget:
    the first session's time counts and the schedule continues where it was, so the run
    ends as the uninterrupted one does."""
    out = tmp_path / "m"
    clock.crash_at = 10  # the 2nd batch of epoch 3
    with pytest.raises(KeyboardInterrupt):
        train_model(cohort, out, _config(epochs=50), device="cpu", progress=False, max_minutes=1)
    state = json.loads((out / "checkpoint.json").read_text())
    assert state["epoch"] == 2
    assert state["elapsed_seconds"] == pytest.approx(32.0)

    clock.crash_at, clock.batches = None, 0
    meta = train_model(
        cohort, out, _config(epochs=50), device="cpu", progress=False, max_minutes=1, resume=True
    )
    assert clock.batches == 7  # (60 s - 32 s) / 4 s
    assert meta["metrics"]["stopped"] == "time budget"
    hist = _history(out)
    assert [h["batches"] for h in hist] == [4, 4, 4, 3]
    assert [h["lr"] for h in hist] == pytest.approx(UNINTERRUPTED_LRS)

    # resumed again with the budget spent: no training, model kept, reason recorded
    clock.batches = 0
    again = train_model(
        cohort, out, _config(epochs=50), device="cpu", progress=False, max_minutes=1, resume=True
    )
    assert clock.batches == 0
    assert again["metrics"]["stopped"] == "time budget"
    assert again["metrics"]["epochs_run"] == 4


def test_early_stopping_recorded(
    cohort: Cohort, tmp_path: Path, clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    dice = iter([0.5, 0.4, 0.3, 0.2])
    monkeypatch.setattr(train_module, "evaluate_dice", lambda *a, **k: [next(dice)])
    meta = train_model(
        cohort, tmp_path / "m", _config(epochs=10, patience=2), device="cpu", progress=False
    )
    m = meta["metrics"]
    assert m["stopped"] == "early stopping"
    assert m["epochs_run"] == 3 and m["best_epoch"] == 1
    assert not math.isnan(m["val_dice_mean"])


def test_resume_from_a_checkpoint_of_the_earlier_format(
    cohort: Cohort, tmp_path: Path, clock: _Clock
) -> None:
    """Checkpoints written before the budget-driven schedule (no elapsed time, no
    schedule position, a scheduler state) still resume, on the per-epoch cosine."""
    out = tmp_path / "m"
    train_model(cohort, out, _config(epochs=1), device="cpu", progress=False)
    state = json.loads((out / "checkpoint.json").read_text())
    for key in ("elapsed_seconds", "lr_progress", "stopped"):
        del state[key]
    (out / "checkpoint.json").write_text(json.dumps(state))
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    saved["scheduler"] = {"last_epoch": 1}
    torch.save(saved, out / "checkpoint.pt")

    meta = train_model(cohort, out, _config(epochs=2), device="cpu", progress=False, resume=True)
    assert [h["lr"] for h in _history(out)] == pytest.approx([LR, LR / 2])
    assert meta["metrics"]["stopped"] == "completed" and meta["metrics"]["epochs_run"] == 2
