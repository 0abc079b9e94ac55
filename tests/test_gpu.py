"""CUDA encode/decode and cross-device decoding; skipped where there is no CUDA device."""

import numpy as np
import pytest
import torch
from conftest import make_image

import codec
from codec.net.zoo import release_names

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("q", [0, 50, 100])
@pytest.mark.parametrize("enc,dec", [("cuda", "cpu"), ("cpu", "cuda"), ("cuda", "cuda")])
def test_cross_device_round_trip(q, enc, dec):
    img = make_image(150, 230, seed=int(q))
    e = codec.encode(img, q, device=enc)
    out = codec.decompress(e.data, device=dec)
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - e.reconstruction.astype(int)).max() <= 2


@pytest.mark.parametrize("weights", release_names())
@pytest.mark.parametrize("enc", ["cpu", "cuda"])
def test_cuda_and_cpu_decode_the_same_latents(weights, enc):
    """Every probability table comes from the exact integer path, so both devices must read
    the same latents, bit for bit, from a file of every release's format."""
    img = make_image(128, 192, seed=1)
    data = codec.compress(img, 60, device=enc, weights=weights)
    c = codec.bitstream.unpack(data)
    with torch.inference_mode():
        cpu, gpu = (
            codec.load_model(weights, device=d).coder.decode(c.streams, c.z_shape, c.version)
            for d in ("cpu", "cuda")
        )
    assert torch.equal(cpu.cpu(), gpu.cpu())


@pytest.mark.parametrize("q", [0, 100])
def test_cuda_float16_decodes_within_a_level(q):
    img = make_image(150, 230, seed=3)
    data = codec.compress(img, q, device="cuda", precision="float16")
    full = codec.decompress(data, device="cpu")
    half = codec.decompress(data, device="cuda", precision="float16")
    diff = np.abs(full.astype(int) - half.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.2
