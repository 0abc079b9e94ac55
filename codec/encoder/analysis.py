"""One image, many operating points: the analysis transform runs once per image.

``y = g_a(x)`` does not depend on quality, only the gain that scales it does, so a rate search
or an effort optimisation reuses it and pays per trial only for entropy coding, plus synthesis
where a reconstruction is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .. import bitstream, runtime
from ..bitstream import Container
from ..errors import CodecError
from ..image import Picture, decoded_picture, encode_alpha
from ..metrics import DISTORTIONS, file_rd_loss, psnr, searched_by
from ..net import architecture
from ..net.ladder import quality_to_rate
from ..net.refine import Refinement
from ..net.tiling import analyse, synthesize
from ..net.zoo import find_weights
from .effort import refine_latents
from .ratecontrol import (
    TOLERANCE,
    Candidate,
    Target,
    TargetResult,
    goal_bytes,
    meets,
    reached,
    search,
)
from .refine import fit


@dataclass
class Trial:
    """One coded operating point: its file, and the decoded latents it reconstructs from."""

    container: Container
    data: bytes
    y_hat: Tensor
    inv_gain: Tensor
    #: Wall-clock and CPU seconds the effort search had run when it settled this trial's
    #: latents (0 without effort).
    search_seconds: float = 0.0
    search_cpu_seconds: float = 0.0
    #: The synthesis refinement the file carries, if any.
    refinement: Refinement | None = None


class Analysis:
    """An image after the analysis transform, ready to be coded at any quality and effort.

    ``lm`` is a ``LoadedModel``; ``rate_of`` maps quality to the model's rate (and rejects bad
    qualities); the padding multiple is the network's stride; ``header`` holds further ``Container``
    fields (layout, alpha, ICC profile, source). The analysis runs tile by tile
    (codec/net/tiling.py), so a plain encode of any size has bounded memory.
    """

    def __init__(
        self,
        lm,
        pixels: np.ndarray,
        format_version: int,
        rate_of: Callable[[float], float],
        header: dict[str, Any] | None = None,
        distortion: str | None = None,
    ):
        self.lm, self.model, self.device = lm, lm.model, lm.device
        self.coder = lm.coder
        stride = self.model.stride
        self.format_version = format_version
        self.rate_of = rate_of
        self.pixels = pixels
        self.height, self.width = pixels.shape[:2]
        self.pad_bottom, self.pad_right = (-self.height) % stride, (-self.width) % stride
        self.header = header or {}
        self.padded = (self.height + self.pad_bottom, self.width + self.pad_right)
        self.latent = analyse(self.model, pixels, self.padded, self.device)
        #: What effort minimises: the metric asked for, else the release's own search distortion.
        self.distortion = distortion or searched_by(lm.weights.distortion)

    def trial(self, quality: float, iterations: int = 0) -> Trial:
        """Code at ``quality``, optimising the latents for ``iterations`` steps first."""
        return self.trials(quality, [iterations])[0]

    def trials(self, quality: float, budgets: Sequence[int]) -> list[Trial]:
        """Code at ``quality`` after each of ``budgets`` optimisation steps (ascending): the
        same trials as one ``trial`` per budget, from one search where the image is small
        enough to be refined whole (codec/encoder/effort.py)."""
        rate = self.rate_of(quality)
        rate_t = torch.tensor([rate], dtype=torch.float32, device=self.device)
        with torch.no_grad():
            gain, inv_gain = self.model.gains(rate_t)
            y = self.latent * gain
        budgets = sorted(set(budgets))
        if budgets == [0]:
            return [self._code(y, None, quality, rate, inv_gain)]
        lmbda = float(self.model.lmbda(rate_t)[0])
        refined = refine_latents(
            self.model,
            self.pixels,
            self.padded,
            y,
            inv_gain,
            lmbda,
            budgets,
            lambda v, w: self._true_loss(v, w, inv_gain, lmbda),
            label=f"q={float(quality):g}",
            distortion=self.distortion,
        )
        return [
            self._code(y_b, z_b, quality, rate, inv_gain, r.seconds, r.cpu_seconds)
            for y_b, z_b, r in refined
        ]

    def _code(
        self,
        y: Tensor,
        z: Tensor | None,
        quality: float,
        rate: float,
        inv_gain: Tensor,
        seconds: float = 0.0,
        cpu_seconds: float = 0.0,
    ) -> Trial:
        with torch.no_grad():
            streams, z_shape, y_hat = self.coder.encode(y, self.format_version, z)
        c = Container(
            width=self.width,
            height=self.height,
            quality=float(quality),
            rate=rate,
            model_id=self.lm.weights.model_id,
            weights_hash=self.lm.weights.short_hash,
            z_shape=z_shape,
            streams=streams,
            pad_bottom=self.pad_bottom,
            pad_right=self.pad_right,
            version=self.format_version,
            **self.header,
        )
        data = bitstream.pack(c)
        return Trial(c, data, y_hat, inv_gain, seconds, cpu_seconds)

    def reconstruction(self, trial: Trial) -> np.ndarray:
        """The pixels the decoder will produce from ``trial``'s file."""
        return synthesize(
            self.model,
            trial.y_hat,
            trial.inv_gain,
            self.height,
            self.width,
            refinement=trial.refinement,
        )

    def refined(
        self,
        trial: Trial,
        keeps: Callable[[bytes, np.ndarray], bool] | None = None,
        recon: np.ndarray | None = None,
    ) -> tuple[Trial, np.ndarray]:
        """``trial`` with the synthesis refinement (codec/encoder/refine.py) that lowers its
        rate-distortion loss the most, by ``self.distortion`` on the real file, among those
        ``keeps(data, reconstruction)`` allows (a target's condition); ``trial`` itself if none
        does. With the reconstruction of the trial returned; ``recon`` is ``trial``'s own, if
        already made."""
        if recon is None:
            recon = self.reconstruction(trial)
        if not bitstream.features(self.format_version).sections:
            return trial, recon
        rate = torch.tensor([trial.container.rate], dtype=torch.float32, device=self.device)
        lmbda = float(self.model.lmbda(rate)[0])

        def loss(data: bytes, recon: np.ndarray) -> float:
            return file_rd_loss(self.pixels, recon, len(data), lmbda, self.distortion)

        best, best_recon, best_loss = trial, recon, loss(trial.data, recon)
        for r in fit(self.model, trial.y_hat, trial.inv_gain, self.pixels):
            c = replace(trial.container, refinement=r.pack())
            candidate = replace(trial, container=c, data=bitstream.pack(c), refinement=r)
            candidate_recon = self.reconstruction(candidate)
            if keeps is not None and not keeps(candidate.data, candidate_recon):
                continue
            if (value := loss(candidate.data, candidate_recon)) < best_loss:
                best, best_recon, best_loss = candidate, candidate_recon, value
        return best, best_recon

    def _true_loss(self, y: Tensor, z: Tensor | None, inv_gain: Tensor, lmbda: float) -> float:
        """λ·D + bpp of the file ``(y, z)`` codes to, D ``self.distortion`` (stream
        bytes: the header is constant); ``z`` None is ``h_a(y)``. Tile by tile, like a plain
        encode."""
        with torch.no_grad():
            streams, _, y_hat = self.coder.encode(y, self.format_version, z)
        recon = synthesize(self.model, y_hat, inv_gain, self.height, self.width)
        nbytes = sum(len(s) for s in streams)
        return file_rd_loss(self.pixels, recon, nbytes, lmbda, self.distortion)

    def search(
        self, target: Target, iterations: int = 0
    ) -> tuple[Trial, np.ndarray | None, TargetResult]:
        """The trial that best meets ``target``, its reconstruction if one was made, the result.

        With effort, the target is located with plain forward passes first, so that only a few
        trials pay for the optimisation.
        """

        def evaluator(steps: int) -> Callable[[float], Candidate]:
            def evaluate(quality: float) -> Candidate:
                t = self.trial(quality, steps)
                recon = self.reconstruction(t) if target.kind == "psnr" else None
                score = psnr(self.pixels, recon) if recon is not None else None
                return Candidate(quality, len(t.data), score, payload=(t, recon))

            return evaluate

        refine = evaluator(iterations) if iterations else None
        best, result = search(evaluator(0), target, self.height * self.width, refine=refine)
        trial, recon = best.payload
        return trial, recon, result


