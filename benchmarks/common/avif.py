"""Which AVIF the RD harness compares against: the stronger of its two measured settings.

``avif`` is the quick setting (speed 6, 4:2:0) and ``avif-s2-444`` the one a quality-minded
user would run (speed 2, 4:4:4). When a run measured both, its BD-rate tables and plots carry
one AVIF curve, keyed ``avif`` and labelled with its settings: ``avif-s2-444`` when its BD-rate
(PSNR-RGB) against ``avif`` over the two curves' shared PSNR range is negative, that is when it
needs fewer bits for the same PSNR, and ``avif`` otherwise, including when that BD-rate is
undefined (curves without overlap). rd.json and rd.csv keep both curves under their own names.
"""

from __future__ import annotations

import math

from .bdrate import bd_rate
from .curves import live_curve

FAST = "avif"
SLOW = "avif-s2-444"
VARIANTS = (FAST, SLOW)
#: The key of the chosen AVIF curve in the BD-rate tables and plots.
ROLE = "avif"

RULE = (
    f"When both AVIF settings ran, the AVIF of the BD-rate tables and plots (key {ROLE!r}) is "
    f"{SLOW} if its BD-rate (PSNR-RGB) against {FAST} over the shared PSNR range is negative "
    f"(fewer bits for the same PSNR), otherwise {FAST} (also when that BD-rate is undefined). "
    "rd.json and rd.csv keep both curves under their own names."
)


def settings_label(settings: dict) -> str:
    """``AVIF (speed S, 4:x:x)`` from an AVIF adapter's settings."""
    return f"AVIF (speed {settings['speed']}, {settings['subsampling']})"


def _bd(anchor, test, method: str) -> dict:
    psnr = bd_rate(anchor.bpp, anchor.psnr, test.bpp, test.psnr, method, " dB")
    msssim = bd_rate(anchor.bpp, anchor.ms_ssim_db, test.bpp, test.ms_ssim_db, method, " dB")
    return {
        "bd_rate_psnr_percent": psnr.value,
        "bd_rate_ms_ssim_percent": msssim.value,
        "notes": [f"PSNR: {n}" for n in psnr.notes] + [f"MS-SSIM: {n}" for n in msssim.notes],
    }


def choose(results: dict, method: str = "akima") -> dict | None:
    """The choice between the two AVIF settings of ``results`` (rd.json's ``codecs``).

    None unless both have results. Otherwise a record of both settings, the rule, which one was
    kept, and the BD-rates of each against the other: ``kept_against_other`` is negative by
    as much as the kept setting saves (for the same quality) over the one left out.
    """
    if not all(n in results for n in VARIANTS):
        return None
    fast, slow = (live_curve(n, results[n]) for n in VARIANTS)
    slow_vs_fast = _bd(fast, slow, method)
    fast_vs_slow = _bd(slow, fast, method)
    value = slow_vs_fast["bd_rate_psnr_percent"]
    kept = SLOW if math.isfinite(value) and value < 0 else FAST
    return {
        "rule": RULE,
        "variants": {
            n: {"label": results[n]["label"], "settings": results[n]["settings"]} for n in VARIANTS
        },
        "kept": kept,
        "compared_as": ROLE,
        "label": settings_label(results[kept]["settings"]),
        "interpolation": method,
        f"{SLOW}_against_{FAST}": slow_vs_fast,
        "kept_against_other": slow_vs_fast if kept == SLOW else fast_vs_slow,
    }


def compared(results: dict, choice: dict | None) -> dict:
    """``results`` with the two AVIF entries replaced by the kept one, keyed ``ROLE``.

    Without a choice (``None``: fewer than two AVIF settings ran) ``results`` is returned as is.
    The kept entry takes the first AVIF entry's place and the choice's label.
    """
    if not choice:
        return results
    out = {}
    for key, entry in results.items():
        if key not in VARIANTS:
            out[key] = entry
        elif ROLE not in out:
            out[ROLE] = {**results[choice["kept"]], "label": choice["label"]}
    return out


def _pct(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:+.1f} %"


def markdown(choice: dict) -> str:
    """A short Markdown section saying which AVIF the tables use and by how much it won."""
    bd = choice[f"{SLOW}_against_{FAST}"]
    fast, slow = (settings_label(choice["variants"][n]["settings"]) for n in VARIANTS)
    notes = f" ({'; '.join(bd['notes'])})" if bd["notes"] else ""
    return (
        "\n## Which AVIF\n\n"
        f"The AVIF rows and curves are **{choice['label']}** (`{choice['kept']}`). "
        f"{slow} against {fast}: BD-rate {_pct(bd['bd_rate_psnr_percent'])} (PSNR), "
        f"{_pct(bd['bd_rate_ms_ssim_percent'])} (MS-SSIM){notes}. {choice['rule']}\n"
    )
