"""Command line: ``nni-zerocost {list,score,benchmark}``.

Thin on purpose: argument parsing and printing only; the work is in ``runner`` (scoring),
``benchmarks`` (ground truth, correlations) and ``store`` (durable results).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from . import __version__
from .errors import ZeroCostError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--proxy", action="append", required=True, metavar="NAME",
                   help="proxy name or spec 'name:key=value,...' (repeatable), e.g. hidden_covariance:layer=2")
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed (and subset seed for --limit)")
    p.add_argument("--limit", type=int, default=None, help="score a reproducible random subset of N architectures")
    p.add_argument("--data-dir", default=None, help="reference data folder (default: $NNI_ZEROCOST_DATA or ../shared/data)")
    p.add_argument("--corpus", default=None,
                   help="PTB-style folder (train/valid/test, 'ptb.' prefix or not; its test split is batched) "
                        "or one text file; default: the embedded Zipf batch")
    p.add_argument("--init", choices=("official", "compat"), default="official",
                   help="RNN weight init: official distributions (default), or 'compat' = the official "
                        "code's exact random stream (reproduces the paper's scores with --seed 0)")
    p.add_argument("--as-trained", action="store_true",
                   help="BERT: build every layer as SDP self-attention, as the benchmark was actually trained")
    p.add_argument("--store", default=None, help="results store (JSONL); default $NNI_ZEROCOST_STORE or ~/.cache/nni-zerocost/results.jsonl")
    p.add_argument("--no-store", action="store_true", help="do not read or write the results store")
    p.add_argument("--workers", type=int, default=1, help="worker processes (threads are split between them)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nni-zerocost", description="Training-free NAS proxies for language models.")
    ap.add_argument("--version", action="version", version=f"nni-zerocost {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list proxies, spaces or benchmarks")
    ls.add_argument("what", choices=("proxies", "spaces", "benchmarks"), nargs="?", default="proxies")
    ls.add_argument("--space", default=None, help="only proxies applicable to this space")

    sc = sub.add_parser("score", help="score architectures, one JSON line per architecture")
    sc.add_argument("--space", required=True, help="search space (see 'nni-zerocost list spaces')")
    src = sc.add_mutually_exclusive_group(required=True)
    src.add_argument("--benchmark", default=None, help="score the cells of a benchmark, e.g. nasbench-nlp")
    src.add_argument("--cells", default=None, help='JSONL file of {"id": ..., "recipe": dict or official JSON string}')
    src.add_argument("--sample", type=int, default=None, help="score N random architectures of the space")
    sc.add_argument("--out", required=True, help="output JSONL; an existing file is resumed (see --no-resume)")
    sc.add_argument("--no-resume", action="store_true", help="overwrite --out instead of resuming it")
    _add_common(sc)

    bm = sub.add_parser(
        "benchmark",
        help="correlate proxies with a benchmark's ground truth",
        description="Correlations are signed: each proxy is oriented so that higher = better, and "
                    "correlated with the benchmark's ground truth as published. For nasbench-nlp the "
                    "truth is PTB test loss (lower is better), so a good proxy has NEGATIVE tau/rho; "
                    "for nasbench-bert it is GLUE (higher is better), so a good proxy is positive.",
    )
    bm.add_argument("name", help="benchmark name (see 'nni-zerocost list benchmarks')")
    bm.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bm.add_argument("--report", default=None, help="also write the table as Markdown (.md) or CSV (.csv)")
    bm.add_argument("--plot", default=None, metavar="DIR", help="also write scatter/rank/flagged figures (PNG+SVG) to DIR")
    bm.add_argument("--all-cells", action="store_true",
                    help="nasbench-nlp: every cell with 3 runs, diverged ones included; adds the all-cells "
                         "Kendall tau-b (median run loss, diverged run = worst, missing score = worst)")
    bm.add_argument("--rank-average", action="append", default=[], metavar="A+B",
                    help="also report the label-free rank average of proxy specs A and B (each also given "
                         "with --proxy; ranks over the architectures benchmarked; repeatable)")
    _add_common(bm)

    se = sub.add_parser("search", help="search a space through NNI by a proxy (no training); best architectures to DIR")
    se.add_argument("--space", required=True, choices=("rnn", "bert"))
    se.add_argument("--proxy", required=True, help="proxy spec to maximise")
    se.add_argument("--extra-proxy", action="append", default=[], help="also report this proxy (repeatable)")
    se.add_argument("--strategy", choices=("random", "evolution", "tpe", "ranking"), default="evolution",
                    help="NNI strategy: Random, RegularizedEvolution, TPE (maximising), or ranking (score "
                         "--budget candidates in-process, keep the best)")
    se.add_argument("--budget", type=int, default=50, help="candidates to score")
    se.add_argument("--top", type=int, default=5, help="architectures to keep as files")
    se.add_argument("--seed", type=int, default=0, help="seeds the strategy and the weights")
    se.add_argument("--corpus", default=None, help="rnn: PTB-style folder or text file (default: embedded batch)")
    se.add_argument("--out", required=True, metavar="DIR")
    se.add_argument("--store", default=None, help="results store (default as for score)")
    se.add_argument("--no-store", action="store_true")
    se.add_argument("--no-progress", action="store_true")

    pl = sub.add_parser("plot", help="figures for a 'score --benchmark' output file against the benchmark's truth")
    pl.add_argument("results", help="JSONL written by 'nni-zerocost score --benchmark NAME'")
    pl.add_argument("--benchmark", required=True, help="benchmark the results belong to")
    pl.add_argument("--data-dir", default=None)
    pl.add_argument("--out", required=True, metavar="DIR")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"list": cmd_list, "score": cmd_score, "benchmark": cmd_benchmark, "plot": cmd_plot,
                "search": cmd_search}[args.command](args)
    except ZeroCostError as e:
        print(f"nni-zerocost: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nni-zerocost: interrupted; everything scored so far is in the store", file=sys.stderr)
        return 130


# -- list -----------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from .benchmarks.base import get_benchmark, list_benchmarks
    from .proxies import get_proxy, list_proxies
    from .spaces import get_space, list_spaces

    if args.what == "spaces":
        for n in list_spaces():
            print(f"{n:<8} {(type(get_space(n)).__doc__ or '').strip().splitlines()[0]}")
    elif args.what == "benchmarks":
        for n in list_benchmarks():
            b = get_benchmark(n)
            print(f"{n:<15} space={b.space:<5} truth={b.primary} ({'higher' if b.primary_higher_is_better else 'lower'} is better)")
    else:
        for n in list_proxies(args.space):
            p = get_proxy(n)
            for space, impl in p.impls.items():
                if args.space and space != args.space:
                    continue
                opts = ",".join(f"{k}={v}" for k, v in impl.defaults.items())
                print(f"{n:<26} {space:<5} {'higher' if p.higher_is_better else 'lower'}-is-better  "
                      f"needs={impl.needs:<9} {('options: ' + opts) if opts else ''}")
    return 0


# -- shared plumbing ---------------------------------------------------------------------------
def _batch(space: str, corpus: Optional[str]):
    from .spaces import get_space

    if corpus is None:
        return get_space(space).default_batch(0)
    if space != "rnn":
        raise ZeroCostError("--corpus is supported for the rnn space only (BERT uses token-id batches)")
    from .data import corpus_batch

    return corpus_batch(corpus, batch_size=50, seq_len=70)


def _job(args, space: str):
    from .runner import ScoreJob

    ctx_opts = {}
    if space == "rnn" and args.init != "official":
        ctx_opts["init"] = args.init
    if space == "bert" and args.as_trained:
        ctx_opts["as_trained"] = True
    return ScoreJob(space, list(dict.fromkeys(args.proxy)), _batch(space, args.corpus), args.seed, ctx_opts)


def _store(args):
    from .store import ResultStore, default_store_path

    if args.no_store:
        return None
    return ResultStore(args.store or default_store_path())


# -- score ----------------------------------------------------------------------------------------
def cmd_score(args) -> int:
    import numpy as np

    from .data import data_dir
    from .runner import score_many
    from .spaces import get_space
    from .store import read_jsonl

    job = _job(args, args.space)
    sp = get_space(args.space)
    id_field = "id"
    if args.benchmark:
        from .benchmarks.base import get_benchmark
        from .benchmarks.study import select_entries

        bench = get_benchmark(args.benchmark)
        if bench.space != args.space:
            raise ZeroCostError(f"benchmark {bench.name!r} is for the {bench.space!r} space, not {args.space!r}")
        entries = bench.load(data_dir(args.data_dir))
        if args.limit is not None:
            entries = select_entries(entries, bench, args.limit, args.seed)
        items: List[Tuple[Any, Any]] = [(e.arch_id, e.arch) for e in entries]
        id_field = "arch_id"
    elif args.cells:
        items = []
        for lineno, obj in read_jsonl(args.cells):
            if not isinstance(obj, dict) or "recipe" not in obj and "config" not in obj:
                raise ZeroCostError(f"{args.cells}, line {lineno}: expected an object with 'id' and 'recipe' (or 'config')")
            items.append((obj.get("id", lineno), obj.get("recipe", obj.get("config"))))
        if args.limit is not None:
            items = items[: args.limit]
    else:
        rng = np.random.default_rng(args.seed)
        items = [(i, sp.sample(rng)) for i in range(args.sample)]

    out = Path(args.out)
    done = set()
    if out.exists() and not args.no_resume:
        for _, obj in read_jsonl(out):
            done.add(json.dumps(obj.get(id_field)))
    todo = [(i, a) for i, a in items if json.dumps(i) not in done]
    if done:
        print(f"resuming {out}: {len(items) - len(todo)} of {len(items)} architectures already there", file=sys.stderr)
    store = _store(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = {}
    with open(out, "w" if args.no_resume else "a", encoding="utf-8") as f:
        for rec in score_many(job, todo, store, workers=args.workers, progress=not args.no_progress, total=len(todo)):
            f.write(json.dumps(rec.to_json(id_field)) + "\n")
            f.flush()
            os.fsync(f.fileno())
            counts[rec.status] = counts.get(rec.status, 0) + 1
    print(f"wrote {sum(counts.values())} records to {out} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items())) or 'nothing to do'})",
          file=sys.stderr)
    return 0


# -- benchmark -----------------------------------------------------------------------------------
def run_benchmark(args):
    """Score the benchmark's architectures (store-backed) and compute the study."""
    from .benchmarks.base import get_benchmark
    from .benchmarks.study import select_entries, study
    from .data import data_dir
    from .proxies import get_proxy
    from .runner import score_many

    bench = get_benchmark(args.name)
    job = _job(args, bench.space)
    if getattr(args, "all_cells", False):
        from .benchmarks.extra import select_all_cells

        entries = select_all_cells(bench.load(data_dir(args.data_dir)), args.limit, args.seed)
    else:
        entries = select_entries(bench.load(data_dir(args.data_dir)), bench, args.limit, args.seed)
    store = _store(args)
    specs = [s for s, _, _ in job.parsed]
    scores = {s: [] for s in specs}
    seconds = {s: [] for s in specs}
    flags = {s: [] for s in specs}
    for rec in score_many(job, [(e.arch_id, e.arch) for e in entries], store, workers=args.workers,
                          progress=not args.no_progress, total=len(entries), desc=bench.name):
        for s in specs:
            scores[s].append(rec.values.get(s))
            seconds[s].append(rec.proxy_seconds.get(s))
            flags[s].append(s in rec.flags or rec.values.get(s) is None)
    hib = {s: get_proxy(n).higher_is_better for s, n, _ in job.parsed}
    result = study(bench, entries, scores, seconds, flags, hib)
    from .benchmarks.extra import augment  # issue #14 metrics (all-cells tau-b, group means, baselines)

    augment(result, bench, entries, scores, hib, all_cells=getattr(args, "all_cells", False),
            rank_averages=getattr(args, "rank_average", []))
    if getattr(args, "plot", None):
        from .plots import plot_study

        written = plot_study(bench.name, bench.primary, [e.truth[bench.primary] for e in entries], scores, flags,
                             args.plot, [e.group for e in entries], hib, bench.primary_higher_is_better)
        print(f"wrote {len(written)} figures to {args.plot}", file=sys.stderr)
    return bench, entries, scores, result


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
    import time
    import warnings

    # NNI 3.0 warns on every import/trace with torch 2.x (torch.nn.Buffer, non-Module traces): harmless
    warnings.filterwarnings("ignore", message=r".*(nn\.Buffer|not a nn\.Module).*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    try:
        from .nas import run_search
    except ImportError as e:  # pragma: no cover
        raise ZeroCostError(f"search runs on NNI: pip install 'nni-zerocost[nni]' ({e})") from None
    from .spaces import get_space
    from .store import default_store_path

    if args.budget < 1 or args.top < 1:
        raise ZeroCostError("--budget and --top must be at least 1")
    sp = get_space(args.space)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = None if args.no_store else str(args.store or default_store_path())
    cand_path = out / "candidates.jsonl"
    cand_file = open(cand_path, "w", encoding="utf-8")  # rewritten: a re-run replays from the store
    pbar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=args.budget, desc=f"search {args.space}", unit="cand", dynamic_ncols=True)
    records = []
    last = [time.perf_counter()]
    best = [None]

    def on_trial(arch, metrics):
        now = time.perf_counter()
        score = metrics.get("default")
        rec = {"index": len(records), "arch_hash": metrics.get("arch") or sp.arch_hash(arch), "arch": sp.to_dict(arch),
               "score": score, "scores": {k: v for k, v in metrics.items() if k not in ("default", "flag", "arch")},
               "status": "flagged" if metrics.get("flag") else "ok", "flag": metrics.get("flag") or None,
               "seconds": round(now - last[0], 4)}
        last[0] = now
        records.append(rec)
        cand_file.write(json.dumps(rec) + "\n")
        cand_file.flush()
        if score is not None and (best[0] is None or score > best[0]):
            best[0] = score
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(best=f"{best[0]:.4g}" if best[0] is not None else "-")

    start = time.perf_counter()
    try:
        run_search(args.space, args.proxy, args.strategy, args.budget, seed=args.seed, corpus=args.corpus,
                   extra_proxies=args.extra_proxy, on_trial=on_trial, store=store,
                   experiment_dir=str(out / "nni"))
    finally:
        cand_file.close()
        if pbar is not None:
            pbar.close()
    elapsed = time.perf_counter() - start
    ranked = _rank_unique(records)
    top = ranked[: args.top]
    top_dir = out / "top"
    top_dir.mkdir(exist_ok=True)
    for old in top_dir.glob("*.json"):
        old.unlink()
    for i, rec in enumerate(top, start=1):
        (top_dir / f"{i:02d}_{rec['arch_hash'][:12]}.json").write_text(json.dumps(
            {"space": args.space, "arch": rec["arch"], "score": rec["score"], "proxy": args.proxy}, indent=1))
    (out / "report.md").write_text(_search_report(args, records, top, elapsed))
    print(f"{len(records)} candidates in {elapsed:.1f} s ({len(ranked)} distinct); top {len(top)} by {args.proxy}:")
    for i, rec in enumerate(top, start=1):
        print(f"  {i}. score {rec['score']:.6g}  hash {rec['arch_hash'][:12]}  {_summary(args.space, rec['arch'])}")
    print(f"results in {out}/ (candidates.jsonl, top/, report.md)")
    return 0


