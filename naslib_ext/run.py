"""Run one of NASLib's own runner scripts on our spaces::

    python -m naslib_ext.run NASLib/naslib/runners/zc/bbo/xgb_runner.py --config-file zc_nlp.yaml
    python -m naslib_ext.run naslib.runners.zc.runner --config-file zc_nlp.yaml

The first argument is the runner (a file, or a module name); the rest are the runner's own
arguments, which it reads from ``sys.argv`` as usual.  This is exactly ``naslib_ext.enable()``
followed by running the script as ``__main__``: NASLib's scripts never import naslib_ext
themselves.  A bad request of ours (e.g. ``zc_names`` the zero-cost table lacks) ends with one
line and exit status 2; anything else keeps its traceback.

``sys.argv`` is set to the runner's before NASLib is imported, because NASLib's ``parse_args``
binds ``sys.argv[1:]`` as a default argument when ``naslib.utils`` is first imported (where it
already was, that default is rebound to the runner's arguments).
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import Optional, Sequence

PROG = "python -m naslib_ext.run"


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0] + "\n\n    " + PROG + " RUNNER [RUNNER ARGUMENTS]", file=sys.stderr)
        return 0 if argv else 2
    runner, args = argv[0], argv[1:]
    is_file = runner.endswith(".py") or os.sep in runner
    if is_file and not os.path.isfile(runner):
        print(f"{PROG}: error: runner {runner!r}: no such file", file=sys.stderr)
        return 2
    had_utils = "naslib.utils" in sys.modules
    sys.argv = [runner, *args]
    from . import enable
    from nni_zerocost.errors import ZeroCostError

    enable()
    if had_utils:
        import naslib.utils as utils

        parser = utils.parse_args.__defaults__[0]
        utils.parse_args.__defaults__ = (parser, sys.argv[1:])
    try:
        if is_file:
            runpy.run_path(runner, run_name="__main__")
        else:
            runpy.run_module(runner, run_name="__main__", alter_sys=True)
    except ZeroCostError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
