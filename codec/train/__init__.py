"""Training: data sampling, the rate-distortion loop, checkpoints and weight export."""

from .loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
