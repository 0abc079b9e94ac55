"""RD plots: live curves solid with markers, published curves dashed and labelled as such."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pts = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_rd(curves: Sequence, metric: str, path: str | Path, title: str = "") -> bool:
    """Plot ``metric`` ('psnr' or 'ms_ssim_db') against bpp; False when no curve has data.

    The x range follows the live curves (published ones are clipped to it) so that a long
    published sweep does not squeeze what this run measured.
    """
    ylabel = {"psnr": "PSNR-RGB (dB)", "ms_ssim_db": "MS-SSIM (dB, -10 log10(1 - MS-SSIM))"}
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    # Separate palettes, so a published curve never shares a colour with a live one.
    live_colors = iter(plt.get_cmap("tab10").colors * 3)
    published_colors = iter(plt.get_cmap("Dark2").colors * 3)
    drawn, live_max = 0, 0.0
    for c in curves:
        x, y = _finite(c.bpp, getattr(c, metric))
        if not x:
            continue
        if c.published:
            style = {"linestyle": "--", "alpha": 0.85, "color": next(published_colors)}
        else:
            style = {"marker": "o", "markersize": 4, "color": next(live_colors)}
        ax.plot(x, y, label=c.display, linewidth=1.5, **style)
        drawn += 1
        if not c.published:
            live_max = max(live_max, max(x))
    if live_max > 0:
        ax.set_xlim(0, live_max * 1.1)
        ax.autoscale(axis="y")
        _fit_y_to_xlim(ax)
    return _finish(fig, ax, drawn, path, title, "bits per pixel (whole file)", ylabel[metric])


def _finish(fig, ax, drawn: int, path: str | Path, title: str, xlabel: str, ylabel: str) -> bool:
    """Labels, legend beside the axes (or a note when nothing was drawn), PNG; False if empty."""
    if drawn == 0:
        ax.text(0.5, 0.5, "no data (see rd.json)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return drawn > 0


def _fit_y_to_xlim(ax) -> None:
    """Set the y range from the points inside the visible x range."""
    x0, x1 = ax.get_xlim()
    ys = [
        y
        for line in ax.get_lines()
        for x, y in zip(line.get_xdata(), line.get_ydata())
        if x0 <= x <= x1
    ]
    if ys:
        lo, hi = min(ys), max(ys)
        pad = 0.05 * (hi - lo) or 1.0
        ax.set_ylim(lo - pad, hi + pad)


def plot_by_level(by_level: dict, path: str | Path, title: str = "") -> bool:
    """The subject's extra bits against each codec at each PSNR (``bdrate.bd_by_level``), a
    line per codec around zero; False when there is nothing to draw."""
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    colors = iter(plt.get_cmap("tab10").colors * 3)
    drawn = 0
    for r in by_level["rows"]:
        x, y = _finite(by_level["levels"], r["percent"])
        if not x:
            continue
        ax.plot(x, y, marker="o", markersize=4, linewidth=1.5, label=r["label"], color=next(colors))
        drawn += 1
    ax.axhline(0.0, color="black", linewidth=0.8)
    ylabel = f"% more bits {by_level['subject_label']} spends (negative: fewer)"
    return _finish(fig, ax, drawn, path, title, "PSNR-RGB (dB)", ylabel)
