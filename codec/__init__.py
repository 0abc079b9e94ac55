"""lcodec: a learned image codec (CompressAI mean-scale hyperprior, rANS, ``.lcz`` files).

>>> import codec
>>> data = codec.compress("photo.png", quality=50)
>>> pixels = codec.decompress(data)   # HxWx3 uint8 (HxW gray, HxWx4 with alpha)
>>> picture = codec.decode(data)      # .pixels, .mode, .alpha, .icc_profile
>>> files = list(codec.compress_many(["a.png", "b.png"], device="cuda"))  # pipelined
"""

from .api import (
    DEFAULT_QUALITY,
    Encoded,
    LoadedModel,
    compress,
    decode,
    decompress,
    encode,
    info,
    load_model,
)
from .batch import compress_many, decompress_many
from .errors import CodecError, CodecWarning
from .image import Picture

__all__ = [
    "DEFAULT_QUALITY",
    "CodecError",
    "CodecWarning",
    "Encoded",
    "LoadedModel",
    "Picture",
    "compress",
    "compress_many",
    "decode",
    "decompress",
    "decompress_many",
    "encode",
    "info",
    "load_model",
]
