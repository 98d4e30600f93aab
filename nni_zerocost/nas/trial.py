"""HPO trial: score the candidate NNI hands out and report it.

    python -m nni_zerocost.nas.trial --space rnn --proxy hidden_covariance [--corpus PATH] [--seed S] [--device D]

Reads ``nni.get_next_parameter()`` (a sample of the space's labels, see
:func:`~nni_zerocost.nas.codec.search_space_json`), decodes it to a validated architecture,
scores it through the core's checked plan (:func:`nni_zerocost.make_plan`) and reports the metric
dict (``default`` = the proxy score, higher is better).  The :class:`ScoringRequest` sent by
:class:`ZeroCostTuner` (parameter key ``_zerocost``) fills in the flags not given; a flag that
contradicts it is an error.  Every request field and every space's context option has a flag
(``--init``, ``--as-trained``, ...).  ``--sample JSON`` scores a sample without NNI (for
debugging a configuration).  Errors are one line on stderr with exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from ..flags import add_context_option_flags, add_plugin_flag, check_no_conflict, context_options_of, load_plugin_modules


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nni_zerocost.nas.trial", description=__doc__.split("\n")[0])
    p.add_argument("--space", help="search space (required unless the tuner sends it)")
    p.add_argument("--proxy", help="proxy spec, e.g. hidden_covariance or hidden_covariance:layer=2 (default "
                                   "hidden_covariance)")
    p.add_argument("--extra-proxy", dest="extra_proxies", action="append", help="also report this proxy (repeatable)")
    p.add_argument("--seed", type=int, help="weight-initialisation seed (default 0)")
    p.add_argument("--corpus", help="PTB-style folder or text file (default: the space's embedded batch)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the space's)")
    p.add_argument("--seq-len", type=int, help="sequence length (default: the space's)")
    p.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda or cuda:N")
    add_context_option_flags(p)
    add_plugin_flag(p)
    p.add_argument("--sample", help="score this sample (JSON object or path) instead of asking NNI")
    return p


def resolve_request(args: argparse.Namespace, sent: Optional[Dict[str, Any]]):
    """The request of this trial: the tuner's, with the command-line flags filling in (a flag
    that contradicts the tuner is an error)."""
    from ..plan import ScoringRequest

    sent = dict(sent or {})
    base = ScoringRequest.from_json(sent) if sent else None
    flags = {"space": args.space, "seed": args.seed, "corpus": args.corpus, "batch_size": args.batch_size,
             "seq_len": args.seq_len, "device": args.device}
    proxies = None if args.proxy is None else [args.proxy, *(args.extra_proxies or [])]
    options = context_options_of(args)
    if base is None:
        from ..errors import BadInputError

        if args.space is None:
            raise BadInputError("space", "no search space: pass --space (or use ZeroCostTuner, which sends it)")
        fields = {k: v for k, v in flags.items() if v is not None and k != "space"}
        return ScoringRequest(proxies or ["hidden_covariance"], args.space, options=options, **fields)
    for field, value in flags.items():  # only what the tuner did send can be contradicted
        check_no_conflict(field, value, sent.get(field))
    if proxies is not None:
        check_no_conflict("proxy", tuple(proxies), base.proxies)
    for name, value in options.items():
        check_no_conflict(name, value, base.options.get(name))
    changes = {k: v for k, v in flags.items() if v is not None}
    return base.replace(**changes, options={**base.options, **options})


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from ..errors import ZeroCostError

    try:
        load_plugin_modules(argv)
        args = build_parser().parse_args(argv)
        import nni

        from ..job import ScoringJob, check_job
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
        request = resolve_request(args, params.get(SETTINGS_KEY))
        checked = check_job(ScoringJob(request, store=None, plugins=tuple(args.plugin or ())), need_architectures=False)
        arch = get_codec(request.space).decode(params)
        metrics = proxy_metrics(checked, arch)
    except ZeroCostError as e:
        print(f"{build_parser().prog}: error: {e}", file=sys.stderr)
        return 2
    nni.report_final_result(metrics)
    print(json.dumps({"metrics": metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
