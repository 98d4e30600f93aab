"""HPO trial: score the candidate NNI hands out and report it.

    python -m nni_zerocost.nas.trial --space rnn --proxy hidden_covariance [--corpus PATH] [--seed S] [--device D]

Reads ``nni.get_next_parameter()`` (a sample of the space's labels, see
:func:`~nni_zerocost.nas.codec.search_space_json`), decodes it to a validated architecture,
scores it through the core's checked plan (:func:`nni_zerocost.make_plan`) and reports the metric dict
(``default`` = the proxy score, higher is better).  Settings sent by :class:`ZeroCostTuner`
(parameter key ``_zerocost``) fill in the flags not given; a flag that contradicts them is an
error.  ``--sample JSON`` scores a sample without NNI (for debugging a configuration).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

SETTINGS = ("space", "proxy", "seed", "extra_proxies", "corpus", "batch_size", "seq_len", "device")
DEFAULTS = {"proxy": "hidden_covariance", "seed": 0, "extra_proxies": [], "device": "auto"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nni_zerocost.nas.trial", description=__doc__.split("\n")[0])
    p.add_argument("--space", choices=["rnn", "bert"], help="search space (required unless the tuner sends it)")
    p.add_argument("--proxy", help="proxy spec, e.g. hidden_covariance or hidden_covariance:layer=2")
    p.add_argument("--extra-proxy", dest="extra_proxies", action="append", help="also report this proxy (repeatable)")
    p.add_argument("--seed", type=int, help="weight-initialisation seed (default 0)")
    p.add_argument("--corpus", help="PTB-style folder or text file (default: the embedded zipf batch)")
    p.add_argument("--batch-size", type=int, help="batch columns (rnn default 50)")
    p.add_argument("--seq-len", type=int, help="time steps (rnn default 70)")
    p.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--sample", help="score this sample (JSON object or path) instead of asking NNI")
    return p


def resolve_settings(args: argparse.Namespace, sent: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Command-line flags merged with the tuner's settings; a disagreement is an error."""
    sent = dict(sent or {})
    unknown = set(sent) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings from the tuner: {sorted(unknown)}")
    out: Dict[str, Any] = {}
    for key in SETTINGS:
        flag, tuner = getattr(args, key), sent.get(key)
        if flag is not None and tuner is not None and flag != tuner:
            raise ValueError(f"--{key.replace('_', '-')} {flag!r} contradicts the tuner's {key} {tuner!r}")
        value = flag if flag is not None else tuner
        out[key] = value if value is not None else DEFAULTS.get(key)
    if out["space"] is None:
        raise ValueError("no search space: pass --space rnn|bert (or use ZeroCostTuner, which sends it)")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    import nni

    from ..plan import make_plan
    from .codec import get_codec
    from .evaluator import proxy_metrics
    from .tuner import SETTINGS_KEY

    if args.sample is not None:
        text = args.sample
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        params = json.loads(text)
    else:
        params = nni.get_next_parameter()
        if not params:
            print("no parameters from NNI: run inside an NNI experiment, or pass --sample", file=sys.stderr)
            return 2
    settings = resolve_settings(args, params.get(SETTINGS_KEY))
    plan = make_plan(settings["space"], [settings["proxy"], *settings["extra_proxies"]], seed=settings["seed"],
                     corpus=settings["corpus"], batch_size=settings["batch_size"], seq_len=settings["seq_len"],
                     device=settings["device"])
    arch = get_codec(settings["space"]).decode(params)
    metrics = proxy_metrics(plan, arch)
    nni.report_final_result(metrics)
    print(json.dumps({"metrics": metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
