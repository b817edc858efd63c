"""The example notebooks (examples/*.ipynb) execute from top to bottom without an error.

Every notebook is run in a fresh Jupyter kernel with nbclient, as a reader would run it.
The kernel is ipykernel's own spec on *this* interpreter (``sys.executable``: the
environment under test), never a kernel registered elsewhere on the machine; nothing is
installed or registered. The kernel's working directory and ``TMPDIR`` are the test's
``tmp_path``, so whatever a notebook writes (its ``tempfile.mkdtemp()`` folders, Dask's
scratch space) lands there.

Notebooks are stored without outputs (a fast test checks it). Each notebook over ~20 s
on 2 cores is marked ``slow``; a notebook that is not in :data:`MEASURED_S` yet (a new
one) counts as slow until it has been measured and added.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))

#: Wall-clock seconds of a whole notebook on 2 CPU cores, kernel start included
#: (2026-12-05, pytest --durations; the same notebooks took 2-4x longer while other
#: jobs kept the cores busy). Over ``SLOW_S``: marked slow.
MEASURED_S: dict[str, float] = {
    "own_encoder_weights": 9.2,
    "dask_scaling": 23.5,
    "external_validation": 36.7,
    "survival_analysis": 43.4,
    "molecular_subtyping": 50.5,
    "quickstart": 105.7,
}
SLOW_S = 20.0
#: Per cell; bounds a hung cell, not the notebook's speed.
CELL_TIMEOUT_S = 600
#: Literal absolute or machine-specific paths a notebook must not contain.
MACHINE_PATH = re.compile(r"""["'](/(work|home|Users|tmp|data|mnt)/|[A-Za-z]:\\|\.\./shared)""")


def _params() -> list[Any]:
    params = []
    for path in NOTEBOOKS:
        slow = MEASURED_S.get(path.stem, float("inf")) > SLOW_S
        params.append(pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if slow else []))
    return params


def _kernel_manager() -> Any:
    """A kernel manager whose ``python3`` is this interpreter.

    With no kernel directories to search, jupyter_client falls back to ipykernel's
    built-in spec, whose command line is ``sys.executable -m ipykernel_launcher``.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    return AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )


def _execute(nb: Any, workdir: Path) -> None:
    """Run ``nb`` in place in a fresh kernel started in ``workdir`` (also its TMPDIR)."""
    import os

    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(),
        timeout=CELL_TIMEOUT_S,
        startup_timeout=180,
        allow_errors=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env={**os.environ, "TMPDIR": str(workdir)})


def _text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return " ".join(str(v) for v in data.values())


def test_there_are_notebooks() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert set(MEASURED_S) <= names, f"measured but missing: {set(MEASURED_S) - names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path: Path) -> None:
    """Valid nbformat 4, the python3 kernel, no outputs or execution counts, no machine
    paths in the code."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    stored = [i for i, c in code if c.get("outputs") or c.get("execution_count") is not None]
    assert not stored, (
        f"{path.name}: cells {stored} were saved with outputs; clear them before committing "
        "(Jupyter: Edit > Clear Outputs of All Cells; or `jupyter nbconvert --clear-output "
        "--inplace`)"
    )
    paths = [(i, m.group(0)) for i, c in code for m in MACHINE_PATH.finditer(c.source)]
    assert not paths, f"{path.name}: machine-specific paths in code cells {paths}"


def test_kernel_runs_this_interpreter(tmp_path: Path) -> None:
    """The notebooks' kernel is the interpreter running the tests (same environment)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os, sys\nprint(sys.executable)\nprint(os.getcwd())")
    ]
    _execute(nb, tmp_path)
    executable, cwd = nb.cells[0].outputs[0]["text"].split()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(cwd).resolve() == tmp_path.resolve()


@pytest.mark.parametrize("path", _params())
def test_notebook_executes(path: Path, tmp_path: Path) -> None:
    """Every cell runs without an error, figures show as images and the last code cell
    shows something."""
    before = sorted(p.name for p in EXAMPLES.iterdir())
    nb = nbformat.read(path, as_version=4)
    try:
        _execute(nb, tmp_path)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    errors = [
        (i, o.get("ename"), o.get("evalue"))
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: error outputs {errors}"
    tracebacks = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.outputs
        if "Traceback (most recent call last)" in _text(o)
    ]
    assert not tracebacks, f"{path.name}: tracebacks printed in cells {tracebacks}"
    blank = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.outputs
        if str(o.get("data", {}).get("text/plain", "")).startswith("<Figure size")
        and "image/png" not in o.get("data", {})
    ]
    assert not blank, (
        f"{path.name}: cells {blank} show a matplotlib Figure as text, not as an image; "
        "start the notebook with `%matplotlib inline` (the plots never set a backend)"
    )
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any(_text(o).strip() for o in last.outputs), (
        f"{path.name}: the last code cell shows nothing; end with a result the reader can check"
    )
    assert sorted(p.name for p in EXAMPLES.iterdir()) == before, (
        f"{path.name} wrote into examples/; write under tempfile.mkdtemp() instead"
    )
