"""The inference forms of the network compute what CompressAI's layers compute."""

import pytest
import torch
import torch.nn.functional as F
from compressai.layers import GDN

import codec
from codec.entropy.exact import (
    ACT_LIMIT,
    WEIGHT_BITS,
    _conv_taps,
    _transposed_taps,
    _winograd_taps,
    winograd_filter,
    winograd_is_exact,
)
from codec.entropy.rans import SymbolCoder, symbol_coder
from codec.net import layers
from codec.net.layers import FastGDN, for_inference
from codec.net.msh_gain import remap_ladder
from codec.net.zoo import find_weights, load_network


@pytest.fixture(scope="module")
def stock():
    return load_network(find_weights("lcodec-msh-gain"))


@pytest.mark.parametrize("inverse", [False, True])
def test_fast_gdn_matches_gdn(inverse):
    torch.manual_seed(0)
    gdn = GDN(16, inverse=inverse)
    with torch.no_grad():
        gdn.gamma.add_(0.05 * torch.rand_like(gdn.gamma))
        gdn.beta.add_(0.1 * torch.rand_like(gdn.beta))
    fast = FastGDN(gdn)
    # Odd sizes so that the last band is partial.
    x = torch.randn(2, 16, 37, 61)
    with torch.no_grad():
        want = gdn(x)
        for layout in (torch.contiguous_format, torch.channels_last):
            got = fast(x.contiguous(memory_format=layout))
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # Under autograd (the encoder's latent optimisation) values and gradients are GDN's,
    # banded too: in both layouts, with a partial last band.
    xa = x.clone().requires_grad_(True)
    out = gdn(xa)
    out.square().sum().backward()
    for layout in (torch.contiguous_format, torch.channels_last):
        xb = x.clone().contiguous(memory_format=layout).requires_grad_(True)
        got = fast(xb)
        torch.testing.assert_close(got, out, rtol=1e-5, atol=1e-6)
        got.square().sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fast_gdn_gradient_is_exact(monkeypatch, inverse, layout):
    """The banded backward pass against numerical differentiation, over several bands."""
    monkeypatch.setattr(layers, "BAND_PIXELS", 7)
    torch.manual_seed(1)
    gdn = GDN(6, inverse=inverse)
    with torch.no_grad():
        gdn.gamma.add_(0.05 * torch.rand_like(gdn.gamma))
        gdn.beta.add_(0.1 * torch.rand_like(gdn.beta))
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64).contiguous(memory_format=layout)
    assert torch.autograd.gradcheck(FastGDN(gdn), (x.requires_grad_(True),))


def test_fast_gdn_in_place_overwrites_only_its_input():
    torch.manual_seed(0)
    gdn = GDN(8)
    x = torch.randn(1, 8, 33, 70).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = FastGDN(gdn)(x)
        assert not torch.equal(want, x)
        got = FastGDN(gdn, inplace=True)(x)
    assert got.data_ptr() == x.data_ptr() and torch.equal(got, want)


def test_inference_transforms_leave_their_input_alone(stock):
    fast = for_inference(stock.g_a)
    gdns = [m for m in fast.modules() if isinstance(m, FastGDN)]
    assert len(gdns) == 3 and all(m.inplace for m in gdns)  # each right after a convolution
    x = torch.rand(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    before = x.clone()
    with torch.no_grad():
        fast(x)
    assert torch.equal(x, before)


def test_inference_transforms_match_compressai(stock):
    lm = codec.load_model("lcodec-msh-gain", device="cpu")
    torch.manual_seed(1)
    x = torch.rand(1, 3, 128, 192)
    with torch.no_grad():
        y_ref = stock.g_a(x)
        y = lm.model.g_a(x)
        torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=2e-4)
        torch.testing.assert_close(lm.model.g_s(y_ref), stock.g_s(y_ref), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(lm.model.h_a(y_ref), stock.h_a(y_ref), rtol=1e-4, atol=2e-4)
    assert any(isinstance(m, FastGDN) for m in lm.model.g_a.modules())
    assert not any(isinstance(m, GDN) for m in lm.model.g_s.modules())
    wrapped = for_inference(stock.g_s)
    assert any(isinstance(m, GDN) for m in stock.g_s.modules()), "the original is left alone"
    assert wrapped is not stock.g_s


def test_symbol_coder_writes_compressai_streams(stock):
    gc = stock.gaussian_conditional
    torch.manual_seed(2)
    y = torch.randn(1, 8, 6, 5) * 4
    means = torch.randn(1, 8, 6, 5)
    indexes = torch.randint(0, len(gc.scale_table), (1, 8, 6, 5), dtype=torch.int32)
    want = gc.compress(y, indexes, means=means)[0]
    coder = SymbolCoder(gc)
    got = coder.encode(torch.round(y - means), indexes)
    assert got == want
    decoded = coder.decode(got, indexes)
    assert decoded.dtype == torch.int32
    assert torch.equal(decoded.float() + means, gc.decompress([want], indexes, means=means))
    assert symbol_coder(gc) is symbol_coder(gc)


def test_symbol_coder_follows_table_updates(stock):
    gc = stock.gaussian_conditional
    first = symbol_coder(gc)
    gc.update_scale_table(gc.scale_table.clone(), force=True)
    assert symbol_coder(gc) is not first


@pytest.mark.parametrize("transposed", [False, True])
def test_exact_tap_convolutions_equal_torch(transposed):
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-4096, 4096, (2, 7, 9, 6), generator=g).double()  # (N, H, W, Cin)
    if transposed:
        w = torch.randint(-(2**15), 2**15, (6, 5, 5, 5), generator=g).double()  # (Cin, Cout, k, k)
        want = F.conv_transpose2d(x.permute(0, 3, 1, 2), w, None, 2, 2, 1)
        spec = {"padding": (2, 2)}
        got = _transposed_taps(x, w.permute(2, 3, 0, 1).contiguous(), spec)
    else:
        w = torch.randint(-(2**15), 2**15, (5, 6, 3, 3), generator=g).double()  # (Cout, Cin, k, k)
        want = F.conv2d(x.permute(0, 3, 1, 2), w, None, 1, 1)
        got = _conv_taps(x, w.permute(2, 3, 1, 0).contiguous(), 1)
    assert torch.equal(got.permute(0, 3, 1, 2), want)


