"""The latent coder of ``msh-gain``: a mean-scale hyperprior's latents <-> rANS streams.

The encoder reconstructs its own hyper-latent exactly as the decoder will (symbols plus medians)
before predicting the entropy parameters, so both sides derive the probability tables from the
same ``z_hat``. Which table codes each latent is
decided by a *hyper* function, ``z_hat -> (indexes, means)``: ``ExactHyperSynthesis`` (format
versions 2 and 3, bit-exact on every device) or ``float_hyper`` (version 1 files).

From format version 3 the latent ``y`` is coded in bands of latent rows, one rANS stream each,
and the entropy parameters of a band are computed from the hyper-latent rows it depends on. The
exact hyper-synthesis is integer arithmetic, so a band's parameters equal the whole image's
bit for bit, while memory (symbols as Python lists, float64 parameters) is bounded per band.

CompressAI's decoder reads its input without bounds checks, so every stream is checked against
the limits the encoder obeys and padded with zeros before decoding (``safe_stream``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..bitstream import features
from ..errors import CodecError
from .exact import HYPER_HALO, ExactHyperSynthesis
from .rans import symbol_coder

Hyper = Callable[[Tensor], "tuple[Tensor, Tensor]"]

#: Symbols per y band the encoder aims at: bounds memory per band (Python lists, float64).
BAND_SYMBOLS = 1 << 20
#: Symbols per y band a decoder accepts, and per y stream in a (single-band) version 1/2 file,
#: which the untiled encoders of those versions could not have made much larger.
MAX_BAND_SYMBOLS = 1 << 22
MAX_LEGACY_SYMBOLS = 1 << 25
#: Latent rows per hyper-latent row.
UP = 4


def float_hyper(model) -> Hyper:
    """CompressAI's own float path: exact only on the machine that encoded."""

    def hyper(z_hat: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = model.h_s(z_hat).chunk(2, 1)
        return model.gaussian_conditional.build_indexes(scales), means

    return hyper


def band_count(y_rows: int, y_cols: int, channels: int) -> int:
    """How many bands the encoder splits ``y`` into: each holds at most ``BAND_SYMBOLS``."""
    rows = max(1, BAND_SYMBOLS // (channels * y_cols))
    return math.ceil(y_rows / rows)


def bands(y_rows: int, count: int) -> list[tuple[int, int]]:
    """Latent rows of each band: ``count`` bands of ``ceil(y_rows / count)`` rows, the last
    shorter. Raises ``CodecError`` when ``count`` bands cannot be formed that way."""
    if not 1 <= count <= y_rows:
        raise CodecError(f"malformed file ({count} latent bands for {y_rows} rows)")
    rows = math.ceil(y_rows / count)
    out = [(r, min(y_rows, r + rows)) for r in range(0, y_rows, rows)]
    if len(out) != count:
        raise CodecError(f"malformed file ({count} latent bands for {y_rows} rows)")
    return out


def band_hyper(hyper: Hyper, z_hat: Tensor, r0: int, r1: int) -> tuple[Tensor, Tensor]:
    """Indexes and means of latent rows ``r0:r1``, from the hyper-latent rows they depend on."""
    z0 = max(0, r0 // UP - HYPER_HALO)
    z1 = min(z_hat.shape[-2], -(-r1 // UP) + HYPER_HALO)
    indexes, means = hyper(z_hat[..., z0:z1, :])
    off = z0 * UP
    return indexes[..., r0 - off : r1 - off, :], means[..., r0 - off : r1 - off, :]


def encode_latents(
    model, hyper: Hyper, y: Tensor, banded: bool = False, z: Tensor | None = None
) -> tuple[list[bytes], tuple[int, int], Tensor]:
    """Code the gained latent ``y``: returns the [z, y...] streams, z's shape and the decoded
    ``y``. ``banded`` (format version 3) codes y in bands of rows, one stream each. ``z`` is the
    hyper-latent to send, ``model.h_a(y)`` unless the encoder chose another (effort)."""
    z = model.h_a(y) if z is None else z
    eb = model.entropy_bottleneck
    z_strings = eb.compress(z)
    z_shape = tuple(z.shape[-2:])
    # What eb.decompress would give back, without decoding the stream just written: CompressAI
    # codes the symbols round(z - medians) exactly and adds the medians back. In its memory
    # layout too: a float hyper-synthesis (version 1) on a channels-last copy can round
    # differently from the decoder's, and one changed table index garbles the file.
    medians = eb.quantiles.detach()[:, 0, 1].view(1, -1, 1, 1).to(z.dtype)
    z_hat = (torch.round(z - medians) + medians).contiguous()
    del z
    rows, cols = y.shape[-2:]
    coder = symbol_coder(model.gaussian_conditional)
    if not banded:
        indexes, means = hyper(z_hat)
        stream, y_hat = _encode_band(coder, y, indexes, means)
        return [z_strings[0], stream], z_shape, y_hat
    streams = [z_strings[0]]
    y_hat = torch.empty_like(y)
    for r0, r1 in bands(rows, band_count(rows, cols, y.shape[1])):
        indexes, means = band_hyper(hyper, z_hat, r0, r1)
        stream, y_hat[..., r0:r1, :] = _encode_band(coder, y[..., r0:r1, :], indexes, means)
        streams.append(stream)
        del indexes, means
    return streams, z_shape, y_hat


def _encode_band(coder, y: Tensor, indexes: Tensor, means: Tensor) -> tuple[bytes, Tensor]:
    """One y stream, and what the decoder will reconstruct from it: CompressAI's symbols are
    ``round(y - means)``, its decoded latents the symbols plus the means."""
    symbols = torch.round(y - means)
    return coder.encode(symbols, indexes), symbols + means


def _decode_band(coder, stream: bytes, indexes: Tensor, means: Tensor) -> Tensor:
    symbols = coder.decode(safe_stream(stream, indexes.numel()), indexes)
    return symbols.to(means.device, means.dtype) + means


def safe_stream(stream: bytes, symbols: int) -> bytes:
    """``stream`` checked and zero-padded so that CompressAI's decoder stays inside it.

    The encoder writes whole 32-bit words, at least two (its final state) and at most one per
    symbol (its output buffer), so any other length is refused. The decoder reads at most one
    word per symbol plus, in its escape path, at most about 15 bytes per byte of input; beyond
    the stream it reads zeros, which end escape runs at once.
    """
    n = len(stream)
    if n % 4 or n < 8 or n > 4 * symbols + 8:
        raise CodecError(f"corrupt file (a stream of {n} bytes for {symbols} symbols)")
    return stream + bytes(15 * n + 4 * symbols + 64)


def decode_latents(
    model,
    hyper: Hyper,
    streams: list[bytes],
    z_shape: tuple[int, int],
    banded: bool | None = None,
) -> Tensor:
    """Inverse of ``encode_latents``: the decoded gained latent ``y_hat``.

    ``banded`` is the format's (version 3 and up); ``None`` infers it from the stream count,
    which is exact except for a one-band file, whose decoding is the same either way. Sizes are
    checked before anything is decoded; ``CodecError`` on any inconsistency.
    """
    if banded is None:
        banded = len(streams) > 2
    eb, gc = model.entropy_bottleneck, model.gaussian_conditional
    zh, zw = z_shape
    rows, cols = zh * UP, zw * UP
    if banded:
        spans = bands(rows, len(streams) - 1)
        if model.M * (spans[0][1] - spans[0][0]) * cols > MAX_BAND_SYMBOLS:
            raise CodecError("malformed file (latent bands too large)")
    else:
        if len(streams) != 2:
            raise CodecError(f"expected 2 streams, found {len(streams)}")
        if model.M * rows * cols > MAX_LEGACY_SYMBOLS:
            raise CodecError("image too large for a single-stream (version 1 or 2) file")
        spans = [(0, rows)]
    z_stream = safe_stream(streams[0], eb._quantized_cdf.shape[0] * zh * zw)
    z_hat = eb.decompress([z_stream], z_shape)
    del z_stream
    coder = symbol_coder(gc)
    if not banded:
        indexes, means = hyper(z_hat)
        return _decode_band(coder, streams[1], indexes, means)
    y_hat = torch.empty((1, model.M, rows, cols), device=z_hat.device)
    for (r0, r1), stream in zip(spans, streams[1:]):
        indexes, means = band_hyper(hyper, z_hat, r0, r1)
        y_hat[..., r0:r1, :] = _decode_band(coder, stream, indexes, means)
        del indexes, means
    return y_hat


class MshGainCoder:
    """The ``LatentCoder`` of a mean-scale hyperprior: the entropy parameters come from the
    exact integer path or, in files of a version without it, CompressAI's float path."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model = model
        self.exact = ExactHyperSynthesis(model, device)

    def hyper(self, version: int) -> Hyper:
        """The entropy-parameter path a format version prescribes."""
        return self.exact if features(version).exact_params else float_hyper(self.model)

    def encode(
        self, y: Tensor, version: int, z: Tensor | None = None
    ) -> tuple[list[bytes], tuple[int, int], Tensor]:
        return encode_latents(self.model, self.hyper(version), y, features(version).bands, z)

    def decode(self, streams: list[bytes], z_shape: tuple[int, int], version: int) -> Tensor:
        return decode_latents(
            self.model, self.hyper(version), streams, z_shape, features(version).bands
        )
