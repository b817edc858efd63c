"""Reliability of the cohort runner (hybridrad.runner):

1. cache entries are validated (shape, types, content hash): a damaged, edited or
   old-format entry is a miss, recomputed and rewritten, never a traceback;
2. runs sharing one cache compute each case once (per-case lock files);
3. pool workers die with their parent, SIGKILL included;
4. ``extract``, ``segment`` and ``deep-features`` killed with SIGKILL resume without
   recomputing what finished, and give the table of an uninterrupted run.

Every wait is a bounded number of polls; no assertion depends on wall-clock time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hybridrad import runner
from hybridrad.io.manifest import Case, Cohort
from hybridrad.runner import CaseOutput, ResultCache, run_cohort

REPO = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="signals and fork: POSIX only")


# --- helpers ----------------------------------------------------------------------------------


def _cohort(n: int, root: Path) -> Cohort:
    """``n`` cases ``c0``, ``c1`` ... (paths that the toy tasks below never read)."""
    ids = [f"c{i}" for i in range(n)]
    return Cohort(pd.DataFrame({"case_id": ids, "img": [f"{c}.nii.gz" for c in ids]}), root)


def _append(path: str | os.PathLike[str], line: str) -> None:
    """One line appended atomically (O_APPEND), safe from several processes at once."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@dataclass
class LoggedTask:
    """Toy task: appends ``<case_id> <pid>`` to ``log_path`` per computation, sleeps
    ``seconds``, and returns features derived from the case id (one of them NaN)."""

    log_path: str
    seconds: float = 0.0
    stage_name: str = "logged"

    def __call__(self, case: Case) -> CaseOutput:
        _append(self.log_path, f"{case.case_id} {os.getpid()}")
        time.sleep(self.seconds)
        i = int(case.case_id[1:])
        return CaseOutput(
            features={"x": i + 0.1, "n": i, "missing": math.nan},
            diagnostics={"count": np.int64(i), "label": f"case {i}"},
        )

    def cache_key(self, case: Case) -> str:
        return hashlib.sha256(f"logged|{case.case_id}".encode()).hexdigest()

    def cost(self, case: Case) -> int:
        return 0

    def plan(self) -> dict[str, Any]:
        return {}


