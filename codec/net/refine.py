"""A per-image refinement of the synthesis transform's last layer, sent in the file.

The synthesis is amortised over all images: its last layer mixes the feature maps into RGB with
weights that suit the training photos on average. Its output is linear in a scale on each of
those weights' input channels (and output colours), so for one image the encoder can solve for
the best scales exactly, by least squares (codec/encoder/refine.py), and send them in a few
hundred bytes: most where an image is unlike the training photos (flat colours, smooth
gradients), which is where the transforms fall furthest behind. The decoder scales the layer
once before synthesis; the synthesis itself is unchanged.

Payload of the file's refinement section (docs/FORMAT.md): the form (1 byte), the scale step and
the bias step (float32 each), the scales (int8: one per input channel, or per input channel and
colour, channel-major), then three int8 bias offsets.
"""

from __future__ import annotations

import copy
import math
import struct
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import CodecError
from .layers import ChannelsLast

#: One scale per input channel of the last layer, shared by the three colours.
FORM_CHANNEL = 1
#: One scale per input channel and colour.
FORM_CHANNEL_RGB = 2
FORMS = {FORM_CHANNEL: "per channel", FORM_CHANNEL_RGB: "per channel and colour"}
COLOURS = 3
#: The largest step either may have: a scale of 127 steps is then 127x the weight, far past
#: any fit, and every weight and output stays finite.
MAX_STEP = 1.0

_HEAD = struct.Struct(">Bff")


@dataclass(frozen=True, eq=False)
class Refinement:
    """Quantized scales of the last layer's weights and offsets of its biases."""

    form: int
    scale_step: float
    bias_step: float
    scales: np.ndarray  # int8: (channels,) or (channels * 3,)
    biases: np.ndarray  # int8: (3,)

    @classmethod
    def quantize(cls, form: int, scales: np.ndarray, biases: np.ndarray) -> Refinement:
        """The nearest refinement to real-valued ``scales`` and ``biases``: each set on 255
        levels over its own range."""
        steps = []
        for v in (scales, biases):
            top = float(np.abs(v).max()) if v.size else 0.0
            step = min(top / 127, MAX_STEP) if math.isfinite(top) else 0.0
            steps.append(float(np.float32(step)))  # exactly what the file holds
        ints = [
            np.zeros(v.shape, np.int8)
            if s == 0
            else np.clip(np.rint(v / s), -127, 127).astype(np.int8)
            for v, s in zip((scales, biases), steps)
        ]
        return cls(form, steps[0], steps[1], ints[0].ravel(), ints[1].ravel())

    def pack(self) -> bytes:
        """The section's payload."""
        head = _HEAD.pack(self.form, self.scale_step, self.bias_step)
        return head + self.scales.astype(np.int8).tobytes() + self.biases.astype(np.int8).tobytes()

    @classmethod
    def unpack(cls, payload: bytes, channels: int) -> Refinement:
        """Parse a section for a last layer of ``channels`` inputs; a malformed or hostile one
        ends in a ``CodecError``."""
        if len(payload) < _HEAD.size:
            raise CodecError("malformed refinement section (too short)")
        form, scale_step, bias_step = _HEAD.unpack_from(payload)
        if form not in FORMS:
            raise CodecError(f"malformed refinement section (form {form})")
        n = channels * (1 if form == FORM_CHANNEL else COLOURS)
        if len(payload) != _HEAD.size + n + COLOURS:
            raise CodecError(
                f"malformed refinement section ({len(payload)} bytes for {channels} channels)"
            )
        for step in (scale_step, bias_step):
            if not (math.isfinite(step) and 0 <= step <= MAX_STEP):
                raise CodecError("malformed refinement section (step out of range)")
        body = np.frombuffer(payload, np.int8, offset=_HEAD.size)
        return cls(form, scale_step, bias_step, body[:n].copy(), body[n:].copy())

    def factors(self, channels: int) -> torch.Tensor:
        """What each weight of the last layer, (in, out, k, k), is multiplied by."""
        s = torch.from_numpy(self.scales.astype(np.float32)) * self.scale_step
        shape = (channels, 1) if self.form == FORM_CHANNEL else (channels, COLOURS)
        return (1 + s.reshape(shape)).expand(channels, COLOURS)[..., None, None]

    def offsets(self) -> torch.Tensor:
        """What is added to the last layer's biases."""
        return torch.from_numpy(self.biases.astype(np.float32)) * self.bias_step


def split(g_s: nn.Module) -> tuple[nn.Module, nn.ConvTranspose2d]:
    """The synthesis up to its last layer (as a module taking and returning float32), and the
    last layer: a plain ``Sequential`` or one wrapped for inference (``ChannelsLast``)."""
    inner = g_s.inner if isinstance(g_s, ChannelsLast) else g_s
    last = inner[-1]
    if (
        not isinstance(last, nn.ConvTranspose2d)
        or last.out_channels != COLOURS
        or last.groups != 1
        or last.bias is None
    ):
        raise CodecError("this model's synthesis cannot take a refinement")
    body = nn.Sequential(*list(inner)[:-1])
    if isinstance(g_s, ChannelsLast):
        body = ChannelsLast(body, g_s.dtype)
    return body, last


def refined_synthesis(g_s: nn.Module, r: Refinement) -> nn.Module:
    """``g_s`` with its last layer's weights scaled and biases offset by ``r`` (the other
    layers are shared, not copied)."""
    _, last = split(g_s)
    new = copy.deepcopy(last)
    with torch.no_grad():
        f = r.factors(last.in_channels).to(new.weight.device)
        new.weight.copy_((last.weight.float() * f).to(new.weight.dtype))
        new.bias.copy_((last.bias.float() + r.offsets().to(new.bias.device)).to(new.bias.dtype))
    inner = g_s.inner if isinstance(g_s, ChannelsLast) else g_s
    body = nn.Sequential(*list(inner)[:-1], new)
    return ChannelsLast(body, g_s.dtype) if isinstance(g_s, ChannelsLast) else body
