"""Images in and out: any path, bytes, PIL image or array becomes a ``Picture``, and back.

The network codes 8-bit RGB. What else an input carries either comes back on decode (gray
layout, alpha, ICC profile) or is changed with a ``CodecWarning`` that says so (16-bit samples,
CMYK and other colour spaces, extra animation frames): nothing is dropped silently.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from .bitstream import check_dims
from .errors import CodecError, CodecWarning
from .files import check_file
from .limits import check_budget, over_budget, pixel_budget

#: The PNG text chunk ``Software`` of every picture lcodec writes: how the command tells its
#: own outputs from originals it must not suggest replacing.
PNG_SOFTWARE = "lcodec"

#: ICC colour-space signatures (header bytes 16..20) that fit each kind of decoded image.
_ICC_SPACE = {False: b"RGB ", True: b"GRAY"}


@dataclass
class Picture:
    """An image as lcodec codes it, and as ``codec.decode`` returns it.

    ``color`` is HxWx3 RGB or HxW gray, ``alpha`` HxW or ``None`` (all uint8). ``source_mode``
    and ``source_bits`` describe the input (e.g. ``"P"``, ``"CMYK"``, ``"I;16"``, 16 bits).
    """

    color: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    source_mode: str = ""
    source_bits: int = 8

    @property
    def is_gray(self) -> bool:
        return self.color.ndim == 2

    @property
    def mode(self) -> str:
        """The PIL mode of ``pixels``: ``L``, ``LA``, ``RGB`` or ``RGBA``."""
        return ("L" if self.is_gray else "RGB") + ("A" if self.alpha is not None else "")

    @property
    def height(self) -> int:
        return self.color.shape[0]

    @property
    def width(self) -> int:
        return self.color.shape[1]

    @property
    def pixels(self) -> np.ndarray:
        """The image in its own channel layout: HxW, HxWx2, HxWx3 or HxWx4 uint8."""
        if self.alpha is None:
            return self.color
        color = self.color[:, :, None] if self.is_gray else self.color
        return np.concatenate([color, self.alpha[:, :, None]], axis=2)

    def rgb(self) -> np.ndarray:
        """The colour as HxWx3 RGB (gray replicated), which is what the network codes."""
        if self.is_gray:
            return np.repeat(self.color[:, :, None], 3, axis=2)
        return self.color

    def to_pil(self) -> Image.Image:
        """A PIL image with the ICC profile attached, ready to save."""
        im = Image.fromarray(self.pixels, self.mode)
        if self.icc_profile:
            im.info["icc_profile"] = self.icc_profile
        return im


def read_image(image, max_pixels: int | None = None) -> Picture:
    """Read ``image`` (path, bytes, PIL image or uint8/uint16 array) for coding.

    EXIF orientation is applied, as browsers do, so the file decodes the way it was viewed.
    Arrays are HxW (gray), HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA). An image over
    the pixel budget (``max_pixels``, codec/limits.py) is refused before it is decoded.
    """
    if isinstance(image, np.ndarray):
        return _from_array(image, max_pixels)
    if isinstance(image, Image.Image):
        return _from_pil(image, max_pixels)
    return _open(image, lambda im: _from_pil(im, max_pixels), max_pixels)


def probe_image(
    image, max_pixels: int | None = None, *, name: str | None = None, setting: str = "max_pixels"
) -> tuple[int, int]:
    """Width and height of an image file or bytes, read from the header alone.

    Refuses what ``read_image`` would refuse before decoding (no file, an unknown format, a
    size over the limits), without decoding a pixel; errors name ``name`` (or the path) and
    the budget's ``setting``.
    """

    def size(im: Image.Image) -> tuple[int, int]:
        check_dims(im.width, im.height)
        check_budget(im.width, im.height, max_pixels, setting)
        return im.size

    return _open(image, size, max_pixels, name, setting)


def to_rgb_array(image) -> np.ndarray:
    """``image`` as HxWx3 uint8 RGB: gray is replicated, alpha left out (for comparisons)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)
        return read_image(image).rgb()