@pytest.mark.parametrize("shape", [(7, 9), (8, 6), (1, 1), (2, 3)])
def test_winograd_convolution_is_bit_identical(shape):
    g = torch.Generator().manual_seed(4)
    x = torch.randint(-4096, 4096, (2, *shape, 6), generator=g).double()
    taps = torch.randint(-(2**15), 2**15, (3, 3, 6, 5), generator=g).double()
    assert torch.equal(_winograd_taps(x, winograd_filter(taps)), _conv_taps(x, taps, 1))


def test_winograd_is_exact_at_the_largest_values():
    """Activations and weights at their limits, with signs that make the sums as large as can be."""
    cin = 288  # the mean-scale hyperprior's last h_s layer
    assert winograd_is_exact(cin) and not winograd_is_exact(1024)
    sign = torch.tensor([1.0, -1.0]).repeat(4)
    x = ACT_LIMIT * sign[:, None, None, None] * sign[None, :, None, None]  # checkerboard
    x = x.expand(8, 8, 1, cin).permute(2, 0, 1, 3).contiguous().double()
    taps = torch.full((3, 3, cin, 3), 2.0**WEIGHT_BITS)
    taps[1, :] *= -1
    taps[:, 1] *= -1
    taps = taps.double()
    want = _conv_taps(x, taps, 1)
    assert want.abs().max() > 2**46  # the sums really are large
    assert torch.equal(_winograd_taps(x, winograd_filter(taps)), want)


def test_remap_ladder_keeps_old_rungs_and_extends_linearly():
    table = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    src = (1.0, 2.0, 4.0)
    dst = (0.5, 1.0, 2.0**1.5, 4.0, 8.0)
    out = remap_ladder(table, src, dst)
    assert torch.allclose(out[1], table[0]) and torch.allclose(out[3], table[2])
    assert torch.allclose(out[0], torch.tensor([-1.0, -1.0]))  # extrapolated below
    assert torch.allclose(out[2], torch.tensor([1.5, 4.0]))  # halfway in log-lambda
    assert torch.allclose(out[4], torch.tensor([3.0, 7.0]))  # extrapolated above


def test_coding_a_read_only_array_warns_nothing():
    import warnings

    import numpy as np

    img = np.random.default_rng(4).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    img.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = codec.compress(img, quality=40)
        assert codec.decompress(data).shape == img.shape


def test_encoder_hyper_latent_equals_the_decoded_one(stock):
    """The encoder skips decoding its own z stream: symbols plus medians are what comes back,
    out-of-range (escaped) symbols included."""
    from codec.entropy.msh_gain import decode_latents, encode_latents, float_hyper

    eb = stock.entropy_bottleneck
    torch.manual_seed(5)
    for scale in (0.5, 40.0):
        z = torch.randn(1, stock.N, 5, 6) * scale
        medians = eb.quantiles.detach()[:, 0, 1].view(1, -1, 1, 1)
        decoded = eb.decompress(eb.compress(z), z.shape[-2:])
        assert torch.equal(decoded, torch.round(z - medians) + medians)
    # And the whole latent path still round-trips through the real decoder.
    lm = codec.load_model("lcodec-msh-gain", device="cpu")
    y = torch.randn(1, stock.M, 8, 8) * 3
    with torch.no_grad():
        streams, z_shape, y_hat = encode_latents(lm.model, lm.coder.exact, y, banded=True)
    assert torch.equal(
        decode_latents(lm.model, lm.coder.exact, streams, z_shape, banded=True), y_hat
    )
    # The hyper-synthesis sees the same tensor on both sides, memory layout included: the float
    # path (version 1) rounds differently on a channels-last copy, which garbled whole files.
    seen = []

    def recording(z_hat):
        seen.append((z_hat.stride(), z_hat.clone()))
        return float_hyper(lm.model)(z_hat)

    y = torch.randn(1, stock.M, 16, 24) * 3
    with torch.no_grad():
        streams, z_shape, y_hat = encode_latents(lm.model, recording, y)
        assert torch.equal(decode_latents(lm.model, recording, streams, z_shape), y_hat)
    (enc_stride, enc_z), (dec_stride, dec_z) = seen
    assert enc_stride == dec_stride and torch.equal(enc_z, dec_z)
