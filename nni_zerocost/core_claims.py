"""Jobs started together share the cores: each scoring process claims the cores it uses.

Why: the thread policy gives a process the cores nobody else is using, measured from
``/proc/stat`` over 50 ms.  Two jobs started at the same moment (NNI's trial concurrency, a
user's second command) both measure every core idle, both take every core, and twice as many
spinning threads as cores share them: measured, 7 of 21 such pairs took 2-4 times as long.
A claim makes one process's choice visible to the next before either has started computing.

How: one lock file per usable core in a folder of the user's (``$XDG_RUNTIME_DIR/nni-zerocost/
cores``, else ``~/.cache/nni-zerocost/cores``).  A process claims a core by taking a
non-blocking exclusive ``flock`` on its file: it never waits, and exactly one process holds each
core.  The kernel drops the lock when the holder exits, even after ``kill -9``, so a dead
process's claim needs no cleaning up (and a reused PID cannot inherit it); the files are opened
close-on-exec, so workers and trials started from a claiming process do not inherit its claims.

The policy (:func:`claim_for_threads`): first claim one core, then measure the idle cores, then
claim more up to that count.  Jobs that start together each get their first core before either
measures, so they split the machine instead of each taking all of it; a job alone claims every
idle core, as before.  Where locks are unavailable (no ``fcntl``, an unwritable folder) a claim
holds nothing and the measurement alone decides, as it did before claims existed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

try:  # POSIX advisory locks
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


def claims_folder() -> Path:
    """Where the lock files live: per user, on a local file system where possible."""
    env = os.environ.get("NNI_ZEROCOST_CORES_DIR")
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "nni-zerocost" / "cores"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nni-zerocost" / "cores"


class CoreClaim:
    """The cores this process holds (``count``), until :meth:`release` or its exit."""

    def __init__(self, slots: int, folder: Optional[Path] = None):
        self.slots = max(1, int(slots))
        self.folder = claims_folder() if folder is None else Path(folder)
        self._fds: List[int] = []
        self.available = fcntl is not None and self._prepare()

    def _prepare(self) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return os.access(self.folder, os.W_OK)
        except OSError:
            return False

    @property
    def count(self) -> int:
        return len(self._fds)

    def take(self, n: int) -> int:
        """Claim up to ``n`` more free cores (never waiting); returns how many this claim holds."""
        if not self.available:
            return self.count
        for i in range(self.slots):
            if self.count >= n:
                break
            path = self.folder / f"core-{i}.lock"
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                continue
            if fd in self._fds:  # pragma: no cover - a descriptor number reused after a close
                os.close(fd)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by another process
                os.close(fd)
                continue
            if self._holds_same_file(path, fd):
                self._fds.append(fd)
            else:
                os.close(fd)
        return self.count

    def _holds_same_file(self, path: Path, fd: int) -> bool:
        """True unless another process replaced the file between open and lock (then the lock is
        on a file nobody else will ever try)."""
        try:
            return os.stat(path).st_ino == os.fstat(fd).st_ino
        except OSError:
            return False

    def held_by_others(self) -> int:
        """Cores claimed by other processes right now (a probe: nothing stays claimed)."""
        if not self.available:
            return 0
        others = 0
        mine = {os.fstat(fd).st_ino for fd in self._fds}
        for i in range(self.slots):
            path = self.folder / f"core-{i}.lock"
            try:
                if path.stat().st_ino in mine:
                    continue
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                others += 1
            finally:
                os.close(fd)
        return others

    def release(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)  # closing the only descriptor drops the lock
            except OSError:  # pragma: no cover
                pass
        self._fds.clear()

    def __enter__(self) -> "CoreClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # a claim forgotten by its owner does not outlive it
        self.release()
