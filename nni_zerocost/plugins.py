"""Third-party proxies and spaces: installed entry points, and modules named at run time.

A distribution registers its proxies or spaces by declaring an entry point in one of the groups
``nni_zerocost.proxies`` / ``nni_zerocost.spaces`` (``pyproject.toml``)::

    [project.entry-points."nni_zerocost.proxies"]
    my_proxies = "my_package.proxies"

Loading the entry point imports the module, whose ``@register_proxy`` / ``@register_space``
decorators register what it defines.  Code that is not installed loads with ``--plugin
pkg.module`` on the command line (a job's ``plugins``: every worker process, Ray task and NNI
trial of the job loads them from the job), or the environment variable ``NNI_ZEROCOST_PLUGINS``
(modules separated by commas), which processes started from this one inherit.

A plugin that fails to import is an error naming it (never silently skipped: a typo in a plugin
must not show up later as "unknown proxy").
"""
from __future__ import annotations

import importlib
import os
from typing import List

from .errors import BadInputError

GROUPS = ("nni_zerocost.proxies", "nni_zerocost.spaces")
ENV = "NNI_ZEROCOST_PLUGINS"

_state = {"loading": False, "done": False, "modules": set()}


def _env_modules() -> List[str]:
    return [m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()]


def load_plugins() -> None:
    """Import every installed entry point of both groups and every module in
    ``$NNI_ZEROCOST_PLUGINS`` (once per process; later additions to the variable are loaded on
    the next call)."""
    if _state["loading"]:
        return
    _state["loading"] = True
    try:
        if not _state["done"]:
            from importlib.metadata import entry_points

            for group in GROUPS:
                for ep in entry_points(group=group):
                    try:
                        ep.load()
                    except Exception as e:
                        raise ImportError(f"the nni-zerocost plugin {ep.name!r} ({ep.value}, entry point group "
                                          f"{group}) failed to load: {type(e).__name__}: {e}") from e
            _state["done"] = True
        for module in _env_modules():
            _import(module, f"${ENV}")
    finally:
        _state["loading"] = False


def load_plugin(module: str) -> None:
    """Import ``module`` (``pkg.module``) so that its proxies and spaces register (once per
    process).  BadInputError naming the module when it cannot be imported.  The environment is
    left as it is: a job carries its plugins to the processes that score it."""
    if not isinstance(module, str) or not module.strip():
        raise BadInputError("plugin", "a plugin is a module name such as 'my_package.proxies'", repr(module))
    _import(module.strip(), "--plugin")


def _import(module: str, origin: str) -> None:
    if module in _state["modules"]:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise BadInputError("plugin", f"no module named {e.name!r} (from {origin}; is it installed or on "
                                          "PYTHONPATH?)", repr(module)) from None
        raise
    _state["modules"].add(module)
