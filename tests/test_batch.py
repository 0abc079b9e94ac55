"""Many images at once: the same files as one at a time, in order, errors in their place."""

import numpy as np
import pytest
from conftest import make_image

import codec

IMAGES = [make_image(64, 96, seed=1), make_image(130, 70, seed=2), make_image(80, 80, seed=3)]


@pytest.fixture(scope="module")
def files():
    return [codec.compress(img, quality=40) for img in IMAGES]


def test_compress_many_writes_the_same_files_in_order(files):
    for workers in (1, 3):
        assert list(codec.compress_many(IMAGES, quality=40, workers=workers)) == files


def test_decompress_many_matches_decompress(files):
    got = list(codec.decompress_many(files, workers=2))
    for data, pixels in zip(files, got, strict=True):
        np.testing.assert_array_equal(pixels, codec.decompress(data))


def test_an_error_surfaces_at_its_place(tmp_path, files):
    it = codec.compress_many([IMAGES[0], str(tmp_path / "missing.png"), IMAGES[1]], quality=40)
    assert next(it) == files[0]
    with pytest.raises(codec.CodecError, match="missing.png"):
        next(it)
    broken = [files[0], b"not an lcz file", files[1]]
    it = codec.decompress_many(broken)
    next(it)
    with pytest.raises(codec.CodecError):
        next(it)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused_at_once(workers):
    with pytest.raises(codec.CodecError, match="workers"):
        codec.compress_many(IMAGES, workers=workers)
    with pytest.raises(codec.CodecError, match="workers"):
        codec.decompress_many([], workers=workers)


def test_compress_many_writes_with_the_release_named():
    img = make_image(40, 48)
    files = list(codec.compress_many([img, img], quality=30, model="lcodec-msh-gain"))
    assert [codec.info(f)["model"] for f in files] == ["lcodec-msh-gain"] * 2
    assert files[0] == codec.compress(img, quality=30, model="lcodec-msh-gain")
    with pytest.raises(codec.CodecError, match="disagree"):
        list(codec.compress_many([img], weights="lcodec-msh-gain", model="lcodec-elic-2026-12e"))


def test_compress_many_writes_for_the_metric_tuned_for(monkeypatch):
    from codec import batch
    from codec.net.zoo import TUNED

    img = make_image(40, 48)
    (tuned,) = codec.compress_many([img], quality=30, tune="ms-ssim")
    assert codec.info(tuned)["model"] == TUNED["ms-ssim"]
    assert tuned == codec.compress(img, quality=30, tune="ms-ssim")
    with pytest.raises(codec.CodecError, match="unknown tune"):
        codec.compress_many([img], tune="ssim")
    asked = []  # the tune must reach each encode too, for effort's search

    def compress(*a, **k):
        asked.append(k["tune"])
        return b""

    monkeypatch.setattr(batch, "compress", compress)
    list(codec.compress_many([img, img], tune="psnr", model="lcodec-msh-gain", effort=2))
    assert asked == ["psnr", "psnr"]