def _rank_unique(records):
    """Best first, one entry per canonical architecture, unscored candidates last."""
    seen, out = set(), []
    for rec in sorted(records, key=lambda r: -(r["score"] if r["score"] is not None else -math.inf)):
        if rec["arch_hash"] not in seen:
            seen.add(rec["arch_hash"])
            out.append(rec)
    return out


def _summary(space: str, arch) -> str:
    if space == "rnn":
        ops = [v["op"] for v in arch.values()]
        k = sum(1 for n in arch if n.startswith("h_new_"))
        return f"{len(arch)} nodes, {ops.count('linear')} linear, hidden tuple {k}"
    layers = arch.get("nas_config", {}).get("encoder_layers", []) if isinstance(arch, dict) else []
    return f"hidden {arch.get('hidden_size')}, {len(layers)} layers: " + ", ".join(
        f"{l.get('operation_type')}/{l.get('operation_parameter')}" for l in layers)


def _search_report(args, records, top, elapsed) -> str:
    scored = [r["score"] for r in records if r["score"] is not None and r["score"] > -1e90]
    lines = [
        f"# Search report: {args.space} space, proxy `{args.proxy}`",
        "",
        f"- strategy: {args.strategy} (NNI, sequential engine), budget {args.budget}, seed {args.seed}",
        f"- data: {args.corpus or 'embedded default batch'}",
        f"- candidates scored: {len(records)} in {elapsed:.1f} s; flagged: {sum(r['status'] == 'flagged' for r in records)}",
        f"- score (higher = better): best {max(scored):.6g}, median {sorted(scored)[len(scored) // 2]:.6g}" if scored else "- no finite score",
        "",
        "| rank | score | hash | architecture |",
        "|---:|---:|---|---|",
    ]
    for i, r in enumerate(top, start=1):
        lines.append(f"| {i} | {r['score']:.6g} | `{r['arch_hash'][:12]}` | {_summary(args.space, r['arch'])} |")
    lines += ["", "Each file in `top/` holds `{space, arch, score, proxy}`; load the architecture with",
              "`nni_zerocost.get_space(space).parse(arch)`."]
    return "\n".join(lines) + "\n"


