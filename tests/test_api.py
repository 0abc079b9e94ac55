"""The library on the shipped weights: round trips, exactness, errors."""

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

import codec
from codec.bitstream import pack, unpack


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-12))


@pytest.mark.parametrize("h,w", [(1, 1), (7, 130), (64, 64), (65, 63), (77, 101), (200, 33)])
def test_round_trip_any_size(h, w):
    img = make_image(h, w, seed=h + w)
    data = codec.compress(img, quality=60)
    out = codec.decompress(data)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    if h * w > 1000:
        assert psnr(img, out) > 20


def test_decoder_reproduces_encoder_reconstruction_exactly(image):
    for q in (0, 35.5, 100):
        enc = codec.encode(image, quality=q)
        assert np.array_equal(codec.decompress(enc.data), enc.reconstruction)


def test_quality_orders_rate_and_distortion():
    img = make_image(128, 192, seed=3)
    sizes, scores = [], []
    for q in (0, 50, 100):
        data = codec.compress(img, quality=q)
        sizes.append(len(data))
        scores.append(psnr(img, codec.decompress(data)))
    assert sizes[0] < sizes[1] < sizes[2]
    assert scores[0] < scores[2]


def test_inputs_path_pil_and_array_agree(tmp_path, image):
    path = tmp_path / "img.png"
    Image.fromarray(image).save(path)
    from_array = codec.compress(image, 40)
    assert codec.compress(str(path), 40) == from_array
    assert codec.compress(path, 40) == from_array
    assert codec.compress(Image.fromarray(image), 40) == from_array


def test_exif_orientation_is_applied(tmp_path):
    img = make_image(40, 90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", exif=exif, quality=95)
    out = codec.decompress(codec.compress(buf.getvalue(), 50))
    assert out.shape == (90, 40, 3)


def test_info_fields(image):
    data = codec.compress(image, 70)
    meta = codec.info(data)
    assert (meta["width"], meta["height"]) == (101, 77)
    assert meta["quality"] == 70 and meta["bytes"] == len(data)
    assert meta["header_bytes"] + sum(meta["stream_bytes"].values()) + 4 == len(data)
    assert meta["model"] == codec.load_model().weights.model_id


def test_model_is_cached_and_reachable():
    a, b = codec.load_model(device="cpu"), codec.load_model(device="cpu")
    assert a is b
    from compressai.models import MeanScaleHyperprior

    assert isinstance(a.model, MeanScaleHyperprior)


def test_model_cache_tells_a_linked_release_with_another_manifest_apart(tmp_path):
    """The cached network carries its manifest: a link to a release's tensors beside a manifest
    that names other weights must not come back as the release."""
    release = codec.load_model(device="cpu")
    path = tmp_path / "mine.safetensors"
    path.symlink_to(release.weights.path)
    manifest = {**release.weights.manifest, "name": "mine"}
    path.with_suffix(".json").write_text(json.dumps(manifest))
    mine = codec.load_model(str(path), device="cpu")
    assert mine is not release and mine.weights.model_id == "mine"
    assert codec.load_model(str(path), device="cpu") is mine
    assert codec.load_model(device="cpu") is release


def _resign(c) -> bytes:
    return pack(c)


def test_unknown_weights_hash_names_the_release_it_needs(image):
    c = unpack(codec.compress(image, 50))
    c.model_id, c.weights_hash = "lcodec-msh-1999-01", bytes(8)
    with pytest.raises(codec.CodecError) as e:
        codec.decompress(_resign(c))
    message = str(e.value)
    assert "'lcodec-msh-1999-01'" in message and "not installed" in message
    assert "0000000000000000" in message and "\n" not in message


def test_weights_are_found_by_the_hash_not_the_name(image):
    data = codec.compress(image, 50)
    c = unpack(data)
    c.model_id = "renamed-release"
    assert np.array_equal(codec.decompress(_resign(c)), codec.decompress(data))


def test_weights_given_explicitly_must_match_the_file(image, tmp_path):
    from codec.net.zoo import find_weights

    c = unpack(codec.compress(image, 50))
    c.weights_hash = bytes(8)
    with pytest.raises(codec.CodecError, match="other weights"):
        codec.decompress(_resign(c), weights=str(find_weights().path))


def test_model_names_the_release_to_write_with(image):
    from codec.net.zoo import DEFAULT_MODEL, releases

    for w in releases():
        meta = codec.info(codec.compress(image, 50, model=w.model_id))
        assert (meta["model"], meta["weights_hash"]) == (w.model_id, w.sha256[:16])
    assert codec.info(codec.compress(image, 50))["model"] == DEFAULT_MODEL
    with pytest.raises(codec.CodecError, match="no model named 'nope'"):
        codec.compress(image, 50, model="nope")


def test_tune_picks_the_release_tuned_for_it_unless_a_model_is_named(image):
    from codec.metrics import DISTORTIONS, TUNES
    from codec.net.zoo import TUNED

    assert set(TUNED) == set(TUNES) and set(TUNES.values()) <= set(DISTORTIONS)
    for tune, name in TUNED.items():
        assert codec.info(codec.compress(image, 50, tune=tune))["model"] == name
        named = codec.compress(image, 50, tune=tune, model="lcodec-msh-gain")
        assert codec.info(named)["model"] == "lcodec-msh-gain"
    with pytest.raises(codec.CodecError, match="unknown tune 'ssim': choose one of psnr, ms-ssim"):
        codec.compress(image, 50, tune="ssim")


def test_inconsistent_header_is_refused(image):
    c = unpack(codec.compress(image, 50))
    c.z_shape = (9, 9)
    with pytest.raises(codec.CodecError, match="sizes"):
        codec.decompress(_resign(c))
    c = unpack(codec.compress(image, 50))
    c.rate = 1e9
    with pytest.raises(codec.CodecError, match="rate"):
        codec.decompress(_resign(c))


def test_truncated_and_corrupted_files(image):
    data = codec.compress(image, 50)
    for bad in (data[:-1], data[:20], b"", data[:-9] + data[-4:]):
        with pytest.raises(codec.CodecError):
            codec.decompress(bad)
    body = bytearray(data[:-4])
    body[-3] ^= 0xFF
    with pytest.raises(codec.CodecError, match="CRC"):
        codec.decompress(bytes(body) + data[-4:])
    # A payload edit with a valid CRC still never crashes: it decodes or raises CodecError.
    forged = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))
    try:
        out = codec.decompress(forged)
        assert out.shape == image.shape
    except codec.CodecError:
        pass


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
        12,
    ],
)
def test_bad_inputs(bad):
    with pytest.raises(codec.CodecError):
        codec.compress(bad)


