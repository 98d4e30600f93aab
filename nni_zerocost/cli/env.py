"""``nni-zerocost env``: what decides the rounding and speed of scores on this machine (the CPU,
the BLAS kernels, threads, versions), for bug reports and for reading a red CI run."""
from __future__ import annotations

NAME = "env"


def add_parser(sub):
    from .parser import Help

    return sub.add_parser(NAME, help="print the machine, kernels, threads and versions scores depend on",
                          formatter_class=Help)


def run(args) -> int:
    from ..reproducibility import describe, format_description

    print(format_description(describe()))
    return 0
