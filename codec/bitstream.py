"""The ``.lcz`` container: pure bytes in, pure bytes out (no torch). See docs/FORMAT.md.

Every field is validated before anything is allocated from it, and every integer is read only
after checking that its bytes are there, so a hostile or damaged file ends in a ``CodecError``
with a one-line message rather than a crash or a huge allocation.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import zlib
from dataclasses import dataclass, field

from .errors import CodecError
from .files import file_or_bytes, naming

MAGIC = b"\x89LCZ"


@dataclass(frozen=True)
class Features:
    """What a format version has: the one place these rules are written, so that the encoder,
    the decoder and the latent coders ask here rather than compare version numbers."""

    #: Entropy parameters from the exact integer path (codec/entropy/exact.py), bit-identical on
    #: every device; without it, CompressAI's float path, exact only where the file was made.
    exact_params: bool
    #: y coded in bands of latent rows, one stream each (bounded memory per band).
    bands: bool
    #: Optional sections (alpha, refinement, ICC profile, source), non-RGB layouts, flags that
    #: must be 0, and a 16-bit stream count.
    sections: bool
    #: y coded with a space-channel context (channel groups, checkerboard halves), one stream
    #: per band in the order codec/entropy/elic_gain.py documents.
    context: bool = False


#: Every format version this lcodec reads. A new version is one line here, plus the
#: architecture that writes it (codec/net/__init__.py).
FEATURES = {
    1: Features(exact_params=False, bands=False, sections=False),
    2: Features(exact_params=True, bands=False, sections=False),
    3: Features(exact_params=True, bands=True, sections=True),
    4: Features(exact_params=True, bands=True, sections=True, context=True),
}
#: The version new files are written in by default.
VERSION = 3
READABLE_VERSIONS = tuple(FEATURES)
MAX_SIDE = 65535
MAX_PIXELS = 1 << 28
#: Streams in a version 1/2 file (one byte), and in a version 3 file: the hyper-latent plus at
#: most one band per latent row (65535 / 16 rows).
MAX_STREAMS = 64
MAX_STREAMS_V3 = 1 + 4096
MAX_SECTIONS = 16
MAX_ICC_BYTES = 1 << 24
MAX_MODE_CHARS = 16

LAYOUT_RGB, LAYOUT_GRAY, LAYOUT_RGBA, LAYOUT_GRAYA = 0, 1, 2, 3
LAYOUTS = {LAYOUT_RGB: "rgb", LAYOUT_GRAY: "gray", LAYOUT_RGBA: "rgba", LAYOUT_GRAYA: "gray+alpha"}
HAS_ALPHA = {LAYOUT_RGBA, LAYOUT_GRAYA}
PAD_REPLICATE = 0
PAD_MODES = {PAD_REPLICATE: "replicate"}

#: Section types below 128 are critical (a reader that does not know one must refuse the
#: file); from 128 on they are ancillary (an unknown one is skipped), as PNG does with chunks.
SECTION_ALPHA = 1
SECTION_REFINEMENT = 2
SECTION_ICC = 128
SECTION_SOURCE = 129
SECTION_NAMES = {
    SECTION_ALPHA: "alpha",
    SECTION_REFINEMENT: "refinement",
    SECTION_ICC: "icc_profile",
    SECTION_SOURCE: "source",
}
#: Largest refinement section: the form, two steps, a scale per channel and colour for up to
#: 1024 channels, three offsets (codec/net/refine.py parses it against the model).
MAX_REFINEMENT_BYTES = 9 + 3 * 1024 + 3

# magic, version, flags, width, height, layout, quality, rate, pad mode, pad bottom, pad right,
# hyper-latent height and width, weights hash, model-id length
_FIXED = struct.Struct(">4sBBIIBffBBBHH8sB")
_U8, _U16, _U32 = struct.Struct(">B"), struct.Struct(">H"), struct.Struct(">I")
_SECTION = struct.Struct(">BI")


@dataclass
class Container:
    """Everything a ``.lcz`` file holds; the streams are opaque entropy-coded bytes.

    ``streams`` is ``[z, y]`` in versions 1 and 2, and ``[z, y band 0, y band 1, ...]`` in
    version 3. ``alpha`` is the PNG-coded alpha plane of an ``rgba`` or ``gray+alpha`` layout.
    """

    width: int
    height: int
    quality: float
    rate: float
    model_id: str
    weights_hash: bytes
    z_shape: tuple[int, int]
    streams: list[bytes] = field(default_factory=list)
    pad_bottom: int = 0
    pad_right: int = 0
    layout: int = LAYOUT_RGB
    pad_mode: int = PAD_REPLICATE
    flags: int = 0
    version: int = VERSION
    alpha: bytes | None = None
    #: The synthesis refinement's payload (codec/net/refine.py), opaque here.
    refinement: bytes | None = None
    icc_profile: bytes | None = None
    source_mode: str = ""  # the input's PIL mode, e.g. "P", "CMYK", "I;16"; informational
    source_bits: int = 8  # bits per sample of the input; informational

    def sections(self) -> dict[int, bytes]:
        """The optional sections this container writes (version 3 only)."""
        out = {}
        if self.alpha is not None:
            out[SECTION_ALPHA] = self.alpha
        if self.refinement is not None:
            out[SECTION_REFINEMENT] = self.refinement
        if self.icc_profile is not None:
            out[SECTION_ICC] = self.icc_profile
        if self.source_mode:
            out[SECTION_SOURCE] = bytes([self.source_bits]) + self.source_mode.encode("ascii")
        return out

    @property
    def header_size(self) -> int:
        """Bytes before the first stream: everything but the streams and the CRC."""
        size = _FIXED.size + len(self.model_id.encode())
        if not features(self.version).sections:
            return size + 1 + 4 * len(self.streams)
        sections = sum(_SECTION.size + len(v) for v in self.sections().values())
        return size + 1 + sections + 2 + 4 * len(self.streams)


def features(version: int) -> Features:
    """What format ``version`` has; ``CodecError`` for a version this lcodec does not know."""
    try:
        return FEATURES[version]
    except KeyError:
        raise CodecError(f"unknown format version {version}") from None


def _check_dims(width: int, height: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise CodecError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise CodecError(f"image of {width * height} pixels exceeds the {MAX_PIXELS} limit")


def check_dims(width: int, height: int) -> None:
    """Refuse image sizes outside the format's limits, before anything is allocated."""
    _check_dims(width, height)


