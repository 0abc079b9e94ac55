"""Folders, globs and pipes on the command line: trees kept, errors listed, nothing clobbered."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image

import codec
from codec.bitstream import MAGIC
from codec.cli import main


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def digest(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def tree(tmp_path):
    """in/a.png, in/sub/b.jpg, in/sub/deeper/c.png, plus files that are not images."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(make_image(16, 24, seed=1)).save(root / "a.png")
    Image.fromarray(make_image(20, 16, seed=2)).save(root / "sub" / "b.jpg")
    Image.fromarray(make_image(16, 16, seed=3)).save(root / "sub" / "deeper" / "c.png")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored")
    return root


def test_folder_to_folder_keeps_the_tree(tree, tmp_path):
    before = digest(tree)
    out = tmp_path / "out"
    r = run("compress", tree, "-o", out, "-q", 30)
    assert r.exit_code == 0, r.output
    assert sorted(digest(out)) == ["a.lcz", "sub/b.lcz", "sub/deeper/c.lcz"]
    assert digest(tree) == before  # inputs untouched
    back = tmp_path / "back"
    r = run("decompress", out, "-o", back)
    assert r.exit_code == 0, r.output
    assert sorted(digest(back)) == ["a.png", "sub/b.png", "sub/deeper/c.png"]
    assert np.asarray(Image.open(back / "sub" / "b.png")).shape == (20, 16, 3)


def test_folder_without_output_writes_beside_the_inputs(tree):
    assert run("compress", tree).exit_code == 0
    assert (tree / "sub" / "deeper" / "c.lcz").is_file() and (tree / "a.lcz").is_file()


def test_quoted_globs_are_expanded(tree, tmp_path):
    out = tmp_path / "flat"
    r = run("compress", str(tree / "**" / "*.png"), "-o", f"{out}/")
    assert r.exit_code == 0, r.output
    assert sorted(digest(out)) == ["a.lcz", "c.lcz"]
    r = run("compress", str(tree / "*.gif"), "-o", f"{out}/")
    assert r.exit_code == 1 and "no image files match" in r.output


def test_two_inputs_for_one_output_are_refused(tree, tmp_path):
    Image.fromarray(make_image(8, 8)).save(tree / "sub" / "a.png")
    r = run("compress", str(tree / "**" / "a.png"), "-o", f"{tmp_path / 'o'}/")
    assert r.exit_code == 1 and "would both write" in r.output


def test_an_output_that_is_its_own_input_is_refused(tree, tmp_path):
    before = digest(tree)
    r = run("decompress", tree / "a.png")
    assert r.exit_code == 1 and "a.png: its output would be the file itself" in r.output
    assert "-o" in r.output and digest(tree) == before
    lcz = tmp_path / "a.lcz"
    assert run("compress", tree / "a.png", "-o", lcz).exit_code == 0
    r = run("decompress", lcz, tree / "a.png", "-o", tree)  # a.lcz would write in/a.png
    assert r.exit_code == 1 and "a.png is also an input" in r.output
    assert digest(tree) == before


def test_per_file_errors_are_listed_at_the_end(tree, tmp_path):
    (tree / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    out = tmp_path / "out"
    r = run("compress", tree, "-o", out)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert "broken.png: cannot read" in lines[-2] and lines[-1].endswith("1 of 4 files failed")
    assert sorted(digest(out)) == ["a.lcz", "sub/b.lcz", "sub/deeper/c.lcz"]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))


def test_no_overwrite_without_force(tree, tmp_path):
    out = tmp_path / "out"
    assert run("compress", tree, "-o", out, "-q", 10).exit_code == 0
    first = digest(out)
    r = run("compress", tree, "-o", out, "-q", 90)
    assert r.exit_code == 1 and "3 of 3 files failed" in r.output and "--force" in r.output
    assert digest(out) == first
    assert run("compress", tree, "-o", out, "-q", 90, "--force").exit_code == 0
    assert digest(out) != first


