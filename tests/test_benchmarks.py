"""The benchmark harnesses run end to end on tiny images and produce sound numbers."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import rd, speed
from benchmarks.common import bdrate, metrics
from benchmarks.common.anchors import DEFAULT_FILE, DEFAULT_METHODS, load_methods, select
from benchmarks.common.cli import BENCH_MODULES, run
from benchmarks.common.curves import live_curve

SIZES = {"a.png": (80, 96), "sub/b.png": (128, 64)}  # name -> (height, width)


def lcodec_available() -> bool:
    """Only a codec package without ``compress`` makes the lcodec checks skip."""
    try:
        import codec
    except ImportError:
        return False
    return hasattr(codec, "compress")


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """Bicubically upsampled random colours plus mild noise: compressible, not trivial."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((height // 8 + 2, width // 8 + 2, 3)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.float64)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def torch_one_thread():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_image(h, w, seed=i)).save(root / name)
    (root / "notes.txt").write_text("not an image")
    return root


def expected_codecs() -> list[str]:
    names = ["jpeg", "webp", "jpeg2000"]
    if _pil_feature("avif"):
        names += ["avif", "avif-s2-444"]
    if importlib.util.find_spec("pillow_jxl"):
        names.append("jxl")
    if importlib.util.find_spec("pillow_heif"):
        names.append("heic")
    if lcodec_available():
        names += ["lcodec", "lcodec-ms-ssim"]
    return names


def compared_codecs() -> list[str]:
    """The codecs of the BD tables: both AVIF settings ran, so only the kept one, as "avif"."""
    return [n for n in expected_codecs() if n != "avif-s2-444"]


def _pil_feature(name: str) -> bool:
    from PIL import features

    return bool(features.check(name))


@pytest.fixture(scope="module")
def rd_out(data_dir, tmp_path_factory, torch_one_thread):
    out = tmp_path_factory.mktemp("rd")
    args = ["--data", str(data_dir), "--out", str(out), "--points", "2", "--threads", "1"]
    args += ["--anchors", str(DEFAULT_FILE), "--no-progress"]
    assert rd.main(args) == 0
    return out


