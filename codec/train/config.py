"""What a training run is given: ``TrainConfig``, the one place its options are written.

Each field that the ``train`` command offers carries its command-line help (and any click
setting) in its metadata; codec/train/commands.py builds the options from them. Torch-free, so
that ``lcodec --help`` answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from ..metrics import DISTORTIONS
from ..net.ladder import DEFAULT_LAMBDAS
from ..options import Number, device

SCHEDULES = ("cosine", "wsd")


def option(help: str = "", **click_settings: Any) -> Any:
    """A field the ``train`` command offers: its help and click settings ride in the metadata."""
    return {"cli": {"help": help, **click_settings}}


@dataclass
class TrainConfig:
    data: str = field(
        metadata=option(
            "Folder of training images (searched recursively).",
            type=click.Path(exists=True, file_okay=False),
        )
    )
    out: str = field(
        default="runs/default",
        metadata=option("Run folder: checkpoint, logs and exported weights. Re-running resumes."),
    )
    steps: int = field(default=10000, metadata=option("Total optimisation steps."))
    batch: int = field(default=8, metadata=option("Crops per optimisation step."))
    crop: int = field(default=128, metadata=option("Square crop size in pixels."))
    lr: float = field(
        default=5e-4,
        metadata=option("Peak learning rate, reached after the warm-up; --schedule decays it."),
    )
    min_lr: float = 1e-5
    warmup: int = field(
        default=300, metadata=option("Steps of linear learning-rate warm-up from zero.")
    )
    aux_lr: float = 1e-3
    clip: float = 1.0
    N: int = field(default=128, metadata=option("Transform channels."))
    M: int = field(
        default=192,
        metadata=option("Latent channels (elic-gain: at least 192; above, ELIC's channel groups)."),
    )
    lambdas: tuple[float, ...] = field(
        default=DEFAULT_LAMBDAS,
        metadata=option(
            "Comma-separated rate ladder (MSE lambdas).",
            type=str,
            default=None,
            show_default=False,
            callback=lambda ctx, param, value: _ladder(value),
        ),
    )
    ckpt_every: int = field(
        default=250, metadata=option("Write the checkpoint every this many steps (and on stop).")
    )
    seed: int = field(default=0, metadata=option("Seed of the crops and rates drawn."))
    device: str = field(
        default="cpu", metadata=option("cpu, cuda or cuda:N.", callback=device(auto=False))
    )
    threads: int = field(
        default=0, metadata=option("CPU threads (0: torch's default).", show_default=False)
    )
    val: str | None = None
    val_every: int = 0
    init_from: str | None = field(
        default=None,
        metadata=option(
            "Start from a run's checkpoint.pt or a release's .safetensors (weights only: "
            "a fresh optimizer and schedule)."
        ),
    )
    architecture: str = field(
        default="msh-gain",
        metadata=option(
            "msh-gain: mean-scale hyperprior; elic-gain: with the space-channel context model "
            "(start it from python -m codec.train.latents, docs/CONTEXT.md).",
            type=click.Choice(["msh-gain", "elic-gain"]),
            show_default=True,
        ),
    )
    # Seconds; the schedule ends at whichever of steps or time is first.
    time_budget: float = field(
        default=0.0,
        metadata=option(
            "Seconds of training, summed over restarts and not counting time the run was "
            "stopped (SIGSTOP, Ctrl-Z): end the schedule early at this time.",
            show_default=False,
        ),
    )
    # None: on wherever the device computes bf16 natively (see ``native_bf16``).
    amp: bool | None = field(
        default=None,
        metadata=option(
            "bf16 autocast for the transforms, channels-last (entropy models and losses stay "
            "float32). Default: on where the CPU (AVX-512 BF16, AMX) or GPU computes bf16 "
            "natively.",
            flag="--amp/--no-amp",
            show_default=False,
        ),
    )
    # The checkpoint keeps the plain model.
    compile: bool = field(
        default=False,
        metadata=option(
            "torch.compile the network: slower first step, faster after.", is_flag=True
        ),
    )
    # The plain loss grows about as sqrt(lambda), so at 0 the top rungs outweigh the bottom
    # ~20:1 in the shared transforms' gradient; 0.5 gives every rung about the same say.
    rate_balance: float = field(
        default=0.0,
        metadata=option(
            "Weight each crop's loss by (lambda / ladder mean)^-B. At 0 the top rungs dominate "
            "the gradient (about 20:1); 0.5 gives every rung about equal weight.",
            type=Number("a balance from 0 to 1", 0.0, 1.0),
        ),
    )
    ema: float = field(
        default=0.999,
        metadata=option(
            "Decay of the moving average of the weights that export ships (0: none).",
            type=Number("a decay from 0 up to (not including) 1", 0.0, 1.0, hi_open=True),
        ),
    )
    # wsd (warm-up, stable, decay) lets one long schedule survive restarts.
    schedule: str = field(
        default="cosine",
        metadata=option(
            "cosine: decay over the whole run. wsd: constant, then decay over the last --decay "
            "of the run (one long schedule across restarts).",
            type=click.Choice(SCHEDULES),
        ),
    )
    decay: float = field(
        default=0.2,
        metadata=option(
            "Fraction of the run the wsd schedule spends decaying.",
            type=Number("a fraction above 0, at most 1", 0.0, 1.0, lo_open=True),
        ),
    )
    # Decoder side only: the analysis (g_a, h_a, the gains into the latent) stays frozen, so the
    # latents it is fine-tuned on are the ones the encoder will send.
    hard_rounding: bool = field(
        default=False,
        metadata=option(
            "Last phase (elic-gain): train the decoder side on the rate the coder really pays, "
            "latents rounded as in a file; the analysis transforms stay frozen.",
            is_flag=True,
        ),
    )
    # The ladder's lambdas stay MSE lambdas; ``codec.metrics.MS_SSIM_WEIGHT`` puts 1 - MS-SSIM
    # on their scale.
    distortion: str = field(
        default="mse",
        metadata=option(
            "What the weights learn to keep: mse (PSNR), ms-ssim (structure; weights to offer "
            "as a model tuned for MS-SSIM, not as the default), mse+ms-ssim (the mean of "
            "the two) or 3mse+ms-ssim (MSE weighing three times as much).",
            type=click.Choice(DISTORTIONS),
            show_default=True,
        ),
    )
    extra: dict = field(default_factory=dict)


def _ladder(value: str | None) -> tuple[float, ...]:
    """``--lambdas``: a comma-separated ladder, or the default one."""
    if not value:
        return DEFAULT_LAMBDAS
    ladder = tuple(float(v) for v in value.split(","))
    if len(ladder) < 2:
        from ..errors import CodecError

        raise CodecError("--lambdas needs at least two values")
    return ladder
