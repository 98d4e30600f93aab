"""``nni-zerocost score``: score architectures of a space, or your own models, one JSON line each."""
from __future__ import annotations

import json
import sys
import time

from ..flags import add_family_option_flags
from .options import (add_budget_flags, add_cost_flags, add_data_dir_flag, add_progress_flag, add_request_flags,
                      add_store_flags, add_where_flags, job_fields)

NAME = "score"


def add_parser(sub):
    from .parser import Help

    p = sub.add_parser(NAME, help="score architectures or your own models, one JSON line per architecture",
                       formatter_class=Help)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--space", help="search space (see 'nni-zerocost list spaces')")
    what.add_argument("--model", action="append", metavar="MODULE:FACTORY",
                      help="score your own language model: FACTORY(**kwargs) in MODULE returns a torch.nn.Module "
                           "(token ids (B, T) -> logits), built under torch.manual_seed(--seed); repeatable")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the --model factory (VALUE as JSON where it parses; repeatable): one "
                        "set of arguments")
    p.add_argument("--model-args", default=None, metavar="FILE.jsonl|JSON",
                   help="many sets of arguments for the --model factories: a file of one JSON object per line, or "
                        "a JSON list of objects; each set is scored as one model (with every --model factory)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--benchmark", default=None, help="score the architectures of a benchmark, e.g. nasbench-nlp")
    src.add_argument("--cells", default=None,
                     help='JSONL file (.gz too) of {"id": ..., "arch": ...} ("recipe" for rnn, "config" for bert, '
                          'gpt2; "arch_id" as the id works too)')
    src.add_argument("--sample", type=int, default=None, help="score N random architectures of the space")
    p.add_argument("--out", required=True,
                   help="output JSONL, one record per architecture. An existing file is resumed (only the "
                        "architectures missing from it are scored) when it holds results of the same request: "
                        "space, proxy specs and options, seed, data, --init/--as-trained, version, and the same "
                        "architecture under each id; a file of another request is refused (exit 2, saying what "
                        "differs): start over with --no-resume, or write to another --out. Its folder must exist "
                        "unless it lies inside the current folder")
    p.add_argument("--no-resume", action="store_true",
                   help="overwrite --out instead of resuming it (the store still spares work already done)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="score only shard K of N (every N-th architecture from the K-th, after --limit): one "
                        "task of a job array; merge the shards' stores with 'nni-zerocost store merge'")
    p.add_argument("--limit", type=int, default=None, help="score a reproducible random subset of N architectures")
    add_data_dir_flag(p)
    add_request_flags(p)
    add_family_option_flags(p)
    add_budget_flags(p)
    add_cost_flags(p)
    add_store_flags(p)
    add_where_flags(p)
    add_progress_flag(p)
    return p


def models_of(args):
    """The model recipes the ``--model``/``--model-arg``/``--model-args`` flags give: every
    factory with every set of arguments."""
    from ..errors import BadInputError, arg
    from ..store import read_jsonl

    if args.model is None:
        if args.model_arg or args.model_args:
            raise BadInputError("model_arg" if args.model_arg else "model_args", f"applies to {arg('model')} only")
        return ()
    if args.model_arg and args.model_args:
        raise BadInputError("model_arg", f"give one set of arguments here or many in {arg('model_args')}, not both")
    sets = [{}]
    if args.model_arg:
        one = {}
        for item in args.model_arg:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise BadInputError("model_arg", "expected KEY=VALUE", repr(item))
            try:
                one[key] = json.loads(value)
            except json.JSONDecodeError:
                one[key] = value
        sets = [one]
    elif args.model_args and args.model_args.lstrip().startswith("["):  # the sets themselves, as a JSON list
        try:
            sets = json.loads(args.model_args)
        except json.JSONDecodeError as e:
            raise BadInputError("model_args", f"not a JSON list of objects ({e.msg})", repr(args.model_args)) from None
    elif args.model_args:
        from ..errors import DataError

        try:
            sets = [obj for _, obj in read_jsonl(args.model_args)]
        except DataError as e:
            raise BadInputError("model_args", str(e)) from None
    if args.model_args and (not isinstance(sets, list) or not sets or not all(isinstance(s, dict) for s in sets)):
        raise BadInputError("model_args", "must hold JSON objects of keyword arguments (one per line, or a JSON "
                                          "list of them)", repr(args.model_args))
    return tuple({"factory": f, "kwargs": kw} for f in args.model for kw in sets)


def run(args) -> int:
    from ..api import run as run_job
    from ..job import ScoringJob, check_job

    started = time.perf_counter()
    job = ScoringJob.of(args.proxy, args.space, benchmark=args.benchmark, cells=args.cells, sample=args.sample,
                        models=models_of(args), out=args.out, resume=not args.no_resume, **job_fields(args))
    checked = check_job(job)
    for note in checked.notes:
        print(note, file=sys.stderr)
    if checked.shard is not None:
        k, n = checked.shard
        print(f"shard {k}/{n}: {len(checked.items)} of {_plural(checked.n_before_shard, 'architecture')}",
              file=sys.stderr)
    if checked.done:
        print(f"resuming {job.out}: {len(checked.items) - len(checked.todo)} of "
              f"{_plural(len(checked.items), 'architecture')} already there (same request)", file=sys.stderr)
    counts: dict = {}
    scored, work, bugs = 0, 0.0, []
    for rec in run_job(checked, progress=not args.no_progress):
        counts[rec.status] = counts.get(rec.status, 0) + 1
        scored += any(v is not None for v in rec.values.values())
        if rec.traceback:
            bugs.append(rec)
        work += rec.seconds
    n = sum(counts.values())
    detail = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items())) or "nothing to do"
    print(f"wrote {_plural(n, 'record')} to {job.out} ({detail})", file=sys.stderr)
    if n:
        elapsed = time.perf_counter() - started
        spread = checked.workers > 1 or job.ray is not None
        print(f"{elapsed:.1f} s wall: model work {work:.1f} s ({work / n:.3f} s per architecture"
              f"{', summed over workers' if spread else ''}), the rest start-up, data and store", file=sys.stderr)
    if bugs:
        print(f"nni-zerocost: {_plural(len(bugs), 'architecture')} failed with an unexpected error (a bug; please "
              f"report it); the first, architecture {bugs[0].id!r}:\n{bugs[0].traceback}", file=sys.stderr)
        return 1
    if n and not scored and counts.get("over_budget", 0) < n:
        print("nni-zerocost: no architecture got a score (see the records' 'error')", file=sys.stderr)
        return 1
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word if n == 1 else word + 's'}"
