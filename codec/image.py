"""Images in and out: any path, PIL image or array becomes an HxWx3 uint8 RGB array."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CodecError

Image.MAX_IMAGE_PIXELS = None  # size limits are lcodec's own (bitstream.MAX_PIXELS)


def to_rgb_array(image) -> np.ndarray:
    """Read ``image`` (path, bytes, PIL image or HxWx3 / HxW uint8 array) as HxWx3 uint8 RGB.

    EXIF orientation is applied, as browsers do, so the file decodes the way it was viewed.
    """
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise CodecError(f"no such file: {path}")
        try:
            with Image.open(path) as im:
                return _from_pil(im)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise CodecError(f"cannot read {path.name} as an image: {_short(e)}") from None
    if isinstance(image, (bytes, bytearray)):
        try:
            with Image.open(io.BytesIO(image)) as im:
                return _from_pil(im)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise CodecError(f"cannot read input as an image: {_short(e)}") from None
    if isinstance(image, Image.Image):
        return _from_pil(image)
    raise CodecError(f"unsupported image type {type(image).__name__}")


def _short(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _from_pil(im: Image.Image) -> np.ndarray:
    im = ImageOps.exif_transpose(im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    arr = np.array(im)
    if arr.size == 0:
        raise CodecError("empty image")
    return arr


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.dtype != np.uint8:
        raise CodecError(f"expected a uint8 array, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise CodecError(f"expected an HxWx3 array, got shape {a.shape}")
    return np.ascontiguousarray(a)


def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
