"""Encoder effort on real photo content: it must change the file, for the better.

The earlier straight-through refinement returned the effort-1 file byte for byte on every photo
tried (its candidates never beat the plain file's true loss), so efforts above 1 only cost time.
These tests fail if that comes back.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec.encoder import effort as effort_mod
from codec.encoder import sga
from codec.encoder.effort import ITERATIONS
from codec.encoder.sga import SGA, SSL, temperature
from codec.metrics import file_rd_loss as rd_loss

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample.jpg"


pytestmark = pytest.mark.usefixtures("one_thread")


def _centre(side: int) -> np.ndarray:
    """A side x side window at the centre of the repository's sample photo (textured: foliage
    and edges)."""
    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))
    h, w = rgb.shape[:2]
    top, left = h // 2 - side // 2, w // 2 - side // 2
    return np.ascontiguousarray(rgb[top : top + side, left : left + side])


@pytest.fixture(scope="module")
def crop():
    return _centre(64)


def _loss(img, enc):
    lm = codec.load_model()
    lmbda = float(lm.model.lmbda(torch.tensor([enc.container.rate]))[0])
    return rd_loss(img, enc.reconstruction, len(enc.data), lmbda)


@pytest.fixture(scope="module")
def window():
    """A 96x96 window of the sample photo. With the default release, effort 2's ten steps find
    nothing better for the 64x64 window at quality 30 (a file of about 200 bytes), and the
    guard rightly returns the plain file; this window is large enough to test the search."""
    return _centre(96)


@pytest.mark.parametrize("quality", [30, 70])
def test_effort_changes_the_file_and_lowers_the_true_loss(window, quality):
    plain = codec.encode(window, quality)
    tuned = codec.encode(window, quality, effort=2)
    assert tuned.data != plain.data, "effort 2 silently returned the effort-1 file"
    assert _loss(window, tuned) < _loss(window, plain)
    assert np.array_equal(codec.decompress(tuned.data), tuned.reconstruction)


def test_effort_is_deterministic(crop):
    assert codec.compress(crop, 50, effort=2) == codec.compress(crop, 50, effort=2)


def test_levels_are_budgets_that_grow():
    steps = [ITERATIONS[e] for e in range(1, 10)]
    assert steps[0] == 0 and all(a < b for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("relaxation", [SGA, SSL])
def test_sga_anneals_to_rounding(relaxation):
    gen = torch.Generator().manual_seed(1)
    v = torch.linspace(-3, 3, 1001)
    hot = relaxation(0.5, gen)(v)
    cold = relaxation(1e-3, gen)(v)
    assert (hot - torch.floor(v)).min() >= 0 and (hot - torch.floor(v)).max() <= 1
    # Far from the midpoints, a cold draw is the rounding.
    away = (v - torch.floor(v) - 0.5).abs() > 0.05
    assert torch.allclose(cold[away], torch.round(v)[away], atol=1e-3)
    assert temperature(0, 20) == pytest.approx(sga.TAU_START)
    assert temperature(10, 20) < temperature(5, 20) < sga.TAU_START
    assert temperature(20, 20) == pytest.approx(sga.TAU_END)
    assert temperature(500, 20) == pytest.approx(sga.TAU_END)
    assert effort_mod.horizon() == ITERATIONS[9]


@pytest.mark.parametrize("a", [1.0, SSL.A])
def test_ssl_rounds_up_as_sga_plus_says(a, monkeypatch):
    """At temperature 1 a draw lands nearer the ceiling with SGA+'s probability of rounding up,
    sigmoid(a * logit(d)) for the fraction d: d itself for a = 1 (linear in the distance)."""
    monkeypatch.setattr(SSL, "A", a)
    n = 200_000
    for d in (0.1, 0.3, 0.5, 0.8):
        draws = SSL(1.0, torch.Generator().manual_seed(7))(torch.full((n,), 4.0 + d))
        assert ((draws >= 4) & (draws <= 5)).all()
        up = float((draws > 4.5).float().mean())
        want = float(torch.sigmoid(torch.tensor(a * np.log(d / (1 - d)))))
        assert up == pytest.approx(want, abs=0.01)


def test_the_step_falls_to_zero_over_the_anneal():
    top = effort_mod.horizon()
    sizes = [effort_mod.step_size(k) for k in range(top + 50)]
    assert sizes[0] == pytest.approx(effort_mod.LEARNING_RATE)
    assert all(a >= b for a, b in zip(sizes, sizes[1:]))
    assert sizes[top // 2] == pytest.approx(effort_mod.LEARNING_RATE / 2)
    assert sizes[top] == pytest.approx(0.0, abs=1e-12) and sizes[-1] == sizes[top]


def test_one_search_gives_every_level_as_encode_writes_it(crop):
    """Each level's schedule is the beginning of the next one's, so the benchmark's single
    search to the highest level must hand back exactly the files each level writes alone,
    and a higher level's latents are never worse on the image than a lower one's (on this
    crop no level keeps a synthesis refinement, so the files are the latents')."""
    levels = codec.encode_efforts(crop, 40, efforts=(1, 2, 3))
    losses = []
    for effort, enc in levels.items():
        alone = codec.encode(crop, 40, effort=effort)
        assert enc.data == alone.data, f"effort {effort} differs from its own encode"
        assert np.array_equal(enc.reconstruction, alone.reconstruction)
        losses.append(_loss(crop, enc))
        assert enc.container.refinement is None
    assert losses[0] >= losses[1] >= losses[2] and losses[2] < losses[0]
    assert levels[1].search_seconds == 0 < levels[2].search_seconds <= levels[3].search_seconds


def test_progress_bar_on_request(crop, capsys):
    with effort_mod.progress():
        codec.compress(crop, 50, effort=2)
    err = capsys.readouterr().err
    assert "step" in err and f"/{ITERATIONS[2]}" in err


def _latents(img, quality):
    from codec.encoder.analysis import Analysis
    from codec.net.ladder import quality_to_rate

    lm = codec.load_model()
    m = lm.model
    a = Analysis(lm, img, 3, lambda q: quality_to_rate(q, m.levels))
    rate = torch.tensor([quality_to_rate(quality, m.levels)])
    with torch.no_grad():
        gain, inv_gain = m.gains(rate)
        y = a.latent * gain
        z = m.h_a(y)
    return m, a, y, z, inv_gain, float(m.lmbda(rate)[0])


def test_a_tile_sees_the_whole_image_loss(crop):
    """No seams by construction: on a tile's core, the window's loss has the gradient of the
    whole image's loss (each normalised by its own pixel count), so tile by tile descends one
    whole-image objective."""
    from codec.encoder.sga import objective_for, ste_round

    img = np.ascontiguousarray(np.asarray(Image.open(SAMPLE).convert("RGB"))[:320, :384])
    m, a, y, z, inv_gain, lmbda = _latents(img, 50)
    ph, pw = a.padded
    x = effort_mod._window(img, 0, ph, 0, pw, "cpu")
    whole = objective_for(m, x, inv_gain, lmbda, a.height, a.width)
    with torch.enable_grad():
        lat = [y.clone().requires_grad_(True), z.clone().requires_grad_(True)]
        g_whole = torch.autograd.grad(whole.loss(lat, ste_round), lat)
    core = ((128, 192), (128, 256))  # interior: context on every side
    objective, ys, zs, masks = effort_mod.tile_problem(
        m, img, a.padded, y, z, inv_gain, lmbda, core, distortion="mse"
    )
    with torch.enable_grad():
        lat = [y[ys].clone().requires_grad_(True), z[zs].clone().requires_grad_(True)]
        g_tile = torch.autograd.grad(objective.loss(lat, ste_round), lat)
    n_whole, n_tile = a.height * a.width, objective.height * objective.width
    for gw, gt, mask, sl in zip(g_whole, g_tile, masks, (ys, zs)):
        on_core = mask.expand_as(gt).bool()
        want = (gw[sl] * n_whole)[on_core]
        got = (gt * n_tile)[on_core]
        assert torch.allclose(got, want, rtol=1e-3, atol=1e-4 * want.abs().max())


def test_bf16_steers_the_search_but_never_judges_it(crop):
    """The relaxed loss may run the synthesis in bf16 (speed); a judging loss never does."""
    from codec.encoder.sga import hard_round, objective_for

    m, a, y, z, inv_gain, lmbda = _latents(crop, 50)
    ph, pw = a.padded
    x = effort_mod._window(crop, 0, ph, 0, pw, "cpu")
    exact = objective_for(m, x, inv_gain, lmbda, a.height, a.width)
    fast = objective_for(m, x, inv_gain, lmbda, a.height, a.width, bf16=True)
    with torch.no_grad():
        judged = [float(o.loss([y, z], hard_round, judge=True)) for o in (exact, fast)]
        relaxed = [float(o.loss([y, z], hard_round)) for o in (exact, fast)]
    assert judged[0] == judged[1]
    assert relaxed[0] != relaxed[1] and relaxed[1] == pytest.approx(relaxed[0], rel=0.01)


def test_tiled_refinement_is_never_worse(crop, monkeypatch):
    """A large image is refined tile by tile; forced here on a small one with small tiles."""
    img = np.ascontiguousarray(np.asarray(Image.open(SAMPLE).convert("RGB"))[:128, :192])
    plain = codec.encode(img, 50)
    monkeypatch.setattr(effort_mod, "WHOLE_PIXELS", 0)
    monkeypatch.setattr(effort_mod, "TILE", 64)
    monkeypatch.setitem(effort_mod.ITERATIONS, 2, 4)
    calls = []
    tiles = effort_mod.refine_tiles
    monkeypatch.setattr(effort_mod, "refine_tiles", lambda *a: calls.append(len(a[7])) or tiles(*a))
    tuned = codec.encode(img, 50, effort=2)
    assert calls == [6]  # 2 x 3 tiles
    assert _loss(img, tuned) <= _loss(img, plain)
    assert np.array_equal(codec.decompress(tuned.data), tuned.reconstruction)


def _bench_curve(
    scale: float, loss: float, psnr_shift: float = 0.0, seconds: float = 1.0, peak: int = 2**20
) -> list[dict]:
    """Three RD points as benchmarks.effort records them: bits scaled by ``scale``."""
    return [
        {
            "quality": q,
            "bpp": b * scale,
            "psnr": p + psnr_shift,
            "ms_ssim_db": (p + psnr_shift) / 2,
            "rd_loss": loss,
            "encode_s": seconds,
            "encode_s_per_mp": 4.0 * seconds,
            "encode_cpu_s_per_mp": 8.0 * seconds,
            "peak_bytes": peak,
        }
        for q, b, p in ((20, 0.2, 28.0), (50, 0.5, 32.0), (80, 1.0, 36.0))
    ]


def test_benchmark_report_per_level():
    """benchmarks.effort's summary: BD-rates against effort 1, time per megapixel, peak memory,
    and a count of points where a level did worse than effort 1."""
    pytest.importorskip("bjontegaard")
    from benchmarks.effort import effort_section

    curve = _bench_curve
    section = effort_section({1: {"a": curve(1, 1.0)}, 2: {"a": curve(0.9, 0.95)}}, ITERATIONS)
    two = section["2"]
    assert two["bd_rate_psnr_percent"] == pytest.approx(-10, abs=0.5)
    assert two["bd_rate_ms_ssim_percent"] == pytest.approx(-10, abs=0.5)
    assert two["points_worse_than_effort_1"] == 0 and two["peak_mib"] == 1
    assert section["1"]["encode_s_per_mp"] == 4.0 and "bd_rate_psnr_percent" not in section["1"]


def test_benchmark_runs_in_slices_and_merges_them(tmp_path, capsys):
    """A measurement too long for one run goes in slices of the image list (``--skip``), and
    ``--merge`` joins them into the report one run over all the images would have written:
    BD-rate on the joint mean curve, not a mean of the slices'. Slices that overlap or that
    measured different things are refused with a one-line error."""
    pytest.importorskip("bjontegaard")
    from benchmarks.common.cli import UsageError, image_paths
    from benchmarks.effort import effort_section, main

    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    assert [p.name for p in image_paths(str(tmp_path), 1, skip=1)[1]] == ["b.png"]
    assert [p.name for p in image_paths(str(tmp_path), None, skip=1)[1]] == ["b.png", "c.png"]
    with pytest.raises(UsageError, match="leaves none"):
        image_paths(str(tmp_path), 1, skip=3)

    # Two images whose curves differ in level (the rates of two photos at one quality differ
    # widely), gain differently from effort 2, took different times and memory, and one of
    # which did worse at effort 2 than at effort 1: every pooled figure can tell the slices.
    parts = {
        "a": {1: _bench_curve(1, 1.0), 2: _bench_curve(0.8, 0.9, seconds=3.0)},
        "b": {
            1: _bench_curve(3, 2.0, 4.0, seconds=2.0, peak=2**22),
            2: _bench_curve(2.9, 2.1, 4.0, seconds=7.0, peak=2**23),
        },
    }
    config = {
        "efforts": [1, 2],
        "qualities": [20, 50, 80],
        "crop": None,
        "model": "m",
        "steering": "float32",
        "iterations": {"1": 0, "2": 10},
        "data": "val",
        "cpu": "cpu",
    }
    files = []
    for name, levels in parts.items():
        run = {
            "config": {**config, "images": {name: [8, 8]}},
            "per_image": {str(e): {name: pts} for e, pts in levels.items()},
        }
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(run))
    out = tmp_path / "merged.json"
    assert main(["--merge", *map(str, files), "--json", str(out)]) == 0
    merged = json.loads(out.read_text())
    joint = effort_section({e: {n: parts[n][e] for n in parts} for e in (1, 2)}, {1: 0, 2: 10})
    assert merged["effort"] == json.loads(json.dumps(joint))
    assert merged["effort"]["2"]["points_worse_than_effort_1"] == 3
    assert merged["effort"]["2"]["peak_mib"] == 8
    bd = merged["effort"]["2"]["bd_rate_psnr_percent"]
    alone = [
        effort_section({e: {n: parts[n][e]} for e in (1, 2)}, {1: 0, 2: 10})["2"] for n in parts
    ]
    assert bd != pytest.approx(sum(s["bd_rate_psnr_percent"] for s in alone) / 2, abs=0.1)
    assert sorted(merged["per_image"]["2"]) == ["a", "b"]
    assert [r["file"] for r in merged["config"]["runs"]] == ["a.json", "b.json"]
    # A merged report merges again (say, to add --against) and keeps its slices' records.
    again = tmp_path / "again.json"
    assert main(["--merge", str(out), "--json", str(again)]) == 0
    assert json.loads(again.read_text())["config"]["runs"] == merged["config"]["runs"]

    capsys.readouterr()
    assert main(["--merge", str(files[0]), str(files[0]), "--json", str(out)]) == 2
    assert "in two runs" in capsys.readouterr().err
    other = json.loads(files[1].read_text())
    other["config"]["model"] = "another"
    files[1].write_text(json.dumps(other))
    assert main(["--merge", *map(str, files), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "differ in model" in err and len(err.strip().splitlines()) == 1
    # The same release judged by two losses (a report from before the search took the
    # release's own) does not pool either.
    other["config"]["model"] = json.loads(files[0].read_text())["config"]["model"]
    other["config"]["distortion"] = "ms-ssim"
    files[1].write_text(json.dumps(other))
    assert main(["--merge", *map(str, files), "--json", str(out)]) == 2
    assert "differ in distortion" in capsys.readouterr().err


def test_merge_refuses_what_it_cannot_pool(tmp_path, capsys):
    """A run with a level or image missing, a file that is not a report, runs of which only
    some carry rate-control results, or flags that ask for a measurement: each one line and
    status 2, nothing written."""
    pytest.importorskip("bjontegaard")
    from benchmarks.effort import main

    def report(name: str, **extra) -> dict:
        return {
            "config": {
                "efforts": [1, 2],
                "qualities": [20, 50, 80],
                "iterations": {"1": 0, "2": 10},
                "images": {name: [8, 8]},
            },
            "per_image": {str(e): {name: _bench_curve(1 / e, 1.0)} for e in (1, 2)},
            **extra,
        }

    good = tmp_path / "good.json"
    good.write_text(json.dumps(report("a")))
    gap = report("b")
    del gap["per_image"]["2"]
    short = report("b")
    short["per_image"]["2"]["b"].pop()
    blank = report("b")
    blank["per_image"]["1"]["b"][0]["psnr"] = None
    targeted = report("b", targets={"summary": {}, "runs": []})
    cases = {
        "gap": (gap, "every effort level"),
        "short": (short, "one complete RD point per quality"),
        "blank": (blank, "one complete RD point per quality"),
        "list": ([report("b")], "not a benchmarks.effort report"),
        "config": ({**report("b"), "config": []}, "not a benchmarks.effort report"),
        "runs": (
            {**report("b"), "config": {**report("b")["config"], "runs": "x"}},
            "not a benchmarks.effort report",
        ),
        "targets": (targeted, "rate-control results"),
    }
    out = tmp_path / "out.json"
    for name, (content, message) in cases.items():
        bad = tmp_path / f"{name}.json"
        bad.write_text(json.dumps(content))
        capsys.readouterr()
        assert main(["--merge", str(good), str(bad), "--json", str(out)]) == 2, name
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, name
    assert main(["--merge", str(good), "--skip", "2", "--json", str(out)]) == 2
    assert "takes no --skip" in capsys.readouterr().err
    assert main(["--merge", str(good), "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not out.exists()
    assert main(["--merge", str(good), "--json", str(out)]) == 0
    assert sorted(json.loads(out.read_text())["config"]["images"]) == ["a"]

    # When every slice ran the targets, their rows are joined and summed up again.
    sliced = []
    for name, reached in (("a", 0.49), ("b", 0.48)):
        row = {"image": name, "kind": "bpp", "target": 0.5, "reached": reached}
        row.update(error=reached / 0.5 - 1, met=True, reachable=True, trials=4, seconds=1.0)
        sliced.append(tmp_path / f"t{name}.json")
        sliced[-1].write_text(json.dumps(report(name, targets={"summary": {}, "runs": [row]})))
    assert main(["--merge", *map(str, sliced), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["targets"]["summary"]["bpp"]
    assert summary["runs"] == 2 and summary["max_abs_rel_error"] == pytest.approx(0.04)


def _rd_report(curves: dict[str, list[dict]], scale: float, size=(8, 12)) -> dict:
    """A benchmarks.rd report whose kept AVIF spends ``scale`` times the bits of ``curves``
    (name to points) at the same PSNR and MS-SSIM, plus a WebP curve."""
    points = []
    for i, q in enumerate((10, 40, 70)):
        rows = [
            {
                "image": name,
                "height": size[0],
                "width": size[1],
                "bpp": pts[i]["bpp"] * scale,
                "psnr": pts[i]["psnr"],
                "ms_ssim": 1 - 10 ** (-pts[i]["ms_ssim_db"] / 10),
            }
            for name, pts in curves.items()
        ]
        points.append({"quality": q, "images": rows})
    webp = {"label": "WebP", "points": points}
    avif = {"label": "AVIF (speed 2, 4:4:4)", "settings": {"speed": 2}, "points": points}
    return {"codecs": {"webp": webp, "avif-s2-444": avif}, "avif": {"kept": "avif-s2-444"}}


def test_levels_against_a_codec_of_an_rd_report(tmp_path, capsys, monkeypatch):
    """``--against rd.json`` gives each level's BD-rate against the AVIF that report kept (or
    the codec named after a colon), averaged over the effort run's own images only; a report
    without those images once per point, with them at another size or without a finite PSNR
    is refused in one line, before a model is loaded."""
    pytest.importorskip("bjontegaard")
    from benchmarks.effort import main

    parts = {
        "a": {1: _bench_curve(1, 1.0), 2: _bench_curve(0.8, 0.9)},
        "b": {1: _bench_curve(3, 2.0, 4.0), 2: _bench_curve(2.7, 1.9, 4.0)},
    }
    config = {"efforts": [1, 2], "qualities": [20, 50, 80], "iterations": {"1": 0, "2": 10}}
    run = tmp_path / "run.json"
    run.write_text(
        json.dumps(
            {
                "config": {**config, "images": {n: [8, 12] for n in parts}},
                "per_image": {str(e): {n: parts[n][e] for n in parts} for e in (1, 2)},
            }
        )
    )
    # The report also holds an image the effort run did not measure, far off the others'
    # curves: it must not move the anchor.
    rd = _rd_report({**{n: p[1] for n, p in parts.items()}, "z": _bench_curve(9, 1.0, 9)}, 1.25)
    rd["codecs"]["webp"]["points"] = [
        {**p, "images": [{**r, "bpp": r["bpp"] * 2} for r in p["images"]]}
        for p in rd["codecs"]["webp"]["points"]
    ]
    rd_path = tmp_path / "rd.json"
    rd_path.write_text(json.dumps(rd))
    out = tmp_path / "out.json"
    argv = ["--merge", str(run), "--json", str(out), "--against", str(rd_path)]
    assert main([*argv, "--against", f"{rd_path}:webp"]) == 0
    avif, webp = json.loads(out.read_text())["against"]
    assert (avif["codec"], avif["images"], webp["codec"]) == ("avif-s2-444", 2, "webp")
    one, two = avif["levels"]["1"], avif["levels"]["2"]
    # Effort 1 spends 1/1.25 of the anchor's bits at every PSNR: -20 %, on every image.
    assert one["bd_rate_psnr_percent"] == pytest.approx(-20, abs=0.01)
    assert one["bd_rate_ms_ssim_percent"] == pytest.approx(-20, abs=0.01)
    assert one["bd_rate_psnr_percent_per_image_mean"] == pytest.approx(-20, abs=0.01)
    assert one["images_with_fewer_bits"] == 2
    assert two["bd_rate_psnr_percent"] < one["bd_rate_psnr_percent"] - 5
    assert webp["levels"]["1"]["bd_rate_psnr_percent"] == pytest.approx(-60, abs=0.01)
    assert "against AVIF (speed 2, 4:4:4)" in capsys.readouterr().out
    # Without a kept AVIF the report's "avif" is the anchor; a path may hold colons.
    plain = {"codecs": {"avif": rd["codecs"]["webp"]}}
    odd = tmp_path / "rd 12:00.json"
    odd.write_text(json.dumps(plain))
    assert main(["--merge", str(run), "--json", str(out), "--against", str(odd)]) == 0
    (section,) = json.loads(out.read_text())["against"]
    assert section["codec"] == "avif"
    assert section["levels"]["1"]["bd_rate_psnr_percent"] == pytest.approx(-60, abs=0.01)

    del rd["codecs"]["avif-s2-444"]["points"][1]["images"][1]  # b at one quality
    rd_path.write_text(json.dumps(rd))
    turned = tmp_path / "turned.json"
    turned.write_text(json.dumps(_rd_report({n: p[1] for n, p in parts.items()}, 1.25, (12, 8))))
    twice = json.loads(json.dumps(_rd_report({n: p[1] for n, p in parts.items()}, 1.25)))
    rows = twice["codecs"]["webp"]["points"][0]["images"]
    rows.append(dict(rows[0]))
    del twice["codecs"]["webp"]["points"][1]["images"][0]  # a: twice at 10, missing at 40
    twice["codecs"]["avif-s2-444"]["points"][2]["images"][0]["psnr"] = None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(twice))
    cases = {
        str(rd_path): "has no single result for b at quality 40",
        f"{rd_path}:heic": "has no 'heic' curve; it has avif-s2-444, webp",
        str(turned): "measured a at another size than 12x8",
        f"{bad}:webp": "has no single result for a at quality 10",
        str(bad): "has no finite bpp and PSNR for a at quality 70",
        str(run): "is not a benchmarks.rd report",
        str(tmp_path / "none.json"): "cannot read",
    }
    out.unlink()
    for spec, message in cases.items():
        capsys.readouterr()
        assert main(["--merge", str(run), "--json", str(out), "--against", spec]) == 2, spec
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, spec
    assert not out.exists()

    # A measuring run checks the report against its images before its first encode.
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (12, 8)).save(data / "c.png")
    monkeypatch.setattr(codec, "load_model", lambda *a, **k: pytest.fail("loaded a model"))
    monkeypatch.setattr(codec, "encode", lambda *a, **k: pytest.fail("measured"))
    argv = ["--data", str(data), "--json", str(out), "--against", f"{rd_path}:webp"]
    assert main([*argv, "--efforts", "1", "--no-targets", "--threads", "1"]) == 2
    assert "webp has no single result for c.png" in capsys.readouterr().err


@pytest.mark.parametrize("steer", ["float32", "bfloat16"])
def test_benchmark_steers_as_told_and_says_so(steer, tmp_path, monkeypatch):
    """``--steer`` sets the search's arithmetic and the report records it, so that runs on
    CPUs with and without native bf16 can be told apart and compared."""
    pytest.importorskip("bjontegaard")
    from benchmarks.effort import main

    monkeypatch.setattr(effort_mod, "SEARCH_BF16", None)
    seen = []
    real = effort_mod.objective_for
    monkeypatch.setattr(
        effort_mod, "objective_for", lambda *a, **k: seen.append(k["bf16"]) or real(*a, **k)
    )
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.png", "b.png"):
        Image.open(SAMPLE).convert("RGB").save(data / name)
    out = tmp_path / "effort.json"
    argv = ["--data", str(data), "--json", str(out), "--crop", "32", "--efforts", "1,2"]
    argv += ["--qualities", "30,70", "--threads", "1", "--no-targets", "--steer", steer]
    assert main([*argv, "--skip", "1"]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["steering"] == steer
    assert list(report["config"]["images"]) == ["b.png"] and report["config"]["skip"] == 1
    assert seen == [steer == "bfloat16"] * 2


@pytest.mark.parametrize(
    "tune, weights, model, distortion",
    [
        (None, None, "lcodec-elic-2026-12h", "3mse+ms-ssim"),
        ("psnr", None, "lcodec-elic-2026-12g", "mse"),
        ("ms-ssim", "lcodec-elic-2026-12g", "lcodec-elic-2026-12g", "ms-ssim"),
    ],
)
def test_benchmark_searches_and_judges_for_the_tune(
    tune, weights, model, distortion, tmp_path, monkeypatch
):
    """``--tune`` measures what ``lcodec compress --tune`` writes: the search minimises the
    tune's distortion, every point's RD loss is that distortion's, the release is the one the
    tune picks unless ``--weights`` names one, and the report says which."""
    pytest.importorskip("bjontegaard")
    from benchmarks.effort import main
    from codec import metrics
    from codec.encoder import analysis
    from codec.net.zoo import TUNED

    # The encoder binds its own loss at import, so the spy below sees the report's calls only.
    assert analysis.file_rd_loss is metrics.file_rd_loss
    # Another release than the default for PSNR, so that the tune's pick shows in the report.
    # The crops are too small for MS-SSIM (each loss then measures MSE): what is checked is
    # the distortion each is asked for.
    monkeypatch.setitem(TUNED, "psnr", "lcodec-elic-2026-12g")
    searched, judged = [], []
    real_objective, real_loss = effort_mod.objective_for, metrics.file_rd_loss
    monkeypatch.setattr(
        effort_mod,
        "objective_for",
        lambda *a, **k: searched.append(k["distortion"]) or real_objective(*a, **k),
    )
    monkeypatch.setattr(metrics, "file_rd_loss", lambda *a: judged.append(a[4]) or real_loss(*a))
    data = tmp_path / "data"
    data.mkdir()
    Image.open(SAMPLE).convert("RGB").save(data / "a.png")
    out = tmp_path / "effort.json"
    argv = ["--data", str(data), "--json", str(out), "--crop", "32", "--efforts", "1,2"]
    argv += ["--qualities", "30,70", "--threads", "1", "--no-targets"]
    argv += ["--tune", tune] if tune else []
    argv += ["--weights", weights] if weights else []
    assert main(argv) == 0
    config = json.loads(out.read_text())["config"]
    assert (config["model"], config["distortion"], config["tune"]) == (model, distortion, tune)
    assert searched == [distortion] * 2
    assert judged == [distortion] * 4  # two levels at two qualities


def test_objective_is_looked_up_by_network_class():
    """Each architecture registers its relaxed objective; an unknown network is a clear error."""
    from codec.encoder.sga import OBJECTIVES, ContextObjective, MeanScaleObjective, objective_for

    msh = codec.load_model("lcodec-msh-gain").model
    assert OBJECTIVES[type(msh).__name__] is MeanScaleObjective
    assert OBJECTIVES[type(codec.load_model("lcodec-elic-2026-12").model).__name__] is (
        ContextObjective
    )

    class Unknown(torch.nn.Module):
        pass

    x = torch.zeros(1, 3, 64, 64)
    with pytest.raises(codec.CodecError, match="Unknown"):
        objective_for(Unknown(), x, torch.ones(1), 0.01, 64, 64)


def test_each_latent_is_drawn_once_under_the_relaxation(crop):
    """The context model's spatial context must see the anchors that the rate and the
    synthesis see: under a random relaxation, the relaxed rate equals the rate of the relaxed
    latents themselves, recomputed with no rounding at all."""
    from codec.encoder.sga import ContextObjective, objective_for

    m, a, y, z, inv_gain, lmbda = _latents(crop, 50)
    ph, pw = a.padded
    x = effort_mod._window(crop, 0, ph, 0, pw, "cpu")
    objective = objective_for(m, x, inv_gain, lmbda, a.height, a.width)
    assert isinstance(objective, ContextObjective)
    draws = SGA(0.5, torch.Generator().manual_seed(3))
    calls = 0

    def relaxed(v):  # z is rounded (so that its value is known), every y residual drawn
        nonlocal calls
        calls += 1
        return torch.round(v) if calls == 1 else draws(v)

    with torch.no_grad():
        bits, y_hat = objective.rate_and_latents([y, z], relaxed)
        z_hat = torch.round(z - objective.medians) + objective.medians
        again, _ = objective.rate_and_latents([y_hat, z_hat], lambda v: v)
    assert not torch.equal(y_hat, torch.round(y_hat)), "the relaxation drew nothing"
    assert float(again) == pytest.approx(float(bits), rel=1e-5)


def test_the_search_steps_exactly_as_torch_adam_does():
    """The written-out Adam (which spares every effort encode the import of torch._dynamo)
    takes torch.optim.Adam's steps bit for bit, under a changing step size."""
    gen = torch.Generator().manual_seed(3)
    start = [torch.randn(2, 5, 4, 4, generator=gen), torch.randn(1, 3, 2, 2, generator=gen)]
    ours = [t.clone().requires_grad_(True) for t in start]
    theirs = [t.clone().requires_grad_(True) for t in start]
    mine, ref = effort_mod.Adam(ours), torch.optim.Adam(theirs, lr=0.0)
    # Past the search's longest budget, where a bias correction computed another way would
    # first differ in its last bit.
    for step in range(1500):
        lr = 0.015 * (1 + math.cos(math.pi * step / 1500)) / 2
        grads = [torch.randn(t.shape, generator=gen) for t in start]
        for a, b, g in zip(ours, theirs, grads):
            a.grad, b.grad = g.clone(), g.clone()
        mine.step(lr)
        ref.param_groups[0]["lr"] = lr
        ref.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b), step


def test_an_effort_encode_does_not_import_torch_dynamo():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, codec\n"
        "img = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)\n"
        "codec.compress(img, quality=50, effort=2)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "name,tune,distortion",
    [
        ("lcodec-elic-2026-12e", None, "mse"),
        ("lcodec-elic-ssim-2026-12e", None, "ms-ssim"),
        ("lcodec-elic-2026-12f", None, "3mse+ms-ssim"),
        ("lcodec-elic-2026-12f", "psnr", "mse"),
        ("lcodec-elic-2026-12f", "ms-ssim", "ms-ssim"),
        (None, "psnr", "mse"),  # the tune picks the release too
    ],
)
def test_effort_minimises_the_distortion_of_the_tune_or_the_release(
    name, tune, distortion, monkeypatch
):
    """Without a tune, a release trained for MS-SSIM is searched and judged by what it was
    trained on, and one trained for both by a mean leaning to MSE; a tune replaces that by its
    metric. The search's loss and the guard's true loss are the same, and the file kept beats
    the plain one by that loss."""
    from codec.encoder import analysis
    from codec.metrics import searched_by
    from codec.net.zoo import TUNED, find_weights

    img = _centre(192)  # MS-SSIM needs both sides over 160 pixels
    release = name or TUNED[tune]
    assert (searched_by(find_weights(release).distortion) == distortion) == (tune is None)
    searched, judged = [], []
    real = effort_mod.objective_for

    def objective_for(*a, **k):
        searched.append(real(*a, **k))
        return searched[-1]

    def file_rd_loss(*a):
        judged.append(a[4])
        return rd_loss(*a)

    monkeypatch.setattr(effort_mod, "objective_for", objective_for)
    monkeypatch.setattr(analysis, "file_rd_loss", file_rd_loss)
    plain = codec.encode(img, 50, model=name, tune=tune)
    tuned = codec.encode(img, 50, effort=2, model=name, tune=tune)
    assert plain.container.model_id == tuned.container.model_id == release
    assert [o.distortion for o in searched] == [distortion]
    assert judged and set(judged) == {distortion}
    searched.clear()
    assert codec.encode_efforts(img, 50, (2,), weights=name, tune=tune)[2].data == tuned.data
    assert [o.distortion for o in searched] == [distortion]
    assert tuned.data != plain.data, "effort 2 silently returned the effort-1 file"
    lmbda = float(codec.load_model(release).model.lmbda(torch.tensor([tuned.container.rate]))[0])

    def loss(enc, d):
        return rd_loss(img, enc.reconstruction, len(enc.data), lmbda, d)

    assert loss(tuned, distortion) < loss(plain, distortion)


def test_ms_ssim_falls_back_to_mse_where_an_image_is_too_small_for_it():
    from codec.metrics import MS_SSIM_MIN_SIDE, measurable

    side = MS_SSIM_MIN_SIDE
    assert measurable("ms-ssim", side + 1, 4 * side) == "ms-ssim"
    assert measurable("ms-ssim", 4 * side, side) == "mse"
    assert measurable("mse", 4 * side, 4 * side) == "mse"
    assert measurable("mse+ms-ssim", side + 1, side + 1) == "mse+ms-ssim"
    assert measurable("mse+ms-ssim", side, 4 * side) == "mse"
    with pytest.raises(ValueError, match="unknown distortion"):
        measurable("ssim", 500, 500)
    img = _centre(96)
    enc = codec.encode(img, 50, model="lcodec-elic-ssim-2026-12a")
    mse = rd_loss(img, enc.reconstruction, len(enc.data), 0.01)
    assert rd_loss(img, enc.reconstruction, len(enc.data), 0.01, "ms-ssim") == mse
    assert rd_loss(img, enc.reconstruction, len(enc.data), 0.01, "mse+ms-ssim") == mse
    big = _centre(192)
    enc = codec.encode(big, 50, model="lcodec-elic-ssim-2026-12a")
    ms = rd_loss(big, enc.reconstruction, len(enc.data), 0.01, "ms-ssim")
    mse = rd_loss(big, enc.reconstruction, len(enc.data), 0.01)
    assert ms != mse
    # the same bits either way: the difference is the distortion alone
    rate = 8 * len(enc.data) / big.shape[0] / big.shape[1]
    assert ms - 0.01 * 1600 * (1 - codec.metrics.ms_ssim(big, enc.reconstruction)) == (
        pytest.approx(rate)
    )
    # the mean of the two distortions, at the same rate
    both = rd_loss(big, enc.reconstruction, len(enc.data), 0.01, "mse+ms-ssim")
    assert both - rate == pytest.approx((ms - rate + mse - rate) / 2)
    leaning = rd_loss(big, enc.reconstruction, len(enc.data), 0.01, "3mse+ms-ssim")
    assert leaning - rate == pytest.approx((ms - rate + 3 * (mse - rate)) / 4)
    assert measurable("3mse+ms-ssim", side, 4 * side) == "mse"


def test_an_edge_tile_of_an_ms_ssim_search_keeps_enough_image_to_be_judged_by_it():
    """A tile window with 160 valid rows or fewer at the image's edge reaches back into the
    image, so the search minimises the release's MS-SSIM there too; MSE windows stay as they
    were, and an image too small for MS-SSIM falls back to MSE."""
    img = np.ascontiguousarray(np.asarray(Image.open(SAMPLE).convert("RGB"))[:352, :384])
    m, a, y, z, inv_gain, lmbda = _latents(img, 50)
    assert a.padded == (384, 384)
    core = ((320, 384), (128, 256))  # the last band: 32 image rows, 128 of context above

    def problem(distortion, pixels=img):
        return effort_mod.tile_problem(
            m, pixels, a.padded, y, z, inv_gain, lmbda, core, distortion=distortion
        )

    mse, *_ = problem("mse")
    assert (mse.distortion, mse.height) == ("mse", 352 - (320 - effort_mod.HALO))
    ms, ys, _, masks = problem("ms-ssim")
    assert ms.distortion == "ms-ssim" and ms.height > 160
    # the window grew upwards only: the same core, more context above it
    rows = masks[0][0, 0].sum(1)
    assert int((rows > 0).sum()) == (384 - 320) // 16 and int(rows[-1]) > 0
    assert ys[2].start * 16 == 352 - ms.height
    both, *_ = problem("mse+ms-ssim")
    assert both.distortion == "mse+ms-ssim" and both.height == ms.height
    small, *_ = problem("ms-ssim", img[:, :160])
    assert small.distortion == "mse"


@pytest.mark.parametrize("rows", [7, 256])
def test_ms_ssim_in_bands_is_pytorch_msssims_score(rows):
    """Band by band and channel by channel (bounded memory), the score is pytorch_msssim's,
    on odd sizes too (each scale pads odd sides before halving)."""
    from pytorch_msssim import ms_ssim

    img = np.asarray(Image.open(SAMPLE).convert("RGB"))[:201, :333]
    noisy = np.random.default_rng(5).integers(-9, 10, img.shape)
    other = np.clip(img.astype(np.int16) + noisy, 0, 255).astype(np.uint8)

    def tensor(x):
        return torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None]

    want = float(ms_ssim(tensor(img), tensor(other), data_range=255))
    assert 0.5 < want < 0.999
    assert codec.metrics.ms_ssim(img, other, rows=rows) == pytest.approx(want, abs=1e-6)
    assert codec.metrics.ms_ssim(img, img, rows=rows) == pytest.approx(1.0)


def test_a_manifest_with_an_unknown_distortion_is_a_one_line_error(tmp_path):
    from codec.net.zoo import TUNED, find_weights

    w = find_weights(TUNED["ms-ssim"])
    path = tmp_path / "mine.safetensors"
    path.symlink_to(w.path)
    manifest = {**w.manifest, "name": "mine", "distortion": "ssim"}
    path.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(codec.CodecError, match="mine: unknown distortion 'ssim'"):
        _ = find_weights(path).distortion


def test_an_unknown_distortion_to_search_by_is_refused_before_the_model_loads(monkeypatch):
    """A library caller's bad distortion fails in one line, before seconds of model loading."""
    from codec import runtime
    from codec.encoder.analysis import prepare
    from codec.image import read_image

    def no_load(*args, **kwargs):
        raise AssertionError("the model loaded before the distortion was checked")

    monkeypatch.setattr(runtime, "load_model", no_load)
    pic = read_image(Image.fromarray(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(codec.CodecError, match="unknown distortion 'psnr': choose one of mse, "):
        prepare(pic, None, "cpu", None, None, distortion="psnr")


def test_benchmark_judges_a_release_by_its_own_distortion(tmp_path):
    """The effort report's loss is the one the search minimised: for the MS-SSIM release no
    level may be worse than effort 1 by it (the guard's promise), whatever MSE says."""
    pytest.importorskip("bjontegaard")
    from benchmarks.effort import main

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(_centre(192)).save(data / "a.png")
    out = tmp_path / "effort.json"
    argv = ["--data", str(data), "--json", str(out), "--efforts", "1,2", "--qualities", "30,70"]
    argv += ["--threads", "1", "--no-targets", "--weights", "lcodec-elic-ssim-2026-12a"]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["config"]["distortion"] == "ms-ssim"
    level = report["effort"]["2"]
    assert level["points_worse_than_effort_1"] == 0
    assert level["rd_loss_change_percent"] < 0
