"""The cohort runner: one per-case task over a cohort, locally or on Dask.

Written once and reused by every batch stage (radiomics, deep features, segmentation).
A *task* is a picklable callable ``task(case) -> CaseOutput`` with three more methods:
``cache_key(case)`` (content-addressed), ``cost(case)`` (to start the largest cases
first) and ``plan()`` (what besides the inputs decides the output).

Behaviour:

- every finished case is cached (one JSON file, written atomically, with the sha256 of
  its content) under ``cache_dir``, keyed by the task's ``cache_key``; a rerun or a
  resumed run recomputes nothing that finished. An entry that is damaged, edited, of the
  wrong shape or from before the content hash counts as absent: that case is recomputed
  and its entry rewritten. A task that writes files besides its result (masks) may
  define ``verify_cached(case, output) -> bool``: a cache hit it rejects (file deleted or
  changed since) is recomputed;
- runs sharing one ``cache_dir`` (two commands, two machines on a shared folder) never
  compute the same case twice: a case is computed under a per-case lock file next to its
  entry; a case another run holds is left to it and read from the cache once it is done
  (or computed here if that run failed on it). The locks are ``flock`` locks, released
  by the kernel when their process dies, so a killed run blocks nothing;
- local pool workers die with the process that started them (``die_with_parent``), so
  killing a run never leaves workers behind;
- a failing case becomes a row of the failures table (case, stage, exception type,
  message) while the others go on;
- backends: in-process (``jobs=1``), a local process pool (``jobs>1``; SimpleITK and BLAS
  set to one thread per worker), or a Dask distributed cluster (``scheduler=``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import numbers
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from hybridrad.io.manifest import CASE_ID, Case, Cohort

log = logging.getLogger(__name__)

FAILURE_COLUMNS = [CASE_ID, "stage", "exception", "message"]
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)
#: How long a run waits for a case that another run (sharing the cache) is computing
#: before it computes that case itself.
WAIT_FOR_OTHER_RUN_S = 2 * 3600.0
#: Seconds between checks of the locks of cases another run is computing.
LOCK_POLL_S = 0.2


@dataclass
class CaseOutput:
    """What a task returns for one case: model inputs and provenance, kept apart."""

    features: dict[str, float]
    diagnostics: dict[str, Any] = field(default_factory=dict)


class CaseTask(Protocol):
    """The interface the runner needs from a per-case job."""

    stage_name: str

    def __call__(self, case: Case) -> CaseOutput: ...

    def cache_key(self, case: Case) -> str: ...

    def cost(self, case: Case) -> int: ...

    def plan(self) -> dict[str, Any]: ...


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Label exceptions raised inside with the pipeline stage they came from."""
    try:
        yield
    except Exception as exc:
        if not hasattr(exc, "hybridrad_stage"):
            exc.hybridrad_stage = name  # type: ignore[attr-defined]
        raise


@dataclass
class CohortResult:
    """Tables produced by a cohort run, each indexed or keyed by ``case_id``."""

    features: pd.DataFrame
    diagnostics: pd.DataFrame
    failures: pd.DataFrame
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no case failed."""
        return self.failures.empty

    def save(self, out: str | os.PathLike[str], provenance: Mapping[str, Any]) -> dict[str, Path]:
        """Write ``out`` (features, Parquet) and its siblings: ``*.diagnostics.parquet``,
        ``*.failures.csv`` and ``*.provenance.json``. Every write is atomic."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        stem = out.name[: -len(out.suffix)] if out.suffix else out.name
        paths = {
            "features": out,
            "diagnostics": out.with_name(f"{stem}.diagnostics.parquet"),
            "failures": out.with_name(f"{stem}.failures.csv"),
            "provenance": out.with_name(f"{stem}.provenance.json"),
        }
        _atomic(paths["features"], lambda p: self.features.to_parquet(p))
        diagnostics = parquet_safe(self.diagnostics)
        _atomic(paths["diagnostics"], lambda p: diagnostics.to_parquet(p))
        _atomic(paths["failures"], lambda p: self.failures.to_csv(p, index=False))
        record = {
            **provenance,
            "n_cases": len(self.features) + len(self.failures),
            "n_failed": len(self.failures),
            "n_cached": self.n_cached,
            "n_computed": self.n_computed,
            "features": {"rows": len(self.features), "columns": self.features.shape[1]},
        }
        _atomic(
            paths["provenance"],
            lambda p: Path(p).write_text(json.dumps(record, indent=2, default=str)),
        )
        return paths


