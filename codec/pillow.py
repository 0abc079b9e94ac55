"""The Pillow plugin: ``Image.open`` reads ``.lcz`` files and ``Image.save`` writes them.

``import codec`` registers it, so that everything built on Pillow (imageio among others) reads
and writes lcodec files the way it reads WebP or, with their plugins, JPEG XL and HEIC. Opening
parses the container only (size, mode, ICC profile); the networks run on ``load()``.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile, UnidentifiedImageError

from . import bitstream
from .errors import CodecError

FORMAT = "LCZ"
EXTENSION = ".lcz"
MIME = "image/x-lcz"
_DECODER = "lcz"

#: ``Image.save`` options handed to ``codec.compress``; Pillow's other options are ignored, as
#: each of its formats ignores those it does not know.
SAVE_OPTIONS = (
    "quality",
    "effort",
    "target_bpp",
    "target_size",
    "target_psnr",
    "device",
    "model",
    "weights",
    "precision",
)

_MODES = {
    bitstream.LAYOUT_RGB: "RGB",
    bitstream.LAYOUT_GRAY: "L",
    bitstream.LAYOUT_RGBA: "RGBA",
    bitstream.LAYOUT_GRAYA: "LA",
}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(bitstream.MAGIC)] == bitstream.MAGIC


class LczImageFile(ImageFile.ImageFile):
    """An ``.lcz`` file opened by Pillow: the header at once, the pixels on ``load()``."""

    format = FORMAT
    format_description = "lcodec learned image"

    def _open(self) -> None:
        data = self.fp.read()
        try:
            container = bitstream.unpack(data)  # the CRC covers the whole file
        except CodecError as e:
            name = self.filename or "<stream>"
            raise UnidentifiedImageError(f"cannot identify image file {name!r}: {e}") from e
        self._mode = _MODES[container.layout]
        self._size = (container.width, container.height)
        if container.icc_profile:
            self.info["icc_profile"] = container.icc_profile
        self.tile = [(_DECODER, (0, 0, *self._size), 0, (data,))]


class _Decoder(ImageFile.PyDecoder):
    """Runs lcodec's decoder on the bytes ``_open`` read and checked."""

    _pulls_fd = True

    def decode(self, buffer: bytes) -> tuple[int, int]:
        from .api import decode

        (data,) = self.args
        try:
            pixels = decode(data).pixels
        except CodecError as e:
            raise OSError(str(e)) from e
        self.set_as_raw(pixels.tobytes(), self.mode)
        return -1, 0


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from .api import compress

    info = im.encoderinfo
    if "icc_profile" in info and info["icc_profile"] != im.info.get("icc_profile"):
        im = im.copy()  # the caller's image keeps its own profile
        im.info["icc_profile"] = info["icc_profile"]
    options = {k: info[k] for k in SAVE_OPTIONS if k in info}
    try:
        data = compress(im, **options)
    except CodecError as e:
        raise ValueError(str(e)) from e
    fp.write(data)


def register() -> None:
    """Register the ``LCZ`` format, its ``.lcz`` extension and MIME type with Pillow."""
    Image.register_open(FORMAT, LczImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder(_DECODER, _Decoder)
