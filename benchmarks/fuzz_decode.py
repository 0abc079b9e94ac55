"""Fuzz the decoder: every input must decode or raise ``CodecError`` (no other exception, no
crash, no hang).

    python -m benchmarks.fuzz_decode [--runs N] [--engine atheris|random] [--seed S]
        [--crashes DIR] [--timeout SECONDS]

Each input is a file body whose CRC32 is recomputed before decoding, so that mutations get
past the checksum into the parser, the section and stream tables and the entropy decoder; an
input whose stream lengths no longer add up to its size (most insertions and deletions) is
decoded a second time with the last length repaired, so that it reaches the decoder too. The
seeds are small valid files of every kind (RGB, gray, RGBA, version 2 and 1). ``atheris``
(``pip install atheris``) mutates them with coverage guidance from libFuzzer; ``random`` (the
fallback when atheris is missing) applies the same kinds of mutations blindly. Any exception
other than ``CodecError`` is reported, and its input saved under ``--crashes``. At the end:
the number of inputs run, inputs per second, and the failures; exit status 1 if any.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

from .common.cli import Parser, run

PROG = "python -m benchmarks.fuzz_decode"


def seeds() -> list[bytes]:
    """Bodies (files without their CRC) of small valid files of every kind."""
    import numpy as np

    import codec

    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.stack([xx * 5, yy * 7, (xx + yy) * 3], axis=2).astype(np.uint8)
    alpha = ((xx * yy) % 256).astype(np.uint8)
    files = [
        codec.compress(rgb, 60),
        codec.compress(rgb[:, :, 0], 20),
        codec.compress(np.concatenate([rgb, alpha[:, :, None]], axis=2), 90),
        codec.encode(rgb, 50, format_version=2).data,
        codec.encode(rgb[:17, :23], 50, format_version=1).data,
    ]
    return [f[:-4] for f in files]


def with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


def repair(body: bytes) -> bytes | None:
    """``body`` with its last stream length set so that the lengths fill the file, or None.

    Walks the header as docs/FORMAT.md lays it out; anything unexpected gives None.
    """
    from codec.bitstream import _FIXED

    try:
        pos = _FIXED.size + body[38]
        if body[4] >= 3:
            sections = body[pos]
            pos += 1
            for _ in range(sections):
                pos += 5 + int.from_bytes(body[pos + 1 : pos + 5], "big")
            count = int.from_bytes(body[pos : pos + 2], "big")
            pos += 2
        else:
            count = body[pos]
            pos += 1
        if count < 1 or pos + 4 * count > len(body):
            return None
        lengths = [int.from_bytes(body[pos + 4 * i : pos + 4 * i + 4], "big") for i in range(count)]
        last = len(body) - (pos + 4 * count) - sum(lengths[:-1])
        if last < 0 or last == lengths[-1]:
            return None
        at = pos + 4 * (count - 1)
        return body[:at] + last.to_bytes(4, "big") + body[at + 4 :]
    except IndexError:
        return None


class Target:
    """Runs one input and keeps the score: count, time, unexpected exceptions."""

    def __init__(self, crashes: Path, timeout: float):
        import codec

        self.codec = codec
        self.crashes, self.timeout = crashes, timeout
        self.runs, self.decoded, self.refused = 0, 0, 0
        self.failures: list[str] = []
        self.start = time.monotonic()

    def __call__(self, body: bytes) -> None:
        self.runs += 1
        self.one(body)
        fixed = repair(body)
        if fixed is not None:
            self.one(fixed)
        if self.runs % 500 == 0:
            print(self.summary(), file=sys.stderr, flush=True)

    def one(self, body: bytes) -> None:
        t0 = time.monotonic()
        try:
            self.codec.decompress(with_crc(body))
            self.decoded += 1
        except self.codec.CodecError:
            self.refused += 1
        except Exception as e:  # everything else is a bug
            self.fail(body, f"{type(e).__name__}: {e}", traceback.format_exc())
        took = time.monotonic() - t0
        if took > self.timeout:
            self.fail(body, f"slow: {took:.1f} s", "")

    def fail(self, body: bytes, what: str, trace: str) -> None:
        self.crashes.mkdir(parents=True, exist_ok=True)
        path = self.crashes / f"input-{len(self.failures):04d}.lcz"
        path.write_bytes(with_crc(body))
        self.failures.append(f"{what} ({path})")
        print(f"{PROG}: FAILURE {what}\n{trace}", file=sys.stderr, flush=True)

    def summary(self) -> str:
        secs = time.monotonic() - self.start
        return (
            f"{self.runs} inputs in {secs:.1f} s ({self.runs / max(secs, 1e-9):.1f}/s): "
            f"{self.decoded + self.refused} decodes ({self.decoded} to a picture, "
            f"{self.refused} refused with CodecError), "
            f"{len(self.failures)} failures"
        )


def mutate(rng: random.Random, body: bytes, pool: list[bytes]) -> bytes:
    """One to four random edits of the kinds a damaged or forged file has."""
    b = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b = bytearray(rng.choice(pool))
        pos = rng.randrange(len(b))
        kind = rng.randrange(7)
        if kind == 0:
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b[pos : pos + 4] = rng.randbytes(rng.randint(1, 4))
        elif kind == 2:
            del b[pos:]
        elif kind == 3:
            b += rng.randbytes(rng.randint(1, 64))
        elif kind == 4:
            del b[pos : pos + rng.randint(1, 32)]
        elif kind == 5 and len(b) > 5:
            b[rng.randrange(4, min(len(b), 48))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        elif kind == 6:
            other = rng.choice(pool)
            cut = rng.randrange(len(other))
            b = b[:pos] + other[cut:]
    return bytes(b)


def run_random(target: Target, pool: list[bytes], runs: int, seed: int) -> None:
    rng = random.Random(seed)
    for body in pool:
        target(body)
    while target.runs < runs:
        target(mutate(rng, rng.choice(pool), pool))


def run_atheris(target: Target, pool: list[bytes], runs: int, seed: int, timeout: float) -> None:
    import atheris

    corpus = Path(tempfile.mkdtemp(prefix="lcz-corpus-"))
    for i, body in enumerate(pool):
        (corpus / f"seed{i}").write_bytes(body)
    args = [
        sys.argv[0],
        f"-runs={runs + len(pool) + 16}",  # an upper bound: ``one`` ends the run at ``runs``
        f"-seed={seed}",
        f"-timeout={int(timeout) + 1}",
        "-rss_limit_mb=4096",
        f"-max_len={max(map(len, pool)) * 2}",
        str(corpus),
    ]

    def one(data: bytes) -> None:
        target(data)
        if target.runs >= runs:  # libFuzzer never returns: report and leave here
            sys.stdout.flush()
            os._exit(report(target))

    atheris.Setup(args, one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog=PROG, description="Fuzz lcodec's decoder.")
    p.add_argument("--runs", type=int, default=2000, help="inputs to run (default 2000)")
    p.add_argument("--engine", choices=("atheris", "random"), default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crashes", default="fuzz-crashes", help="where failing inputs are saved")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    args = p.parse_args(argv)
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    if engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["codec"]):
            import codec  # noqa: F401
    pool = seeds()
    target = Target(Path(args.crashes), args.timeout)
    print(f"{PROG}: engine {engine}, {len(pool)} seeds, {args.runs} runs", flush=True)
    if engine == "atheris":
        run_atheris(target, pool, args.runs, args.seed, args.timeout)
    else:
        run_random(target, pool, args.runs, args.seed)
    return report(target)


def report(target: Target) -> int:
    """Print the summary and the failures; the exit status."""
    print(target.summary(), flush=True)
    for f in target.failures:
        print(f"  {f}", flush=True)
    return 1 if target.failures else 0


if __name__ == "__main__":
    sys.exit(run(PROG, main, None))