@pytest.mark.parametrize("q", [-1, 101, float("nan"), "high"])
def test_bad_quality(image, q):
    with pytest.raises(codec.CodecError, match="quality"):
        codec.compress(image, q)


def test_non_image_file(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("not an image")
    with pytest.raises(codec.CodecError, match="cannot read"):
        codec.compress(p)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(codec.CodecError):
        codec.compress(empty)
    with pytest.raises(codec.CodecError, match="no such file"):
        codec.compress(tmp_path / "missing.png")


def test_missing_cuda_is_a_clear_error(image):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(codec.CodecError, match="CUDA"):
        codec.compress(image, device="cuda")


def test_package_loads_names_on_first_use():
    probe = (
        "import sys, codec\n"
        "assert 'torch' not in sys.modules\n"
        "assert codec.net.tiling.TILE > 0 and callable(codec.compress)\n"
        "assert set(codec.__all__) <= set(dir(codec))\n"
        "assert all(getattr(codec, n) is not None for n in codec.__all__)\n"
        "try:\n    codec.no_such_name\nexcept AttributeError:\n    print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_decompress_and_info_take_a_path_as_compress_does(image, tmp_path):
    data = codec.compress(image, 40)
    path = tmp_path / "img.lcz"
    path.write_bytes(data)
    for source in (path, str(path)):
        assert np.array_equal(codec.decompress(source), codec.decompress(data))
        assert codec.info(source) == codec.info(data)
    assert list(codec.decompress_many([path]))[0].shape == image.shape
    with pytest.raises(codec.CodecError, match=r"missing\.lcz: no such file"):
        codec.decompress(tmp_path / "missing.lcz")
    with pytest.raises(codec.CodecError, match=f"{tmp_path}: is a folder"):
        codec.decompress(tmp_path)
    (tmp_path / "bad.lcz").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(codec.CodecError, match=r"bad\.lcz: corrupt file \(CRC"):
        codec.decompress(tmp_path / "bad.lcz")
    with pytest.raises(codec.CodecError, match=r"bad\.lcz: corrupt"):
        codec.info(tmp_path / "bad.lcz")
    with pytest.raises(codec.CodecError, match="expected the bytes of a .lcz file, got int"):
        codec.decompress(12)


@pytest.mark.parametrize("data", [b"", b"hello", bytearray(b"\x89PNG\r\n\x1a\n")])
def test_bytes_that_are_not_an_image_give_no_object_repr(data):
    with pytest.raises(codec.CodecError, match="^cannot read the image bytes: ") as e:
        codec.compress(data)
    assert "object at" not in str(e.value) and "BytesIO" not in str(e.value)


@pytest.mark.parametrize("doc", ["README.md", "docs/USAGE.md"])
def test_the_documented_library_example_runs_as_written(doc, tmp_path, monkeypatch):
    """The Library section's first code block, run in a folder holding photo.png: it must run
    unchanged and must not overwrite the user's photo."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    block = text.split("## Library", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    Image.fromarray(make_image(40, 56)).save("photo.png")
    before = (tmp_path / "photo.png").read_bytes()
    exec(compile(block, doc, "exec"), {})
    assert (tmp_path / "photo.png").read_bytes() == before
    assert (tmp_path / "decoded.png").is_file()
