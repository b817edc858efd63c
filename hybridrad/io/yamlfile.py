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


def file_or_shipped(
    value: str | os.PathLike[str], shipped: dict[str, Path], what: str, noun: str
) -> Path:
    """The file ``value`` names, or the shipped ``noun`` of that name (``shipped``: name
    -> path); ``FileNotFoundError`` listing the shipped names when neither exists."""
    path = Path(value)
    if not path.is_file() and str(value) in shipped:
        path = shipped[str(value)]
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} {value} not found; give a YAML file or a shipped {noun} ({', '.join(shipped)})"
        )
    return path


def key_problems(errors: list[Any]) -> list[tuple[str, str]]:
    """``(key path, message)`` per error of a pydantic ``ValidationError.errors()``:
    ``features.deep.batch_size``, without pydantic's ``function-...`` and
    ``Value error, `` noise."""
    out = []
    for err in errors:
        parts = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        out.append(
            (".".join(parts) or "(top level)", str(err["msg"]).removeprefix("Value error, "))
        )
    return out
