#!/usr/bin/env python3
"""Time deepspike against snnTorch, SpikingJelly, Norse (and BindsNET for STDP) and against
the hardware limit, on CPU.

    python benchmarks/speed.py [--quick] [--out benchmarks/results] [--threads 2]
                               [--data-dir DIR] [--cases mlp_train cnn_train ...] [--merge]

All libraries run in this one process on the same inputs, with the same warm-up and repeats;
times are the median (and minimum) over repeats. Writes ``cpu.json`` and ``cpu.md`` to ``--out``
after every case. Peers come from ``pip install -e '.[peers]'``; a peer that is missing or fails
to import is recorded as unavailable with the reason. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from speedbench import report, spec
from speedbench.cases import CASES, Context, log
from speedbench.libraries import LIBRARIES, VARIANTS, probe

from deepspike import runtime

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced grid, ~2-3 minutes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for cpu.json/.md")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data root holding mnist/ (STDP case)"
    )
    parser.add_argument(
        "--cases", nargs="+", choices=list(CASES), default=list(CASES), help="cases to run"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other cases' results already in OUT/cpu.json; replace only these cases",
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc malloc's defaults (fresh mmap pages for large tensors every step)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def new_results(
    args: argparse.Namespace, settings: spec.Settings, ctx: Context, allocator: str
) -> dict:
    versions = {name: status.version for name, status in ctx.statuses.items()}
    return {
        "schema": 1,
        "benchmark": "deepspike speed (CPU)",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": report.machine_facts(args.threads, versions),
        "settings": settings.__dict__ | {"scaling": settings.scaling.__dict__},
        "libraries": {name: status.to_dict() for name, status in ctx.statuses.items()},
        "neuron_mapping": spec.NEURON_MAPPING,
        "allocator": allocator,
    }


def merged(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """The results at ``path`` (if any) updated with ``fresh``'s header, the cases about to run
    replacing theirs; a file from the other grid (``--quick`` or not) is refused."""
    if not path.exists():
        return fresh
    previous = json.loads(path.read_text())
    if previous.get("quick") != fresh["quick"]:
        raise SystemExit(
            f"{path} holds a {'quick' if previous.get('quick') else 'full'} run; "
            "--merge needs the same grid (add or drop --quick)"
        )
    libraries = {**previous.get("libraries", {}), **fresh["libraries"]}
    return {**previous, **fresh, "libraries": libraries}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    kept = not args.system_malloc and runtime.keep_freed_memory()
    allocator = (
        "glibc malloc keeping freed memory (deepspike.runtime.keep_freed_memory), for every "
        "library and the limit alike"
        if kept
        else "the system malloc's defaults"
    )
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)  # no GPU here: not news
    settings = spec.QUICK if args.quick else spec.FULL
    statuses = {lib.name: probe(lib) for lib in (*LIBRARIES, *VARIANTS)}
    ctx = Context(settings, args.threads, statuses, args.data_dir)
    for name, status in ctx.statuses.items():
        log(f"{name:<13} {status.version or '-':<12} {'ok' if status.available else status.reason}")
    results = new_results(args, settings, ctx, allocator)
    if args.merge:
        results = merged(args.out / report.JSON_FILE, results)
    for index, name in enumerate(args.cases, start=1):
        log(f"[{index}/{len(args.cases)}] {name}")
        start = time.perf_counter()
        results[name] = CASES[name](ctx)
        log(f"[{index}/{len(args.cases)}] {name} done in {time.perf_counter() - start:.0f} s")
        results["summary"] = report.build_summary(results)
        report.write(results, args.out)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    for path in report.write(results, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
