"""Training end to end on a tiny model: steps, checkpoint, resume, export, reload, DDP."""

import json
import math
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_image
from PIL import Image

import codec
from codec.cli import main
from codec.net import build_model
from codec.net.msh_gain import ARCHITECTURE
from codec.train import TrainConfig, train
from codec.train.export import export_checkpoint

TINY = dict(N=16, M=24, batch=2, crop=64, warmup=2, ckpt_every=3, lambdas=(0.005, 0.05))


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data" / "nested"
    d.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(make_image(80 + 10 * i, 96, seed=i)).save(d / f"{i}.png")
    Image.fromarray(make_image(40, 50, seed=9)).save(d / "small.jpg")  # smaller than the crop
    return tmp_path / "data"


def test_train_resume_export_reload(data_dir, tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data_dir), out=str(run), steps=4, **TINY)
    ckpt = train(cfg, progress=False)
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 4 and len(state["opt"]["state"]) > 0
    first = {k: v.clone() for k, v in state["model"].items()}

    cfg.steps = 6  # resuming continues from step 4, it does not start over
    train(cfg, progress=False)
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 6
    assert any(not torch.equal(first[k], v) for k, v in state["model"].items())

    path = export_checkpoint(
        ckpt, tmp_path / "w", "tiny-test", val=str(data_dir), qualities=(0, 100)
    )
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["steps"] == 6 and manifest["N"] == 16 and manifest["sha256"]
    assert manifest["data"]["images"] == 4 and len(manifest["rd"]) == 2
    assert manifest["rd"][0]["bpp"] < manifest["rd"][1]["bpp"]
    from safetensors.torch import load_file

    tensors = load_file(path)
    assert tensors["g_a.0.weight"].dtype == torch.float16
    assert tensors["entropy_bottleneck._quantized_cdf"].dtype == torch.int32

    img = make_image(50, 70)
    enc = codec.encode(img, 30, weights=str(path))
    assert np.array_equal(codec.decompress(enc.data, weights=str(path)), enc.reconstruction)

    # A tampered weights file no longer matches its manifest and is refused.
    bad = tmp_path / "w2"
    shutil.copytree(tmp_path / "w", bad)
    with open(bad / "tiny-test.safetensors", "r+b") as f:
        f.seek(-10, os.SEEK_END)
        f.write(b"\x00" * 10)
    with pytest.raises(codec.CodecError, match="sha256"):
        codec.compress(img, 30, weights=str(bad / "tiny-test.safetensors"))


def test_cli_train_exports(data_dir, tmp_path):
    run = tmp_path / "clirun"
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data_dir),
            "--out",
            str(run),
            "--steps",
            "2",
            "--N",
            "16",
            "--M",
            "24",
            "--batch",
            "2",
            "--crop",
            "64",
            "--lambdas",
            "0.01,0.05",
            "--warmup",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (run / "export" / "clirun.safetensors").is_file()
    assert (run / "export" / "clirun.json").is_file()


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    # --standalone: a free port of its own, so that no other job on the machine can collide
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd + args, capture_output=True, text=True, timeout=300, env=env)


def _finished_then_aborted(r: subprocess.CompletedProcess, ckpt, steps: int) -> bool:
    """A rank killed by a signal after the last checkpoint was written. Seen once in many
    runs (SIGABRT, the rank's output lost): a teardown failure, not a training one."""
    signalled = "exitcode  : -" in r.stderr or "Signal " in r.stderr
    return signalled and ckpt.is_file() and torch.load(ckpt, weights_only=False)["step"] == steps


