"""Command line: ``nni-zerocost {list,score,benchmark,plot,search}``.

Thin on purpose: argument parsing and printing only.  Every command turns its flags into one
checked plan (:func:`nni_zerocost.make_plan`) before any data is read, any model is built or
NNI starts, so bad input fails at once with one line; the work is in ``runner`` (scoring),
``benchmarks`` (ground truth, correlations) and ``store`` (durable results).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from . import __version__
from .errors import BadInputError, InvalidArchitectureError, ZeroCostError, suggest
from .flags import add_context_option_flags, add_plugin_flag, context_options_of, flag_of, load_plugin_modules
from .nas.search import STRATEGIES  # plain names; NNI itself is imported only when a search runs
from .proxies.base import NO_SCORE
from .reproducibility import REL_TOL


def _flag(field: str) -> str:
    return flag_of(field)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default in ``--help`` (except for flags without one)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or action.help is None:
            return action.help
        return super()._get_help_string(action)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--proxy", action="append", required=True, metavar="SPEC",
                   help="proxy name or spec 'name:key=value,...' (repeatable), e.g. hidden_covariance:layer=2 "
                        "('nni-zerocost list proxies' shows each proxy's options)")
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed (and subset seed for --limit)")
    p.add_argument("--limit", type=int, default=None, help="score a reproducible random subset of N architectures")
    p.add_argument("--data-dir", default=None,
                   help="benchmark data folder (default: $NNI_ZEROCOST_DATA, else the user data folder if "
                        "'data prepare' filled it, else the tables shipped with the package)")
    _add_corpus(p)
    add_context_option_flags(p)
    p.add_argument("--store", default=None,
                   help="results store (JSONL; default: $NNI_ZEROCOST_STORE, else ~/.cache/nni-zerocost/results.jsonl)")
    p.add_argument("--no-store", action="store_true", help="do not read or write the results store")
    _add_throughput(p)
    p.add_argument("--device", default="auto", help="auto (default): CUDA when available, else the CPU; or cpu, cuda, cuda:N")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_plugin_flag(p)


def _add_throughput(p: argparse.ArgumentParser) -> None:
    """Where the scoring runs (docs/throughput.md): local workers and threads, or Ray tasks."""
    p.add_argument("--workers", default="auto", metavar="N|auto",
                   help="scoring processes; auto: one per usable core, at most one per 8 architectures (fewer: "
                        "scored in this process)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch/BLAS threads per scoring process (default: the idle cores, shared out between "
                        "the workers; $NNI_ZEROCOST_THREADS pins it too)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="one Ray task per architecture: 'local' (a private Ray instance here), 'auto' (the "
                        "cluster this machine joined) or a cluster address; needs the 'ray' extra")
    p.add_argument("--gpus-per-task", type=float, default=None, metavar="F",
                   help="with --ray: the GPUs (a fraction, e.g. 0.25) each task asks for; the tasks score on CUDA")


def _add_corpus(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default=None,
                   help="input text: rnn: a PTB-style folder (train/valid/test, 'ptb.' prefix or not; its test split "
                        "is batched), one text file, or the name of such a folder in the data folder (e.g. 'ptb'); "
                        "gpt2 and --model: pre-tokenised ids (.npy/.pt) (default: the embedded Zipf batch)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nni-zerocost", description="Training-free NAS proxies for language models.")
    ap.add_argument("--version", action="version", version=f"nni-zerocost {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list proxies, spaces, benchmarks or capabilities", formatter_class=_Help)
    ls.add_argument("what", choices=("proxies", "spaces", "benchmarks", "capabilities"), nargs="?", default="proxies",
                    help="what to list")
    ls.add_argument("--space", default=None, help="only proxies applicable to this space")
    add_plugin_flag(ls)

    sc = sub.add_parser("score", help="score architectures, one JSON line per architecture", formatter_class=_Help)
    what = sc.add_mutually_exclusive_group(required=True)
    what.add_argument("--space", help="search space (see 'nni-zerocost list spaces')")
    what.add_argument("--model", metavar="MODULE:FACTORY",
                      help="score your own language model: FACTORY() in MODULE returns a torch.nn.Module (token ids "
                           "(B, T) -> logits); one record")
    sc.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for the --model factory (VALUE as JSON where it parses; repeatable)")
    src = sc.add_mutually_exclusive_group()
    src.add_argument("--benchmark", default=None, help="score the cells of a benchmark, e.g. nasbench-nlp")
    src.add_argument("--cells", default=None,
                     help='JSONL file of {"id": ..., "recipe": dict or official JSON string} (bert: "config")')
    src.add_argument("--sample", type=int, default=None, help="score N random architectures of the space")
    sc.add_argument("--out", required=True,
                    help="output JSONL, one record per architecture. An existing file is resumed (only the "
                         "architectures missing from it are scored) when it holds results of the same request: "
                         "space, proxy specs and options, seed, data, --init/--as-trained, version, and the same "
                         "architecture under each id; a file of another request is refused (exit 2, saying what "
                         "differs): start over with --no-resume, or write to another --out. Its folder must exist "
                         "unless it lies inside the current folder")
    sc.add_argument("--no-resume", action="store_true",
                    help="overwrite --out instead of resuming it (the store still spares work already done)")
    sc.add_argument("--shard", default=None, metavar="K/N",
                    help="score only shard K of N (every N-th architecture from the K-th, after --limit): one "
                         "task of a job array; merge the shards' stores with 'nni-zerocost store merge'")
    _add_common(sc)

    bm = sub.add_parser(
        "benchmark",
        help="correlate proxies with a benchmark's ground truth",
        description="Correlations are signed: each proxy is oriented so that higher = better, and "
                    "correlated with the benchmark's ground truth as published. For nasbench-nlp the "
                    "truth is PTB test loss (lower is better), so a good proxy has NEGATIVE tau/rho; "
                    "for nasbench-bert it is GLUE (higher is better), so a good proxy is positive.",
        formatter_class=_Help,
    )
    bm.add_argument("name", help="benchmark name (see 'nni-zerocost list benchmarks')")
    bm.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bm.add_argument("--report", default=None, metavar="FILE.md|FILE.csv",
                    help="also write the table as Markdown (.md) or CSV (.csv); other suffixes are refused")
    bm.add_argument("--plot", default=None, metavar="DIR", help="also write scatter/rank/flagged figures (PNG+SVG) to DIR")
    bm.add_argument("--all-cells", action="store_true",
                    help="nasbench-nlp: every cell with 3 runs, diverged ones included; adds the all-cells "
                         "Kendall tau-b (median run loss, diverged run = worst, missing score = worst)")
    bm.add_argument("--rank-average", action="append", default=[], metavar="A+B",
                    help="also report the label-free rank average of proxy specs A and B (each also given "
                         "with --proxy; ranks over the architectures benchmarked; repeatable)")
    _add_common(bm)

    se = sub.add_parser("search", help="search a space through NNI by a proxy (no training); best architectures to DIR",
                        formatter_class=_Help)
    se.add_argument("--space", required=True, help="search space (see 'nni-zerocost list spaces')")
    se.add_argument("--proxy", required=True, metavar="SPEC", help="proxy spec to maximise")
    se.add_argument("--extra-proxy", action="append", default=[], metavar="SPEC",
                    help="also report this proxy (repeatable)")
    se.add_argument("--strategy", default="evolution", metavar="{" + ",".join(STRATEGIES) + "}",
                    help="NNI strategy: Random, RegularizedEvolution, TPE (maximising), or ranking (score "
                         "--budget candidates in-process, keep the best)")
    se.add_argument("--budget", type=int, default=50, help="candidates to score")
    se.add_argument("--top", type=int, default=5, help="architectures to keep as files")
    se.add_argument("--seed", type=int, default=0, help="seeds the strategy and the weights")
    _add_corpus(se)
    add_context_option_flags(se)
    se.add_argument("--max-params", type=float, default=None, metavar="N",
                    help="size budget: keep only candidates with at most N parameters (counted from the "
                         "architecture: a candidate over budget costs no model work)")
    se.add_argument("--max-nonembedding-params", type=float, default=None, metavar="N",
                    help="size budget on the parameters outside the embedding tables (LTS's decoder parameters)")
    se.add_argument("--max-flops", type=float, default=None, metavar="F",
                    help="size budget: at most F forward FLOPs per token (spaces that count FLOPs)")
    se.add_argument("--pareto", action="store_true",
                    help="also report the candidates on the front of proxy score against parameters")
    se.add_argument("--data-dir", default=None,
                    help="data folder where --corpus names are looked up (default: $NNI_ZEROCOST_DATA)")
    se.add_argument("--workers", default="auto", metavar="N|auto",
                    help="processes scoring candidates (--strategy ranking; NNI's sequential engine scores the "
                         "other strategies' candidates one at a time, so auto means 1 there)")
    se.add_argument("--threads", type=int, default=None, metavar="N",
                    help="torch/BLAS threads per scoring process (default: the idle cores, shared out)")
    se.add_argument("--out", required=True, metavar="DIR",
                    help="output folder: candidates.jsonl, top/, report.md, search.png, nni/ (NNI's own files)")
    se.add_argument("--store", default=None, help="results store (default as for score)")
    se.add_argument("--no-store", action="store_true", help="do not read or write the results store")
    se.add_argument("--device", default="auto", help="auto (default): CUDA when available, else the CPU; or cpu, cuda, cuda:N")
    se.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_plugin_flag(se)

    pl = sub.add_parser("plot", help="figures for a 'score --benchmark' output file against the benchmark's truth",
                        formatter_class=_Help)
    pl.add_argument("results", help="JSONL written by 'nni-zerocost score --benchmark NAME'")
    pl.add_argument("--benchmark", required=True, help="benchmark the results belong to")
    pl.add_argument("--data-dir", default=None,
                    help="benchmark data folder (default: $NNI_ZEROCOST_DATA, else the user data folder if "
                         "'data prepare' filled it, else the tables shipped with the package)")
    pl.add_argument("--out", required=True, metavar="DIR", help="folder for the figures (PNG + SVG)")

    da = sub.add_parser("data", help="build benchmark tables from the public releases; show where data is read from")
    dsub = da.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser(
        "prepare", help="build a benchmark's compact tables into the data folder",
        description="Build a benchmark's compact tables from its public release and write them to the data "
                    "folder (--data-dir, else $NNI_ZEROCOST_DATA, else the user data folder: "
                    "$XDG_DATA_HOME/nni-zerocost or ~/.local/share/nni-zerocost). 'benchmark' then reads "
                    "them without any data flag.")
    from .benchmarks.base import get_benchmark, list_benchmarks

    dp.add_argument("name", choices=list_benchmarks(), help="benchmark to build")
    dp.add_argument("--from", dest="src", required=True, metavar="PATH",
                    help="; ".join(f"{n}: {get_benchmark(n).prepare_source}" for n in list_benchmarks()))
    options: dict = {}
    for n in list_benchmarks():
        for name, (kind, text) in get_benchmark(n).prepare_options.items():
            options.setdefault(name, (kind, []))[1].append(f"{n}: {text}")
    for name, (kind, texts) in sorted(options.items()):
        if kind == "switch":
            dp.add_argument(flag_of(name), dest=name, action="store_true", help="; ".join(texts))
        else:
            dp.add_argument(flag_of(name), dest=name, default=None, metavar="PATH", help="; ".join(texts))
    dp.add_argument("--data-dir", default=None, help="write here (default: $NNI_ZEROCOST_DATA or the user data folder)")
    add_plugin_flag(dp)
    dsub.add_parser("where", help="print, per benchmark, the folder 'benchmark' reads and where 'prepare' writes")
    bt = dsub.add_parser("build-table", help="a precomputed proxy table (shipped with the package) from the JSONL "
                                             "an 'nni-zerocost score --benchmark' command wrote")
    bt.add_argument("records", help="the score command's --out file")
    bt.add_argument("--command", dest="score_command", required=True, help="that command line, exactly as run")
    bt.add_argument("--name", required=True, help="table name (file stem)")
    bt.add_argument("--wall-seconds", type=float, default=None, help="measured wall time of the command")
    bt.add_argument("--cpu-seconds", type=float, default=None, help="measured CPU time (user + sys) of the command")
    bt.add_argument("--machine", default=None, help="where it ran, in words")
    bt.add_argument("--note", default=None, help="anything else a reader of the numbers must know")
    bt.add_argument("--commit", default=None, help="commit the command ran at (default: this checkout's HEAD)")
    bt.add_argument("--folder", default=None, help="write here (default: the package's precomputed/ folder)")

    st = sub.add_parser("store", help="work with result stores: merge the stores of shards")
    ssub = st.add_subparsers(dest="store_command", required=True)
    sm = ssub.add_parser("merge", help="merge stores (e.g. of 'score --shard K/N' tasks) into a new store",
                         description="Merge result stores into a new one, de-duplicating by key. Two results of "
                                     "one key must agree, else the merge is refused with one line naming the key "
                                     "and both files, and nothing is written.", formatter_class=_Help)
    sm.add_argument("stores", nargs="+", metavar="STORE.jsonl", help="the stores to merge")
    sm.add_argument("--out", required=True, help="the merged store (a new file; written whole, then moved in place)")
    sm.add_argument("--rel-tol", type=float, default=REL_TOL,
                    help="raw values of one key may differ by this relative amount (float rounding: runs with "
                         "another thread count differ by about 1e-8); 0 = bit for bit")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugin_modules(argv)  # before the parser: a plugin's spaces bring their flags
    except BadInputError as e:
        print(f"nni-zerocost: error: --plugin {e.subject}: {e.problem}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        code = {"list": cmd_list, "score": cmd_score, "benchmark": cmd_benchmark, "plot": cmd_plot,
                "search": cmd_search, "data": cmd_data, "store": cmd_store}[args.command](args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:
        # the reader went away (`nni-zerocost list proxies | head`): stop quietly, as the Python
        # docs' note on SIGPIPE advises: point stdout at devnull so the exit flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except BadInputError as e:
        subject = f" {e.subject}" if e.subject is not None else ""
        print(f"nni-zerocost: error: {_flag(e.field)}{subject}: {e.problem}", file=sys.stderr)
        return 2
    except ZeroCostError as e:
        print(f"nni-zerocost: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nni-zerocost: interrupted; everything scored so far is in the store", file=sys.stderr)
        return 130


def _plural(n: int, word: str, plural: Optional[str] = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


# -- list -----------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from .benchmarks.base import get_benchmark, list_benchmarks
    from .proxies import get_proxy, list_proxies
    from .spaces import get_space, list_spaces

    if args.space is not None and args.space not in list_spaces():
        raise BadInputError("space", f"unknown space{suggest(args.space, list_spaces())}; valid spaces: "
                                     f"{', '.join(list_spaces())}", repr(args.space))
    if args.what == "spaces":
        for n in list_spaces():
            sp = get_space(n)
            print(f"{n:<8} {(type(sp).__doc__ or '').strip().splitlines()[0]}")
            print(f"         offers: {', '.join(sorted(sp.offers))}")
            for opt in sp.context_options().values():
                print(f"         {opt.flag}: {opt.help}")
    elif args.what == "capabilities":
        from .capabilities import CAPABILITIES

        for name, cap in sorted(CAPABILITIES.items()):
            print(f"{name:<22} {cap.summary}")
    elif args.what == "benchmarks":
        for n in list_benchmarks():
            b = get_benchmark(n)
            print(f"{n:<15} space={b.space:<5} truth={b.primary} ({'higher' if b.primary_higher_is_better else 'lower'} is better)")
    else:
        for n in list_proxies(args.space):
            p = get_proxy(n)
            for space in p.spaces:  # each registered space's implementation, its options bounded there
                if args.space and space != args.space:
                    continue
                impl, limits = p.impl(space), get_space(space).limits()
                print(f"{n} [{space}] {'higher' if p.higher_is_better else 'lower'} is better, cost: {impl.cost}, "
                      f"needs {', '.join(sorted(impl.needs))}")
                print(f"    {impl.summary}")
                if impl.size:
                    print(f"    size: {impl.size}")
                for opt in impl.options.values():
                    print(f"    option {opt.name}={_show(opt.default)}: {opt.bounded(limits).allowed()}")
    return 0


def _show(v) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


# -- shared plumbing ---------------------------------------------------------------------------
def _request(args, space: Optional[str], proxies: Sequence[str]):
    """The scoring request the flags describe (context options: the spaces' own flags)."""
    from .data import resolve_corpus
    from .plan import ScoringRequest

    args.corpus = resolve_corpus(args.corpus, args.data_dir)
    return ScoringRequest.of(list(proxies), space, seed=args.seed, corpus=args.corpus, device=args.device,
                             **context_options_of(args))


def _plan(args, space: str):
    """The one checked door: every flag that shapes the scoring, checked before any work."""
    from .plan import make_plan

    if getattr(args, "gpus_per_task", None) is not None:
        return _remote_gpu_plan(args, space)
    return make_plan(_request(args, space, args.proxy))


def _remote_gpu_plan(args, space: str):
    """``--ray ... --gpus-per-task F``: the tasks score on the GPUs Ray gives them, so the plan is
    a CUDA plan even where this machine (often a cluster's CPU-only head) has none."""
    import dataclasses

    import torch

    from .plan import make_plan

    if getattr(args, "ray", None) is None:
        raise BadInputError("gpus_per_task", "applies to Ray tasks only (give --ray too)")
    if args.device not in ("auto", "cuda"):
        raise BadInputError("device", "--gpus-per-task scores on the GPU Ray gives each task: leave --device out "
                                      "or say cuda", repr(args.device))
    args.device = "cpu"  # checked here; the tasks move to their own GPU
    return dataclasses.replace(make_plan(_request(args, space, args.proxy)), device=torch.device("cuda"))


def _check_counts(args) -> None:
    from .plan import check_count
    from .threads import check_threads, check_workers

    args.workers = check_workers(args.workers)
    check_threads(getattr(args, "threads", None))
    if args.limit is not None:
        check_count("limit", args.limit)
    if getattr(args, "ray", None) is not None and args.workers not in ("auto", 1):
        raise BadInputError("workers", "does not apply to --ray (Ray places one task per architecture on the "
                                       "cluster's cores)", repr(args.workers))


def _where(args) -> dict:
    """score_many's keyword arguments for where the work runs."""
    return dict(workers=args.workers, threads=getattr(args, "threads", None), ray=getattr(args, "ray", None),
                gpus_per_task=getattr(args, "gpus_per_task", None))


def _store(args):
    from .store import ResultStore, default_store_path

    if args.no_store:
        return None
    return ResultStore(args.store or default_store_path())


def _output(field: str, value: Optional[str], folder: bool = False) -> Optional[Path]:
    """Check an output path before any work.  ``folder``: the path is a folder the command
    fills (``--plot DIR``, ``search --out DIR``), created if missing; otherwise a file.

    The folder the output goes in must exist, or lie inside the current folder (where missing
    folders are created, so ``--out results/search`` works in a fresh clone): a typo such as
    ``/nonexistent/o.jsonl`` is refused instead of creating folders elsewhere."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if folder and p.exists() and not p.is_dir():
        raise BadInputError(field, "is a file; give a folder", repr(value))
    if not folder and p.is_dir():
        raise BadInputError(field, "is a folder; give a file name in it", repr(value))
    parent = p.absolute().parent
    if not parent.is_dir():
        missing = parent
        while not missing.parent.is_dir() and missing.parent != missing:
            missing = missing.parent
        if missing.exists():
            raise BadInputError(field, f"{missing} is a file, not a folder", repr(value))
        try:
            missing.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            raise BadInputError(field, f"folder {missing} does not exist (nni-zerocost creates missing folders "
                                       "only inside the current folder)", repr(value)) from None
    return p


def _check_limit(limit: Optional[int], available: int, what: str, which: str = "") -> None:
    """``--limit`` above what exists is refused, saying how many exist (it would silently mean all)."""
    if limit is not None and limit > available:
        raise BadInputError("limit", f"{what} {_plural(available, 'architecture')}{which}; got {limit:,} "
                                     "(leave --limit out to use all of them)")


# -- store ------------------------------------------------------------------------------------------
def cmd_store(args) -> int:
    from .store import merge_stores

    if args.rel_tol < 0:
        raise BadInputError("rel_tol", f"must be >= 0, got {args.rel_tol}")
    out = _output("out", args.out)
    counts = merge_stores(args.stores, out, rel_tol=args.rel_tol)
    torn = f"; {_plural(counts['torn'], 'corrupt line')} skipped" if counts["torn"] else ""
    print(f"merged {_plural(len(args.stores), 'store')} ({_plural(counts['inputs'], 'record')}, "
          f"{counts['duplicates']} duplicate keys agreeing{torn}) into {out}: {_plural(counts['written'], 'record')}",
          file=sys.stderr)
    return 0


# -- score ----------------------------------------------------------------------------------------
def _read_cells(path: str) -> Iterator[Tuple[Any, Any]]:
    """``(id, architecture)`` per line of a JSONL file; an unreadable line becomes an
    InvalidArchitectureError item carrying its line number, so the rest is still scored."""
    from .store import read_jsonl

    if Path(path).is_dir():
        raise BadInputError("cells", "is a folder; give a JSONL file", repr(path))
    for lineno, obj in read_jsonl(path, on_error="yield"):
        if isinstance(obj, json.JSONDecodeError):
            yield f"line {lineno}", InvalidArchitectureError(f"line {lineno}: not a JSON object ({obj.msg})")
        elif not isinstance(obj, dict) or ("recipe" not in obj and "config" not in obj):
            yield (obj.get("id", f"line {lineno}") if isinstance(obj, dict) else f"line {lineno}",
                   InvalidArchitectureError(f"line {lineno}: expected an object with 'id' and 'recipe' (or 'config')"))
        else:
            yield obj.get("id", lineno), obj.get("recipe", obj.get("config"))


def cmd_score(args) -> int:
    import numpy as np

    from .data import data_dir
    from .runner import request_of, resume_output, score_many
    from .spaces import get_space

    started = time.perf_counter()
    _check_counts(args)
    if args.model is not None:
        return _score_model(args, started)
    if args.benchmark is None and args.cells is None and args.sample is None:
        raise BadInputError("space", "needs what to score: --benchmark NAME, --cells FILE or --sample N")
    if args.model_arg:
        raise BadInputError("model_arg", "applies to --model only")
    if args.sample is not None:
        if args.sample < 1:
            raise BadInputError("sample", f"must be at least 1, got {args.sample}")
        if args.limit is not None:
            raise BadInputError("limit", "does not apply to --sample (ask for fewer samples instead)")
    out = _output("out", args.out)
    _output("store", None if args.no_store else args.store)
    from .runner import parse_shard, shard

    shard_of = parse_shard(args.shard)  # before any data is loaded
    plan = _plan(args, args.space)
    sp = get_space(args.space)
    id_field = "id"
    if args.benchmark:
        from .benchmarks.base import get_benchmark
        from .benchmarks.study import select_entries

        bench = get_benchmark(args.benchmark)
        if bench.space != args.space:
            raise BadInputError("benchmark", f"is for the {bench.space!r} space, not {args.space!r}", repr(bench.name))
        entries = select_entries(bench.load(data_dir(args.data_dir, bench)), bench, None, args.seed)
        _check_limit(args.limit, len(entries), f"{bench.name} has", f" with a known {bench.primary}")
        if args.limit is not None:
            entries = select_entries(entries, bench, args.limit, args.seed)
        items: List[Tuple[Any, Any]] = [(e.arch_id, e.arch) for e in entries]
        id_field = "arch_id"
    elif args.cells:
        items = list(_read_cells(args.cells))
        if not items:
            raise BadInputError("cells", "holds no architectures (expected one JSON object per line: "
                                         '{"id": ..., "recipe": ...})', repr(args.cells))
        _check_limit(args.limit, len(items), "the file has")
        if args.limit is not None:
            items = items[: args.limit]
    else:
        rng = np.random.default_rng(args.seed)
        items = [(i, sp.sample(rng)) for i in range(args.sample)]

    if shard_of is not None:
        k, n = shard_of
        all_items = len(items)
        items = shard(items, k, n)
        print(f"shard {k}/{n}: {len(items)} of {_plural(all_items, 'architecture')}", file=sys.stderr)
    request = request_of(plan)
    done: set = set()
    if not args.no_resume:
        done, notes = resume_output(out, plan, items, id_field)
        for note in notes:
            print(note, file=sys.stderr)
    todo = [(i, a) for i, a in items if json.dumps(i) not in done]
    if done:
        print(f"resuming {out}: {len(items) - len(todo)} of {_plural(len(items), 'architecture')} already there "
              "(same request)", file=sys.stderr)
    store = _store(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: dict = {}
    scored, work = 0, 0.0
    bugs = []
    with open(out, "w" if args.no_resume else "a", encoding="utf-8") as f:
        for rec in score_many(plan, todo, store, **_where(args), progress=not args.no_progress, total=len(todo)):
            f.write(json.dumps({**rec.to_json(id_field), "request": request}) + "\n")
            f.flush()
            os.fsync(f.fileno())
            counts[rec.status] = counts.get(rec.status, 0) + 1
            scored += any(v is not None for v in rec.values.values())
            if rec.traceback:
                bugs.append(rec)
            work += rec.seconds
    n = sum(counts.values())
    detail = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items())) or "nothing to do"
    print(f"wrote {_plural(n, 'record')} to {out} ({detail})", file=sys.stderr)
    if n:
        elapsed = time.perf_counter() - started
        print(f"{elapsed:.1f} s wall: model work {work:.1f} s ({work / n:.3f} s per architecture"
              f"{', summed over workers' if args.workers != 1 or args.ray else ''}), the rest start-up, data and store",
              file=sys.stderr)
    if bugs:
        print(f"nni-zerocost: {_plural(len(bugs), 'architecture')} failed with an unexpected error (a bug; please "
              f"report it); the first, architecture {bugs[0].id!r}:\n{bugs[0].traceback}", file=sys.stderr)
        return 1
    if n and not scored:
        print("nni-zerocost: no architecture got a score (see the records' 'error')", file=sys.stderr)
        return 1
    return 0


def _score_model(args, started: float) -> int:
    """``score --model MODULE:FACTORY``: one record for the user's own model."""
    import importlib

    from .plan import make_model_plan

    for flag, given in (("benchmark", args.benchmark), ("cells", args.cells), ("sample", args.sample),
                        ("limit", args.limit)):
        if given is not None:
            raise BadInputError(flag, "does not apply to --model (it scores the one model the factory returns)")
    if context_options_of(args):
        raise BadInputError(next(iter(context_options_of(args))), "is a space's option; --model takes none")
    module, _, name = args.model.partition(":")
    if not module or not name:
        raise BadInputError("model", "expected MODULE:FACTORY, e.g. my_package.models:small_lstm", repr(args.model))
    try:
        factory = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        raise BadInputError("model", f"no module named {e.name!r} (is it installed or on PYTHONPATH?)",
                            repr(args.model)) from None
    except AttributeError:
        raise BadInputError("model", f"module {module!r} has no {name!r}", repr(args.model)) from None
    kwargs = {}
    for item in args.model_arg:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise BadInputError("model_arg", "expected KEY=VALUE", repr(item))
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    out = _output("out", args.out)
    from .data import resolve_corpus

    model = factory(**kwargs)
    plan = make_model_plan(model, args.proxy, batch=resolve_corpus(args.corpus, args.data_dir), seed=args.seed,
                           device=None if args.device == "auto" else args.device, label=args.model)
    results = plan.score(model)
    rec = {"model": args.model, "model_args": kwargs, "seed": args.seed, "data": plan.data_fingerprint,
           **{s: (r.raw if r.ok else None) for s, r in results.items()},
           "scores": {s: (r.score if r.ok else None) for s, r in results.items()},
           "flags": {s: r.flag for s, r in results.items() if r.flag},
           "seconds": round(sum(r.seconds for r in results.values()), 6), "device": plan.device_name}
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"wrote 1 record to {out} ({time.perf_counter() - started:.1f} s wall)", file=sys.stderr)
    return 0 if any(r.ok for r in results.values()) else 1


