"""What a benchmark with ground truth looks like to the rest of the package."""
from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import builtin
from ..registry import Registry


@dataclasses.dataclass
class Entry:
    """One benchmark architecture.

    ``truth`` holds ground-truth metrics of the architecture (e.g. mean PTB test loss, GLUE);
    ``runs`` the per-training-run values of the primary metric (None = diverged run);
    ``group`` a key for within-group correlations (e.g. (hidden size, layers)), or None.
    ``extra`` carries published reference values (the paper's scores) when the data has them.
    """

    arch_id: Any
    arch: Any
    truth: Dict[str, Optional[float]]
    runs: List[Optional[float]] = dataclasses.field(default_factory=list)
    group: Optional[Tuple] = None
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)


class Benchmark(abc.ABC):
    """A table of architectures of one space with their trained results."""

    name: str = ""
    space: str = ""
    #: name of the primary ground-truth metric and whether higher is better
    primary: str = ""
    primary_higher_is_better: bool = False
    #: sub-folder of the data directory holding this benchmark
    subdir: str = ""
    #: what an entry's ``group`` holds, for tables and figures (e.g. "hidden size/layers")
    group_by: str = ""
    how_to_get: str = ""

    #: options of :meth:`build` (``data prepare`` flags): name -> ("path" | "switch", help)
    prepare_options: Mapping[str, Tuple[str, str]] = {}
    #: what ``data prepare NAME --from PATH`` expects at PATH
    prepare_source: str = "the benchmark's public release"

    @abc.abstractmethod
    def load(self, data_dir: Path) -> List[Entry]:
        """Read the benchmark; raise DataError naming the file (and line) on bad data."""

    def build(self, src: Path, **options) -> Dict[str, bytes]:
        """The benchmark's tables built from its public release at ``src``: ``{file name:
        bytes}`` (plus ``"__summary__"``: JSON facts to print), fully validated, nothing written
        (:func:`~nni_zerocost.benchmarks.prepare.prepare` writes them)."""
        from ..errors import BadInputError

        raise BadInputError("benchmark", "has no prepare step (its tables ship with the package)", repr(self.name))

    def baselines(self, entries: Sequence[Entry]) -> Dict[str, List[float]]:
        """Trivial baselines from the architectures alone (no model), reported beside the
        proxies as raw features, not oriented: ``{name: value per entry}``."""
        return {}


#: a space's package registers its benchmarks: the built-in spaces' packages load them
BENCHMARKS: Registry[Benchmark] = Registry("benchmark", builtin.SPACES)


def register_benchmark(cls):
    BENCHMARKS.add(cls.name, cls())
    return cls


def get_benchmark(name: str) -> Benchmark:
    return BENCHMARKS.get(name)


def list_benchmarks(space: Optional[str] = None) -> List[str]:
    """Registered benchmark names (only those of ``space``, when given)."""
    return [n for n in BENCHMARKS.names() if space is None or BENCHMARKS.get(n).space == space]
