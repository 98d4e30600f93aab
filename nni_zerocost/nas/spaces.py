"""The two search spaces as NNI 3.0 model spaces (``nni.nas.nn.pytorch.ModelSpace``).

A model space holds only the categorical labels of :mod:`.codec`; it is never a network.
Freezing a sample (``space.freeze(sample)``, or NNI's ``executable_model()`` in a trial)
decodes it with the codec (so the architecture is validated by the core space) and builds the
core model: :class:`~nni_zerocost.spaces.rnn.RNNLanguageModel` for cells, ``BertModel`` for
BERT configurations.  The frozen module carries ``zerocost_space`` and ``zerocost_arch`` (the
validated Cell / BertConfig), which is what proxies score.

Weights of a frozen model follow ``torch.manual_seed`` like any PyTorch module's: it is
initialised with ``seed=torch.initial_seed()``, so under ``torch.manual_seed(s)`` it has exactly
the weights the proxies use with ``seed=s``.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import nni
import torch
from nni.nas.nn.pytorch import ModelSpace

from ..errors import UnknownNameError
from .codec import BertCodec, RNNCellCodec, RNN_MAX_NODES


class _ZeroCostSpace(ModelSpace):
    """Shared plumbing: labels from a codec, decode/encode helpers, freeze = build."""

    space_name = ""

    @staticmethod
    def make_codec(**options):
        raise NotImplementedError

    def _add_labels(self) -> None:
        for label, values in self.codec.choices().items():
            self.add_mutable(nni.choice(label, values))

    @property
    def codec(self):
        return self.make_codec(**self.args)

    @classmethod
    def arch_from_sample(cls, sample: Mapping[str, Any], **options):
        """The validated architecture of a sample (no weights are built)."""
        return cls.make_codec(**options).decode(sample)

    def sample_of(self, arch) -> Dict[str, Any]:
        """The sample of an architecture of ours (inverse of :meth:`arch_from_sample`)."""
        return self.codec.encode(arch)

    def freeze(self, sample: Mapping[str, Any]) -> torch.nn.Module:
        self.validate(sample)
        return self.create_fixed_module(sample, **self.args)

    def forward(self, *args, **kwargs):  # pragma: no cover - a space is not a network
        raise RuntimeError(f"{type(self).__name__} is a search space; freeze a sample to get a model")


class RNNModelSpace(_ZeroCostSpace):
    """NAS-Bench-NLP recurrent cells: ``max_nodes`` node slots, hidden tuple size 1-3.

    ``vocab_size`` sizes the embedding of the frozen :class:`RNNLanguageModel`.
    """

    space_name = "rnn"

    def __init__(self, max_nodes: int = RNN_MAX_NODES, vocab_size: int = 10_000):
        super().__init__()
        self._add_labels()

    @staticmethod
    def make_codec(max_nodes: int = RNN_MAX_NODES, **_):
        return RNNCellCodec(max_nodes)

    @classmethod
    def create_fixed_module(cls, sample, max_nodes: int = RNN_MAX_NODES, vocab_size: int = 10_000):
        from ..spaces.rnn import RNNLanguageModel

        cell = cls.make_codec(max_nodes).decode(sample)
        model = RNNLanguageModel(cell, vocab_size=vocab_size, seed=torch.initial_seed())
        model.zerocost_space, model.zerocost_arch = cls.space_name, cell
        return model


class BertModelSpace(_ZeroCostSpace):
    """FlexiBERT-style BERT configurations (needs the ``bert`` search space of the core)."""

    space_name = "bert"

    def __init__(self):
        super().__init__()
        self._add_labels()

    @staticmethod
    def make_codec(**_):
        return BertCodec()

    @classmethod
    def create_fixed_module(cls, sample):
        from ..spaces.bert import BertModel

        config = cls.make_codec().decode(sample)
        model = BertModel(config, seed=torch.initial_seed())
        model.zerocost_space, model.zerocost_arch = cls.space_name, config
        return model


MODEL_SPACES = {"rnn": RNNModelSpace, "bert": BertModelSpace}


def model_space(space: str, **options) -> _ZeroCostSpace:
    """A fresh NNI model space by name (``rnn`` options: ``max_nodes``, ``vocab_size``)."""
    try:
        cls = MODEL_SPACES[space]
    except KeyError:
        raise UnknownNameError("NNI model space", space, sorted(MODEL_SPACES)) from None
    return cls(**options)


def space_class_of(model) -> tuple:
    """``(ModelSpace subclass of ours, its init kwargs)`` behind an NNI ExecutableModelSpace
    (simplified or raw format), or ``(None, None)``."""
    holder = getattr(model, "model", None)  # SimplifiedModelSpace
    if holder is None:
        holder = getattr(model, "model_space", None)  # RawFormatModelSpace
    symbol = getattr(holder, "trace_symbol", None)
    if isinstance(symbol, type) and issubclass(symbol, _ZeroCostSpace):
        return symbol, dict(holder.trace_kwargs)
    return None, None


def space_of(model) -> tuple:
    """``(space name, architecture)`` of an NNI ExecutableModelSpace or a frozen module of ours.

    For executable models the sample is decoded directly (no weights are built).
    """
    arch = getattr(model, "zerocost_arch", None)
    if arch is not None:
        return model.zerocost_space, arch
    cls, options = space_class_of(model)
    if cls is not None and getattr(model, "sample", None) is not None:
        return cls.space_name, cls.arch_from_sample(model.sample, **options)
    raise TypeError(
        f"cannot find an nni_zerocost architecture in {type(model).__name__}: use a model space "
        "from nni_zerocost.nas (RNNModelSpace, BertModelSpace) with the simplified or raw model format"
    )