# -- benchmark -----------------------------------------------------------------------------------
def run_benchmark(args):
    """Score the benchmark's architectures (store-backed) and compute the study."""
    from .benchmarks.base import get_benchmark
    from .benchmarks.study import select_entries, study
    from .data import data_dir
    from .runner import score_many
    from .spaces import get_space

    _check_counts(args)
    report = _output("report", getattr(args, "report", None))
    if report is not None and report.suffix.lower() not in REPORT_FORMATS:
        raise BadInputError("report", f"writes Markdown (.md) or CSV (.csv), not {report.suffix or 'a file without suffix'}",
                            repr(args.report))
    _output("plot", getattr(args, "plot", None), folder=True)
    _output("store", None if args.no_store else args.store)
    bench = get_benchmark(args.name)
    plan = _plan(args, bench.space)
    _check_rank_averages(getattr(args, "rank_average", []), plan.specs)
    all_cells = getattr(args, "all_cells", False)
    if all_cells:
        from .benchmarks.extra import N_RUNS, select_all_cells

        entries = select_all_cells(bench.load(data_dir(args.data_dir, bench)), None, args.seed)
        _check_limit(args.limit, len(entries), f"{bench.name} has", f" with {N_RUNS} training runs")
        entries = select_all_cells(entries, args.limit, args.seed)
    else:
        entries = select_entries(bench.load(data_dir(args.data_dir, bench)), bench, None, args.seed)
        _check_limit(args.limit, len(entries), f"{bench.name} has", f" with a known {bench.primary}")
        entries = select_entries(entries, bench, args.limit, args.seed)
    store = _store(args)
    scores = {s: [] for s in plan.specs}
    seconds = {s: [] for s in plan.specs}
    flags = {s: [] for s in plan.specs}
    results, from_store = 0, 0
    start = time.perf_counter()
    for rec in score_many(plan, [(e.arch_id, e.arch) for e in entries], store, **_where(args),
                          progress=not args.no_progress, total=len(entries), desc=bench.name):
        for s in plan.specs:
            scores[s].append(rec.scores.get(s))
            seconds[s].append(rec.proxy_seconds.get(s))
            flags[s].append(s in rec.flags)
        had = sum(r is not None for r in rec.results.values())
        results += had
        from_store += max(had - rec.computed, 0)
    wall = time.perf_counter() - start
    sp = get_space(bench.space)
    sizes, measure = size_of(sp, [e.arch for e in entries], plan.context_options)
    result = study(bench, entries, scores, seconds, flags, sizes)
    result["size_measure"] = measure
    from .benchmarks.extra import augment  # all-cells tau-b, group means, baselines

    augment(result, bench, entries, scores, all_cells=all_cells, rank_averages=getattr(args, "rank_average", []),
            sizes=sizes)
    result["device"] = plan.device_name
    from .threads import resolve_workers

    # the processes that scored ('auto' resolved as score_many resolved it), or "Ray" for Ray tasks
    result["workers"] = "Ray" if getattr(args, "ray", None) else resolve_workers(args.workers, len(entries))
    result["wall_seconds"] = round(wall, 3)  # scoring loop: worker start-up included, data loading not
    # s/arch is each result's model work as recorded when it was computed; say how much of it
    # the store answered (a warm run's wall time is then far below s/arch x architectures)
    result["results"] = results
    result["results_from_store"] = from_store
    if getattr(args, "plot", None):
        from .plots import plot_study

        written = plot_study(bench.name, bench.primary, [e.truth[bench.primary] for e in entries], scores, flags,
                             args.plot, [e.group for e in entries], bench.primary_higher_is_better,
                             bench.group_by or "groups")
        print(f"wrote {_plural(len(written), 'figure')} to {args.plot}", file=sys.stderr)
    return bench, entries, scores, result


