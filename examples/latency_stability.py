"""How stable is ``latency_ms`` from run to run, and how far does it follow model size?

Measures the latency of the 122 GPT-2 models on LTS's latency/memory Pareto fronts (One Billion
Words configs, ``lts/lts_pareto_gpt2_lm1b_configs.jsonl.gz``) twice, in two passes over all
models, with LTS's protocol (batch 1, sequence ``tgt_len`` = 32, one thread, 10 timed runs), and
prints the Kendall tau between the passes, the seconds per model, and the Kendall tau between
latency and the release's non-embedding parameter count.

    python examples/latency_stability.py                       # the gpt2 space's own models
    python examples/latency_stability.py --model standin       # a stand-in GPT-2 (see below)
    python examples/latency_stability.py --model standin --limit 20 --busy 1   # beside a busy loop

``--model space`` builds each config with the gpt2 space and skips (and counts) the configs it
refuses.  ``--model standin`` builds a plain GPT-2 from the config's fields, the one-cluster
adaptive embedding and softmax these configs use (``d_embed`` -1 = ``d_model``, one vocabulary
cluster); a model whose parameter counts differ from the release's is skipped and counted.
``--limit N`` keeps the N configs with the fewest non-embedding parameters; ``--busy K`` runs K
busy-loop processes beside the measurement (ended by this script).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from nni_zerocost import costs
from nni_zerocost.errors import InvalidArchitectureError
from nni_zerocost.spaces.gpt2.config import clean_cutoffs

#: the configs, under $NNI_ZEROCOST_DATA or the repository's ../shared/data (as CI reads them)
DATA = os.environ.get("NNI_ZEROCOST_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
CONFIGS = os.path.join(DATA, "lts", "lts_pareto_gpt2_lm1b_configs.jsonl.gz")


class StandInBlock(nn.Module):
    """Pre-LN GPT-2 block, the same operations as the gpt2 space's (explicit causal softmax)."""

    def __init__(self, d: int, heads: int, inner: int):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.up, self.down = nn.Linear(d, inner), nn.Linear(inner, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln_1(x)
        q, k, v = (f(h).view(b, t, self.heads, -1).transpose(1, 2) for f in (self.query, self.key, self.value))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v
        x = x + self.out(att.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln_2(x)), approximate="tanh"))


class StandInGPT2(nn.Module):
    """archai's GPT-2 for a config with one vocabulary cluster: embedding table (tied to the
    output), projections d_embed <-> d_model when ``div_val`` > 1 or d_embed != d_model (the
    output's own unless ``tie_projs[0]``), learned positions (``tgt_len``), full log-softmax."""

    def __init__(self, config: dict, seed: int = 0):
        super().__init__()
        if len(clean_cutoffs(config["cutoffs"], config["n_token"])) != 1 or not config["tie_weight"]:
            raise ValueError("the stand-in has one tied vocabulary cluster only")
        d = config["d_model"]
        e = d if config["d_embed"] < 0 else config["d_embed"]
        self.config = type("Config", (), {"tgt_len": config["tgt_len"], "n_token": config["n_token"]})()
        self.scale = math.sqrt(d)
        self.table = nn.Embedding(config["n_token"], e)
        projected = config["div_val"] > 1 or e != d
        self.in_proj = nn.Parameter(torch.empty(d, e)) if projected else None
        self.out_proj = None if not projected or config["tie_projs"][0] else nn.Parameter(torch.empty(d, e))
        self.positions = nn.Embedding(config["tgt_len"], d)
        self.layers = nn.ModuleList(StandInBlock(d, h, f) for h, f in zip(config["n_head"], config["d_inner"]))
        self.final_norm = nn.LayerNorm(d)
        self.out_bias = nn.Parameter(torch.zeros(config["n_token"]))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() > 1:
                    p.normal_(0.0, 0.02, generator=gen)

    def param_counts(self) -> dict:
        """The release's ``nonembedding`` (blocks and LayerNorms) and ``total``."""
        blocks = sum(p.numel() for p in self.layers.parameters()) + sum(p.numel() for p in self.final_norm.parameters())
        return {"nonembedding": blocks, "total": sum(p.numel() for p in self.parameters())}

    def forward(self, ids):
        x = self.table(ids)
        if self.in_proj is not None:
            x = F.linear(x, self.in_proj)
        x = x * self.scale + self.positions(torch.arange(ids.shape[1]))
        for layer in self.layers:
            x = layer(x)
        h = self.final_norm(x)
        if self.in_proj is not None:
            h = h @ (self.in_proj if self.out_proj is None else self.out_proj)
        return torch.log_softmax(F.linear(h, self.table.weight, self.out_bias), dim=-1)


