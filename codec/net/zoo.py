"""Shipped weights: frozen releases, each a safetensors file plus a JSON manifest.

A release is never replaced or removed once shipped: every ``.lcz`` file names the release it
was written with and carries the first 8 bytes of its weights' sha256, and decoding looks the
weights up by that hash among all installed releases. ``DEFAULT_MODEL`` points at the release
new files are written with. Nothing here imports torch until a network is built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CodecError

if TYPE_CHECKING:
    import torch

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
#: The release new files are written with; older releases stay installed for decoding.
DEFAULT_MODEL = "lcodec-elic-2026-12h"
#: The release each ``--tune`` writes with (unless a model is named): the metric a user wants
#: the file to score well on. The keys are ``codec.metrics.TUNES``'s.
TUNED = {"psnr": DEFAULT_MODEL, "ms-ssim": "lcodec-elic-ssim-2026-12e"}


@dataclass(frozen=True)
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
        """The 8 bytes of sha256 a container stores to find the weights that decode it."""
        return bytes.fromhex(self.sha256)[:8]

    @property
    def distortion(self) -> str:
        """What the release was trained to minimise besides bits: ``mse``, ``ms-ssim`` or their
        mean, ``mse+ms-ssim`` (releases older than the field are MSE)."""
        from ..metrics import DISTORTIONS

        distortion = self.manifest.get("distortion", "mse")
        if distortion not in DISTORTIONS:
            raise CodecError(
                f"{self.model_id}: unknown distortion {distortion!r} in its manifest "
                f"(this lcodec knows {', '.join(DISTORTIONS)})"
            )
        return distortion

    @property
    def shipped(self) -> bool:
        """Whether this is one of the package's releases (not a file given by path)."""
        return self.path.parent.resolve() == WEIGHTS_DIR.resolve()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load(path: Path) -> Weights:
    manifest_path = path.with_suffix(".json")
    if not path.is_file() or not manifest_path.is_file():
        raise CodecError(f"weights not found: {path} (with its manifest {manifest_path.name})")
    return Weights(path=path, manifest=json.loads(manifest_path.read_text()))


@cache
def releases() -> tuple[Weights, ...]:
    """Every release installed with the package, oldest first."""
    found = [_load(p) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))]
    return tuple(sorted(found, key=lambda w: (w.manifest.get("exported", ""), w.model_id)))


def release_names() -> list[str]:
    return [w.model_id for w in releases()]


def find_weights(weights: str | Path | None = None) -> Weights:
    """Resolve a release name, a .safetensors path, or None for the default release."""
    if weights is None:
        weights = DEFAULT_MODEL
    path = Path(weights)
    if path.suffix == ".safetensors":
        return _load(path)
    for w in releases():
        if w.model_id == str(weights):
            return w
    raise CodecError(
        f"no model named {str(weights)!r} (installed: {', '.join(release_names()) or 'none'})"
    )


def weights_for(model_id: str, short_hash: bytes, weights: str | Path | None = None) -> Weights:
    """The weights that decode a file: those given, else the installed release whose hash the
    file carries. A file whose release is not installed names it in a one-line error."""
    if weights is not None:
        w = find_weights(weights)
        if w.short_hash != short_hash:
            raise CodecError(
                f"file was made with other weights than {w.model_id!r}: it needs "
                f"{model_id!r} with weights {short_hash.hex()}, given {w.short_hash.hex()}"
            )
        return w
    for w in releases():
        if w.short_hash == short_hash:
            return w
    raise CodecError(
        f"file needs model release {model_id!r} (weights {short_hash.hex()}), which is not "
        f"installed (installed: {', '.join(release_names()) or 'none'})"
    )


def load_network(w: Weights, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the network the manifest names and load its verified weights, ready for coding."""
    from . import build_model

    if sha256_file(w.path) != w.sha256:
        raise CodecError(f"weights file {w.path.name} does not match its manifest's sha256")
    m = w.manifest
    model = build_model(m["architecture"], m["N"], m["M"], tuple(m["lambdas"]))
    state = read_state(w.path)
    model.load_state_dict(state)
    return model.to(device).eval()


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` state dict with its floating-point tensors in float32: releases ship
    fp16 transforms, and the networks and the trainer compute in float32."""
    from safetensors.torch import load_file

    return {k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}
