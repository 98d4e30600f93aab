"""Let NASLib (automl/NASLib, branch Develop) import on Python >= 3.10, torch 2.x, no torchvision.

NASLib Develop targets Python 3.7-3.9 and an image-classification stack.  On a modern
interpreter ``import naslib.predictors`` / ``import naslib.search_spaces`` fails for exactly two
reasons, and :func:`enable` patches exactly those two things, nothing else:

1. ``collections.Iterable`` -- the ABC aliases in ``collections`` were removed in Python 3.10;
   NASLib's WL-kernel GP predictor (``naslib/predictors/gp/gpwl_utils/wl_kernel.py``) still calls
   ``isinstance(x, collections.Iterable)``.  :func:`enable` sets ``collections.Iterable =
   collections.abc.Iterable`` when the name is missing.  (It is the only such alias NASLib
   uses.)
2. ``torchvision`` -- imported at module level by ``naslib.utils`` (``datasets``,
   ``transforms``), ``naslib.utils.load_ops`` (subclasses ``transforms.Compose``, ``Resize``, ...
   and imports ``transforms.functional``), ``naslib.utils.custom_dataset`` (``Compose``) and
   ``naslib.search_spaces.core.primitives`` / TransNAS-Bench (``models``).  These serve NASLib's
   image pipelines only; nothing on the NLP/BERT path calls them.  When torchvision is *not
   installed*, :func:`enable` registers a stand-in package ``torchvision`` in ``sys.modules``
   with the submodules ``datasets``, ``models``, ``transforms`` and ``transforms.functional``.
   The transform classes that NASLib subclasses at import time are placeholder classes whose
   construction raises :class:`ModuleNotFoundError`; any other attribute access raises
   :class:`ModuleNotFoundError` naming the missing torchvision object.  So image code fails
   loudly the moment it is used, and nothing else is affected.  When torchvision is installed
   the real one is used and nothing is stubbed.

Caveat: the stand-in lives in ``sys.modules`` for the rest of the process, so other libraries
that probe ``importlib.util.find_spec("torchvision")`` in that process see a (useless) module;
the stand-in carries ``STAND_IN_MARKER`` so such code can tell.  Call :func:`enable` only in
processes that use NASLib.

Known NASLib issues outside this scope (left alone on purpose): ``np.int`` in the SemiNAS
predictors (fails when they run, numpy >= 1.24), and ``compute_scores`` returning NaN with
scikit-learn >= 1.6 (our driver computes metrics with scipy instead).

:func:`enable` is idempotent and a no-op where nothing is needed.  This module does not import
NASLib.
"""
from __future__ import annotations

import collections
import collections.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import FrozenSet, Set

STAND_IN_MARKER = "__nni_zerocost_stand_in__"

#: transform classes NASLib subclasses or imports by name at module import time
_TRANSFORM_CLASSES = (
    "Compose", "Resize", "ToPILImage", "ToTensor", "Normalize", "RandomHorizontalFlip",
    "RandomGrayscale", "ColorJitter", "RandomCrop",
)
_SUBMODULES = ("datasets", "models", "transforms", "transforms.functional")

_applied: Set[str] = set()


def enable() -> FrozenSet[str]:
    """Apply the patches this interpreter needs; returns the names of those applied *now*.

    Possible names: ``"collections.Iterable"``, ``"torchvision"``.  A second call returns an
    empty set and changes nothing.
    """
    now = set()
    if not hasattr(collections, "Iterable"):
        collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
        now.add("collections.Iterable")
    if _torchvision_missing():
        _install_torchvision_stand_in()
        now.add("torchvision")
    _applied.update(now)
    return frozenset(now)


def applied() -> FrozenSet[str]:
    """Every patch :func:`enable` has applied in this process."""
    return frozenset(_applied)


def is_stand_in(module: types.ModuleType) -> bool:
    """True for the torchvision stand-in (and its submodules)."""
    return bool(getattr(module, STAND_IN_MARKER, False))


def _torchvision_missing() -> bool:
    if sys.modules.get("torchvision") is not None:  # real one already imported, or our stand-in
        return False
    return importlib.util.find_spec("torchvision") is None  # None also when blocked in sys.modules


class _MissingTorchvisionModule(types.ModuleType):
    """A stand-in module: known placeholders resolve, anything else fails loudly."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f"{self.__name__}.{name} needs torchvision, which is not installed "
            "(nni-zerocost's NASLib compat layer stands in for it only so that NASLib imports; "
            "install torchvision to use NASLib's image pipelines)",
            name="torchvision",
        )


def _placeholder_class(qualname: str) -> type:
    def __init__(self, *args, **kwargs):
        raise ModuleNotFoundError(
            f"{qualname} needs torchvision, which is not installed (NASLib image transforms)",
            name="torchvision",
        )

    module, _, name = qualname.rpartition(".")
    return type(name, (), {"__init__": __init__, "__module__": module, STAND_IN_MARKER: True})


def _install_torchvision_stand_in() -> None:
    def make(name: str) -> types.ModuleType:
        mod = _MissingTorchvisionModule(name, "Stand-in for the missing torchvision (nni-zerocost NASLib compat)")
        mod.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, origin="nni-zerocost stand-in")
        setattr(mod, STAND_IN_MARKER, True)
        return mod

    root = make("torchvision")
    modules = {"torchvision": root}
    for sub in _SUBMODULES:
        full = f"torchvision.{sub}"
        modules[full] = make(full)
        parent, _, leaf = full.rpartition(".")
        setattr(modules[parent], leaf, modules[full])
    for cls in _TRANSFORM_CLASSES:
        setattr(modules["torchvision.transforms"], cls, _placeholder_class(f"torchvision.transforms.{cls}"))
    sys.modules.update(modules)


INSTALL_HINT = (
    "NASLib is not importable. It is not on PyPI and its setup.py refuses Python > 3.9: clone "
    "github.com/automl/NASLib (branch Develop), install its dependencies, and put the clone on "
    "PYTHONPATH (see the nni-zerocost README, section NASLib)."
)


def import_naslib():
    """:func:`enable`, then ``import naslib``; an ImportError says how to install NASLib.

    Nothing is patched when NASLib is not installed at all.
    """
    if sys.modules.get("naslib") is None and importlib.util.find_spec("naslib") is None:
        raise ImportError(INSTALL_HINT)
    enable()
    try:
        import naslib  # noqa: F401
        from naslib.search_spaces.core.graph import Graph  # noqa: F401  (pulls in the deps)
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return naslib
