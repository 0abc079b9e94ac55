"""The ``lcodec`` command line: compress, decompress, info, train, export.

Errors print one line on stderr and exit non-zero; outputs are written atomically and never
replace an existing file unless ``--force`` is given. Inputs may be files, folders (searched
recursively, the tree kept), quoted globs, or ``-`` for standard input (codec/files.py). Every
input and output is checked before torch loads, so a bad invocation answers at once.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

import click
from click.core import ParameterSource

from ..bitstream import MAGIC, MAX_PIXELS
from ..errors import CodecError, CodecWarning
from ..files import (
    STDIO,
    Job,
    check_jobs,
    is_image_file,
    naming,
    plan,
    read_input,
    write_output,
)
from ..limits import MAX_IMAGE_PIXELS, check_budget, pixel_budget
from ..malloc import reuse_freed_memory
from ..net.zoo import TUNED
from ..options import Number
from ..options import device as device_option
from ..train.commands import export_command, train_command

__all__ = ["main"]


DEVICE = click.option(
    "--device",
    default="auto",
    callback=device_option(),
    show_default=True,
    help="Where the networks run: auto (CUDA when available), cpu, cuda or cuda:N. "
    "Files decode on any device whatever device made them.",
)
PRECISION = click.option(
    "--precision",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Arithmetic of the transforms. float16 is faster on GPUs with tensor cores, bfloat16 "
    "on CPUs with AVX-512 BF16 or AMX; both move pixels by a fraction of a level on average. "
    "Files decode alike at any precision.",
)
FORCE = click.option(
    "--force", "-f", is_flag=True, help="Replace existing outputs, even files lcodec did not write."
)
SKIP_EXISTING = click.option(
    "--skip-existing",
    is_flag=True,
    help="Leave inputs whose output exists alone (resumes an interrupted batch); exits 0 "
    "when nothing failed.",
)
MAX_PIXELS_OPTION = click.option(
    "--max-pixels",
    type=Number(f"a whole number of pixels from 1 to {MAX_PIXELS}", 1, MAX_PIXELS, whole=True),
    default=None,
    help=f"Refuse images of more pixels than this, read from the header before any decoding "
    f"[default: {MAX_IMAGE_PIXELS}, Pillow's own limit].",
)


class LcodecGroup(click.Group):
    """Turns CodecError and I/O errors into one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CodecError as e:
            _fail(str(e))
        except BrokenPipeError:
            # The reader went away (``lcodec info x.lcz | head``): stop quietly, as cat does.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except OSError as e:
            _fail(_os_error(e))
        except KeyboardInterrupt:
            _fail("interrupted", code=130)


def _fail(message: str, code: int = 1):
    click.echo(f"lcodec: error: {message}", err=True)
    sys.exit(code)


def _run(jobs: list[Job], work: Callable[[Job], str], skipped: int = 0) -> None:
    """Run ``work`` on every job with a progress bar; list failures at the end, exit 1.

    One job fails as any command does (one line). Status lines go to stderr when the data goes
    to stdout; ``CodecWarning``s print as ``lcodec: warning: FILE: ...``. Every error names
    its input.
    """
    from tqdm import tqdm

    to_stdout = any(j.dst == STDIO for j in jobs)
    if skipped:
        total = skipped + len(jobs)
        click.echo(f"skipped {skipped} of {total} files: their outputs exist", err=to_stdout)
    failures: list[str] = []
    bar = tqdm(jobs, unit="file", file=sys.stderr, leave=False, disable=len(jobs) < 2 or None)
    for job in bar:
        try:
            if job.error:
                raise CodecError(job.error)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CodecWarning)
                message = work(job)
            for w in caught:
                if issubclass(w.category, CodecWarning):
                    _say(bar, f"lcodec: warning: {job.src_label}: {w.message}", sys.stderr)
            _say(bar, message, sys.stderr if to_stdout else sys.stdout)
        except (CodecError, OSError) as e:
            text = _naming(job, str(e) if isinstance(e, CodecError) else _os_error(e))
            if len(jobs) == 1:
                raise CodecError(text) from None
            failures.append(text)
    bar.close()
    if failures:
        for text in failures:
            click.echo(f"lcodec: error: {text}", err=True)
        raise CodecError(f"{len(failures)} of {len(jobs)} files failed")


def _naming(job: Job, text: str) -> str:
    """``text`` led by the input it is about, unless it names that input already."""
    return text if text.startswith(f"{job.src_label}: ") else f"{job.src_label}: {text}"


