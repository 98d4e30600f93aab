"""Durable results store: append-only JSON lines, fsync'd, shared by score/benchmark/search.

Why JSONL and not SQLite: every record is one self-contained line appended with a single
``write`` under an exclusive ``flock`` and flushed with ``fsync``, so a run killed at any
moment (even SIGKILL) leaves at most one torn final line, which the reader detects, reports
and skips; nothing written before is ever lost, and the file stays greppable and diffable.
Scales comfortably to the ~10^5 records a benchmark sweep produces (read once into a dict).

A record is keyed by (space, canonical architecture hash, proxy name, proxy options, data
fingerprint, seed, init/build options, package version): any change of those is a new
measurement, anything equal is answered from the store without model work.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from .version import __version__
from .errors import DataError

try:  # POSIX advisory locks; the store still works (single writer) where absent
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def default_store_path() -> Path:
    env = os.environ.get("NNI_ZEROCOST_STORE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nni-zerocost" / "results.jsonl"


def make_key(
    space: str, arch_hash: str, proxy: str, options: Mapping[str, Any], data: str, seed: int,
    context: Mapping[str, Any] = (), version: str = __version__,
) -> str:
    """Canonical string key of one measurement.

    Options set to ``None`` (an optional feature switched off) are left out, so adding such an
    option to a proxy keeps every result stored before it valid."""
    opts = {k: v for k, v in dict(options).items() if v is not None}
    return json.dumps(
        [space, arch_hash, proxy, dict(sorted(opts.items())), data, int(seed),
         dict(sorted(dict(context).items())), version],
        sort_keys=True, separators=(",", ":"),
    )


class ResultStore:
    """Append-only store of proxy results; ``get(key)`` answers from memory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._records: Dict[str, Dict[str, Any]] = {}
        self.skipped_lines = 0
        self._read_to = 0  # the end of the last whole line read (where refresh() reads on)
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        self._read_to = self.path.read_bytes().rfind(b"\n") + 1  # first: what refresh() reads again is harmless
        with open(self.path, "r", encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    key = rec["key"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.skipped_lines += 1
                    warnings.warn(
                        f"{self.path}, line {lineno}: corrupt record skipped (torn write or edit); "
                        "the other records are kept",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                    continue
                self._records[key] = rec

    def refresh(self) -> int:
        """Read the records other processes appended since this store was read (whole lines
        only), so that a long-lived process, such as one of several Optuna workers sharing a
        study, reuses their results; returns how many records it added."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._read_to)
                data = f.read()
        except FileNotFoundError:
            return 0
        whole = data[: data.rfind(b"\n") + 1]
        self._read_to += len(whole)
        before = len(self._records)
        for line in whole.decode("utf-8", errors="replace").split("\n"):
            try:
                rec = json.loads(line)
                self._records[rec["key"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a blank line, or a torn one of a killed writer (a fresh read reports it)
        return len(self._records) - before

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        return self._records.get(key)

    def records(self) -> Iterator[Dict[str, Any]]:
        return iter(self._records.values())

    def put(self, key: str, record: Mapping[str, Any]) -> Dict[str, Any]:
        """Append one record durably (flock + fsync) and index it."""
        rec = {"key": key, **record}
        line = json.dumps(rec, allow_nan=True, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            # a torn previous line (killed writer) must not swallow this record
            if os.fstat(fd).st_size > 0 and not _ends_with_newline(self.path):
                line = "\n" + line
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._records[key] = rec
        return rec


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_jsonl(path: str | os.PathLike, *, on_error: str = "raise") -> Iterator[Tuple[int, Any]]:
    """Yield ``(line number, object)`` of a JSON-lines file (gzip-compressed when it ends in
    ``.gz``), skipping blank lines: the package's one JSON-lines reader.

    A line that is not JSON raises :class:`DataError` naming the file and line (``on_error=
    "raise"``), or is yielded as its ``json.JSONDecodeError`` (``on_error="yield"``: callers that
    keep going past a bad line).  A truncated or unreadable file is a DataError too."""
    import gzip

    p = Path(path)
    if not p.is_file():
        raise DataError("no such file", str(p))
    opener = (lambda: gzip.open(p, "rt", encoding="utf-8")) if p.suffix == ".gz" else \
        (lambda: open(p, "r", encoding="utf-8", errors="replace" if on_error == "yield" else "strict"))
    try:
        with opener() as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    if on_error == "yield":
                        yield lineno, e
                        continue
                    raise DataError(f"not valid JSON ({e.msg}); the file is truncated or corrupt", str(p),
                                    lineno) from None
    except (OSError, EOFError, UnicodeDecodeError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read ({e}); the file is truncated or corrupt", str(p)) from None


#: fields of a stored result that say how it was computed, not what it is: they may differ
#: between two computations of one key (timing, the GPU that computed it, who wrote it)
PROVENANCE_FIELDS = ("seconds", "device", "key")


def _conflict(a: Mapping[str, Any], b: Mapping[str, Any], rel_tol: float) -> Optional[str]:
    """What differs between two results of one key, None when they agree (``raw`` to
    ``rel_tol``, every other field except provenance exactly)."""
    import math

    ra, rb = a.get("raw"), b.get("raw")
    if (ra is None) != (rb is None):
        return f"raw {ra} against {rb}"
    if ra is not None and ra != rb and not math.isclose(float(ra), float(rb), rel_tol=rel_tol, abs_tol=0.0):
        return f"raw {ra!r} against {rb!r}"
    for field in sorted((set(a) | set(b)) - set(PROVENANCE_FIELDS) - {"raw"}):
        if a.get(field) != b.get(field):
            return f"{field} {a.get(field)!r} against {b.get(field)!r}"
    return None


def merge_stores(paths, out: str | os.PathLike, *, rel_tol: float = 0.0) -> Dict[str, int]:
    """Merge result stores (the shards of a job array) into a new store at ``out``.

    Records are de-duplicated by key; two records of one key must agree (``raw`` to ``rel_tol``,
    0 = bit for bit; the thread count of a run changes float rounding, about 1e-8 relative), else
    :class:`DataError` names the key and both files, and nothing is written.  The merged file is
    written whole, sorted by key, then moved into place, so a killed merge leaves no half store.
    Returns counts: ``inputs`` (records read), ``written``, ``duplicates`` and ``torn`` (corrupt
    lines skipped, as :class:`ResultStore` skips them)."""
    import tempfile

    merged: Dict[str, Dict[str, Any]] = {}
    origin: Dict[str, str] = {}
    counts = {"inputs": 0, "written": 0, "duplicates": 0, "torn": 0}
    out = Path(out)
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataError("no such store", str(p))
        if out.exists() and p.resolve() == out.resolve():
            raise DataError("is also the output; merge into a new file", str(p))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = ResultStore(p)
        counts["torn"] += store.skipped_lines
        for key, rec in store._records.items():
            counts["inputs"] += 1
            if key in merged:
                counts["duplicates"] += 1
                why = _conflict(merged[key], rec, rel_tol)
                if why:
                    raise DataError(f"conflicts with {origin[key]} on one result ({why}; key {key}); nothing "
                                    "was written", str(p))
                continue
            merged[key] = rec
            origin[key] = str(p)
        del caught
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for key in sorted(merged):
                f.write(json.dumps(merged[key], allow_nan=True, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    counts["written"] = len(merged)
    return counts
