"""Command line: ``nni-zerocost {list,score,benchmark,search,plot,data,store,env}``.

One module per command (optuna's layout): each adds its parser and turns its flags into a call of
the Python API (:mod:`nni_zerocost.api`), which builds one checked job for the one runner.  A
command parses and prints; it decides nothing.  Every flag is named like the job or request field
it sets (``--max-params`` is ``max_params``), so an error about a field names the flag.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import BadInputError, ZeroCostError

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

    return import_module(f"{__name__}.{name}")


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
            ("models", ...): "--model", ("rank_average", ...): "--rank-average"}


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..flags import load_plugin_modules

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugin_modules(argv)  # before the parser: a plugin's spaces bring their flags
    except BadInputError as e:
        print(f"nni-zerocost: error: --plugin {e.subject}: {e.problem}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        code = _command(args.command_module).run(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:
        # the reader went away (`nni-zerocost list proxies | head`): stop quietly, as the Python
        # docs' note on SIGPIPE advises: point stdout at devnull so the exit flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except BadInputError as e:
        print(f"nni-zerocost: error: {e.render(flag_of)}", file=sys.stderr)
        return 2
    except ZeroCostError as e:
        print(f"nni-zerocost: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nni-zerocost: interrupted; everything scored so far is in the store", file=sys.stderr)
        return 130


def build_table(records, command: str, name: str, **provenance):
    """A precomputed table from a ``score --benchmark`` run's output (see ``data build-table``)."""
    from .data import build_table as _build

    return _build(records, command, name, **provenance)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