def parquet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy Parquet can store: numeric and boolean columns stay as they are, a column
    of numbers (and missing values) becomes ``float64``, every other value becomes text
    (missing values stay missing).

    Examples
    --------
    >>> t = pd.DataFrame({"s": [1.5, 2], "p": ["a", None], "d": [{"k": 1}, None]})
    >>> parquet_safe(t).dtypes.astype(str).tolist()
    ['float64', 'object', 'object']
    >>> parquet_safe(t)["d"].tolist()
    ["{'k': 1}", None]
    """
    out = table.copy()
    for col in out.columns:
        column = out[col]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        present = column[column.notna()]
        if len(present) and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present
        ):
            out[col] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            out[col] = column.map(lambda v: None if _missing(v) else str(v)).astype(object)
    return out


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # lists, arrays, dicts
        return False


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


class ResultCache:
    """One JSON file per finished case, content-addressed by the task's cache key.

    An entry holds ``features`` (name -> number), ``diagnostics`` (name -> JSON value)
    and ``sha256``, the hash of the canonical JSON of the two. :meth:`get` checks shape,
    types and hash: anything else (unreadable, edited, truncated, written before the
    hash existed) counts as absent, with one log line naming the file, and the next
    :meth:`put` for that key replaces it.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def lock(self, key: str) -> Any:
        """The inter-process lock of ``key`` (a ``filelock.FileLock`` on ``<key>.lock``
        beside the entry; not yet acquired). The runner holds it while computing the case,
        so that runs sharing this cache compute each case once."""
        from filelock import FileLock

        path = self.folder / key[:2] / f"{key}.lock"
        path.parent.mkdir(exist_ok=True)
        return FileLock(path, thread_local=False)

    def stamp(self, key: str) -> tuple[int, int] | None:
        """``(mtime_ns, size)`` of the entry, ``None`` when there is none: a cheap way to
        tell whether the entry changed since it was last read."""
        try:
            st = self._path(key).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def get(self, key: str) -> CaseOutput | None:
        """The cached output for ``key``, or ``None``: no entry, or one that is damaged,
        of the wrong shape, edited (content hash mismatch) or from an older version.
        Never raises."""
        path = self._path(key)
        try:
            if not path.is_file():
                return None
            data = json.loads(path.read_text())
            problem = _entry_problem(data)
        except Exception as exc:  # unreadable, not JSON, too deeply nested ...
            problem = f"is unreadable ({type(exc).__name__})"
        if problem is None:
            return CaseOutput(
                features=dict(data["features"]), diagnostics=dict(data["diagnostics"])
            )
        level = logging.INFO if problem == _NO_HASH else logging.WARNING
        log.log(level, "cache entry %s %s; its case will be recomputed", path, problem)
        return None

    def put(self, key: str, output: CaseOutput) -> None:
        """Store ``output`` with its content hash, atomically (temp file, then rename).

        An output the cache could not give back (a feature that is no number) is not
        stored; a warning says so."""
        body = json.loads(
            json.dumps(
                {"features": output.features, "diagnostics": output.diagnostics},
                default=_json_default,
            )
        )
        body["sha256"] = _content_hash(body["features"], body["diagnostics"])
        problem = _entry_problem(body)
        if problem is not None:
            log.warning("not caching %s: the output %s", key, problem)
            return
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        payload = json.dumps(body)
        _atomic(path, lambda p: Path(p).write_text(payload))


_NO_HASH = "has no content hash (written by an older version)"


