"""Automatic tumour segmentation with MONAI networks (optional extra ``deep``).

Public API (torch and MONAI are imported on first use):

- :class:`SegConfig` - settings (network, spacing, crops, training, inference).
- :func:`train_model` - train and write a model directory.
- :func:`load_model`, :func:`load_encoder` - read a model directory / its encoder.
- :class:`Segmenter`, :class:`SegmentTask`, :func:`segment_cohort` - inference.
- :func:`evaluate_masks`, :func:`region_metrics` - Dice, HD95, volume error.
- :func:`labels_to_channels`, :func:`channels_to_labels` - label <-> region channels.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from hybridrad.segment.config import InferenceConfig, PostprocessConfig, SegConfig, TrainingConfig
from hybridrad.segment.errors import (
    ModelDirError,
    SegmentationConfigError,
    SegmentationError,
    SegmentationInputError,
    SequenceMismatchError,
)
from hybridrad.segment.labels import channels_to_labels, labels_to_channels

_LAZY = {
    "train_model": "hybridrad.segment.train",
    "load_model": "hybridrad.segment.model",
    "load_encoder": "hybridrad.segment.model",
    "DEFAULT_MODEL_DIR": "hybridrad.segment.model",
    "SegModel": "hybridrad.segment.model",
    "Segmenter": "hybridrad.segment.infer",
    "SegmentTask": "hybridrad.segment.infer",
    "segment_cohort": "hybridrad.segment.infer",
    "evaluate_masks": "hybridrad.segment.evaluate",
    "region_metrics": "hybridrad.segment.evaluate",
}

__all__ = [
    "InferenceConfig",
    "ModelDirError",
    "PostprocessConfig",
    "SegConfig",
    "SegmentationConfigError",
    "SegmentationError",
    "SegmentationInputError",
    "SequenceMismatchError",
    "TrainingConfig",
    "channels_to_labels",
    "labels_to_channels",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hybridrad.segment' has no attribute {name!r}")
