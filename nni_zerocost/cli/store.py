"""``nni-zerocost store merge STORE... --out S``: merge the stores of shards into one."""
from __future__ import annotations

import sys

from ..reproducibility import REL_TOL

NAME = "store"


def add_parser(sub):
    from .parser import Help

    p = sub.add_parser(NAME, help="work with result stores: merge the stores of shards")
    ssub = p.add_subparsers(dest="store_command", required=True)
    m = ssub.add_parser("merge", help="merge stores (e.g. of 'score --shard K/N' tasks) into a new store",
                        description="Merge result stores into a new one, de-duplicating by key. Two results of "
                                    "one key must agree, else the merge is refused with one line naming the key "
                                    "and both files, and nothing is written.", formatter_class=Help)
    m.add_argument("stores", nargs="+", metavar="STORE.jsonl", help="the stores to merge")
    m.add_argument("--out", required=True, help="the merged store (a new file; written whole, then moved in place)")
    m.add_argument("--rel-tol", type=float, default=REL_TOL,
                   help="raw values of one key may differ by this relative amount (float rounding: runs with "
                        "another thread count or CPU differ by about 1e-8; nni_zerocost.reproducibility); "
                        "0 = bit for bit")
    return p


def run(args) -> int:
    from ..errors import BadInputError
    from ..job import check_output_file
    from ..store import merge_stores

    if args.rel_tol < 0:
        raise BadInputError("rel_tol", f"must be >= 0, got {args.rel_tol}")
    out = check_output_file("out", args.out)
    counts = merge_stores(args.stores, out, rel_tol=args.rel_tol)
    torn = f"; {_plural(counts['torn'], 'corrupt line')} skipped" if counts["torn"] else ""
    print(f"merged {_plural(len(args.stores), 'store')} ({_plural(counts['inputs'], 'record')}, "
          f"{counts['duplicates']} duplicate keys agreeing{torn}) into {out}: {_plural(counts['written'], 'record')}",
          file=sys.stderr)
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word if n == 1 else word + 's'}"
