"""The context model's entropy path: lossless round trip, exact under every perturbation."""

import numpy as np
import pytest
import torch
from conftest import make_image

from codec.entropy.elic_gain import ExactContext, decode_latents, encode_latents
from codec.net import build_model
from codec.net.elic_gain import GROUPS, GainedContextHyperprior, checkerboard, groups_for


@pytest.fixture(scope="module")
def small():
    """A small context model with every context network active (no zero layers)."""
    torch.manual_seed(3)
    model = GainedContextHyperprior(N=32, M=48, groups=(8, 8, 16, 16))
    with torch.no_grad():
        for agg in model.aggregation:
            torch.nn.init.normal_(agg[-1].weight, std=0.05)
        model.gaussian_conditional.update_scale_table(
            torch.exp(
                torch.linspace(torch.log(torch.tensor(0.11)), torch.log(torch.tensor(64.0)), 64)
            )
        )
    model.update(force=True)
    model.eval()
    y = torch.randn(1, 48, 12, 20) * torch.linspace(8, 0.5, 48)[None, :, None, None]
    return model, y


def _roundtrip(model, y, **kw):
    ctx = ExactContext(model, **kw)
    with torch.inference_mode():
        streams, z_shape, y_hat = encode_latents(ctx, model, y)
        return streams, y_hat, decode_latents(ctx, model, streams, z_shape)


def test_roundtrip_is_lossless(small):
    model, y = small
    streams, y_hat, decoded = _roundtrip(model, y)
    assert torch.equal(y_hat, decoded)
    assert (y_hat - y).abs().max() <= 0.5 + 1e-6  # each latent rounded around its mean
    assert len(streams) == 2  # z, one band


def _bits(out: dict) -> dict:
    return {k: float((-torch.log2(v)).sum()) for k, v in out["likelihoods"].items()}


def _coded_and_estimated(model, quality_rate: float) -> tuple[int, float]:
    """Bytes the coder writes for a real image's latents, and what the float model's
    likelihoods say they cost."""
    img = make_image(128, 192, seed=2)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        g, _ = model.gains(torch.tensor([quality_rate]))
        y = model.g_a(x) * g
        out = model.entropy_forward(y)
    estimate = sum(_bits(out).values()) / 8
    streams, _, _ = _roundtrip(model, y)
    return sum(map(len, streams)), estimate


def test_stream_matches_the_model_rate():
    """With the mean-scale release's transforms and fresh context networks, the coder spends
    what the float model's likelihoods say, within the tables' rounding: the context path
    codes what training sees."""
    from codec.net.elic_gain import from_mean_scale
    from codec.net.zoo import find_weights
    from codec.train.latents import load_state

    state, lambdas = load_state(str(find_weights("lcodec-msh-gain").path))
    torch.manual_seed(4)
    model = from_mean_scale(state, None, lambdas)
    with torch.no_grad():
        for agg in model.aggregation:
            torch.nn.init.normal_(agg[-1].weight, std=0.002)
    model.update(force=True)
    model.eval()
    actual, estimate = _coded_and_estimated(model, 5.0)
    assert abs(actual - estimate) < 0.03 * estimate + 16


def test_a_context_release_is_not_taken_for_mean_scale_weights(default_network):
    from codec.net.elic_gain import from_mean_scale

    with pytest.raises(ValueError, match="context model"):
        from_mean_scale(default_network.state_dict(), None, default_network.lambdas)


@pytest.fixture(scope="module")
def default_network():
    from codec.net.zoo import find_weights, load_network

    return load_network(find_weights(None))


@pytest.mark.parametrize("quality_rate", [0.0, 5.0, 8.0])
def test_the_default_release_codes_what_its_model_estimates(default_network, quality_rate):
    """The default release as the codec loads it: its trained context networks' rate is the
    rate the files pay."""
    actual, estimate = _coded_and_estimated(default_network, quality_rate)
    assert abs(actual - estimate) < 0.03 * estimate + 16


def test_context_pays(small):
    """With the context networks zeroed, the same latents cost a different number of bytes:
    the context path is really used by the coder."""
    model, y = small
    base = GainedContextHyperprior(N=32, M=48, groups=(8, 8, 16, 16))
    base.load_state_dict(model.state_dict())
    with torch.no_grad():
        for agg in base.aggregation:
            torch.nn.init.zeros_(agg[-1].weight)
    base.update(force=True)
    base.eval()
    a, _, _ = _roundtrip(model, y)
    b, _, _ = _roundtrip(base, y)
    assert a[1] != b[1]


