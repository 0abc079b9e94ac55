"""The command line as a user drives it."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_image
from PIL import Image

import codec
from codec.cli import main


@pytest.fixture
def png(tmp_path):
    p = tmp_path / "photo.png"
    Image.fromarray(make_image(70, 90)).save(p)
    return p


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compress_decompress_info(png, tmp_path):
    r = run("compress", png, "-q", 80)
    assert r.exit_code == 0, r.output
    lcz = png.with_suffix(".lcz")
    assert lcz.is_file() and "bpp" in r.output
    out = tmp_path / "back.png"
    r = run("decompress", lcz, "-o", out)
    assert r.exit_code == 0, r.output
    assert np.asarray(Image.open(out)).shape == (70, 90, 3)
    r = run("info", lcz, "--json")
    meta = json.loads(r.output)
    assert (meta["width"], meta["height"], meta["quality"]) == (90, 70, 80)
    assert meta["bytes"] == lcz.stat().st_size and meta["model"]
    r = run("info", lcz)
    assert "bpp" in r.output and "90x70" in r.output


def test_default_decompress_output_and_overwrite_protection(png):
    assert run("compress", png).exit_code == 0
    lcz = png.with_suffix(".lcz")
    before = lcz.read_bytes()
    r = run("compress", png, "-q", 10)
    assert r.exit_code != 0 and "exists" in r.output and "--force" in r.output
    assert lcz.read_bytes() == before
    assert run("compress", png, "-q", 10, "--force").exit_code == 0
    assert lcz.read_bytes() != before
    png.unlink()
    assert run("decompress", lcz).exit_code == 0
    assert png.is_file()
    assert run("decompress", lcz).exit_code != 0


def test_many_inputs_into_folder(tmp_path):
    srcs = []
    for i in range(3):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(make_image(30 + i, 40, seed=i)).save(p)
        srcs.append(p)
    out = tmp_path / "out"
    out.mkdir()
    assert run("compress", *srcs, "-o", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["im0.lcz", "im1.lcz", "im2.lcz"]
    r = run("compress", *srcs, "-o", tmp_path / "nope")
    assert r.exit_code != 0 and "folder" in r.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["compress", "missing.png"], "no such file"),
        (["decompress", "missing.lcz"], "no such file"),
        (["compress", "PNG", "-q", "150"], "150"),
    ],
)
def test_errors_are_one_line(args, message, png):
    args = [str(png) if a == "PNG" else a for a in args]
    r = run(*args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


def test_corrupt_file_one_line_error(png, tmp_path):
    bad = tmp_path / "bad.lcz"
    bad.write_bytes(b"\x89LCZ\x01garbage")
    r = run("decompress", bad)
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and r.output.startswith("lcodec: error:")
    notimg = tmp_path / "x.png"
    notimg.write_text("hello")
    r = run("compress", notimg)
    assert r.exit_code == 1 and "cannot read" in r.output


def test_module_entry_point_and_no_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "codec", "decompress", str(tmp_path / "none.lcz")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.strip().startswith("lcodec: error:") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "codec", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "compress" in r.stdout


def test_compare_prints_psnr(png, tmp_path):
    other = tmp_path / "other.png"
    arr = np.asarray(Image.open(png)).astype(np.int16)
    Image.fromarray(np.clip(arr + 10, 0, 255).astype(np.uint8)).save(other)
    r = run("compare", png, other)
    assert r.exit_code == 0 and "PSNR" in r.output
    value = float(r.output.split()[1])
    assert 25 < value < 29  # an offset of 10 gives 28.1 dB where nothing clips
    assert "MS-SSIM n/a (needs both sides over 160 pixels)" in r.output  # 90x70: too small
    small = tmp_path / "small.png"
    Image.fromarray(make_image(10, 10)).save(small)
    assert run("compare", png, small).exit_code == 1


def _field(output: str, name: str) -> float:
    """The number after ``name`` in compare's line (before it, for bpp)."""
    words = output.replace(",", " ").split()
    return float(words[words.index(name) - 1 if name == "bpp" else words.index(name) + 1])


