"""Shipped weights: a safetensors file plus a JSON manifest, checked against its sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .errors import CodecError
from .models import build_model

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "lcodec-msh-gain"


@dataclass
class Weights:
    """A weights file and its manifest."""

    path: Path
    manifest: dict

    @property
    def model_id(self) -> str:
        return self.manifest["name"]

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]

    @property
    def short_hash(self) -> bytes:
        """The 8 bytes of sha256 a container stores to refuse decoding with other weights."""
        return bytes.fromhex(self.sha256)[:8]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_weights(weights: str | Path | None = None) -> Weights:
    """Resolve a name of the shipped weights, a .safetensors path, or None for the default."""
    if weights is None:
        weights = DEFAULT_MODEL
    path = Path(weights)
    if path.suffix != ".safetensors":
        path = WEIGHTS_DIR / f"{weights}.safetensors"
    manifest_path = path.with_suffix(".json")
    if not path.is_file() or not manifest_path.is_file():
        raise CodecError(f"weights not found: {path} (with its manifest {manifest_path.name})")
    return Weights(path=path, manifest=json.loads(manifest_path.read_text()))


def load_network(w: Weights, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the network the manifest names and load its verified weights, ready for coding."""
    if sha256_file(w.path) != w.sha256:
        raise CodecError(f"weights file {w.path.name} does not match its manifest's sha256")
    m = w.manifest
    model = build_model(m["architecture"], m["N"], m["M"], tuple(m["lambdas"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(w.path).items()}
    model.load_state_dict(state)
    return model.to(device).eval()