def test_torchrun_two_cpu_processes(data_dir, tmp_path):
    run = tmp_path / "ddp"
    args = ["-m", "codec.train", "--data", str(data_dir), "--out", str(run), "--steps", "3"]
    args += ["--N", "16", "--M", "24", "--batch", "4", "--crop", "64", "--lambdas", "0.01,0.05"]
    args += ["--warmup", "1", "--threads", "1"]
    r = _torchrun(args)
    if r.returncode != 0 and _finished_then_aborted(r, run / "checkpoint.pt", 3):
        # One retry, only for that failure; what the aborted rank printed stays in the log.
        warnings.warn(
            f"torchrun: a rank aborted after training, retrying:\n{r.stderr[:3000]}", stacklevel=1
        )
        shutil.rmtree(run)
        r = _torchrun(args)
    # A rank's own error comes first; torchrun's report of the failure last.
    assert r.returncode == 0, r.stderr[:3000] + "\n...\n" + r.stderr[-1500:]
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3
    assert (run / "export" / "ddp.safetensors").is_file()


def test_time_budget_ends_early_and_init_from_weights(data_dir, tmp_path):
    first = tmp_path / "first"
    ckpt = train(TrainConfig(data=str(data_dir), out=str(first), steps=2, **TINY), progress=False)
    weights = export_checkpoint(ckpt, tmp_path / "w", "tiny-init")
    cfg = TrainConfig(
        data=str(data_dir),
        out=str(tmp_path / "timed"),
        steps=100000,
        time_budget=1.0,
        init_from=str(weights),
        seed=3,
        **{**TINY, "lambdas": (0.005, 0.08)},
    )
    ckpt2 = train(cfg, progress=False)
    state = torch.load(ckpt2, weights_only=False)
    assert cfg.warmup <= state["step"] < 100000
    assert state["log"]["wall_s"] >= 1.0
    # The exported manifest tells the whole history: the first run, then this one.
    manifest = json.loads(
        export_checkpoint(ckpt2, tmp_path / "w2", "tiny-2").with_suffix(".json").read_text()
    )
    assert [st["steps"] for st in manifest["stages"]] == [2, state["step"]]
    assert [st["seed"] for st in manifest["stages"]] == [0, 3]
    assert [st["lambda_range"] for st in manifest["stages"]] == [[0.005, 0.05], [0.005, 0.08]]
    assert manifest["total_steps"] == 2 + state["step"]
    assert manifest["total_wall_s"] >= manifest["wall_s"] >= 1.0


def test_init_from_carries_gains_onto_a_wider_ladder(data_dir, tmp_path):
    from codec.train.loop import load_initial_weights

    ckpt = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "a"), steps=1, **TINY), False)
    old = torch.load(ckpt, weights_only=False)
    src = tuple(old["config"]["lambdas"])
    wider = (src[0] / 4,) + src
    model = build_model(ARCHITECTURE, TINY["N"], TINY["M"], wider)
    load_initial_weights(model, str(ckpt))
    assert model.log_gain.shape[0] == len(wider)
    assert torch.equal(model.log_gain[1:], old["model"]["log_gain"])
    assert torch.equal(model.log_inv_gain[1:], old["model"]["log_inv_gain"])
    # The new lowest rung continues the line through the two trained ones below it.
    g0, g1 = old["model"]["log_gain"][:2]
    reach = math.log(src[0] / wider[0]) / math.log(src[1] / src[0])
    assert torch.allclose(model.log_gain[0], g0 + (g0 - g1) * reach, atol=1e-5)


def test_a_context_model_too_narrow_for_its_groups_is_a_one_line_error(data_dir, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--architecture",
            "elic-gain",
            "--M",
            "100",
            "--N",
            "16",
            "--data",
            str(data_dir),
            "--steps",
            "1",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code != 0 and "at least 192, got 100" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "run").exists()


