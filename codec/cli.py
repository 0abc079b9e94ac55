"""The ``lcodec`` command line: compress, decompress, info, train, export.

Errors print one line on stderr and exit non-zero; outputs are written atomically and never
replace an existing file unless ``--force`` is given.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from .errors import CodecError

DEVICE = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where the networks run: auto (CUDA when available), cpu or cuda. "
    "Files decode on any device whatever device made them.",
)
FORCE = click.option("--force", "-f", is_flag=True, help="Overwrite existing output files.")


class LcodecGroup(click.Group):
    """Turns CodecError and I/O errors into one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CodecError as e:
            _fail(str(e))
        except OSError as e:
            _fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
        except KeyboardInterrupt:
            _fail("interrupted", code=130)


def _fail(message: str, code: int = 1):
    click.echo(f"lcodec: error: {message}", err=True)
    sys.exit(code)


def write_atomic(path: Path, data: bytes, force: bool) -> None:
    """Write via a temporary file in the same folder, then rename: no half-written outputs."""
    if path.exists() and not force:
        raise CodecError(f"{path} exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _outputs(inputs: tuple[str, ...], out: str | None, suffix: str) -> list[Path]:
    if out is None:
        return [Path(p).with_suffix(suffix) for p in inputs]
    if len(inputs) == 1 and not Path(out).is_dir():
        return [Path(out)]
    if not Path(out).is_dir():
        raise CodecError(f"with several inputs, -o must be an existing folder: {out}")
    return [Path(out) / Path(p).with_suffix(suffix).name for p in inputs]


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


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file (one input) or existing folder (several).")
@click.option(
    "-q",
    "--quality",
    type=click.FloatRange(0, 100),
    default=50,
    show_default=True,
    help="0-100: higher means more bytes and better quality.",
)
@DEVICE
@FORCE
def compress(images, output, quality, device, force):
    """Compress IMAGES (PNG, JPEG, ...) into .lcz files."""
    from .api import encode

    for src, dst in zip(images, _outputs(images, output, ".lcz")):
        enc = encode(src, quality=quality, device=device)
        write_atomic(dst, enc.data, force)
        c = enc.container
        bpp = 8 * len(enc.data) / (c.width * c.height)
        click.echo(f"{src} -> {dst}: {len(enc.data)} bytes, {bpp:.4f} bpp")


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", help="Output PNG (one input) or existing folder (several).")
@DEVICE
@FORCE
def decompress(files, output, device, force):
    """Decompress .lcz FILES into PNG images."""
    from .api import decompress as decode
    from .image import encode_png

    for src, dst in zip(files, _outputs(files, output, ".png")):
        data = _read(src)
        arr = decode(data, device=device)
        write_atomic(dst, encode_png(arr), force)
        click.echo(f"{src} -> {dst}: {arr.shape[1]}x{arr.shape[0]}")


def _read(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise CodecError(f"no such file: {path}")
    return p.read_bytes()


@main.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(file, as_json):
    """Show what a .lcz FILE holds: format, model, size, quality, stream sizes, bpp."""
    from .api import info as read_info

    meta = read_info(_read(file))
    if as_json:
        click.echo(json.dumps(meta))
        return
    click.echo(f"{file}: lcodec format v{meta['format_version']}")
    click.echo(f"  model        {meta['model']} (weights {meta['weights_hash']})")
    click.echo(f"  image        {meta['width']}x{meta['height']} {meta['layout']}")
    click.echo(f"  quality      {meta['quality']:g} (rate {meta['rate']:g})")
    streams = ", ".join(f"{k} {v}" for k, v in meta["stream_bytes"].items())
    click.echo(f"  bytes        {meta['bytes']} (header {meta['header_bytes']}, {streams}, crc 4)")
    click.echo(f"  bpp          {meta['bpp']:.4f}")


@main.command()
@click.argument("reference")
@click.argument("image")
def compare(reference, image):
    """Print the PSNR (RGB, 8-bit) of IMAGE against REFERENCE."""
    import numpy as np

    from .image import to_rgb_array

    a, b = to_rgb_array(reference), to_rgb_array(image)
    if a.shape != b.shape:
        raise CodecError(f"sizes differ: {a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    click.echo(f"PSNR {psnr:.2f} dB ({a.shape[1]}x{a.shape[0]})")


@main.command("train")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of training images (searched recursively).",
)
@click.option(
    "--out",
    default="runs/default",
    show_default=True,
    help="Run folder: checkpoint, logs and exported weights. Re-running resumes.",
)
@click.option("--steps", default=10000, show_default=True, help="Total optimisation steps.")
@click.option("--batch", default=8, show_default=True)
@click.option("--crop", default=128, show_default=True, help="Square crop size in pixels.")
@click.option("--lr", default=5e-4, show_default=True, help="Peak learning rate (cosine decay).")
@click.option("--warmup", default=300, show_default=True)
@click.option("--N", "n", default=128, show_default=True, help="Transform channels.")
@click.option("--M", "m", default=192, show_default=True, help="Latent channels.")
@click.option("--lambdas", default=None, help="Comma-separated rate ladder (MSE lambdas).")
@click.option("--ckpt-every", default=250, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=0, help="CPU threads (0: torch's default).")
@click.option("--init-from", default=None, help="Start from another run's checkpoint.")
@click.option("--name", default=None, help="Name of the exported weights (default: run name).")
@click.option("--seed", default=0, show_default=True)
@click.option("--val", default=None, help="Folder of images to measure the exported weights on.")
def train_command(
    data,
    out,
    steps,
    batch,
    crop,
    lr,
    warmup,
    n,
    m,
    lambdas,
    ckpt_every,
    device,
    threads,
    init_from,
    name,
    seed,
    val,
):
    """Train (or resume) a variable-rate model on a folder of images, then export its weights."""
    from .models import DEFAULT_LAMBDAS
    from .train import TrainConfig, train
    from .train.export import export_checkpoint

    ladder = tuple(float(v) for v in lambdas.split(",")) if lambdas else DEFAULT_LAMBDAS
    if len(ladder) < 2:
        raise CodecError("--lambdas needs at least two values")
    cfg = TrainConfig(
        data=data,
        out=out,
        steps=steps,
        batch=batch,
        crop=crop,
        lr=lr,
        warmup=warmup,
        N=n,
        M=m,
        lambdas=ladder,
        ckpt_every=ckpt_every,
        device=device,
        threads=threads,
        init_from=init_from,
        seed=seed,
    )
    ckpt = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        path = export_checkpoint(ckpt, Path(out) / "export", name or Path(out).name, val=val)
        click.echo(f"exported {path}")


@main.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="Weights name (the model id files record).")
@click.option("--out", default=".", show_default=True, help="Folder for .safetensors + .json.")
@click.option("--val", default=None, help="Folder of images to measure RD points on.")
def export_command(checkpoint, name, out, val):
    """Export a training CHECKPOINT as fp16 safetensors weights with a manifest."""
    from .train.export import export_checkpoint

    path = export_checkpoint(checkpoint, out, name, val=val)
    click.echo(f"exported {path}")