def _computed(log_path: Path) -> list[str]:
    """Case ids in the order the task computed them."""
    if not log_path.is_file():
        return []
    return [line.split()[0] for line in log_path.read_text().splitlines() if line]


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.json"))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").is_file():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """A Python child running ``code`` from the repository root (``tests`` importable)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, **kwargs)


def _poll(condition: Callable[[], bool], polls: int, every: float) -> bool:
    """True as soon as ``condition()`` holds, False after ``polls`` tries."""
    for _ in range(polls):
        if condition():
            return True
        time.sleep(every)
    return condition()


# --- 1. validated cache entries ---------------------------------------------------------------


def test_entry_round_trips_with_its_content_hash(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    out = CaseOutput(
        features={"b": 2.5, "a": 1, "nan": math.nan, "big": 1e300},
        diagnostics={"n": np.int64(3), "x": np.float32(0.5), "shape": np.arange(3), "p": tmp_path},
    )
    cache.put("ab12", out)
    data = json.loads((tmp_path / "ab" / "ab12.json").read_text())
    assert len(data["sha256"]) == 64
    got = cache.get("ab12")
    assert got is not None
    assert list(got.features) == ["b", "a", "nan", "big"]  # column order kept
    assert got.features["b"] == 2.5 and got.features["a"] == 1 and math.isnan(got.features["nan"])
    # numpy values come back as numbers and lists, not as their text
    assert got.diagnostics == {"n": 3, "x": 0.5, "shape": [0, 1, 2], "p": str(tmp_path)}


def _good_entry() -> dict[str, Any]:
    features, diagnostics = {"f1": 1.5, "f2": 2.0}, {"d": "x"}
    return {
        "features": features,
        "diagnostics": diagnostics,
        "sha256": runner._content_hash(features, diagnostics),
    }


def _with(**changes: Any) -> str:
    entry = _good_entry()
    entry.update(changes)
    return json.dumps(entry)


def _edited_value() -> str:
    entry = _good_entry()
    entry["features"]["f1"] = 1.75  # hash of the old value kept: an edit
    return json.dumps(entry)


DAMAGED: dict[str, tuple[str, int]] = {
    "null": ("null", logging.WARNING),
    "empty list": ("[]", logging.WARNING),
    "string": ('"features"', logging.WARNING),
    "number": ("3", logging.WARNING),
    "not JSON": ("{not json", logging.WARNING),
    "truncated": (_with()[:25], logging.WARNING),
    "empty file": ("", logging.WARNING),
    "features null": (_with(features=None), logging.WARNING),
    "features a list": (_with(features=[1.0, 2.0]), logging.WARNING),
    "value a string": (_with(features={"f1": "1.5", "f2": 2.0}), logging.WARNING),
    "value null": (_with(features={"f1": None, "f2": 2.0}), logging.WARNING),
    "value a bool": (_with(features={"f1": True, "f2": 2.0}), logging.WARNING),
    "value a list": (_with(features={"f1": [1.5], "f2": 2.0}), logging.WARNING),
    "diagnostics a list": (_with(diagnostics=[]), logging.WARNING),
    "diagnostics missing": (
        json.dumps({"features": {"f1": 1.5}, "sha256": "0" * 64}),
        logging.WARNING,
    ),
    "edited value": (_edited_value(), logging.WARNING),
    "hash a number": (_with(sha256=5), logging.WARNING),
    "deeply nested": ("[" * 100_000 + "]" * 100_000, logging.WARNING),
    "older version (no hash)": (
        json.dumps({"features": {"f1": 1.5}, "diagnostics": {}}),
        logging.INFO,
    ),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_entry_is_a_miss_with_one_log_line(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text, level = DAMAGED[name]
    cache = ResultCache(tmp_path)
    path = tmp_path / "ab" / "ab12.json"
    path.parent.mkdir()
    path.write_text(text)
    with caplog.at_level(logging.INFO, logger="hybridrad.runner"):
        assert cache.get("ab12") is None  # never raises
    lines = [r for r in caplog.records if r.name == "hybridrad.runner"]
    assert len(lines) == 1 and lines[0].levelno == level
    assert str(path) in lines[0].getMessage() and "recomputed" in lines[0].getMessage()


def test_good_entry_passes_and_binary_garbage_does_not_raise(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    path = tmp_path / "ab" / "ab12.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_good_entry()))
    got = cache.get("ab12")
    assert got is not None and got.features == {"f1": 1.5, "f2": 2.0}
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert cache.get("ab12") is None
    path.unlink()
    path.mkdir()  # a folder where the entry should be
    assert cache.get("ab12") is None


def test_output_the_cache_could_not_return_is_not_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ResultCache(tmp_path)
    bad: dict[str, Any] = {"f": "text"}
    cache.put("ab12", CaseOutput(features=bad))
    assert not _entries(tmp_path)
    assert "not caching ab12" in caplog.text


def test_damaged_entries_are_recomputed_and_rewritten(tmp_path: Path) -> None:
    """The defects of the issue, end to end: entries holding ``null`` or ``[]``, a value
    replaced by a string and a silently edited value. Each such case is recomputed (not
    the others), the result equals a clean run, and the entries are whole again."""
    cohort = _cohort(6, tmp_path)
    log_path, cache_dir = tmp_path / "calls.log", tmp_path / "cache"
    task = LoggedTask(str(log_path))
    first = run_cohort(cohort, task, cache_dir=cache_dir)
    assert (first.n_cached, first.n_computed) == (0, 6)
    path = {c.case_id: ResultCache(cache_dir)._path(task.cache_key(c)) for c in cohort}
    path["c0"].write_text("null")
    path["c1"].write_text("[]")
    entry = json.loads(path["c2"].read_text())
    entry["features"]["x"] = "2.1"
    path["c2"].write_text(json.dumps(entry))
    entry = json.loads(path["c3"].read_text())
    entry["features"]["x"] = 99.0
    path["c3"].write_text(json.dumps(entry))
    log_path.unlink()

    again = run_cohort(cohort, task, cache_dir=cache_dir)
    assert (again.n_cached, again.n_computed) == (2, 4)
    assert sorted(_computed(log_path)) == ["c0", "c1", "c2", "c3"]
    pd.testing.assert_frame_equal(again.features, first.features)
    assert again.features.loc["c3", "x"] == 3.1
    log_path.unlink()
    third = run_cohort(cohort, task, cache_dir=cache_dir)  # all rewritten, all served
    assert (third.n_cached, third.n_computed) == (6, 0) and not _computed(log_path)
    pd.testing.assert_frame_equal(third.features, first.features)


# --- 2. one computation per case across runs sharing a cache --------------------------------


def _shared_cache_child(argv: list[str]) -> None:
    """Child process of the shared-cache test: waits for the go file, runs the cohort,
    writes its result. ``argv``: folder, name, jobs, n_cases."""
    folder, name, jobs, n = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    logging.basicConfig(level=logging.INFO)
    (folder / f"ready-{name}").touch()
    if not _poll((folder / "go").is_file, polls=6000, every=0.01):
        raise SystemExit("no go")
    task = LoggedTask(str(folder / "calls.log"), seconds=0.3)
    result = run_cohort(_cohort(n, folder), task, jobs=jobs, cache_dir=folder / "cache")
    result.features.to_csv(folder / f"features-{name}.csv")
    counts = {"n_cached": result.n_cached, "n_computed": result.n_computed}
    (folder / f"counts-{name}.json").write_text(json.dumps(counts))


@posix_only
def test_two_runs_sharing_a_cache_compute_each_case_once(tmp_path: Path) -> None:
    """Two processes (one in-process, one with a local pool of 2) start together on the
    same 8 cases and cache: every case is computed exactly once across both, each run
    reads the other's cases from the cache, and both give the same table."""
    n = 8
    code = (
        "import sys; from tests.test_runner_hardening import _shared_cache_child; "
        "_shared_cache_child(sys.argv[1:])"
    )
    stderr = {name: (tmp_path / f"stderr-{name}.txt").open("wb") for name in ("a", "b")}
    procs = {
        "a": _python(code, str(tmp_path), "a", "1", str(n), stderr=stderr["a"]),
        "b": _python(code, str(tmp_path), "b", "2", str(n), stderr=stderr["b"]),
    }
    try:
        ready = _poll(
            lambda: all((tmp_path / f"ready-{k}").is_file() for k in procs), polls=1200, every=0.05
        )
        assert ready, "the children did not start"
        (tmp_path / "go").touch()
        codes = {k: p.wait(timeout=300) for k, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        for f in stderr.values():
            f.close()
    errors = {k: (tmp_path / f"stderr-{k}.txt").read_text()[-3000:] for k in procs}
    assert codes == {"a": 0, "b": 0}, errors
    computed = Counter(_computed(tmp_path / "calls.log"))
    assert computed == Counter({f"c{i}": 1 for i in range(n)}), computed
    counts = {k: json.loads((tmp_path / f"counts-{k}.json").read_text()) for k in procs}
    assert all(c["n_cached"] + c["n_computed"] == n for c in counts.values()), counts
    assert sum(c["n_computed"] for c in counts.values()) == n, counts
    a = pd.read_csv(tmp_path / "features-a.csv", index_col=0)
    b = pd.read_csv(tmp_path / "features-b.csv", index_col=0)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == [f"c{i}" for i in range(n)]


class _OtherRun:
    """Stands for another run holding the lock of case ``c0``: the task, computing
    ``c1`` (by then ``c0`` was deferred), makes it finish (``writes=True``: entry written)
    or fail (no entry) and let go of the lock."""

    def __init__(self, cache_dir: Path, key: str, writes: bool) -> None:
        self.cache = ResultCache(cache_dir)
        self.key = key
        self.lock = self.cache.lock(self.key)
        self.lock.acquire(timeout=0)
        self.writes = writes

    def finish(self) -> None:
        if self.writes:
            self.cache.put(self.key, CaseOutput(features={"x": 0.1, "n": 0, "missing": math.nan}))
        self.lock.release()


@dataclass
class _FinishesOther(LoggedTask):
    other: _OtherRun | None = None

    def __call__(self, case: Case) -> CaseOutput:
        if case.case_id == "c1" and self.other is not None:
            self.other.finish()
        return super().__call__(case)


@pytest.mark.parametrize("writes", [True, False], ids=["other-run-finished", "other-run-failed"])
def test_case_held_by_another_run_is_read_or_computed_after_it(
    writes: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "LOCK_POLL_S", 0.01)
    cohort, cache_dir, log_path = _cohort(3, tmp_path), tmp_path / "cache", tmp_path / "calls.log"
    task = _FinishesOther(str(log_path))
    task.other = _OtherRun(cache_dir, task.cache_key(cohort.cases[0]), writes)
    with caplog.at_level(logging.INFO, logger="hybridrad.runner"):
        result = run_cohort(cohort, task, cache_dir=cache_dir)
    assert result.ok and list(result.features.index) == ["c0", "c1", "c2"]
    if writes:  # c0 read from the other run's entry, never computed here
        assert _computed(log_path) == ["c1", "c2"]
        assert (result.n_cached, result.n_computed) == (1, 2)
    else:  # the other run failed: c0 computed here, after the others
        assert _computed(log_path) == ["c1", "c2", "c0"]
        assert (result.n_cached, result.n_computed) == (0, 3)
        assert "not finished by the other run" in caplog.text
    assert ResultCache(cache_dir).get(task.other.key) is not None


def test_a_lock_held_too_long_is_overridden(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that holds a case for longer than WAIT_FOR_OTHER_RUN_S (hung) does not stop
    this one: the case is computed here, with a warning."""
    monkeypatch.setattr(runner, "LOCK_POLL_S", 0.01)
    monkeypatch.setattr(runner, "WAIT_FOR_OTHER_RUN_S", 0.0)
    cohort, cache_dir, log_path = _cohort(2, tmp_path), tmp_path / "cache", tmp_path / "calls.log"
    task = LoggedTask(str(log_path))
    held = ResultCache(cache_dir).lock(task.cache_key(cohort.cases[0]))
    held.acquire(timeout=0)
    try:
        result = run_cohort(cohort, task, cache_dir=cache_dir)
    finally:
        held.release()
    assert result.ok and sorted(_computed(log_path)) == ["c0", "c1"]
    assert "still locked by another run" in caplog.text


@posix_only
def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    """flock locks go with their process: a run killed by SIGKILL blocks nobody."""
    code = (
        "import sys, time; from hybridrad.runner import ResultCache; "
        "lock = ResultCache(sys.argv[1]).lock('ab12'); lock.acquire(); "
        "print('held', flush=True); time.sleep(300)"
    )
    proc = _python(code, str(tmp_path), stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
        mine = ResultCache(tmp_path).lock("ab12")
        from filelock import Timeout

        with pytest.raises(Timeout):
            mine.acquire(timeout=0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        mine.acquire(timeout=0)
        mine.release()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_dask_run_defers_a_held_case_and_reads_it_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a Dask cluster the locks are taken by the submitting process: a case another
    run holds is not submitted, and is read from the cache once that run is done."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(runner, "LOCK_POLL_S", 0.01)
    cohort, cache_dir, log_path = _cohort(4, tmp_path), tmp_path / "cache", tmp_path / "calls.log"
    task = LoggedTask(str(log_path))
    other = _OtherRun(cache_dir, task.cache_key(cohort.cases[0]), writes=True)

    def finish_when_the_rest_is_done() -> None:
        if _poll(lambda: len(_computed(log_path)) >= 3, polls=6000, every=0.01):
            time.sleep(0.2)
        other.finish()

    import threading

    thread = threading.Thread(target=finish_when_the_rest_is_done, daemon=True)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        thread.start()
        result = run_cohort(cohort, task, scheduler=cluster.scheduler_address, cache_dir=cache_dir)
    thread.join()
    assert result.ok and (result.n_cached, result.n_computed) == (1, 3)
    assert sorted(_computed(log_path)) == ["c1", "c2", "c3"]


# --- 3. workers die with their parent ---------------------------------------------------------


@dataclass
class BlockingTask:
    """Toy task: records its worker's pid in ``pid_dir`` and blocks."""

    pid_dir: str
    stage_name: str = "blocking"

    def __call__(self, case: Case) -> CaseOutput:
        (Path(self.pid_dir) / str(os.getpid())).touch()
        time.sleep(300)
        return CaseOutput(features={})

    def cache_key(self, case: Case) -> str:
        return hashlib.sha256(case.case_id.encode()).hexdigest()

    def cost(self, case: Case) -> int:
        return 0

    def plan(self) -> dict[str, Any]:
        return {}


def _pool_child(argv: list[str]) -> None:
    """Child process: a 2-worker pool on blocking cases. ``argv``: folder, fallback."""
    folder, fallback = Path(argv[0]), argv[1] == "thread"
    if fallback:  # as on a system without prctl: the polling thread
        runner._set_pdeathsig = lambda: False
    pid_dir = folder / "pids"
    pid_dir.mkdir()
    run_cohort(_cohort(4, folder), BlockingTask(str(pid_dir)), jobs=2, cache_dir=folder / "cache")


@posix_only
@pytest.mark.parametrize("mechanism", ["pdeathsig", "thread"])
def test_pool_workers_die_when_the_parent_is_killed(mechanism: str, tmp_path: Path) -> None:
    if mechanism == "pdeathsig" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    code = (
        "import sys; from tests.test_runner_hardening import _pool_child; _pool_child(sys.argv[1:])"
    )
    err = (tmp_path / "stderr.txt").open("wb")
    proc = _python(code, str(tmp_path), mechanism, stderr=err)
    pid_dir = tmp_path / "pids"
    workers: list[int] = []
    try:
        started = _poll(
            lambda: (
                (pid_dir.is_dir() and len(list(pid_dir.iterdir())) >= 2) or proc.poll() is not None
            ),
            polls=1200,
            every=0.05,
        )
        assert started and proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
        workers = [int(p.name) for p in pid_dir.iterdir()]
        assert len(workers) == 2 and all(_alive(w) for w in workers)
        proc.send_signal(signal.SIGKILL)  # the parent only
        proc.wait(timeout=60)
        # PR_SET_PDEATHSIG acts at once; the fallback thread looks once a second
        assert _poll(lambda: not any(_alive(w) for w in workers), polls=50, every=0.1), workers
    finally:
        for pid in [proc.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
        err.close()


@posix_only
def test_worker_of_an_already_dead_parent_exits() -> None:
    """The race: the parent died before the worker armed its signal. The worker sees a
    parent other than the expected one and exits."""
    code = "from hybridrad.runner import die_with_parent; die_with_parent(0); print('survived')"
    proc = _python(code, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and b"survived" not in out


# --- 4. SIGKILL and resume, through the real command line ------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic four-sequence cases (64^3 voxels of 3 mm) with BraTS labels."""
    from hybridrad.datasets.synthetic import make_synthetic_cohort

    return make_synthetic_cohort(tmp_path_factory.mktemp("syn"), n_cases=6, seed=0).manifest_path


N_CASES = 6


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """In-process runs use one torch thread, as the child processes do: the same float
    results, bit for bit."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _kill_after_first_entry(argv: list[str], cache: Path, log: Path) -> int:
    """Run ``hybridrad ARGV`` in a child process, SIGKILL it as soon as one case is in
    ``cache``, and return the number of finished cases (cache entries) at that point."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybridrad", *argv],
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
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    n = len(_entries(cache))
    assert 1 <= n < N_CASES, n  # killed with work done and work left
    return n


def _resume_and_compare(
    argv: Callable[[Path, Path], list[str]],
    tmp_path: Path,
    table: str,
) -> tuple[Path, Path]:
    """Uninterrupted run in ``tmp_path/ref``; a run killed after its first finished case
    in ``tmp_path/run``, then resumed. The resumed run's table equals the reference and
    computes only what the killed run had not finished. Returns both output folders."""
    from hybridrad.cli import main

    ref, run = tmp_path / "ref", tmp_path / "run"
    assert main(argv(ref, ref / "cache")) == 0
    cache = run / "cache"
    n_done = _kill_after_first_entry(argv(run, cache), cache, tmp_path / "killed.stderr")
    assert main(argv(run, cache)) == 0
    name = table[: -len(".parquet")]
    provenance = json.loads((run / f"{name}.provenance.json").read_text())
    assert (provenance["n_cached"], provenance["n_computed"]) == (n_done, N_CASES - n_done)
    assert provenance["n_failed"] == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(run / table), pd.read_parquet(ref / table), check_exact=True
    )
    assert len(_entries(cache)) == N_CASES
    return ref, run


@posix_only
def test_extract_killed_resumes_without_recomputing(synthetic: Path, tmp_path: Path) -> None:
    def argv(out: Path, cache: Path) -> list[str]:
        return [
            "extract", str(synthetic), "--config", "mri_glioma_fast", "--labels", "brats",
            "--sequences", "t1c,flair", "--out", str(out / "features.parquet"),
            "--cache-dir", str(cache), "--no-progress",
        ]  # fmt: skip

    _resume_and_compare(argv, tmp_path, "features.parquet")


@posix_only
def test_segment_killed_resumes_without_recomputing(
    synthetic: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    pytest.importorskip("monai")

    def argv(out: Path, cache: Path) -> list[str]:
        return [
            "segment", str(synthetic), "--model", "synthetic-brats", "--labels", "brats",
            "--device", "cpu", "--out", str(out), "--cache-dir", str(cache), "--no-progress",
        ]  # fmt: skip

    ref, run = _resume_and_compare(argv, tmp_path, "volumes.parquet")
    masks = sorted(p.name for p in (ref / "masks").iterdir())
    assert len(masks) == N_CASES
    for name in masks:
        assert (run / "masks" / name).read_bytes() == (ref / "masks" / name).read_bytes()


@posix_only
def test_deep_features_killed_resumes_without_recomputing(
    synthetic: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """The per-case path (``--batch-size 1``) with the default encoder (the shipped
    segmentation model's), on 96^3 patches so that a case takes a moment."""
    pytest.importorskip("monai")
    from hybridrad.features.encoders import EncoderError, resolve_encoder

    try:
        resolve_encoder(None)
    except EncoderError as exc:
        pytest.skip(f"no default encoder: {exc}")

    def argv(out: Path, cache: Path) -> list[str]:
        return [
            "deep-features", str(synthetic), "--labels", "brats", "--device", "cpu",
            "--batch-size", "1", "--threads", "1", "--patch-size", "96",
            "--out", str(out / "deep.parquet"), "--cache-dir", str(cache), "--no-progress",
        ]  # fmt: skip

    _resume_and_compare(argv, tmp_path, "deep.parquet")