#: what ``benchmark --report`` writes, by suffix
REPORT_FORMATS = (".md", ".csv")


def _check_rank_averages(combos: Sequence[str], specs: Sequence[str]) -> None:
    """Each ``--rank-average A+B`` names 2+ of the ``--proxy`` specs (checked before scoring)."""
    for combo in combos:
        parts = [c for c in combo.split("+") if c]
        if len(parts) < 2:
            raise BadInputError("rank_average", "give 2 or more --proxy specs joined by '+', e.g. "
                                                f"{'+'.join(list(specs)[:2]) if len(specs) > 1 else 'A+B'}", repr(combo))
        for part in parts:
            if part not in specs:
                raise BadInputError("rank_average", f"{part!r}{suggest(part, specs)} is not one of the --proxy "
                                                    f"specs ({', '.join(specs)}); give each part with --proxy too",
                                    repr(combo))


def size_of(sp, archs, options):
    """``(sizes, what they count)`` for the within-budget ranking: the non-embedding parameters
    where the space counts them (what grows with depth and width, and what the strongest size
    baselines measure), else every parameter; counted from the architectures, never built."""
    sizes = [sp.nonembedding_param_count(a, **options) for a in archs]
    if all(n is not None for n in sizes):
        return sizes, "non-embedding parameters"
    return [sp.param_count(a, **options) for a in archs], "parameters"