def test_rate_balance_weights_crops_by_their_lambda():
    from codec.train.loop import rd_loss

    torch.manual_seed(0)
    lambdas = (0.001, 0.004, 0.016)
    model = build_model(ARCHITECTURE, TINY["N"], TINY["M"], lambdas)
    x = torch.rand(3, 3, 64, 64)
    rate = torch.tensor([0.0, 1.0, 2.0])
    with torch.no_grad():
        out = model(x, rate)
        plain, bpp, mse = rd_loss(model, out, x, rate)
        same, _, _ = rd_loss(model, out, x, rate, 0.0)
        balanced, bpp2, mse2 = rd_loss(model, out, x, rate, 0.5)
    # Per-crop plain losses, rebuilt from the definition.
    bits = sum(torch.log2(lik).reshape(3, -1).sum(1) for lik in out["likelihoods"].values())
    err = (out["x_hat"] - x).pow(2).reshape(3, -1).mean(1)
    per_crop = torch.tensor(lambdas) * 255**2 * err - bits / (64 * 64)
    assert torch.allclose(plain, per_crop.mean(), rtol=1e-4)
    assert torch.equal(plain, same)
    # The middle rung is the ladder's geometric mean (weight 1); the others get sqrt(4)=2, 1/2.
    weights = torch.tensor([2.0, 1.0, 0.5])
    assert torch.allclose(balanced, (per_crop * weights).mean(), rtol=1e-4)
    # Logged figures are unweighted.
    assert torch.equal(bpp, bpp2) and torch.equal(mse, mse2)


def test_ms_ssim_distortion_is_zero_for_a_copy_and_grows_with_the_damage():
    from pytorch_msssim import ms_ssim

    from codec.metrics import MS_SSIM_WEIGHT, ms_ssim_term
    from codec.train.loop import rd_loss

    torch.manual_seed(0)
    x = torch.rand(2, 3, 192, 192)
    noise = torch.randn_like(x)
    same = ms_ssim_term(x, x)
    light = ms_ssim_term((x + 0.02 * noise).clamp(0, 1), x)
    heavy = ms_ssim_term((x + 0.2 * noise).clamp(0, 1), x)
    assert same.shape == (2,) and torch.allclose(same, torch.zeros(2), atol=1e-4)
    assert bool((light > 0).all()) and bool((heavy > light).all())

    lambdas = (0.001, 0.004)
    model = build_model(ARCHITECTURE, TINY["N"], TINY["M"], lambdas)
    rate = torch.tensor([0.0, 1.0])
    out = model(x, rate)
    loss, bpp, _ = rd_loss(model, out, x, rate, distortion="ms-ssim")
    score = ms_ssim(out["x_hat"], x, data_range=1.0, size_average=False)
    expected = (torch.tensor(lambdas) * MS_SSIM_WEIGHT * (1 - score)).mean() + bpp
    assert torch.allclose(loss, expected, rtol=1e-4)
    loss.backward()  # the structural term reaches the synthesis
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.g_s.parameters())


def test_the_distortion_term_is_per_image_for_each_distortion():
    from codec.metrics import distortion_term, ms_ssim_term

    torch.manual_seed(1)
    x = torch.rand(2, 3, 192, 192)
    x_hat = (x + torch.tensor([0.01, 0.1]).view(2, 1, 1, 1) * torch.randn_like(x)).clamp(0, 1)
    mse = distortion_term("mse", x_hat, x)
    per_image = [255**2 * float((x_hat[i] - x[i]).square().mean()) for i in range(2)]
    assert mse.tolist() == pytest.approx(per_image, rel=1e-5) and mse[1] > mse[0]
    assert torch.equal(distortion_term("ms-ssim", x_hat, x), ms_ssim_term(x_hat, x))
    both = distortion_term("mse+ms-ssim", x_hat, x)
    assert torch.allclose(both, (mse + ms_ssim_term(x_hat, x)) / 2)
    leaning = distortion_term("3mse+ms-ssim", x_hat, x)
    assert torch.allclose(leaning, (3 * mse + ms_ssim_term(x_hat, x)) / 4)
    with pytest.raises(ValueError, match="unknown distortion"):
        distortion_term("psnr", x_hat, x)


