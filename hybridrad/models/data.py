"""The data a study's models are fit on: fused features and the target (:class:`StudyData`).

Built by :func:`hybridrad.study.load_study`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hybridrad.models.evaluate import Task


@dataclass
class StudyData:
    """Fused features and the target of a study.

    Attributes
    ----------
    X
        Features indexed by ``case_id`` (namespaced columns; ``site`` with ComBat).
    y
        Survival: structured (event, time) array. Classification: integers 0/1, 1 the
        positive class.
    task
        ``"survival"`` or ``"classification"``.
    inputs
        SHA-256 of every input file, by path.
    positive, negative
        Classification: the names of the classes coded 1 and 0 (``None`` for survival).
    dropped
        Cases left out on the way, by reason (e.g. ``"missing target"``).
    """

    X: pd.DataFrame
    y: Any
    task: Task
    inputs: dict[str, str]
    positive: str | None = None
    negative: str | None = None
    dropped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def classes(self) -> list[str] | None:
        """Classification: ``[negative, positive]``, the names of 0 and 1."""
        if self.positive is None or self.negative is None:
            return None
        return [self.negative, self.positive]