def cmd_benchmark(args) -> int:
    from .benchmarks.study import format_table

    _, _, _, result = run_benchmark(args)
    if args.report:
        _write_report(result, Path(args.report))
    if args.json:
        print(json.dumps(_clean(result), indent=2))
    else:
        print(format_table(result))
    return 0


def cmd_search(args) -> int:
    """Run an NNI search, stream every candidate to DIR/candidates.jsonl, keep the top K."""
    import shutil
    import warnings

    from .nas.search import check_search
    from .plan import check_count
    from .spaces import get_space
    from .store import default_store_path

    from .threads import pin_threads_for_run

    check_count("top", args.top)
    pin_threads_for_run(args.threads)  # here and in every process NNI starts from here
    _output("out", args.out, folder=True)
    _output("store", None if args.no_store else args.store)
    request = _request(args, args.space, [args.proxy, *args.extra_proxy])
    fields = dict(seed=request.seed, corpus=request.corpus, device=request.device, **request.options)
    budget = dict(max_params=args.max_params, max_nonembedding_params=args.max_nonembedding_params,
                  max_flops=args.max_flops)
    # everything checked before NNI starts or the output folder exists: the core's door of a search
    check_search(args.space, args.proxy, args.strategy, args.budget, extra_proxies=args.extra_proxy,
                 workers=args.workers, **budget, **fields)
    note = _size_note(args)
    if note:
        print(note, file=sys.stderr)
    # NNI 3.0 warns on every import/trace with torch 2.x (torch.nn.Buffer, non-Module traces): harmless
    warnings.filterwarnings("ignore", message=r".*(nn\.Buffer|not a nn\.Module).*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        from .nas.search import run_search
        import nni  # noqa: F401
    except ImportError as e:  # pragma: no cover
        raise ZeroCostError(f"search runs on NNI: pip install 'nni-zerocost[nni]' ({e})") from None

    sp = get_space(args.space)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    nni_dir = out / "nni"
    shutil.rmtree(nni_dir, ignore_errors=True)  # one NNI experiment folder per output folder, not per run
    store = None if args.no_store else str(args.store or default_store_path())
    cand_path = out / "candidates.jsonl"
    cand_file = open(cand_path, "w", encoding="utf-8")  # rewritten: a re-run replays from the store
    pbar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=args.budget, desc=f"search {args.space}", unit="cand", dynamic_ncols=True)
    records = []
    best = [None]

    def on_trial(arch, metrics):
        score = metrics.get("default")
        scored = score is not None and score > NO_SCORE  # NO_SCORE: the proxy has no value
        over = bool(metrics.get("over_budget"))
        rec = {"index": len(records), "arch_hash": metrics.get("arch") or sp.arch_hash(arch), "arch": sp.to_dict(arch),
               "score": score if scored else None,
               "scores": {k: v for k, v in metrics.items() if k not in ("default", "flag", "arch", "seconds", "device",
                                                                          "over_budget") and not k.startswith("size_")},
               "status": "over_budget" if over else ("flagged" if metrics.get("flag") else "ok") if scored else "no_score",
               "flag": metrics.get("flag") or None, "seconds": metrics.get("seconds"), "device": metrics.get("device"),
               "params": metrics.get("size_params", sp.param_count(arch, **request.options)),
               "flops": metrics.get("size_flops", sp.flops(arch, **request.options))}
        records.append(rec)
        cand_file.write(json.dumps(rec) + "\n")
        cand_file.flush()
        if scored and (best[0] is None or score > best[0]):
            best[0] = score
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(best=f"{best[0]:.4g}" if best[0] is not None else "-")

    start = time.perf_counter()
    try:
        run_search(args.space, args.proxy, args.strategy, args.budget, extra_proxies=args.extra_proxy,
                   on_trial=on_trial, store=store, experiment_dir=str(nni_dir), workers=args.workers, **budget,
                   **fields)
    finally:
        cand_file.close()
        if pbar is not None:
            pbar.close()
    elapsed = time.perf_counter() - start
    ranked = [r for r in _rank_unique(records) if r["status"] != "over_budget"]
    top = ranked[: args.top]
    front = _pareto(ranked) if args.pareto else []
    top_dir = out / "top"
    top_dir.mkdir(exist_ok=True)
    for old in top_dir.glob("*.json"):
        old.unlink()
    for i, rec in enumerate(top, start=1):
        (top_dir / f"{i:02d}_{rec['arch_hash'][:12]}.json").write_text(json.dumps(
            {"space": args.space, "arch": rec["arch"], "score": rec["score"], "proxy": args.proxy}, indent=1))
    figure = _search_figure(args, records, top, out / "search.png")
    (out / "report.md").write_text(_search_report(args, records, top, elapsed, figure, nni_dir, front))
    work = sum(r["seconds"] or 0.0 for r in records)
    print(f"{_plural(len(records), 'candidate')} in {elapsed:.1f} s ({len(ranked)} distinct; scoring "
          f"{work:.1f} s, start-up and NNI {max(elapsed - work, 0.0):.1f} s); top {len(top)} by {args.proxy}:")
    for i, rec in enumerate(top, start=1):
        score = "no score" if rec["score"] is None else f"score {rec['score']:.6g}"
        print(f"  {i}. {score}  hash {rec['arch_hash'][:12]}  {_summary(args.space, rec['arch'])}")
    n_over = sum(r["status"] == "over_budget" for r in records)
    if n_over:
        print(f"  ({_plural(n_over, 'candidate')} over the size budget, not scored)")
    if args.pareto:
        print(f"Pareto front of {args.proxy} against parameters ({len(front)} candidates, smallest first):")
        for rec in front:
            print(f"  {rec['params']:>12,.0f} params  score {rec['score']:.6g}  hash {rec['arch_hash'][:12]}")
    print(f"results in {out}/ (candidates.jsonl, top/, report.md{', search.png' if figure else ''}, nni/)")
    return 0


