"""Exceptions a user can act on.

Every error raised on purpose by the package derives from :class:`ZeroCostError`, and the ones
caused by bad input also derive from :class:`ValueError`, so ``except ValueError`` keeps working
for callers who do not know our types.
"""
from __future__ import annotations

import re


class ZeroCostError(Exception):
    """Base class of all errors raised on purpose by nni-zerocost."""


class InvalidArchitectureError(ZeroCostError, ValueError):
    """An architecture (RNN cell, BERT config) breaks a rule of its search space.

    ``node`` names the offending node/layer/field (``None`` when the whole object is wrong) and
    ``problem`` says what is wrong, so tools can report both without parsing the message.
    """

    def __init__(self, problem: str, node: str | None = None):
        self.node = node
        self.problem = problem
        super().__init__(f"{node!r}: {problem}" if node is not None else problem)


class UnknownNameError(ZeroCostError, ValueError):
    """A proxy, space or benchmark name that is not registered; the message lists valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        super().__init__(f"unknown {kind} {name!r}{suggest(name, valid)}; valid {kind} names: "
                         f"{', '.join(valid) or '(none)'}")


class ProxyNotApplicableError(ZeroCostError, ValueError):
    """The proxy exists but does not apply to the requested search space."""


class DataError(ZeroCostError, ValueError):
    """A data file is missing, truncated or corrupt; the message names the path (and line)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line = path, line
        where = ""
        if path is not None:
            where = f"{path}" + (f", line {line}" if line is not None else "") + ": "
        super().__init__(where + message)


class ProxyOptionError(ZeroCostError, ValueError):
    """A proxy option that the proxy does not have, or a malformed ``name:key=value`` spec."""


def arg(field: str, value: object = ...) -> str:
    """How a message names another field of the request or job (with a value, or not): a
    placeholder each front end renders in its own words (:meth:`BadInputError.render`):
    ``--max-params`` / ``--no-resume`` on the command line, ``max_params=`` / ``resume=False``
    in Python."""
    return f"<<{field}>>" if value is ... else f"<<{field}:{value!r}>>"


_ARG = re.compile(r"<<([a-z_]+)(?::([^>]*))?>>")


def python_name(field: str, value: object = ...) -> str:
    """A field as a Python keyword argument: ``max_params=`` or ``resume=False``."""
    return f"{field}=" if value is ... else f"{field}={value!r}"


class BadInputError(ZeroCostError, ValueError):
    """A request refused before any work is done (:func:`nni_zerocost.job.check_job`).

    ``field`` is the keyword argument or job field at fault (``proxy``, ``corpus``, ``init``,
    ...; the CLI's flag of the same name), ``subject`` the value as shown to the user (quoted; or
    None) and ``problem`` what is wrong and what is allowed, naming other fields with
    :func:`arg`, so each front end names its own flags and parameters.
    """

    def __init__(self, field: str, problem: str, subject: str | None = None):
        self.field, self.problem, self.subject = field, problem, subject
        super().__init__(self.render(python_name))

    def render(self, name_of) -> str:
        """The message with every field named by ``name_of(field[, value])`` (the field at fault
        too, without a value)."""
        import ast

        problem = _ARG.sub(lambda m: name_of(m.group(1)) if m.group(2) is None else
                           name_of(m.group(1), ast.literal_eval(m.group(2))), self.problem)
        head = name_of(self.field).rstrip("=")
        return f"{head} {self.subject}: {problem}" if self.subject is not None else f"{head}: {problem}"


def suggest(name, valid) -> str:
    """``" (did you mean 'x'?)"`` for the valid names closest to a mistyped ``name``, else ``""``."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
