"""Training progress: how the shipped weights' BD-rates moved with training time.

Each validation report adds one entry per weights file (keyed by its sha256) to a history:
cumulative training steps and hours from the weights' manifest, and lcodec's BD-rates against
each live codec of ``rd.json``. The plot draws those BD-rates against training hours next to the
release targets, so whether the trend is heading for them can be seen at a glance.

    python -m benchmarks.progress --rd RD.json --manifest WEIGHTS.json --history OUT.json
        [--plot OUT.png]
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from .common.avif import compared
from .common.bdrate import DEFINITION, bd_versus
from .common.cli import Parser, UsageError, require, run
from .common.curves import SUBJECT, live_curve, sibling
from .common.jsonutil import write_json

PROG = "python -m benchmarks.progress"
#: Release targets: lcodec's BD-rate (PSNR) against these codecs must be at or below these.
TARGETS = {"jpeg": -45.0, "webp": -20.0, "avif": 0.0}


def _read_json(path: str, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {what} {path}: {e}") from None


def entry_from(rd: dict, manifest: dict) -> dict:
    """One history entry: the weights' training totals and lcodec's BD-rates in ``rd``."""
    codecs = compared(rd.get("codecs", {}), rd.get("avif"))  # the AVIF of rd's tables
    codecs = {k: v for k, v in codecs.items() if not sibling(k)}
    if SUBJECT not in codecs:
        raise UsageError("rd.json has no lcodec curve")
    measured = codecs[SUBJECT].get("settings", {}).get("sha256")
    if measured and measured != manifest.get("sha256"):
        raise UsageError(
            f"rd.json was measured with weights {measured[:16]}, "
            f"the manifest describes {str(manifest.get('sha256'))[:16]}"
        )
    try:
        curves = [live_curve(key, entry) for key, entry in codecs.items()]
    except (KeyError, TypeError) as e:
        raise UsageError(f"rd.json has a malformed curve ({e})") from None
    versus = bd_versus(curves, SUBJECT)
    lcodec = next(c for c in curves if c.key == SUBJECT)
    return {
        "sha256": manifest.get("sha256"),
        "exported": manifest.get("exported"),
        "steps": manifest.get("total_steps", manifest.get("steps")),
        "hours": manifest.get("total_wall_s", manifest.get("wall_s", math.nan)) / 3600,
        "stages": len(manifest.get("stages", [])) or 1,
        "hardware": manifest.get("hardware"),
        "bpp_range": [min(lcodec.bpp), max(lcodec.bpp)],
        "psnr_range": [min(lcodec.psnr), max(lcodec.psnr)],
        "bd_rate_psnr_percent": {r["codec"]: r["bd_rate_psnr_percent"] for r in versus["rows"]},
        "bd_rate_ms_ssim_percent": {
            r["codec"]: r["bd_rate_ms_ssim_percent"] for r in versus["rows"]
        },
        "labels": {r["codec"]: r["label"] for r in versus["rows"]},
    }


def merge(history: list[dict], entry: dict) -> list[dict]:
    """``history`` with ``entry`` added, replacing one for the same weights, by training time."""
    kept = [e for e in history if e.get("sha256") != entry.get("sha256")]
    return sorted(kept + [entry], key=lambda e: (e["hours"], e["steps"] or 0))


def series(history: list[dict]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """BD-rate (PSNR) points by training hours, one series per codec *and* label: a codec key
    whose setting changed between reports (the AVIF kept for the tables went from speed 6 to
    speed 2 with 4:4:4) starts a new series instead of joining two different anchors."""
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for e in history:
        for key, value in e["bd_rate_psnr_percent"].items():
            if value is not None and math.isfinite(value):
                label = e.get("labels", {}).get(key, key)
                out.setdefault((key, label), []).append((e["hours"], value))
    return out


def plot_progress(history: list[dict], path: str | Path) -> None:
    """BD-rate (PSNR) against training hours per codec, each target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = iter(plt.get_cmap("tab10").colors * 3)
    lines = series(history)
    order = sorted(
        lines,
        key=lambda kl: (
            kl[0] not in TARGETS,
            list(TARGETS).index(kl[0]) if kl[0] in TARGETS else 0,
        ),
    )
    targets_drawn = set()
    for key, label in order:
        pts = lines[(key, label)]
        color = next(colors)
        faint = key not in TARGETS
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker="o",
            markersize=4,
            color=color,
            alpha=0.4 if faint else 1.0,
            linewidth=1 if faint else 1.8,
            label=f"against {label}",
        )
        if key in TARGETS and key not in targets_drawn:
            targets_drawn.add(key)
            ax.axhline(TARGETS[key], color=color, linestyle="--", linewidth=1)
            ax.annotate(
                f"{label} target {TARGETS[key]:+.0f} %",
                (0, TARGETS[key]),
                xycoords=("axes fraction", "data"),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("cumulative training time of the shipped weights (hours)")
    ax.set_ylabel("lcodec BD-rate, PSNR (%; below 0 = fewer bits)")
    ax.set_title("lcodec against each codec, by training time (validation photos)")
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--rd", required=True, help="rd.json of a benchmarks.rd run that ran lcodec")
    p.add_argument("--manifest", required=True, help="the JSON manifest of the weights measured")
    p.add_argument("--history", required=True, help="history JSON to update (created if missing)")
    p.add_argument("--plot", default=None, help="write the progress plot (PNG) here")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    require("bjontegaard", "matplotlib")
    entry = entry_from(_read_json(args.rd, "rd.json"), _read_json(args.manifest, "manifest"))
    history_path = Path(args.history)
    history = []
    if history_path.exists():
        history = _read_json(args.history, "history").get("entries", [])
    history = merge(history, entry)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        {"definition": DEFINITION, "targets_psnr_percent": TARGETS, "entries": history},
        history_path,
    )
    if args.plot:
        plot_progress(history, args.plot)
    bd = entry["bd_rate_psnr_percent"]
    shown = ", ".join(f"{k} {bd[k]:+.1f} %" for k in TARGETS if bd.get(k) is not None)
    print(f"{entry['hours']:.1f} h, {entry['steps']} steps: {shown}; {len(history)} entries")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad input)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
