"""The Pillow plugin, driven through Pillow's and imageio's own APIs."""

import io
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image, ImageCms, UnidentifiedImageError

import codec
from codec import bitstream
from codec.cli import main


@pytest.fixture
def photo():
    return Image.fromarray(make_image(70, 90))


@pytest.fixture
def lcz(photo, tmp_path):
    path = tmp_path / "photo.lcz"
    photo.save(path, quality=60)
    return path


def test_registered_after_import_codec():
    assert Image.registered_extensions()[".lcz"] == "LCZ"
    assert "LCZ" in Image.OPEN and "LCZ" in Image.SAVE
    assert Image.MIME["LCZ"] == "image/x-lcz"


def test_save_writes_what_codec_writes(photo, lcz):
    data = lcz.read_bytes()
    assert data == codec.compress(photo, quality=60)
    assert codec.info(data)["quality"] == 60
    buf = io.BytesIO()
    photo.save(buf, format="LCZ", target_size=600)
    assert buf.getvalue() == codec.compress(photo, target_size=600)
    assert len(buf.getvalue()) <= 600


def test_open_reads_the_header_and_load_decodes(lcz, monkeypatch):
    calls = []
    real = codec.api.decode
    monkeypatch.setattr(codec.api, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    with Image.open(lcz) as im:
        assert (im.format, im.size, im.mode) == ("LCZ", (90, 70), "RGB")
        assert calls == []
        pixels = np.asarray(im)
    assert calls == [1]
    assert np.array_equal(pixels, codec.decompress(lcz.read_bytes()))


def test_open_imports_no_torch(lcz):
    probe = (
        "import sys, codec\nfrom PIL import Image\n"
        f"im = Image.open({str(lcz)!r})\n"
        "print(im.format, im.size, im.mode, 'torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["LCZ", "(90,", "70)", "RGB", "False"]


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_modes_and_alpha_come_back(mode, tmp_path):
    rgb = make_image(40, 56, seed=2)
    alpha = np.tile(np.arange(56, dtype=np.uint8) * 4, (40, 1))
    im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA").convert(mode)
    path = tmp_path / f"{mode}.lcz"
    im.save(path)
    with Image.open(path) as back:
        assert back.mode == mode and back.size == im.size
        if "A" in mode:
            assert np.array_equal(np.asarray(back)[..., -1], np.asarray(im)[..., -1])


def test_icc_profile_is_kept_and_save_option_overrides_it(photo, tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo.info["icc_profile"] = srgb
    photo.save(tmp_path / "a.lcz")
    with Image.open(tmp_path / "a.lcz") as im:
        assert im.info["icc_profile"] == srgb
    photo.save(tmp_path / "b.lcz", icc_profile=None)
    with Image.open(tmp_path / "b.lcz") as im:
        assert "icc_profile" not in im.info
    assert photo.info["icc_profile"] == srgb


def test_bad_files_raise_pillows_errors_with_the_reason(lcz, tmp_path):
    data = lcz.read_bytes()
    bad = tmp_path / "bad.lcz"
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(UnidentifiedImageError, match=r"corrupt file \(CRC mismatch\)"):
        Image.open(bad)
    bad.write_bytes(b"not an image at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)

    c = bitstream.unpack(data)
    c.model_id, c.weights_hash = "no-such-model", bytes(8)
    bad.write_bytes(bitstream.pack(c))
    with Image.open(bad) as im:  # the header is sound; the weights are missing
        assert im.size == (90, 70)
        with pytest.raises(OSError, match="needs model release 'no-such-model'") as e:
            im.load()
    assert "\n" not in str(e.value)


def test_bad_save_options_raise_and_leave_no_file(photo, tmp_path):
    path = tmp_path / "x.lcz"
    with pytest.raises(ValueError, match="quality must be between 0 and 100"):
        photo.save(path, quality=300)
    assert not path.exists()


def test_imageio_reads_and_writes_through_the_plugin(lcz, tmp_path):
    iio = pytest.importorskip("imageio.v3")
    assert np.array_equal(iio.imread(lcz), codec.decompress(lcz.read_bytes()))
    out = tmp_path / "w.lcz"
    iio.imwrite(out, make_image(48, 64))
    assert codec.decompress(out.read_bytes()).shape == (48, 64, 3)


def test_compress_leaves_lcz_files_in_a_folder_alone(photo, tmp_path):
    """With the plugin Pillow opens .lcz files, but they are not images to compress."""
    folder = tmp_path / "in"
    folder.mkdir()
    photo.save(folder / "a.png")
    photo.save(folder / "b.lcz")
    r = CliRunner().invoke(main, ["compress", str(folder), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.lcz"]


@pytest.mark.parametrize("option", ["model", "weights"])
def test_save_writes_with_the_release_named(photo, tmp_path, option):
    path = tmp_path / "old.lcz"
    photo.save(path, quality=40, **{option: "lcodec-msh-gain"})
    assert codec.info(path.read_bytes())["model"] == "lcodec-msh-gain"
