"""The abstract search space every space implements, and the scoring context it hands out.

A space is one plugin package: everything specific to it is reached through its
:class:`SearchSpace` object (``get_space(name)``), so no code outside the package names it:

* the architecture: ``parse`` / ``sample`` / ``to_dict`` / ``arch_hash`` / ``choices``, a one-line
  :meth:`~SearchSpace.summary`, sizes without building (:meth:`~SearchSpace.param_count`,
  :meth:`~SearchSpace.flops`);
* the model and data: :meth:`~SearchSpace.build_model`, batches, the scoring context and the
  capabilities it :attr:`~SearchSpace.offers` (:mod:`nni_zerocost.capabilities`), the context
  options with their help (the CLI makes its flags from them), a small smoke batch for the
  conformance checks;
* the host frameworks' forms: the NNI label codec (:meth:`~SearchSpace.codec`) and the NASLib
  compact form (:meth:`~SearchSpace.naslib_form`), both with generic defaults built from a flat
  :meth:`~SearchSpace.choices`;
* a *family*: options that choose what is searched, not what a score is (``--choices FILE`` of
  the hf space): :meth:`~SearchSpace.family_options` declares them, :meth:`~SearchSpace.family`
  gives the space configured by them, whose ``choices``/``sample``/``codec``/``naslib_form``
  search that family while ``parse``/``to_dict``/``arch_hash`` (and so every store key) stay
  the same;
* its benchmarks register themselves with ``space = <name>`` (:mod:`nni_zerocost.benchmarks`).

Kept small on purpose (optuna-style): only the architecture methods are abstract.  Spaces sit
*below* proxies in the data flow space -> model -> batch -> proxy -> score, so nothing here (or
anywhere under ``spaces/``) imports :mod:`nni_zerocost.proxies`; proxies read what a context
offers.
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
from typing import Any, Callable, Dict, FrozenSet, Generic, List, Mapping, Optional, Sequence, TypeVar

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import InvalidArchitectureError
from .. import builtin
from ..registry import Registry

A = TypeVar("A")  # the architecture type of a space (Cell, BertConfig, ...)


def scoring_device(model: torch.nn.Module, device=None) -> torch.device:
    """Where an existing model is scored: its own device.  Another device asked for is refused
    (moving the model would change the caller's object); a model without parameters is on the CPU."""
    p = next(model.parameters(), None)
    own = p.device if p is not None else torch.device("cpu")
    if device is not None and resolve_device(device) != own:
        from ..errors import BadInputError

        raise BadInputError("device", f"the model lives on {own}; move it there yourself, or pass device=None",
                            repr(str(device)))
    return own


class ScoringContext(abc.ABC):
    """One model + one batch + one seed; caches the passes several proxies share.

    ``offers``: the capabilities (:mod:`nni_zerocost.capabilities`) this context provides,
    which decide the proxies that apply.  ``cache`` holds derived tensors keyed by what produced
    them; :meth:`close` drops everything so no tensor, graph or hook outlives a scoring call.

    ``device``: where the model and the batch live (the CPU by default; ``"auto"``, ``"cuda"``,
    ``"cuda:N"`` or a ``torch.device``, checked as by :func:`~nni_zerocost.make_plan`).
    Weights are drawn on the CPU and moved, so the initialisation does not depend on it.
    """

    offers: FrozenSet[str] = frozenset()

    def __init__(self, arch, batch, *, seed: int = 0, device=None):
        self.arch = arch
        self.batch = batch
        self.seed = int(seed)
        self.device = torch.device("cpu") if device is None else resolve_device(device)
        self.cache: Dict[Any, Any] = {}

    def cached(self, key, compute: Callable[[], Any]):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def on_close(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the context closes (last registered first): e.g. give a converted
        model its own weights back."""
        self.__dict__.setdefault("_on_close", []).append(fn)

    def close(self) -> None:
        self.cache.clear()
        closers = self.__dict__.pop("_on_close", [])
        while closers:
            closers.pop()()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclasses.dataclass(frozen=True)
class ContextOption:
    """One option of a space's scoring context (how the model is built or scored).

    ``values``: the allowed values, the first being the default, or a type (``int``) for a free
    positive number (``str`` with ``parse``: a free value ``parse`` reads and checks).  ``help``
    becomes the CLI flag's help; a ``(False, True)`` option is a
    switch (``--as-trained``); ``metavar`` names a free value in the help (``FILE``).
    """

    name: str
    values: Any
    help: str
    metavar: str = ""
    #: reads a given value (``"8GiB"`` -> bytes), raising BadInputError naming the option
    parse: Optional[Callable[[Any], Any]] = None

    @property
    def default(self):
        return None if isinstance(self.values, type) else self.values[0]

    @property
    def is_switch(self) -> bool:
        return not isinstance(self.values, type) and tuple(self.values) == (False, True)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class FlatCodec:
    """NNI labels of a space whose :meth:`SearchSpace.choices` is a flat ``{label: [values]}``
    and whose ``parse`` accepts such a dict: a sample *is* the architecture's dict.

    The default codec of every space; spaces with nested architectures (graphs, per-layer
    lists) define their own (same three methods)."""

    def __init__(self, space: "SearchSpace"):
        self.space = space

    def choices(self) -> Dict[str, list]:
        out = {}
        for label, values in self.space.choices().items():
            if not isinstance(values, (list, tuple)) or not values:
                raise TypeError(f"space {self.space.name!r}: choices() is not a flat {{label: [values]}} "
                                f"(label {label!r}); define codec() for it")
            out[label] = list(values)
        return out

    def decode(self, sample: Mapping[str, Any]):
        choices = self.choices()
        check_sample(sample, choices)
        return self.space.parse({label: sample[label] for label in choices})

    def encode(self, arch) -> Dict[str, Any]:
        d = dict(self.space.to_dict(self.space.parse(arch)))
        choices = self.choices()
        for label, values in choices.items():
            if d.get(label) not in values:
                raise InvalidArchitectureError(f"{label} = {d.get(label)!r} is outside the space (valid: {values})")
        return {label: d[label] for label in choices}


def check_sample(sample: Mapping[str, Any], choices: Mapping[str, list]) -> None:
    """Missing labels and values outside a label's choices are errors; extra keys (e.g. labels
    of a user's mutable evaluator sharing the sample) are ignored."""
    if not isinstance(sample, Mapping):
        raise InvalidArchitectureError(f"a sample must be a dict of labels, got {type(sample).__name__}")
    lacking = [label for label in choices if label not in sample]
    if lacking:
        raise InvalidArchitectureError(
            f"sample lacks {len(lacking)} label(s): {', '.join(lacking[:5])}" + (" ..." if len(lacking) > 5 else "")
        )
    for label, values in choices.items():
        if sample[label] not in values:
            raise InvalidArchitectureError(f"{label} = {sample[label]!r} is not one of {values}")


@dataclasses.dataclass
class NASLibForm:
    """How a space looks to NASLib: the compact form, moves, encoding and benchmark queries.

    Pure Python (NASLib is imported lazily, only by :mod:`naslib_ext` and by ``encode`` where a
    space reuses NASLib's own encoder).  :mod:`naslib_ext.search_spaces` turns it into a NASLib
    ``Graph`` class named ``class_name`` whose ``get_type()`` is ``type_name``.

    * ``compact(arch)`` / ``arch(compact)``: hashable compact <-> core architecture;
    * ``is_compact(spec)``: whether ``set_spec`` got a compact (else a core architecture);
    * ``moves(compact)``: every compact one change away (``None``: the NASLib base class's own
      ``mutate``/``get_nbhd`` are used, with their compacts checked by ``arch``);
    * ``encode(compact, encoding)``: the encoding NASLib's predictors ask for by name
      (``"adjacency_one_hot"``, ``"compact"``, ...);
    * ``benchmark``: the benchmark answering ``query`` (None: the first registered benchmark of
      the space, found by :mod:`naslib_ext`); ``metrics``: NASLib metric name ->
      function of the benchmark's primary value (e.g. ``VAL_ACCURACY`` = 100 - loss);
    * ``base``: ``"module:Class"`` of a NASLib graph class to extend (so NASLib code that
      switches on it keeps working), or None for a plain NASLib ``Graph``;
    * ``dataset``: the dataset name NASLib's zero-cost benchmark files use for it;
    * ``num_classes``: what NASLib's ``ZeroCost`` reads as ``graph.num_classes`` (the
      vocabulary of a language model);
    * ``batch_of_inputs(ids)``: the core batch of the token ids ``(B, T)`` a NASLib data loader
      yields, or None where the space scores on its own batches only.
    """

    class_name: str
    type_name: str
    compact: Callable[[Any], Any]
    arch: Callable[[Any], Any]
    is_compact: Callable[[Any], bool]
    encode: Callable[[Any, str], Any]
    moves: Optional[Callable[[Any], List[Any]]] = None
    benchmark: Optional[str] = None
    metrics: Mapping[str, Callable[[float], float]] = dataclasses.field(default_factory=dict)
    base: Optional[str] = None
    dataset: str = ""
    num_classes: Optional[int] = None
    batch_of_inputs: Optional[Callable[[torch.Tensor], Any]] = None


def generic_naslib_form(space: "SearchSpace") -> NASLibForm:
    """The NASLib form of a space with an NNI codec: the compact is the tuple of label values in
    label order, a move changes one label, and the encoding is one-hot per label."""
    codec = space.codec()
    labels = list(codec.choices())
    choices = codec.choices()

    def compact(arch):
        sample = codec.encode(arch)
        return tuple(sample[label] for label in labels)

    def arch(c):
        if not isinstance(c, (tuple, list)) or len(c) != len(labels):
            raise InvalidArchitectureError(f"not a compact of the {space.name!r} space ({len(labels)} label values)")
        return codec.decode(dict(zip(labels, c)))

    def moves(c):
        out = []
        for i, label in enumerate(labels):
            out += [c[:i] + (v,) + c[i + 1:] for v in choices[label] if v != c[i]]
        return out

    def encode(c, encoding="adjacency_one_hot"):
        if encoding == "compact":
            return c
        return [int(v == value) for label, value in zip(labels, c) for v in choices[label]]

    return NASLibForm(class_name=f"{space.name.title().replace('_', '')}NASLibSpace", type_name=space.name,
                      compact=compact, arch=arch, is_compact=lambda s: isinstance(s, tuple) and len(s) == len(labels),
                      encode=encode, moves=moves, dataset=space.name)


class SearchSpace(abc.ABC, Generic[A]):
    """A family of architectures: parse/validate, sample, hash, models, batches, contexts, and
    the forms NNI and NASLib see.

    Architectures are immutable value objects; ``to_dict``/``parse`` round-trip them through
    plain JSON so they can cross process boundaries (NNI trials, worker pools, result stores).
    """

    name: str = ""
    #: capabilities its scoring contexts offer (decides the proxies that apply); with
    #: ``offers_vary`` every capability one of its models *may* offer
    offers: FrozenSet[str] = frozenset()
    #: True when models of the space offer different capabilities (your own models): each
    #: architecture's model is checked against the request when it is scored
    offers_vary: bool = False
    #: False for a space that has no choices to search (it scores the architectures it is given)
    searchable: bool = True
    #: the proxy adapters score with when none is named (None: the first that applies)
    default_proxy: Optional[str] = None
    #: the family options this space was configured with (:meth:`family`), as plain JSON with
    #: any file read in, so the same family is made again in another process or machine; empty
    #: for a space as registered (read-only)
    space_options: Mapping[str, Any] = {}

    # -- architectures (abstract) ------------------------------------------------------------
    @abc.abstractmethod
    def parse(self, obj: Any) -> A:
        """Validate a dict / JSON string / architecture object; raise InvalidArchitectureError."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> A:
        """Draw one valid architecture from the space."""

    @abc.abstractmethod
    def to_dict(self, arch: A) -> Mapping[str, Any]:
        """JSON-serialisable form accepted back by :meth:`parse`."""

    @abc.abstractmethod
    def choices(self) -> Dict[str, Sequence[Any]]:
        """The space's own choices (what adapters encode), e.g. ``hidden_size``."""

    @abc.abstractmethod
    def context(self, arch: A, batch, *, seed: int = 0, device=None, **options) -> ScoringContext:
        """A :class:`ScoringContext` for one architecture on ``device`` (a ``torch.device`` or
        a string; None = the CPU; front ends resolve ``"auto"`` through :func:`make_plan`)."""

    def arch_hash(self, arch: A) -> str:
        """Canonical hash: equal for architectures that compute the same function family.
        Default: sha256 of the sorted JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(arch), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def arch_key(self, arch: A, **context_options) -> str:
        """What identifies an architecture's *scores* under ``context_options``: the canonical
        hash wherever isomorphic architectures build identical models (the default)."""
        return self.arch_hash(arch)

    def summary(self, arch: A) -> str:
        """One line naming every field that tells architectures apart (search reports)."""
        return json.dumps(self.to_dict(self.parse(arch)), sort_keys=True, default=str)

    # -- model and data -------------------------------------------------------------------
    def build_model(self, arch: A, *, seed: int = 0, **options) -> torch.nn.Module:
        """The model of ``arch`` with weights drawn from ``seed`` (what NNI's ``freeze`` returns)."""
        with self.context(arch, self.default_batch(), seed=seed, **options) as ctx:
            return ctx.model()

    def param_count(self, arch: A, **options) -> Optional[int]:
        """Parameters of the model, counted from the architecture alone (no model is built);
        None when the space cannot count them without building."""
        return None

    def nonembedding_param_count(self, arch: A, **options) -> Optional[int]:
        """Parameters outside the embedding tables (and an output layer tied to them), from the
        architecture alone; None when the space cannot count them without building."""
        return None

    def flops(self, arch: A, **options) -> Optional[float]:
        """Forward multiply-accumulates per token from the architecture alone, or None."""
        return None

    def layer_count(self, arch: A, **options) -> Optional[int]:
        """The repeated blocks of the model (its depth), from the architecture alone, or None."""
        return None

    def cost_inputs(self, arch: A, **options) -> Dict[str, int]:
        """What a latency or memory measurement feeds the model (:mod:`nni_zerocost.costs`):
        ``seq_len`` (default: the model's context length) and ``vocab_size`` (default: read from
        the model), where the architecture states them better than the model does."""
        return {}

    def default_batch(self, seed: int = 0):
        """The embedded default input batch (needs no file)."""
        raise NotImplementedError(f"space {self.name!r} has no default batch")

    def batch(self, corpus: Optional[str] = None, *, batch_size: Optional[int] = None,
              seq_len: Optional[int] = None):
        """The input batch for a corpus path and/or shape; the embedded default when all are None.

        Raises :class:`~nni_zerocost.errors.DataError` (a missing or unreadable corpus) or
        ``ValueError`` (an option the space does not take) before any model is built.
        """
        if corpus is not None or batch_size is not None or seq_len is not None:
            raise ValueError(f"the {self.name!r} space takes no corpus or batch shape")
        return self.default_batch()

    def smoke_batch(self):
        """A small batch for the conformance checks (speed only; the default batch)."""
        return self.default_batch(0)

    def smoke_options(self) -> Dict[str, Any]:
        """Job fields that make a check's run of this space quick (context options, batch shape),
        for checks that go through a job and its workers (:func:`~nni_zerocost.testing.check_backend`)."""
        return {}

    def smoke_architecture(self) -> A:
        """A small architecture for the conformance checks (speed only; a seeded sample)."""
        return self.sample(np.random.default_rng(0))

    def smoke_architectures(self, samples: int = 3) -> List[A]:
        """The architectures the conformance checks try: the smoke architecture and ``samples``
        seeded samples."""
        rng = np.random.default_rng(0)
        return [self.smoke_architecture()] + [self.sample(rng) for _ in range(samples)]

    def given_batch(self, batch):
        """A ready batch handed to :func:`~nni_zerocost.make_plan` (not from a corpus), as the
        space's contexts take it; default: as given."""
        return batch

    def context_options(self) -> Dict[str, ContextOption]:
        """Context options the space takes, by name."""
        return {}

    def family_options(self) -> Dict[str, ContextOption]:
        """Options choosing *which* architectures the space searches (``choices`` of the hf
        space), by name; the CLI makes a flag of each for every command taking ``--space``.
        Unlike context options they never change a score, so they are not in store keys."""
        return {}

    def family(self, **space_options) -> "SearchSpace":
        """The space configured by ``space_options`` (:meth:`family_options`): what ``choices``,
        ``sample``, ``codec`` and ``naslib_form`` search.  ``parse``, ``to_dict`` and
        ``arch_hash`` take every architecture of the space whatever the family.  Bad values
        raise :class:`~nni_zerocost.errors.BadInputError` naming the option.  Default: the space
        itself (it takes no family options)."""
        if space_options:
            raise TypeError(f"the {self.name!r} space takes no family options, got {sorted(space_options)}")
        return self

    def limits(self) -> Dict[str, int]:
        """Model properties that bound proxy options, known before any model is built
        (``{"recurrent_layers": 3}``: ``hidden_covariance:layer`` is 1..3)."""
        return {}

    # -- host frameworks -------------------------------------------------------------------
    def codec(self, **options):
        """The NNI label codec: ``choices()`` {label: [values]}, ``decode(sample)`` -> arch,
        ``encode(arch)`` -> sample.  Default: :class:`FlatCodec`."""
        if options:
            raise TypeError(f"the {self.name!r} space's codec takes no options, got {sorted(options)}")
        return FlatCodec(self)

    def codec_options(self) -> Dict[str, Any]:
        """Keyword options of :meth:`codec` and their defaults (NNI model space arguments)."""
        return {}

    def naslib_form(self) -> NASLibForm:
        """How NASLib sees the space (default: :func:`generic_naslib_form`)."""
        return generic_naslib_form(self)

    # -- a user's own model ----------------------------------------------------------------
    def claims(self, model: torch.nn.Module) -> bool:
        """True when ``model`` is one of this space's own models (as :meth:`build_model` makes
        them); :func:`nni_zerocost.score_model` then scores it with :meth:`context_for_model`."""
        return False

    def context_for_model(self, model: torch.nn.Module, batch, *, seed: int = 0, device=None) -> ScoringContext:
        """A context scoring an existing model of this space as is (batch None: the default)."""
        raise NotImplementedError(f"the {self.name!r} space scores no existing model")


SPACES: Registry[SearchSpace] = Registry("search space", builtin.SPACES)


def register_space(space_cls):
    """Class decorator: instantiate the space and register it under ``space_cls.name``."""
    SPACES.add(space_cls.name, space_cls())
    return space_cls


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)


def list_spaces() -> list[str]:
    return SPACES.names()
