"""The synthesis refinement: its payload, what the decoder does with it, the encoder's fit and
its judgement, and files that carry one."""

import math
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_image

import codec
from codec import bitstream
from codec.encoder.analysis import prepare
from codec.encoder.refine import fit, normal_equations
from codec.image import read_image
from codec.metrics import file_rd_loss, psnr
from codec.net.refine import (
    FORM_CHANNEL,
    FORM_CHANNEL_RGB,
    MAX_STEP,
    Refinement,
    refined_synthesis,
    split,
)
from codec.net.tiling import synthesize

pytestmark = pytest.mark.usefixtures("one_thread")

CHANNELS = 128  # the shipped releases' last layer


def flat_graphic(height: int, width: int) -> np.ndarray:
    """Flat colours and hard edges, the content the transforms reconstruct worst."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[...] = (235, 225, 40)
    img[(xx // 24 + yy // 24) % 2 == 0] = (20, 60, 200)
    img[(yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (height / 5) ** 2] = (250, 250, 250)
    return img


def random_refinement(form: int, seed: int) -> Refinement:
    rng = np.random.default_rng(seed)
    n = CHANNELS * (1 if form == FORM_CHANNEL else 3)
    return Refinement.quantize(form, rng.normal(0, 0.05, n), rng.normal(0, 0.01, 3))


@pytest.mark.parametrize("form", [FORM_CHANNEL, FORM_CHANNEL_RGB])
def test_payload_round_trips_and_quantizes_within_half_a_step(form):
    rng = np.random.default_rng(form)
    n = CHANNELS * (1 if form == FORM_CHANNEL else 3)
    scales, biases = rng.normal(0, 0.1, n), rng.normal(0, 0.02, 3)
    r = Refinement.quantize(form, scales, biases)
    back = Refinement.unpack(r.pack(), CHANNELS)
    assert back.form == form and back.scale_step == r.scale_step
    assert np.array_equal(back.scales, r.scales) and np.array_equal(back.biases, r.biases)
    assert len(r.pack()) == 9 + n + 3
    assert np.abs(r.scales.astype(float) * r.scale_step - scales).max() <= r.scale_step / 2 + 1e-9
    assert np.abs(r.biases.astype(float) * r.bias_step - biases).max() <= r.bias_step / 2 + 1e-9
    assert np.abs(r.scales).max() == 127  # the range is used to its end


def test_all_zero_refinement_has_zero_steps():
    r = Refinement.quantize(FORM_CHANNEL, np.zeros(CHANNELS), np.zeros(3))
    assert r.scale_step == r.bias_step == 0
    assert torch.equal(r.factors(CHANNELS), torch.ones(CHANNELS, 3, 1, 1))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x01\x00", "too short"),
        (struct.pack(">Bff", 3, 0.01, 0.01) + bytes(CHANNELS + 3), "form 3"),
        (struct.pack(">Bff", 1, 0.01, 0.01) + bytes(CHANNELS + 2), "bytes for 128 channels"),
        (struct.pack(">Bff", 2, 0.01, 0.01) + bytes(CHANNELS + 3), "bytes for 128 channels"),
        (struct.pack(">Bff", 1, math.nan, 0.01) + bytes(CHANNELS + 3), "step"),
        (struct.pack(">Bff", 1, 0.01, math.inf) + bytes(CHANNELS + 3), "step"),
        (struct.pack(">Bff", 1, -0.01, 0.01) + bytes(CHANNELS + 3), "step"),
        (struct.pack(">Bff", 1, 2 * MAX_STEP, 0.01) + bytes(CHANNELS + 3), "step"),
    ],
)
def test_malformed_payloads_are_refused(payload, message):
    with pytest.raises(codec.CodecError, match=message):
        Refinement.unpack(payload, CHANNELS)


@pytest.mark.parametrize("form", [FORM_CHANNEL, FORM_CHANNEL_RGB])
def test_refined_synthesis_scales_the_last_layer_and_nothing_else(form):
    model = codec.load_model().model
    r = random_refinement(form, seed=3)
    y = torch.randn(1, 192, 4, 5)
    body, last = split(model.g_s)
    w = last.weight.float() * r.factors(CHANNELS)
    b = last.bias.float() + r.offsets()
    args = (last.stride, last.padding, last.output_padding, 1, last.dilation)
    want = F.conv_transpose2d(body(y), w, b, *args)
    with torch.no_grad():
        got = refined_synthesis(model.g_s, r)(y)
        plain = model.g_s(y)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-3)
    with torch.no_grad():  # the model itself is untouched
        assert torch.equal(model.g_s(y), plain)


def test_fit_recovers_a_known_refinement():
    """Pixels made by a refined synthesis: the fit finds that refinement's scales again (up to
    the pixels' 8-bit rounding)."""
    pixels = make_image(64, 96, seed=4)
    a = prepare(read_image(pixels), None, "cpu", None, None)
    t = a.trial(60)
    known = random_refinement(FORM_CHANNEL_RGB, seed=5)
    target = synthesize(a.model, t.y_hat, t.inv_gain, 64, 96, refinement=known)
    r = fit(a.model, t.y_hat, t.inv_gain, target)[1]
    assert r.form == FORM_CHANNEL_RGB
    got = r.scales * r.scale_step
    want = known.scales * known.scale_step
    assert np.corrcoef(got, want)[0, 1] > 0.9
    err = lambda refinement: np.mean(  # noqa: E731
        (
            synthesize(a.model, t.y_hat, t.inv_gain, 64, 96, refinement=refinement)
            - target.astype(float)
        )
        ** 2
    )
    assert err(r) < 0.2 * err(None)


