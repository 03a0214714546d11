"""The ``deepspike`` command line.

User errors (unknown recipe, bad option, missing data, unwritable output) print one line and exit
with status 2; no traceback is shown for them.
"""

from __future__ import annotations

import argparse
import logging
import platform
import shlex
import sys
from collections.abc import Sequence

import deepspike
from deepspike.errors import ConfigError, DeepSpikeError

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit 2."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def cmd_info(args) -> int:
    import torch

    from deepspike import data

    print(f"deepspike {deepspike.__version__}")
    print(f"python    {platform.python_version()} ({platform.machine()})")
    print(f"torch     {torch.__version__}, {torch.get_num_threads()} threads")
    device = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"device    {device}")
    print(f"data root {data.resolve_root(args.data_dir)}")
    for name in data.SPECS:
        path = data.where(name, args.data_dir)
        print(f"  {name:<13} {path} ({'present' if path.exists() else 'missing'})")
    print("  digits        bundled with scikit-learn (no files)")
    return 0


def cmd_data_check(args) -> int:
    from deepspike import data

    results = data.check(args.names or None, args.data_dir)
    bad = [r for r in results if not r.ok]
    for r in results:
        print(f"{r.name:<13} {'OK' if r.ok else 'FAILED'}  {r.reason}")
    if bad:
        raise deepspike.errors.DataError("; ".join(f"{r.name}: {r.reason}" for r in bad))
    return 0


def cmd_recipes(args) -> int:
    from deepspike.recipes import RECIPES

    for recipe in RECIPES.values():
        accs = ", ".join(f"{d} {a:.2f}%" for d, a in recipe.paper.accuracy.items()) or "—"
        print(f"{recipe.id:<28} {recipe.paper.cite:<32} paper: {accs}")
        print(f"{'':<28} {recipe.method}; data: {', '.join(recipe.datasets)}")
    return 0


def cmd_train(args) -> int:
    from deepspike import runner
    from deepspike.recipes import get_recipe, parse_overrides

    recipe = get_recipe(args.recipe)
    overrides = parse_overrides(args.set or [], recipe)
    out = args.out or f"runs/{recipe.id}"
    record = runner.train(
        recipe.id,
        out=out,
        dataset=args.dataset,
        data_dir=args.data_dir,
        seed=args.seed,
        profile="smoke" if args.smoke else "full",
        overrides=overrides,
        command="deepspike " + shlex.join(args.argv),
        progress=not args.no_progress,
        resume=args.resume,
        validation=args.validation,
    )
    scored = " on held-out training samples" if record["evaluated_on"] == "validation" else ""
    print(
        f"{record['recipe']} on {record['dataset']}: accuracy {record['accuracy']:.2f}%{scored} "
        f"(paper {record['paper']['accuracy'] or '—'}), "
        f"{record['synops_per_sample']:.3g} synops/sample; wrote {out}/result.json"
    )
    return 0


def cmd_evaluate(args) -> int:
    from deepspike import runner

    record = runner.evaluate(args.run_dir, args.data_dir, progress=not args.no_progress)
    print(
        f"{record['recipe']} on {record['dataset']}: accuracy {record['accuracy']:.2f}% "
        f"over {record['n_test']} {record['evaluated_on']} samples, "
        f"{record['synops_per_sample']:.3g} synops/sample"
    )
    return 0


def cmd_bench(args) -> int:
    from deepspike.bench import markdown_table, run_bench

    records = run_bench(
        profile=args.profile,
        recipe_ids=args.recipes,
        out=args.out,
        dataset=args.dataset,
        data_dir=args.data_dir,
        seed=args.seed,
        force=args.force,
        resume=args.resume,
        progress=not args.no_progress,
    )
    print(markdown_table(records))
    print(f"wrote {args.out}/results.json, table.md and report.html")
    failed = [r["recipe"] for r in records if r.get("status") == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    from deepspike.bench.report import render, update_readme

    path = render(args.dir)
    print(f"wrote {path}")
    if args.readme:
        print(f"updated {update_readme(args.readme, args.dir)}")
    return 0


def build_parser() -> Parser:
    parser = Parser(prog="deepspike", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"deepspike {deepspike.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def common(p, data=True, progress=True):
        if data:
            p.add_argument(
                "--data-dir", help="data root (default: $DEEPSPIKE_DATA or ~/.cache/deepspike)"
            )
        if progress:
            p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    p = sub.add_parser("info", help="versions, threads, device and where each data set resolves")
    common(p, progress=False)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("data", help="data set tools")
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    p = data_sub.add_parser("check", help="verify the SHA-256 sums of data sets")
    p.add_argument("names", nargs="*", help="data sets (default: all)")
    common(p, progress=False)
    p.set_defaults(func=cmd_data_check)

    p = sub.add_parser("recipes", help="list the registered recipes")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("train", help="train a recipe and write OUT/result.json")
    p.add_argument("recipe")
    p.add_argument("--dataset")
    p.add_argument("--out", help="run directory (default: runs/RECIPE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="the fast smoke setting")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument(
        "--validation",
        type=int,
        default=0,
        metavar="N",
        help="hold out the last N training samples and score on them, not on the test set",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting")
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="re-evaluate a run directory's checkpoint")
    p.add_argument("run_dir")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="run recipes and print the comparison table")
    p.add_argument("--profile", default="quick", choices=("quick", "full"))
    p.add_argument("--recipes", nargs="+", metavar="ID")
    p.add_argument("--dataset")
    p.add_argument("--out", default="bench-out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="recompute finished runs")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs")
    common(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="re-render the table and report of a bench directory")
    p.add_argument("dir")
    p.add_argument("--readme", help="also replace the table between this README's markers")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(message)s",
            stream=sys.stderr,
        )
        return args.func(args)
    except DeepSpikeError as e:
        print(f"deepspike: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("deepspike: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
