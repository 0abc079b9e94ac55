"""The rate-distortion training loop, kept as plain as a loop can be.

One model learns the whole quality ladder: each crop in a batch draws its own continuous rate
value, and with it a gain vector and a lambda. Checkpoints hold everything needed to resume;
``export`` turns the newest one into shipped weights. Runs under ``torchrun`` with
DistributedDataParallel (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..errors import CodecError
from ..files import write_atomic
from ..hardware import cpu_model, native_bf16
from ..metrics import MS_SSIM_MIN_SIDE, distortion_term, uses_ms_ssim
from ..net import build_model
from ..net.msh_gain import remap_ladder
from ..net.zoo import read_state
from .config import SCHEDULES, TrainConfig
from .data import CropSampler


def lr_at(step: int, cfg: TrainConfig, progress: float | None = None) -> float:
    """Linear warm-up, then a cosine decay to ``min_lr`` at the end of the run (over all of it,
    or over its last ``cfg.decay`` fraction with the ``wsd`` schedule).

    ``progress`` (0..1) overrides the step-based position, for runs bounded by wall time.
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {cfg.schedule!r}")
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if progress is None:
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    progress = min(1.0, progress)
    if cfg.schedule == "wsd":
        start = 1.0 - cfg.decay
        if progress <= start:
            return cfg.lr
        progress = (progress - start) / max(cfg.decay, 1e-9)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