def test_compare_prints_ms_ssim_and_the_bpp_of_an_lcz(tmp_path):
    from pytorch_msssim import ms_ssim

    ref = tmp_path / "ref.png"
    Image.fromarray(make_image(176, 192)).save(ref)
    assert run("compress", ref, "-q", 20).exit_code == 0
    lcz = ref.with_suffix(".lcz")
    r = run("compare", ref, lcz)
    assert r.exit_code == 0, r.output
    a, b = make_image(176, 192), codec.decompress(lcz.read_bytes())
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    assert _field(r.output, "PSNR") == pytest.approx(10 * np.log10(255**2 / mse), abs=0.005)
    expected = float(
        ms_ssim(*(torch.from_numpy(x).permute(2, 0, 1)[None].float() for x in (a, b)), 255)
    )
    assert _field(r.output, "MS-SSIM") == pytest.approx(expected, abs=5e-5)
    assert expected < 0.999
    assert _field(r.output, "bpp") == pytest.approx(8 * lcz.stat().st_size / (176 * 192), abs=5e-5)
    assert r.output.strip().endswith("(192x176)")
    same = run("compare", ref, ref)
    assert "PSNR inf dB" in same.output and _field(same.output, "MS-SSIM") == 1.0
    assert "bpp" not in same.output


def test_compare_measures_ms_ssim_by_itself(png, monkeypatch):
    """lcodec's MS-SSIM is its own banded computation: it needs no pytorch_msssim."""
    monkeypatch.setitem(sys.modules, "pytorch_msssim", None)  # as if not installed
    big, other = png.with_name("big.png"), png.with_name("other.png")
    Image.fromarray(make_image(170, 170)).save(big)
    Image.fromarray(make_image(170, 170)[::-1]).save(other)
    r = run("compare", big, big)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("PSNR inf dB, MS-SSIM 1.0000")
    r = run("compare", big, other)
    assert r.exit_code == 0 and 0 < _field(r.output, "MS-SSIM") < 1, r.output


def test_compare_names_a_damaged_lcz(png, tmp_path):
    bad = tmp_path / "bad.lcz"
    bad.write_bytes(b"\x89LCZ\x03" + bytes(60))
    r = run("compare", png, bad)
    assert r.exit_code == 1
    assert r.output.strip() == f"lcodec: error: {bad}: corrupt file (CRC mismatch)"


def test_help_and_info_do_not_import_torch(png):
    """Startup stays fast: only compress/decompress pay for torch and CompressAI."""
    assert run("compress", png, "-q", 30).exit_code == 0
    probe = (
        "import sys; from codec.cli import main\n"
        "try: main(sys.argv[1:], prog_name='lcodec')\n"
        "except SystemExit as e: assert e.code == 0, e.code\n"
        "print('torch' in sys.modules)"
    )
    for args in (["--help"], ["info", str(png.with_suffix(".lcz"))]):
        r = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        )
        assert r.stdout.strip().splitlines()[-1] == "False", r.stdout


def test_compress_runs_no_synthesis(png, monkeypatch):
    """The command prints no reconstruction, so it must not pay for one; the file is the same."""
    import codec

    expected = codec.compress(str(png), quality=60)

    def refuse(*args, **kwargs):
        raise AssertionError("compress ran the synthesis transform")

    monkeypatch.setattr("codec.encoder.analysis.Analysis.reconstruction", refuse)
    r = run("compress", png, "-q", 60, "-o", png.with_suffix(".x.lcz"))
    assert r.exit_code == 0, r.output
    assert png.with_suffix(".x.lcz").read_bytes() == expected


