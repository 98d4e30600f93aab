"""Token batches for the proxies: a PTB-style corpus reader and an embedded default.

The reader follows the official NAS-Bench-NLP / AWD-LSTM pipeline exactly (vocabulary assigned
by first appearance over train, then valid, then test; ``<eos>`` at every line end; batchify
into columns), so with PTB the paper's batch is reproduced: the first 70 rows of the test split
batchified into 50 columns.

The embedded default needs no file: token ids drawn i.i.d. from a Zipf law (exponent 1.0 over
the 10,000-word vocabulary, the shape of PTB's unigram distribution; a rank-r word has
probability proportional to 1/r, as PTB's frequency-ordered ids roughly have).  Hidden
covariance computed on it ranks cells almost like real PTB text does (see README for the
measured rank correlation).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from .errors import DataError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TokenBatch:
    """A (T, B) block of token ids plus where it came from (for result-store keys)."""

    tokens: torch.Tensor  # int64, (T, B)
    vocab_size: int
    source: str

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(self.tokens.numpy().tobytes())
        h.update(f"{tuple(self.tokens.shape)}|{self.vocab_size}".encode())
        return h.hexdigest()[:16]

    @property
    def targets(self) -> torch.Tensor:
        """Next-token targets (T-1, B) for the first T-1 steps."""
        return self.tokens[1:]


class Corpus:
    """Word-level corpus with the official vocabulary order."""

    def __init__(self, splits: Dict[str, Path]):
        self.word2idx: Dict[str, int] = {}
        self.ids: Dict[str, torch.Tensor] = {}
        for split in SPLITS:
            if split in splits:
                self.ids[split] = self._tokenize(splits[split])

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> "Corpus":
        """A folder with train/valid/test text files (``ptb.`` prefix or not), or one file."""
        p = Path(path)
        if p.is_file():
            return cls({"test": p})
        if not p.is_dir():
            raise DataError("no such corpus file or folder (pass a PTB-style folder or a text file)", str(p))
        found = {}
        for split in SPLITS:
            for name in (f"{split}.txt", f"ptb.{split}.txt"):
                if (p / name).is_file():
                    found[split] = p / name
                    break
        if "test" not in found:
            raise DataError(
                "corpus folder has no test split (expected test.txt or ptb.test.txt)", str(p)
            )
        return cls(found)

    def _tokenize(self, path: Path) -> torch.Tensor:
        out: List[int] = []
        try:
            with open(path, "r", encoding="utf-8") as f:
                for line in f:
                    for w in line.split() + ["<eos>"]:
                        idx = self.word2idx.setdefault(w, len(self.word2idx))
                        out.append(idx)
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 text: {e}", str(path)) from None
        return torch.tensor(out, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.word2idx)


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D id stream into ``batch_size`` columns, as AWD-LSTM does: (len//B, B)."""
    n = ids.numel() // batch_size
    if n == 0:
        raise DataError(f"{ids.numel()} tokens cannot fill even one row of {batch_size} columns")
    return ids[: n * batch_size].view(batch_size, -1).t().contiguous()


def corpus_batch(
    path: str | os.PathLike, batch_size: int = 50, seq_len: int = 70, split: str = "test", start: int = 0
) -> TokenBatch:
    """The paper's protocol: rows ``start..start+seq_len`` of the batchified ``split``."""
    corpus = Corpus.from_path(path)
    if split not in corpus.ids:
        split = "test"
    data = batchify(corpus.ids[split], batch_size)
    if start + seq_len > data.shape[0]:
        raise DataError(f"split {split!r} has only {data.shape[0]} rows; need {start + seq_len}", str(path))
    vocab = max(len(corpus), 10_000)
    return TokenBatch(data[start:start + seq_len].clone(), vocab, f"corpus:{Path(path).name}:{split}")


def zipf_batch(
    batch_size: int = 50, seq_len: int = 70, vocab_size: int = 10_000, seed: int = 0, exponent: float = 1.0
) -> TokenBatch:
    """Embedded default: i.i.d. Zipf-distributed token ids (no file needed)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    p = ranks ** -exponent
    p /= p.sum()
    ids = rng.choice(vocab_size, size=(seq_len, batch_size), p=p)
    return TokenBatch(torch.from_numpy(ids).long(), vocab_size, f"zipf:{exponent}:{seed}")


#: the package's own copy of the compact benchmark tables (see benchmarks/data/NOTICE.md)
PACKAGE_DATA = Path(__file__).resolve().parent / "benchmarks" / "data"


def user_data_dir() -> Path:
    """The user's data folder: ``$XDG_DATA_HOME/nni-zerocost`` or ``~/.local/share/nni-zerocost``.

    Plain XDG rules on every platform except Windows (``%LOCALAPPDATA%\\nni-zerocost``), on purpose
    without platformdirs: the folder must not move when an unrelated package gets installed.
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "nni-zerocost"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "nni-zerocost"
    return Path.home() / ".local" / "share" / "nni-zerocost"


def prepare_dir(explicit: Optional[str] = None) -> Path:
    """Where ``data prepare`` writes: explicit > $NNI_ZEROCOST_DATA > the user data folder."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("NNI_ZEROCOST_DATA")
    return Path(env).expanduser() if env else user_data_dir()


def data_dir(explicit: Optional[str] = None, benchmark=None) -> Path:
    """The folder to read benchmark tables from (it holds ``nasbench_nlp/``, ``training_free_nas/``).

    Order: ``explicit`` (``--data-dir``) > ``$NNI_ZEROCOST_DATA`` > the user data folder
    (:func:`user_data_dir`, filled by ``nni-zerocost data prepare``) > the tables shipped inside
    the package.  With ``benchmark`` (a name or a Benchmark) the user folder is used only when
    it holds that benchmark's table; without it, whenever the folder exists.  An explicit
    folder or the environment variable is used as given, never silently replaced.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("NNI_ZEROCOST_DATA")
    if env:
        return Path(env).expanduser()
    user = user_data_dir()
    if not benchmark:
        return user if user.is_dir() else PACKAGE_DATA
    if isinstance(benchmark, str):
        from .benchmarks.base import get_benchmark

        benchmark = get_benchmark(benchmark)
    rel = Path(benchmark.subdir) / getattr(benchmark, "table", "")
    for root in (user, PACKAGE_DATA):
        if (root / rel).is_file():
            return root
    return user


def resolve_corpus(corpus: Optional[str], data_folder: Optional[str] = None) -> Optional[str]:
    """A ``--corpus`` value as a path: an existing file or folder as given, else a folder of that
    name (any case: ``PTB`` -> ``ptb/``) inside the data folder (``data_folder``, else
    ``$NNI_ZEROCOST_DATA``), so ``--corpus ptb --data-dir DATA`` finds ``DATA/ptb``.  Anything
    else is returned unchanged for the plan to refuse with its own message."""
    if corpus is None or Path(corpus).exists():
        return corpus
    root = data_folder or os.environ.get("NNI_ZEROCOST_DATA")
    if root and Path(root).is_dir() and "/" not in corpus:
        for child in Path(root).expanduser().iterdir():
            if child.name.lower() == corpus.lower():
                return str(child)
    return corpus
