"""Run a recipe end to end: train or evaluate, measure, and write ``result.json`` + checkpoint."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import deepspike
from deepspike.errors import ConfigError
from deepspike.io import SCHEMA_VERSION, git_commit, load_checkpoint, save_checkpoint, write_result
from deepspike.io.results import write_json_atomic
from deepspike.metrics import energy_table
from deepspike.recipes import Context, Outcome, Recipe, get_recipe
from deepspike.training import seed_everything

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
EVALUATION_FILE = "evaluation.json"


def check_dataset(recipe: Recipe, dataset: str | None) -> str:
    """The data set to use: ``dataset`` if the recipe supports it, else the recipe's first."""
    chosen = dataset or recipe.datasets[0]
    if chosen not in recipe.datasets:
        raise ConfigError(
            f"recipe {recipe.id} cannot use data set {chosen!r}; "
            f"it supports {', '.join(recipe.datasets)}"
        )
    return chosen


def check_writable(out: Path) -> Path:
    """Create ``out`` and make sure files can be written there, or raise :class:`ConfigError`."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".deepspike-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"cannot write to output directory {out} ({e.strerror or e}); choose another --out"
        ) from None
    return out


def result_record(
    recipe: Recipe,
    ctx: Context,
    outcome: Outcome,
    *,
    profile: str,
    train_seconds: float,
    command: str,
    commit: str | None = None,
) -> dict[str, Any]:
    """Assemble the ``result.json`` record (schema version 1) of one run; ``commit`` is the
    source commit the run started from (default: the current one)."""
    cost = outcome.cost
    return {
        "schema": SCHEMA_VERSION,
        "recipe": recipe.id,
        "title": recipe.title,
        "paper": {
            "cite": recipe.paper.cite,
            "row": recipe.paper.row,
            "dataset": ctx.dataset,
            # a recipe whose paper reports one number per setting (e.g. network size) says which
            "accuracy": outcome.extra.get(
                "paper_accuracy_for_setting", recipe.paper_accuracy(ctx.dataset)
            ),
        },
        "method": recipe.method,
        "group": recipe.group,
        "dataset": ctx.dataset,
        "n_train": outcome.n_train,
        "n_test": outcome.n_test,
        "accuracy": round(outcome.accuracy, 4),
        # "validation": accuracy on the last ``validation`` training samples, not the test set
        "evaluated_on": "validation" if ctx.validation else "test",
        "validation": ctx.validation,
        "timesteps": outcome.timesteps,
        "synops_per_sample": cost.synops,
        "acs_per_sample": cost.acs,
        "macs_per_sample": cost.macs,
        "ann_macs_per_sample": cost.ann_macs,
        "neuron_updates_per_sample": cost.neuron_updates,
        "spikes_per_neuron": cost.spikes_per_neuron,
        "sparsity": cost.sparsity,
        "params": cost.params,
        "memory_bytes": cost.memory_bytes,
        "energy_uj_per_sample": energy_table(cost),
        "local_learning": recipe.local_learning,
        "train_seconds": round(train_seconds, 2),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "seed": ctx.seed,
        "profile": profile,
        "config": dict(ctx.config),
        "command": command,
        "git_commit": commit or git_commit(),
        "deepspike_version": deepspike.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "layers": [
            layer.to_dict() if hasattr(layer, "to_dict") else layer for layer in cost.layers
        ],
        "extra": dict(outcome.extra),
    }


def train(
    recipe_id: str,
    *,
    out: str | Path,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    profile: str = "full",
    overrides: Mapping[str, Any] | None = None,
    command: str = "",
    progress: bool = True,
    resume: bool = False,
    validation: int = 0,
) -> dict[str, Any]:
    """Train ``recipe_id`` and write ``OUT/result.json`` and ``OUT/checkpoint.safetensors``.

    ``profile`` is ``full`` (the paper setting), ``quick`` (the benchmark's small setting) or
    ``smoke`` (the test setting). With ``resume``, a recipe that keeps resumable state in ``out``
    continues from it. With ``validation`` = V, the last V training samples are held out and
    the run is scored on them instead of the test split (``evaluated_on: "validation"``), for
    choosing settings without touching the test set. Returns the result record.
    """
    if validation < 0:
        raise ConfigError(f"validation={validation} must be >= 0 (0: score on the test split)")
    recipe = get_recipe(recipe_id)
    chosen = check_dataset(recipe, dataset)
    config = recipe.config(overrides, profile)
    out = check_writable(Path(out))
    ctx = Context(
        config=config,
        dataset=chosen,
        data_dir=Path(data_dir) if data_dir else None,
        seed=seed,
        generator=seed_everything(seed),
        progress=progress,
        out_dir=out,
        resume=resume,
        validation=validation,
    )
    commit = git_commit()  # the code that runs, even if the tree moves on during a long run
    start = time.perf_counter()
    outcome = recipe.train(ctx)
    seconds = time.perf_counter() - start
    command = command or f"deepspike train {recipe_id} --dataset {chosen} --seed {seed}"
    record = result_record(
        recipe,
        ctx,
        outcome,
        profile=profile,
        train_seconds=seconds,
        command=command,
        commit=commit,
    )
    metadata = {
        "recipe": recipe.id,
        "dataset": chosen,
        "seed": seed,
        "config": config,
        "validation": validation,
    }
    save_checkpoint(out / CHECKPOINT_FILE, dict(outcome.tensors), metadata)
    write_result(out / RESULT_FILE, record)
    return record


def evaluate(run_dir: str | Path, data_dir: str | Path | None = None, progress: bool = True):
    """Re-evaluate the checkpoint in ``run_dir`` on its test set; write ``evaluation.json``."""
    run_dir = Path(run_dir)
    tensors, meta = load_checkpoint(run_dir / CHECKPOINT_FILE)
    recipe = get_recipe(meta.get("recipe", "?"))
    ctx = Context(
        config=recipe.config(meta.get("config", {})),
        dataset=check_dataset(recipe, meta.get("dataset")),
        data_dir=Path(data_dir) if data_dir else None,
        seed=meta.get("seed", 0),
        generator=seed_everything(meta.get("seed", 0)),
        progress=progress,
        validation=meta.get("validation", 0),
    )
    outcome = recipe.evaluate(ctx, tensors)
    record = {
        "recipe": recipe.id,
        "dataset": ctx.dataset,
        "accuracy": round(outcome.accuracy, 4),
        "evaluated_on": "validation" if ctx.validation else "test",
        "n_test": outcome.n_test,
        "timesteps": outcome.timesteps,
        "synops_per_sample": outcome.cost.synops,
        "ann_macs_per_sample": outcome.cost.ann_macs,
        "spikes_per_neuron": outcome.cost.spikes_per_neuron,
        "energy_uj_per_sample": energy_table(outcome.cost),
    }
    if os.access(run_dir, os.W_OK):
        write_json_atomic(run_dir / EVALUATION_FILE, record)
    return record
