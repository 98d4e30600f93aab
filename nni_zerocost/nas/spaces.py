"""Registered search spaces as NNI 3.0 model spaces, and the architecture behind any NNI model.

:func:`model_space` gives the NNI model space of any registered space: a
``nni.nas.nn.pytorch.ModelSpace`` holding only the categorical labels of the space's codec
(``get_space(name).codec()``); it is never a network.  Freezing a sample (``space.freeze(sample)``,
or NNI's ``executable_model()`` in a trial) decodes it with the codec (so the architecture is
validated by the core space) and builds the space's model (``build_model``).  The frozen module
carries ``zerocost_space`` and ``zerocost_arch`` (the validated architecture), which is what
proxies score.  Each space's class is named after it (``RNNModelSpace``, ``BertModelSpace``, ...)
and importable from this module, so NNI can ship it to trial processes.

Weights of a frozen model follow ``torch.manual_seed`` like any PyTorch module's: it is
initialised with ``seed=torch.initial_seed()``, so under ``torch.manual_seed(s)`` it has exactly
the weights the proxies use with ``seed=s``.

Any other NNI ``ModelSpace`` works too: :func:`space_of` then returns the user's space class as
the space and the frozen module as the architecture (scored by :func:`nni_zerocost.score_model`).
"""
from __future__ import annotations

import functools
import json
from typing import Any, Dict, Mapping, Optional, Tuple

import nni
import torch
from nni.nas.nn.pytorch import ModelSpace

from ..errors import BadInputError, UnknownNameError


