"""Command line: ``nni-zerocost {list,score,benchmark,search,plot,data,store,env}``.

One module per command (optuna's layout): each adds its parser and turns its flags into a call of
the Python API (:mod:`nni_zerocost.api`), which builds one checked job for the one runner.  A
command parses and prints; it decides nothing.  Every flag is named like the job or request field
it sets (``--max-params`` is ``max_params``), so an error about a field names the flag.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from ..errors import BadInputError, ZeroCostError
from .parser import _command, build_parser, flag_of


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


def __getattr__(name: str):
    """``build_parser``, ``flag_of``, ``Help`` (:mod:`.parser`) and ``build_table``
    (:mod:`.data`), loaded on first use."""
    from importlib import import_module

    where = {"build_parser": "parser", "flag_of": "parser", "Help": "parser", "COMMANDS": "parser",
             "build_table": "data"}.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{where}"), name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
