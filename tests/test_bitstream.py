"""The container alone: pure bytes, no network."""

import struct
import zlib

import pytest

from codec.bitstream import MAGIC, VERSION, Container, pack, unpack
from codec.errors import CodecError


def sample(**kw) -> Container:
    base = dict(
        width=101,
        height=77,
        quality=42.5,
        rate=2.5,
        model_id="test-model",
        weights_hash=bytes(range(8)),
        z_shape=(2, 2),
        streams=[b"zz", b"yyyy" * 10],
        pad_bottom=51,
        pad_right=27,
    )
    base.update(kw)
    return Container(**base)


def recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def test_round_trip_keeps_every_field():
    c = sample()
    data = pack(c)
    assert data[:4] == MAGIC and data[4] == VERSION
    assert unpack(data) == c
    assert c.header_size + sum(map(len, c.streams)) + 4 == len(data)


@pytest.mark.parametrize("cut", [0, 3, 10, 30, -1, -5])
def test_truncated(cut):
    data = pack(sample())
    with pytest.raises(CodecError):
        unpack(data[:cut])


@pytest.mark.parametrize("keep", [-1, -4, -30])
def test_a_file_cut_in_its_streams_says_so_with_both_sizes(keep):
    data = pack(sample())
    message = (
        rf"truncated or damaged file \({len(data) + keep} bytes; its header declares {len(data)}\)"
    )
    with pytest.raises(CodecError, match=message):
        unpack(data[:keep])


def test_a_file_cut_in_its_stream_table_says_truncated():
    c = sample()
    data = pack(c)
    with pytest.raises(CodecError, match="truncated or damaged file"):
        unpack(data[: c.header_size - 2])


def test_a_stream_length_made_larger_reads_as_truncated_or_damaged():
    c = sample()
    data = bytearray(pack(c))
    data[c.header_size - 4] ^= 0x01  # the high byte of the last stream's length
    with pytest.raises(CodecError, match=r"truncated or damaged file \(\d+ bytes; its header"):
        unpack(bytes(data))


def test_a_damaged_stream_is_a_crc_mismatch_not_truncation():
    data = bytearray(pack(sample()))
    data[-10] ^= 0x01
    with pytest.raises(CodecError, match="CRC mismatch"):
        unpack(bytes(data))


def test_wrong_magic():
    data = pack(sample())
    with pytest.raises(CodecError, match="magic"):
        unpack(b"PNG\x00" + data[4:])


def test_bad_crc_on_any_flipped_byte():
    data = bytearray(pack(sample()))
    for i in range(5, len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x10
        with pytest.raises(CodecError):
            unpack(bytes(flipped))


def test_unknown_version_is_named():
    data = bytearray(pack(sample()))
    data[4] = 99
    with pytest.raises(CodecError, match="version 99"):
        unpack(recrc(bytes(data)))


def test_extended_file_is_rejected():
    data = pack(sample())
    with pytest.raises(CodecError):
        unpack(data + b"\x00")
    with pytest.raises(CodecError, match="stream lengths"):
        unpack(recrc(data[:-4] + b"extra" + data[-4:]))


@pytest.mark.parametrize("w,h", [(0, 10), (10, 0), (70000, 10), (60000, 60000)])
def test_dimensions_validated_before_use(w, h):
    with pytest.raises(CodecError):
        pack(sample(width=w, height=h))
    good = pack(sample())
    forged = good[:6] + struct.pack(">II", w, h) + good[14:]
    with pytest.raises(CodecError, match="size|pixels"):
        unpack(recrc(forged))


def test_not_bytes():
    with pytest.raises(CodecError):
        unpack("a string")
