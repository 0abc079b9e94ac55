"""The variable-rate cost harness: its interpolation, and a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from benchmarks import vbr_cost

CURVE = [(0.2, 26.0), (0.4, 28.0), (0.8, 30.0), (1.6, 32.0)]


def test_rate_at_interpolates_in_log_rate():
    assert vbr_cost.rate_at(CURVE, 28.0) == pytest.approx(0.4)
    assert vbr_cost.rate_at(CURVE, 29.0) == pytest.approx(math.sqrt(0.4 * 0.8))
    assert math.isnan(vbr_cost.rate_at(CURVE, 25.0))
    assert math.isnan(vbr_cost.rate_at(CURVE, 32.5))


def test_rate_at_ignores_points_that_do_not_raise_quality():
    bumpy = [*CURVE, (1.0, 29.5)]  # more bits than (0.8, 30) for less PSNR: dropped
    assert vbr_cost.rate_at(bumpy, 29.0) == pytest.approx(math.sqrt(0.4 * 0.8))


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(2):
        coarse = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
        Image.fromarray(coarse).resize((80, 72), Image.BICUBIC).save(root / f"{i}.png")
    return root


def test_tiny_run_trains_three_models_and_reports(photos, tmp_path):
    out = tmp_path / "report.json"
    args = ["--data", str(photos), "--val", str(photos), "--out", str(tmp_path / "runs")]
    args += ["--json", str(out), "--steps", "2", "--batch", "2", "--crop", "64", "--warmup", "1"]
    args += ["--N", "16", "--M", "24", "--threads", "1", "--fixed", "0.0035,0.025"]
    assert vbr_cost.main(args) == 0
    report = json.loads(out.read_text())
    assert report["val_images"] == 2 and report["recipe"]["steps"] == 2
    assert report["vbr"]["train"]["steps"] == 2
    assert [p["quality"] for p in report["vbr"]["curve"]] == pytest.approx(
        [100 * i / 8 for i in range(9)]
    )
    assert [p["lambda"] for p in report["fixed"]] == [0.0035, 0.025]
    curve = [(p["bpp"], p["psnr"]) for p in report["vbr"]["curve"]]
    costs = []
    for p in report["fixed"]:
        assert p["train"]["steps"] == 2 and p["bpp"] > 0 and p["psnr"] > 0
        need = vbr_cost.rate_at(curve, p["psnr"])
        if math.isfinite(need):
            assert p["vbr_bpp_at_same_psnr"] == pytest.approx(need)
            assert p["rate_cost_pct"] == pytest.approx(100 * (need / p["bpp"] - 1))
            costs.append(p["rate_cost_pct"])
        else:  # outside the variable-rate curve: no cost can be read
            assert p["vbr_bpp_at_same_psnr"] is None and p["rate_cost_pct"] is None
    if costs:
        assert report["mean_rate_cost_pct"] == pytest.approx(sum(costs) / len(costs))
    for name in ("vbr", "fixed-0.0035", "fixed-0.025"):
        manifest = tmp_path / "runs" / name / "export" / f"vbr-cost-{name}.json"
        assert json.loads(manifest.read_text())["steps"] == 2
    # A second call resumes the finished runs instead of training them again.
    assert vbr_cost.main(args) == 0
    assert json.loads(out.read_text())["vbr"]["train"]["steps"] == 2
    # From a common start: every run continues the same checkpoint, each its own ladder.
    start = tmp_path / "runs" / "vbr" / "checkpoint.pt"
    args[args.index("--out") + 1] = str(tmp_path / "again")
    assert vbr_cost.main([*args, "--init-from", str(start)]) == 0
    assert json.loads(out.read_text())["init_from"] == "checkpoint.pt"
    manifest = tmp_path / "again" / "fixed-0.025" / "export" / "vbr-cost-fixed-0.025.json"
    assert [st["rungs"] for st in json.loads(manifest.read_text())["stages"]] == [9, 1]


def test_bad_arguments_are_one_line(photos, tmp_path, capsys):
    base = ["--data", str(photos), "--val", str(photos), "--out", str(tmp_path), "--json", "r"]
    assert vbr_cost.main([*base, "--fixed", "a,b"]) == 2
    assert vbr_cost.main([*base, "--crop", "100"]) == 2
    assert vbr_cost.main(["--data", str(tmp_path / "no"), *base[2:]]) == 2
    assert vbr_cost.main([*base, "--init-from", str(tmp_path / "none.pt")]) == 2
    assert len(err := capsys.readouterr().err.strip().splitlines()) == 4
    assert "comma-separated numbers" in err[0] and "multiple of 64" in err[1]
    assert "data folder not found" in err[2] and "no such file" in err[3]
