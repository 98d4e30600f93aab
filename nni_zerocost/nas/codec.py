"""Architectures <-> flat samples of NNI categorical labels, for any registered space.

NNI's samplers (Random, RegularizedEvolution, TPE, GridSearch, every HPO tuner) handle a flat
dict ``{label: value}`` of categorical choices best, so every space is encoded that way by its
own codec (``get_space(name).codec()``: ``choices``, ``decode``, ``encode``).  The NNI model
spaces, the HPO search-space exporter and the HPO trial all go through it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from ..errors import BadInputError, UnknownNameError


def get_codec(space: str, **options):
    """The NNI label codec of a registered space (options: the space's ``codec_options()`` and
    ``family_options()``: the codec of that family, :meth:`SearchSpace.family`)."""
    from ..spaces import get_space, list_spaces

    try:
        sp = get_space(space)
    except UnknownNameError:
        raise BadInputError("space", f"unknown space; valid spaces: {', '.join(list_spaces())}", repr(space)) from None
    family = {k: options.pop(k) for k in list(options) if k in sp.family_options()}
    unknown = sorted(set(options) - set(sp.codec_options()))
    if unknown:
        takes = ", ".join([*sp.codec_options(), *sp.family_options()]) or "none"
        raise BadInputError(unknown[0], f"the {space!r} space's NNI encoding takes no such option (its options: {takes})")
    return (sp.family(**family) if family else sp).codec(**options)


def search_space_json(space: str, **options) -> Dict[str, Dict[str, Any]]:
    """NNI HPO search space ``{label: {"_type": "choice", "_value": [...]}}`` of a space."""
    return {label: {"_type": "choice", "_value": values} for label, values in get_codec(space, **options).choices().items()}


def write_search_space(space: str, path, **options) -> Path:
    """Write :func:`search_space_json` to ``path`` (for ``searchSpaceFile`` in an NNI config)."""
    p = Path(path)
    lines = [f" {json.dumps(label)}: {json.dumps(spec)}" for label, spec in search_space_json(space, **options).items()]
    p.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return p


if __name__ == "__main__":  # python -m nni_zerocost.nas.codec SPACE PATH
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m nni_zerocost.nas.codec SPACE OUTPUT.json")
    print(write_search_space(sys.argv[1], sys.argv[2]))
