"""Hostile and damaged files: a ``CodecError`` or a picture, never a crash, hang or huge
allocation. Mutations recompute the CRC so that they reach the parser and the entropy decoder.
"""

import math
import struct
import time
import zlib

import numpy as np
import pytest
from conftest import make_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codec
from codec import bitstream
from codec.bitstream import pack, unpack
from codec.entropy.msh_gain import safe_stream
from codec.net.refine import Refinement

H, W = 32, 48
#: Seconds one decode of a damaged 32x48 file may take: far more than it needs.
SLOW = 10.0


def recrc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.fixture(scope="module")
def files():
    rgb = make_image(H, W, seed=11)
    yy, xx = np.mgrid[0:H, 0:W]
    rgba = np.concatenate([rgb, ((xx * yy) % 256).astype(np.uint8)[:, :, None]], axis=2)
    return {
        "rgb": codec.compress(rgb, 60),
        "rgba": codec.compress(rgba, 30),
        "v2": codec.encode(rgb, 60, format_version=2, model="lcodec-msh-gain").data,
        "v3": codec.compress(rgb, 60, model="lcodec-msh-gain"),
        "refined": refined(codec.compress(rgb, 60)),
    }


def refined(data: bytes) -> bytes:
    """``data`` with a synthesis refinement section of the largest form."""
    rng = np.random.default_rng(12)
    c = unpack(data)
    c.refinement = Refinement.quantize(2, rng.normal(0, 0.05, 384), rng.normal(0, 0.01, 3)).pack()
    return pack(c)


def decode_or_refuse(data: bytes) -> None:
    """The property every input must have."""
    start = time.monotonic()
    try:
        out = codec.decompress(data)
    except codec.CodecError as e:
        assert "\n" not in str(e)
    else:
        assert out.dtype == np.uint8 and out.shape[:2] == (H, W)
    assert time.monotonic() - start < SLOW


@st.composite
def mutations(draw, files):
    data = files[draw(st.sampled_from(sorted(files)))]
    body = bytearray(data[:-4])
    header = unpack(data).header_size
    kind = draw(st.sampled_from(["flip", "bytes", "truncate", "extend", "cut", "header"]))
    # Half of the positions fall in the streams, where the entropy decoder reads them.
    in_streams = draw(st.booleans())
    lo = header if in_streams else 0
    pos = draw(st.integers(lo, len(body) - 1))
    if kind == "flip":
        body[pos] ^= 1 << draw(st.integers(0, 7))
    elif kind == "bytes":
        chunk = draw(st.binary(min_size=1, max_size=16))
        body[pos : pos + len(chunk)] = chunk
    elif kind == "truncate":
        del body[pos:]
    elif kind == "extend":
        body += draw(st.binary(min_size=1, max_size=64))
    elif kind == "cut":
        del body[pos : pos + draw(st.integers(1, 32))]
    else:  # a header field set to an extreme value
        pos = draw(st.integers(4, min(header, 64) - 1))
        body[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
    return recrc(bytes(body))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_files_decode_or_raise_codec_error(files, data):
    decode_or_refuse(data.draw(mutations(files)))


def test_every_truncation_without_crc_fix_is_refused(files):
    data = files["rgba"]
    for cut in range(len(data)):
        with pytest.raises(codec.CodecError):
            codec.decompress(data[:cut])


@pytest.mark.parametrize("field", ["quality", "rate"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, 1e30])
def test_non_finite_and_out_of_range_floats(files, field, value):
    c = unpack(files["rgb"])
    setattr(c, field, value)
    with pytest.raises(codec.CodecError, match=field):
        codec.decompress(pack(c))


def test_enormous_and_inconsistent_shapes(files):
    c = unpack(files["rgb"])
    for z_shape in [(65535, 65535), (0, 0), (1, 65535)]:
        c.z_shape = z_shape
        with pytest.raises(codec.CodecError, match="sizes"):
            codec.decompress(pack(c))
    body = bytearray(files["rgb"][:-4])
    body[6:14] = struct.pack(">II", 65535, 65535)  # 2**32 pixels: refused before anything
    with pytest.raises(codec.CodecError, match="pixels"):
        codec.decompress(recrc(bytes(body)))


def test_padding_must_be_consistent(files):
    for bottom, right in [(63, 0), (64, 16), (255, 255)]:
        c = unpack(files["rgb"])
        c.pad_bottom, c.pad_right = bottom, right
        with pytest.raises(codec.CodecError, match="padding|sizes"):
            codec.decompress(pack(c))


def test_stream_lengths_the_encoder_cannot_make_are_refused(files):
    c = unpack(files["rgb"])
    for stream in [b"", b"\x00" * 4, b"\x00" * 9, c.streams[1] + b"\x00\x00"]:
        forged = unpack(files["rgb"])
        forged.streams[1] = stream
        with pytest.raises(codec.CodecError, match="stream"):
            codec.decompress(pack(forged))
    with pytest.raises(codec.CodecError):
        safe_stream(b"\x00" * 4000, 10)  # more than a word per symbol


def test_wrong_band_count_is_refused(files):
    c = unpack(files["rgb"])
    c.streams = c.streams + [c.streams[1]] * 2  # 3 bands for 2 latent rows
    with pytest.raises(codec.CodecError, match="bands"):
        codec.decompress(pack(c))


def test_garbage_streams_of_plausible_length(files):
    rng = np.random.default_rng(0)
    c = unpack(files["rgb"])
    for trial in range(20):
        for i in range(len(c.streams)):
            n = 4 * int(rng.integers(2, 64))
            fill = [rng.bytes(n), b"\xff" * n, b"\x00" * n][trial % 3]
            c.streams[i] = fill
        decode_or_refuse(pack(c))


def test_sections(files):
    c = unpack(files["rgba"])
    c.alpha = c.alpha[: len(c.alpha) // 2]
    with pytest.raises(codec.CodecError, match="alpha"):
        codec.decompress(pack(c))
    c = unpack(files["rgba"])
    c.alpha = codec.image.encode_alpha(np.zeros((H + 1, W), np.uint8))
    with pytest.raises(codec.CodecError, match="alpha"):
        codec.decompress(pack(c))
    body = bytearray(files["rgb"][:-4])
    body[14] = bitstream.LAYOUT_RGBA  # an alpha layout with no alpha section
    with pytest.raises(codec.CodecError, match="alpha"):
        codec.decompress(recrc(bytes(body)))


def test_unknown_sections(files):
    data = files["rgb"]
    c = unpack(data)
    pos = bitstream._FIXED.size + len(c.model_id)
    body = data[:-4]
    for kind, ok in [(7, False), (200, True)]:
        section = bytes([kind]) + struct.pack(">I", 3) + b"abc"
        forged = body[:pos] + bytes([body[pos] + 1]) + section + body[pos + 1 :]
        if ok:  # an unknown ancillary section is skipped
            assert codec.decompress(recrc(forged)).shape == (H, W, 3)
        else:
            with pytest.raises(codec.CodecError, match="section type 7"):
                codec.decompress(recrc(forged))
