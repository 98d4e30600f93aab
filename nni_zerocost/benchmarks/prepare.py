"""Writing benchmark tables built by ``nni-zerocost data prepare``, and the dispatch to each
benchmark's own prepare step (:meth:`~nni_zerocost.benchmarks.base.Benchmark.prepare`).

Every file is fully built and validated before anything is written; each output is written to
a temporary file and renamed, so a failed run leaves the previous tables in place.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..errors import DataError


# -- writing ------------------------------------------------------------------------------------
def write_files(folder: Path, files: Dict[str, bytes]) -> List[Path]:
    """Write every file to a temporary name in ``folder``, then rename them all into place."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the data folder ({e})", str(folder)) from None
    temps: List[Tuple[str, Path]] = []
    try:
        for name, data in files.items():
            if name.startswith("__"):
                continue
            tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "xb") as f:  # ordinary permissions (umask), unlike mkstemp's 0600
                temps.append((name, tmp))
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        written = []
        for name, tmp in temps:
            os.replace(tmp, folder / name)
            written.append(folder / name)
        return written
    except OSError as e:
        raise DataError(f"cannot write the tables ({e})", str(folder)) from None
    finally:
        for _, tmp in temps:
            if tmp.exists():
                tmp.unlink()


def prepare(benchmark: str, src: Path, data_root: Path, **options: Any) -> Tuple[List[Path], Dict]:
    """Build one benchmark's tables from its public files into ``data_root/<subdir>/`` with the
    benchmark's own step; ``options`` are its :attr:`~.base.Benchmark.prepare_options`."""
    from .base import get_benchmark

    bench = get_benchmark(benchmark)
    unknown = sorted(k for k, v in options.items() if v not in (None, False) and k not in bench.prepare_options)
    if unknown:
        from ..errors import BadInputError

        takes = ", ".join(bench.prepare_options) or "none"
        raise BadInputError(unknown[0], f"applies to another benchmark; {benchmark} takes: {takes}")
    files = bench.build(Path(src), **{k: v for k, v in options.items() if k in bench.prepare_options})
    summary = json.loads(files.pop("__summary__", b"{}"))
    return write_files(Path(data_root) / bench.subdir, files), summary
