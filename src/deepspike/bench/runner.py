"""Run many recipes, each isolated, and write ``results.json`` and ``table.md``."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepspike import runner
from deepspike.bench.table import markdown_table
from deepspike.errors import ConfigError, DataError
from deepspike.io import read_result, write_json_atomic
from deepspike.io.atomic import write_atomic
from deepspike.recipes import RECIPES, get_recipe

log = logging.getLogger("deepspike")

PROFILES = {"quick": ("quick", "digits"), "full": ("full", "mnist")}


def plan(profile: str, recipe_ids: Sequence[str] | None, dataset: str | None):
    """The (recipe, dataset, profile) runs of a benchmark; bad ids or data sets raise early."""
    if profile not in PROFILES:
        raise ConfigError(f"profile {profile!r} is unknown; choose quick or full")
    recipe_profile, default_set = PROFILES[profile]
    recipes = [get_recipe(r) for r in recipe_ids] if recipe_ids else list(RECIPES.values())
    runs = []
    for recipe in recipes:
        chosen = dataset or (default_set if default_set in recipe.datasets else recipe.datasets[0])
        runner.check_dataset(recipe, chosen)
        runs.append((recipe, chosen, recipe_profile))
    return runs


def reusable(path: Path, config: dict[str, Any], dataset: str, profile: str) -> dict | None:
    """A finished result at ``path`` made with the same configuration, else ``None``."""
    try:
        record = read_result(path)
    except DataError:
        return None
    same = (
        record.get("config") == json.loads(json.dumps(config))
        and record.get("dataset") == dataset
        and record.get("profile") == profile
    )
    return record if same else None


def run_bench(
    profile: str = "quick",
    recipe_ids: Sequence[str] | None = None,
    out: str | Path = "bench-out",
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run each planned recipe into ``OUT/<recipe>/`` and write the collected results.

    A recipe that fails is recorded with its reason, and the others go on. A recipe whose result
    already exists with the same configuration is reused unless ``force``.
    """
    runs = plan(profile, recipe_ids, dataset)
    out = runner.check_writable(Path(out))
    records: list[dict[str, Any]] = []
    for i, (recipe, chosen, recipe_profile) in enumerate(runs, 1):
        run_dir = out / recipe.id
        config = recipe.config(None, recipe_profile)
        previous = (
            None
            if force
            else reusable(run_dir / runner.RESULT_FILE, config, chosen, recipe_profile)
        )
        if previous is not None:
            log.info("[%d/%d] %s: reusing %s", i, len(runs), recipe.id, run_dir)
            records.append(previous)
            continue
        log.info("[%d/%d] %s on %s (%s)", i, len(runs), recipe.id, chosen, recipe_profile)
        command = f"deepspike bench --profile {profile} --recipes {recipe.id} --dataset {chosen}"
        try:
            records.append(
                runner.train(
                    recipe.id,
                    out=run_dir,
                    dataset=chosen,
                    data_dir=data_dir,
                    seed=seed,
                    profile=recipe_profile,
                    command=command,
                    progress=progress,
                )
            )
        except Exception as e:  # isolation: one recipe's failure must not stop the benchmark
            log.debug("%s", traceback.format_exc())
            log.warning("%s failed: %s: %s", recipe.id, type(e).__name__, e)
            records.append(
                {
                    "recipe": recipe.id,
                    "dataset": chosen,
                    "status": "failed",
                    "error": f"{type(e).__name__}: {e}".replace("|", "/").splitlines()[0],
                }
            )
    write_json_atomic(out / "results.json", records)
    table = markdown_table(records)
    write_atomic(out / "table.md", lambda tmp: tmp.write_text(table))
    return records
