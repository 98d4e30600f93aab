"""Command-line flags of a :class:`~nni_zerocost.ScoringRequest`, for every front end that has a
command line (the CLI, the NNI trial entry point).

The context-option flags are made from the registered spaces' own
:meth:`~nni_zerocost.spaces.SearchSpace.context_options` (``--init``, ``--as-trained``, ...), and
the family-option flags from their :meth:`~nni_zerocost.spaces.SearchSpace.family_options`
(``--choices FILE``), so a space added by a plugin brings its flags with it and no front end
lists them by hand.  Values are checked by :func:`~nni_zerocost.make_plan`, not here: argparse
only parses.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Tuple

from .errors import BadInputError

#: the request fields every command line spells the same way (besides --proxy)
REQUEST_FLAGS = ("seed", "corpus", "batch_size", "seq_len", "device")


def context_option_flags() -> Dict[str, Tuple[Any, str, List[str]]]:
    """``{option: (values or type, help, [spaces])}`` over every registered space."""
    from .spaces import get_space, list_spaces

    out: Dict[str, Tuple[Any, str, List[str]]] = {}
    helps: Dict[str, Dict[str, List[str]]] = {}  # option -> help -> the spaces saying it
    for name in list_spaces():
        for opt in get_space(name).context_options().values():
            helps.setdefault(opt.name, {}).setdefault(opt.help, []).append(name)
            if opt.name in out:
                values, text, spaces = out[opt.name]
                if not isinstance(values, type) and not isinstance(opt.values, type):
                    values = tuple(dict.fromkeys(tuple(values) + tuple(opt.values)))
                out[opt.name] = (values, text, spaces + [name])
            else:
                out[opt.name] = (opt.values, "", [name])
    for option, (values, _, spaces) in out.items():  # one help said by several spaces is said once
        text = "; ".join(f"{', '.join(names)}: {help_}" for help_, names in helps[option].items())
        out[option] = (values, text, spaces)
    return out


def _metavar(option: str, values: Any) -> str:
    from .spaces import get_space, list_spaces

    given = [o.metavar for s in list_spaces() for o in get_space(s).context_options().values()
             if o.name == option and o.metavar]
    return given[0] if given else values.__name__.upper()


def flag_of(field: str) -> str:
    """The flag of a request field or context option (``as_trained`` -> ``--as-trained``)."""
    return "--" + field.replace("_", "-")


def add_context_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per context option of the registered spaces (default: not given)."""
    for name, (values, text, _) in sorted(context_option_flags().items()):
        if not isinstance(values, type) and tuple(values) == (False, True):
            parser.add_argument(flag_of(name), dest=name, action="store_const", const=True, default=None, help=text)
        elif isinstance(values, type):
            parser.add_argument(flag_of(name), dest=name, type=values, default=None, metavar=_metavar(name, values),
                                help=text)
        else:
            kind = type(values[0])
            parser.add_argument(flag_of(name), dest=name, type=kind, choices=values, default=None, help=text)


def context_options_of(args: argparse.Namespace) -> Dict[str, Any]:
    """The context options given on the command line (those left out are not in the dict)."""
    return {name: getattr(args, name) for name in context_option_flags()
            if getattr(args, name, None) is not None}


def family_option_flags() -> Dict[str, Tuple[str, str]]:
    """``{option: (metavar, help)}`` of the family options over every registered space."""
    from .spaces import get_space, list_spaces

    out: Dict[str, Tuple[str, str]] = {}
    for name in list_spaces():
        for opt in get_space(name).family_options().values():
            metavar, text = out.get(opt.name, (opt.metavar or opt.name.upper(), ""))
            out[opt.name] = (metavar, f"{text}; {name}: {opt.help}" if text else f"{name}: {opt.help}")
    return out


def add_family_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per family option of the registered spaces (``--choices FILE``; default: not
    given).  Every command that takes ``--space`` has them."""
    for name, (metavar, text) in sorted(family_option_flags().items()):
        parser.add_argument(flag_of(name), dest=name, default=None, metavar=metavar, help=text)


def family_options_of(args: argparse.Namespace) -> Dict[str, Any]:
    """The family options given on the command line (those left out are not in the dict)."""
    return {name: getattr(args, name) for name in family_option_flags() if getattr(args, name, None) is not None}


def add_plugin_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import this module first, so the proxies and spaces it registers exist (repeatable; "
                             "also passed on to worker processes and NNI trials through $NNI_ZEROCOST_PLUGINS)")


def load_plugin_modules(argv) -> None:
    """Load ``--plugin`` modules before the real parser is built (their spaces bring flags)."""
    from .plugins import load_plugin

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    for module in known.plugin:
        load_plugin(module)


def check_no_conflict(field: str, flag_value: Any, sent_value: Any) -> None:
    if flag_value is not None and sent_value is not None and flag_value != sent_value:
        raise BadInputError(field, f"{flag_of(field)} {flag_value!r} contradicts the tuner's {field} {sent_value!r}")
