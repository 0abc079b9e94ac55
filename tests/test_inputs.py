"""Real-world inputs: every channel layout, palette, CMYK, 16-bit, ICC profiles, bad files."""

import io
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image, ImageCms

import codec
from codec.bitstream import unpack
from codec.cli import main

H, W = 32, 48


@pytest.fixture(scope="module")
def rgb():
    return make_image(H, W, seed=7)


@pytest.fixture(scope="module")
def gray(rgb):
    return np.asarray(Image.fromarray(rgb).convert("L"))


@pytest.fixture(scope="module")
def alpha():
    yy, xx = np.mgrid[0:H, 0:W]
    a = ((xx * 7 + yy * 3) % 256).astype(np.uint8)
    a[:8, :8] = 0
    return a


def png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def png16(a: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB or gray+alpha)."""
    h, w = a.shape[:2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[1 if a.ndim == 2 else a.shape[2]]
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_gray_codes_through_rgb_and_decodes_to_one_channel(gray):
    data = codec.compress(png_bytes(Image.fromarray(gray)), 50)
    out = codec.decompress(data)
    assert out.shape == (H, W) and out.dtype == np.uint8
    meta = codec.info(data)
    assert meta["layout"] == "gray" and meta["source"] is None  # nothing beyond the layout
    # The network sees three equal channels: the same streams as the replicated RGB image.
    as_rgb = codec.compress(np.repeat(gray[:, :, None], 3, axis=2), 50)
    assert unpack(data).streams == unpack(as_rgb).streams
    pic = codec.decode(data)
    assert pic.mode == "L" and pic.alpha is None
    assert np.array_equal(codec.decompress(data, mode="RGB"), np.repeat(out[:, :, None], 3, 2))


def test_gray_array_and_reconstruction_agree(gray):
    enc = codec.encode(gray, 40)
    assert enc.reconstruction.shape == (H, W)
    assert np.array_equal(codec.decompress(enc.data), enc.reconstruction)


def test_rgba_keeps_alpha_losslessly(rgb, alpha):
    rgba = np.concatenate([rgb, alpha[:, :, None]], axis=2)
    enc = codec.encode(png_bytes(Image.fromarray(rgba, "RGBA")), 50)
    out = codec.decompress(enc.data)
    assert out.shape == (H, W, 4)
    assert np.array_equal(out[:, :, 3], alpha)
    assert np.array_equal(out, enc.reconstruction)
    meta = codec.info(enc.data)
    assert meta["layout"] == "rgba" and meta["section_bytes"]["alpha"] > 0
    # The colour is coded exactly as the RGB image alone would be.
    assert unpack(enc.data).streams == unpack(codec.compress(rgb, 50)).streams
    assert codec.decompress(enc.data, mode="RGB").shape == (H, W, 3)


def test_gray_alpha(gray, alpha):
    la = np.stack([gray, alpha], axis=2)
    data = codec.compress(png_bytes(Image.fromarray(la, "LA")), 50)
    out = codec.decompress(data)
    assert out.shape == (H, W, 2) and np.array_equal(out[:, :, 1], alpha)
    assert codec.decode(data).mode == "LA" and codec.info(data)["layout"] == "gray+alpha"


def test_palette_without_and_with_transparency(rgb):
    p = Image.fromarray(rgb).quantize(16)
    data = codec.compress(png_bytes(p), 50)
    assert codec.decompress(data).shape == (H, W, 3)
    assert codec.info(data)["source"]["mode"] == "P"
    data = codec.compress(png_bytes(p, transparency=3), 50)
    out = codec.decompress(data)
    assert out.shape == (H, W, 4)
    expected = np.where(np.asarray(p) == 3, 0, 255)
    assert np.array_equal(out[:, :, 3], expected)


def test_bilevel_is_gray():
    im = Image.fromarray((make_image(H, W)[:, :, 0] > 128).astype(np.uint8) * 255).convert("1")
    assert codec.decompress(codec.compress(png_bytes(im), 50)).shape == (H, W)


def test_cmyk_jpeg_becomes_rgb_with_a_warning(rgb):
    for icc in (None, b"not really a CMYK profile" * 8):  # unusable profile: plain conversion
        buf = io.BytesIO()
        Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG", quality=95, icc_profile=icc)
        with pytest.warns(codec.CodecWarning, match="CMYK"):
            data = codec.compress(buf.getvalue(), 50)
        assert codec.decompress(data).shape == (H, W, 3)
        assert codec.info(data)["source"]["mode"] == "CMYK"
        assert codec.decode(data).icc_profile is None  # the pixels are sRGB now


def test_icc_profile_is_carried_and_written_back(rgb, tmp_path):
    icc = srgb_icc()
    src = tmp_path / "icc.png"
    Image.fromarray(rgb).save(src, icc_profile=icc)
    data = codec.compress(src, 50)
    assert codec.decode(data).icc_profile == icc
    assert codec.info(data)["section_bytes"]["icc_profile"] == len(icc)
    lcz = tmp_path / "icc.lcz"
    lcz.write_bytes(data)
    out = tmp_path / "out.png"
    assert CliRunner().invoke(main, ["decompress", str(lcz), "-o", str(out)]).exit_code == 0
    assert Image.open(out).info.get("icc_profile") == icc


def test_icc_profile_of_the_wrong_colour_space_is_dropped_with_a_warning(gray):
    data = png_bytes(Image.fromarray(gray), icc_profile=srgb_icc())
    with pytest.warns(codec.CodecWarning, match="ICC"):
        out = codec.compress(data, 50)
    assert codec.decode(out).icc_profile is None


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_png_is_reduced_with_a_warning(channels):
    rng = np.random.default_rng(channels)
    shape = (H, W) if channels == 1 else (H, W, channels)
    a16 = (make_image(H, W)[:, :, 0].astype(np.uint16) * 257)[:, :, None] * np.ones(
        channels, np.uint16
    )
    a16 = a16.reshape(shape) + rng.integers(0, 200, shape).astype(np.uint16)
    with pytest.warns(codec.CodecWarning, match="16-bit"):
        data = codec.compress(png16(a16), 50)
    out = codec.decompress(data)
    assert out.shape == ((H, W) if channels == 1 else (H, W, channels))
    assert codec.info(data)["source"]["bits"] == 16
    if channels in (2, 4):  # alpha stays lossless: the 16-bit value's top byte or rounding
        top = a16[..., -1]
        assert np.abs(out[..., -1].astype(int) - top / 257).max() <= 1


def test_16_bit_tiff_and_arrays(gray, tmp_path):
    a16 = gray.astype(np.uint16) * 257
    path = tmp_path / "g16.tif"
    Image.fromarray(a16).save(path)
    with pytest.warns(codec.CodecWarning, match="16-bit"):
        data = codec.compress(path, 50)
    assert codec.decompress(data).shape == (H, W)
    with pytest.warns(codec.CodecWarning, match="16-bit"):
        pic = codec.image.read_image(a16)
    assert np.array_equal(pic.color, gray)


def test_float_images_are_refused(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.zeros((H, W), np.float32)).save(path)
    with pytest.raises(codec.CodecError, match="floating-point"):
        codec.compress(path)


def test_animation_codes_the_first_frame_with_a_warning(rgb):
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.warns(codec.CodecWarning, match="first of 2 frames"):
        data = codec.compress(buf.getvalue(), 50)
    assert codec.decompress(data).shape == (H, W, 3)


def test_exif_orientation_still_applies(rgb):
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise when shown
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", exif=exif)
    assert codec.decompress(codec.compress(buf.getvalue(), 50)).shape == (W, H, 3)


@pytest.mark.parametrize("content", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n" + bytes(20)])
def test_non_images_are_one_line_errors(content, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(codec.CodecError, match="cannot read"):
        codec.compress(path)
    r = CliRunner().invoke(main, ["compress", str(path)])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "Traceback" not in r.output


def test_old_versions_refuse_what_they_cannot_hold(rgb, alpha):
    rgba = np.concatenate([rgb, alpha[:, :, None]], axis=2)
    with pytest.raises(codec.CodecError, match="version 2"):
        codec.encode(rgba, 50, format_version=2)
    with pytest.raises(codec.CodecError, match="mode"):
        codec.decompress(codec.compress(rgb, 50), mode="CMYK")
