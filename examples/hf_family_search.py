"""Search a family of Hugging Face configs under a size budget, with no training (the hf space).

    python examples/hf_family_search.py [--choices examples/llama_family.yaml] [--budget 12] [--out results/hf]

does what this command does (docs/hf-space.md):

    nni-zerocost search --space hf --choices examples/llama_family.yaml --max-params 1e8 --pareto \\
        --proxy synaptic_saliency --extra-proxy nonembedding_params --strategy ranking --budget 12 --out results/hf

Every candidate is a config of the family; its size is counted on the meta device first, so one
over --max-params costs no model work; the others are built with seeded weights and scored on
the embedded Zipf batch.  synaptic_saliency is provisional: the proxy that ranked the LTS GPT-2
decoders best within a size (docs/results.md), until the hf guide measures one on this family.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nni_zerocost as nz

HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--choices", default=str(HERE / "llama_family.yaml"), help="the family file (YAML or JSON)")
    p.add_argument("--proxy", default="synaptic_saliency")
    p.add_argument("--budget", type=int, default=12, help="candidates to score")
    p.add_argument("--max-params", type=float, default=1e8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/hf")
    args = p.parse_args(argv)

    result = nz.search("hf", args.proxy, choices=args.choices, strategy="ranking", budget=args.budget,
                       extra_proxies=["nonembedding_params"], max_params=args.max_params, pareto=True,
                       seed=args.seed, experiment_dir=str(Path(args.out) / "nni"))
    result.write(args.out, Path(args.out) / "nni")
    print(result.summary())
    print(f"report: {Path(args.out) / 'report.md'}")


if __name__ == "__main__":
    main()
