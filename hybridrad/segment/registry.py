"""The segmentation models shipped with hybridrad, by name.

``hybridrad models`` lists them; ``hybridrad segment --model NAME`` runs one; without
``--model``, :func:`pick_model` chooses, among the real-data models whose inputs the
manifest has, the one with the best cross-validated Dice, and says which. The
synthetic-phantom model is used only when named.

Each shipped model is a model directory (``model.json`` + weights) under
``hybridrad/segment/models/<name>/``; the synthetic-phantom model keeps its historical
folder ``hybridrad/segment/default_model/``. This module reads only ``model.json``, so
listing needs neither torch nor MONAI.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridrad.segment.errors import ModelDirError, SequenceMismatchError

_HERE = Path(__file__).resolve().parent

#: Shipped models: name -> (folder, one-line description). Order = preference on ties.
SHIPPED: dict[str, tuple[Path, str]] = {
    "glioma-flair-t1-t1c": (
        _HERE / "models" / "glioma-flair-t1-t1c",
        "glioma FLAIR abnormality (binary) from FLAIR + T1 + T1c; 2D U-Net, TCGA-LGG",
    ),
    "glioma-flair": (
        _HERE / "models" / "glioma-flair",
        "glioma FLAIR abnormality (binary) from FLAIR alone; 2D U-Net, TCGA-LGG",
    ),
    "synthetic-brats": (
        _HERE / "default_model",
        "synthetic phantoms only (WT/TC/ET from T1, T1c, T2, FLAIR): for demos and tests, "
        "not for real scans",
    ),
}


@dataclass(frozen=True)
class ShippedModel:
    """A shipped model's name, folder and the facts ``hybridrad models`` shows."""

    name: str
    path: Path
    description: str
    metadata: dict[str, Any]

    @property
    def sequences(self) -> list[str]:
        """Input sequences in channel order."""
        return list(self.metadata["sequences"])

    @property
    def regions(self) -> list[str]:
        """Output regions (channels)."""
        return list(self.metadata.get("regions") or [])

    @property
    def cv(self) -> dict[str, Any]:
        """The cross-validated figures recorded at training (empty when none)."""
        return dict(self.metadata.get("metrics", {}).get("cv") or {})

    def summary(self) -> dict[str, Any]:
        """One row of ``hybridrad models``."""
        cv = self.cv
        net = self.metadata["network"]
        weights = self.path / self.metadata["weights"]["file"]
        return {
            "name": self.name,
            "inputs": ",".join(self.sequences),
            "output": ",".join(self.regions),
            "network": f"{net['name']} {net.get('spatial_dims', 3)}D",
            "cv_mean_dice": cv.get("mean_dice"),
            "cv_median_dice": cv.get("median_dice"),
            "cv_median_hd95_mm": cv.get("median_hd95_mm"),
            "cv": f"{cv['folds']}-fold, {cv['n_cases']} cases" if cv else "none",
            "val_dice": self.metadata.get("metrics", {}).get("val_dice_mean"),
            "trained_on": self.metadata.get("training_data", {}).get("manifest"),
            "weights_mb": round(weights.stat().st_size / 1e6, 2) if weights.is_file() else None,
            "description": self.description,
        }


def _read(name: str) -> ShippedModel:
    folder, description = SHIPPED[name]
    meta_path = folder / "model.json"
    if not meta_path.is_file():
        raise ModelDirError(
            f"shipped model {name!r} is missing its files ({meta_path}); reinstall hybridrad "
            "or train it with scripts/train_glioma_model.py."
        )
    return ShippedModel(name, folder, description, json.loads(meta_path.read_text()))


def shipped_models() -> list[ShippedModel]:
    """Every shipped model whose files are installed, in preference order."""
    return [_read(n) for n in SHIPPED if (SHIPPED[n][0] / "model.json").is_file()]


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """The model directory of a shipped model's name or of a path.

    Raises
    ------
    ModelDirError
        Neither an existing directory nor a shipped name (the message lists the names).
    """
    text = str(model)
    if text in SHIPPED:
        return _read(text).path
    path = Path(model)
    if path.is_dir():
        return path
    names = ", ".join(SHIPPED)
    raise ModelDirError(
        f"--model {text!r} is neither a shipped model ({names}) nor an existing model "
        "directory; `hybridrad models` lists the shipped ones."
    )


def model_name(path: str | os.PathLike[str]) -> str:
    """The shipped name of a model directory, else its path."""
    resolved = Path(path).resolve()
    for name, (folder, _) in SHIPPED.items():
        if folder.resolve() == resolved:
            return name
    return str(path)


def check_inputs(name: str, needs: list[str], has: list[str], source: object = None) -> None:
    """Raise when a manifest lacks a sequence a model needs.

    Raises
    ------
    SequenceMismatchError
        Naming the model, what it needs, what the manifest has, and the fix.
    """
    missing = [s for s in needs if s not in has]
    if not missing:
        return
    fits = [m.name for m in shipped_models() if all(s in has for s in m.sequences)]
    hint = f" Shipped models that fit these sequences: {', '.join(fits)}." if fits else ""
    raise SequenceMismatchError(
        f"model {name!r} needs sequences {needs} (in this order) but manifest "
        f"{source or ''} has no column for {missing} (it has {list(has)}). Rename the "
        f"manifest columns to the model's sequence names, or choose another model with "
        f"--model.{hint}"
    )


def pick_model(sequences: list[str]) -> ShippedModel:
    """The shipped model for a manifest with ``sequences``: among the real-data models
    (those with cross-validated Dice in their metadata) whose inputs are all present, the
    one with the highest CV mean Dice (ties: more sequences, then :data:`SHIPPED` order).
    The synthetic-phantom model is never picked automatically.

    Raises
    ------
    SequenceMismatchError
        No shipped model fits; the message lists each model's inputs.
    """
    real = [m for m in shipped_models() if m.cv]
    fits = [m for m in real if all(s in sequences for s in m.sequences)]
    if not fits:
        needs = "; ".join(f"{m.name}: {','.join(m.sequences)}" for m in real)
        raise SequenceMismatchError(
            f"no shipped segmentation model fits a manifest with sequences {sequences} "
            f"(the models need: {needs}). Name the manifest columns after the sequences "
            "(e.g. 'flair'), name a model with --model, or train one on yours with "
            "`hybridrad seg-train`."
        )
    return max(fits, key=lambda m: (round(float(m.cv["mean_dice"]), 3), len(m.sequences)))


def models_table() -> list[dict[str, Any]]:
    """The rows of ``hybridrad models``."""
    return [m.summary() for m in shipped_models()]
