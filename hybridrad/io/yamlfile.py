"""Reading the YAML files users write (configs, label maps) with errors that name them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def read_mapping(
    path: str | os.PathLike[str], error: type[Exception], what: str, hint: str = ""
) -> dict[str, Any]:
    """The mapping in a YAML (or ``.json``) file; anything else raises ``error``.

    ``what`` names the file's role ("radiomics config"); ``hint`` says what it should
    hold. Syntax errors, text that is not UTF-8 and top levels that are not mappings
    all raise ``error`` naming the file (an empty file is an empty mapping).

    Examples
    --------
    >>> read_mapping("absent.yaml", ValueError, "study config")
    Traceback (most recent call last):
    ...
    ValueError: cannot read study config absent.yaml: No such file or directory
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise error(
            f"cannot read {what} {p}: it is not valid UTF-8 YAML ({detail}). {hint}".strip()
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(
            f"{what} {p} holds a {type(data).__name__}, not a mapping of settings. {hint}".strip()
        )
    return data
