"""Study orchestration on top of :mod:`hybridrad.models` and :mod:`hybridrad.report`.

Public API (imported on first use, so that building the command-line parser imports no
pandas):

- :class:`StudyData`, :func:`load_study` - read the feature and clinical tables, fuse them
  and build the target.
- :func:`evaluate_study` - compare the feature sets with nested CV (``hybridrad evaluate``).
- :func:`score_model` - validate a frozen model on a new cohort (``hybridrad score``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "StudyData": "hybridrad.models.data",
    "load_study": "hybridrad.study.load",
    "evaluate_study": "hybridrad.study.evaluate",
    "score_model": "hybridrad.study.external",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hybridrad.study' has no attribute {name!r}")