def test_an_ms_ssim_run_records_its_distortion(data_dir, tmp_path):
    tiny = {**TINY, "crop": 192}
    cfg = TrainConfig(
        data=str(data_dir), out=str(tmp_path / "s"), steps=1, distortion="ms-ssim", **tiny
    )
    manifest = json.loads(
        export_checkpoint(train(cfg, progress=False), tmp_path / "w", "tiny-s")
        .with_suffix(".json")
        .read_text()
    )
    assert manifest["distortion"] == "ms-ssim"
    assert manifest["stages"][-1]["distortion"] == "ms-ssim"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--crop", "100"], "--crop 100: use a multiple of 64"),
        (["--crop", "0"], "--crop 0: use a multiple of 64"),
        (["--distortion", "ms-ssim", "--crop", "128"], "needs --crop above 160"),
        (["--distortion", "mse+ms-ssim", "--crop", "128"], "mse+ms-ssim needs --crop above 160"),
    ],
)
def test_a_crop_the_loss_cannot_use_is_a_one_line_error(data_dir, tmp_path, args, message):
    base = ["train", "--data", str(data_dir), "--steps", "1", "--out", str(tmp_path / "run")]
    assert message in _one_line_error(CliRunner().invoke(main, [*base, *args]))
    assert not (tmp_path / "run").exists()


def test_rate_balance_is_recorded_in_the_manifest(data_dir, tmp_path):
    cfg = TrainConfig(
        data=str(data_dir), out=str(tmp_path / "b"), steps=2, rate_balance=0.25, **TINY
    )
    manifest = json.loads(
        export_checkpoint(train(cfg, progress=False), tmp_path / "w", "tiny-b")
        .with_suffix(".json")
        .read_text()
    )
    assert manifest["stages"][-1]["rate_balance"] == 0.25


def test_export_never_replaces_a_shipped_release(tmp_path):
    import codec.train.export as export
    from codec.errors import CodecError
    from codec.net.zoo import releases

    w = releases()[0]
    before = w.path.read_bytes()
    with pytest.raises(CodecError, match="never replaced"):
        export.export_checkpoint(tmp_path / "unused.pt", w.path.parent, w.model_id)
    assert w.path.read_bytes() == before


def test_wsd_schedule_holds_the_peak_then_decays_to_the_floor():
    from codec.train.loop import lr_at

    cfg = TrainConfig(data="-", steps=1000, warmup=100, lr=1e-3, min_lr=1e-5, schedule="wsd")
    cfg.decay = 0.2
    assert lr_at(0, cfg) == pytest.approx(1e-5)  # warm-up from lr / warmup
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == lr_at(819, cfg) == 1e-3  # constant up to 80 % of the schedule
    tail = [lr_at(s, cfg) for s in range(821, 1001, 20)]
    assert all(a > b for a, b in zip(tail, tail[1:])) and tail[0] < 1e-3
    assert lr_at(1000, cfg) == pytest.approx(1e-5)
    # Wall-time progress drives it the same way.
    assert lr_at(500, cfg, progress=0.5) == 1e-3 and lr_at(500, cfg, progress=1.0) == 1e-5
    cfg.schedule = "cosine"
    assert lr_at(100, cfg) == pytest.approx(1e-3) and lr_at(550, cfg) < 6e-4


def test_ema_is_kept_resumed_and_exported(data_dir, tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data_dir), out=str(run), steps=3, ema=0.9, **TINY)
    ckpt = train(cfg, progress=False)
    state = torch.load(ckpt, weights_only=False)
    assert state["ema"]["updates"] == 3
    key = "g_a.0.weight"
    assert not torch.equal(state["ema"]["weights"][key], state["model"][key])
    cfg.steps = 5
    state = torch.load(train(cfg, progress=False), weights_only=False)
    assert state["ema"]["updates"] == 5  # resumed, not restarted from the model

    avg = export_checkpoint(ckpt, tmp_path / "avg", "t")
    raw = export_checkpoint(ckpt, tmp_path / "raw", "t", average=False)
    from safetensors.torch import load_file

    assert torch.equal(load_file(avg)[key], state["ema"]["weights"][key].half()) and torch.equal(
        load_file(raw)[key], state["model"][key].half()
    )
    assert json.loads(avg.with_suffix(".json").read_text())["averaged"] is True
    assert json.loads(raw.with_suffix(".json").read_text())["averaged"] is False