def _pareto(ranked):
    """The scored candidates no other beats on both score and parameter count."""
    from .budget import pareto_front

    pts = [r for r in ranked if r["score"] is not None and r.get("params") is not None]
    return [pts[i] for i in pareto_front([(r["score"], float(r["params"])) for r in pts])]


def _size_note(args) -> Optional[str]:
    """The core's note when a size-growing proxy searches a space of varying size unbudgeted."""
    from .budget import SizeBudget, size_note

    return size_note(args.space, args.proxy, SizeBudget(args.max_params, args.max_flops, args.max_nonembedding_params))


def _search_figure(args, records, top, path: Path) -> Optional[Path]:
    """Best-so-far and score-distribution figure; None (said in the report) without matplotlib."""
    try:
        from .plots import plot_search
    except ImportError:  # pragma: no cover
        return None
    try:
        index = {id(r): i for i, r in enumerate(records)}
        return plot_search([r["score"] for r in records], [index[id(r)] for r in top], args.proxy, path,
                           f"{args.space} space, {args.strategy}, budget {args.budget}, seed {args.seed}",
                           ranked=args.strategy == "ranking")  # ranking reports its candidates best first
    except ImportError:
        return None


def _rank_unique(records):
    """Best first, one entry per canonical architecture, unscored candidates last."""
    seen, out = set(), []
    for rec in sorted(records, key=lambda r: -(r["score"] if r["score"] is not None else -math.inf)):
        if rec["arch_hash"] not in seen:
            seen.add(rec["arch_hash"])
            out.append(rec)
    return out


