"""``nni-zerocost list [proxies|spaces|benchmarks|capabilities] [--space S]``."""
from __future__ import annotations

from ..flags import add_plugin_flag

NAME = "list"


def add_parser(sub):
    from .parser import Help

    p = sub.add_parser(NAME, help="list proxies, spaces, benchmarks or capabilities", formatter_class=Help)
    p.add_argument("what", choices=("proxies", "spaces", "benchmarks", "capabilities"), nargs="?", default="proxies",
                   help="what to list")
    p.add_argument("--space", default=None, help="only proxies applicable to this space")
    add_plugin_flag(p)
    return p


def run(args) -> int:
    from ..benchmarks.base import get_benchmark, list_benchmarks
    from ..errors import BadInputError, suggest
    from ..proxies import get_proxy, list_proxies
    from ..spaces import get_space, list_spaces

    if args.space is not None and args.space not in list_spaces():
        raise BadInputError("space", f"unknown space{suggest(args.space, list_spaces())}; valid spaces: "
                                     f"{', '.join(list_spaces())}", repr(args.space))
    if args.what == "spaces":
        for n in list_spaces():
            sp = get_space(n)
            print(f"{n:<8} {(type(sp).__doc__ or '').strip().splitlines()[0]}")
            offers = ", ".join(sorted(sp.offers))
            print(f"         offers: {offers}" + (" (each model: what it has)" if sp.offers_vary else ""))
            for opt in sp.context_options().values():
                print(f"         {opt.flag}: {opt.help}")
            for opt in sp.family_options().values():
                print(f"         {opt.flag} {opt.metavar or opt.name.upper()}: {opt.help}")
    elif args.what == "capabilities":
        from ..capabilities import CAPABILITIES

        for name, cap in sorted(CAPABILITIES.items()):
            print(f"{name:<22} {cap.summary}")
    elif args.what == "benchmarks":
        for n in list_benchmarks():
            b = get_benchmark(n)
            better = "higher" if b.primary_higher_is_better else "lower"
            print(f"{n:<15} space={b.space:<5} truth={b.primary} ({better} is better)")
    else:
        for n in list_proxies(args.space):
            p = get_proxy(n)
            for space in p.spaces:  # each registered space's implementation, its options bounded there
                if args.space and space != args.space:
                    continue
                impl, limits = p.impl(space), get_space(space).limits()
                print(f"{n} [{space}] {'higher' if p.higher_is_better else 'lower'} is better, cost: {impl.cost}, "
                      f"needs {', '.join(sorted(impl.needs))}")
                print(f"    {impl.summary}")
                if impl.size:
                    print(f"    size: {impl.size}")
                for opt in impl.options.values():
                    print(f"    option {opt.name}={_show(opt.default)}: {opt.bounded(limits).allowed()}")
    return 0


def _show(v) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