def _json_default(value: Any) -> Any:
    """JSON form of what ``json`` does not know: numpy scalars and arrays as numbers and
    lists, anything else as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _content_hash(features: Any, diagnostics: Any) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace; NaN as ``NaN``)."""
    text = json.dumps(
        {"features": features, "diagnostics": diagnostics},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _entry_problem(data: Any) -> str | None:
    """What is wrong with a parsed cache entry, ``None`` when it is sound."""
    if not isinstance(data, dict):
        return f"is not a JSON object (a {type(data).__name__})"
    features, diagnostics = data.get("features"), data.get("diagnostics")
    if not isinstance(features, dict):
        return f"has no feature mapping ('features' is a {type(features).__name__})"
    for name, value in features.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"has a feature that is no number ({name!r}: {value!r:.40})"
    if not isinstance(diagnostics, dict):
        return f"has no diagnostics mapping ('diagnostics' is a {type(diagnostics).__name__})"
    recorded = data.get("sha256")
    if recorded is None:
        return _NO_HASH
    if recorded != _content_hash(features, diagnostics):
        return "does not match its content hash (edited or damaged)"
    return None


@dataclass
class _Outcome:
    case_id: str
    output: CaseOutput | None
    failure: dict[str, str] | None


def _run_one(task: CaseTask, case: Case) -> _Outcome:
    """Run ``task`` on one case, turning an exception into a failure record."""
    try:
        start = time.perf_counter()
        output = task(case)
        output.diagnostics["runner__seconds"] = round(time.perf_counter() - start, 3)
        output.diagnostics["runner__peak_rss_mb"] = round(_peak_rss_mb(), 1)
        return _Outcome(case.case_id, output, None)
    except Exception as exc:  # a failing case must never stop the cohort
        log.debug("case %s failed:\n%s", case.case_id, traceback.format_exc())
        return _Outcome(
            case.case_id,
            None,
            {
                CASE_ID: case.case_id,
                "stage": f"{task.stage_name}:{getattr(exc, 'hybridrad_stage', 'run')}",
                "exception": type(exc).__name__,
                "message": str(exc).strip(),
            },
        )


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (0 where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if os.uname().sysname != "Darwin" else peak / 2**20


def limit_threads() -> None:
    """One thread per worker process (SimpleITK, OpenMP, BLAS): the pool provides the
    parallelism."""
    for var in THREAD_ENV:
        os.environ[var] = "1"
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this (worker) process end when ``parent_pid`` ends, however it ends (SIGKILL
    included), so that killing a run leaves no worker behind holding memory.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``); should
    the parent be gone already (it died before this call), the process exits at once.
    Elsewhere a daemon thread checks the parent once a second. Call it first thing in a
    worker, with the parent's pid taken in the parent (``os.getpid()`` before the worker
    starts); ``None`` takes this process's current parent.
    """
    expected = os.getppid() if parent_pid is None else parent_pid
    if sys.platform.startswith("linux") and _set_pdeathsig():
        if os.getppid() != expected:  # the parent died before the signal was armed
            os._exit(1)
        return
    if os.getppid() != expected:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != expected:
                if hasattr(signal, "SIGKILL"):
                    os.kill(os.getpid(), signal.SIGKILL)
                os._exit(1)  # pragma: no cover - Windows

    threading.Thread(target=watch, name="hybridrad-die-with-parent", daemon=True).start()


def _set_pdeathsig() -> bool:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)``; False where it is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return int(libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - unusual libc
        return False


def init_worker(parent_pid: int | None = None) -> None:
    """Set up a local worker process: one thread (:func:`limit_threads`) and death with
    its parent (:func:`die_with_parent`; ``parent_pid`` taken in the parent, ``None``:
    this process's current parent)."""
    die_with_parent(parent_pid)
    limit_threads()


class _Backend(Protocol):
    """Where cases run: ``submit`` starts one, ``next_done`` waits for any to finish."""

    capacity: int

    def submit(self, case: Case) -> None: ...

    def next_done(self) -> _Outcome: ...

    def close(self) -> None: ...


class _InProcess:
    """``jobs=1``: cases run in this process, one at a time, when their result is asked."""

    capacity = 1

    def __init__(self, task: CaseTask) -> None:
        self.task = task
        self.queue: deque[Case] = deque()

    def submit(self, case: Case) -> None:
        self.queue.append(case)

    def next_done(self) -> _Outcome:
        return _run_one(self.task, self.queue.popleft())

    def close(self) -> None:
        self.queue.clear()


def _start_method() -> str:
    """How worker processes start: ``fork`` (fast) unless torch is loaded here.

    A process whose torch has run a multi-threaded operation cannot be forked safely: the
    child inherits a broken OpenMP thread pool and hangs in its first convolution (seen
    with ``hybridrad run``: deep features in-process, then a segmentation pool). Then the
    workers come from a ``forkserver``, a clean process started for the purpose.
    """
    if os.name != "posix":
        return "spawn"
    return "forkserver" if "torch" in sys.modules else "fork"


class _LocalPool:
    """``jobs>1``: a process pool whose workers die with this process."""

    def __init__(self, task: CaseTask, jobs: int) -> None:
        import multiprocessing as mp

        method = _start_method()
        # A forkserver's workers are its children: they die with it, and it ends when
        # this process does (its pipe from here closes).
        parent = None if method == "forkserver" else os.getpid()
        self.task = task
        self.capacity = jobs
        self.pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=mp.get_context(method),
            initializer=init_worker,
            initargs=(parent,),
        )
        self.futures: set[Future[_Outcome]] = set()

    def submit(self, case: Case) -> None:
        self.futures.add(self.pool.submit(_run_one, self.task, case))

    def next_done(self) -> _Outcome:
        finished, _ = wait(self.futures, return_when=FIRST_COMPLETED)
        fut = next(iter(finished))
        self.futures.discard(fut)
        return fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Dask:
    """``scheduler=``: a Dask distributed cluster (cases keep the largest-first order)."""

    def __init__(self, task: CaseTask, scheduler: Any) -> None:
        try:
            from distributed import Client, as_completed
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the Dask backend needs 'distributed': pip install 'hybridrad[radiomics]'"
            ) from exc
        self.task = task
        self.own = not isinstance(scheduler, Client)
        self.client = Client(scheduler) if self.own else scheduler
        self.client.run(limit_threads)
        threads = sum(self.client.nthreads().values())
        self.capacity = max(2, 2 * threads)  # a queue on every worker thread
        self.completed = as_completed()
        self.submitted = 0

    def submit(self, case: Case) -> None:
        fut = self.client.submit(_run_one, self.task, case, pure=False, priority=-self.submitted)
        self.submitted += 1
        self.completed.add(fut)

    def next_done(self) -> _Outcome:
        outcome: _Outcome = next(self.completed).result()
        return outcome

    def close(self) -> None:
        if self.own:
            self.client.close()


