"""A score file (``score --out``): one JSON line per architecture, each with the request that
wrote it, so that a file is resumed only by the same request.

Used by the job check (a file of another request is refused before any work) and by the runner
(every record carries :func:`request_of`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from .errors import BadInputError, InvalidArchitectureError, arg
from .version import __version__


def _parse(plan, arch):
    if isinstance(arch, InvalidArchitectureError):
        return arch
    try:
        return plan.parse(arch)
    except InvalidArchitectureError as e:
        return e


#: what a refused resume tells the user to do instead
START_OVER = f"start over with {arg('resume', False)}, or write to another {arg('out')}"


def request_of(plan) -> Dict[str, Any]:
    """What, besides the architecture, identifies the results in a score file: the space, each
    proxy spec with its options, the seed, the input data, the context options (with the device
    type) and the package version -- the fields of the store key (:meth:`ScoringPlan.key`).
    ``score`` writes it into every record, so that a file is resumed only by the request that
    wrote it.  ``data_source`` only names the data for messages; ``data`` (the batch's
    fingerprint) is what is compared."""
    return json.loads(json.dumps({
        "space": plan.space,
        "proxies": {r.spec: {"name": r.name, "options": dict(r.options)} for r in plan.requests},
        "seed": plan.seed,
        "data": plan.data_fingerprint,
        "data_source": getattr(plan.batch, "source", None),
        "context": plan.key_context,
        "version": __version__,
    }))


def request_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> List[str]:
    """What differs between two :func:`request_of` dicts, one phrase per field ("seed: 0 in the
    file, 1 asked"); empty when a file written by ``old`` may be resumed by ``new``."""
    out: List[str] = []

    def differ(what: str, a: Any, b: Any) -> None:
        out.append(f"{what}: {a} in the file, {b} asked")

    if old.get("space") != new["space"]:
        differ("space", old.get("space"), new["space"])
    o, n = old.get("proxies") or {}, new["proxies"]
    if set(o) != set(n):
        differ("proxy", ", ".join(o) or "none", ", ".join(n))
    elif o != n:
        changed = [s for s in n if o[s] != n[s]]
        differ("options of " + ", ".join(changed), "; ".join(json.dumps(o[s]["options"]) for s in changed),
               "; ".join(json.dumps(n[s]["options"]) for s in changed))
    if old.get("seed") != new["seed"]:
        differ("seed", old.get("seed"), new["seed"])
    if old.get("data") != new["data"]:
        a, b = old.get("data_source"), new["data_source"]
        same_name = a == b or a is None or b is None
        differ("data", f"{a or 'batch'} {old.get('data')}" if same_name else a,
               f"{b or 'batch'} {new['data']}" if same_name else b)
    from .spaces import get_space

    oc, nc = old.get("context") or {}, new["context"]
    allowed = get_space(new["space"]).context_options()
    for key in sorted(set(oc) | set(nc)):
        if oc.get(key) != nc.get(key):
            values = getattr(allowed.get(key), "values", None)
            default = f"{values[0]} (the default)" if isinstance(values, (tuple, list)) else "the default"
            differ(key, oc.get(key, default), nc.get(key, default))
    if old.get("version") != new["version"]:
        differ("nni-zerocost version", old.get("version"), new["version"])
    return out


def resume_output(path: str | os.PathLike, plan, items: Iterable[Tuple[Any, Any]],
                  id_field: str = "id") -> Tuple[Set[str], List[str]]:
    """The ids (``json.dumps``'d) of ``items`` whose results the score file at ``path`` already
    holds, and notes for the user.

    A file is resumed only when every record carries this plan's request (:func:`request_of`)
    and, for every id it shares with ``items``, the same architecture (its ``arch_key``):
    otherwise its results are not the ones asked for, and :class:`BadInputError` (field ``out``)
    says what differs.  A torn last line (a run killed mid-write) is cut off, with a note.
    """
    p = Path(path)
    notes: List[str] = []
    if not p.exists():
        return set(), notes
    subject = repr(str(path))
    request = request_of(plan)
    data = p.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1].strip():  # unterminated last line: kept if whole, cut if torn
        try:
            json.loads(lines[-1])
            with open(p, "ab") as f:  # whole: end it, so the next record starts a line of its own
                f.write(b"\n")
        except ValueError:
            with open(p, "r+b") as f:
                f.truncate(len(data) - len(lines[-1]))
            notes.append(f"{path}: cut a torn last line (line {len(lines)}, a write interrupted); it is re-scored")
            lines = lines[:-1]
    keys: Dict[str, Tuple[int, Optional[str]]] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise BadInputError("out", f"line {lineno} is not a JSON object ({e}); {START_OVER}", subject) from None
        if not isinstance(row, dict) or not isinstance(row.get("request"), dict):
            raise BadInputError("out", f"line {lineno} does not say which request wrote it (a file of an older "
                                       f"version or of another program); {START_OVER}", subject)
        diff = request_diff(row["request"], request)
        if diff:
            raise BadInputError("out", f"holds results of another request ({'; '.join(diff)}); {START_OVER}",
                                subject)
        keys[json.dumps(row.get(id_field))] = (lineno, row.get("arch_key"))
    done: Set[str] = set()
    for item_id, arch in items:
        k = json.dumps(item_id)
        if k not in keys:
            continue
        parsed = _parse(plan, arch)
        key = None if isinstance(parsed, InvalidArchitectureError) else plan.arch_key(parsed)
        lineno, had = keys[k]
        if key != had:
            raise BadInputError("out", f"line {lineno} holds another architecture under {id_field} {item_id!r} "
                                       f"than the input now gives (edited since?); {START_OVER}", subject)
        done.add(k)
    return done, notes
