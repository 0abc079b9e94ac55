"""The pixel budget: tiny files that declare huge images are refused from their headers, before
any pixel is decoded, any tensor allocated or any model loaded."""

import struct
import subprocess
import sys
import zlib

import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image, ImageFile

import codec
import codec.limits
import codec.runtime
from codec.bitstream import MAX_PIXELS, pack, unpack
from codec.cli import main


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes that declares ``width`` x ``height`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)


@pytest.fixture(scope="module")
def small_lcz():
    return codec.compress(make_image(16, 16), 50)


def bomb_lcz(small: bytes, side: int) -> bytes:
    """A well-formed .lcz of a few hundred bytes whose header declares ``side`` x ``side``."""
    c = unpack(small)
    c.width = c.height = side
    c.pad_bottom = c.pad_right = -side % 64
    c.z_shape = ((side + c.pad_bottom) // 64,) * 2
    return pack(c)


@pytest.fixture
def nothing_heavy(monkeypatch):
    """Fail the test if any pixel is decoded or the model is asked for."""

    def refuse(*args, **kwargs):
        raise AssertionError("heavy work: decoded pixels or loaded the model")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(codec.runtime, "load_model", refuse)


@pytest.fixture
def pillow_guard(monkeypatch):
    """The command sets Pillow's guard in its process; keep this test process's own."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def test_default_budget_is_pillows_and_within_the_format():
    assert codec.limits.MAX_IMAGE_PIXELS == codec.limits.pixel_budget() <= MAX_PIXELS
    r = subprocess.run(
        [sys.executable, "-c", "import codec.image, PIL.Image; print(PIL.Image.MAX_IMAGE_PIXELS)"],
        capture_output=True,
        text=True,
        check=True,
    )
    # Importing lcodec leaves Pillow's decompression-bomb guard on, at Pillow's default.
    assert int(r.stdout) == codec.limits.MAX_IMAGE_PIXELS


def test_bomb_png_is_refused_from_its_header(tmp_path, nothing_heavy):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(16000, 16000))
    assert path.stat().st_size < 100
    with pytest.raises(codec.CodecError, match=r"bomb\.png: 256,000,000 pixels.*pixel budget"):
        codec.compress(path)
    with pytest.raises(codec.CodecError, match="max_pixels"):
        codec.compress(path.read_bytes())


def test_budget_below_pillows_is_lcodecs_own_check(tmp_path, nothing_heavy):
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(4000, 3000))
    with pytest.raises(codec.CodecError, match=r"4000x3000 is 12,000,000 pixels.*max_pixels"):
        codec.compress(path, max_pixels=12_000_000 - 1)
    # Within the budget, decoding starts (Pillow's failures are CodecErrors).
    with pytest.raises(codec.CodecError, match="heavy work"):
        codec.compress(path, max_pixels=12_000_000)


def test_budget_covers_arrays_and_pil_images(monkeypatch):
    img = make_image(30, 40)
    for image in (img, Image.fromarray(img)):
        with pytest.raises(codec.CodecError, match="1,200 pixels, over the pixel budget of 1,000"):
            codec.encode(image, max_pixels=1000)
    monkeypatch.setattr(codec.limits, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(codec.CodecError, match="pixel budget of 1,000"):
        codec.compress(img)
    data = codec.compress(img, max_pixels=1200)
    with pytest.raises(codec.CodecError, match="pixel budget of 1,000"):  # decoding too
        codec.decompress(data)
    assert codec.decompress(data, max_pixels=1200).shape == img.shape


@pytest.mark.parametrize("bad", [0, -5, MAX_PIXELS + 1, 2.5, "many", True])
def test_bad_budgets_are_refused(bad):
    with pytest.raises(codec.CodecError, match="max_pixels"):
        codec.compress(make_image(8, 8), max_pixels=bad)
    with pytest.raises(codec.CodecError, match="max_pixels"):
        codec.decompress_many([], max_pixels=bad)


def test_bomb_lcz_is_refused_before_the_model_loads(small_lcz, tmp_path, nothing_heavy):
    bomb = bomb_lcz(small_lcz, 12000)
    assert len(bomb) < 400
    with pytest.raises(codec.CodecError, match="12000x12000 is 144,000,000 pixels"):
        codec.decompress(bomb)
    path = tmp_path / "bomb.lcz"
    path.write_bytes(bomb_lcz(small_lcz, 4096))
    with pytest.raises(codec.CodecError, match=r"bomb\.lcz: 4096x4096 is .*max_pixels"):
        codec.decompress(path, max_pixels=4096 * 4096 - 1)
    with pytest.raises(AssertionError, match="heavy work"):  # within the budget, it proceeds
        codec.decompress(path, max_pixels=4096 * 4096)


def test_command_refuses_bombs_with_its_setting(small_lcz, tmp_path, pillow_guard):
    png, lcz = tmp_path / "bomb.png", tmp_path / "huge.lcz"
    png.write_bytes(bomb_png(16000, 16000))
    lcz.write_bytes(bomb_lcz(small_lcz, 4096))
    r = CliRunner().invoke(main, ["compress", str(png)])
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert r.output.startswith(f"lcodec: error: {png}: 256,000,000 pixels")
    assert "--max-pixels" in r.output
    r = CliRunner().invoke(main, ["decompress", str(lcz), "--max-pixels", "1000000"])
    assert r.exit_code == 1 and "--max-pixels" in r.output and "4096x4096" in r.output
    assert Image.MAX_IMAGE_PIXELS == 1_000_000  # Pillow's guard follows the command's budget
    assert not (tmp_path / "huge.png").exists()
    r = CliRunner().invoke(main, ["compress", str(png), "--max-pixels", "0"])
    assert r.exit_code == 2 and "--max-pixels" in r.output


def test_pillows_own_limit_is_named_when_it_is_the_lower(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(2000, 1500))  # 3 MP: over twice Pillow's limit, within the budget
    with pytest.raises(codec.CodecError, match="Pillow's limit"):
        codec.compress(path, max_pixels=5_000_000)
    with pytest.raises(codec.CodecError, match="3,000,000 pixels, over the pixel budget"):
        codec.compress(path, max_pixels=2_000_000)