def test_compress_skips_compressai_point_cloud_code(png, tmp_path):
    """The command's process codes the image without importing torch_geometric, and the
    CompressAI parts it skipped still load for real when something asks for them."""
    out = tmp_path / "probe.lcz"
    probe = (
        "import sys; from codec.cli import main\n"
        f"main(['compress', {str(png)!r}, '-o', {str(out)!r}], standalone_mode=False)\n"
        "print('torch_geometric' in sys.modules)\n"
        "import compressai.datasets, compressai.transforms.point\n"
        "print(compressai.datasets.ImageFolder.__name__, 'torch_geometric' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.splitlines()[-2:] == ["False", "ImageFolder True"], r.stdout
    assert run("compress", png, "-o", tmp_path / "here.lcz").exit_code == 0
    assert out.read_bytes() == (tmp_path / "here.lcz").read_bytes()


def test_models_lists_every_release_and_marks_the_default():
    from codec.metrics import DISTORTIONS
    from codec.net.zoo import DEFAULT_MODEL, TUNED, releases

    r = run("models", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["name"] for row in rows] == [w.model_id for w in releases()]
    assert [row["name"] for row in rows if row["default"]] == [DEFAULT_MODEL]
    for row, w in zip(rows, releases()):
        assert row["bytes"] == w.path.stat().st_size and row["architecture"]
        assert len(row["rd"]) == 3 and row["date"]
        assert row["tuned_for"] in DISTORTIONS
    # The default is for PSNR (alone or with MS-SSIM); one tuned for MS-SSIM alone is a choice.
    assert [row["tuned_for"] for row in rows if row["default"]] in (["mse"], ["mse+ms-ssim"])
    ssim = {row["name"] for row in rows if row["tuned_for"] == "ms-ssim"}
    assert {"lcodec-elic-ssim-2026-12a", "lcodec-elic-ssim-2026-12b"} <= ssim
    assert {row["name"]: row["tune"] for row in rows if row["tune"]} == {
        name: tune for tune, name in TUNED.items()
    }
    r = run("models")
    assert r.exit_code == 0 and f"* {DEFAULT_MODEL}" in r.output
    for row in rows:
        line = next(x for x in r.output.splitlines() if x[2:].split()[:1] == [row["name"]])
        assert ("tuned for MS-SSIM" in line) == (row["tuned_for"] == "ms-ssim")
        assert ("tuned for PSNR and MS-SSIM" in line) == (row["tuned_for"] == "mse+ms-ssim")
        shown = row["tune"] is not None and not row["default"]  # the default needs no option
        assert (f"(--tune {row['tune']})" in line) == shown


def test_tune_writes_with_the_release_tuned_for_that_metric(png, tmp_path, monkeypatch):
    from codec.net.zoo import DEFAULT_MODEL, TUNED, find_weights

    assert TUNED["psnr"] == DEFAULT_MODEL
    for tune, name in TUNED.items():
        want = ("mse", "mse+ms-ssim") if tune == "psnr" else (tune,)
        assert find_weights(name).distortion in want
        out = tmp_path / f"{tune}.lcz"
        assert run("compress", png, "--tune", tune, "-o", out).exit_code == 0
        assert json.loads(run("info", out, "--json").output)["model"] == name
    # --model chooses the release, --tune then only what effort searches for
    out = tmp_path / "both.lcz"
    r = run("compress", png, "--tune", "ms-ssim", "--model", DEFAULT_MODEL, "-o", out)
    assert r.exit_code == 0, r.output
    assert json.loads(run("info", out, "--json").output)["model"] == DEFAULT_MODEL
    import codec.api

    asked, encode = [], codec.api.encode  # and the tune still reaches the encoder's search

    def spy(*a, **k):
        asked.append((k["model"], k["tune"]))
        return encode(*a, **k)

    monkeypatch.setattr(codec.api, "encode", spy)
    r = run("compress", png, "--tune", "ms-ssim", "--model", DEFAULT_MODEL, "-o", out, "--force")
    assert r.exit_code == 0 and asked == [(DEFAULT_MODEL, "ms-ssim")], r.output
    r = run("compress", png, "--tune", "ssim", "-o", tmp_path / "x.lcz")
    assert r.exit_code == 2 and "'ssim' is not one of 'psnr', 'ms-ssim'" in r.output
    assert not (tmp_path / "x.lcz").exists()


def test_compress_with_a_named_release_and_info_shows_it_installed(png, tmp_path):
    from codec.net.zoo import releases

    name = releases()[0].model_id
    out = tmp_path / "named.lcz"
    assert run("compress", png, "--model", name, "-o", out).exit_code == 0
    meta = json.loads(run("info", out, "--json").output)
    assert meta["model"] == name and meta["release"] == name and meta["installed"]
    assert f"installed as {name}" in run("info", out).output
    r = run("compress", png, "--model", "no-such-release", "-o", tmp_path / "x.lcz")
    assert r.exit_code == 2 and "no model named 'no-such-release'" in r.output
    assert not (tmp_path / "x.lcz").exists()


def test_info_says_when_a_files_release_is_not_installed(png, tmp_path):
    from codec.bitstream import pack, unpack

    assert run("compress", png, "-o", tmp_path / "a.lcz").exit_code == 0
    c = unpack((tmp_path / "a.lcz").read_bytes())
    c.model_id, c.weights_hash = "lcodec-future", bytes(range(8))
    (tmp_path / "b.lcz").write_bytes(pack(c))
    r = run("info", tmp_path / "b.lcz")
    assert r.exit_code == 0 and "NOT installed" in r.output
    r = run("decompress", tmp_path / "b.lcz")
    assert r.exit_code == 1 and "'lcodec-future'" in r.output and "not installed" in r.output


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_mode_the_umask_gives(png, tmp_path, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        assert run("compress", png, "-o", tmp_path / "a.lcz").exit_code == 0
        assert run("decompress", tmp_path / "a.lcz", "-o", tmp_path / "a.png").exit_code == 0
    finally:
        os.umask(old)
    for name in ("a.lcz", "a.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


#: Runs the command in a fresh process; prints each exit status, whether torch was imported,
#: and Pillow's guard as the command left it.
REFUSAL_PROBE = """
import json, sys
from codec.cli import main
from PIL import Image
for args in json.loads(sys.argv[1]):
    try:
        main(args, prog_name="lcodec")
    except SystemExit as e:
        print(e.code, "torch" in sys.modules, Image.MAX_IMAGE_PIXELS, flush=True)
"""


def test_bad_invocations_are_refused_before_torch_loads(png, tmp_path):
    """Inputs, headers and outputs are checked before torch or the model is loaded."""
    from test_limits import bomb_png

    (tmp_path / "bomb.png").write_bytes(bomb_png(16000, 16000))
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "fake.lcz").write_bytes(b"\x89LCZ\x03" + bytes(40))
    (tmp_path / "taken.png").write_bytes(png.read_bytes())
    (tmp_path / "taken.lcz").write_bytes(b"someone else's file")
    (tmp_path / "empty").mkdir()
    cases = [
        (["compress", str(tmp_path / "missing.png")], "missing.png: no such file"),
        (["compress", str(tmp_path / "notes.png")], "notes.png: cannot read as an image"),
        (["compress", str(tmp_path / "bomb.png"), "--max-pixels", "5000"], "--max-pixels"),
        (["decompress", str(tmp_path / "fake.lcz")], "fake.lcz: corrupt file"),
        (["decompress", str(tmp_path / "empty")], "empty: no lcodec (.lcz) files found"),
        (["compress", str(tmp_path / "taken.png")], "taken.lcz exists and lcodec did not"),
        (["info", str(tmp_path)], "is a folder"),
    ]
    r = subprocess.run(
        [sys.executable, "-c", REFUSAL_PROBE, json.dumps([a for a, _ in cases])],
        capture_output=True,
        text=True,
    )
    results = r.stdout.splitlines()
    errors = r.stderr.splitlines()
    assert len(results) == len(errors) == len(cases), r.stderr
    for (args, message), result, error in zip(cases, results, errors):
        assert result.split()[:2] == ["1", "False"], (args, result)  # refused, torch not loaded
        assert error.startswith("lcodec: error: ") and message in error, (args, error)
    assert results[2].split()[2] == "5000"  # Pillow's guard follows --max-pixels
    assert (tmp_path / "taken.lcz").read_bytes() == b"someone else's file"


def test_messages_name_the_users_input_not_an_object(tmp_path):
    r = CliRunner().invoke(main, ["compress", "-", "-o", str(tmp_path / "x.lcz")], input=b"")
    assert (
        r.exit_code == 1 and r.output == "lcodec: error: <stdin>: cannot read as an image: empty\n"
    )
    r = CliRunner().invoke(main, ["compress", "-", "-o", "-"], input=b"not an image")
    assert r.exit_code == 1 and "<stdin>: cannot read as an image" in r.output
    assert "object at" not in r.output and "BytesIO" not in r.output
    r = CliRunner().invoke(main, ["decompress", "-"], input=b"")
    assert r.exit_code == 1 and r.output.startswith("lcodec: error: <stdin>: empty")
    r = CliRunner().invoke(main, ["compare", str(tmp_path), str(tmp_path)])
    assert r.exit_code == 1 and f"{tmp_path}: is a folder" in r.output


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EROFS, "Read-only file system", "TEMP"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_failed_write_names_the_output_not_the_temporary_file(png, monkeypatch, error):
    def fail(*args, dir=None, prefix="", suffix="", **kwargs):
        if error.filename == "TEMP":
            raise OSError(error.errno, error.strerror, os.path.join(dir, f"{prefix}x1y2{suffix}"))
        raise error

    monkeypatch.setattr("codec.files.tempfile.mkstemp", fail)
    r = run("compress", png)
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert f"{error.strerror}: {png.with_suffix('.lcz')}\n" in r.output
    assert ".tmp" not in r.output and not png.with_suffix(".lcz").exists()


def test_an_output_that_appears_during_the_run_is_not_replaced(png, monkeypatch):
    import codec.api

    real, lcz = codec.api.encode, png.with_suffix(".lcz")

    def someone_else_writes_it(src, **kwargs):
        lcz.write_bytes(b"not lcodec's")
        return real(src, **kwargs)

    monkeypatch.setattr(codec.api, "encode", someone_else_writes_it)
    r = run("compress", png)
    assert r.exit_code == 1 and "lcodec did not write it" in r.output and "--force" not in r.output
    assert lcz.read_bytes() == b"not lcodec's"


def test_a_closed_pipe_ends_quietly(png, tmp_path):
    lcz = tmp_path / "a.lcz"
    assert run("compress", png, "-o", lcz).exit_code == 0
    cmd = f"{sys.executable} -m codec info {lcz} | true"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert r.stderr == ""


def test_the_checkout_launcher_without_dependencies_says_what_to_install():
    """``bin/lcodec`` run by a Python without the packages (-S: no site-packages) answers with
    one line, not an import traceback."""
    launcher = Path(__file__).resolve().parents[1] / "bin" / "lcodec"
    r = subprocess.run([sys.executable, "-S", str(launcher), "--version"], capture_output=True)
    err = r.stderr.decode()
    assert r.returncode == 1 and err.count("\n") == 1, err
    assert err.startswith("lcodec: error: ") and " lacks " in err and "Pillow" in err
    assert "install the dependencies" in err


def test_an_output_named_for_another_format_is_refused(png, tmp_path):
    r = run("compress", png, "-o", tmp_path / "out.png")
    assert r.exit_code == 1 and "compress writes .lcz files; name the output .lcz" in r.output
    assert run("compress", png, "-o", tmp_path / "a.lcz").exit_code == 0
    for name in ("out.jpg", "out.WEBP", "out.lcz"):
        r = run("decompress", tmp_path / "a.lcz", "-o", tmp_path / name)
        assert r.exit_code == 1 and "decompress writes PNG images" in r.output, r.output
        assert not (tmp_path / name).exists()
    # A name of no known format is the user's to choose; the bytes are PNG.
    assert run("decompress", tmp_path / "a.lcz", "-o", tmp_path / "restored").exit_code == 0
    assert Image.open(tmp_path / "restored").format == "PNG"


def test_an_output_folder_that_is_a_file_is_named(png, tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    r = run("compress", png, "-o", tmp_path / "notes.txt" / "out.lcz")
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert f"{tmp_path / 'notes.txt'} is not a folder" in r.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["-q", "abc"], "'abc' is not a quality from 0 to 100"),
        (["-q", "nan"], "'nan' is not a quality from 0 to 100"),
        (["--effort", "2.5"], "'2.5' is not an effort from 1 to 9"),
        (["--target-size", "1.5"], "is not a whole number of bytes"),
        (["--target-size", "1" + "0" * 400], "is not a whole number of bytes"),
        (["--target-bpp", "1e-400"], "is not a positive number of bits per pixel"),
        (["--target-bpp", "0"], "is not a positive number of bits per pixel"),
        (["--device", "tpu"], "'tpu': use auto, cpu, cuda or cuda:N"),
        (["--model", "bogus"], "no model named 'bogus'"),
        (["-q", "80", "--target-bpp", "0.5"], "-q and a --target-* option exclude each other"),
    ],
)
def test_bad_option_values_are_usage_errors(png, tmp_path, args, message):
    """Exit status 2, as USAGE.md promises for usage errors, and words rather than click's
    "not a valid float range"; nothing is written."""
    r = run("compress", png, "-o", tmp_path / "x.lcz", *args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "x.lcz").exists()