def _check_floats(quality: float, rate: float) -> None:
    if not (math.isfinite(quality) and 0 <= quality <= 100):
        raise CodecError("malformed header (quality out of range)")
    if not (math.isfinite(rate) and rate >= 0):
        raise CodecError("malformed header (rate out of range)")


def pack(c: Container) -> bytes:
    """Serialise a container: header, sections, stream lengths, streams, then a CRC32."""
    _check_dims(c.width, c.height)
    if c.version not in READABLE_VERSIONS:
        raise CodecError(f"cannot write format version {c.version}")
    model_id = c.model_id.encode("ascii")
    if len(model_id) > 255 or len(c.weights_hash) != 8:
        raise CodecError("model id longer than 255 bytes or weights hash not 8 bytes")
    if c.layout not in LAYOUTS:
        raise CodecError(f"unknown channel layout {c.layout}")
    if (c.layout in HAS_ALPHA) != (c.alpha is not None):
        raise CodecError("an alpha stream goes with an alpha layout, and only with one")
    head = _FIXED.pack(
        MAGIC,
        c.version,
        c.flags,
        c.width,
        c.height,
        c.layout,
        c.quality,
        c.rate,
        c.pad_mode,
        c.pad_bottom,
        c.pad_right,
        c.z_shape[0],
        c.z_shape[1],
        c.weights_hash,
        len(model_id),
    )
    if not features(c.version).sections:
        if c.layout != LAYOUT_RGB or c.sections():
            raise CodecError(f"format version {c.version} holds only RGB images, no sections")
        if len(c.streams) > MAX_STREAMS:
            raise CodecError(f"more than {MAX_STREAMS} streams")
        table = _U8.pack(len(c.streams))
    else:
        sections = c.sections()
        if not 2 <= len(c.streams) <= MAX_STREAMS_V3:
            raise CodecError(f"a version {c.version} file has 2 to {MAX_STREAMS_V3} streams")
        if c.icc_profile is not None and len(c.icc_profile) > MAX_ICC_BYTES:
            raise CodecError(f"ICC profile larger than {MAX_ICC_BYTES} bytes")
        if c.refinement is not None and len(c.refinement) > MAX_REFINEMENT_BYTES:
            raise CodecError(f"refinement larger than {MAX_REFINEMENT_BYTES} bytes")
        if len(c.source_mode) > MAX_MODE_CHARS or not 1 <= c.source_bits <= 255:
            raise CodecError("malformed source description")
        table = _U8.pack(len(sections))
        for kind, payload in sections.items():
            table += _SECTION.pack(kind, len(payload)) + payload
        table += _U16.pack(len(c.streams))
    table += b"".join(_U32.pack(len(s)) for s in c.streams)
    body = head + model_id + table + b"".join(c.streams)
    return body + _U32.pack(zlib.crc32(body))


