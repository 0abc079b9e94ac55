"""Half-precision transforms: same files' meaning, pixels within rounding of float32."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import codec
from codec.cli import main
from codec.net.ladder import quality_to_rate
from codec.runtime import load_model

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.jpg"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A natural crop: half-precision error depends on real activations, not synthetic ones."""
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))[:128, :160].copy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-12))


@pytest.mark.parametrize("quality", [0, 100])
def test_float16_synthesis_error_is_below_rounding(photo, quality):
    full, half = load_model(precision="float32"), load_model(precision="float16")
    assert full is not half and half.precision == "float16"
    assert next(half.model.g_s.parameters()).dtype == torch.float16
    rate = torch.tensor([quality_to_rate(quality, full.model.levels)])
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        gain, inv_gain = full.model.gains(rate)
        y_hat = torch.round(full.model.g_a(x) * gain) * inv_gain
        ref = full.model.g_s(y_hat)
        out = half.model.g_s(y_hat)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    levels = (out - ref).abs() * 255
    assert 0 < levels.max() < 0.5 and levels.mean() < 0.1  # 0 would mean float32 ran


def test_float16_files_decode_alike(photo):
    data = codec.compress(photo, quality=60)
    full = codec.decompress(data)
    half = codec.decompress(data, precision="float16")
    diff = np.abs(full.astype(int) - half.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.1
    made_in_half = codec.compress(photo, quality=60, precision="float16")
    assert abs(len(made_in_half) - len(data)) <= 0.01 * len(data)
    assert abs(psnr(photo, codec.decompress(made_in_half)) - psnr(photo, full)) < 0.05


def test_bad_precision_is_one_line_error(photo, tmp_path):
    with pytest.raises(codec.CodecError, match="unknown precision"):
        codec.compress(photo, precision="float8")
    with pytest.raises(codec.CodecError, match="unknown precision"):
        list(codec.decompress_many([b""], precision="int8"))
    src = tmp_path / "a.png"
    Image.fromarray(photo).save(src)
    r = CliRunner().invoke(main, ["compress", str(src), "--precision", "float16"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["decompress", str(src.with_suffix(".lcz")), "--precision", "x"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_bfloat16_transforms_stay_within_a_few_levels(photo):
    full, low = load_model(precision="float32"), load_model(precision="bfloat16")
    assert next(low.model.g_s.parameters()).dtype == torch.bfloat16
    rate = torch.tensor([quality_to_rate(60, full.model.levels)])
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        gain, inv_gain = full.model.gains(rate)
        y_hat = torch.round(full.model.g_a(x) * gain) * inv_gain
        ref, out = full.model.g_s(y_hat), low.model.g_s(y_hat)
    assert out.dtype == torch.float32
    levels = (out - ref).abs() * 255
    assert 0 < levels.mean() < 0.5 and levels.max() < 8
    data = codec.compress(photo, quality=60)
    assert (
        abs(
            psnr(photo, codec.decompress(data, precision="bfloat16"))
            - psnr(photo, codec.decompress(data))
        )
        < 0.1
    )
    # A file written in bfloat16 decodes in float32 (and back) like any other.
    made_low = codec.compress(photo, quality=60, precision="bfloat16")
    assert abs(len(made_low) - len(data)) <= 0.02 * len(data)
    assert abs(psnr(photo, codec.decompress(made_low)) - psnr(photo, codec.decompress(data))) < 0.1
