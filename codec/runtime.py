"""Where and how the networks run: the model cache, the device and the precision.

A loaded model is a network on a device, in a precision, with the latent coder its
architecture names (codec/net/__init__.py); it is built once per weights, device and precision
and shared by every encode and decode in the process.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import torch

from .entropy import LatentCoder
from .errors import CodecError
from .net import architecture
from .net.zoo import Weights, find_weights, load_network

#: Arithmetic of the analysis and synthesis transforms. The entropy path is float32 and exact
#: whatever is chosen, so files decode alike; the lower precisions move reconstructed pixels by
#: a fraction of a level (docs/BENCHMARKS.md): float16 for GPUs with tensor cores, bfloat16 for
#: CPUs with AVX-512 BF16 or AMX.
PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_PRECISION = "float32"


@dataclass
class LoadedModel:
    """A network on a device together with the weights it came from and its latent coder."""

    weights: Weights
    model: torch.nn.Module
    device: torch.device
    coder: LatentCoder
    precision: str = DEFAULT_PRECISION


_cache: dict[tuple[str, str, str, str], LoadedModel] = {}
_cache_lock = threading.Lock()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when available; asking for a missing CUDA is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise CodecError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CodecError("CUDA was requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise CodecError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return dev


def resolve_precision(precision: str | None) -> str:
    """``None`` is the default precision; anything not in ``PRECISIONS`` is an error."""
    if precision is None:
        return DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise CodecError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")
    return precision


def load_model(
    weights: str | Weights | None = None,
    device: str | torch.device | None = None,
    precision: str | None = None,
) -> LoadedModel:
    """Load (once per weights, device and precision) the network behind the codec.

    ``weights`` is a release name (``lcodec models`` lists them), a ``.safetensors`` path, a
    ``Weights`` already resolved (not read again), or ``None`` for the default release.
    """
    w = weights if isinstance(weights, Weights) else find_weights(weights)
    dev = resolve_device(device)
    precision = resolve_precision(precision)
    # The manifest is part of the key: a link to a release's tensors beside another manifest,
    # or a file rewritten in place, is other weights.
    manifest = json.dumps(w.manifest, sort_keys=True)
    key = (str(w.path.resolve()), manifest, str(dev), precision)
    with _cache_lock:
        if key not in _cache:
            model = load_network(w, dev)
            model.prepare_inference(PRECISIONS[precision])
            coder = architecture(w.manifest["architecture"]).coder(model, dev)
            _cache[key] = LoadedModel(w, model, dev, coder, precision)
        return _cache[key]
