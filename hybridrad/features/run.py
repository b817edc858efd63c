"""The cohort runner: one per-case task over a cohort, locally or on Dask.

Written once and reused by every batch stage (radiomics, deep features, segmentation).
A *task* is a picklable callable ``task(case) -> CaseOutput`` with three more methods:
``cache_key(case)`` (content-addressed), ``cost(case)`` (to start the largest cases
first) and ``plan()`` (what besides the inputs decides the output).

Behaviour:

- every finished case is cached (one JSON file, written atomically) under
  ``cache_dir``, keyed by the task's ``cache_key``; a rerun or a resumed run recomputes
  nothing that finished. A task that writes files besides its result (masks) may define
  ``verify_cached(case, output) -> bool``: a cache hit it rejects (file deleted or
  changed since) is recomputed;
- a failing case becomes a row of the failures table (case, stage, exception type,
  message) while the others go on;
- backends: in-process (``jobs=1``), a local process pool (``jobs>1``; SimpleITK and BLAS
  set to one thread per worker), or a Dask distributed cluster (``scheduler=``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
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
    """One JSON file per finished case, content-addressed by the task's cache key."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> CaseOutput | None:
        """The cached output for ``key``, or ``None`` (a damaged entry counts as absent)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            return CaseOutput(features=data["features"], diagnostics=data["diagnostics"])
        except (OSError, ValueError, KeyError):
            log.warning("ignoring damaged cache entry %s", path)
            return None

    def put(self, key: str, output: CaseOutput) -> None:
        """Store ``output`` atomically (temp file, then rename)."""
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        payload = json.dumps(
            {"features": output.features, "diagnostics": output.diagnostics}, default=str
        )
        _atomic(path, lambda p: Path(p).write_text(payload))


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


def init_worker() -> None:
    """One thread per worker process: the pool provides the parallelism."""
    for var in THREAD_ENV:
        os.environ[var] = "1"
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def _iter_local(task: CaseTask, cases: list[Case], jobs: int) -> Iterator[_Outcome]:
    if jobs <= 1:
        for case in cases:
            yield _run_one(task, case)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=init_worker) as pool:
        futures = [pool.submit(_run_one, task, case) for case in cases]
        for fut in as_completed(futures):
            yield fut.result()


def _iter_dask(task: CaseTask, cases: list[Case], scheduler: Any) -> Iterator[_Outcome]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Dask backend needs 'distributed': pip install 'hybridrad[radiomics]'"
        ) from exc
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        client.run(init_worker)
        futures = [
            client.submit(_run_one, task, case, pure=False, priority=-i)
            for i, case in enumerate(cases)
        ]
        for fut in dask_completed(futures):
            yield fut.result()
    finally:
        if own:
            client.close()


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
    todo: list[Case] = []
    for case in cohort:
        if cache is not None:
            try:
                keys[case.case_id] = task.cache_key(case)
            except Exception:  # unreadable input: let the task report it properly
                todo.append(case)
                continue
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
    outcomes = (
        _iter_dask(task, todo, scheduler)
        if scheduler is not None
        else _iter_local(task, todo, jobs)
    )
    for outcome in outcomes:
        if outcome.output is not None:
            done[outcome.case_id] = outcome.output
            if cache is not None and outcome.case_id in keys:
                cache.put(keys[outcome.case_id], outcome.output)
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
