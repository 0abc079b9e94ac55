"""Training data: every image of a folder decoded into memory once, served as random crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..files import is_image_file


def list_images(root: str | Path) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if is_image_file(p))


class CropSampler:
    """Random crops with random flips from images held in memory as uint8 arrays.

    Decoding JPEGs dominates a naive loader on two cores; decoding once keeps every step on the
    network. Images smaller than the crop are padded by reflection.
    """

    def __init__(
        self, root: str | Path, crop: int, seed: int = 0, rank: int = 0, limit: int | None = None
    ):
        paths = list_images(root)[:limit]
        if not paths:
            raise ValueError(f"no images found in {root}")
        self.paths = paths
        self.crop = crop
        self.images = [self._load(p, crop) for p in paths]
        self.rng = np.random.default_rng(seed + 1000 * rank)

    @staticmethod
    def _load(path: Path, crop: int) -> np.ndarray:
        with Image.open(path) as im:
            arr = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        h, w = arr.shape[:2]
        if h < crop or w < crop:
            ph, pw = max(0, crop - h), max(0, crop - w)
            arr = np.pad(arr, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        return np.ascontiguousarray(arr)

    def batch(self, size: int) -> torch.Tensor:
        """A float batch in [0, 1], shaped (size, 3, crop, crop)."""
        c = self.crop
        out = np.empty((size, c, c, 3), dtype=np.uint8)
        for i in range(size):
            img = self.images[self.rng.integers(len(self.images))]
            h, w = img.shape[:2]
            y = self.rng.integers(h - c + 1)
            x = self.rng.integers(w - c + 1)
            patch = img[y : y + c, x : x + c]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.rng.random() < 0.5:
                patch = patch[::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255).contiguous()
