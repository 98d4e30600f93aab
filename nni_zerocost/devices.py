"""Where models and batches live: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

Weights are always drawn on the CPU, from the same seeded CPU generators, and then moved, so
the initialisation is bit-identical whatever the device; only the arithmetic that follows
differs (float rounding of the device's kernels).  Passes that need numpy/scipy (the
eigen-spectrum numerics) bring their tensors back to the CPU.
"""
from __future__ import annotations

import re
from typing import Any, Optional

import torch

from .errors import BadInputError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def resolve_device(device: Any = "auto") -> torch.device:
    """The checked ``torch.device`` for a request; :class:`BadInputError` naming ``device``.

    ``auto`` (or None): the current CUDA device when CUDA is available, else the CPU.  ``cuda``
    means ``cuda:<current device>``; asking for CUDA without it, or for a device index that does
    not exist, is refused before any work.
    """
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise BadInputError("device", f"must be one of {DEVICE_CHOICES}, got {device!r}")
    m = _PATTERN.match(device.strip().lower())
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise BadInputError("device", f"must be one of {DEVICE_CHOICES}", repr(device))
    kind, index = m.group(1), m.group(2)
    if kind == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if cuda_available() else torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not cuda_available():
        raise BadInputError("device", "CUDA was asked for but is not available here (torch "
                            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                            "ask for cpu or auto", repr(device))
    n = torch.cuda.device_count()
    i = torch.cuda.current_device() if index is None else int(index)
    if i >= n:
        raise BadInputError("device", f"there is no CUDA device {i} (this machine has {n}: "
                            f"{', '.join(f'cuda:{j}' for j in range(n))})", repr(device))
    return torch.device("cuda", i)


def cuda_available() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken driver install counts as no CUDA
        return False


def device_name(device: Optional[torch.device]) -> str:
    """What records say: ``"cpu"`` or ``"cuda:0"``."""
    return "cpu" if device is None else str(torch.device(device))


def describe(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``, for provenance."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"
