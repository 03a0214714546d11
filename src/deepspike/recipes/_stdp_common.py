"""Helpers shared by the STDP recipes: label assignment and voting, resumable progress files,
and the assembly of an :class:`~deepspike.recipes.registry.Outcome`.

Resuming: a recipe saves :data:`PROGRESS_FILE` every ``checkpoint_every`` images (atomically,
through :func:`deepspike.io.save_checkpoint`) into ``checkpoint_dir`` or, when that is empty, the
run's output directory, with its tensors, the position in the run and the state of the run's
random generator. ``deepspike train ... --resume`` (or an explicit ``checkpoint_dir``) continues
from it; a progress file made with another configuration raises ``CheckpointError``.

Three kinds of setting do not change what a progress file holds, so they may differ on resuming
(:data:`RESUMABLE_KEYS`): where and how often to save, how the trained network is evaluated
(``n_label``, ``n_test``, ``batch_size_eval``: a finished run re-evaluates with other values),
and how long training goes (``epochs``, ``rstdp_epochs``). The last extends a run: epochs run in
sequence from the saved generator state, so a run of 30 epochs resumed with 60 computes exactly
what a fresh run of 60 would. A progress file already past the requested length is refused
(:func:`check_within`). A setting added to a recipe later is left out of the fingerprint at its
neutral value (:data:`NEUTRAL_SETTINGS`), so files written before it existed still resume. A
refused file's error names the settings that differ (the file records them).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepspike.errors import CheckpointError
from deepspike.io import load_checkpoint, save_checkpoint
from deepspike.metrics import CostReport
from deepspike.recipes.registry import Context, Outcome

log = logging.getLogger("deepspike")

PROGRESS_FILE = "progress.safetensors"
RNG_KEY = "_rng_state"
#: settings that say where and how often to save, not what to compute
CHECKPOINT_KEYS = ("checkpoint_dir", "checkpoint_every")
#: settings read only once training is over
EVALUATION_KEYS = ("n_label", "n_test", "batch_size_eval")
#: settings that say how long training runs: a longer run continues a shorter one's progress
LENGTH_KEYS = ("epochs", "rstdp_epochs")
#: the settings a resumed run may change (left out of :func:`config_fingerprint`)
RESUMABLE_KEYS = CHECKPOINT_KEYS + EVALUATION_KEYS + LENGTH_KEYS
#: settings added to a recipe after progress files were written, each with the value at which
#: the recipe computes what it computed before: at that value the setting is left out of the
#: fingerprint, so the earlier files still resume
NEUTRAL_SETTINGS: Mapping[str, Any] = {
    "refire_ms": 0.0,
    "reset_mv": -60.0,
    "theta_offset_mv": 0.0,
    "pointwise_inhibition": False,
}


# --------------------------------------------------------------------------- threads


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``n <= 0``: leave torch's setting), then
    restore the previous count.

    STDP simulations are many small tensor operations per time step; with more than one thread
    each pays an OpenMP synchronisation, which on a busy 2-core machine made the Diehl & Cook
    loop ten times slower than with one.
    """
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- labels and votes


#: the assignment of a neuron that never responded: it takes no part in the vote
UNASSIGNED = -1