def _summary(space: str, arch) -> str:
    """One line naming every field that tells architectures apart (the space's own summary)."""
    from .spaces import get_space

    return get_space(space).summary(arch)


def _search_report(args, records, top, elapsed, figure, nni_dir, front=()) -> str:
    scored = sorted(r["score"] for r in records if r["score"] is not None)
    work = sum(r["seconds"] or 0.0 for r in records)
    lines = [
        f"# Search report: {args.space} space, proxy `{args.proxy}`",
        "",
        f"- strategy: {args.strategy} (NNI, sequential engine), budget {args.budget}, seed {args.seed}",
        f"- data: {args.corpus or 'embedded default batch'}",
        f"- candidates scored: {len(records)} in {elapsed:.1f} s wall (scoring {work:.1f} s; the rest is "
        f"start-up, NNI and the store); flagged: {sum(r['status'] == 'flagged' for r in records)}; "
        f"no score: {sum(r['score'] is None for r in records)}",
        f"- score (higher = better): best {scored[-1]:.6g}, median {scored[len(scored) // 2]:.6g}" if scored
        else "- no candidate got a score",
    ]
    given = (("max params", args.max_params), ("max non-embedding params", args.max_nonembedding_params),
             ("max FLOPs/token", args.max_flops))
    if any(v is not None for _, v in given):
        limits = ", ".join(f"{k} {v:.4g}" for k, v in given if v is not None)
        lines.append(f"- size budget: {limits}; {sum(r['status'] == 'over_budget' for r in records)} candidates "
                     "over it, not scored (no model work)")
    lines.append("")
    if figure is not None:
        left = ("every candidate's score against its rank (the ranking strategy scores all candidates, then "
                "ranks them)" if args.strategy == "ranking" else
                "every candidate's score in evaluation order and the best so far")
        alt = "scores by rank" if args.strategy == "ranking" else "best score so far"
        lines += [f"![{alt} and score distribution]({figure.name})", "",
                  f"Left: {left}; right: the distribution of scores, the kept top architectures in red.", ""]
    else:
        lines += ["(No figure: install the plot extra, `pip install 'nni-zerocost[plot]'`.)", ""]
    lines += ["| rank | score | hash | architecture |", "|---:|---:|---|---|"]
    for i, r in enumerate(top, start=1):
        score = "no score" if r["score"] is None else f"{r['score']:.6g}"
        lines.append(f"| {i} | {score} | `{r['arch_hash'][:12]}` | {_summary(args.space, r['arch'])} |")
    if front:
        lines += ["", "Pareto front of the score against the parameter count (no candidate has both a higher score "
                      "and fewer parameters), smallest first:", "", "| parameters | score | hash | architecture |",
                  "|---:|---:|---|---|"]
        for r in front:
            lines.append(f"| {r['params']:,.0f} | {r['score']:.6g} | `{r['arch_hash'][:12]}` | "
                         f"{_summary(args.space, r['arch'])} |")
    lines += ["", "Each file in `top/` holds `{space, arch, score, proxy}`; load the architecture with",
              "`nni_zerocost.get_space(space).parse(arch)`. `candidates.jsonl` has every candidate.", "",
              f"NNI's own experiment folder is `{nni_dir.name}/<experiment id>/` (its checkpoint and log): NNI "
              "writes it for every experiment, and `nnictl` can read it. A re-run into this folder replaces it, "
              "so there is one per output folder."]
    return "\n".join(lines) + "\n"