def _say(bar, text: str, stream) -> None:
    """A line above the progress bar, flushed so that stdout and stderr stay in order."""
    bar.write(text, file=stream)
    stream.flush()


def _os_error(e: OSError) -> str:
    return f"{e.strerror or e}: {e.filename}" if e.filename else str(e)


RECOMPRESS = (
    "an lcodec file: decoded and compressed again, which loses quality again "
    "(lcodec decompress restores the image)"
)


def _lcodec_file(src: bytes | str) -> bool:
    """Whether an input to compress is an .lcz file, by its first bytes (whatever its name)."""
    if isinstance(src, bytes):
        return src.startswith(MAGIC)
    try:
        with open(src, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False  # reading the image will report it


def _is_lcz(path: Path) -> bool:
    return path.suffix.lower() == ".lcz"


def _prepare(max_pixels: int | None, force: bool, skip_existing: bool) -> int:
    """Refuse contradictory output flags; return the pixel budget, with Pillow's own guard set
    to match (the command owns its process; the library leaves Pillow's setting alone)."""
    from PIL import Image

    if force and skip_existing:
        raise click.UsageError("--force and --skip-existing exclude each other")
    limit = pixel_budget(max_pixels)
    Image.MAX_IMAGE_PIXELS = limit
    # Pillow warns between one and two budgets, where lcodec refuses with its own message.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return limit


@click.group(cls=LcodecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lcodec")
def main():
    """lcodec: a learned image codec.

    \b
      lcodec compress photo.png            # -> photo.lcz
      lcodec compress photo.png -q 80      # higher quality, more bytes
      lcodec decompress photo.lcz          # -> photo.png
      lcodec info photo.lcz
    """
    reuse_freed_memory()


@main.command(short_help="Compress images into .lcz files.")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    help="Output file (one input), folder (several inputs or a folder), or - for stdout.",
)
@click.option(
    "-q",
    "--quality",
    type=Number("a quality from 0 to 100", 0, 100),
    default=50,
    show_default=True,
    help="0-100: higher means more bytes and better quality.",
)
@click.option(
    "--target-bpp",
    type=Number("a positive number of bits per pixel", 0, lo_open=True),
    help="Pick the quality whose file is closest to this many bits per pixel (within 2 %).",
)
@click.option(
    "--target-size",
    type=Number(f"a whole number of bytes from 1 to {2**53}", 1, 2**53, whole=True),
    metavar="BYTES",
    help="Pick the quality whose file is largest without exceeding BYTES (within 2 %).",
)
@click.option(
    "--target-psnr",
    type=Number("a positive PSNR in dB", 0, lo_open=True),
    metavar="DB",
    help="Pick the smallest file whose PSNR is at least DB.",
)
@click.option(
    "--effort",
    type=Number("an effort from 1 to 9", 1, 9, whole=True),
    default=1,
    show_default=True,
    help="1-9: higher spends more encoding time on smaller files (same decoder). 2+ also "
    "fits the decoder's last layer to the image and sends it, where that pays for its bytes.",
)
@click.option(
    "--model",
    default=None,
    metavar="NAME",
    help="Model release to write with (default: the newest default; see lcodec models). "
    "Decoding always finds the release a file needs by itself.",
)
@click.option(
    "--tune",
    type=click.Choice(list(TUNED)),
    default=None,
    help="Write for this metric: with the release tuned for it (unless --model names one), "
    "and at --effort 2+ optimise the file for this metric alone. Without it, effort optimises "
    "for what the release was trained on (the default release: PSNR and MS-SSIM together, "
    "PSNR weighing three times as much).",
)
@DEVICE
@PRECISION
@FORCE
@SKIP_EXISTING
@MAX_PIXELS_OPTION
def compress(
    images,
    output,
    quality,
    target_bpp,
    target_size,
    target_psnr,
    effort,
    model,
    tune,
    device,
    precision,
    force,
    skip_existing,
    max_pixels,
):
    """Compress IMAGES (files, folders, quoted globs, or - for stdin) into .lcz files.

    A --target-* option replaces -q: the quality is searched by encoding until the file meets
    it, and the value reached is printed. An unreachable target gives the closest file.
    """
    from ..net.zoo import find_weights

    if model is not None or tune is not None:
        try:
            find_weights(model or TUNED[tune])  # an unknown name fails before any work
        except CodecError as e:
            raise click.BadParameter(str(e), param_hint="--model" if model else "--tune") from None
    targets = {"bpp": target_bpp, "size": target_size, "psnr": target_psnr}
    if sum(v is not None for v in targets.values()) > 1:
        raise click.UsageError(
            "--target-bpp, --target-size and --target-psnr are mutually exclusive"
        )
    given = click.get_current_context().get_parameter_source("quality")
    if any(v is not None for v in targets.values()) and given is ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "-q and a --target-* option exclude each other: the target picks the quality"
        )
    options = {f"target_{k}": v for k, v in targets.items()}
    limit = _prepare(max_pixels, force, skip_existing)

    def inspect(job: Job) -> None:
        from ..image import probe_image

        src = read_input(job) if job.src == STDIO else job.src
        probe_image(src, limit, name=job.src_label, setting="--max-pixels")

    def work(job: Job) -> str:
        from ..api import encode  # torch loads here, once every input has been checked
        from ..encoder.effort import progress

        src = read_input(job) if job.src == STDIO else job.src
        if _lcodec_file(src):
            warnings.warn(CodecWarning(RECOMPRESS), stacklevel=1)
        # No reconstruction: the command prints none, and it would cost a synthesis transform.
        # Effort shows a per-iteration bar with the time left (stderr, on a terminal).
        with progress(effort > 1, tty_only=True):
            enc = encode(
                src,
                quality=quality,
                device=device,
                effort=effort,
                precision=precision,
                model=model,
                tune=tune,
                reconstruct=False,
                max_pixels=limit,
                **options,
            )
        write_output(job, enc.data, force)
        c = enc.container
        bpp = 8 * len(enc.data) / (c.width * c.height)
        line = f"{job.src_label} -> {job.dst_label}: {len(enc.data)} bytes, {bpp:.4f} bpp"
        return f"{line}; {enc.target}" if enc.target else line

    jobs, skipped = check_jobs(
        plan(images, output, ".lcz", is_image_file), inspect, force, skip_existing
    )
    _run(jobs, work, skipped)


