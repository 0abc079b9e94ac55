"""Command-line plumbing shared by the harnesses: one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

#: Modules the harnesses import from the ``bench`` extra of setup.py, by distribution name.
BENCH_MODULES = {"bjontegaard": "bjontegaard", "matplotlib": "matplotlib", "psutil": "psutil"}
INSTALL_BENCH = 'pip install -e ".[bench]"'


class UsageError(Exception):
    """A bad argument or input folder; reported on one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but its own errors are one line too (no usage dump)."""

    def error(self, message: str):
        raise UsageError(message)


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Call ``main`` and turn a ``UsageError`` into ``prog: error: message`` and status 2."""
    try:
        return main(argv)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # one that ``require`` was not told of
        if (e.name or "").partition(".")[0] not in BENCH_MODULES:
            raise
        print(f"{prog}: error: {_missing([e.name])}", file=sys.stderr)
        return 2


def require(*modules: str) -> None:
    """Stop before any work when a module of the bench extra is missing, saying how to get it."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(_missing(missing))


def _missing(modules: Sequence[str]) -> str:
    names = ", ".join(modules)
    return f"{names} not installed: the benchmarks need the bench extra ({INSTALL_BENCH})"


def warn(prog: str, message: str) -> None:
    """A one-line warning on stderr that does not break a running progress bar."""
    from tqdm import tqdm

    tqdm.write(f"{prog}: warning: {message}", file=sys.stderr)


def floats(text: str, name: str) -> list[float]:
    """Comma-separated finite numbers given to the flag ``name``, or a one-line ``UsageError``."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{name} takes comma-separated numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise UsageError(f"{name} takes comma-separated finite numbers, got {text!r}")
    return values


def image_paths(data: str, limit: int | None, skip: int = 0) -> tuple[Path, list[Path]]:
    """The images a harness runs on: the first ``limit`` after the first ``skip`` in name
    order (so that a long measurement can run in slices), or a ``UsageError`` naming what is
    wrong with the folder."""
    from .images import find_images

    root = Path(data)
    if not root.is_dir():
        raise UsageError(f"data folder not found: {data}")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    if skip < 0:
        raise UsageError("--skip must be at least 0")
    found = find_images(root)
    if not found:
        raise UsageError(f"no PNG or JPEG images in {data}")
    paths = found[skip:][:limit]
    if not paths:
        raise UsageError(f"--skip {skip} leaves none of the {len(found)} images in {data}")
    return root, paths


def add_malloc_flag(parser: argparse.ArgumentParser) -> None:
    """``--reuse-freed-memory``: the lcodec command's allocator setting, for every path alike."""
    parser.add_argument(
        "--reuse-freed-memory",
        action="store_true",
        help="tune glibc's malloc as the lcodec command does, for every path alike",
    )


def apply_malloc_flag(enabled: bool) -> str:
    """Apply ``--reuse-freed-memory`` if given; returns the setting's description for reports."""
    if not enabled:
        return "glibc defaults"
    from codec.malloc import reuse_freed_memory

    if not reuse_freed_memory():
        raise UsageError("--reuse-freed-memory needs glibc")
    return "freed blocks kept for reuse (codec.malloc, as the lcodec command sets it)"


def write_report(report: dict, out: Path) -> None:
    """Write a report to ``output_file``'s path (strict JSON, whole or not at all) and say so;
    a failure ends the harness on one line, not a traceback."""
    from .jsonutil import write_json

    try:
        write_json(report, out)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {out}")


def output_file(path: str) -> Path:
    """Where a report will go, its folder made now: a bad path fails before the measuring,
    not after it."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{path} is a folder, not a file to write the report to")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot make the folder of {path}: {e.strerror or e}") from None
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write to the folder of {path}")
    return out
