"""Run many recipes, each isolated, then render the comparison (table, plots, HTML report)."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from deepspike import runner
from deepspike.bench.report import render
from deepspike.errors import ConfigError, DataError
from deepspike.io import read_result, write_json_atomic
from deepspike.recipes import RECIPES, Recipe, get_recipe

log = logging.getLogger("deepspike")

# profile -> (recipe setting, default data set)
PROFILES: dict[str, tuple[str, str]] = {"quick": ("quick", "digits"), "full": ("full", "mnist")}


def plan(
    profile: str, recipe_ids: Sequence[str] | None, dataset: str | None
) -> list[tuple[Recipe, str, str]]:
    """The (recipe, data set, recipe setting) runs of a benchmark; bad ids, profiles or data sets
    raise :class:`ConfigError` before any work starts."""
    if profile not in PROFILES:
        raise ConfigError(f"profile {profile!r} is unknown; choose quick or full")
    setting, default_set = PROFILES[profile]
    recipes = [get_recipe(r) for r in recipe_ids] if recipe_ids else list(RECIPES.values())
    runs = []
    for recipe in recipes:
        chosen = dataset or (default_set if default_set in recipe.datasets else recipe.datasets[0])
        runner.check_dataset(recipe, chosen)
        runs.append((recipe, chosen, setting))
    return runs


def reusable(path: Path, config: dict[str, Any], dataset: str, setting: str) -> dict | None:
    """A finished result at ``path`` made with the same configuration, else ``None``."""
    try:
        record = read_result(path)
    except DataError:
        return None
    same = (
        record.get("config") == json.loads(json.dumps(config))
        and record.get("dataset") == dataset
        and record.get("profile") == setting
    )
    return record if same else None


def failure(recipe: Recipe, dataset: str, error: BaseException) -> dict[str, Any]:
    reason = f"{type(error).__name__}: {error}".splitlines()[0].replace("|", "/")
    return {
        "recipe": recipe.id,
        "group": recipe.group,
        "dataset": dataset,
        "status": "failed",
        "error": reason,
    }


def run_bench(
    profile: str = "quick",
    recipe_ids: Sequence[str] | None = None,
    out: str | Path = "bench-out",
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run each planned recipe into ``OUT/<recipe>/`` and render ``OUT``.

    A recipe that fails is recorded with its reason and the others go on; its directory holds no
    ``result.json``, so nothing partial passes for a finished run. A recipe whose result already
    exists with the same configuration is reused unless ``force``. With ``resume``, recipes that
    keep resumable state continue an interrupted run.
    """
    runs = plan(profile, recipe_ids, dataset)
    out = runner.check_writable(Path(out))
    records: list[dict[str, Any]] = []
    bar = tqdm(runs, desc=f"bench {profile}", unit="recipe", disable=not progress)
    for recipe, chosen, setting in bar:
        bar.set_postfix_str(recipe.id)
        run_dir = out / recipe.id
        config = recipe.config(None, setting)
        previous = (
            None if force else reusable(run_dir / runner.RESULT_FILE, config, chosen, setting)
        )
        if previous is not None:
            log.info("%s: reusing the finished run in %s", recipe.id, run_dir)
            records.append(previous)
            continue
        command = f"deepspike bench --profile {profile} --recipes {recipe.id} --dataset {chosen}"
        try:
            records.append(
                runner.train(
                    recipe.id,
                    out=run_dir,
                    dataset=chosen,
                    data_dir=data_dir,
                    seed=seed,
                    profile=setting,
                    command=command,
                    progress=progress,
                    resume=resume,
                )
            )
        except Exception as e:  # isolation: one recipe's failure must not stop the benchmark
            log.debug("%s", traceback.format_exc())
            log.warning("%s failed: %s: %s", recipe.id, type(e).__name__, e)
            records.append(failure(recipe, chosen, e))
    write_json_atomic(out / "results.json", records)
    render(out, records)
    return records
