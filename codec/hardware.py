"""What the machine is: the CPU's name and whether a device computes bf16 in hardware."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def _cpuinfo(key: str) -> str:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith(key)), "")
    except OSError:
        return ""
    return line.partition(":")[2].strip()


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else what platform knows."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The CPU's feature flags (Linux), e.g. ``avx512_bf16`` or ``amx_bf16``."""
    return _cpuinfo("flags").split()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware; emulated bf16 would be slower than float32.

    On x86 CPUs that means AVX-512 BF16 or AMX tiles (oneDNN uses either for convolutions).
    """
    if device.type == "cuda":
        import torch

        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags
