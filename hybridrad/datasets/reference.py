"""Where the shared reference data lives (never shipped with the package)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "HYBRIDRAD_DATA"


def reference_data_dir() -> Path | None:
    """The reference-data folder, or ``None`` when it is absent.

    ``$HYBRIDRAD_DATA`` when set, else ``../shared/data`` beside the repository root
    (seen from the source tree or from the current directory).
    """
    env = os.environ.get(ENV_VAR)
    candidates = (
        [Path(env)]
        if env
        else [
            Path(__file__).resolve().parents[2].parent / "shared" / "data",
            Path.cwd().resolve().parent / "shared" / "data",
        ]
    )
    for path in candidates:
        if path.is_dir():
            return path
    return None
