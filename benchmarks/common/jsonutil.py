"""Strict JSON output: NaN and infinity become null, since JSON has no spelling for them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from codec.files import write_atomic


def finite_or_none(obj: Any) -> Any:
    """A copy of ``obj`` with every non-finite float replaced by None (recursively)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented strict JSON, whole or not at all (lcodec's one atomic writer):
    a report that took an hour must not be left half-written over the last good one."""
    text = json.dumps(finite_or_none(obj), indent=2, allow_nan=False)
    write_atomic(Path(path), (text + "\n").encode(), force=True)
