"""Start-up: what the first image costs a new process, the command's way and the library's.

Each round runs three processes one after the other, and takes each one's wall time and peak
RSS (``ru_maxrss`` of that child, from ``wait4``):

    python -c "import torch"                                   # the floor
    python -m codec compress IMAGE -o TMP.lcz --force          # the lcodec command
    python -c "import codec; codec.compress(IMAGE)"            # the library

Medians over the rounds, and the library's time over the command's per round (the figure
to read on a machine that is busy with other work). Then two more processes split the
library's start-up into stages, timed in turn with the peak RSS after each: once as
``import codec`` arranges CompressAI's import (codec/startup.py), once importing CompressAI
before lcodec, which leaves it whole.

    python -m benchmarks.startup --image PHOTO [--rounds 5] [--json OUT.json]

Run it from a shell, not from a large Python process: Linux carries a parent's peak RSS into
its child's ``ru_maxrss`` through fork and exec.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from codec.hardware import cpu_model

from .common.cli import Parser, UsageError, run
from .common.jsonutil import write_json

PROG = "python -m benchmarks.startup"
#: ``ru_maxrss`` is in KiB on Linux and in bytes on macOS.
RSS_UNIT = 1 if sys.platform == "darwin" else 1024

#: Run as ``python -c STAGES IMAGE QUALITY WHOLE``: times each stage of a library process.
STAGES = """
import json, resource, sys, time
image, quality, whole = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
rows, last = [], time.perf_counter()
def stage(name):
    global last
    now = time.perf_counter()
    rows.append([name, now - last, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss])
    last = now
if whole:
    import torch
    stage("import torch")
    import compressai
    stage("import compressai (whole)")
    import codec
    stage("import codec")
else:
    import codec
    stage("import codec")
    import torch
    stage("import torch")
    import compressai
    stage("import compressai (as codec arranges)")
import codec.api
stage("rest of codec.api (lcodec's modules)")
codec.load_model()
stage("load the weights")
codec.compress(image, quality=quality)
stage("first compress")
print(json.dumps(rows))
"""


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="First-image start-up of the lcodec command and library.")
    p.add_argument("--image", required=True, help="the photo to compress (e.g. a 768x512 PNG)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the three processes (5)")
    p.add_argument("--quality", type=float, default=50.0, help="lcodec quality (default 50)")
    p.add_argument("--json", default=None, help="also write the results here")
    return p


def measure(argv: Sequence[str], label: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes and standard output of one process run to its end."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            lines = err.read().decode(errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"exit status {proc.returncode}"
            raise UsageError(f"{label} failed: {why}")
        return wall, usage.ru_maxrss * RSS_UNIT, out.read().decode()


def commands(image: str, quality: float, out: str, py: str = sys.executable) -> dict:
    """The three processes of a round, by the name the report gives them."""
    q = f"{quality:g}"
    lib = f"import codec; codec.compress({json.dumps(image)}, quality={quality:g})"
    return {
        "import torch": [py, "-c", "import torch"],
        "lcodec compress": [py, "-m", "codec", "compress", image, "-o", out, "-q", q, "--force"],
        "library": [py, "-c", lib],
    }


def stages(image: str, quality: float, whole: bool) -> list[dict]:
    """The library's start-up split into stages, in one process."""
    argv = [sys.executable, "-c", STAGES, image, str(quality), "1" if whole else "0"]
    _, _, out = measure(argv, "the stages process")
    rows = json.loads(out.strip().splitlines()[-1])
    return [{"stage": n, "s": s, "peak_rss_mib": rss * RSS_UNIT / 2**20} for n, s, rss in rows]


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.image).is_file():
        raise UsageError(f"image not found: {args.image}")
    if args.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    if not hasattr(os, "wait4"):
        raise UsageError("needs os.wait4 (Linux or macOS) for each process's peak RSS")
    image = str(Path(args.image).resolve())
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        todo = commands(image, args.quality, str(Path(tmp, "out.lcz")))
        python = [sys.executable, "-c", "pass"]
        python_s = [measure(python, "python")[0] for _ in range(args.rounds)]
        for _ in range(args.rounds):
            for name, cmd in todo.items():
                wall, rss, _ = measure(cmd, name)
                runs.setdefault(name, []).append({"s": wall, "peak_rss_mib": rss / 2**20})
    shown = commands("IMAGE", args.quality, "OUT.lcz", py="python")
    summary = {
        name: {
            "s": statistics.median(r["s"] for r in rows),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rows),
            "command": shlex.join(shown[name]),
        }
        for name, rows in runs.items()
    }
    ratios = [lib["s"] / cli["s"] for lib, cli in zip(runs["library"], runs["lcodec compress"])]
    report = {
        "image": Path(args.image).name,
        "quality": args.quality,
        "rounds": args.rounds,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python_startup_s": statistics.median(python_s),
        "processes": summary,
        "library_over_command": {"median": statistics.median(ratios), "rounds": ratios},
        "runs": runs,
        "stages": {
            "deferred": stages(image, args.quality, False),
            "whole": stages(image, args.quality, True),
        },
        "timing": "wall seconds of each process from start to exit; peak RSS is its ru_maxrss",
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(report, args.json)
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    """The report as the tables docs/STARTUP.md shows."""
    torch = report["processes"]["import torch"]
    lines = [
        f"{report['image']}, quality {report['quality']:g}, median of {report['rounds']} rounds; "
        f"{report['cpu']}, {report['cpus']} CPUs",
        "",
        "| process | wall s | × import torch | peak RSS MiB | × import torch |",
        "|---|---:|---:|---:|---:|",
    ]
    for p in report["processes"].values():
        lines.append(
            f"| `{p['command']}` | {p['s']:.2f} | {p['s'] / torch['s']:.2f} | "
            f"{p['peak_rss_mib']:.0f} | {p['peak_rss_mib'] / torch['peak_rss_mib']:.2f} |"
        )
    ratio = report["library_over_command"]
    each = ", ".join(f"{r:.2f}" for r in ratio["rounds"])
    lines += ["", f"library / command: {ratio['median']:.2f}× (rounds: {each})", ""]
    lines.append(f"Python's own start-up: {report['python_startup_s']:.2f} s")
    for kind, rows in report["stages"].items():
        lines += ["", f"| stage ({kind}) | s | peak RSS MiB after |", "|---|---:|---:|"]
        lines += [f"| {r['stage']} | {r['s']:.2f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