@pytest.mark.parametrize("amp", [False, True])
def test_bf16_runs_the_transforms_only(amp):
    from codec.train.loop import EMA, split_parameters, train_step

    torch.manual_seed(0)
    model = build_model(ARCHITECTURE, TINY["N"], TINY["M"], TINY["lambdas"])
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen.setdefault(name, output.dtype)

        return hook

    model.g_a[0].register_forward_hook(record("g_a"))
    model.h_s[0].register_forward_hook(record("h_s"))
    main_params, aux_params = split_parameters(model)
    opt, aux_opt = torch.optim.Adam(main_params), torch.optim.Adam(aux_params)
    x = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = model(x, torch.tensor([0.0, 1.0]))
    want = torch.bfloat16 if amp else torch.float32
    assert (seen["g_a"], seen["h_s"]) == (want, want)
    assert all(lik.dtype == torch.float32 for lik in out["likelihoods"].values())
    assert out["x_hat"].dtype == torch.float32
    ema = EMA(model, 0.99)
    loss, bpp, mse, aux = train_step(model, model, opt, aux_opt, x, 1.0, amp, ema=ema)
    assert loss.dtype == torch.float32 and math.isfinite(loss.item()) and ema.updates == 1
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_native_bf16_reads_the_cpu_flags(monkeypatch):
    from codec import hardware

    flags = {"plain": "flags : fpu avx2\n", "zen4": "flags : avx512f avx512_bf16\n"}
    for name, expected in (("plain", False), ("zen4", True)):
        monkeypatch.setattr(
            "builtins.open", lambda *a, _t=flags[name], **k: __import__("io").StringIO(_t)
        )
        assert hardware.native_bf16(torch.device("cpu")) is expected


def test_a_stop_signal_ends_the_run_after_a_checkpoint(data_dir, tmp_path, monkeypatch):
    import signal

    from codec.train import loop

    steps = []
    plain_step = loop.train_step

    def step_then_signal(*args, **kwargs):
        out = plain_step(*args, **kwargs)
        steps.append(1)
        if len(steps) == 2:
            signal.raise_signal(signal.SIGTERM)  # as `kill` would, mid-run
        return out

    monkeypatch.setattr(loop, "train_step", step_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    cfg = TrainConfig(data=str(data_dir), out=str(tmp_path / "run"), steps=50, **TINY)
    cfg.ckpt_every = 100
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    assert signal.getsignal(signal.SIGTERM) == before
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 == len(steps)  # saved at the step it stopped on, not lost
    monkeypatch.setattr(loop, "train_step", plain_step)
    cfg.steps = 4
    assert torch.load(train(cfg, progress=False), weights_only=False)["step"] == 4


def test_a_stop_on_the_last_step_leaves_a_finished_run(data_dir, tmp_path, monkeypatch):
    import signal

    from codec.train import loop

    plain_step = loop.train_step

    def step_then_signal(*args, **kwargs):
        out = plain_step(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)
        return out

    monkeypatch.setattr(loop, "train_step", step_then_signal)
    cfg = TrainConfig(data=str(data_dir), out=str(tmp_path / "run"), steps=1, **TINY)
    try:
        ckpt = train(cfg, progress=False)
    except loop.TrainingStopped:  # a KeyboardInterrupt: caught here, or it ends the session
        pytest.fail("a finished run was reported as stopped, so the caller would not export")
    assert torch.load(ckpt, weights_only=False)["step"] == 1


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stopped_cli_run_says_where_it_stopped_and_how_to_resume(
    data_dir, tmp_path, monkeypatch, signame, status
):
    import signal

    from codec.train import loop

    plain_step = loop.train_step

    def step_then_signal(*args, **kwargs):
        signal.raise_signal(getattr(signal, signame))  # Ctrl-C or kill in the first step
        return plain_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step_then_signal)
    run = tmp_path / "run"
    args = ["train", "--data", str(data_dir), "--out", str(run), "--steps", "5", "--N", "16"]
    args += ["--M", "24", "--batch", "2", "--crop", "64", "--lambdas", "0.01,0.05"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == status, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1] == (
        f"lcodec: training stopped at step 1, checkpoint saved in {run / 'checkpoint.pt'}; "
        "run the same command to resume"
    )
    assert "Traceback" not in res.output and not (run / "export").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 1