def build(row: dict, kind: str):
    """The model of one config, or the reason it is skipped."""
    if kind == "space":
        import nni_zerocost as nz

        space = nz.get_space("gpt2")
        try:
            return space.build_model(space.parse(row["config"])), None
        except InvalidArchitectureError as e:
            return None, f"space refuses: {e}"
    try:
        model = StandInGPT2(row["config"])
    except ValueError as e:
        return None, str(e)
    got, want = model.param_counts(), {k: int(row["params"][k]) for k in ("nonembedding", "total")}
    return (model, None) if got == want else (None, f"parameter counts {got} != release {want}")


def uptime() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("space", "standin"), default="space")
    ap.add_argument("--limit", type=int, help="the N configs with the fewest non-embedding parameters")
    ap.add_argument("--busy", type=int, default=0, help="busy-loop processes beside the measurement")
    ap.add_argument("--runs", type=int, default=costs.DEFAULT_RUNS)
    ap.add_argument("--threads", type=int, default=costs.DEFAULT_THREADS)
    ap.add_argument("--out", help="write every result here (JSON lines)")
    ap.add_argument("--configs", default=CONFIGS, help="the Pareto configs (JSON lines, gzip)")
    args = ap.parse_args(argv)
    costs.check_latency_workers(1, args.threads)

    with gzip.open(args.configs, "rt") as f:
        rows = [json.loads(line) for line in f]
    if args.limit:
        rows = sorted(rows, key=lambda r: r["params"]["nonembedding"])[: args.limit]
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    out = open(args.out, "w") if args.out else None
    print(f"{len(rows)} configs, model {args.model}, {args.busy} busy loop(s), {uptime()}")
    try:
        passes, skipped, seconds = [{}, {}], {}, []
        for k, latencies in enumerate(passes):
            for row in rows:
                if row["arch_id"] in skipped:
                    continue
                start = time.perf_counter()
                model, why = build(row, args.model)
                if model is None:
                    skipped[row["arch_id"]] = why
                    continue
                r = costs.latency_ms(model, seq_len=row["config"]["tgt_len"], vocab_size=row["config"]["n_token"],
                                     threads=args.threads, runs=args.runs)
                seconds.append(time.perf_counter() - start)
                latencies[row["arch_id"]] = r
                if out:
                    out.write(json.dumps({"arch_id": row["arch_id"], "pass": k + 1, **r.to_dict()}) + "\n")
            print(f"pass {k + 1}: {len(latencies)} models, {uptime()}")
    finally:
        for p in busy:
            p.terminate()
            p.wait()
        if out:
            out.close()

    reasons = sorted(set(skipped.values()))
    print(f"skipped {len(skipped)}" + (f" ({reasons[0]}{' ...' if len(reasons) > 1 else ''})" if skipped else ""))
    ids = [r["arch_id"] for r in rows if r["arch_id"] in passes[1]]
    if len(ids) < 3:
        print("too few models measured" + (" (try --model standin)" if args.model == "space" else ""))
        return 1
    first = [passes[0][i].value for i in ids]
    second = [passes[1][i].value for i in ids]
    params = {r["arch_id"]: r["params"]["nonembedding"] for r in rows}
    size = [params[i] for i in ids]
    rel_iqr = sorted((r.spread["q75"] - r.spread["q25"]) / r.value for r in passes[0].values())
    change = sorted(abs(a - b) / min(a, b) for a, b in zip(first, second))
    print(f"models measured: {len(ids)} x 2, {sum(seconds) / len(seconds):.2f} s per model and pass "
          f"(build + measure), latency {min(first):.2f}..{max(first):.2f} ms")
    print(f"Kendall tau pass 1 vs pass 2: {stats.kendalltau(first, second).statistic:.3f}")
    print(f"Kendall tau latency vs non-embedding parameters: pass 1 {stats.kendalltau(first, size).statistic:.3f}, "
          f"pass 2 {stats.kendalltau(second, size).statistic:.3f}")
    print(f"within a measurement: median IQR/median {rel_iqr[len(rel_iqr) // 2]:.3f}; between passes: median "
          f"|change| {change[len(change) // 2]:.3f}, largest {change[-1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
