"""docs/failure_modes.md lists every exception and warning hybridrad raises."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import hybridrad
from hybridrad.errors import HybridradError, HybridradWarning

DOC = Path(__file__).resolve().parents[1] / "docs" / "failure_modes.md"


def _subclasses(base: type) -> set[type]:
    out: set[type] = set()
    todo = [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in out:
                out.add(sub)
                todo.append(sub)
    return out


def test_every_exception_and_warning_is_documented() -> None:
    for info in pkgutil.walk_packages(hybridrad.__path__, "hybridrad."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra that is not installed
            pytest.skip(f"cannot import {info.name}: {exc}")
    text = DOC.read_text()
    classes = {
        c
        for c in _subclasses(HybridradError) | _subclasses(HybridradWarning)
        if c.__module__.startswith("hybridrad")
    }
    assert len(classes) > 40
    missing = sorted(c.__name__ for c in classes if f"`{c.__name__}`" not in text)
    assert not missing, f"add these to docs/failure_modes.md: {missing}"