def cmd_plot(args) -> int:
    """Figures of a results file against a benchmark, joined on the architecture hash."""
    from .benchmarks.base import get_benchmark
    from .data import data_dir
    from .plots import plot_study
    from .spaces import get_space
    from .store import read_jsonl

    _output("out", args.out, folder=True)
    bench = get_benchmark(args.benchmark)
    sp = get_space(bench.space)
    entries = bench.load(data_dir(args.data_dir, bench))
    by_id = {json.dumps(e.arch_id): e for e in entries}
    by_hash: dict = {}
    for e in entries:
        by_hash.setdefault(sp.arch_hash(e.arch), e)
    rows = [obj for _, obj in read_jsonl(args.results)]
    if not rows:
        raise ZeroCostError(f"{args.results}: no records")
    if any("scores" not in r for r in rows):
        raise ZeroCostError(f"{args.results}: records without 'scores' (written by an older version); "
                            "re-run 'nni-zerocost score' (the store makes it cheap)")
    matched, unmatched = [], 0
    for r in rows:
        h = r.get("arch_hash")
        e = by_id.get(json.dumps(r.get("arch_id", r.get("id"))))
        if e is None or sp.arch_hash(e.arch) != h:  # the id is not this architecture: join on the hash
            e = by_hash.get(h)
        if e is None:
            if r.get("status") != "invalid":
                unmatched += 1
            continue
        if e.truth.get(bench.primary) is not None:
            matched.append((e, r))
    if unmatched:
        raise ZeroCostError(f"{args.results}: {unmatched} of {_plural(len(rows), 'row')} do not match an architecture "
                            f"of {bench.name} (by architecture hash); plot only results scored on its architectures")
    if not matched:
        raise ZeroCostError(f"{args.results}: no record matches an architecture of {bench.name} with a known {bench.primary}")
    specs = list(matched[0][1]["scores"])
    scores = {s: [r["scores"].get(s) for _, r in matched] for s in specs}
    flags = {s: [s in (r.get("flags") or {}) for _, r in matched] for s in specs}
    written = plot_study(bench.name, bench.primary, [e.truth[bench.primary] for e, _ in matched], scores, flags,
                         args.out, [e.group for e, _ in matched], bench.primary_higher_is_better,
                         bench.group_by or "groups")
    print("\n".join(str(p) for p in written))
    return 0


