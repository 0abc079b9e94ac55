"""Pixels <-> latents: the networks, and the registry of architectures.

An architecture is a plug-in: a network class in this package, a latent coder in
``codec/entropy/``, and one line in ``ARCHITECTURES`` naming both and the format versions the
architecture writes (and so reads). The encoder, the decoder and the model cache look an
architecture up here by the id every weights manifest stores; none of them branches on it.

The registry names classes by dotted path, so reading it (the command line does, to list
releases) imports neither torch nor CompressAI.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ..entropy import LatentCoder


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Architecture:
    """A network, the latent coder that turns its latents into streams, and the format versions
    it writes (oldest first; the newest is the default)."""

    id: str
    network: str  # "module:Class", built as Class(N=, M=, lambdas=)
    latent_coder: str  # "module:Class", made per loaded network as Class(model, device)
    writes: tuple[int, ...]

    @property
    def default_version(self) -> int:
        return self.writes[-1]

    def build(self, N: int, M: int, lambdas: tuple[float, ...]) -> torch.nn.Module:
        return _load(self.network)(N=N, M=M, lambdas=lambdas)

    def coder(self, model: torch.nn.Module, device: torch.device) -> LatentCoder:
        return _load(self.latent_coder)(model, device)


ARCHITECTURES: dict[str, Architecture] = {
    a.id: a
    for a in (
        Architecture(
            id="msh-gain",
            network="codec.net.msh_gain:GainedMeanScaleHyperprior",
            latent_coder="codec.entropy.msh_gain:MshGainCoder",
            writes=(1, 2, 3),
        ),
        Architecture(
            id="elic-gain",
            network="codec.net.elic_gain:GainedContextHyperprior",
            latent_coder="codec.entropy.elic_gain:ElicGainCoder",
            writes=(4,),
        ),
    )
}


def architecture(arch_id: str) -> Architecture:
    """The registered architecture ``arch_id`` (the id a weights manifest stores)."""
    try:
        return ARCHITECTURES[arch_id]
    except KeyError:
        raise ValueError(f"unknown architecture {arch_id!r}") from None


def build_model(arch_id: str, N: int, M: int, lambdas: tuple[float, ...]) -> torch.nn.Module:
    """Instantiate the network an architecture id names (the id is stored in every manifest)."""
    return architecture(arch_id).build(N, M, tuple(lambdas))


def __getattr__(name: str):
    """Submodules (``codec.net.tiling``...) load on first use, as ``codec``'s names do."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