def test_normal_equations_do_not_depend_on_the_tiling(monkeypatch):
    pixels = make_image(200, 136, seed=6)
    a = prepare(read_image(pixels), None, "cpu", None, None)
    t = a.trial(50)
    whole = normal_equations(a.model, t.y_hat, t.inv_gain, pixels)
    monkeypatch.setattr("codec.encoder.refine.TILE", 64)
    tiled = normal_equations(a.model, t.y_hat, t.inv_gain, pixels)
    for x, y in zip(whole, tiled):
        assert torch.allclose(x, y, rtol=1e-4, atol=1e-6 * float(x.abs().max()))


@pytest.fixture(scope="module")
def graphic():
    return flat_graphic(96, 128)


def test_the_encoder_keeps_a_refinement_only_where_it_pays(graphic):
    a = prepare(read_image(graphic), None, "cpu", None, None)
    t = a.trial(100)
    refined, recon = a.refined(t)
    assert refined.refinement is not None, "flat colours at quality 100 should pay for one"
    lmbda = float(a.model.lmbda(torch.tensor([t.container.rate]))[0])

    def loss(trial, rec):
        return file_rd_loss(graphic, rec, len(trial.data), lmbda, a.distortion)

    assert loss(refined, recon) < loss(t, a.reconstruction(t))
    assert np.array_equal(recon, a.reconstruction(refined))
    # Where the caller's condition refuses every refined file the plain trial comes back.
    same, rec = a.refined(t, keeps=lambda data, _: len(data) <= len(t.data))
    assert same is t and np.array_equal(rec, a.reconstruction(t))


def test_effort_files_carry_the_refinement_and_decode_to_their_reconstruction(graphic):
    enc = codec.encode(graphic, 100, effort=2)
    c = bitstream.unpack(enc.data)
    assert c.refinement is not None
    assert np.array_equal(codec.decompress(enc.data), enc.reconstruction)
    meta = codec.info(enc.data)
    assert meta["section_bytes"]["refinement"] == len(c.refinement)
    plain = codec.encode(graphic, 100)
    assert bitstream.unpack(plain.data).refinement is None  # effort 1 stays the plain path


def test_a_refinement_for_another_width_is_refused(graphic):
    c = bitstream.unpack(codec.compress(graphic, 50))
    rng = np.random.default_rng(0)
    c = replace(c, refinement=Refinement.quantize(1, rng.normal(size=64), np.zeros(3)).pack())
    with pytest.raises(codec.CodecError, match="refinement"):
        codec.decompress(bitstream.pack(c))


@pytest.mark.parametrize("kind", ["size", "bpp", "psnr"])
def test_targets_stay_met_and_report_the_refined_file(graphic, kind):
    """With a target the refinement may only be kept within it, and the result must describe
    the file written, refined or not."""
    top = codec.encode(graphic, 100, effort=2)
    assert top.container.refinement is not None
    pixels = graphic.shape[0] * graphic.shape[1]
    goal = {
        "size": {"target_size": len(top.data) + 40},
        "bpp": {"target_bpp": 8 * len(top.data) / pixels},
        "psnr": {"target_psnr": psnr(graphic, top.reconstruction) - 0.05},
    }[kind]
    enc = codec.encode(graphic, effort=2, **goal)
    reached = {
        "size": len(enc.data),
        "bpp": 8 * len(enc.data) / pixels,
        "psnr": psnr(graphic, enc.reconstruction),
    }[kind]
    assert enc.container.refinement is not None  # the refined path is the one under test
    assert enc.target.reached == pytest.approx(reached)
    assert enc.target.met
    if kind == "size":
        assert len(enc.data) <= goal["target_size"]
    if kind == "psnr":
        assert reached >= goal["target_psnr"]
    assert np.array_equal(codec.decompress(enc.data), enc.reconstruction)


def test_a_refinement_section_over_the_limit_is_refused_both_ways(graphic):
    c = bitstream.unpack(codec.compress(graphic, 50))
    big = bytes(bitstream.MAX_REFINEMENT_BYTES + 1)
    with pytest.raises(codec.CodecError, match="refinement larger"):
        bitstream.pack(replace(c, refinement=big))
    body = bitstream.pack(c)[:-4]  # a hand-made file with the section
    pos = bitstream._FIXED.size + len(c.model_id)
    section = bytes([bitstream.SECTION_REFINEMENT]) + struct.pack(">I", len(big)) + big
    body = body[:pos] + bytes([body[pos] + 1]) + section + body[pos + 1 :]
    forged = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(codec.CodecError, match="refinement section too large"):
        codec.decompress(forged)


@pytest.mark.parametrize("precision", [None, "bfloat16"])
def test_the_most_extreme_refinement_still_decodes_to_an_image(graphic, precision):
    """Steps at their limit and every scale at +-127: weights of 128 times their size, and the
    decoder still returns 8-bit pixels, not NaN or a crash."""
    c = bitstream.unpack(codec.compress(graphic, 50))
    n = CHANNELS * 3
    ints = np.where(np.arange(n) % 2 == 0, 127, -127).astype(np.int8)
    payload = struct.pack(">Bff", FORM_CHANNEL_RGB, MAX_STEP, MAX_STEP) + ints.tobytes()
    payload += np.array([127, -127, 127], np.int8).tobytes()
    out = codec.decode(bitstream.pack(replace(c, refinement=payload)), precision=precision)
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == graphic.shape
