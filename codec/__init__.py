"""lcodec: a learned image codec (CompressAI mean-scale hyperprior, rANS, ``.lcz`` files).

>>> import codec
>>> data = codec.compress("photo.png", quality=50)
>>> pixels = codec.decompress(data)   # HxWx3 uint8
"""

from .api import (
    DEFAULT_QUALITY,
    Encoded,
    LoadedModel,
    compress,
    decompress,
    encode,
    info,
    load_model,
)
from .errors import CodecError

__all__ = [
    "DEFAULT_QUALITY",
    "CodecError",
    "Encoded",
    "LoadedModel",
    "compress",
    "decompress",
    "encode",
    "info",
    "load_model",
]
