"""The command line's parser: one sub-command per module (:data:`COMMANDS`), and how the command
line spells a job's fields."""
from __future__ import annotations

import argparse

from ..version import __version__

#: the command modules, in the order ``--help`` lists them
COMMANDS = ("listing", "score", "benchmark", "search", "plot", "data", "store", "env")


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default in ``--help`` (except for flags without one)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or action.help is None:
            return action.help
        return super()._get_help_string(action)


def _command(name: str):
    from importlib import import_module

    return import_module(f"{__package__}.{name}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nni-zerocost", description="Training-free NAS proxies for language models.")
    ap.add_argument("--version", action="version", version=f"nni-zerocost {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        p = _command(name).add_parser(sub)
        p.set_defaults(command_module=name)
    return ap


#: job fields whose flag is spelled otherwise (a switch that turns the field off, or the flag that
#: gives its value)
_FLAG_OF = {("resume", False): "--no-resume", ("store", None): "--no-store", ("batch", ...): "--corpus",
            ("models", ...): "--model", ("model", ...): "--model", ("rank_average", ...): "--rank-average"}


def flag_of(field: str, value: object = ...) -> str:
    """How this command line spells a job or request field (``max_params`` -> ``--max-params``,
    ``resume=False`` -> ``--no-resume``)."""
    known = _FLAG_OF.get((field, value)) or _FLAG_OF.get((field, ...))
    if known:
        return known
    flag = "--" + field.replace("_", "-")
    if value is ... or value is True:
        return flag
    return f"{flag} {value}"
