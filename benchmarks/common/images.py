"""Find and read the benchmark images, the same way for every harness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from codec.files import is_image_file


def find_images(root: str | Path, limit: int | None = None) -> list[Path]:
    """Image files under ``root`` (recursive; lcodec's one rule, ``codec.files.is_image_file``),
    sorted so runs are reproducible."""
    root = Path(root)
    found = sorted(
        (p for p in root.rglob("*") if p.is_file() and is_image_file(p)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    return found[:limit] if limit else found


def load_rgb(path: str | Path) -> np.ndarray:
    """An HxWx3 uint8 array, EXIF orientation applied (as lcodec reads images)."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB")).copy()


def image_name(path: Path, root: str | Path) -> str:
    """The image's path relative to the data folder: the key it has in every output."""
    return path.relative_to(root).as_posix()
