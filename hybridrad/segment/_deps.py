"""Guarded import of the optional deep-learning dependencies."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pip install 'hybridrad[deep]'"


def require_torch() -> ModuleType:
    """Import and return :mod:`torch`, or raise an :class:`ImportError` naming the extra.

    Raises
    ------
    ImportError
        torch or MONAI is not installed.
    """
    try:
        import monai  # noqa: F401
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"segmentation needs PyTorch and MONAI ({exc.name} is missing): {INSTALL_HINT}"
        ) from exc
    return torch
