"""The flags several commands share, and the job fields they set.

Each flag is named like its field (``--max-params`` sets ``max_params``); :func:`job_fields`
collects what the flags of a command give into keyword arguments of
:meth:`nni_zerocost.job.ScoringJob.of`, which the Python API takes as they are.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict

from ..flags import add_context_option_flags, add_plugin_flag, context_options_of, family_options_of

#: fields a flag of the same name sets in the job or its request, where the command has it
_FIELDS = ("seed", "corpus", "device", "limit", "data_dir", "workers", "threads", "ray", "gpus_per_task", "shard",
           "max_params", "max_nonembedding_params", "max_flops", "max_layers", "cost_seq_len", "cost_threads",
           "max_latency_ms", "max_memory_mb", "all_cells")


def add_proxy_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--proxy", action="append", required=True, metavar="SPEC",
                   help="proxy name or spec 'name:key=value,...' (repeatable), e.g. hidden_covariance:layer=2 "
                        "('nni-zerocost list proxies' shows each proxy's options)")


def add_corpus_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default=None,
                   help="input text: rnn: a PTB-style folder (train/valid/test, 'ptb.' prefix or not; its test split "
                        "is batched), one text file, or the name of such a folder in the data folder (e.g. 'ptb'); "
                        "gpt2 and --model: pre-tokenised ids (.npy/.pt) (default: the embedded Zipf batch)")


def add_data_dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="benchmark data folder (default: $NNI_ZEROCOST_DATA, else the user data folder if "
                        "'data prepare' filled it, else the tables shipped with the package)")


def add_request_flags(p: argparse.ArgumentParser, *, proxy: bool = True) -> None:
    """What decides a score: proxies, seed, data, device, the spaces' context options, plugins."""
    if proxy:
        add_proxy_flag(p)
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed (and subset seed for --limit)")
    add_corpus_flag(p)
    add_context_option_flags(p)
    p.add_argument("--device", default="auto", help="auto (default): CUDA when available, else the CPU; or cpu, cuda, cuda:N")
    add_plugin_flag(p)


def add_where_flags(p: argparse.ArgumentParser, *, ray: bool = True) -> None:
    """Where the scoring runs (docs/throughput.md): local workers and threads, or Ray tasks."""
    p.add_argument("--workers", default="auto", metavar="N|auto",
                   help="scoring processes; auto: one per usable core, at most one per 8 architectures (fewer: "
                        "scored in this process)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch/BLAS threads per scoring process (default: the idle cores, shared out between "
                        "the workers; $NNI_ZEROCOST_THREADS pins it too)")
    if ray:
        p.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="one Ray task per architecture: 'local' (a private Ray instance here), 'auto' (the "
                            "cluster this machine joined) or a cluster address; needs the 'ray' extra")
        p.add_argument("--gpus-per-task", type=float, default=None, metavar="F",
                       help="with --ray: the GPUs (a fraction, e.g. 0.25) each task asks for; the tasks score on CUDA")


def add_store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="results store (JSONL; default: $NNI_ZEROCOST_STORE, else ~/.cache/nni-zerocost/results.jsonl)")
    p.add_argument("--no-store", action="store_true", help="do not read or write the results store")


def add_budget_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-params", type=float, default=None, metavar="N",
                   help="size budget: keep only architectures with at most N parameters (counted from the "
                        "architecture: one over budget costs no model work)")
    p.add_argument("--max-nonembedding-params", type=float, default=None, metavar="N",
                   help="size budget on the parameters outside the embedding tables (LTS's decoder parameters)")
    p.add_argument("--max-flops", type=float, default=None, metavar="F",
                   help="size budget: at most F forward FLOPs per token (spaces that count FLOPs)")
    p.add_argument("--max-layers", type=int, default=None, metavar="L",
                   help="size budget: at most L layers (the model's repeated blocks)")


def add_cost_flags(p: argparse.ArgumentParser) -> None:
    """What each architecture costs on this device (docs/costs.md), and budgets on it."""
    p.add_argument("--cost", action="append", default=[], metavar="NAME", dest="costs",
                   help="also report this cost per architecture (repeatable): latency_ms and peak_memory_mb "
                        "measured here (batch 1, a row of the model's context, LTS's protocol), n_layers and "
                        "flops_per_token counted; measured costs are stored by this machine's fingerprint")
    p.add_argument("--cost-seq-len", type=int, default=None, metavar="N",
                   help="row length the measured costs feed the model (default: the model's context, tgt_len)")
    p.add_argument("--cost-threads", type=int, default=1, metavar="N",
                   help="threads a latency is measured with (LTS: 1); part of the machine fingerprint")
    p.add_argument("--max-latency-ms", type=float, default=None, metavar="X",
                   help="measured budget: latency at most X ms here (measured before the proxies are scored)")
    p.add_argument("--max-memory-mb", type=float, default=None, metavar="Y",
                   help="measured budget: peak inference memory at most Y MiB here")


def add_progress_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def job_fields(args: argparse.Namespace) -> Dict[str, Any]:
    """The job and request fields the command's flags give (flags it does not have, and flags
    left at None, are left out: the job's defaults hold)."""
    from ..data import resolve_corpus

    out: Dict[str, Any] = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    if out.get("all_cells") is False:
        out.pop("all_cells")
    if out.get("cost_threads") == 1:
        out.pop("cost_threads")  # the default: jobs without costs stay as they were
    if "corpus" in out:
        out["corpus"] = resolve_corpus(out["corpus"], getattr(args, "data_dir", None))
    if hasattr(args, "no_store"):
        out["store"] = None if args.no_store else (args.store or "default")
    out["plugins"] = tuple(getattr(args, "plugin", None) or ())
    if getattr(args, "costs", None):
        out["costs"] = tuple(args.costs)
    out.update(context_options_of(args))
    out.update(family_options_of(args))
    return out