class _Reader:
    """Reads big-endian fields from ``body``, checking every length before it reads."""

    def __init__(self, body: bytes, pos: int):
        self.body, self.pos = body, pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.body):
            raise CodecError(f"truncated file ({what})")
        out = self.body[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, s: struct.Struct, what: str) -> int:
        return s.unpack(self.take(s.size, what))[0]


def unpack(data: bytes) -> Container:
    """Parse and validate a container; raises ``CodecError`` on anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected the bytes of a .lcz file, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise CodecError("empty, not an lcodec file")
    if len(data) < 4 or data[:4] != MAGIC:
        raise CodecError("not an lcodec file (bad magic bytes)")
    if len(data) < 5:
        raise CodecError("truncated file")
    if data[4] not in READABLE_VERSIONS:
        raise CodecError(
            f"unsupported .lcz format version {data[4]} "
            f"(this lcodec reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if len(data) < _FIXED.size + 1 + _U32.size:
        raise CodecError("truncated file")
    body, (crc,) = data[:-4], _U32.unpack_from(data, len(data) - 4)
    if zlib.crc32(body) != crc:
        declared = _declared_size(data)
        if declared is not None and declared > len(data):
            size = "" if declared == math.inf else f"; its header declares {declared}"
            raise CodecError(f"truncated or damaged file ({len(data)} bytes{size})")
        raise CodecError("corrupt file (CRC mismatch)")
    c, lengths, pos = _header(body)
    if pos + sum(lengths) != len(body):
        raise CodecError("stream lengths do not match the file size")
    c.streams = [body[a : a + n] for a, n in zip(itertools.accumulate([pos, *lengths]), lengths)]
    return c


def _declared_size(data: bytes) -> float | None:
    """The file's size by its own header, infinite when the file ends inside the header, None
    when the header cannot be read: a file shorter than its header says was most likely cut
    (a damaged stream length reads the same, hence "or damaged")."""
    try:
        _, lengths, pos = _header(data)
    except CodecError as e:
        return math.inf if str(e).startswith("truncated file") else None
    return pos + sum(lengths) + _U32.size


def _header(body: bytes) -> tuple[Container, list[int], int]:
    """The container's fields, its streams' lengths and where the first stream starts."""
    (
        _,
        version,
        flags,
        width,
        height,
        layout,
        quality,
        rate,
        pad_mode,
        pad_bottom,
        pad_right,
        zh,
        zw,
        whash,
        id_len,
    ) = _FIXED.unpack_from(body)
    _check_dims(width, height)
    _check_floats(quality, rate)
    has = features(version)
    if layout not in LAYOUTS or (not has.sections and layout != LAYOUT_RGB):
        raise CodecError(f"unknown channel layout {layout}")
    if pad_mode not in PAD_MODES:
        raise CodecError(f"unknown padding mode {pad_mode}")
    if has.sections and flags != 0:
        raise CodecError(f"unknown flags {flags:#04x}")
    r = _Reader(body, _FIXED.size)
    try:
        model_id = r.take(id_len, "model id").decode("ascii")
    except UnicodeDecodeError:
        raise CodecError("malformed model id") from None
    c = Container(
        width=width,
        height=height,
        quality=quality,
        rate=rate,
        model_id=model_id,
        weights_hash=whash,
        z_shape=(zh, zw),
        pad_bottom=pad_bottom,
        pad_right=pad_right,
        layout=layout,
        pad_mode=pad_mode,
        flags=flags,
        version=version,
    )
    if has.sections:
        _read_sections(r, c)
        n_streams = r.uint(_U16, "stream table")
        if not 2 <= n_streams <= MAX_STREAMS_V3:
            raise CodecError(f"malformed stream table ({n_streams} streams)")
    else:
        n_streams = r.uint(_U8, "stream table")
        if n_streams != 2:  # versions 1 and 2 always hold [z, y]
            raise CodecError(f"malformed stream table ({n_streams} streams)")
    lengths = [r.uint(_U32, "stream table") for _ in range(n_streams)]
    return c, lengths, r.pos


def _read_sections(r: _Reader, c: Container) -> None:
    count = r.uint(_U8, "section table")
    if count > MAX_SECTIONS:
        raise CodecError(f"malformed section table ({count} sections)")
    seen = set()
    for _ in range(count):
        kind, length = _SECTION.unpack(r.take(_SECTION.size, "section table"))
        payload = r.take(length, "section")
        if kind in seen:
            raise CodecError(f"section {kind} appears twice")
        seen.add(kind)
        if kind == SECTION_ALPHA:
            c.alpha = payload
        elif kind == SECTION_REFINEMENT:
            if length > MAX_REFINEMENT_BYTES:
                raise CodecError("refinement section too large")
            c.refinement = payload
        elif kind == SECTION_ICC:
            if length > MAX_ICC_BYTES:
                raise CodecError("ICC profile section too large")
            c.icc_profile = payload
        elif kind == SECTION_SOURCE:
            if not 2 <= length <= 1 + MAX_MODE_CHARS or payload[0] == 0:
                raise CodecError("malformed source section")
            try:
                c.source_mode = payload[1:].decode("ascii")
            except UnicodeDecodeError:
                raise CodecError("malformed source section") from None
            c.source_bits = payload[0]
        elif kind < 128:
            raise CodecError(f"unsupported section type {kind} (needs a newer lcodec)")
    if (c.layout in HAS_ALPHA) != (c.alpha is not None):
        raise CodecError("alpha section and channel layout disagree")


def info(data: bytes | str | os.PathLike) -> dict:
    """What a ``.lcz`` file (bytes or a path) holds, without decoding it."""
    data, name = file_or_bytes(data)
    with naming(name):
        c = unpack(data)
    return {
        "format_version": c.version,
        "model": c.model_id,
        "weights_hash": c.weights_hash.hex(),
        "width": c.width,
        "height": c.height,
        "layout": LAYOUTS[c.layout],
        "source": {"mode": c.source_mode, "bits": c.source_bits} if c.source_mode else None,
        "quality": round(c.quality, 4),
        "rate": round(c.rate, 6),
        "padding": {
            "bottom": c.pad_bottom,
            "right": c.pad_right,
            "mode": PAD_MODES[c.pad_mode],
        },
        "hyper_latent_shape": list(c.z_shape),
        "bytes": len(data),
        "header_bytes": len(data) - sum(map(len, c.streams)) - 4,
        "section_bytes": {
            "alpha": 0 if c.alpha is None else len(c.alpha),
            "refinement": 0 if c.refinement is None else len(c.refinement),
            "icc_profile": 0 if c.icc_profile is None else len(c.icc_profile),
        },
        "stream_bytes": {"z": len(c.streams[0]), "y": sum(map(len, c.streams[1:]))},
        "y_bands": len(c.streams) - 1,
        "crc_bytes": 4,
        "bpp": 8 * len(data) / (c.width * c.height),
    }
