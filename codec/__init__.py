"""lcodec: a learned image codec (a CompressAI hyperprior with a space-channel context model,
rANS, ``.lcz`` files).

>>> import codec
>>> data = codec.compress("photo.png", quality=50)
>>> pixels = codec.decompress(data)   # HxWx3 uint8 (HxW gray, HxWx4 with alpha)
>>> picture = codec.decode(data)      # .pixels, .mode, .alpha, .icc_profile
>>> files = list(codec.compress_many(["a.png", "b.png"]))  # pipelined
>>> from PIL import Image; Image.open("photo.lcz")  # the Pillow plugin (codec/pillow.py)

Names load on first use (PEP 562): torch and CompressAI take seconds to import, and
``lcodec --help``, ``lcodec info`` or reading a container need neither. Importing the package
registers the Pillow plugin and prepares a quick CompressAI import (codec/startup.py).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from . import pillow, startup
from .bitstream import info
from .errors import CodecError, CodecWarning

if TYPE_CHECKING:
    from .api import DEFAULT_QUALITY, Encoded, compress, decode, decompress, encode
    from .batch import compress_many, decompress_many
    from .image import Picture
    from .runtime import LoadedModel, load_model

_LAZY = {
    "DEFAULT_QUALITY": "api",
    "Encoded": "api",
    "LoadedModel": "runtime",
    "compress": "api",
    "decode": "api",
    "decompress": "api",
    "encode": "api",
    "encode_efforts": "api",
    "load_model": "runtime",
    "compress_many": "batch",
    "decompress_many": "batch",
    "Picture": "image",
}

__all__ = [
    "CodecError",
    "CodecWarning",
    "DEFAULT_QUALITY",
    "Encoded",
    "LoadedModel",
    "Picture",
    "compress",
    "compress_many",
    "decode",
    "decompress",
    "decompress_many",
    "encode",
    "encode_efforts",
    "info",
    "load_model",
]

startup.defer_compressai_extras()
pillow.register()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
            return importlib.import_module(f".{name}", __name__)  # codec.image, codec.tiling...
        raise AttributeError(f"module 'codec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
