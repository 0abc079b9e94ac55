"""Bjontegaard-delta rates between RD curves, tolerant of the curves real sweeps produce.

Points with a missing metric are dropped, and a point that does not improve quality over a
cheaper one is dropped too, since BD interpolation needs quality strictly increasing with rate.
When the two curves share no quality range the result is NaN with a note instead of an error;
a partial overlap is computed over the shared range and noted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Below this share of the joint quality range, a BD value is reported with a warning note.
MIN_OVERLAP = 0.5


@dataclass
class BDResult:
    """A BD-rate in percent (negative: fewer bits for the same quality) and why it may be NaN."""

    value: float
    notes: list[str] = field(default_factory=list)


def monotone_curve(rate: Sequence[float], dist: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite points sorted by rate, keeping only those that raise quality over all cheaper ones."""
    pts = sorted(
        (float(r), float(d))
        for r, d in zip(rate, dist)
        if r is not None and d is not None and math.isfinite(r) and r > 0 and math.isfinite(d)
    )
    keep: list[tuple[float, float]] = []
    for r, d in pts:
        if not keep or (d > keep[-1][1] and r > keep[-1][0]):
            keep.append((r, d))
    return np.array([p[0] for p in keep]), np.array([p[1] for p in keep])


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_dist: Sequence[float],
    test_rate: Sequence[float],
    test_dist: Sequence[float],
    method: str = "akima",
    unit: str = "",
) -> BDResult:
    """BD-rate of ``test`` against ``anchor`` with the ``bjontegaard`` package's interpolation."""
    import bjontegaard

    ar, ad = monotone_curve(anchor_rate, anchor_dist)
    tr, td = monotone_curve(test_rate, test_dist)
    for who, (r, given) in {"anchor": (ar, anchor_dist), "test": (tr, test_dist)}.items():
        if not any(d is not None and math.isfinite(d) for d in given):
            return BDResult(math.nan, [f"no values for the {who}"])
        if len(r) < 2:
            return BDResult(math.nan, [f"{who} has fewer than 2 usable points"])
    lo, hi = max(ad.min(), td.min()), min(ad.max(), td.max())
    span = max(ad.max(), td.max()) - min(ad.min(), td.min())
    if hi <= lo:
        return BDResult(
            math.nan,
            [
                (
                    f"no overlap in quality (anchor {ad.min():.2f}-{ad.max():.2f}{unit}, "
                    f"test {td.min():.2f}-{td.max():.2f}{unit})"
                )
            ],
        )
    notes = []
    overlap = (hi - lo) / span
    if overlap < MIN_OVERLAP:
        notes.append(
            f"curves overlap on {overlap:.0%} of the quality range ({lo:.2f}-{hi:.2f}{unit})"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = bjontegaard.bd_rate(
            ar, ad, tr, td, method=method, require_matching_points=False, min_overlap=0
        )
    return BDResult(float(value), notes)


DEFINITION = (
    "Bjontegaard-delta rate in percent: the average change in bits for equal quality "
    "over the shared quality range; negative means fewer bits than the anchor. "
    "MS-SSIM is taken in dB, -10*log10(1 - MS-SSIM)."
)


def between(anchor: dict, test: dict) -> dict[str, float]:
    """BD-rate (percent) of ``test`` against ``anchor``, curves as dicts of ``bpp``, ``psnr``
    and ``ms_ssim_db`` lists, for PSNR and MS-SSIM."""
    return {
        metric: bd_rate(anchor["bpp"], anchor[metric], test["bpp"], test[metric]).value
        for metric in ("psnr", "ms_ssim_db")
    }


#: The per-image keys of each metric, and how tables name them.
METRICS = {"psnr": "PSNR", "ms_ssim": "MS-SSIM"}


def _row(anchor, test, method: str, named) -> dict:
    """BD-rates of ``test`` against ``anchor`` in PSNR and MS-SSIM dB, labelled by ``named``."""
    psnr = bd_rate(anchor.bpp, anchor.psnr, test.bpp, test.psnr, method, " dB")
    msssim = bd_rate(anchor.bpp, anchor.ms_ssim_db, test.bpp, test.ms_ssim_db, method, " dB")
    return {
        "codec": named.key,
        "label": named.display,
        "published": named.published,
        "bd_rate_psnr_percent": psnr.value,
        "bd_rate_ms_ssim_percent": msssim.value,
        "notes": [f"PSNR: {n}" for n in psnr.notes] + [f"MS-SSIM: {n}" for n in msssim.notes],
    }


def bd_table(curves: Sequence, anchor_key: str, method: str = "akima") -> dict:
    """BD-rates (PSNR and MS-SSIM in dB) of every curve against the one keyed ``anchor_key``.

    ``curves`` are ``benchmarks.common.curves.Curve`` objects, live and published alike.
    """
    anchor = next(c for c in curves if c.key == anchor_key)
    rows = [_row(anchor, c, method, c) for c in curves if c.key != anchor_key]
    return {
        "anchor": anchor.key,
        "anchor_label": anchor.display,
        "anchor_published": anchor.published,
        "interpolation": method,
        "definition": DEFINITION,
        "rows": rows,
    }


def bd_versus(curves: Sequence, subject_key: str, method: str = "akima") -> dict:
    """BD-rates of the curve keyed ``subject_key`` against each other live curve in turn.

    This is the question a user asks of one codec ("how many bits does it save over WebP, over
    AVIF?"); published curves are left out because they come from another dataset.
    """
    subject = next(c for c in curves if c.key == subject_key)
    rows = [_row(c, subject, method, c) for c in curves if c.key != subject_key and not c.published]
    return {
        "subject": subject.key,
        "subject_label": subject.display,
        "interpolation": method,
        "definition": DEFINITION,
        "rows": rows,
    }


def bd_per_image(
    curves_by_image: dict[str, Sequence], subject_key: str, method: str = "akima"
) -> dict:
    """:func:`bd_versus` on each image's own curves, plus per anchor and metric the median over
    images and how many images the subject needs fewer bits on.

    A BD-rate of mean curves is dominated by the images where the codecs differ most; the
    per-image values and their median show how typical that is, and which images lose.
    """
    images = []
    for name, curves in curves_by_image.items():
        if not any(c.key == subject_key for c in curves):
            continue
        rows = bd_versus(curves, subject_key, method)["rows"]
        images.append({"image": name, "rows": rows})
    labels = {r["codec"]: r["label"] for e in images for r in e["rows"]}
    result: dict = {"labels": labels, "images": images}
    for metric in METRICS:
        median, fewer = {}, {}
        for key in labels:
            values = [
                r[f"bd_rate_{metric}_percent"]
                for e in images
                for r in e["rows"]
                if r["codec"] == key and math.isfinite(r[f"bd_rate_{metric}_percent"])
            ]
            median[key] = float(np.median(values)) if values else math.nan
            fewer[key] = [sum(v < 0 for v in values), len(values)]
        result[f"median_{metric}_percent"] = median
        result[f"fewer_bits_{metric}"] = fewer  # [images where the subject needs fewer, of]
    return result


def rate_gap(
    anchor_rate: Sequence[float],
    anchor_dist: Sequence[float],
    test_rate: Sequence[float],
    test_dist: Sequence[float],
    level: float,
) -> float:
    """Percent more bits ``test`` spends than ``anchor`` at quality ``level``, NaN outside
    either curve. Each curve is read piecewise linearly in log-rate between its measured
    points: a BD-rate averages this over the shared range, and where it comes from is the
    question this answers."""
    ar, ad = monotone_curve(anchor_rate, anchor_dist)
    tr, td = monotone_curve(test_rate, test_dist)
    if len(ar) < 2 or len(tr) < 2:
        return math.nan
    if not (ad[0] <= level <= ad[-1] and td[0] <= level <= td[-1]):
        return math.nan
    ra = np.exp(np.interp(level, ad, np.log(ar)))
    rt = np.exp(np.interp(level, td, np.log(tr)))
    return float(100.0 * (rt / ra - 1.0))


def bd_by_level(curves: Sequence, subject_key: str, step: float = 1.0) -> dict:
    """:func:`rate_gap` of the subject against each other live curve, in PSNR, at every
    ``step`` dB across the subject's own range."""
    subject = next(c for c in curves if c.key == subject_key)
    _, sd = monotone_curve(subject.bpp, subject.psnr)
    levels: list[float] = []
    if len(sd):
        first = math.ceil(sd[0] / step) * step
        levels = [float(v) for v in np.arange(first, sd[-1] + 1e-9, step)]
    rows = [
        {
            "codec": c.key,
            "label": c.display,
            "percent": [rate_gap(c.bpp, c.psnr, subject.bpp, subject.psnr, v) for v in levels],
        }
        for c in curves
        if c.key != subject_key and not c.published
    ]
    return {
        "subject": subject.key,
        "subject_label": subject.display,
        "levels": levels,
        "rows": rows,
    }


def _pct(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:+.1f} %"


def _rows_markdown(rows: list[dict], first: str) -> list[str]:
    lines = [f"| {first} | BD-rate (PSNR) | BD-rate (MS-SSIM) | notes |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['label']} | {_pct(r['bd_rate_psnr_percent'])} | "
            f"{_pct(r['bd_rate_ms_ssim_percent'])} | {'; '.join(r['notes'])} |"
        )
    return lines


def table_markdown(
    table: dict,
    versus: dict | None = None,
    per_image: dict | None = None,
    by_level: dict | None = None,
) -> str:
    """The BD table as Markdown, with published rows marked and NaN entries explained.

    With ``versus`` (from :func:`bd_versus`), a second section reads the other way round:
    the subject codec against each live codec as the anchor; with ``by_level`` (from
    :func:`bd_by_level`), the same at each PSNR; with ``per_image`` (from
    :func:`bd_per_image`), per image in each metric, worst first, with the median and the
    count of images where the subject needs fewer bits.
    """
    lines = [
        f"# BD-rate against {table['anchor_label']}",
        "",
        f"{table['definition']} Interpolation: {table['interpolation']}.",
        (
            "Rows marked (published) are figures from the anchors file, not measured in this "
            "run; they compare only when this run used the same dataset."
        ),
        "",
        *_rows_markdown(table["rows"], "codec"),
    ]
    if versus is not None and versus["rows"]:
        lines += [
            "",
            f"# {versus['subject_label']} against each codec",
            "",
            (
                f"BD-rate of {versus['subject_label']} with each live codec of this run as the "
                "anchor; negative means "
                f"{versus['subject_label']} needs fewer bits for the same quality."
            ),
            "",
            *_rows_markdown(versus["rows"], "anchor"),
        ]
    if versus is not None and by_level and by_level["levels"] and by_level["rows"]:
        lines += ["", *_by_level_markdown(by_level)]
    if versus is not None and per_image and per_image["images"] and per_image["labels"]:
        for metric in METRICS:
            lines += ["", *_per_image_markdown(per_image, versus["subject_label"], metric)]
    return "\n".join(lines) + "\n"


def _per_image_markdown(per_image: dict, subject: str, metric: str) -> list[str]:
    keys = list(per_image["labels"])
    sort_key = keys[-1] if "avif" not in keys else "avif"

    def value(entry: dict, key: str) -> float:
        row = next((r for r in entry["rows"] if r["codec"] == key), None)
        return math.nan if row is None else row[f"bd_rate_{metric}_percent"]

    def fewer(key: str) -> str:
        count = per_image[f"fewer_bits_{metric}"][key]
        return f"{count[0]} of {count[1]}"

    def order(entry: dict) -> float:
        v = value(entry, sort_key)
        return -v if math.isfinite(v) else math.inf

    lines = [
        f"## {subject} against each codec, per image ({METRICS[metric]})",
        "",
        (
            f"The same BD-rate on each image's own curves, images sorted by the "
            f"{per_image['labels'][sort_key]} column, worst first; n/a where the curves do not "
            "overlap. The median row is the typical image, where the table above weighs the "
            f"images that differ most; the next row counts the images where {subject} needs "
            "fewer bits."
        ),
        "",
        "| image | " + " | ".join(per_image["labels"][k] for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
        "| **median** | "
        + " | ".join(f"**{_pct(per_image[f'median_{metric}_percent'][k])}**" for k in keys)
        + " |",
        "| **fewer bits** | " + " | ".join(fewer(k) for k in keys) + " |",
    ]
    for entry in sorted(per_image["images"], key=order):
        cells = " | ".join(_pct(value(entry, k)) for k in keys)
        lines.append(f"| {entry['image']} | {cells} |")
    return lines


def _by_level_markdown(by_level: dict) -> list[str]:
    subject = by_level["subject_label"]
    levels = by_level["levels"]
    lines = [
        f"## {subject} against each codec, by PSNR",
        "",
        (
            f"Percent more bits {subject} spends than each codec for the same PSNR (negative: "
            "fewer), each curve read linearly in log-rate between its measured points; n/a "
            "outside either curve. The BD-rate above is about the average of a row."
        ),
        "",
        "| anchor | " + " | ".join(f"{v:g} dB" for v in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    for r in by_level["rows"]:
        lines.append(f"| {r['label']} | " + " | ".join(_pct(v) for v in r["percent"]) + " |")
    return lines