def test_stdin_and_stdout(tree):
    png = (tree / "a.png").read_bytes()
    r = run("compress", "-", "-o", "-", input=png)
    assert r.exit_code == 0, r.output
    lcz = r.stdout_bytes
    assert lcz.startswith(MAGIC) and "<stdin> -> <stdout>" in r.stderr
    assert codec.info(lcz)["width"] == 24
    r = run("decompress", "-", input=lcz)  # stdout is the default for stdin
    assert r.exit_code == 0 and r.stdout_bytes.startswith(b"\x89PNG")
    r = run("compress", "-", tree / "a.png", input=png)
    assert r.exit_code == 1 and "standard input" in r.output
    r = run("compress", tree / "a.png", tree / "sub" / "b.jpg", "-o", "-")
    assert r.exit_code == 1 and "single input" in r.output


def test_real_shell_pipes(tree, tmp_path):
    cmd = f"{sys.executable} -m codec"
    script = (
        f"cat a.png | {cmd} compress - -o - > a.lcz && {cmd} decompress - -o - < a.lcz > back.png"
    )
    r = subprocess.run(["sh", "-c", script], cwd=tree, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tree / "a.lcz").read_bytes().startswith(MAGIC)
    assert np.asarray(Image.open(tree / "back.png")).shape == (16, 24, 3)


@pytest.fixture
def encodes(monkeypatch):
    """The inputs the command really encodes, in order."""
    import codec.api

    seen, real = [], codec.api.encode

    def encode(src, **kwargs):
        seen.append(Path(src).name)
        return real(src, **kwargs)

    monkeypatch.setattr(codec.api, "encode", encode)
    return seen


def test_existing_outputs_are_refused_before_any_encoding(tree, tmp_path, encodes):
    out = tmp_path / "out"
    assert run("compress", tree, "-o", out, "-q", 10).exit_code == 0
    encodes.clear()
    r = run("compress", tree, "-o", out, "-q", 90)
    assert r.exit_code == 1 and "3 of 3 files failed" in r.output and "--skip-existing" in r.output
    assert encodes == []


def test_an_interrupted_batch_resumes_with_skip_existing(tree, tmp_path, encodes, monkeypatch):
    out = tmp_path / "out"
    import codec.api

    counted = codec.api.encode

    def interrupt_the_second(src, **kwargs):
        if len(encodes) == 1:
            raise KeyboardInterrupt
        return counted(src, **kwargs)

    monkeypatch.setattr(codec.api, "encode", interrupt_the_second)
    r = run("compress", tree, "-o", out, "-q", 30)
    assert r.exit_code == 130 and "interrupted" in r.output
    assert sorted(digest(out)) == ["a.lcz"]  # nothing half-written
    monkeypatch.setattr(codec.api, "encode", counted)
    encodes.clear()
    r = run("compress", tree, "-o", out, "-q", 30, "--skip-existing")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("skipped 1 of 3 files: their outputs exist\n")
    assert encodes == ["b.jpg", "c.png"]
    assert sorted(digest(out)) == ["a.lcz", "sub/b.lcz", "sub/deeper/c.lcz"]
    encodes.clear()
    r = run("compress", tree, "-o", out, "--skip-existing")
    assert r.exit_code == 0 and "skipped 3 of 3 files" in r.output and encodes == []
    r = run("compress", tree, "-o", out, "--skip-existing", "--force")
    assert r.exit_code == 2 and "--force and --skip-existing" in r.output


def test_decompressing_in_place_never_suggests_replacing_originals(tree):
    originals = digest(tree)
    assert run("compress", tree).exit_code == 0  # a.lcz beside a.png, and so on
    r = run("decompress", tree)
    assert r.exit_code == 1 and "2 of 3 files failed" in r.output
    refusals = [line for line in r.output.splitlines() if "exists" in line]
    assert len(refusals) == 2
    for line in refusals:  # a.png and c.png are the originals: only -o is suggested
        assert "lcodec did not write it" in line and "-o" in line and "--force" not in line
    after = digest(tree)
    assert all(after[name] == h for name, h in originals.items())
    assert "sub/b.png" in after  # b.jpg's decode had a free name
    r = run("decompress", tree / "sub" / "b.lcz")  # b.png is lcodec's own: --force is fine
    assert r.exit_code == 1 and "--force replaces it" in r.output
    assert run("decompress", tree, "--skip-existing").exit_code == 0
    assert digest(tree) == after
    r = run("decompress", tree / "a.lcz", "--force")  # still replaces when asked to
    assert r.exit_code == 0 and digest(tree)["a.png"] != originals["a.png"]
