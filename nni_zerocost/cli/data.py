"""``nni-zerocost data {prepare,where,build-table}``: build benchmark tables from the public
releases, show where data is read from, and make a precomputed proxy table from a score file."""
from __future__ import annotations

import sys
from pathlib import Path

from ..flags import add_plugin_flag, flag_of

NAME = "data"


def add_parser(sub):
    from .parser import Help
    from ..benchmarks.base import get_benchmark, list_benchmarks

    p = sub.add_parser(NAME, help="build benchmark tables from the public releases; show where data is read from")
    dsub = p.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser(
        "prepare", help="build a benchmark's compact tables into the data folder", formatter_class=Help,
        description="Build a benchmark's compact tables from its public release and write them to the data "
                    "folder (--data-dir, else $NNI_ZEROCOST_DATA, else the user data folder: "
                    "$XDG_DATA_HOME/nni-zerocost or ~/.local/share/nni-zerocost). 'benchmark' then reads "
                    "them without any data flag.")
    dp.add_argument("name", choices=list_benchmarks(), help="benchmark to build")
    dp.add_argument("--from", dest="src", required=True, metavar="PATH",
                    help="; ".join(f"{n}: {get_benchmark(n).prepare_source}" for n in list_benchmarks()))
    options: dict = {}
    for n in list_benchmarks():
        for name, (kind, text) in get_benchmark(n).prepare_options.items():
            options.setdefault(name, (kind, []))[1].append(f"{n}: {text}")
    for name, (kind, texts) in sorted(options.items()):
        if kind == "switch":
            dp.add_argument(flag_of(name), dest=name, action="store_true", help="; ".join(texts))
        else:
            dp.add_argument(flag_of(name), dest=name, default=None, metavar="PATH", help="; ".join(texts))
    dp.add_argument("--data-dir", default=None, help="write here (default: $NNI_ZEROCOST_DATA or the user data folder)")
    add_plugin_flag(dp)
    dsub.add_parser("where", help="print, per benchmark, the folder 'benchmark' reads and where 'prepare' writes")
    bt = dsub.add_parser("build-table", help="a precomputed proxy table (shipped with the package) from the JSONL "
                                             "an 'nni-zerocost score --benchmark' command wrote")
    bt.add_argument("records", help="the score command's --out file")
    bt.add_argument("--command", dest="score_command", required=True, help="that command line, exactly as run")
    bt.add_argument("--name", required=True, help="table name (file stem)")
    bt.add_argument("--wall-seconds", type=float, default=None, help="measured wall time of the command")
    bt.add_argument("--cpu-seconds", type=float, default=None, help="measured CPU time (user + sys) of the command")
    bt.add_argument("--machine", default=None, help="where it ran, in words")
    bt.add_argument("--note", default=None, help="anything else a reader of the numbers must know")
    bt.add_argument("--commit", default=None, help="commit the command ran at (default: this checkout's HEAD)")
    bt.add_argument("--folder", default=None, help="write here (default: the package's precomputed/ folder)")
    return p


def run(args) -> int:
    from ..benchmarks.base import get_benchmark, list_benchmarks
    from ..data import PACKAGE_DATA, data_dir, prepare_dir
    from ..errors import BadInputError

    if args.data_command == "where":
        for name in list_benchmarks():
            root = data_dir(None, name)
            origin = "shipped with the package" if root == PACKAGE_DATA else "data folder"
            print(f"{name:<14} reads {root / get_benchmark(name).subdir} ({origin})")
        print(f"{'prepare':<14} writes to {prepare_dir(None)}")
        return 0
    if args.data_command == "build-table":
        path = build_table(Path(args.records), args.score_command, args.name, folder=args.folder,
                           wall_seconds=args.wall_seconds, cpu_seconds=args.cpu_seconds, machine=args.machine,
                           commit=args.commit, note=args.note)
        print(f"wrote {path}")
        return 0
    from ..benchmarks.prepare import prepare

    root = prepare_dir(args.data_dir)
    options = {name: getattr(args, name) for name in get_benchmark(args.name).prepare_options}
    given_elsewhere = [name for b in list_benchmarks() for name in get_benchmark(b).prepare_options
                       if name not in options and getattr(args, name, None) not in (None, False)]
    if given_elsewhere:
        raise BadInputError(given_elsewhere[0], f"applies to another benchmark than {args.name}")
    written, summary = prepare(args.name, Path(args.src), root, **options)
    facts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items())
    print(f"{args.name}: {facts}", file=sys.stderr)
    for p in written:
        print(p)
    return 0


def build_table(records: Path, command: str, name: str, **provenance) -> Path:
    """A precomputed table from a ``score --benchmark`` run's output: ``command`` (the command
    line, exactly as run) is parsed by the command line's own parser and checked as a job."""
    import shlex

    from ..benchmarks.tables import write_table
    from ..errors import BadInputError
    from ..job import ScoringJob, check_job
    from .parser import build_parser
    from .options import job_fields
    from .score import models_of

    argv = shlex.split(command)
    if argv and argv[0].endswith("nni-zerocost"):
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.command != "score" or not args.benchmark:
        raise BadInputError("command", "must be an 'nni-zerocost score --benchmark NAME ...' command line", repr(command))
    fields = {k: v for k, v in job_fields(args).items() if k not in ("shard",)}
    checked = check_job(ScoringJob.of(args.proxy, args.space, benchmark=args.benchmark, models=models_of(args),
                                      **fields))
    return write_table(Path(records), checked.plan, _bench(args.benchmark),
                       list(checked.entries), "nni-zerocost " + " ".join(shlex.quote(a) for a in argv), name,
                       limit=args.limit, **provenance)


def _bench(name: str):
    from ..benchmarks.base import get_benchmark

    return get_benchmark(name)
