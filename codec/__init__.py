"""lcodec: a learned image codec (CompressAI mean-scale hyperprior, rANS, ``.lcz`` files).

>>> import codec
>>> data = codec.compress("photo.png", quality=50)
>>> pixels = codec.decompress(data)   # HxWx3 uint8 (HxW gray, HxWx4 with alpha)
>>> picture = codec.decode(data)      # .pixels, .mode, .alpha, .icc_profile
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
    "decode",
    "decompress",
    "encode",
    "info",
    "load_model",
]