def cmd_plot(args) -> int:
    from .benchmarks.base import get_benchmark
    from .data import data_dir
    from .plots import plot_study
    from .proxies import get_proxy
    from .proxies.base import parse_proxy_spec
    from .store import read_jsonl

    bench = get_benchmark(args.benchmark)
    by_id = {json.dumps(e.arch_id): e for e in bench.load(data_dir(args.data_dir))}
    rows = [obj for _, obj in read_jsonl(args.results)]
    meta = {"arch_id", "id", "arch_hash", "status", "flags", "error", "seconds"}
    specs = [k for k in (rows[0] if rows else {}) if k not in meta]
    matched = [(by_id.get(json.dumps(r.get("arch_id", r.get("id")))), r) for r in rows]
    matched = [(e, r) for e, r in matched if e is not None and e.truth.get(bench.primary) is not None]
    if not matched:
        raise ZeroCostError(f"{args.results}: no record matches an architecture of {bench.name} with a known {bench.primary}")
    scores = {s: [r.get(s) for _, r in matched] for s in specs}
    flags = {s: [s in (r.get("flags") or {}) or r.get(s) is None for _, r in matched] for s in specs}
    hib = {s: get_proxy(parse_proxy_spec(s)[0]).higher_is_better for s in specs}
    written = plot_study(bench.name, bench.primary, [e.truth[bench.primary] for e, _ in matched], scores, flags,
                         args.out, [e.group for e, _ in matched], hib, bench.primary_higher_is_better)
    print("\n".join(str(p) for p in written))
    return 0


def _write_report(result, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [(n, r["kendall_tau"], r["spearman"], r["pearson"], r["seconds_per_arch"], r["n_flagged"]) for n, r in result["proxies"].items()]
    if path.suffix == ".csv":
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["proxy", "kendall_tau", "spearman", "pearson", "seconds_per_arch", "n_flagged"])
            w.writerows(rows)
    else:
        lines = [f"| proxy | Kendall τ | Spearman ρ | Pearson r | s/arch | flagged |", "|---|---:|---:|---:|---:|---:|"]
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