def side_info(pic: Picture, version: int) -> dict:
    """The container fields that bring the image's layout, alpha and ICC profile back."""
    if not bitstream.features(version).sections:
        if pic.alpha is not None or pic.icc_profile is not None:
            raise CodecError(f"format version {version} cannot hold alpha or an ICC profile")
        return {}
    layout = {
        (False, False): bitstream.LAYOUT_RGB,
        (True, False): bitstream.LAYOUT_GRAY,
        (False, True): bitstream.LAYOUT_RGBA,
        (True, True): bitstream.LAYOUT_GRAYA,
    }[pic.is_gray, pic.alpha is not None]
    plain = (pic.source_mode, pic.source_bits) == (pic.mode, 8)  # the layout says it all
    return {
        "layout": layout,
        "alpha": None if pic.alpha is None else encode_alpha(pic.alpha),
        "icc_profile": pic.icc_profile,
        "source_mode": "" if plain else pic.source_mode,
        "source_bits": pic.source_bits,
    }


def prepare(
    pic: Picture,
    weights: str | None,
    device: str | None,
    precision: str | None,
    format_version: int | None,
    quality: float | None = None,
    distortion: str | None = None,
) -> Analysis:
    """``pic`` after the analysis transform of the release ``weights`` names, with the header
    its files will carry. Everything the header needs, and ``quality`` when given, is checked
    before the model loads. ``format_version`` ``None`` is the newest version the release's
    architecture writes; ``distortion`` ``None`` searches by the release's search distortion
    (``searched_by``)."""
    if distortion is not None and distortion not in DISTORTIONS:
        raise CodecError(
            f"unknown distortion {distortion!r}: choose one of {', '.join(DISTORTIONS)}"
        )
    w = find_weights(weights)
    writes = architecture(w.manifest["architecture"]).writes
    version = writes[-1] if format_version is None else format_version
    if version not in writes:
        raise CodecError(f"cannot write format version {version} with model {w.model_id}")
    header = side_info(pic, version)
    lm = runtime.load_model(w, device, precision)
    levels = lm.model.levels
    if quality is not None:
        quality_to_rate(quality, levels)  # fail on a bad quality before any work
    return Analysis(
        lm, pic.rgb(), version, lambda q: quality_to_rate(q, levels), header, distortion
    )


