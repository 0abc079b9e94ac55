"""Training: data sampling, the rate-distortion loop, checkpoints, weight export, and the
``train`` and ``export`` commands. Names load on first use: the commands need no torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig
    from .loop import train

__all__ = ["TrainConfig", "train"]
_LAZY = {"TrainConfig": "config", "train": "loop"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codec.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