@main.command(short_help="Decompress .lcz files into PNG images.")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    help="Output PNG (one input), folder (several inputs or a folder), or - for stdout.",
)
@DEVICE
@PRECISION
@FORCE
@SKIP_EXISTING
@MAX_PIXELS_OPTION
def decompress(files, output, device, precision, force, skip_existing, max_pixels):
    """Decompress .lcz FILES (files, folders, quoted globs, or - for stdin) into PNG images.

    The PNG has the image's own layout (gray, RGB, with alpha) and its ICC profile. A file
    that lcodec did not write (say, the original beside its .lcz) is only replaced with --force.
    """
    from ..bitstream import unpack

    limit = _prepare(max_pixels, force, skip_existing)

    def inspect(job: Job) -> None:
        c = unpack(read_input(job))
        check_budget(c.width, c.height, limit, "--max-pixels")

    def work(job: Job) -> str:
        from ..api import decode  # torch loads here, once every input has been checked
        from ..image import encode_png

        pic = decode(read_input(job), device=device, precision=precision, max_pixels=limit)
        write_output(job, encode_png(pic), force)
        return f"{job.src_label} -> {job.dst_label}: {pic.width}x{pic.height} {pic.mode}"

    jobs, skipped = check_jobs(plan(files, output, ".png", _is_lcz), inspect, force, skip_existing)
    _run(jobs, work, skipped)


@main.command(short_help="Show what an .lcz file holds.")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(file, as_json):
    """Show what a .lcz FILE (or - for stdin) holds: format, model, size, quality, stream
    sizes, bpp."""
    from ..bitstream import info as read_info
    from ..net.zoo import weights_for

    if file == STDIO:
        if sys.stdin.isatty():
            raise CodecError("info -: standard input is a terminal; pipe an .lcz file in")
        file = "<stdin>"
        with naming(file):
            meta = read_info(sys.stdin.buffer.read())
    else:
        meta = read_info(file)
    try:
        w = weights_for(meta["model"], bytes.fromhex(meta["weights_hash"]))
        meta["release"], meta["installed"] = w.model_id, True
    except CodecError:
        meta["release"], meta["installed"] = None, False
    if as_json:
        click.echo(json.dumps(meta))
        return
    click.echo(f"{file}: lcodec format v{meta['format_version']}")
    status = (
        f"installed as {meta['release']}" if meta["installed"] else "NOT installed: cannot decode"
    )
    click.echo(f"  model        {meta['model']} (weights {meta['weights_hash']}, {status})")
    source = meta["source"]
    came = f" (from {source['mode']}, {source['bits']}-bit)" if source else ""
    click.echo(f"  image        {meta['width']}x{meta['height']} {meta['layout']}{came}")
    click.echo(f"  quality      {meta['quality']:g} (rate {meta['rate']:g})")
    streams = ", ".join(f"{k} {v}" for k, v in meta["stream_bytes"].items())
    streams += f" in {meta['y_bands']} bands" if meta["y_bands"] > 1 else ""
    sections = " and ".join(f"{k} {v}" for k, v in meta["section_bytes"].items() if v)
    header = f"header {meta['header_bytes']}" + (f" with {sections}" if sections else "")
    click.echo(f"  bytes        {meta['bytes']} ({header}, {streams}, crc 4)")
    click.echo(f"  bpp          {meta['bpp']:.4f}")


#: How ``lcodec models`` marks a release by its manifest's ``distortion`` (MSE needs no mark).
TUNED_LABELS = {"ms-ssim": "  tuned for MS-SSIM", "mse+ms-ssim": "  tuned for PSNR and MS-SSIM"}


@main.command(short_help="List the installed model releases.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def models(as_json):
    """List the installed model releases: architecture, date, size and RD on validation photos.

    Every release stays installed so that every file written with it keeps decoding; the one
    marked * writes new files unless --model or --tune chooses another.
    """
    from ..net.zoo import DEFAULT_MODEL, releases

    tune_of = {name: tune for tune, name in TUNED.items()}

    rows = []
    for w in releases():
        m = w.manifest
        rows.append(
            {
                "name": w.model_id,
                "default": w.model_id == DEFAULT_MODEL,
                "architecture": m["architecture"],
                "date": m.get("exported"),
                "bytes": w.path.stat().st_size,
                "sha256": w.sha256,
                "training_steps": m.get("total_steps", m.get("steps")),
                "tuned_for": w.distortion,
                "tune": tune_of.get(w.model_id),
                "rd": m.get("rd", []),
            }
        )
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        mark = "*" if r["default"] else " "
        size = f"{r['bytes'] / 1e6:.1f} MB"
        tuned = TUNED_LABELS.get(r["tuned_for"], "")
        if r["tune"] and not r["default"]:  # the default needs no option
            tuned += f" (--tune {r['tune']})"
        click.echo(f"{mark} {r['name']:<26} {r['architecture']:<10} {r['date']}  {size:>8}{tuned}")
        rd = ", ".join(f"q{p['quality']:g} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB" for p in r["rd"])
        click.echo(f"    weights {r['sha256'][:16]}, {r['training_steps']} steps; {rd}")


@main.command(short_help="PSNR and MS-SSIM of an image against a reference.")
@click.argument("reference")
@click.argument("image")
def compare(reference, image):
    """Print the PSNR and MS-SSIM (RGB, 8-bit) of IMAGE against REFERENCE.

    Either may be an .lcz file: it is decoded, and its bits per pixel are printed too.
    """

    from ..metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr

    (a, a_bytes), (b, b_bytes) = _compared(reference), _compared(image)
    if a.shape != b.shape:
        raise CodecError(f"sizes differ: {a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}")
    height, width = a.shape[:2]
    parts = [f"PSNR {psnr(a, b):.2f} dB"]
    similarity = ms_ssim(a, b)
    too_small = f"n/a (needs both sides over {MS_SSIM_MIN_SIDE} pixels)"
    parts.append(f"MS-SSIM {too_small}" if math.isnan(similarity) else f"MS-SSIM {similarity:.4f}")
    sizes = [f"{8 * n / (width * height):.4f}" for n in (a_bytes, b_bytes) if n is not None]
    if sizes:
        parts.append(f"{' and '.join(sizes)} bpp")
    click.echo(f"{', '.join(parts)} ({width}x{height})")


def _compared(path: str):
    """An image to compare as HxWx3 uint8 RGB, with the file's size when it is an .lcz."""
    from ..image import to_rgb_array

    if not _is_lcz(Path(path)):
        return to_rgb_array(path), None
    from ..api import decode
    from ..files import read_file

    data = read_file(path)
    try:
        return decode(data).rgb(), len(data)
    except CodecError as e:
        raise CodecError(f"{path}: {e}") from None


main.add_command(train_command)
main.add_command(export_command)