def test_the_clock_does_not_count_a_stopped_interval():
    import signal

    from codec.train.loop import TrainingClock

    # The handler reads the clock too: it is continued at 99 s.
    times = iter([0.0, 1.0, 2.5, 99.0, 100.0, 101.0, 102.0, 200.0, 300.0, 301.0])
    before = signal.getsignal(signal.SIGCONT)
    with TrainingClock(10.0, now=lambda: next(times)) as clock:
        assert clock.tick() == 11.0
        assert clock.tick() == 12.5
        signal.raise_signal(signal.SIGCONT)  # continued at 99 s, after a stop in this interval
        # 97.5 s count as the interval before the two around the stop (1 s), and the 1.5 s
        # interval before it, where a late handler would have left the stop, is capped too.
        assert clock.tick() == 13.0
        assert clock.tick() == 14.0
        assert clock.tick() == 15.0
        # Continued at 200.5 s, after a tick read the time (200 s): the stop may sit in the
        # interval that tick closes or in the next, so both are capped.
        plain_now = clock._now

        def read_then_stopped():
            t = plain_now()
            clock._continued_at = t + 0.5
            return t

        clock._now = read_then_stopped
        assert clock.tick() == 16.0  # 98 s capped at 1 s
        clock._now = plain_now
        assert clock.tick() == 17.0  # 100 s with the stop, capped too
        assert clock.tick() == 18.0
    assert signal.getsignal(signal.SIGCONT) == before


def test_a_stopped_and_continued_run_keeps_its_schedule(data_dir, tmp_path, monkeypatch):
    import functools
    import signal

    from codec.train import loop

    fake = {"t": 0.0}

    def now():  # every reading 0.1 s after the last: a deterministic clock for the loop
        fake["t"] += 0.1
        return fake["t"]

    plain_step = loop.train_step
    calls = []

    def step_with_a_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # as if stopped (SIGSTOP, Ctrl-Z) for 1000 s, then continued
            fake["t"] += 1000.0
            signal.raise_signal(signal.SIGCONT)
        return plain_step(*args, **kwargs)

    monkeypatch.setattr(loop, "TrainingClock", functools.partial(loop.TrainingClock, now=now))
    monkeypatch.setattr(loop, "train_step", step_with_a_stop)
    cfg = TrainConfig(data=str(data_dir), out=str(tmp_path / "run"), steps=6, **TINY)
    cfg.time_budget = 100.0  # the stop alone would have spent it: the run would end at step 2
    state = torch.load(train(cfg, progress=False), weights_only=False)
    assert state["step"] == 6
    assert state["log"]["wall_s"] < 2.0


