"""Symbols <-> bytes: CompressAI's rANS coder, called with its tables converted once.

CompressAI's ``GaussianConditional.compress``/``decompress`` turn the whole CDF table into
Python lists on every call and build the decoded tensor from a list with ``torch.tensor``. The
streams here are byte-for-byte the ones those methods write and read; only the conversions
around the coder are cheaper.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from compressai.ans import RansDecoder, RansEncoder
from torch import Tensor, nn


class SymbolCoder:
    """rANS over one entropy model's quantized CDF tables."""

    def __init__(self, entropy_model: nn.Module):
        self.source = entropy_model._quantized_cdf
        self.cdfs = entropy_model._quantized_cdf.tolist()
        self.lengths = entropy_model._cdf_length.reshape(-1).int().tolist()
        self.offsets = entropy_model._offset.reshape(-1).int().tolist()

    def encode(self, symbols: Tensor, indexes: Tensor) -> bytes:
        """One stream for integer ``symbols``, each coded with the table its index names."""
        return RansEncoder().encode_with_indexes(
            symbols.reshape(-1).int().tolist(),
            indexes.reshape(-1).int().tolist(),
            self.cdfs,
            self.lengths,
            self.offsets,
        )

    def decode(self, stream: bytes, indexes: Tensor) -> Tensor:
        """The int32 symbols of ``stream``, shaped like ``indexes`` (on the CPU)."""
        values = RansDecoder().decode_with_indexes(
            stream, indexes.reshape(-1).int().tolist(), self.cdfs, self.lengths, self.offsets
        )
        return torch.from_numpy(np.asarray(values, dtype=np.int32)).reshape(indexes.shape)


_coders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def symbol_coder(entropy_model: nn.Module) -> SymbolCoder:
    """The cached coder of an entropy model, rebuilt if its tables were updated since."""
    coder = _coders.get(entropy_model)
    if coder is None or coder.source is not entropy_model._quantized_cdf:
        coder = _coders[entropy_model] = SymbolCoder(entropy_model)
    return coder