class ZeroCostModelSpace(ModelSpace):
    """The labels of one registered space; ``freeze`` builds its model.  Subclassed once per
    space by :func:`model_space_class` (``space_name`` set); options: the space's codec options
    (e.g. ``max_nodes``), family options (``choices`` of the hf space, as plain JSON: NNI ships
    them to trial processes in ``trace_kwargs``) and model options (e.g. ``vocab_size``)."""

    space_name = ""

    def __init__(self, **options):
        super().__init__()
        self.options = dict(options)
        for label, values in self.codec.choices().items():
            self.add_mutable(nni.choice(label, values))

    @classmethod
    def _split(cls, options: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        from ..spaces import get_space

        sp = get_space(cls.space_name)
        names = {*sp.codec_options(), *sp.family_options()}
        return ({k: v for k, v in options.items() if k in names}, {k: v for k, v in options.items() if k not in names})

    @classmethod
    def make_codec(cls, **options):
        from .codec import get_codec

        return get_codec(cls.space_name, **cls._split(options)[0])

    @property
    def codec(self):
        return self.make_codec(**self.options)

    @classmethod
    def arch_from_sample(cls, sample: Mapping[str, Any], **options):
        """The validated architecture of a sample (no weights are built)."""
        return cls.make_codec(**options).decode(sample)

    def sample_of(self, arch) -> Dict[str, Any]:
        """The sample of an architecture of the space (inverse of :meth:`arch_from_sample`)."""
        return self.codec.encode(arch)

    def freeze(self, sample: Mapping[str, Any]) -> torch.nn.Module:
        self.validate(sample)
        return self.create_fixed_module(sample, **self.options)

    @classmethod
    def create_fixed_module(cls, sample, **options):
        from ..spaces import get_space

        arch = cls.make_codec(**options).decode(sample)
        model = get_space(cls.space_name).build_model(arch, seed=torch.initial_seed(), **cls._split(options)[1])
        model.zerocost_space, model.zerocost_arch = cls.space_name, arch
        return model

    def forward(self, *args, **kwargs):  # pragma: no cover - a space is not a network
        raise RuntimeError(f"{type(self).__name__} is a search space; freeze a sample to get a model")


@functools.lru_cache(maxsize=None)
def model_space_class(space: str) -> type:
    """The NNI model-space class of a registered space (``<Title>ModelSpace``, importable from
    this module)."""
    from ..spaces import get_space

    sp = get_space(space)
    name = f"{sp.title}ModelSpace"
    return type(name, (ZeroCostModelSpace,), {"space_name": space, "__module__": __name__, "__qualname__": name,
                                              "__doc__": f"NNI model space of the {space!r} search space: "
                                                         f"{(type(sp).__doc__ or '').strip().splitlines()[0]}"})


def __getattr__(name: str):
    """``RNNModelSpace``, ``BertModelSpace``, ...: the classes of the registered spaces."""
    if name.endswith("ModelSpace"):
        from ..spaces import get_space, list_spaces

        for space in list_spaces():
            if f"{get_space(space).title}ModelSpace" == name:
                return model_space_class(space)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_space(space: str, **options) -> ZeroCostModelSpace:
    """A fresh NNI model space of a registered space (options: its codec, family and model
    options; a family option as plain JSON, e.g. ``choices=get_space("hf").family(choices=path)
    .space_options["choices"]``, so trial processes need no file)."""
    from ..spaces import list_spaces

    if space not in list_spaces():
        raise UnknownNameError("search space", space, list_spaces())
    return model_space_class(space)(**options)


def space_class_of(model) -> tuple:
    """``(ModelSpace subclass, its init kwargs)`` behind an NNI ExecutableModelSpace (simplified or
    raw format), or ``(None, None)``."""
    holder = getattr(model, "model", None)  # SimplifiedModelSpace
    if holder is None:
        holder = getattr(model, "model_space", None)  # RawFormatModelSpace
    symbol = getattr(holder, "trace_symbol", None)
    if isinstance(symbol, type) and issubclass(symbol, ModelSpace):
        return symbol, dict(getattr(holder, "trace_kwargs", {}) or {})
    return None, None


def user_space_key(cls: type, options: Mapping[str, Any], sample: Mapping[str, Any]) -> Tuple[str, str]:
    """``(space, architecture key)`` of a frozen sample of a user's model space: the class's
    import path (with its init options), and the canonical JSON of the sample."""
    space = f"{cls.__module__}.{cls.__qualname__}"
    if options:
        space += json.dumps(dict(options), sort_keys=True, default=str)
    return space, json.dumps(dict(sample), sort_keys=True, default=str)


def space_of(model) -> tuple:
    """``(space, architecture)`` of an NNI model: ``(name, arch)`` for a registered space (the
    sample is decoded directly, no weights built), or ``(UserSpace, frozen sample)`` for any
    other ``ModelSpace`` (:class:`UserSpaceSample`)."""
    arch = getattr(model, "zerocost_arch", None)
    if arch is not None:
        return model.zerocost_space, arch
    cls, options = space_class_of(model)
    sample = getattr(model, "sample", None)
    if cls is not None and sample is not None:
        if issubclass(cls, ZeroCostModelSpace):
            return cls.space_name, cls.arch_from_sample(sample, **options)
        return None, UserSpaceSample(cls, options, dict(sample), model)
    if isinstance(model, ModelSpace):
        frozen = getattr(model, "_frozen_context", None)  # the sample a frozen model space was built with
        if isinstance(frozen, Mapping):
            return None, UserSpaceSample(type(model), {}, frozen, model)
    elif isinstance(model, torch.nn.Module):
        return None, UserSpaceSample(type(model), {}, None, model)  # a plain module: no sample to key it by
    raise BadInputError(
        "model", f"cannot score {type(model).__name__}: pass an NNI ExecutableModelSpace (simplified or raw "
        "format), a frozen model, or (space, architecture)")


class UserSpaceSample:
    """A candidate of a user's NNI model space: the space class, its options, the frozen sample,
    and how to build the model (``build(seed)``: freeze under ``torch.manual_seed(seed)``)."""

    def __init__(self, cls: type, options: Mapping[str, Any], sample: Optional[Mapping[str, Any]], model):
        self.cls, self.options, self._model = cls, dict(options), model
        self.sample = None if sample is None else dict(sample)
        self.space, self.key = user_space_key(cls, self.options, self.sample or {})
        if sample is None:  # a bare frozen model: its scores cannot be stored under a key
            self.key = None
        self._built: Dict[int, torch.nn.Module] = {}

    def build(self, seed: int) -> torch.nn.Module:
        """The language model of this sample, weights drawn under ``torch.manual_seed(seed)``
        (built once per seed: the plan inspects it, then scores it)."""
        model = self._model
        if self.sample is None or not (hasattr(model, "executable_model") or isinstance(model, ModelSpace)):
            return model  # a plain module: scored as given
        if seed not in self._built:
            sample = {k: v for k, v in self.sample.items() if not k.startswith("__")}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                if isinstance(model, ModelSpace):
                    built = model.freeze(sample)
                elif self.cls.freeze is not ModelSpace.freeze:  # the space's own freeze decides the model
                    built = self.cls(**self.options).freeze(sample)
                else:  # NNI rebuilds the space under the sample
                    built = model.executable_model()
            self._built = {seed: built}
        return self._built[seed]

    def __repr__(self):
        return f"UserSpaceSample({self.space}, {self.key})"
