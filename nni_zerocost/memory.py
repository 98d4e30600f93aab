"""Memory sizes the scoring passes are bounded by: the ``max_memory`` option, read and checked
here, and its default, derived from the memory this machine (or GPU) has.

``max_memory`` bounds the resident memory of the gradient pass of a large model: the pass splits
the batch into row chunks (micro-batches) whose activations fit what the weights and gradients
leave (:mod:`nni_zerocost.models.microbatches`).  Small models fit in one chunk whatever the
bound, and score exactly as without it.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Optional

import torch

from .errors import BadInputError

_UNITS = {"": 1, "b": 1, "k": 10 ** 3, "kb": 10 ** 3, "m": 10 ** 6, "mb": 10 ** 6, "g": 10 ** 9, "gb": 10 ** 9,
          "t": 10 ** 12, "tb": 10 ** 12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
#: the smallest bound taken: below it nothing of a language model fits anyway
MIN_MEMORY = 2 ** 20
#: share of the machine's memory the default bound takes (the rest: the OS, other work)
DEFAULT_SHARE = 0.5


def parse_memory(value: Any, option: str = "max_memory") -> int:
    """Bytes from ``8GiB``, ``"8 GB"``, ``"512MiB"``, ``"1e9"`` or a number of bytes; one
    :class:`BadInputError` naming ``option`` for anything else (zero, negative, NaN, no unit known)."""
    if isinstance(value, bool):
        raise BadInputError(option, f"must be a size such as '8GiB' or a number of bytes, got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if m is None or m.group(2).lower() not in _UNITS:
            raise BadInputError(option, f"must be a size such as '8GiB', '512MiB', '16GB' or a number of bytes, "
                                        f"got {value!r}")
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        raise BadInputError(option, f"must be a size such as '8GiB' or a number of bytes, got {value!r}")
    if not math.isfinite(number) or number <= 0:
        raise BadInputError(option, f"must be a positive size, got {value!r}")
    size = int(number * _UNITS[unit])
    if size < MIN_MEMORY:
        raise BadInputError(option, f"must be at least 1MiB, got {value!r} ({size} bytes)")
    return size


def _meminfo() -> dict:
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def _cgroup_limit() -> Optional[int]:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2 ** 60:
            return int(text)
    return None


def resident_bytes() -> int:
    """This process's resident memory now (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def default_max_memory(device: Any = "cpu") -> int:
    """The bound when none is given: CUDA: the GPU's free memory plus what this process holds
    there; CPU: half the machine's memory (or its cgroup limit), at most what is available now
    plus what this process already holds (the model's weights among it)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_allocated(device))
    info = _meminfo()
    total = info.get("MemTotal") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_limit()
    if limit is not None:
        total = min(total, limit)
    bound = int(DEFAULT_SHARE * total)
    available = info.get("MemAvailable")
    if available is not None:
        bound = min(bound, available + resident_bytes())
    return max(bound, MIN_MEMORY)


def format_bytes(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


__all__ = ["parse_memory", "default_max_memory", "resident_bytes", "format_bytes", "MIN_MEMORY"]