def _open(image, work, max_pixels, name: str | None = None, setting: str = "max_pixels"):
    """``work`` on the PIL image of a path or bytes; every failure is one line naming it."""
    if isinstance(image, (str, os.PathLike)):
        name = name or str(image)
        source = check_file(image)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(image))
    else:
        raise CodecError(f"unsupported image type {type(image).__name__}")
    prefix = f"{name}: " if name else ""
    unreadable = f"{prefix}cannot read as an image" if name else "cannot read the image bytes"
    if _is_empty(source):
        raise CodecError(f"{unreadable}: empty")
    try:
        with Image.open(source) as im:
            return work(im)
    except CodecError as e:
        raise CodecError(f"{prefix}{e}") from None
    except Image.DecompressionBombError as e:
        raise CodecError(f"{prefix}{_bomb(str(e), max_pixels, setting)}") from None
    except Image.UnidentifiedImageError:  # its message shows the file object's repr
        raise CodecError(f"{unreadable}: unknown format") from None
    except Exception as e:  # Pillow's plugins raise many kinds on damaged files
        raise CodecError(f"{unreadable}: {_short(e)}") from None


def _bomb(message: str, max_pixels: int | None, setting: str) -> str:
    """lcodec's words for Pillow's own refusal, which comes above twice Pillow's
    ``MAX_IMAGE_PIXELS``, before lcodec sees the size (only the message gives the count)."""
    ceiling = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    found = re.search(r"\((\d+) pixels\)", message)
    pixels = int(found.group(1)) if found else None
    if (pixels or ceiling) > pixel_budget(max_pixels):
        if pixels is None:
            return f"more than {over_budget(ceiling, max_pixels, setting)}"
        return over_budget(pixels, max_pixels, setting)
    count = f"{pixels:,} pixels" if pixels else f"more than {ceiling:,} pixels"
    return f"{count}, over Pillow's limit of {ceiling:,} (PIL.Image.MAX_IMAGE_PIXELS): raise it too"


def _is_empty(source: Path | io.BytesIO) -> bool:
    if isinstance(source, Path):
        return source.stat().st_size == 0
    return source.getbuffer().nbytes == 0


