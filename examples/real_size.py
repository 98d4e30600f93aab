"""Seconds and peak resident memory of each proxy on real-size language models, on this machine.

The models are built in code from ``transformers`` config classes with random weights (nothing
is downloaded): GPT-2 small (124M), a Qwen2.5-0.5B-shaped config (494M), a LLaMA-3.2-1B-shaped
config (1.24B: hidden 2048, 16 layers, 32 heads, 8 key/value heads, intermediate 8192, vocabulary
128,256, tied embeddings), a Mamba (130M) and a Mixtral-shaped mixture of experts (~500M).  Each
(model, proxy) pair is scored by ``nz.score_model`` on the default batch (50 rows x 70 tokens) in
a process of its own, so its peak resident memory is its own; one pair at a time.

    python examples/real_size.py --model llama-1b --proxy zerolm          # one pair, this process
    python examples/real_size.py --model all --proxy all --json out.jsonl # every pair, one process each

Printed per pair: seconds building the model, seconds scoring, the peak resident set (the
process's ``ru_maxrss``, what ``/usr/bin/time -v`` calls "Maximum resident set size") and the
score, or why the model was refused.  docs/your-own-model.md has the table measured with it.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time

MODELS = ("gpt2", "qwen2.5-0.5b", "llama-1b", "mamba-130m", "mixtral-moe")
PROXIES = ("params", "synaptic_saliency", "zerolm", "head_confidence", "attention_rank")


def config(name: str):
    """The ``transformers`` config of a model name (random weights are drawn from it)."""
    import transformers as tf

    if name == "gpt2":
        return tf.GPT2Config()  # GPT-2 small: 12 layers, 768 wide, 12 heads, vocabulary 50,257
    if name == "qwen2.5-0.5b":
        return tf.Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                              num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                              tie_word_embeddings=True)
    if name == "llama-1b":
        return tf.LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                              num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072,
                              tie_word_embeddings=True, rope_theta=500000.0, head_dim=64)
    if name == "mamba-130m":
        return tf.MambaConfig(hidden_size=768, num_hidden_layers=24, vocab_size=50280)
    if name == "mixtral-moe":
        return tf.MixtralConfig(hidden_size=1024, intermediate_size=2048, num_hidden_layers=8, num_attention_heads=16,
                                num_key_value_heads=4, num_local_experts=8, num_experts_per_tok=2, vocab_size=32000,
                                max_position_embeddings=4096)
    raise SystemExit(f"unknown model {name!r}; models: {', '.join(MODELS)}")


def build(name: str):
    import torch
    import transformers as tf

    torch.manual_seed(0)
    return tf.AutoModelForCausalLM.from_config(config(name))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def measure(model_name: str, proxy: str, dtype=None, max_memory=None) -> dict:
    """Build one model and score one proxy in this process."""
    import nni_zerocost as nz

    t0 = time.perf_counter()
    model = build(model_name)
    n = sum(p.numel() for p in dict(model.named_parameters()).values())
    t1 = time.perf_counter()
    out = {"model": model_name, "proxy": proxy, "params": n, "build_s": round(t1 - t0, 1),
           "dtype": dtype or "float32", "max_memory": max_memory}
    try:
        res = nz.score_model(model, proxy, dtype=dtype, max_memory=max_memory)[proxy]
        out.update(score=res.score, flag=res.flag)
    except nz.BadInputError as e:
        out.update(score=None, refused=str(e))
    out.update(score_s=round(time.perf_counter() - t1, 1), peak_rss_gib=round(peak_rss_gib(), 2))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, help=f"one of {', '.join(MODELS)}, or all")
    p.add_argument("--proxy", action="append", required=True, help=f"a proxy (e.g. {', '.join(PROXIES)}), or all")
    p.add_argument("--dtype", default=None, help="float32 (default) or bfloat16")
    p.add_argument("--max-memory", default=None, help="bound on the gradient pass, e.g. 12GiB (default: derived)")
    p.add_argument("--json", default=None, help="append one JSON line per pair to this file")
    args = p.parse_args()
    models = list(MODELS) if "all" in args.model else args.model
    proxies = list(PROXIES) if "all" in args.proxy else args.proxy
    pairs = [(m, x) for m in models for x in proxies]
    if len(pairs) == 1:
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # the gradient pass's chunks
        rec = measure(*pairs[0], dtype=args.dtype, max_memory=args.max_memory)
        print(json.dumps(rec))
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(rec) + "\n")
        return
    for m, x in pairs:  # each pair in a process of its own: its peak memory is its own
        cmd = [sys.executable, __file__, "--model", m, "--proxy", x]
        for flag, value in (("--dtype", args.dtype), ("--max-memory", args.max_memory), ("--json", args.json)):
            if value is not None:
                cmd += [flag, value]
        subprocess.run(cmd, check=False)


if __name__ == "__main__":
    main()