def encode_picture(
    pic: Picture,
    weights: str | None,
    device: str | None,
    precision: str | None,
    quality: float,
    format_version: int | None,
    target: Target | None,
    iterations: int,
    reconstruct: bool,
    distortion: str | None = None,
) -> tuple[Trial, np.ndarray | None, TargetResult | None]:
    """Code ``pic`` with the release ``weights`` names, effort searching by ``distortion``:
    the chosen trial, the reconstruction in the image's own layout (when asked for, or made
    anyway by a PSNR target), how a target was met."""
    start = quality if target is None else None
    analysis = prepare(pic, weights, device, precision, format_version, start, distortion)
    recon, result = None, None
    if target is None:
        trial = analysis.trial(quality, iterations)
    else:
        trial, recon, result = analysis.search(target, iterations)
    if iterations:
        trial, recon, result = refine_synthesis(analysis, trial, recon, target, result)
    if reconstruct and recon is None:
        recon = analysis.reconstruction(trial)
    return trial, own_layout(recon, pic), result


def refine_synthesis(
    analysis: Analysis,
    trial: Trial,
    recon: np.ndarray | None,
    target: Target | None,
    result: TargetResult | None,
) -> tuple[Trial, np.ndarray, TargetResult | None]:
    """``trial`` with a synthesis refinement where one pays (``Analysis.refined``), and its
    reconstruction. With a target, the file grows no further than the target allows, and a
    target met stays met; the result is brought up to date."""
    keeps = None
    pixels = analysis.height * analysis.width
    if target is not None and result is not None:
        cap = goal_bytes(target, pixels) * (1 + TOLERANCE if target.kind == "bpp" else 1)

        def keeps(data: bytes, rec: np.ndarray) -> bool:
            if target.kind == "psnr":
                return not result.met or psnr(analysis.pixels, rec) >= target.value
            return len(data) <= cap and (not result.met or meets(target, len(data), None, pixels))

    refined, recon = analysis.refined(trial, keeps, recon)
    if refined is not trial and result is not None:
        score = psnr(analysis.pixels, recon) if result.kind == "psnr" else None
        met = meets(target, len(refined.data), score, pixels)
        result = replace(
            result,
            reached=reached(target, len(refined.data), score, pixels),
            met=met,
            note="" if met else result.note,
        )
    return refined, recon, result


def encode_picture_budgets(
    pic: Picture,
    weights: str | None,
    device: str | None,
    precision: str | None,
    quality: float,
    budgets: Sequence[int],
    distortion: str | None = None,
) -> list[tuple[Trial, np.ndarray]]:
    """The trial and reconstruction (in the image's own layout) after each of ``budgets``
    optimisation steps, ascending, from one search (``Analysis.trials``)."""
    analysis = prepare(pic, weights, device, precision, None, quality, distortion)
    out = []
    for steps, t in zip(sorted(set(budgets)), analysis.trials(quality, budgets)):
        if steps:
            t, recon, _ = refine_synthesis(analysis, t, None, None, None)
        else:
            recon = analysis.reconstruction(t)
        out.append((t, own_layout(recon, pic)))
    return out


def own_layout(recon: np.ndarray | None, pic: Picture) -> np.ndarray | None:
    """A reconstruction in the image's own layout, as decompress returns it."""
    if recon is None:
        return None
    return decoded_picture(recon, pic.is_gray, pic.alpha).pixels