def _backend(task: CaseTask, jobs: int, scheduler: Any) -> _Backend:
    if scheduler is not None:
        return _Dask(task, scheduler)
    if jobs > 1:
        return _LocalPool(task, jobs)
    return _InProcess(task)


@dataclass
class CaseLocks:
    """The per-case locks of a shared cache (:meth:`ResultCache.lock`), as this run holds
    them: :meth:`claim` takes a case's lock without waiting, :meth:`release` lets it go.

    Used by the runner and by the batched deep-feature path, so that every run sharing a
    cache computes each case once. Without a cache (or a key) every case is taken.
    """

    cache: ResultCache | None
    keys: Mapping[str, str]
    stamps: Mapping[str, tuple[int, int] | None] = field(default_factory=dict)
    task: CaseTask | None = None
    held: dict[str, Any] = field(default_factory=dict)

    def claim(self, case: Case) -> CaseOutput | bool:
        """Try to take ``case``: True (taken: compute it), False (another run holds it)
        or its output (the entry was written since the first lookup)."""
        key = self.keys.get(case.case_id)
        if self.cache is None or key is None:
            return True
        try:
            lock = self.cache.lock(key)
            lock.acquire(timeout=0)
        except Exception as exc:  # filelock.Timeout: held by another run
            from filelock import Timeout

            if isinstance(exc, Timeout):
                return False
            log.warning("cannot lock case %s (%s); computing it unlocked", case.case_id, exc)
            return True
        if self.cache.stamp(key) != self.stamps.get(case.case_id):
            hit = self.cache.get(key)
            if hit is not None and (self.task is None or _still_valid(self.task, case, hit)):
                lock.release()
                return hit
        self.held[case.case_id] = lock
        return True

    def release(self, case_id: str) -> None:
        lock = self.held.pop(case_id, None)
        if lock is not None:
            with contextlib.suppress(Exception):
                lock.release()

    def release_all(self) -> None:
        for case_id in list(self.held):
            self.release(case_id)


@dataclass
class _Scheduler(CaseLocks):
    """Runs the cases a cache lookup left over, holding each one's lock while it is
    computed; cases another run holds are deferred and picked up from the cache when
    that run lets go of them.

    Yields ``(outcome, from_cache)``: computed here, or found in the cache once the run
    that held the case was done with it.
    """

    def run(self, cases: list[Case], backend: _Backend) -> Iterator[tuple[_Outcome, bool]]:
        pending = deque(cases)
        deferred: dict[str, Case] = {}
        since: dict[str, float] = {}
        in_flight = 0
        capacity = backend.capacity if self.cache is not None else max(len(cases), 1)
        while pending or deferred or in_flight:
            while pending and in_flight < capacity:  # this run's cases first
                case = pending.popleft()
                got = self.claim(case)
                if got is False:
                    deferred[case.case_id] = case
                elif got is True:
                    backend.submit(case)
                    in_flight += 1
                else:
                    yield _Outcome(case.case_id, got, None), True
            if not pending and in_flight < capacity:  # then those another run let go of
                for case_id, case in list(deferred.items()):
                    if in_flight >= capacity:
                        break
                    got = self.claim(case)
                    if got is False:
                        continue
                    del deferred[case_id]
                    if got is True:
                        log.info("case %s: not finished by the other run; computing it", case_id)
                        backend.submit(case)
                        in_flight += 1
                    else:
                        yield _Outcome(case_id, got, None), True
            if in_flight:
                outcome = backend.next_done()
                in_flight -= 1
                key = self.keys.get(outcome.case_id)
                if outcome.output is not None and self.cache is not None and key is not None:
                    self.cache.put(key, outcome.output)  # written before the lock goes
                self.release(outcome.case_id)
                yield outcome, False
            elif deferred:
                now = time.monotonic()
                for case_id, case in list(deferred.items()):
                    if case_id not in since:
                        since[case_id] = now
                        log.info("waiting for case %s, computed by another run", case_id)
                    elif now - since[case_id] > WAIT_FOR_OTHER_RUN_S:
                        log.warning(
                            "case %s: still locked by another run after %.0f s; computing it "
                            "here as well",
                            case_id,
                            WAIT_FOR_OTHER_RUN_S,
                        )
                        del deferred[case_id]
                        backend.submit(case)
                        in_flight += 1
                if not in_flight:
                    time.sleep(LOCK_POLL_S)