def test_identical_under_every_perturbation(small):
    model, y = small
    ref, ref_hat, _ = _roundtrip(model, y)
    threads = torch.get_num_threads()
    try:
        for split in (1, 3):
            for n in (1, 2):
                torch.set_num_threads(n)
                for mkldnn in (True, False):
                    with torch.backends.mkldnn.flags(enabled=mkldnn):
                        streams, y_hat, decoded = _roundtrip(model, y, split=split)
                    assert streams == ref, (split, n, mkldnn)
                    assert torch.equal(decoded, ref_hat), (split, n, mkldnn)
    finally:
        torch.set_num_threads(threads)


def test_checkerboard_anchors():
    m = checkerboard(3, 4)[0, 0]
    assert m.tolist() == [
        [True, False, True, False],
        [False, True, False, True],
        [True, False, True, False],
    ]


@pytest.fixture(scope="module")
def elic_weights(tmp_path_factory):
    """An exported context-model release (the mean-scale release's transforms, a few context
    weights set)."""
    from codec.net.elic_gain import from_mean_scale
    from codec.net.zoo import find_weights, read_state
    from codec.train.export import export_checkpoint

    shipped = find_weights("lcodec-msh-gain")
    torch.manual_seed(5)
    model = from_mean_scale(read_state(shipped.path), None, tuple(shipped.manifest["lambdas"]))
    with torch.no_grad():
        for agg in model.aggregation:
            torch.nn.init.normal_(agg[-1].weight, std=0.002)
    m = shipped.manifest
    cfg = {"N": m["N"], "M": m["M"], "lambdas": m["lambdas"], "architecture": "elic-gain"}
    cfg.update(batch=4, crop=192, lr=1e-4, data="samples")
    tmp = tmp_path_factory.mktemp("elic")
    torch.save({"model": model.state_dict(), "config": cfg, "step": 0, "log": {}}, tmp / "c.pt")
    return export_checkpoint(tmp / "c.pt", tmp, "elic-tiny")


def test_context_release_round_trip(elic_weights):
    """Through the library: a version 4 file, decoded bit-exactly to what the encoder saw, and
    refused with one line where its release is not installed or other weights are given."""
    import codec

    img = make_image(96, 160, seed=8)
    enc = codec.encode(img, 40, model=str(elic_weights))
    assert enc.container.version == 4
    out = codec.decompress(enc.data, weights=str(elic_weights))
    assert np.array_equal(out, enc.reconstruction)
    with pytest.raises(codec.CodecError, match="not installed"):
        codec.decompress(enc.data)
    with pytest.raises(codec.CodecError, match="other weights"):
        codec.decompress(enc.data, weights="lcodec-msh-gain")
    with pytest.raises(codec.CodecError, match="cannot write format version 3"):
        codec.encode(img, 40, model=str(elic_weights), format_version=3)


def test_hard_rate_is_what_the_coder_pays(small):
    """Training's hard mode charges each latent at its rounded residual, as evaluation (and so
    the coder) does, while the default training rate is the noisy proxy."""
    model, y = small
    with torch.no_grad():
        coded = _bits(model.entropy_forward(y))
        try:
            model.train()
            torch.manual_seed(0)
            hard = _bits(model.entropy_forward(y, hard=True))
            proxy = _bits(model.entropy_forward(y))
        finally:
            model.eval()
    for k in ("y", "z"):
        assert hard[k] == pytest.approx(coded[k], rel=1e-5)
    assert abs(proxy["y"] - coded["y"]) > 0.01 * coded["y"]


def test_hard_rate_trains_scales_exactly_and_means_by_the_proxy(small):
    """The scales get the coder's own gradient; the means, for which the rounded rate is flat,
    still get one (the proxy's) so they do not drift unguided."""
    model, _ = small
    gc = model.gaussian_conditional
    torch.manual_seed(1)
    y = torch.randn(1, 8, 6, 6) * 3
    scales = (torch.rand(1, 8, 6, 6) * 3 + 0.2).requires_grad_()
    means = torch.randn(1, 8, 6, 6).requires_grad_()
    try:
        model.train()
        lk = model._hard_likelihood(y, scales, means)
    finally:
        model.eval()
    (-torch.log2(lk)).sum().backward()

    ref_scales = scales.detach().clone().requires_grad_()
    ref = gc.likelihood_lower_bound(gc._likelihood(torch.round(y - means.detach()), ref_scales))
    (-torch.log2(ref)).sum().backward()
    assert torch.allclose(lk, ref)
    assert torch.allclose(scales.grad, ref_scales.grad)
    assert means.grad.abs().sum() > 0


def test_a_wider_latent_takes_elics_channel_groups():
    assert groups_for(192) == GROUPS
    assert groups_for(320) == (16, 16, 32, 64, 192)
    model = build_model("elic-gain", 16, 320, (0.005, 0.05))
    assert model.groups == (16, 16, 32, 64, 192) and len(model.aggregation) == 5
    with pytest.raises(ValueError, match="at least 192"):
        build_model("elic-gain", 16, 96, (0.005, 0.05))
