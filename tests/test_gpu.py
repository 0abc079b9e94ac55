"""CUDA encode/decode and cross-device decoding; skipped where there is no CUDA device."""

import numpy as np
import pytest
import torch
from conftest import make_image

import codec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("q", [0, 50, 100])
@pytest.mark.parametrize("enc,dec", [("cuda", "cpu"), ("cpu", "cuda"), ("cuda", "cuda")])
def test_cross_device_round_trip(q, enc, dec):
    img = make_image(150, 230, seed=int(q))
    e = codec.encode(img, q, device=enc)
    out = codec.decompress(e.data, device=dec)
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - e.reconstruction.astype(int)).max() <= 2


def test_cuda_exact_parameters_match_cpu():
    img = make_image(128, 192, seed=1)
    data = codec.compress(img, 60, device="cpu")
    c = codec.bitstream.unpack(data)
    cpu, gpu = codec.load_model(device="cpu"), codec.load_model(device="cuda")
    z_cpu = cpu.model.entropy_bottleneck.decompress([c.streams[0]], c.z_shape)
    z_gpu = gpu.model.entropy_bottleneck.decompress([c.streams[0]], c.z_shape)
    with torch.inference_mode():
        i_cpu, m_cpu = cpu.exact(z_cpu)
        i_gpu, m_gpu = gpu.exact(z_gpu)
    assert torch.equal(i_cpu, i_gpu.cpu()) and torch.equal(m_cpu, m_gpu.cpu())


@pytest.mark.parametrize("q", [0, 100])
def test_cuda_float16_decodes_within_a_level(q):
    img = make_image(150, 230, seed=3)
    data = codec.compress(img, q, device="cuda", precision="float16")
    full = codec.decompress(data, device="cpu")
    half = codec.decompress(data, device="cuda", precision="float16")
    diff = np.abs(full.astype(int) - half.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.2
