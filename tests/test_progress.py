"""The training-progress history: BD-rates per weights file, merged by training time."""

from __future__ import annotations

import json

import pytest

from benchmarks import progress

RATES = [0.2, 0.4, 0.8, 1.6]
PSNR = [26.0, 29.0, 32.0, 35.0]


def _curve(label: str, scale: float, sha: str | None = None) -> dict:
    points = [
        {"quality": q, "bpp": r * scale, "psnr": d, "ms_ssim_db": d / 3}
        for q, r, d in zip((0, 30, 60, 90), RATES, PSNR)
    ]
    entry = {"label": label, "points": points}
    if sha:
        entry["settings"] = {"sha256": sha}
    return entry


def _rd(lcodec_scale: float, sha: str) -> dict:
    return {
        "codecs": {
            "lcodec": _curve("lcodec", lcodec_scale, sha),
            "jpeg": _curve("JPEG", 1.0),
            "webp": _curve("WebP", 0.5),
        }
    }


def _manifest(sha: str, hours: float, steps: int) -> dict:
    return {"sha256": sha, "total_wall_s": hours * 3600, "total_steps": steps, "stages": [{}, {}]}


def test_entry_reads_bd_rates_and_training_totals():
    e = progress.entry_from(_rd(0.75, "aa"), _manifest("aa", 2.5, 900))
    assert e["hours"] == pytest.approx(2.5) and e["steps"] == 900 and e["stages"] == 2
    assert e["bd_rate_psnr_percent"]["jpeg"] == pytest.approx(-25, abs=0.5)
    assert e["bd_rate_psnr_percent"]["webp"] == pytest.approx(50, abs=0.5)
    assert set(e["bd_rate_ms_ssim_percent"]) == {"jpeg", "webp"}
    assert e["bpp_range"] == pytest.approx([0.15, 1.2])


def test_entry_refuses_rd_of_other_weights():
    with pytest.raises(progress.UsageError, match="measured with weights"):
        progress.entry_from(_rd(0.75, "aa"), _manifest("bb", 1.0, 10))
    with pytest.raises(progress.UsageError, match="no lcodec curve"):
        progress.entry_from({"codecs": {"jpeg": _curve("JPEG", 1.0)}}, _manifest("aa", 1, 1))


def test_merge_replaces_the_same_weights_and_orders_by_time():
    a = progress.entry_from(_rd(0.9, "aa"), _manifest("aa", 3.0, 300))
    b = progress.entry_from(_rd(0.8, "bb"), _manifest("bb", 1.0, 100))
    history = progress.merge(progress.merge([], a), b)
    assert [e["sha256"] for e in history] == ["bb", "aa"]
    a2 = progress.entry_from(_rd(0.7, "aa"), _manifest("aa", 3.0, 300))
    history = progress.merge(history, a2)
    assert [e["sha256"] for e in history] == ["bb", "aa"]
    assert history[1]["bd_rate_psnr_percent"]["jpeg"] == pytest.approx(-30, abs=0.5)


def test_main_keeps_a_history_and_draws_it(tmp_path, capsys):
    hist, plot = tmp_path / "h" / "progress.json", tmp_path / "progress.png"
    for sha, scale, hours in (("aa", 0.9, 1.0), ("bb", 0.6, 2.0), ("bb", 0.6, 2.0)):
        rd, man = tmp_path / "rd.json", tmp_path / "m.json"
        rd.write_text(json.dumps(_rd(scale, sha)))
        man.write_text(json.dumps(_manifest(sha, hours, int(hours * 100))))
        args = ["--rd", str(rd), "--manifest", str(man), "--history", str(hist)]
        assert progress.main(args + ["--plot", str(plot)]) == 0
    data = json.loads(hist.read_text())
    assert [e["sha256"] for e in data["entries"]] == ["aa", "bb"]
    assert data["targets_psnr_percent"] == progress.TARGETS
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2.0 h, 200 steps: jpeg -40.0 %, webp +20.0 %; 2 entries" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    cases = [
        (["--rd", str(tmp_path / "no.json"), "--manifest", str(bad)], "rd.json not found"),
        (["--rd", str(bad), "--manifest", str(bad)], "cannot read rd.json"),
    ]
    for args, message in cases:
        assert progress.main(args + ["--history", str(tmp_path / "h.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


def test_a_codec_whose_setting_changed_starts_a_new_series():
    a = progress.entry_from(_rd(0.9, "aa"), _manifest("aa", 1.0, 100))
    b = progress.entry_from(_rd(0.8, "bb"), _manifest("bb", 2.0, 200))
    c = progress.entry_from(_rd(0.7, "cc"), _manifest("cc", 3.0, 300))
    c["labels"]["webp"] = "WebP (method 6)"
    lines = progress.series([a, b, c])
    assert [h for h, _ in lines[("webp", "WebP")]] == [1.0, 2.0]
    assert [h for h, _ in lines[("webp", "WebP (method 6)")]] == [3.0]
    assert [h for h, _ in lines[("jpeg", "JPEG")]] == [1.0, 2.0, 3.0]