# -- data ---------------------------------------------------------------------------------------
def cmd_data(args) -> int:
    from .benchmarks.base import get_benchmark
    from .data import PACKAGE_DATA, data_dir, prepare_dir

    from .benchmarks.base import list_benchmarks

    if args.data_command == "where":
        for name in list_benchmarks():
            root = data_dir(None, name)
            origin = "shipped with the package" if root == PACKAGE_DATA else "data folder"
            print(f"{name:<14} reads {root / get_benchmark(name).subdir} ({origin})")
        print(f"{'prepare':<14} writes to {prepare_dir(None)}")
        return 0
    if args.data_command == "build-table":
        path = build_table(Path(args.records), args.score_command, args.name, folder=args.folder,
                           wall_seconds=args.wall_seconds, cpu_seconds=args.cpu_seconds, machine=args.machine,
                           commit=args.commit, note=args.note)
        print(f"wrote {path}")
        return 0
    from .benchmarks.prepare import prepare

    root = prepare_dir(args.data_dir)
    options = {name: getattr(args, name) for name in get_benchmark(args.name).prepare_options}
    given_elsewhere = [name for b in list_benchmarks() for name in get_benchmark(b).prepare_options
                       if name not in options and getattr(args, name, None) not in (None, False)]
    if given_elsewhere:
        raise BadInputError(given_elsewhere[0], f"applies to another benchmark than {args.name}")
    written, summary = prepare(args.name, Path(args.src), root, **options)
    facts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items())
    print(f"{args.name}: {facts}", file=sys.stderr)
    for p in written:
        print(p)
    return 0


def build_table(records: Path, command: str, name: str, **provenance) -> Path:
    """A precomputed table from a ``score --benchmark`` run's output: ``command`` (the command
    line, exactly as run) is parsed by this parser and checked through the core's door."""
    import shlex

    from .benchmarks.base import get_benchmark
    from .benchmarks.study import select_entries
    from .benchmarks.tables import write_table
    from .data import data_dir

    argv = shlex.split(command)
    if argv and argv[0].endswith("nni-zerocost"):
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.command != "score" or not args.benchmark:
        raise BadInputError("command", "must be an 'nni-zerocost score --benchmark NAME ...' command line", repr(command))
    bench = get_benchmark(args.benchmark)
    plan = _plan(args, bench.space)
    entries = bench.load(data_dir(args.data_dir, bench))
    if args.limit is not None:
        entries = select_entries(entries, bench, args.limit, args.seed)
    return write_table(Path(records), plan, bench, entries,
                       "nni-zerocost " + " ".join(shlex.quote(a) for a in argv), name, limit=args.limit, **provenance)


def _write_report(result, path: Path) -> None:
    """The table as Markdown or CSV (by suffix, checked before any work), saying what the
    correlations are over, with the same counts as the printed table and the figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    over = "runs" if result.get("n_runs") else "architectures"
    rows = [(n, r["kendall_tau"], r["spearman"], r["pearson"], r.get("per_arch", r)["kendall_tau"],
             r["seconds_per_arch"], r["n_flagged"], r.get("n_excluded", 0)) for n, r in result["proxies"].items()]
    if path.suffix.lower() == ".csv":
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["proxy", "over", "kendall_tau", "spearman", "pearson", "kendall_tau_per_arch",
                        "seconds_per_arch", "n_flagged", "n_no_score"])
            w.writerows((n, over, *v) for n, *v in rows)
    else:
        n_over = result["n_runs"] if over == "runs" else result["n_archs"]
        lines = [f"Signed correlations (higher = better) of each proxy with {result['ground_truth']} on "
                 f"{result['benchmark']}: Kendall τ, Spearman ρ and Pearson r over {n_over} {over}"
                 + (" (each training run paired with its architecture's score, the paper's protocol); "
                    f"τ/arch over the {result['n_archs']} architectures" if over == "runs" else "")
                 + ". Flagged: scored with a flagged fallback value; no score: left out of the correlations.", "",
                 "| proxy | Kendall τ | Spearman ρ | Pearson r | τ/arch | s/arch | flagged | no score |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for n, *v in rows:
            lines.append(f"| `{n}` | " + " | ".join("nan" if (isinstance(x, float) and math.isnan(x)) else (f"{x:.3f}" if isinstance(x, float) else str(x)) for x in v) + " |")
        path.write_text("\n".join(lines) + "\n")


def _clean(obj):
    """JSON-safe copy: NaN -> None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
