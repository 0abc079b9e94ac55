"""The ``.lcz`` container: pure bytes in, pure bytes out (no torch). See docs/FORMAT.md.

Every field is validated before anything is allocated from it, so a hostile or damaged file ends
in a ``CodecError`` with a one-line message rather than a crash or a huge allocation.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .errors import CodecError

MAGIC = b"\x89LCZ"
VERSION = 2  # 2: exact integer entropy parameters (codec/exact.py); 1: CompressAI's float path
READABLE_VERSIONS = (1, 2)
MAX_SIDE = 65535
MAX_PIXELS = 1 << 28
MAX_STREAMS = 64
LAYOUT_RGB = 0
LAYOUTS = {LAYOUT_RGB: "rgb"}
PAD_REPLICATE = 0
PAD_MODES = {PAD_REPLICATE: "replicate"}

# magic, version, flags, width, height, layout, quality, rate, pad mode, pad bottom, pad right,
# hyper-latent height and width, weights hash, model-id length
_FIXED = struct.Struct(">4sBBIIBffBBBHH8sB")
_CRC = struct.Struct(">I")


@dataclass
class Container:
    """Everything a ``.lcz`` file holds; the streams are opaque entropy-coded bytes."""

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

    @property
    def header_size(self) -> int:
        return _FIXED.size + len(self.model_id.encode()) + 1 + 4 * len(self.streams)


def _check_dims(width: int, height: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise CodecError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise CodecError(f"image of {width * height} pixels exceeds the {MAX_PIXELS} limit")


def pack(c: Container) -> bytes:
    """Serialise a container: header, stream lengths, streams, then a CRC32 over all of it."""
    _check_dims(c.width, c.height)
    model_id = c.model_id.encode("ascii")
    if len(model_id) > 255 or len(c.weights_hash) != 8:
        raise CodecError("model id longer than 255 bytes or weights hash not 8 bytes")
    if len(c.streams) > MAX_STREAMS:
        raise CodecError(f"more than {MAX_STREAMS} streams")
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
    table = bytes([len(c.streams)]) + b"".join(_CRC.pack(len(s)) for s in c.streams)
    body = head + model_id + table + b"".join(c.streams)
    return body + _CRC.pack(zlib.crc32(body))


def unpack(data: bytes) -> Container:
    """Parse and validate a container; raises ``CodecError`` on anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError("expected bytes")
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise CodecError("not an lcodec file (bad magic bytes)")
    if len(data) < 5:
        raise CodecError("truncated file")
    if data[4] not in READABLE_VERSIONS:
        raise CodecError(
            f"unsupported .lcz format version {data[4]} "
            f"(this lcodec reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if len(data) < _FIXED.size + 1 + _CRC.size:
        raise CodecError("truncated file")
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
    ) = _FIXED.unpack_from(data)
    body, (crc,) = data[:-4], _CRC.unpack_from(data, len(data) - 4)
    if zlib.crc32(body) != crc:
        raise CodecError("corrupt file (CRC mismatch)")
    _check_dims(width, height)
    if layout not in LAYOUTS:
        raise CodecError(f"unknown channel layout {layout}")
    if pad_mode not in PAD_MODES:
        raise CodecError(f"unknown padding mode {pad_mode}")
    pos = _FIXED.size
    if pos + id_len + 1 > len(body):
        raise CodecError("truncated header")
    try:
        model_id = body[pos : pos + id_len].decode("ascii")
    except UnicodeDecodeError:
        raise CodecError("malformed model id") from None
    pos += id_len
    n_streams = body[pos]
    pos += 1
    if n_streams > MAX_STREAMS or pos + 4 * n_streams > len(body):
        raise CodecError("malformed stream table")
    lengths = [_CRC.unpack_from(body, pos + 4 * i)[0] for i in range(n_streams)]
    pos += 4 * n_streams
    if pos + sum(lengths) != len(body):
        raise CodecError("stream lengths do not match the file size")
    streams = []
    for n in lengths:
        streams.append(body[pos : pos + n])
        pos += n
    return Container(
        width=width,
        height=height,
        quality=quality,
        rate=rate,
        model_id=model_id,
        weights_hash=whash,
        z_shape=(zh, zw),
        streams=streams,
        pad_bottom=pad_bottom,
        pad_right=pad_right,
        layout=layout,
        pad_mode=pad_mode,
        flags=flags,
        version=version,
    )