class EMA:
    """An exponential moving average of a model's floating-point state.

    The decay ramps up as (1 + n) / (10 + n) over the first updates, so that a short run is not
    an average dominated by its starting point.
    """

    def __init__(self, model: torch.nn.Module, decay: float, state: dict | None = None):
        self.decay = decay
        self.updates = 0 if state is None else int(state["updates"])
        source = model.state_dict() if state is None else state["weights"]
        self.weights = {
            k: v.detach().clone().float()
            for k, v in source.items()
            if v.is_floating_point() and k in model.state_dict()
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        keys = [k for k in self.weights if current[k].shape == self.weights[k].shape]
        torch._foreach_lerp_(
            [self.weights[k] for k in keys], [current[k].float() for k in keys], 1 - d
        )
        for k in self.weights.keys() - set(keys):  # buffers that change shape (entropy tables)
            self.weights[k] = current[k].detach().clone().float()

    def state_dict(self) -> dict:
        return {"updates": self.updates, "weights": self.weights}

    def averaged(self, model: torch.nn.Module) -> dict:
        """The model's state with every floating-point tensor replaced by its average."""
        return {k: self.weights.get(k, v) for k, v in model.state_dict().items()}


def load_initial_weights(model, path: str) -> None:
    """Start from a checkpoint (``.pt``) or exported weights (``.safetensors``).

    When the new run has another lambda ladder, the gain tables are carried over onto it.
    """
    if not Path(path).is_file():
        raise CodecError(f"--init-from {path}: no such file")
    try:
        if path.endswith(".safetensors"):
            state = read_state(path)
            manifest = Path(path).with_suffix(".json")
            src = json.loads(manifest.read_text())["lambdas"] if manifest.exists() else None
        else:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            state = ckpt.get("model", ckpt)
            src = ckpt.get("config", {}).get("lambdas")
    except OSError:
        raise  # unreadable: the command line names the file and the reason
    except Exception:  # not a checkpoint: the unpickler and safetensors raise what they meet
        raise CodecError(f"--init-from {path}: not a checkpoint or weights file") from None
    misfit = CodecError(
        f"--init-from {path}: these weights do not fit the network being trained "
        "(check --architecture, --N and --M)"
    )
    if not isinstance(state, dict) or not all(k in state for k in ("log_gain", "log_inv_gain")):
        raise misfit
    if src is not None and tuple(src) != tuple(model.lambdas):
        for key in ("log_gain", "log_inv_gain"):
            state[key] = remap_ladder(state[key], tuple(src), tuple(model.lambdas))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        if "state_dict" not in str(e):  # not a mismatch of names or shapes
            raise
        raise misfit from None


def rd_loss(
    model,
    out: dict,
    x: torch.Tensor,
    rate: torch.Tensor,
    balance: float = 0.0,
    distortion: str = "mse",
) -> tuple:
    """Per-crop lambda * distortion + bpp, averaged with rate-balance weights (see
    ``TrainConfig.rate_balance``); also returns mean bpp and MSE for logs."""
    b, _, h, w = x.shape
    bits = sum(
        torch.log(lik).reshape(b, -1).sum(1) for lik in out["likelihoods"].values()
    ) / -math.log(2)
    bpp = bits / (h * w)
    mse = (out["x_hat"] - x).pow(2).reshape(b, -1).mean(1)
    lmbda = model.lmbda(rate)
    per_crop = lmbda * distortion_term(distortion, out["x_hat"], x) + bpp
    if balance:
        ref = math.exp(sum(math.log(v) for v in model.lambdas) / len(model.lambdas))
        per_crop = per_crop * (lmbda.detach() / ref) ** -balance
    return per_crop.mean(), bpp.mean(), mse.mean()


def split_parameters(model) -> tuple[list, list]:
    """CompressAI's convention: the entropy bottleneck's quantiles train with the aux loss only.
    Frozen parameters are in neither."""
    main, aux = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (aux if name.endswith(".quantiles") else main).append(p)
    return main, aux


def train_step(
    model,
    net,
    opt,
    aux_opt,
    x: torch.Tensor,
    clip: float,
    amp: bool,
    balance: float = 0.0,
    ema: EMA | None = None,
    hard: bool = False,
    distortion: str = "mse",
) -> tuple:
    """One optimisation step on batch ``x``, each crop at its own random rate.

    ``net`` is ``model`` or its DDP wrapper. Returns loss, bpp, MSE and aux loss (tensors).
    """
    rate = torch.rand(x.shape[0], device=x.device) * (model.levels - 1)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = net(x, rate, hard=True) if hard else net(x, rate)
    loss, bpp, mse = rd_loss(model, out, x, rate, balance, distortion)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        params = [p for g in opt.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    aux = model.aux_loss()
    aux_opt.zero_grad(set_to_none=True)
    aux.backward()
    aux_opt.step()
    if ema is not None:
        ema.update(model)
    return loss, bpp, mse, aux


class _SignalScope:
    """Installs ``_handlers()`` for a with-block, from the main thread only (Python's rule), and
    puts back what was there before: a handler installed outside Python reads as None and
    comes back as the default action."""

    _previous: dict

    def _handlers(self) -> dict:
        return {}

    def __enter__(self):
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig, handler in self._handlers().items():
                self._previous[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous = {}


class TrainingStopped(KeyboardInterrupt):
    """A signal stopped the run after its checkpoint was written: the same command resumes it."""

    def __init__(self, step: int, checkpoint: Path, signum: int = signal.SIGINT):
        super().__init__(
            f"training stopped at step {step}, checkpoint saved in {checkpoint}; "
            "run the same command to resume"
        )
        self.step = step
        self.checkpoint = checkpoint
        #: The signal that stopped the run: the command exits with 128 plus it, as a shell
        #: reports a process that signal ended.
        self.signum = int(signum)


class StopRequests(_SignalScope):
    """SIGINT and SIGTERM, while active, ask the loop to stop after its current step.

    The loop then writes a checkpoint before it ends, so stopping a run loses no steps. Under
    DDP (``enabled=False``) the signals keep their usual effect, since every rank would have to
    stop at the same step.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        #: The signal that asked for the stop; ``None`` while none has.
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _request(self, signum, frame) -> None:
        self.signum = int(signum)

    def _handlers(self) -> dict:
        return {sig: self._request for sig in self.SIGNALS} if self.enabled else {}


class TrainingClock(_SignalScope):
    """Wall seconds a run has trained, carried across restarts, less the time it was stopped.

    A run paused with SIGSTOP or Ctrl-Z would otherwise spend its time budget, and so move its
    learning-rate schedule, while it computed nothing. SIGCONT marks the interval in which the
    run continued; the intervals around it count no longer than the one before them (0 s when
    there is none), corrected at the first tick after the handler ran. ``now`` is the time
    source (tests pass their own).
    """

    def __init__(self, before: float = 0.0, now: Callable[[], float] = time.monotonic):
        self.total = before
        self._now = now
        self._last = now()
        self._interval = self._before = 0.0
        self._continued_at: float | None = None

    def _on_continue(self, signum, frame) -> None:
        self._continued_at = self._now()

    def _handlers(self) -> dict:
        sig = getattr(signal, "SIGCONT", None)  # not on Windows
        return {} if sig is None else {sig: self._on_continue}

    def __enter__(self) -> TrainingClock:
        super().__enter__()
        for sig in self._previous:
            signal.siginterrupt(sig, False)  # native threads' blocking calls must not see EINTR
        return self

    def tick(self) -> float:
        """Count the time since the last tick (one step's) and return the total."""
        t = self._now()
        dt = t - self._last
        if self._continued_at is not None:
            # The stop sits in this interval, in the one before when the handler ran late (it
            # runs on the main thread only when the interpreter gets to it, after another thread
            # may have taken the signal), or in the next when it came after ``t`` was read. So
            # all three count no longer than the interval before them.
            capped = min(self._interval, self._before)
            self.total -= self._interval - capped
            self._interval, dt = capped, min(dt, self._before)
            if self._continued_at <= t:
                self._continued_at = None
        self._last, self._before, self._interval = t, self._interval, dt
        self.total += dt
        return self.total


def checkpoint_path(out: str | Path) -> Path:
    return Path(out) / "checkpoint.pt"


def save_checkpoint(
    path: Path, model, opt, aux_opt, step: int, cfg: TrainConfig, log: dict, ema: EMA | None = None
):
    """Write atomically: a run killed mid-save keeps its previous checkpoint."""
    state = {
        "model": model.state_dict(),
        "ema": None if ema is None else ema.state_dict(),
        "opt": opt.state_dict(),
        "aux_opt": aux_opt.state_dict(),
        "step": step,
        "config": asdict(cfg),
        "log": log,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue(), force=True)


def _setup_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device(cfg.device)
    backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    if cfg.device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume) the run in ``cfg.out``; returns the checkpoint path."""
    if cfg.crop < 64 or cfg.crop % 64:
        raise CodecError(
            f"--crop {cfg.crop}: use a multiple of 64 (the transforms halve it 6 times)"
        )
    if uses_ms_ssim(cfg.distortion) and cfg.crop <= MS_SSIM_MIN_SIDE:
        raise CodecError(
            f"--distortion {cfg.distortion} needs --crop above {MS_SSIM_MIN_SIDE} (five scales)"
        )
    rank, world, device = _setup_distributed(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    try:
        model = build_model(cfg.architecture, cfg.N, cfg.M, tuple(cfg.lambdas)).to(device)
    except ValueError as e:
        raise CodecError(str(e)) from None
    out = Path(cfg.out)
    ckpt = checkpoint_path(out)

    amp = native_bf16(device) if cfg.amp is None else cfg.amp
    # Channels-last pays with cuDNN, and with oneDNN's bf16 kernels; not for float32 on CPU.
    channels_last = device.type == "cuda" or amp
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.hard_rounding:
        if not hasattr(model, "entropy_forward"):
            raise CodecError("--hard-rounding needs --architecture elic-gain")
        for p in model.analysis_parameters():
            p.requires_grad_(False)
    main_params, aux_params = split_parameters(model)
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    step, log = 0, {"wall_s": 0.0, "history": []}

    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        step, log = state["step"], state["log"]
        ema_state = state.get("ema")
    else:
        ema_state = None
        if cfg.init_from:
            load_initial_weights(model, cfg.init_from)
            model.to(device)
    ema = EMA(model, cfg.ema, ema_state) if cfg.ema else None

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    if cfg.compile:
        net = torch.compile(net)
    try:
        sampler = CropSampler(cfg.data, cfg.crop, seed=cfg.seed + step, rank=rank)
    except ValueError:  # the folder holds no images
        raise CodecError(f"no training images in {cfg.data}") from None
    out.mkdir(parents=True, exist_ok=True)  # only once the run can start
    batch = max(1, cfg.batch // world)

    bar = tqdm(
        total=cfg.steps, initial=step, disable=not progress or rank != 0, desc="train", unit="step"
    )
    model.train()
    log["amp"] = amp
    progress = _progress(step, cfg, log["wall_s"], world, device)
    with StopRequests(enabled=world == 1) as stop, TrainingClock(log["wall_s"]) as clock:
        while progress < 1.0:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg, progress if cfg.time_budget else None)
            x = sampler.batch(batch).to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, bpp, mse, aux = train_step(
                model,
                net,
                opt,
                aux_opt,
                x,
                cfg.clip,
                amp,
                cfg.rate_balance,
                ema,
                cfg.hard_rounding,
                cfg.distortion,
            )
            step += 1
            wall = clock.tick()
            progress = _progress(step, cfg, wall, world, device)

            if rank == 0:
                psnr = -10 * math.log10(max(mse.item(), 1e-10))
                bar.set_postfix(
                    loss=f"{loss.item():.3f}", bpp=f"{bpp.item():.3f}", psnr=f"{psnr:.2f}"
                )
                bar.update(1)
                if step % 50 == 0:
                    log["history"].append(
                        {
                            "step": step,
                            "loss": loss.item(),
                            "bpp": bpp.item(),
                            "psnr": psnr,
                            "aux": aux.item(),
                            "lr": opt.param_groups[0]["lr"],
                        }
                    )
                if step % cfg.ckpt_every == 0 or progress >= 1.0 or stop.requested:
                    log["wall_s"] = wall
                    log["hardware"] = _hardware(device, world)
                    save_checkpoint(ckpt, model, opt, aux_opt, step, cfg, log, ema)
                    (out / "log.json").write_text(
                        json.dumps(log["history"][-1:] + [{"step": step, "wall_s": log["wall_s"]}])
                    )
            if stop.requested:
                break
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if stop.requested and progress < 1.0:  # a stop on the last step leaves a finished run
        raise TrainingStopped(step, ckpt, stop.signum)
    return ckpt


def _progress(
    step: int, cfg: TrainConfig, wall_s: float, world: int, device: torch.device
) -> float:
    """Position in the schedule: steps done, or wall time spent if that is further along.

    Under DDP every rank must stop at the same step, so the time-based part is agreed on.
    """
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup) if step >= cfg.warmup else 0
    if step >= cfg.steps:
        return 1.0
    if cfg.time_budget and step >= cfg.warmup:
        t = torch.tensor([wall_s / cfg.time_budget], dtype=torch.float64, device=device)
        if world > 1:
            dist.broadcast(t, 0)
        progress = max(progress, float(t))
    return min(progress, 1.0)


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = cpu_model()
        name = f"{name} CPU, {torch.get_num_threads()} threads"
    return f"{world} x {name}"
