"""The ``train`` and ``export`` commands, built from ``TrainConfig`` (codec/train/config.py).

``lcodec`` adds them to its group; ``python -m codec.train`` (what torchrun starts) runs
``train`` on its own. Nothing here imports torch until a command runs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import click

from ..malloc import reuse_freed_memory
from .config import TrainConfig


def _config_options(f: Callable) -> Callable:
    """Decorate ``f`` with one click option per ``TrainConfig`` field that offers one."""
    for fld in reversed(dataclasses.fields(TrainConfig)):
        settings = dict(fld.metadata.get("cli", ()))
        if not settings:
            continue
        flag = settings.pop("flag", "--" + fld.name.replace("_", "-"))
        required = fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
        if required:
            settings.setdefault("required", True)
        else:
            settings.setdefault("default", fld.default)
            settings.setdefault("show_default", not settings.get("is_flag", False))
        if not settings["help"]:
            del settings["help"]
        f = click.option(flag, fld.name, **settings)(f)
    return f


@click.command("train", short_help="Train (or resume) a model, then export its weights.")
@_config_options
@click.option("--name", default=None, help="Name of the exported weights (default: run name).")
@click.option(
    "--val",
    "export_val",
    default=None,
    help="Folder of images to measure the exported weights on.",
)
def train_command(name: str | None, export_val: str | None, **options: Any) -> None:
    """Train (or resume) a variable-rate model on a folder of images, then export its weights.

    Ctrl-C or SIGTERM stops after the current step with a checkpoint of it; the same command
    resumes where it stopped.
    """
    reuse_freed_memory()  # also when started as ``python -m codec.train`` (torchrun)
    from .export import export_checkpoint
    from .loop import TrainingStopped, train

    cfg = TrainConfig(**options)
    try:
        ckpt = train(cfg)
    except TrainingStopped as e:
        click.echo(f"lcodec: {e}", err=True)
        raise SystemExit(128 + e.signum) from None
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(cfg.out)
        path = export_checkpoint(ckpt, out / "export", name or out.name, val=export_val)
        click.echo(f"exported {path}")


@click.command("export", short_help="Export a training checkpoint as weights.")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="Weights name (the model id files record).")
@click.option("--out", default=".", show_default=True, help="Folder for .safetensors + .json.")
@click.option("--val", default=None, help="Folder of images to measure RD points on.")
@click.option(
    "--raw",
    is_flag=True,
    help="Export the last weights instead of their moving average (when the run kept one).",
)
def export_command(checkpoint: str, name: str, out: str, val: str | None, raw: bool) -> None:
    """Export a training CHECKPOINT as fp16 safetensors weights with a manifest."""
    from .export import export_checkpoint

    path = export_checkpoint(checkpoint, out, name, val=val, average=not raw)
    click.echo(f"exported {path}")