def _short(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _warn(message: str) -> None:
    warnings.warn(message, CodecWarning, stacklevel=2)


def _rawmode(im: Image.Image) -> str:
    """The raw mode of the first decoder tile (``"RGB;16B"`` for a 48-bit PNG), or ``""``."""
    tile = getattr(im, "tile", None) or []
    args = tile[0][3] if tile and len(tile[0]) > 3 else None
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else ""


def _source(im: Image.Image) -> tuple[str, int]:
    """The input's own mode and bits per sample, before Pillow's conversions.

    Pillow reads 16-bit RGB(A) and gray+alpha PNGs as 8-bit RGB(A), keeping only the top byte;
    the raw mode of the decoder tile still tells, as TIFF's BitsPerSample does.
    """
    raw, mode = _rawmode(im), im.mode
    bits = {"1": 1, "I": 32, "F": 32}.get(mode, 16 if mode.startswith("I;16") else 8)
    if ";16" in raw:
        bits = 16
    tags = getattr(im, "tag_v2", None)
    bps = tags.get(258) if tags is not None else None
    if isinstance(bps, tuple) and bps and mode != "1":
        bits = max(bps)
    if raw.startswith("LA;16") and mode == "RGBA":
        mode = "LA"
    return mode, bits


def _from_pil(im: Image.Image, max_pixels: int | None = None) -> Picture:
    check_dims(im.width, im.height)  # before any pixel is decoded
    check_budget(im.width, im.height, max_pixels)
    mode, bits = _source(im)
    icc = im.info.get("icc_profile") or None
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        _warn(f"only the first of {frames} frames is coded")
    if im.getexif().get(0x0112, 1) != 1:
        im = ImageOps.exif_transpose(im)  # a copy: the caller's image is never changed
    color, alpha, icc = _planes(im, mode, icc)
    if bits > 8:
        _warn(f"{bits}-bit samples reduced to 8 bits")
    if color.size == 0:
        raise CodecError("empty image")
    return _picture(color, alpha, icc, mode, bits)


#: Modes Pillow converts exactly (or, premultiplied alpha, nearly) to a layout lcodec codes.
_LOSSLESS = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB"}


def _planes(im: Image.Image, source_mode: str, icc: bytes | None):
    """Colour (HxWx3 RGB or HxW gray), alpha (or ``None``) and ICC profile of any PIL image."""
    m = im.mode
    if m == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif m in ("L", "RGB") and "transparency" in im.info:
        im = im.convert({"L": "LA", "RGB": "RGBA"}[m])
    elif m in _LOSSLESS:
        im = im.convert(_LOSSLESS[m])
    m = im.mode
    if m in ("L", "RGB"):
        return np.asarray(im), None, icc
    if m == "LA" or (m == "RGBA" and source_mode == "LA"):
        a = np.asarray(im)
        return a[:, :, 0], a[:, :, -1], icc
    if m == "RGBA":
        a = np.asarray(im)
        return a[:, :, :3], a[:, :, 3], icc
    if m == "I" or m.startswith("I;16"):
        return _reduce16(np.asarray(im)), None, icc
    if m == "F":
        raise CodecError("floating-point images are not supported (convert to 8 or 16 bits)")
    if m == "CMYK" and icc:
        rgb = _cms_to_srgb(im, icc)
        if rgb is not None:
            _warn("CMYK image converted to sRGB with its ICC profile")
            return rgb, None, None
    try:
        rgb = np.asarray(im.convert("RGB"))
    except (ValueError, OSError):
        raise CodecError(f"images of mode {m} are not supported") from None
    _warn(f"{m} image converted to RGB")
    return rgb, None, None


def _cms_to_srgb(im: Image.Image, icc: bytes) -> np.ndarray | None:
    """Colour-managed conversion to sRGB, or ``None`` where Pillow's LittleCMS cannot."""
    try:
        from PIL import ImageCms
    except ImportError:
        return None
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        return np.asarray(ImageCms.profileToProfile(im, src, dst, outputMode="RGB"))
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return None


def _reduce16(a: np.ndarray) -> np.ndarray:
    """16-bit samples to 8 bits, rounding: 65535 -> 255, 257 -> 1."""
    a = np.clip(a.astype(np.int64), 0, 65535)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def _picture(color, alpha, icc, mode: str, bits: int) -> Picture:
    if icc is not None:
        space = bytes(icc[16:20]) if len(icc) >= 20 else b""
        if space != _ICC_SPACE[color.ndim == 2]:
            name = space.decode("latin-1").strip() or "unknown"
            _warn(f"ICC profile for {name} data does not fit the image and is left out")
            icc = None
    return Picture(
        color=np.ascontiguousarray(color),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        icc_profile=bytes(icc) if icc else None,
        source_mode=mode,
        source_bits=bits,
    )


def _from_array(a: np.ndarray, max_pixels: int | None = None) -> Picture:
    if a.dtype == np.uint16:
        _warn("16-bit samples reduced to 8 bits")
        a, bits = _reduce16(a), 16
    elif a.dtype == np.uint8:
        bits = 8
    else:
        raise CodecError(f"expected a uint8 or uint16 array, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise CodecError(f"expected an HxW, HxWx2, HxWx3 or HxWx4 array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise CodecError(f"empty image of shape {a.shape}")
    check_dims(a.shape[1], a.shape[0])
    check_budget(a.shape[1], a.shape[0], max_pixels)
    channels = 1 if a.ndim == 2 else a.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    if channels in (1, 3):
        color, alpha = a, None
    else:
        color, alpha = (a[:, :, 0] if channels == 2 else a[:, :, :3]), a[:, :, -1]
    return _picture(color, alpha, None, mode, bits)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The gray a decoded RGB image stands for: the rounded mean of its three channels (the
    network codes gray as three equal channels, and averaging its errors lowers them)."""
    total = rgb.astype(np.uint16).sum(axis=2, dtype=np.uint16)
    return ((total + 1) // 3).astype(np.uint8)


def decoded_picture(
    rgb: np.ndarray,
    gray: bool,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    source_mode: str = "",
    source_bits: int = 8,
) -> Picture:
    """The ``Picture`` a decoder returns from the network's HxWx3 output and the side info."""
    color = gray_of(rgb) if gray else rgb
    return Picture(color, alpha, icc_profile, source_mode, source_bits)


def encode_alpha(alpha: np.ndarray) -> bytes:
    """The alpha plane, losslessly: an 8-bit grayscale PNG."""
    buf = io.BytesIO()
    Image.fromarray(alpha, "L").save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def decode_alpha(data: bytes, width: int, height: int) -> np.ndarray:
    """Inverse of ``encode_alpha``; the size is checked before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if im.size != (width, height) or im.mode != "L":
                raise CodecError("malformed alpha section (size or mode disagrees)")
            im.load()
            return np.asarray(im).copy()
    except CodecError:
        raise
    except Exception as e:  # Pillow raises many kinds on a damaged PNG
        raise CodecError(f"malformed alpha section: {_short(e)}") from None


def encode_png(arr: np.ndarray | Picture) -> bytes:
    """PNG bytes of an array or a ``Picture`` (with its ICC profile), marked as lcodec's."""
    im = arr.to_pil() if isinstance(arr, Picture) else Image.fromarray(arr)
    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    buf = io.BytesIO()
    im.save(buf, format="PNG", icc_profile=im.info.get("icc_profile"), pnginfo=info)
    return buf.getvalue()
