"""Exceptions of the segmentation stage.

Each subclasses :class:`hybridrad.errors.HybridradError` and ``ValueError``; every
message names the case or sequence involved and says how to fix it.
"""

from __future__ import annotations

from hybridrad.errors import HybridradError


class SegmentationError(HybridradError, ValueError):
    """Base class of the segmentation errors."""


class SegmentationInputError(SegmentationError):
    """A case's images cannot be fed to the network (missing sequence, wrong channels ...)."""


class SequenceMismatchError(SegmentationInputError):
    """The model was trained on sequences the manifest does not provide."""


class ModelDirError(SegmentationError):
    """A model directory is missing, incomplete or of an unknown format."""


class SegmentationConfigError(SegmentationError):
    """A segmentation configuration is invalid (unknown key, network or value)."""