def test_rd_writes_every_output(rd_out):
    for name in ("rd.json", "rd.csv", "bd_rate.md", "bd_rate.json", "rd_psnr.png", "rd_msssim.png"):
        assert (rd_out / name).stat().st_size > 0, name
    for name in ("rd_psnr.png", "rd_msssim.png"):
        with Image.open(rd_out / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_rd_points_are_sound(rd_out):
    report = json.loads((rd_out / "rd.json").read_text())
    assert sorted(report["codecs"]) == sorted(expected_codecs()), report["skipped"]
    assert report["environment"]["cpu"]  # every figure names the CPU that measured it
    assert [i["image"] for i in report["images"]] == list(SIZES)
    for name, entry in report["codecs"].items():
        points = entry["points"]
        assert len(points) == 2, name
        assert points[0]["quality"] < points[1]["quality"]
        assert points[0]["bpp"] < points[1]["bpp"], f"{name}: bpp must grow with quality"
        for p in points:
            assert [r["image"] for r in p["images"]] == list(SIZES)
            for r in p["images"]:
                h, w = SIZES[r["image"]]
                assert (r["height"], r["width"]) == (h, w)
                assert r["bytes"] > 0 and math.isclose(r["bpp"], 8 * r["bytes"] / (h * w))
                assert 8 < r["psnr"] < 80, (name, r)
                assert r["ms_ssim"] is None  # both images are below MS-SSIM's 161 px minimum
                assert r["enc_s"] > 0 and r["dec_s"] > 0
            assert math.isclose(p["bpp"], np.mean([r["bpp"] for r in p["images"]]))
            assert math.isclose(p["psnr"], np.mean([r["psnr"] for r in p["images"]]))
        if not name.startswith("lcodec"):  # classical codecs gain quality with bits at any size
            assert points[0]["psnr"] < points[1]["psnr"], name


def test_rd_csv_matches_json(rd_out):
    report = json.loads((rd_out / "rd.json").read_text())
    with open(rd_out / "rd.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(e["points"]) * len(SIZES) for e in report["codecs"].values())
    jpeg_hi = report["codecs"]["jpeg"]["points"][1]["images"][0]
    row = next(
        r
        for r in rows
        if r["codec"] == "jpeg"
        and r["image"] == jpeg_hi["image"]
        and float(r["quality"]) == report["codecs"]["jpeg"]["points"][1]["quality"]
    )
    assert int(row["bytes"]) == jpeg_hi["bytes"]
    assert math.isclose(float(row["psnr"]), jpeg_hi["psnr"])
    assert row["ms_ssim"] == ""  # missing (the image is too small), as in rd.json's null


def test_bd_table_has_live_and_published_rows(rd_out):
    table = json.loads((rd_out / "bd_rate.json").read_text())
    assert table["anchor"] == "jpeg"
    rows = {r["codec"]: r for r in table["rows"]}
    assert set(compared_codecs()) - {"jpeg"} <= set(rows)
    assert "avif-s2-444" not in rows
    assert {k for k, r in rows.items() if r["published"]} == set(DEFAULT_METHODS)
    webp = rows["webp"]["bd_rate_psnr_percent"]
    assert webp is not None and -100 < webp < 300
    assert rows["webp"]["bd_rate_ms_ssim_percent"] is None  # no MS-SSIM on tiny images
    assert any("MS-SSIM" in n for n in rows["webp"]["notes"])
    md = (rd_out / "bd_rate.md").read_text()
    assert "BD-rate against JPEG" in md and "VTM (published)" in md and "| WebP |" in md


def test_versus_table_reads_from_lcodec_side(rd_out):
    if not lcodec_available():
        pytest.skip("codec package without compress")
    table = json.loads((rd_out / "bd_rate.json").read_text())
    versus = table["versus"]
    assert versus["subject"] == "lcodec"
    rows = {r["codec"]: r for r in versus["rows"]}
    assert set(rows) == set(compared_codecs()) - {"lcodec"}  # live codecs only, jpeg included
    main = next(r for r in table["rows"] if r["codec"] == "lcodec")
    assert rows["jpeg"]["bd_rate_psnr_percent"] == main["bd_rate_psnr_percent"]
    md = (rd_out / "bd_rate.md").read_text()
    assert "# lcodec against each codec" in md and "| anchor |" in md
    per_image = table["per_image"]
    names = {i["image"] for i in json.loads((rd_out / "rd.json").read_text())["images"]}
    assert {e["image"] for e in per_image["images"]} == names
    assert set(per_image["median_psnr_percent"]) == set(rows) == set(per_image["fewer_bits_psnr"])
    assert set(per_image["median_ms_ssim_percent"]) == set(rows)
    assert "## lcodec against each codec, per image (PSNR)" in md
    assert "## lcodec against each codec, per image (MS-SSIM)" in md


def test_rd_gives_lcodec_against_each_codec_by_psnr(rd_out):
    if not lcodec_available():
        pytest.skip("codec package without compress")
    report = json.loads((rd_out / "rd.json").read_text())
    by = json.loads((rd_out / "bd_rate.json").read_text())["by_psnr"]
    psnrs = [p["psnr"] for p in report["codecs"]["lcodec"]["points"]]
    assert by["levels"] and all(min(psnrs) <= v <= max(psnrs) for v in by["levels"])
    assert {r["codec"] for r in by["rows"]} == set(compared_codecs()) - {"lcodec"}
    for r in by["rows"]:
        assert len(r["percent"]) == len(by["levels"])
    jpeg = next(r for r in by["rows"] if r["codec"] == "jpeg")
    assert any(math.isfinite(v) for v in jpeg["percent"])  # JPEG spans lcodec's range here
    assert "## lcodec against each codec, by PSNR" in (rd_out / "bd_rate.md").read_text()
    with Image.open(rd_out / "rd_by_psnr.png") as im:
        im.verify()


def test_rd_reports_again_from_its_json(rd_out, tmp_path):
    before = json.loads((rd_out / "bd_rate.json").read_text())
    out = tmp_path / "again"
    args = ["--from", str(rd_out / "rd.json"), "--out", str(out), "--anchor-codec", "webp"]
    assert rd.main(args) == 0
    after = json.loads((out / "bd_rate.json").read_text())
    assert after["anchor"] == "webp" and before["anchor"] == "jpeg"
    rows = {r["codec"]: r["bd_rate_psnr_percent"] for r in after["rows"]}
    first = {r["codec"]: r["bd_rate_psnr_percent"] for r in before["rows"]}
    assert rows["jpeg"] == pytest.approx(-first["webp"] / (1 + first["webp"] / 100), rel=1e-6)
    assert not (out / "rd.json").exists()  # the measurements stay where they were
    if lcodec_available():
        assert after["versus"] == before["versus"]  # same curves, same versus table
    names = ["bd_rate.md", "rd_psnr.png", "rd_msssim.png"]
    for name in names + (["rd_by_psnr.png"] if lcodec_available() else []):
        assert (out / name).stat().st_size > 0


def test_rd_measures_both_of_lcodecs_releases(rd_out):
    if not lcodec_available():
        pytest.skip("codec package without compress")
    from codec.net.zoo import DEFAULT_MODEL, TUNED

    codecs = json.loads((rd_out / "rd.json").read_text())["codecs"]
    assert codecs["lcodec"]["settings"]["model"] == DEFAULT_MODEL
    assert codecs["lcodec-ms-ssim"]["settings"]["model"] == TUNED["ms-ssim"]
    sizes = {n: [r["bytes"] for p in codecs[n]["points"] for r in p["images"]] for n in codecs}
    assert sizes["lcodec-ms-ssim"] != sizes["lcodec"]  # other weights, other files


def test_rd_measures_lcodec_effort_only_when_named(rd_out, data_dir, tmp_path, torch_one_thread):
    if not lcodec_available():
        pytest.skip("codec package without compress")
    from codec.net.zoo import TUNED

    assert "lcodec-effort" not in json.loads((rd_out / "rd.json").read_text())["codecs"]
    args = ["--data", str(data_dir), "--out", str(tmp_path), "--limit", "1", "--no-progress"]
    args += ["--codecs", "lcodec,lcodec-effort", "--effort", "2", "--qualities", "50"]
    assert rd.main(args) == 0
    codecs = json.loads((tmp_path / "rd.json").read_text())["codecs"]
    effort = codecs["lcodec-effort"]
    assert effort["settings"]["effort"] == 2 and effort["label"] == "lcodec, --effort 2"
    assert effort["settings"]["sha256"] == codecs["lcodec"]["settings"]["sha256"]
    plain, searched = (codecs[n]["points"][0]["images"][0] for n in ("lcodec", "lcodec-effort"))
    assert (searched["bytes"], searched["psnr"]) != (plain["bytes"], plain["psnr"])
    assert "tune" not in effort["settings"]  # untuned runs keep the settings they merge by
    tuned = tmp_path / "tuned"
    args[args.index("--out") + 1] = str(tuned)
    assert rd.main(args + ["--tune", "ms-ssim"]) == 0
    codecs = json.loads((tuned / "rd.json").read_text())["codecs"]
    effort = codecs["lcodec-effort"]
    assert effort["label"] == "lcodec, --effort 2 --tune ms-ssim"
    assert effort["settings"]["tune"] == "ms-ssim"
    assert effort["settings"]["model"] == TUNED["ms-ssim"] != codecs["lcodec"]["settings"]["model"]
    # --weights names the release; --tune then chooses only the search's metric
    named = tmp_path / "named"
    args[args.index("--out") + 1] = str(named)
    assert rd.main(args + ["--tune", "ms-ssim", "--weights", "lcodec-msh-gain"]) == 0
    effort = json.loads((named / "rd.json").read_text())["codecs"]["lcodec-effort"]
    assert effort["settings"]["model"] == "lcodec-msh-gain"


def test_rd_of_lcodec_alone_writes_its_tables(data_dir, tmp_path, torch_one_thread):
    if not lcodec_available():
        pytest.skip("codec package without compress")
    args = ["--data", str(data_dir), "--out", str(tmp_path), "--codecs", "lcodec"]
    assert rd.main(args + ["--points", "2", "--no-progress"]) == 0
    table = json.loads((tmp_path / "bd_rate.json").read_text())
    assert table["anchor"] == "lcodec" and table["versus"]["rows"] == []
    assert "# BD-rate against lcodec" in (tmp_path / "bd_rate.md").read_text()


def _split_report(rd_out, tmp_path, first: set[str]) -> tuple[dict, Path, Path]:
    report = json.loads((rd_out / "rd.json").read_text())
    paths = []
    for name, keep in (("a", lambda n: n in first), ("b", lambda n: n not in first)):
        part = {**report, "codecs": {n: e for n, e in report["codecs"].items() if keep(n)}}
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(part))
    return report, *paths


def test_rd_merges_the_codecs_of_runs_on_the_same_images(rd_out, tmp_path):
    report, a, b = _split_report(rd_out, tmp_path, {"jpeg", "webp"})
    out = tmp_path / "merged"
    args = ["--from", str(a), "--from", str(b), "--out", str(out), "--anchors", str(DEFAULT_FILE)]
    assert rd.main(args) == 0
    merged = json.loads((out / "rd.json").read_text())
    assert merged["codecs"] == report["codecs"] and merged["images"] == report["images"]
    assert [m["codecs"] for m in merged["merged_from"]] == [
        ["jpeg", "webp"],
        [n for n in report["codecs"] if n not in ("jpeg", "webp")],
    ]
    assert list(merged["codecs"]) == list(report["codecs"])  # a full run's order
    assert merged.get("avif") == report.get("avif")
    assert json.loads((out / "bd_rate.json").read_text()) == json.loads(
        (rd_out / "bd_rate.json").read_text()
    )
    assert (out / "rd.csv").read_text() == (rd_out / "rd.csv").read_text()


def test_rd_merge_takes_a_codec_from_the_last_run_that_measured_it(rd_out, tmp_path):
    report = json.loads((rd_out / "rd.json").read_text())
    again = {**report, "codecs": {"jpeg": json.loads(json.dumps(report["codecs"]["jpeg"]))}}
    for p in again["codecs"]["jpeg"]["points"]:
        p["bpp"] *= 2
    later = tmp_path / "later.json"
    later.write_text(json.dumps(again))
    out = tmp_path / "merged"
    assert (
        rd.main(["--from", str(rd_out / "rd.json"), "--from", str(later), "--out", str(out)]) == 0
    )
    merged = json.loads((out / "rd.json").read_text())
    assert merged["codecs"]["jpeg"] == again["codecs"]["jpeg"]
    assert merged["codecs"]["webp"] == report["codecs"]["webp"]
    assert "jpeg" not in merged["merged_from"][0]["codecs"]
    assert merged["merged_from"][1]["codecs"] == ["jpeg"]
    rows = {r["codec"]: r for r in json.loads((out / "bd_rate.json").read_text())["rows"]}
    assert rows["webp"]["bd_rate_psnr_percent"] < -40  # against a JPEG twice as large


def _by_quality(report: dict, index: int) -> dict:
    """The report with only each codec's point number ``index``, as a run of that quality."""
    codecs = {
        n: {**e, "qualities": [e["points"][index]["quality"]], "points": [e["points"][index]]}
        for n, e in report["codecs"].items()
    }
    return {**report, "codecs": codecs}


def test_rd_merge_joins_a_sweep_split_across_runs_by_quality(rd_out, tmp_path):
    report = json.loads((rd_out / "rd.json").read_text())
    low, high = tmp_path / "low.json", tmp_path / "high.json"
    low.write_text(json.dumps(_by_quality(report, 0)))
    high.write_text(json.dumps(_by_quality(report, 1)))
    out = tmp_path / "merged"
    args = ["--from", str(high), "--from", str(low), "--out", str(out)]
    assert rd.main(args + ["--anchors", str(DEFAULT_FILE)]) == 0
    merged = json.loads((out / "rd.json").read_text())
    assert merged["codecs"] == report["codecs"]  # the points in quality order again
    assert [m["codecs"] for m in merged["merged_from"]] == [list(report["codecs"])] * 2
    assert json.loads((out / "bd_rate.json").read_text()) == json.loads(
        (rd_out / "bd_rate.json").read_text()
    )


def test_rd_merge_does_not_join_points_of_other_settings(rd_out, tmp_path):
    report = json.loads((rd_out / "rd.json").read_text())
    low, high = _by_quality(report, 0), _by_quality(report, 1)
    high["codecs"]["jpeg"]["settings"] = {**high["codecs"]["jpeg"]["settings"], "other": 1}
    high["failed_points"] = [{"codec": "webp", "quality": 101, "error": "later"}]
    low["failed_points"] = [
        {"codec": "jpeg", "quality": 101, "error": "replaced"},
        {"codec": "webp", "quality": 102, "error": "kept"},
    ]
    paths = [tmp_path / "low.json", tmp_path / "high.json"]
    for path, part in zip(paths, (low, high)):
        path.write_text(json.dumps(part))
    out = tmp_path / "merged"
    assert rd.main(["--from", str(paths[0]), "--from", str(paths[1]), "--out", str(out)]) == 0
    merged = json.loads((out / "rd.json").read_text())
    assert merged["codecs"]["jpeg"] == high["codecs"]["jpeg"]
    assert merged["codecs"]["webp"]["points"] == report["codecs"]["webp"]["points"]
    assert "jpeg" not in merged["merged_from"][0]["codecs"]
    assert sorted(f["error"] for f in merged["failed_points"]) == ["kept", "later"]


def test_rd_merge_keeps_each_codecs_failures_and_runs(rd_out, tmp_path):
    report, a, b = _split_report(rd_out, tmp_path, {"jpeg", "webp"})
    first = json.loads(a.read_text())
    first["failed_points"] = [{"codec": "jpeg", "quality": 5, "error": "old"}]
    first["skipped"] = {"bpg": "no plugin"}
    a.write_text(json.dumps(first))
    later = {**report, "codecs": {"jpeg": report["codecs"]["jpeg"]}, "failed_points": []}
    later["environment"] = {"machine": "elsewhere"}
    c = tmp_path / "c.json"
    c.write_text(json.dumps(later))
    out = tmp_path / "m1"
    assert rd.main(["--from", str(a), "--from", str(b), "--out", str(out)]) == 0
    merged = json.loads((out / "rd.json").read_text())
    assert merged["failed_points"] == first["failed_points"]
    assert merged["skipped"] == {"bpg": "no plugin"}
    # a merged report merged again still says which run measured what
    out2 = tmp_path / "m2"
    assert rd.main(["--from", str(out / "rd.json"), "--from", str(c), "--out", str(out2)]) == 0
    again = json.loads((out2 / "rd.json").read_text())
    assert again["failed_points"] == []  # jpeg now comes from a run without that failure
    assert [(m["file"], m["codecs"]) for m in again["merged_from"]] == [
        (str(a), ["webp"]),
        (str(b), [n for n in report["codecs"] if n not in ("jpeg", "webp")]),
        (str(c), ["jpeg"]),
    ]
    assert again["merged_from"][2]["environment"] == {"machine": "elsewhere"}


def test_rd_merge_refuses_to_let_an_old_curve_stand_in_for_a_failed_one(rd_out, tmp_path, capsys):
    report = json.loads((rd_out / "rd.json").read_text())
    failed = {**report, "codecs": {}, "skipped": {"jpeg": "RuntimeError: broken"}}
    b = tmp_path / "b.json"
    b.write_text(json.dumps(failed))
    assert (
        rd.main(["--from", str(rd_out / "rd.json"), "--from", str(b), "--out", str(tmp_path)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "has no jpeg curve (RuntimeError: broken)" in err and len(err.splitlines()) == 1


def test_rd_merge_refuses_runs_on_other_images(rd_out, tmp_path, capsys):
    report, a, b = _split_report(rd_out, tmp_path, {"jpeg"})
    other = json.loads(b.read_text())
    other["images"] = other["images"][:1]
    b.write_text(json.dumps(other))
    assert rd.main(["--from", str(a), "--from", str(b), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert "measured other images than" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m" / "rd.json").exists()


def test_rd_from_errors_are_one_line(rd_out, tmp_path, capsys):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    cases = [
        (["--from", str(tmp_path / "nope.json"), "--out", str(tmp_path)], "report not found"),
        (["--from", str(garbage), "--out", str(tmp_path)], "not an rd.json"),
        (
            ["--from", str(rd_out / "rd.json"), "--out", str(tmp_path), "--data", str(tmp_path)],
            "leave out --data (measuring only)",
        ),
        (
            ["--from", str(rd_out / "rd.json"), "--out", str(tmp_path), "--anchor-codec", "bpg"],
            "neither a codec of",
        ),
        (["--out", str(tmp_path)], "--data is required"),
        (
            ["--data", str(tmp_path), "--out", str(tmp_path), "--codecs", "jpeg", "--weights", "x"],
            "--weights chooses the weights of the codecs lcodec and lcodec-effort",
        ),
    ]
    for args, message in cases:
        assert rd.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.skipif(not _pil_feature("avif"), reason="Pillow without AVIF")
def test_rd_keeps_the_stronger_avif_and_records_both(rd_out):
    from benchmarks.common import avif

    report = json.loads((rd_out / "rd.json").read_text())
    choice = report["avif"]
    assert set(report["codecs"]) >= {"avif", "avif-s2-444"}  # both curves kept in rd.json
    assert choice["variants"]["avif"]["settings"] == {
        "subsampling": "4:2:0",
        "speed": 6,
        "max_threads": 1,
    }
    assert choice["variants"]["avif-s2-444"]["settings"] == {
        "subsampling": "4:4:4",
        "speed": 2,
        "max_threads": 1,
    }
    slow_vs_fast = choice["avif-s2-444_against_avif"]["bd_rate_psnr_percent"]
    assert slow_vs_fast is not None  # both curves have points over a shared PSNR range
    assert choice["kept"] == ("avif-s2-444" if slow_vs_fast < 0 else "avif")
    # The kept one against the other: the same BD-rate, read from the kept side.
    kept = choice["kept_against_other"]["bd_rate_psnr_percent"]
    ratio = 1 + slow_vs_fast / 100
    assert kept <= 0 and 1 + kept / 100 == pytest.approx(min(ratio, 1 / ratio), rel=1e-6)
    # The tables' AVIF row is the kept setting's curve, under the key "avif".
    table = json.loads((rd_out / "bd_rate.json").read_text())
    row = next(r for r in table["rows"] if r["codec"] == "avif")
    assert (
        row["label"]
        == choice["label"]
        == avif.settings_label(choice["variants"][choice["kept"]]["settings"])
    )
    curves = [live_curve(k, report["codecs"][k]) for k in ("jpeg", choice["kept"])]
    direct = bdrate.bd_table(curves, "jpeg")["rows"][0]["bd_rate_psnr_percent"]
    assert row["bd_rate_psnr_percent"] == pytest.approx(direct)
    assert table["avif"]["kept"] == choice["kept"]
    assert "## Which AVIF" in (rd_out / "bd_rate.md").read_text()


def _avif_entry(label: str, settings: dict, scale: float) -> dict:
    rates = [0.2, 0.4, 0.8, 1.6]
    points = [
        {"quality": q, "bpp": r * scale, "psnr": d, "ms_ssim_db": d / 3}
        for q, r, d in zip((20, 40, 60, 80), rates, (26.0, 29.0, 32.0, 35.0))
    ]
    return {"label": label, "settings": settings, "points": points}


def _avif_results(slow_scale: float) -> dict:
    fast = {"subsampling": "4:2:0", "speed": 6, "max_threads": 1}
    slow = {"subsampling": "4:4:4", "speed": 2, "max_threads": 1}
    return {
        "jpeg": _avif_entry("JPEG", {}, 2.0),
        "avif": _avif_entry("AVIF", fast, 1.0),
        "webp": _avif_entry("WebP", {}, 1.5),
        "avif-s2-444": _avif_entry("AVIF (speed 2, 4:4:4)", slow, slow_scale),
    }


def test_avif_choice_keeps_the_stronger_curve():
    from benchmarks.common import avif

    stronger_slow = avif.choose(_avif_results(0.5))
    assert stronger_slow["kept"] == "avif-s2-444"
    assert stronger_slow["label"] == "AVIF (speed 2, 4:4:4)"
    assert stronger_slow["kept_against_other"]["bd_rate_psnr_percent"] == pytest.approx(-50, 0.01)
    assert stronger_slow["avif-s2-444_against_avif"]["bd_rate_ms_ssim_percent"] == pytest.approx(
        -50, 0.01
    )
    weaker_slow = avif.choose(_avif_results(1.25))
    assert weaker_slow["kept"] == "avif" and weaker_slow["label"] == "AVIF (speed 6, 4:2:0)"
    assert weaker_slow["kept_against_other"]["bd_rate_psnr_percent"] == pytest.approx(-20, 0.01)
    assert weaker_slow["avif-s2-444_against_avif"]["bd_rate_psnr_percent"] == pytest.approx(
        25, 0.01
    )
    # Curves that share no PSNR range give no BD-rate: the quick setting stays.
    apart = _avif_results(0.5)
    for p in apart["avif-s2-444"]["points"]:
        p["psnr"] += 20
    assert avif.choose(apart)["kept"] == "avif"
    # One AVIF setting alone: no choice, nothing renamed.
    alone = {k: v for k, v in _avif_results(0.5).items() if k != "avif"}
    assert avif.choose(alone) is None and avif.compared(alone, None) is alone

    results = _avif_results(0.5)
    compared = avif.compared(results, stronger_slow)
    assert list(compared) == ["jpeg", "avif", "webp"]  # in the first AVIF entry's place
    assert compared["avif"]["points"] is results["avif-s2-444"]["points"]
    assert compared["avif"]["label"] == "AVIF (speed 2, 4:4:4)"


def test_progress_reads_the_kept_avif_and_not_lcodecs_own_other_release():
    from benchmarks import progress
    from benchmarks.common import avif

    results = _avif_results(0.5)
    results["lcodec"] = _avif_entry("lcodec", {"sha256": "aa"}, 1.0)
    results["lcodec-ms-ssim"] = _avif_entry("lcodec-ms-ssim", {"sha256": "bb"}, 0.8)
    rd_json = {"codecs": results, "avif": avif.choose(results)}
    manifest = {"sha256": "aa", "total_wall_s": 3600, "total_steps": 10}
    entry = progress.entry_from(rd_json, manifest)
    assert set(entry["bd_rate_psnr_percent"]) == {"jpeg", "avif", "webp"}
    assert entry["bd_rate_psnr_percent"]["avif"] == pytest.approx(100, abs=0.5)  # vs speed 2
    assert entry["labels"]["avif"] == "AVIF (speed 2, 4:4:4)"


def _av1c_chroma(data: bytes) -> tuple[int, int]:
    """(chroma_subsampling_x, chroma_subsampling_y) from an AVIF file's av1C box."""
    i = data.index(b"av1C") + 4  # the box payload follows its 4-byte type
    return (data[i + 2] >> 3) & 1, (data[i + 2] >> 2) & 1


@pytest.mark.skipif(not _pil_feature("avif"), reason="Pillow without AVIF")
def test_avif_adapters_write_the_chroma_layout_they_record():
    from benchmarks.common import codecs

    img = smooth_image(64, 80, seed=5)
    files = {}
    for name, layout in (("avif", (1, 1)), ("avif-s2-444", (0, 0))):
        c = codecs.create(name)
        c.check()
        assert c.settings()["subsampling"] == {(1, 1): "4:2:0", (0, 0): "4:4:4"}[layout]
        data = c.encode(img, 60)
        assert _av1c_chroma(data) == layout, name
        rec = c.decode(data)
        assert rec.shape == img.shape and rec.dtype == np.uint8
        assert metrics.psnr(img, rec) > 25, name
        files[name] = data
    assert files["avif"] != files["avif-s2-444"]
    assert codecs.AVIFSlow444.default_qualities == codecs.AVIF.default_qualities


def test_bd_versus_puts_the_subject_against_each_live_curve():
    from benchmarks.common.curves import Curve

    rates = [0.2, 0.4, 0.8, 1.6]
    dists = [26.0, 29.0, 32.0, 35.0]
    ms = [8.0, 10.0, 12.0, 14.0]
    anchor = Curve("a", "A", bpp=rates, psnr=dists, ms_ssim_db=ms)
    dearer = Curve("b", "B", bpp=[2 * r for r in rates], psnr=dists, ms_ssim_db=ms)
    subject = Curve("s", "S", bpp=[r / 2 for r in rates], psnr=dists, ms_ssim_db=ms)
    published = Curve("p", "P", published=True, bpp=rates, psnr=dists, ms_ssim_db=ms)
    table = bdrate.bd_versus([anchor, dearer, subject, published], "s")
    rows = {r["codec"]: r for r in table["rows"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["bd_rate_psnr_percent"] == pytest.approx(-50, abs=0.5)
    assert rows["b"]["bd_rate_ms_ssim_percent"] == pytest.approx(-75, abs=0.5)
    md = bdrate.table_markdown(bdrate.bd_table([anchor, subject], "a"), table)
    assert "# S against each codec" in md and "| B | -75.0 % |" in md


def test_bd_by_level_reads_the_gap_at_each_psnr():
    from benchmarks.common.curves import Curve

    rates = [0.2, 0.4, 0.8, 1.6]
    anchor = Curve("a", "A", bpp=rates, psnr=[26.0, 29.0, 32.0, 35.0], ms_ssim_db=[1.0] * 4)
    # 20 % more bits from 29 to 32 dB, then a curve that bends: 3 dB for 150 % more bits.
    subject = Curve(
        "s", "S", bpp=[0.24, 0.48, 0.96, 2.4], psnr=[26.5, 29.0, 32.0, 35.0], ms_ssim_db=[1.0] * 4
    )
    published = Curve("p", "P", published=True, bpp=rates, psnr=[26.0, 29.0, 32.0, 35.0])
    result = bdrate.bd_by_level([anchor, subject, published], "s", step=1.0)
    assert result["levels"] == [27.0, 28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0]
    (row,) = result["rows"]  # published curves are left out
    gap = dict(zip(result["levels"], row["percent"]))
    for level in (29.0, 30.0, 31.0, 32.0):
        assert gap[level] == pytest.approx(20.0, abs=1e-6)
    assert gap[35.0] == pytest.approx(50.0, abs=1e-6)  # 2.4 against 1.6 bpp
    assert gap[32.0] < gap[33.0] < gap[34.0] < gap[35.0]
    # Outside either curve there is no value: below the subject's lowest point, above both.
    assert math.isfinite(bdrate.rate_gap(rates, anchor.psnr, subject.bpp, subject.psnr, 26.6))
    assert math.isnan(bdrate.rate_gap(rates, anchor.psnr, subject.bpp, subject.psnr, 26.4))
    assert math.isnan(bdrate.rate_gap(rates, anchor.psnr, subject.bpp, subject.psnr, 35.1))
    versus = bdrate.bd_versus([anchor, subject], "s")
    md = bdrate.table_markdown(bdrate.bd_table([anchor, subject], "a"), versus, None, result)
    section = md.split("## S against each codec, by PSNR")[1]
    assert "| anchor | 27 dB |" in section and "| +20.0 % | +20.0 % |" in section


def test_a_curve_read_back_from_json_has_nan_for_missing_values():
    entry = {
        "label": "X",
        "points": [
            {"bpp": 0.8, "psnr": 34.0, "ms_ssim_db": None},
            {"bpp": 0.2, "psnr": 28.0, "ms_ssim_db": 11.0},
        ],
    }
    c = live_curve("x", entry)
    assert c.bpp == [0.2, 0.8] and c.psnr == [28.0, 34.0]  # sorted by rate
    assert c.ms_ssim_db[0] == 11.0 and math.isnan(c.ms_ssim_db[1])


def test_bd_per_image_gives_each_image_the_median_and_the_count_with_fewer_bits():
    from benchmarks.common.curves import Curve

    rates = [0.2, 0.4, 0.8, 1.6]
    dists = [26.0, 29.0, 32.0, 35.0]  # 3 dB per doubling of the rate, in both metrics

    def pair(factor: float, ms_ssim_shift: float = 0.0) -> list:
        anchor = Curve("a", "A", bpp=rates, psnr=dists, ms_ssim_db=dists)
        subject = Curve(
            "s",
            "S",
            bpp=[r * factor for r in rates],
            psnr=dists,
            ms_ssim_db=[d + ms_ssim_shift for d in dists],
        )
        return [anchor, subject]

    # MS-SSIM 6 dB lower costs 4x the rate, 7.5 dB 2^2.5x, 6 dB higher a quarter.
    by_image = {"x.png": pair(0.5, -6), "y.png": pair(0.25, -7.5), "w.png": pair(2.0, 6)}
    by_image["z.png"] = pair(0.75)[:1]
    result = bdrate.bd_per_image(by_image, "s")
    got = {e["image"]: e["rows"][0] for e in result["images"]}
    assert set(got) == {"x.png", "y.png", "w.png"}  # z.png has no subject curve
    psnr = {k: r["bd_rate_psnr_percent"] for k, r in got.items()}
    ms_ssim = {k: r["bd_rate_ms_ssim_percent"] for k, r in got.items()}
    assert psnr == pytest.approx({"x.png": -50, "y.png": -75, "w.png": 100}, abs=0.5)
    assert ms_ssim == pytest.approx({"x.png": 100, "y.png": 41.4, "w.png": -50}, abs=0.5)
    assert result["median_psnr_percent"]["a"] == pytest.approx(-50, abs=0.5)
    assert result["median_ms_ssim_percent"]["a"] == pytest.approx(41.4, abs=0.5)
    assert result["fewer_bits_psnr"]["a"] == [2, 3]
    assert result["fewer_bits_ms_ssim"]["a"] == [1, 3]
    versus = bdrate.bd_versus(pair(0.5), "s")
    md = bdrate.table_markdown(bdrate.bd_table(pair(0.5), "a"), versus, result)
    section, ms_section = md.split("per image (PSNR)")[1].split("per image (MS-SSIM)")
    assert "| **median** | **-50.0 %** |" in section and "| **fewer bits** | 2 of 3 |" in section
    assert section.index("w.png") < section.index("x.png") < section.index("y.png")  # worst first
    assert "| **median** | **+41.4 %** |" in ms_section
    assert "| **fewer bits** | 1 of 3 |" in ms_section


def test_rd_errors_are_one_line(tmp_path, data_dir, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--data", str(tmp_path / "missing"), "--out", str(tmp_path)], "data folder not found"),
        (["--data", str(empty), "--out", str(tmp_path)], "no PNG or JPEG images"),
        (
            ["--data", str(data_dir), "--out", str(tmp_path), "--codecs", "jpeg,bpg"],
            "unknown codec bpg",
        ),
        (
            [
                "--data",
                str(data_dir),
                "--out",
                str(tmp_path),
                "--anchors",
                str(DEFAULT_FILE),
                "--anchor-methods",
                "classical/NOPE",
            ],
            "classical/NOPE",
        ),
        (
            ["--data", str(data_dir), "--out", str(tmp_path), "--codecs", "jpeg", "--effort", "5"],
            "name it in --codecs",
        ),
        (
            ["--data", str(data_dir), "--out", str(tmp_path), "--codecs", "lcodec-effort"]
            + ["--effort", "12"],
            "--effort must be 1 to 9",
        ),
        (
            ["--data", str(data_dir), "--out", str(tmp_path), "--codecs", "jpeg", "--tune", "psnr"],
            "--tune applies only to the codec lcodec-effort: name it in --codecs",
        ),
    ]
    for args, message in cases:
        assert rd.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_quality_plan():
    plan = rd.quality_plan(["jpeg", "jpeg2000"], ["jpeg=20,80"], points=3)
    assert plan["jpeg"] == [20, 80]
    assert plan["jpeg2000"] == [0, 60, 100]
    assert rd.quality_plan(["webp"], ["10,90"], None) == {"webp": [10, 90]}


def test_metrics():
    a = np.full((20, 30, 3), 100, np.uint8)
    assert math.isclose(metrics.psnr(a, a + 1), 10 * math.log10(255**2), rel_tol=1e-12)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.bpp(100, 20, 40) == 1.0
    assert math.isnan(metrics.ms_ssim(a, a))  # too small for five scales
    big = smooth_image(176, 192, seed=3)
    noisy = np.clip(big + np.random.default_rng(0).normal(0, 8, big.shape), 0, 255)
    assert metrics.ms_ssim(big, big) == pytest.approx(1.0, abs=1e-6)
    assert 0.5 < metrics.ms_ssim(big, noisy.astype(np.uint8)) < 0.999
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)


def test_bd_rate_known_values():
    rate = [0.25, 0.5, 1.0, 2.0]
    psnr = [28.0, 31.0, 34.0, 37.0]
    assert bdrate.bd_rate(rate, psnr, rate, psnr).value == pytest.approx(0, abs=1e-9)
    half = bdrate.bd_rate(rate, psnr, [r / 2 for r in rate], psnr)
    assert half.value == pytest.approx(-50, abs=1e-6) and not half.notes
    apart = bdrate.bd_rate(rate, psnr, rate, [p + 20 for p in psnr], unit=" dB")
    assert math.isnan(apart.value) and "no overlap" in apart.notes[0]
    # A point that does not improve on a cheaper one is dropped rather than failing.
    r2, d2 = bdrate.monotone_curve([0.2, 0.4, 0.8, 1.6], [30, 29, 33, float("nan")])
    assert list(r2) == [0.2, 0.8] and list(d2) == [30, 33]


def test_published_anchors():
    methods = load_methods(DEFAULT_FILE)
    curves = select(methods, None)
    assert [c.key for c in curves] == list(DEFAULT_METHODS)
    for c in curves:
        assert c.published and c.display.endswith("(published)")
        assert c.bpp == sorted(c.bpp) and all(20 < p < 50 for p in c.psnr)


@pytest.mark.skipif(not lcodec_available(), reason="codec.compress is not available")
def test_speed_reports_both_paths(data_dir, tmp_path, torch_one_thread):
    out = tmp_path / "speed.json"
    args = ["--data", str(data_dir), "--json", str(out), "--device", "cpu", "--repeats", "2"]
    assert speed.main([*args, "--threads", "1", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    for key in ("encode_ratio_vs_compressai", "decode_ratio_vs_compressai"):
        assert 0 < report[key] < 100
    assert report["device"] == "cpu" and report["threads"] == 1 and report["cpu_model"]
    assert report["torch"] and report["rate"] >= 0 and report["malloc"] == "glibc defaults"
    assert [i["image"] for i in report["images"]] == list(SIZES)
    for img in report["images"]:
        for path in ("lcodec", "compressai"):
            p = img[path]
            assert p["enc_s"] > 0 and p["dec_s"] > 0 and p["bytes"] > 0
            assert p["enc_mpx_per_s"] == pytest.approx(img["megapixels"] / p["enc_s"])
            assert p["memory"]["encode"]["peak_bytes"] > 0
            assert math.isfinite(p["psnr"])
        assert all(v > 0 for v in img["stages"].values())
    total = (
        report["summary"]["lcodec"]["enc_s_total"] / report["summary"]["compressai"]["enc_s_total"]
    )
    assert report["encode_ratio_vs_compressai"] == pytest.approx(total)
    many = report["throughput"]
    assert many["workers"] == 2 and many["images"] == len(SIZES)
    for key in ("sequential_encode", "sequential_decode", "pipelined_encode", "pipelined_decode"):
        assert many[f"{key}_mpx_per_s"] > 0


def test_speed_errors_are_one_line(tmp_path, capsys):
    assert speed.main(["--data", str(tmp_path / "missing"), "--json", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert "data folder not found" in err and len(err.splitlines()) == 1


@pytest.mark.skipif(not lcodec_available(), reason="codec.compress is not available")
def test_train_speed_times_both_loops(data_dir, tmp_path, torch_one_thread):
    from benchmarks import train_speed

    out = tmp_path / "train_speed.json"
    args = ["--data", str(data_dir), "--json", str(out), "--batch", "2", "--crop", "64"]
    assert train_speed.main([*args, "--steps", "2", "--warmup", "1", "--threads", "1"]) == 0
    report = json.loads(out.read_text())
    assert report["batch"] == 2 and report["crop"] == 64 and report["images"] == len(SIZES)
    assert report["malloc"] == "glibc defaults"
    assert set(report["results"]) == {
        "compressai",
        "lcodec",
        "lcodec-channels-last",
        "lcodec-bf16",
    }
    assert isinstance(report["native_bf16"], bool) and isinstance(report["cpu_flags"], list)
    for r in report["results"].values():
        assert r["step_s_mean"] >= r["step_s_min"] > 0
        assert r["steps_per_s"] == pytest.approx(1 / r["step_s_mean"])
        assert r["megapixels_per_s"] == pytest.approx(2 * 64 * 64 / 1e6 / r["step_s_mean"])
    assert report["results"]["compressai"]["speedup_vs_compressai"] == pytest.approx(1.0)


def test_train_speed_errors_are_one_line(data_dir, tmp_path, capsys):
    from benchmarks import train_speed

    args = ["--data", str(data_dir), "--json", str(tmp_path / "t.json")]
    assert train_speed.main([*args, "--variants", "nope"]) == 2
    assert train_speed.main([*args, "--crop", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown variant 'nope'" in err[0] and "multiple of 64" in err[1]


@pytest.mark.skipif(not lcodec_available(), reason="codec.compress is not available")
def test_precision_compares_float16_with_float32(data_dir, tmp_path, torch_one_thread):
    from benchmarks import precision

    out = tmp_path / "precision.json"
    args = ["--data", str(data_dir), "--json", str(out), "--device", "cpu", "--limit", "1"]
    assert precision.main([*args, "--qualities", "20,90", "--repeats", "1", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    rows, summary = report["images"], report["summary"]
    assert [r["quality"] for r in rows] == [20, 90]
    for r in rows:
        assert 0 < r["synthesis"]["max_levels"] < 2 and r["synthesis"]["finite"]
        for name in ("float32", "float16"):
            assert r[name]["bpp"] > 0 and r[name]["dec_s"] > 0 and math.isfinite(r[name]["psnr"])
    assert summary["max_levels"] == max(r["synthesis"]["max_levels"] for r in rows)
    assert summary["below_rounding"] == (summary["max_levels"] < 0.5)
    assert precision.main([*args, "--qualities", "101"]) == 2


def test_headroom_sets_each_file_against_the_unrounded_ceiling(
    data_dir, tmp_path, torch_one_thread, capsys
):
    """benchmarks.headroom: at each quality the file's PSNR and the PSNR the same gains give
    without rounding. Rounding costs most at the lowest rate; the ceiling is never below the
    file."""
    from benchmarks import headroom

    out = tmp_path / "headroom.json"
    args = ["--data", str(data_dir), "--json", str(out), "--limit", "1", "--threads", "1"]
    assert headroom.main([*args, "--qualities", "0,100"]) == 0
    report = json.loads(out.read_text())
    ((low, high),) = report["per_image"].values()
    assert report["mean"] == [low, high] and report["config"]["images"] == 1
    assert low["bpp"] < high["bpp"] and low["psnr"] < high["psnr"]
    for p in (low, high):
        assert p["psnr_unrounded"] > p["psnr"]
    assert low["psnr_unrounded"] - low["psnr"] > 1 + high["psnr_unrounded"] - high["psnr"]
    # The default model codes its latent in five channel groups; the latent is most of the file.
    for p in (low, high):
        assert len(p["group_bpp"]) == 5 and 0.5 * p["bpp"] < sum(p["group_bpp"]) < p["bpp"]
    assert sum(high["group_bpp"]) > 2 * sum(low["group_bpp"])
    # The file is the one encode writes.
    import codec

    first = sorted(p for p in data_dir.rglob("*.png"))[0]
    img = np.asarray(Image.open(first).convert("RGB"))
    data = codec.compress(img, 0)
    assert low["bpp"] == pytest.approx(8 * len(data) / (img.shape[0] * img.shape[1]))
    assert low["psnr"] == pytest.approx(metrics.psnr(img, codec.decompress(data, mode="RGB")))
    assert "| 100 |" in capsys.readouterr().out
    assert headroom.main([*args, "--qualities", "101"]) == 2
    assert "from 0 to 100" in capsys.readouterr().err
    assert headroom.main([*args[:-2], "--threads", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_cli_roundtrip_times_the_commands(tmp_path):
    from benchmarks import cli_roundtrip

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(64, 80, seed=i)).save(data / f"{i}.png")
    out = tmp_path / "r.json"
    cli_roundtrip.main(["--data", str(data), "--json", str(out), "--quality", "30"])
    r = json.loads(out.read_text())
    assert r["images"] == r["round_trips_ok"] == 2
    assert r["compress_s"] > 0 and r["decompress_s"] > 0
    assert r["single_image"]["image"] == "0.png"
    assert r["single_image"]["compress_s"] > 0 and r["single_image"]["decompress_s"] > 0
    assert all(row["psnr"] > 20 for row in r["per_image"])


def test_a_missing_bench_module_stops_rd_on_one_line(tmp_path, data_dir, capsys, monkeypatch):
    """After a plain ``pip install -e .`` the harness names the extra instead of a traceback."""
    monkeypatch.setitem(sys.modules, "bjontegaard", None)  # as if not installed
    assert rd.main(["--data", str(data_dir), "--out", str(tmp_path / "rd")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "python -m benchmarks.rd: error: bjontegaard not installed: "
        'the benchmarks need the bench extra (pip install -e ".[bench]")'
    )
    assert not (tmp_path / "rd").exists()  # stopped before any work

    def late(argv):  # a harness that imports one only when it gets there
        import bjontegaard  # noqa: F401

    assert run("prog", late, []) == 2
    assert "bjontegaard not installed" in capsys.readouterr().err


def test_bench_modules_are_the_bench_extra():
    setup = ast.parse((Path(__file__).parents[1] / "setup.py").read_text())
    extras = next(
        kw.value
        for node in ast.walk(setup)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "extras_require"
    )
    bench = ast.literal_eval(extras)["bench"]
    assert set(BENCH_MODULES.values()) <= set(bench)


def test_startup_reports_command_library_and_stages(tmp_path, capsys):
    from benchmarks import startup

    image = tmp_path / "photo.png"
    Image.fromarray(smooth_image(64, 96, seed=3)).save(image)
    out = tmp_path / "s.json"
    # In a process of its own: a child's ru_maxrss starts at its parent's peak (the kernel
    # carries it through fork and exec), and this test process is large.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", "--image", str(image), "--rounds", "1"]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(out.read_text())
    assert list(r["processes"]) == ["import torch", "lcodec compress", "library"]
    for p in r["processes"].values():
        assert p["s"] > 0 and p["peak_rss_mib"] > 0
    torch_rss = r["processes"]["import torch"]["peak_rss_mib"]
    assert r["processes"]["library"]["peak_rss_mib"] > torch_rss  # it imports torch, then more
    lib, cli = r["processes"]["library"]["s"], r["processes"]["lcodec compress"]["s"]
    assert r["library_over_command"]["median"] == pytest.approx(lib / cli)
    deferred = {row["stage"] for row in r["stages"]["deferred"]}
    assert {"import codec", "load the weights", "first compress"} <= deferred
    assert all(row["s"] >= 0 for rows in r["stages"].values() for row in rows)
    assert "library / command" in done.stdout
    assert startup.main(["--image", str(tmp_path / "none.png")]) == 2
    assert "image not found" in capsys.readouterr().err


def test_refine_sets_refined_files_beside_plain_ones(tmp_path, torch_one_thread, capsys):
    """benchmarks.refine: on flat colours at the top of the ladder the encoder keeps a
    refinement, whose file is larger and closer to the image; the BD-rate against a report's
    codec is computed from both curves."""
    from benchmarks import refine

    data = tmp_path / "data"
    data.mkdir()
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.zeros((96, 128, 3), np.uint8)
    img[...] = (235, 225, 40)
    img[(xx // 24 + yy // 24) % 2 == 0] = (20, 60, 200)
    Image.fromarray(img).save(data / "graphic.png")
    report = tmp_path / "rd.json"
    points = [{"bpp": b, "psnr": p, "ms_ssim_db": m} for b, p, m in ((1, 20, 8), (4, 40, 20))]
    report.write_text(json.dumps({"codecs": {"other": {"label": "Other", "points": points}}}))
    out = tmp_path / "refine.json"
    args = ["--data", str(data), "--json", str(out), "--threads", "1", "--report", str(report)]
    assert refine.main([*args, "--qualities", "85,100"]) == 0
    r = json.loads(out.read_text())
    ((mid, top),) = r["per_image"].values()
    assert top["form"] is not None and top["refinement_bytes"] > 0
    assert top["refined"]["bpp"] > top["plain"]["bpp"]
    assert top["refined"]["psnr"] > top["plain"]["psnr"]
    import codec

    plain = codec.compress(img, 100)  # the plain file is the one compress writes
    assert top["plain"]["bpp"] == pytest.approx(8 * len(plain) / img[..., 0].size)
    assert set(r["bd_rate"]) == {"refined vs plain", "plain vs other", "refined vs other"}
    assert "| 100 | 1/1 |" in capsys.readouterr().out
    # without --distortion, what the release's searches minimise
    assert r["config"]["distortion"] == "3mse+ms-ssim"
    assert refine.main([*args, "--effort", "10"]) == 2
    assert "from 1 to 9" in capsys.readouterr().err
    assert refine.main([*args, "--distortion", "ssim"]) == 2
    assert "invalid choice" in capsys.readouterr().err

    # a second photo measured now joins the first one's report; neither is measured twice
    Image.fromarray(img[:, ::-1].copy()).save(data / "mirrored.png")
    joined = tmp_path / "joined.json"
    again = ["--qualities", "85,100", "--threads", "1", "--from", str(out)]
    assert refine.main([*again, "--data", str(data), "--skip", "1", "--json", str(joined)]) == 0
    j = json.loads(joined.read_text())
    assert j["per_image"]["graphic.png"] == r["per_image"]["graphic.png"]
    assert set(j["per_image"]) == {"graphic.png", "mirrored.png"} and j["config"]["images"] == 2
    assert "2 images (1 measured now)" in capsys.readouterr().out
    # the reports alone, measuring nothing, give the same curves
    alone = tmp_path / "alone.json"
    parts = ["--from", str(out), "--from", str(tmp_path / "part.json")]
    only_new = {**j, "per_image": {"mirrored.png": j["per_image"]["mirrored.png"]}}
    (tmp_path / "part.json").write_text(json.dumps(only_new))
    assert refine.main(["--qualities", "85,100", *parts, "--json", str(alone)]) == 0
    assert json.loads(alone.read_text())["curves"] == j["curves"]
    # a photo twice, or a report made otherwise, is refused before anything is measured
    assert refine.main([*again, "--from", str(joined)]) == 2
    assert "graphic.png is in more than one report" in capsys.readouterr().err
    assert refine.main([*again, "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "graphic.png is already in an earlier report" in err and "done" not in err
    short = {**r, "per_image": {"graphic.png": r["per_image"]["graphic.png"][:1]}}
    (tmp_path / "short.json").write_text(json.dumps(short))
    assert refine.main(["--qualities", "85,100", "--from", str(tmp_path / "short.json")]) == 2
    assert "graphic.png's qualities are not its report's" in capsys.readouterr().err
    assert refine.main([*again, "--skip", "1"]) == 2
    assert "give --data" in capsys.readouterr().err
    assert refine.main(["--from", str(out), "--effort", "2", "--qualities", "85,100"]) == 2
    assert "made with effort 1, not 2" in capsys.readouterr().err
    assert refine.main(["--qualities", "85,100"]) == 2
    assert "give --data, --from or both" in capsys.readouterr().err


def test_refine_compares_against_a_report_on_the_same_photos(tmp_path):
    """A report's per-photo points are averaged over the photos measured, so a slice is set
    against the same photos; a photo the report lacks is refused, and a curve of means alone
    (published) is taken as it is."""
    from benchmarks import refine
    from benchmarks.common.cli import UsageError

    def row(name, b, p, m):
        return {"image": name, "bpp": b, "psnr": p, "ms_ssim": m}

    points = [
        {
            "quality": q,
            "bpp": 0,
            "psnr": 0,
            "ms_ssim_db": 0,
            "images": [
                row("a.png", 0.2 * k, 30 + k, 0.9),
                row("b.png", 0.6 * k, 20 + k, 0.99),
                row("tiny.png", 0.1, 10, None),  # too small for MS-SSIM
            ],
        }
        for k, q in ((1, 10), (2, 50))
    ]
    means = [{"bpp": 1, "psnr": 25, "ms_ssim_db": 10}, {"bpp": 2, "psnr": 30, "ms_ssim_db": 15}]
    codecs = {"x": {"label": "X", "points": points}, "pub": {"label": "P", "points": means}}
    path = tmp_path / "rd.json"
    path.write_text(json.dumps({"codecs": codecs}))
    a = refine.report_curves(str(path), {"a.png"})
    assert a["x"]["bpp"] == pytest.approx([0.2, 0.4]) and a["x"]["psnr"] == [31, 32]
    assert a["x"]["ms_ssim_db"] == pytest.approx([10.0, 10.0])
    both = refine.report_curves(str(path), {"a.png", "b.png"})
    assert both["x"]["bpp"] == pytest.approx([0.4, 0.8]) and both["x"]["psnr"] == [26, 27]
    # in dB of the mean MS-SSIM, not the mean of the dB values (10 and 20)
    assert both["x"]["ms_ssim_db"] == pytest.approx([metrics.ms_ssim_db(0.945)] * 2)
    with_tiny = refine.report_curves(str(path), {"a.png", "b.png", "tiny.png"})
    assert with_tiny["x"]["ms_ssim_db"] == both["x"]["ms_ssim_db"]
    assert with_tiny["x"]["psnr"] == pytest.approx([(31 + 21 + 10) / 3, (32 + 22 + 10) / 3])
    assert both["pub"] == a["pub"] == {"bpp": [1, 2], "psnr": [25, 30], "ms_ssim_db": [10, 15]}
    with pytest.raises(UsageError, match="x has no result for c.png at quality 10"):
        refine.report_curves(str(path), {"a.png", "c.png"})
