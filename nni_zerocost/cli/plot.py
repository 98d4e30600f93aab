"""``nni-zerocost plot RESULTS --benchmark NAME --out DIR``: figures of a score file against a
benchmark's truth."""
from __future__ import annotations

NAME = "plot"


def add_parser(sub):
    from .parser import Help
    from .options import add_data_dir_flag

    p = sub.add_parser(NAME, help="figures for a 'score --benchmark' output file against the benchmark's truth",
                       formatter_class=Help)
    p.add_argument("results", help="JSONL written by 'nni-zerocost score --benchmark NAME'")
    p.add_argument("--benchmark", required=True, help="benchmark the results belong to")
    add_data_dir_flag(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the figures (PNG + SVG)")
    return p


def run(args) -> int:
    from ..job import check_output_folder
    from ..plots import plot_results

    check_output_folder("out", args.out)
    for path in plot_results(args.results, args.benchmark, args.out, args.data_dir):
        print(path)
    return 0
