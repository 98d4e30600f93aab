"""``nni-zerocost search``: search a space through NNI or Optuna by a proxy (no training); the best
to DIR."""
from __future__ import annotations

import json

from .options import add_budget_flags, add_corpus_flag, add_cost_flags, add_progress_flag, add_store_flags, job_fields
from ..flags import add_context_option_flags, add_family_option_flags, add_plugin_flag

NAME = "search"


def add_parser(sub):
    from .parser import Help
    from ..api import ENGINES
    from ..nas.search import STRATEGIES  # plain names; NNI itself is imported only when a search runs
    from ..optuna import SAMPLERS  # likewise Optuna

    p = sub.add_parser(NAME, help="search a space through NNI or Optuna by a proxy (no training); best architectures "
                                  "to DIR", formatter_class=Help)
    p.add_argument("--space", required=True, help="search space (see 'nni-zerocost list spaces')")
    p.add_argument("--proxy", default=None, metavar="SPEC",
                   help="proxy spec to maximise (default: the space's own, 'nni-zerocost list spaces')")
    p.add_argument("--extra-proxy", action="append", default=[], metavar="SPEC",
                   help="also report this proxy (repeatable)")
    p.add_argument("--engine", default="nni", metavar="{" + ",".join(ENGINES) + "}",
                   help="the host that runs the search loop")
    p.add_argument("--strategy", default=None, metavar="{" + ",".join(STRATEGIES) + "}",
                   help="NNI strategy: Random, RegularizedEvolution, TPE (maximising), or ranking (score "
                        "--budget candidates in-process, keep the best) (default: evolution)")
    p.add_argument("--sampler", default=None, metavar="{" + ",".join(SAMPLERS) + "}",
                   help="with --engine optuna: Optuna's TPESampler, NSGAIISampler or RandomSampler (default: tpe)")
    p.add_argument("--storage", default=None, metavar="URL|FILE",
                   help="with --engine optuna: where the study lives, a database URL (sqlite:///study.db) or a "
                        "journal file; a re-run continues the study, several processes share it, optuna-dashboard "
                        "opens it (default: in memory)")
    p.add_argument("--study-name", default=None, metavar="NAME",
                   help="with --engine optuna: the study in --storage (default: <space>-<proxy>)")
    p.add_argument("--budget", type=int, default=50, help="candidates to score (Optuna: trials this run adds)")
    p.add_argument("--top", type=int, default=5, help="architectures to keep as files")
    p.add_argument("--seed", type=int, default=0, help="seeds the strategy and the weights")
    add_corpus_flag(p)
    add_context_option_flags(p)
    add_family_option_flags(p)
    add_budget_flags(p)
    add_cost_flags(p)
    p.add_argument("--pareto", action="store_true",
                   help="also report the candidates on the front of proxy score against a size or cost (--pareto-"
                        "against; default: parameters, non-embedding parameters under --max-nonembedding-params); "
                        "with --engine optuna the study optimises both")
    p.add_argument("--pareto-against", default=None, metavar="MEASURE",
                   help="what the front trades the score against: params, nonembedding_params, flops, n_layers, or "
                        "a cost (latency_ms, peak_memory_mb: measured for every candidate)")
    p.add_argument("--data-dir", default=None,
                   help="data folder where --corpus names are looked up (default: $NNI_ZEROCOST_DATA)")
    p.add_argument("--workers", default="auto", metavar="N|auto",
                   help="processes scoring candidates (--strategy ranking; NNI's sequential engine scores the "
                        "other strategies' candidates one at a time, so auto means 1 there)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch/BLAS threads per scoring process (default: the idle cores, shared out)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: candidates.jsonl, top/, report.md, search.png, nni/ (NNI's own files, --engine nni)")
    add_store_flags(p)
    p.add_argument("--device", default="auto", help="auto (default): CUDA when available, else the CPU; or cpu, cuda, cuda:N")
    add_progress_flag(p)
    add_plugin_flag(p)
    return p


def run(args) -> int:
    from ..api import search
    from ..job import check_output_folder

    out = check_output_folder("out", args.out)
    fields = job_fields(args)
    proxy = args.proxy if args.proxy is not None else _default_proxy(args.space)
    if args.strategy != "ranking" and fields.get("workers") == "auto":
        fields["workers"] = 1  # NNI's sequential engine (and an Optuna trial) scores one candidate at a time
    nni_dir = out / "nni" if args.engine == "nni" else None
    pbar = None
    best = [None]
    streamed = []  # candidates.jsonl, opened at the first candidate (after every check passed)

    def on_candidate(rec):
        nonlocal pbar
        if not streamed:
            out.mkdir(parents=True, exist_ok=True)
            streamed.append(open(out / "candidates.jsonl", "w", encoding="utf-8"))
            if not args.no_progress:  # shown once the search runs: a refused one prints one line
                from tqdm.auto import tqdm

                pbar = tqdm(total=args.budget, desc=f"search {args.space}", unit="cand", dynamic_ncols=True)
        streamed[0].write(json.dumps(rec) + "\n")  # a killed search keeps what it scored
        streamed[0].flush()
        if rec["score"] is not None and (best[0] is None or rec["score"] > best[0]):
            best[0] = rec["score"]
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(best=f"{best[0]:.4g}" if best[0] is not None else "-")

    try:
        result = search(args.space, proxy, strategy=args.strategy, budget=args.budget, top=args.top,
                        extra_proxies=args.extra_proxy, pareto=args.pareto, pareto_against=args.pareto_against,
                        experiment_dir=None if nni_dir is None else str(nni_dir), on_candidate=on_candidate,
                        engine=args.engine, sampler=args.sampler, storage=args.storage, study_name=args.study_name,
                        **fields)
    finally:
        for f in streamed:
            f.close()
        if pbar is not None:
            pbar.close()
    written = result.write(out, nni_dir)
    print(result.summary())
    extras = ((", search.png" if "figure" in written else "") + (", front.csv" if "front" in written else "")
              + (", pareto.png" if result.front_figure is not None else "") + (", nni/" if nni_dir is not None else ""))
    print(f"results in {out}/ (candidates.jsonl, top/, report.md{extras})")
    if args.storage is not None:
        print(f"the study: optuna-dashboard {args.storage}")
    return 0



def _default_proxy(space: str):
    """The space's own proxy when ``--proxy`` is left out (None for an unknown space: the job
    check names the space then)."""
    import sys

    from ..spaces import get_space, list_spaces

    if space not in list_spaces() or get_space(space).default_proxy is None:
        return None
    proxy = get_space(space).default_proxy
    print(f"search: no --proxy given; the {space!r} space's own: {proxy}", file=sys.stderr)
    return proxy