def test_info_reads_standard_input(png, tmp_path):
    assert run("compress", png, "-o", tmp_path / "a.lcz").exit_code == 0
    r = CliRunner().invoke(main, ["info", "-", "--json"], input=(tmp_path / "a.lcz").read_bytes())
    assert r.exit_code == 0 and json.loads(r.output)["width"] == 90
    r = CliRunner().invoke(main, ["info", "-"], input=b"not an lcodec file")
    assert r.exit_code == 1 and r.output.startswith("lcodec: error: <stdin>: not an lcodec file")


def test_compressing_an_lcz_file_again_warns_of_the_second_loss(png, tmp_path):
    assert run("compress", png, "-o", tmp_path / "a.lcz").exit_code == 0
    r = run("compress", tmp_path / "a.lcz", "-o", tmp_path / "b.lcz")
    assert r.exit_code == 0 and (tmp_path / "b.lcz").is_file()
    assert "lcodec: warning: " in r.output and "decoded and compressed again" in r.output
    r = run("compress", png, "-o", tmp_path / "c.lcz")
    assert "warning" not in r.output
    # By content, not by name: a renamed .lcz file and one on standard input warn alike.
    (tmp_path / "renamed.png").write_bytes((tmp_path / "a.lcz").read_bytes())
    r = run("compress", tmp_path / "renamed.png", "-o", tmp_path / "d.lcz")
    assert r.exit_code == 0 and "decoded and compressed again" in r.output
    piped = (tmp_path / "a.lcz").read_bytes()
    r = CliRunner().invoke(main, ["compress", "-", "-o", str(tmp_path / "e.lcz")], input=piped)
    assert r.exit_code == 0 and "decoded and compressed again" in r.output


def test_several_inputs_need_a_folder_and_are_told_how_to_make_one(tmp_path):
    srcs = []
    for i in range(2):
        srcs.append(tmp_path / f"im{i}.png")
        Image.fromarray(make_image(30, 40, seed=i)).save(srcs[-1])
    r = run("compress", *srcs, "-o", tmp_path / "new")
    assert r.exit_code == 1 and "does not exist (end it with / to create it)" in r.output
    (tmp_path / "file.lcz").write_bytes(b"x")
    r = run("compress", *srcs, "-o", tmp_path / "file.lcz")
    assert r.exit_code == 1 and f"{tmp_path / 'file.lcz'} is a file" in r.output
    assert run("compress", *srcs, "-o", f"{tmp_path / 'new'}/").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["im0.lcz", "im1.lcz"]


def test_the_command_list_gives_whole_summaries():
    out = run("--help").output
    assert "..." not in out.split("Commands:")[1]
