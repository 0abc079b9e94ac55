"""A wider latent warm-started from a narrower context model: same picture, same old bits."""

import pytest
import torch
from conftest import make_image
from test_context import _roundtrip

from codec.errors import CodecError
from codec.net import build_model
from codec.net.elic_gain import GROUPS, GainedContextHyperprior, groups_for, widen_latent
from codec.train.loop import load_initial_weights

N = 16
LAMBDAS = (0.005, 0.05)


def test_groups_for_keeps_the_192_channel_groups_whole():
    assert groups_for(192) == GROUPS
    assert groups_for(320) == (*GROUPS, 128)
    with pytest.raises(ValueError, match="explicit channel groups"):
        groups_for(96)


@pytest.fixture(scope="module")
def narrow():
    """A 192-channel context model whose every context network is active."""
    torch.manual_seed(5)
    model = GainedContextHyperprior(N=N, M=192, lambdas=LAMBDAS)
    with torch.no_grad():
        for agg in model.aggregation:
            torch.nn.init.normal_(agg[-1].weight, std=0.05)
    return model.eval()


def _widened(narrow, M: int) -> GainedContextHyperprior:
    torch.manual_seed(6)
    wide = GainedContextHyperprior(N=N, M=M, lambdas=LAMBDAS)
    wide.load_state_dict(widen_latent(narrow.state_dict(), wide))
    return wide.eval()


@pytest.mark.parametrize("rate", [0.0, 0.6, 1.0])
def test_widened_model_starts_with_the_narrow_picture_and_bits(narrow, rate):
    wide = _widened(narrow, 256)
    img = make_image(128, 128, seed=4)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    r = torch.tensor([rate])
    with torch.no_grad():
        a, b = narrow(x, r, hard=True), wide(x, r, hard=True)
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
    assert torch.allclose(a["likelihoods"]["y"], b["likelihoods"]["y"][:, :192], atol=1e-6)
    assert torch.equal(a["likelihoods"]["z"], b["likelihoods"]["z"])
    # At the top rate the new channels carry values the decoder can learn to use.
    with torch.no_grad():
        r = torch.tensor([1.0])
        g, _ = wide.gains(r)
        assert (wide.g_a(x) * g)[:, 192:].abs().max() > 0.1


def test_widened_model_round_trips_through_the_exact_coder(narrow):
    wide = _widened(narrow, 224)
    wide.update(force=True)
    y = torch.randn(1, 224, 8, 12) * 4
    _, y_hat, decoded = _roundtrip(wide, y)
    assert torch.equal(y_hat, decoded)


def test_widen_refuses_what_it_cannot_carry(narrow):
    with pytest.raises(ValueError, match="cannot widen"):
        widen_latent(narrow.state_dict(), GainedContextHyperprior(N=N, M=192, lambdas=LAMBDAS))
    other = GainedContextHyperprior(N=N, M=256, lambdas=LAMBDAS, groups=(64, 64, 64, 64))
    with pytest.raises(ValueError, match="cannot widen"):
        widen_latent(narrow.state_dict(), other)


def test_init_from_a_narrower_latent(narrow, tmp_path):
    ckpt = tmp_path / "narrow.pt"
    torch.save({"model": narrow.state_dict(), "config": {"lambdas": LAMBDAS}}, ckpt)
    wide = build_model("elic-gain", N, 320, LAMBDAS)
    load_initial_weights(wide, str(ckpt))
    assert wide.groups == (*GROUPS, 128)
    assert torch.equal(wide.g_a[-1].weight[:192], narrow.g_a[-1].weight)
    assert torch.equal(wide.g_s[0].weight[:192], narrow.g_s[0].weight)
    with pytest.raises(CodecError, match="elic-gain"):
        load_initial_weights(build_model("msh-gain", N, 320, LAMBDAS), str(ckpt))
    torch.save({"model": wide.state_dict()}, tmp_path / "wide.pt")
    with pytest.raises(CodecError, match="cannot widen"):
        load_initial_weights(build_model("elic-gain", N, 192, LAMBDAS), str(tmp_path / "wide.pt"))


def test_new_channels_ramp_up_to_their_full_rate():
    from codec.train.loop import new_channel_weight, rd_loss

    assert new_channel_weight(320, 320, 0, 100) is None
    assert new_channel_weight(320, 192, 100, 100) is None
    assert new_channel_weight(320, 192, 5, 0) is None
    w = new_channel_weight(320, 192, 25, 100)
    assert torch.equal(w[:192], torch.ones(192)) and torch.allclose(w[192:], torch.tensor(0.25))

    class Ladder:
        lambdas = LAMBDAS

        @staticmethod
        def lmbda(rate):
            return torch.full_like(rate, 0.01)

    x = torch.zeros(1, 3, 16, 16)
    lik = torch.full((1, 4, 1, 1), 0.5)  # one bit per latent: 4 bits over 256 pixels
    out = {"x_hat": x, "likelihoods": {"y": lik, "z": torch.ones(1, 1, 1, 1)}}
    rate = torch.zeros(1)
    _, full, _ = rd_loss(Ladder, out, x, rate)
    _, half, _ = rd_loss(Ladder, out, x, rate, channel_weight=torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert full.item() == pytest.approx(4 / 256) and half.item() == pytest.approx(2 / 256)