def run_cohort(
    cohort: Cohort,
    task: CaseTask,
    *,
    jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> CohortResult:
    """Run ``task`` on every case of ``cohort``.

    Parameters
    ----------
    cohort
        The cases.
    task
        A per-case job (see :class:`CaseTask`).
    jobs
        Local worker processes; 1 runs in this process.
    scheduler
        Dask scheduler address (``tcp://host:port``) or a ``distributed.Client``. When
        given, cases run on that cluster instead of locally.
    cache_dir
        Folder of the per-case result cache (none when ``None``).
    progress
        Show a progress bar (cases done, failures, ETA) on stderr.

    Returns
    -------
    CohortResult
        Rows in manifest order; failed cases are absent from ``features`` and present in
        ``failures``.
    """
    start = time.perf_counter()
    cache = ResultCache(cache_dir) if cache_dir is not None else None
    done: dict[str, CaseOutput] = {}
    failures: list[dict[str, str]] = []
    keys: dict[str, str] = {}
    stamps: dict[str, tuple[int, int] | None] = {}
    todo: list[Case] = []
    for case in cohort:
        if cache is not None:
            try:
                keys[case.case_id] = task.cache_key(case)
            except Exception:  # unreadable input: let the task report it properly
                todo.append(case)
                continue
            stamps[case.case_id] = cache.stamp(keys[case.case_id])
            hit = cache.get(keys[case.case_id])
            if hit is not None and _still_valid(task, case, hit):
                done[case.case_id] = hit
                continue
        todo.append(case)
    n_cached = len(done)

    def cost(case: Case) -> int:
        try:
            return task.cost(case)
        except OSError:
            return 0

    todo.sort(key=cost, reverse=True)  # largest first: no straggler at the end
    bar = _progress(len(cohort), n_cached, enabled=progress, desc=task.stage_name)
    runner = _Scheduler(cache, keys, stamps, task)
    backend = _backend(task, jobs, scheduler) if todo else _InProcess(task)
    try:
        for outcome, from_cache in runner.run(todo, backend):
            if outcome.output is not None:
                done[outcome.case_id] = outcome.output
                n_cached += from_cache
            elif outcome.failure is not None:
                failures.append(outcome.failure)
                log.warning(
                    "case %s failed at %s: %s",
                    outcome.case_id,
                    outcome.failure["stage"],
                    outcome.failure["message"],
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(failures), refresh=False)
    finally:
        try:
            backend.close()  # waits for running cases: their locks are held until then
        finally:
            runner.release_all()
            if bar is not None:
                bar.close()

    order = [c for c in cohort.case_ids if c in done]
    features = pd.DataFrame.from_dict({c: done[c].features for c in order}, orient="index")
    diagnostics = pd.DataFrame.from_dict({c: done[c].diagnostics for c in order}, orient="index")
    for table in (features, diagnostics):
        table.index.name = CASE_ID
    fail_order = {c: i for i, c in enumerate(cohort.case_ids)}
    failures.sort(key=lambda f: fail_order.get(f[CASE_ID], math.inf))
    return CohortResult(
        features=features,
        diagnostics=diagnostics,
        failures=pd.DataFrame(failures, columns=FAILURE_COLUMNS),
        n_cached=n_cached,
        n_computed=len(done) - n_cached,
        seconds=time.perf_counter() - start,
    )


def _still_valid(task: CaseTask, case: Case, output: CaseOutput) -> bool:
    """Whether a cache hit stands: the task's ``verify_cached`` (when it has one) agrees."""
    verify = getattr(task, "verify_cached", None)
    if verify is None:
        return True
    try:
        return bool(verify(case, output))
    except Exception:  # an unreadable output counts as absent: recompute
        log.debug("cache entry of case %s rejected:\n%s", case.case_id, traceback.format_exc())
        return False


def _progress(total: int, initial: int, *, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="case", dynamic_ncols=True)
