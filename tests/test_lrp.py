"""Latent residual prediction (architecture ``elic-lrp``): warm start, bounds, files."""

import numpy as np
import pytest
import torch
from conftest import make_image

from codec.errors import CodecError
from codec.net import build_model
from codec.net.elic_gain import GainedContextHyperprior, GainedContextHyperpriorLRP


def _pair(tmp_path):
    """A small context model saved as weights, and an LRP model warm-started from them."""
    from codec.train.loop import load_initial_weights

    torch.manual_seed(11)
    base = GainedContextHyperprior(N=32, M=48, groups=(8, 8, 16, 16))
    path = tmp_path / "base.pt"
    torch.save({"model": base.state_dict(), "config": {"lambdas": list(base.lambdas)}}, path)
    lrp = GainedContextHyperpriorLRP(N=32, M=48, groups=(8, 8, 16, 16))
    load_initial_weights(lrp, str(path))
    return base.eval(), lrp.eval()


def test_warm_start_decodes_as_the_context_model(tmp_path):
    base, lrp = _pair(tmp_path)
    x = torch.rand(2, 3, 64, 64)
    rate = torch.tensor([0.5, 6.0])
    with torch.no_grad():
        a, b = base(x, rate), lrp(x, rate)
    assert torch.equal(a["x_hat"], b["x_hat"])
    for key in ("y", "z"):
        assert torch.equal(a["likelihoods"][key], b["likelihoods"][key])


def test_refinement_trains(tmp_path):
    _, lrp = _pair(tmp_path)
    out = lrp(torch.rand(1, 3, 64, 64), torch.tensor([3.0]))
    out["x_hat"].square().mean().backward()
    assert lrp.lrp[-1].weight.grad.abs().sum() > 0


def test_weights_that_do_not_fit_are_refused(tmp_path):
    from codec.train.loop import load_initial_weights

    base, _ = _pair(tmp_path)
    state = {k: v for k, v in base.state_dict().items() if not k.startswith("g_s.")}
    path = tmp_path / "partial.pt"
    torch.save({"model": state, "config": {"lambdas": list(base.lambdas)}}, path)
    with pytest.raises(CodecError, match="does not fit"):
        load_initial_weights(
            GainedContextHyperpriorLRP(N=32, M=48, groups=(8, 8, 16, 16)), str(path)
        )


@pytest.fixture(scope="module")
def lrp_weights(tmp_path_factory):
    """An exported ``elic-lrp`` release: the default release's weights and a live refinement."""
    from codec.net.zoo import find_weights, read_state
    from codec.train.export import export_checkpoint

    shipped = find_weights()
    m = shipped.manifest
    model = build_model("elic-lrp", m["N"], m["M"], tuple(m["lambdas"]))
    state = {
        k: v.float() if v.is_floating_point() else v for k, v in read_state(shipped.path).items()
    }
    model.load_state_dict(state, strict=False)
    torch.manual_seed(2)
    with torch.no_grad():
        torch.nn.init.normal_(model.lrp[-1].weight, std=0.01)
    cfg = {"N": m["N"], "M": m["M"], "lambdas": m["lambdas"], "architecture": "elic-lrp"}
    cfg.update(batch=4, crop=192, lr=1e-4, data="samples")
    tmp = tmp_path_factory.mktemp("lrp")
    torch.save({"model": model.state_dict(), "config": cfg, "step": 0, "log": {}}, tmp / "c.pt")
    return export_checkpoint(tmp / "c.pt", tmp, "lrp-tiny")


def test_lrp_release_round_trip(lrp_weights):
    """A version 4 file decodes to the encoder's reconstruction."""
    import codec

    img = make_image(96, 160, seed=8)
    enc = codec.encode(img, 40, model=str(lrp_weights))
    assert enc.container.version == 4
    out = codec.decompress(enc.data, weights=str(lrp_weights))
    assert np.array_equal(out, enc.reconstruction)


def test_tiles_see_the_refinement_reach(lrp_weights):
    """Tiled synthesis of a refined latent equals the whole-image synthesis up to rounding."""
    from codec.net.tiling import synthesize
    from codec.net.zoo import find_weights, load_network

    model = load_network(find_weights(str(lrp_weights)))
    torch.manual_seed(4)
    with torch.no_grad():  # a refinement that moves every latent by a good part of a step
        torch.nn.init.normal_(model.lrp[-1].weight, std=0.3)
    y_hat = torch.round(torch.randn(1, model.M, 16, 24) * 3)
    _, ig = model.gains(torch.tensor([4.0]))
    whole = synthesize(model, y_hat, ig, 256, 384, tile=1024)
    tiled = synthesize(model, y_hat, ig, 256, 384, tile=128)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_the_codec_synthesizes_the_refined_latent(lrp_weights):
    """Decoding, the encoder's reconstruction and the effort search's loss all see the refined
    latent, not the rounded one."""
    from codec.encoder.sga import hard_round, objective_for
    from codec.net.tiling import synthesize, to_uint8
    from codec.net.zoo import find_weights, load_network

    model = load_network(find_weights(str(lrp_weights)))
    with torch.no_grad():
        torch.nn.init.normal_(model.lrp[-1].weight, std=0.3)
        torch.manual_seed(6)
        y_hat = torch.round(torch.randn(1, model.M, 4, 6) * 3)
        _, ig = model.gains(torch.tensor([4.0]))
        refined = to_uint8(model.g_s(model.refine_latent(y_hat) * ig))
        rounded = to_uint8(model.g_s(y_hat * ig))
        assert np.array_equal(synthesize(model, y_hat, ig, 64, 96), refined)
        assert not np.array_equal(refined, rounded)
        assert np.array_equal(synthesize(model, y_hat, ig, 64, 96, refine=False), rounded)

        x = torch.rand(1, 3, 64, 128)  # padded to the hyper-latent grid
        objective = objective_for(model, x, ig, 0.01, 64, 128)
        latents = objective.start(model.g_a(x) * model.gains(torch.tensor([4.0]))[0])
        before = objective.loss(latents, hard_round, judge=True)
        torch.nn.init.zeros_(model.lrp[-1].weight)
        torch.nn.init.zeros_(model.lrp[-1].bias)
        assert objective.loss(latents, hard_round, judge=True) != before


def test_effort_searches_an_lrp_model(lrp_weights):
    import codec

    img = make_image(64, 64, seed=3)
    one = codec.encode(img, 50, model=str(lrp_weights))
    two = codec.encode(img, 50, model=str(lrp_weights), effort=2)
    out = codec.decompress(two.data, weights=str(lrp_weights))
    assert np.array_equal(out, two.reconstruction)
    assert len(one.data) > 0