def test_a_real_stop_is_not_counted(tmp_path):
    import signal
    import time

    script = (
        "import sys, time\n"
        "from codec.train.loop import TrainingClock\n"
        "start = time.monotonic()\n"
        "with TrainingClock() as clock:\n"
        "    print('ready', flush=True)\n"
        "    while time.monotonic() - start < 3.2:\n"
        "        clock.tick()\n"
        "        time.sleep(0.01)\n"
        "    clock.tick()\n"
        "print(clock.total, time.monotonic() - start, flush=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        child.send_signal(signal.SIGSTOP)
        time.sleep(2.0)
        child.send_signal(signal.SIGCONT)
        counted, elapsed = map(float, child.stdout.readline().split())
        assert child.wait(timeout=30) == 0
    finally:
        child.send_signal(signal.SIGCONT)  # never leave a stopped child behind
        child.kill()
        child.wait()
        child.stdout.close()
    assert elapsed > 3.2  # it ran through a stop of 2 s ...
    assert 0.5 < counted < elapsed - 1.6  # ... which the clock did not count, the rest it did


def test_hard_rounding_trains_the_decoder_side_only(data_dir, tmp_path):
    """The last phase keeps the analysis frozen (the latents files will carry) and trains the
    rest; its stage says so in the manifest. The mean-scale model has no such phase."""
    tiny = {**TINY, "M": 192, "architecture": "elic-gain"}
    start = train(TrainConfig(data=str(data_dir), out=str(tmp_path / "a"), steps=2, **tiny), False)
    cfg = TrainConfig(
        data=str(data_dir),
        out=str(tmp_path / "b"),
        steps=3,
        init_from=str(start),
        hard_rounding=True,
        ema=0.0,
        **tiny,
    )
    ckpt = train(cfg, progress=False)
    before = torch.load(start, weights_only=False)["model"]
    after = torch.load(ckpt, weights_only=False)["model"]
    frozen = [k for k in after if k.startswith(("g_a.", "h_a.")) or k == "log_gain"]
    assert len(frozen) > 4 and all(torch.equal(before[k], after[k]) for k in frozen)
    for prefix in ("g_s.", "aggregation.", "entropy_bottleneck.biases", "log_inv_gain"):
        keys = [k for k in after if k.startswith(prefix)]
        assert keys and any(not torch.equal(before[k], after[k]) for k in keys), prefix

    path = export_checkpoint(ckpt, tmp_path / "w", "hard-test")
    stages = json.loads(path.with_suffix(".json").read_text())["stages"]
    assert [s["hard_rounding"] for s in stages] == [False, True]

    msh = TrainConfig(data=str(data_dir), out=str(tmp_path / "c"), steps=1, hard_rounding=True)
    with pytest.raises(codec.CodecError, match="elic-gain"):
        train(msh, progress=False)


def _one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and res.output.count("\n") == 1, res.output
    assert res.output.startswith("lcodec: error: ")
    return res.output


@pytest.mark.parametrize("content", [b"random bytes, not a pickle", None])
def test_export_of_a_file_that_is_no_checkpoint_is_a_one_line_error(tmp_path, content):
    src = tmp_path / "thing.pt"
    if content is None:  # a real torch file, but not a checkpoint
        torch.save({"weights": torch.zeros(2)}, src)
    else:
        src.write_bytes(content)
    res = CliRunner().invoke(
        main, ["export", str(src), "--name", "x", "--out", str(tmp_path / "o")]
    )
    assert "not a training checkpoint" in _one_line_error(res)
    assert not (tmp_path / "o").exists()


def test_training_on_a_folder_without_images_leaves_no_run_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main, ["train", "--data", str(empty), "--steps", "1", "--out", str(out)]
    )
    assert "no training images in" in _one_line_error(res)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["missing", "garbage", "other-network"])
def test_a_bad_init_from_is_a_one_line_error(data_dir, tmp_path, kind):
    src = tmp_path / "init.pt"
    if kind == "garbage":
        src.write_bytes(b"\x00" * 64)
    elif kind == "other-network":
        torch.save({"model": {"g_a.0.weight": torch.zeros(1)}}, src)
    args = ["train", "--data", str(data_dir), "--steps", "1", "--N", "16", "--M", "24"]
    args += [
        "--batch",
        "1",
        "--crop",
        "64",
        "--out",
        str(tmp_path / "run"),
        "--init-from",
        str(src),
    ]
    out = _one_line_error(CliRunner().invoke(main, args))
    expected = {
        "missing": "no such file",
        "garbage": "not a checkpoint or weights file",
        "other-network": "do not fit the network",
    }[kind]
    assert expected in out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--device", "tpu"], "'tpu': use cpu, cuda or cuda:N"),
        (["--ema", "1"], "is not a decay from 0 up to (not including) 1"),
        (["--decay", "nan"], "is not a fraction above 0, at most 1"),
        (["--rate-balance", "-0.5"], "is not a balance from 0 to 1"),
    ],
)
def test_bad_train_option_values_are_usage_errors(data_dir, tmp_path, args, message):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--data", str(data_dir), "--out", str(out), *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not out.exists()
