"""Entropy parameters are exact: any summation order, dtype, thread count or oneDNN setting."""

import numpy as np
import pytest
import torch
from conftest import make_image

import codec
from codec import bitstream
from codec.entropy.exact import ExactHyperSynthesis


@pytest.fixture(scope="module")
def setup():
    lm = codec.load_model("lcodec-msh-gain", device="cpu")
    model = lm.model
    img = make_image(192, 256, seed=5)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        gain, _ = model.gains(torch.tensor([4.0]))
        z = model.h_a(model.g_a(x) * gain)
        strings = model.entropy_bottleneck.compress(z)
        z_hat = model.entropy_bottleneck.decompress(strings, z.shape[-2:])
    return lm, z_hat


def _params(exact, z_hat, split=1):
    with torch.inference_mode():
        return exact(z_hat, split=split)


def test_identical_under_every_perturbation(setup):
    lm, z_hat = setup
    ref_idx, ref_means = _params(lm.coder.exact, z_hat)
    assert ref_idx.dtype == torch.int32 and ref_idx.shape[1] == lm.model.M
    assert len(torch.unique(ref_idx)) > 3  # a real spread of tables, not a degenerate case
    variants = {
        "split 3": lambda: _params(lm.coder.exact, z_hat, split=3),
        "split 7": lambda: _params(lm.coder.exact, z_hat, split=7),
        "float64 input": lambda: _params(lm.coder.exact, z_hat.double()),
    }
    for name, fn in variants.items():
        idx, means = fn()
        assert torch.equal(idx, ref_idx), name
        assert torch.equal(means, ref_means), name
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for mkldnn in (True, False):
                with torch.backends.mkldnn.flags(enabled=mkldnn):
                    idx, means = _params(lm.coder.exact, z_hat, split=2)
                assert torch.equal(idx, ref_idx) and torch.equal(means, ref_means), (n, mkldnn)
    finally:
        torch.set_num_threads(threads)


def test_rebuilt_from_weights_is_identical(setup):
    lm, z_hat = setup
    again = ExactHyperSynthesis(lm.model, "cpu")
    a, b = _params(lm.coder.exact, z_hat), _params(again, z_hat)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_matches_float_model_closely(setup):
    """The integer network is the float network on a fine grid: indexes rarely move, by one.

    At the bottom of the scale table the bins are narrower than the grid's error, so an
    index there may move by two; nowhere else.
    """
    lm, z_hat = setup
    idx, means = _params(lm.coder.exact, z_hat)
    with torch.inference_mode():
        scales_f, means_f = lm.model.h_s(z_hat).chunk(2, 1)
        idx_f = lm.model.gaussian_conditional.build_indexes(scales_f)
    diff = (idx - idx_f).abs()
    assert diff.max() <= 2
    far = diff > 1
    table = lm.model.gaussian_conditional.scale_table
    assert far.sum() <= 1e-3 * diff.numel()
    assert (scales_f[far] < table[4]).all()
    assert diff.float().mean() < 0.1
    # Means within a fraction of a quantization bin: the grid's error is far below the
    # quantization's own (its RD cost is measured by benchmarks/determinism.py).
    err = (means - means_f).abs()
    assert err.mean() < 0.01 and err.max() < 0.5


def test_accumulators_stay_exact(setup):
    """Every partial sum must stay below 2**53 for float64 to be exact: check the real bound."""
    lm, _ = setup
    from codec.entropy.exact import ACT_LIMIT

    for spec in lm.coder.exact.layers:
        w = spec["weight"]
        fan_in = w[0].numel() if not spec["transposed"] else w[:, 0].numel()
        bound = fan_in * w.abs().max().item() * ACT_LIMIT + spec["bias"].abs().max().item()
        assert bound < 2**53
        assert torch.equal(w, torch.round(w))


def test_version_1_files_still_decode():
    img = make_image(70, 90, seed=2)
    enc = codec.encode(img, 50, format_version=1, model="lcodec-msh-gain")
    assert enc.data[4] == 1
    assert np.array_equal(codec.decompress(enc.data), enc.reconstruction)
    for version in (2, bitstream.VERSION):
        enc2 = codec.encode(img, 50, format_version=version, model="lcodec-msh-gain")
        assert enc2.data[4] == version
        assert np.array_equal(codec.decompress(enc2.data), enc2.reconstruction)