def assign_labels(counts: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Each neuron's class: the one with its highest *average* response (Diehl & Cook 2015).

    ``counts`` ``[n_samples, n_neurons]`` are spike counts, ``labels`` ``[n_samples]``.
    Returns ``[n_neurons]`` class indices, :data:`UNASSIGNED` for a neuron that never fired
    (as in Diehl & Cook's code: such a neuron would otherwise join class 0 and dilute its vote).
    """
    one_hot = torch.nn.functional.one_hot(labels.long(), n_classes).to(counts.dtype)
    per_class = one_hot.T @ counts / one_hot.sum(0).clamp(min=1).unsqueeze(1)
    best, classes = per_class.max(0)
    return torch.where(best > 0, classes, torch.full_like(classes, UNASSIGNED))


def class_votes(counts: torch.Tensor, assignments: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[..., n_classes]`` votes: the mean count of the neurons assigned to each class
    (unassigned neurons take no part)."""
    assigned = (assignments >= 0).to(counts.dtype).unsqueeze(1)
    one_hot = torch.nn.functional.one_hot(assignments.long().clamp(min=0), n_classes)
    one_hot = one_hot.to(counts.dtype) * assigned
    return counts @ one_hot / one_hot.sum(0).clamp(min=1)


def neurons_per_class(assignments: torch.Tensor, n_classes: int) -> dict[str, Any]:
    """How many neurons each class got, and how many stayed unassigned."""
    assigned = assignments[assignments >= 0]
    return {
        "neurons_per_class": torch.bincount(assigned, minlength=n_classes).tolist(),
        "unassigned_neurons": int((assignments < 0).sum()),
    }


def vote(counts: torch.Tensor, assignments: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Predicted classes ``[n_samples]`` by voting of the assigned neurons."""
    return class_votes(counts, assignments, n_classes).argmax(-1)


def percent_correct(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * float((predictions == labels).float().mean()) if len(labels) else 0.0


# --------------------------------------------------------------------------- resumable progress


def fingerprinted_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that determine what training computes up to any given step (all but
    :data:`RESUMABLE_KEYS`, and those of :data:`NEUTRAL_SETTINGS` at their neutral value), as
    JSON values (a tuple becomes a list)."""
    relevant = {
        k: v
        for k, v in sorted(config.items())
        if k not in RESUMABLE_KEYS and not (k in NEUTRAL_SETTINGS and v == NEUTRAL_SETTINGS[k])
    }
    return json.loads(json.dumps(relevant, default=str))


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A hash of :func:`fingerprinted_settings`."""
    text = json.dumps(fingerprinted_settings(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings_differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """``key: saved -> now`` for each fingerprinted setting that differs (``-`` where absent)."""
    keys = sorted(set(saved) | set(now))
    changed = [k for k in keys if saved.get(k, "-") != now.get(k, "-")]
    return ", ".join(f"{k}: {saved.get(k, '-')!r} -> {now.get(k, '-')!r}" for k in changed)


@dataclass(frozen=True)
class Progress:
    """Where a run stands: ``step`` (images or batches done, the recipe's unit) and the tensors
    to continue from."""

    step: int
    tensors: dict[str, torch.Tensor]
    extra: dict[str, Any]


def progress_path(ctx: Context) -> Path | None:
    """Where progress is kept: ``checkpoint_dir`` if set, else the run's output directory."""
    folder = str(ctx.config.get("checkpoint_dir", "") or "") or ctx.out_dir
    return Path(folder) / PROGRESS_FILE if folder else None


def save_progress(
    ctx: Context, step: int, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]
) -> None:
    """Atomically save the run's state (with the generator's) if ``checkpoint_dir`` is set."""
    path = progress_path(ctx)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {name: t.detach().clone() for name, t in tensors.items()}
    payload[RNG_KEY] = ctx.generator.get_state()
    meta = {
        "kind": "progress",
        "fingerprint": config_fingerprint(ctx.config),
        "settings": fingerprinted_settings(ctx.config),
        "dataset": ctx.dataset,
        "seed": ctx.seed,
        "validation": ctx.validation,
        "step": step,
        "extra": dict(extra),
    }
    save_checkpoint(path, payload, meta)
    log.info("saved progress at step %d to %s", step, path)


def load_progress(ctx: Context) -> Progress | None:
    """The saved state of this run, restoring the generator, or ``None`` to start afresh.

    A progress file made with another configuration, data set, seed or validation hold-out
    raises :class:`CheckpointError` rather than being silently ignored or overwritten; it names
    the settings that differ (files saved before settings were recorded: the kind of
    difference only).
    """
    path = progress_path(ctx)
    explicit = bool(ctx.config.get("checkpoint_dir"))
    if path is None or not path.is_file() or not (ctx.resume or explicit):
        return None
    tensors, meta = load_checkpoint(path)
    expected = (config_fingerprint(ctx.config), ctx.dataset, ctx.seed, ctx.validation)
    found = (meta.get("fingerprint"), meta.get("dataset"), meta.get("seed"))
    found += (meta.get("validation", 0),)  # files from before the hold-out option: none
    if meta.get("kind") != "progress" or found != expected:
        raise CheckpointError(f"{path} belongs to another run ({_mismatch(meta, ctx)})")
    ctx.generator.set_state(tensors.pop(RNG_KEY))
    log.info("resuming from step %d of %s", meta["step"], path)
    return Progress(int(meta["step"]), tensors, dict(meta.get("extra", {})))


def _mismatch(meta: Mapping[str, Any], ctx: Context) -> str:
    """What differs between a progress file's run and this one, and the two ways on."""
    if meta.get("kind") != "progress":
        return "it is not a progress file; use another --out or checkpoint_dir"
    differences = []
    if "settings" in meta and meta["fingerprint"] != config_fingerprint(ctx.config):
        changed = settings_differences(meta["settings"], fingerprinted_settings(ctx.config))
        differences.append(f"settings differ, saved -> now: {changed}")
    elif meta["fingerprint"] != config_fingerprint(ctx.config):
        differences.append("its settings differ")
    for name, now in (("dataset", ctx.dataset), ("seed", ctx.seed)):
        if meta.get(name) != now:
            differences.append(f"{name} {meta.get(name)!r}, now {now!r}")
    if meta.get("validation", 0) != ctx.validation:
        differences.append(f"validation {meta.get('validation', 0)}, now {ctx.validation}")
    return (
        "; ".join(differences) + "; to continue it, run with its settings (--set KEY=VALUE); "
        "to start afresh, use an empty --out or checkpoint_dir, or delete the file"
    )


def check_within(progress: Progress | None, total: int, setting: str, unit: str) -> None:
    """Refuse a progress file that has trained past ``total`` (set by ``setting``): its state
    is not what a run of that length computes."""
    if progress is not None and progress.step > total:
        raise CheckpointError(
            f"the progress file is at {unit} {progress.step}, past the {total} {unit}s that "
            f"{setting} sets; raise {setting}, or start afresh in an empty --out"
        )


def pace(done: int, total: int, since: int, seconds: float, unit: str) -> str:
    """A progress line for logs without a progress bar: ``done`` of ``total`` ``unit``s, the
    rate over the ``done - since`` of them that took ``seconds``, and the time left at it."""
    share = f"{unit} {done:,} of {total:,} ({100.0 * done / max(total, 1):.1f} %)"
    if done <= since or seconds <= 0:
        return share
    rate = (done - since) / seconds
    left = (total - done) / rate
    shown = f"{rate:.1f} {unit}s/s" if rate >= 1 else f"{1 / rate:.0f} s per {unit}"
    if left < 60:
        return f"{share}, {shown}, under a minute left"
    when = f"{left / 3600.0:.1f} h" if left >= 3600 else f"{left / 60.0:.0f} min"
    return f"{share}, {shown}, about {when} left"


def due(done: int, before: int, every: int) -> bool:
    """Whether a checkpoint falls between ``before`` (exclusive) and ``done`` (inclusive)."""
    return every > 0 and done // every > before // every


# --------------------------------------------------------------------------- outcome


def outcome(
    accuracy: float,
    cost: CostReport,
    *,
    timesteps: int,
    n_train: int,
    n_test: int,
    tensors: Mapping[str, torch.Tensor],
    extra: Mapping[str, Any] | None = None,
) -> Outcome:
    return Outcome(
        accuracy=accuracy,
        cost=cost,
        timesteps=timesteps,
        n_train=n_train,
        n_test=n_test,
        tensors={k: v.detach().contiguous() for k, v in tensors.items()},
        extra=dict(extra or {}),
    )
