r"""Shared training and evaluation loops for classifiers that emit spikes over time.

Losses (Neftci, Mostafa & Zenke 2019; Lee, Delbruck & Pfeiffer 2016; Wu et al. 2018), on a
time-major output :math:`o \in \mathbb{R}^{T \times B \times C}`:

* :func:`count_cross_entropy`: softmax cross-entropy on the output spike counts
  :math:`c_k = \sum_t s_{t,k}`, with logits :math:`c_k / \tau_c`;
* :func:`membrane_cross_entropy`: cross-entropy on the read-out membrane :math:`v_{t,k}` of a
  non-spiking output layer (``Neuron(..., output="membrane")``), reduced over time by its
  maximum :math:`\max_t v_{t,k}` or its mean :math:`\frac1T\sum_t v_{t,k}`;
* :func:`count_mse`: squared error between the count and a target rate per class.

:func:`objective` pairs each loss with the matching class decision.

:func:`fit` is the one training loop every gradient-trained recipe uses. Besides the
optimiser step it provides: gradient clipping, a cosine or step learning-rate schedule, a
seeded validation split held out from the training data, early stopping on validation accuracy
with the best weights restored, an extra regulariser on the model (e.g. Mostafa 2017's weight-sum
cost), training-only augmentation, a log line per epoch with a progress bar per batch, and
data-parallel training under ``torchrun`` (see :mod:`deepspike.distributed`).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from deepspike import distributed
from deepspike.errors import ConfigError, check_finite
from deepspike.metrics import CostMeter, CostReport

log = logging.getLogger("deepspike")

Encoder = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Predictor = Callable[[torch.Tensor], torch.Tensor]
Regularizer = Callable[[nn.Module], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
OBJECTIVES = ("count_ce", "membrane_max", "membrane_mean", "count_mse")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded with ``seed`` too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------- losses


def count_cross_entropy(output: torch.Tensor, labels: torch.Tensor, scale: float = 1.0):
    """Cross-entropy on spike counts: ``output`` is ``[T, B, C]`` spikes."""
    return F.cross_entropy(output.sum(0) / scale, labels)


def reduce_membrane(output: torch.Tensor, reduce: str) -> torch.Tensor:
    """``[T, B, C] -> [B, C]``: the maximum or the mean of the membrane over time."""
    if reduce == "max":
        return output.max(0).values
    if reduce == "mean":
        return output.mean(0)
    raise ConfigError(f"reduce={reduce!r} is unknown; choose 'max' or 'mean'")


def membrane_cross_entropy(output: torch.Tensor, labels: torch.Tensor, reduce: str = "max"):
    """Cross-entropy on the membrane trace ``[T, B, C]``, reduced over time by max or mean."""
    return F.cross_entropy(reduce_membrane(output, reduce), labels)


def count_mse(output: torch.Tensor, labels: torch.Tensor, on_rate=0.8, off_rate=0.05):
    """MSE between spike counts and a target count: ``on_rate*T`` for the label, else
    ``off_rate*T`` (the rate targets of Shrestha & Orchard 2018 and snnTorch's mse_count_loss)."""
    t = output.shape[0]
    target = torch.full_like(output[0], off_rate * t)
    target[torch.arange(len(labels)), labels] = on_rate * t
    return F.mse_loss(output.sum(0), target)


def predict(output: torch.Tensor) -> torch.Tensor:
    """Class decision from ``[T, B, C]``: the class with the most spikes, ties broken by the
    summed output (the membrane if the read-out emits it)."""
    return output.sum(0).argmax(dim=1)


@dataclass(frozen=True)
class Objective:
    """A training loss and the class decision that matches it."""

    name: str
    loss: Loss
    predict: Predictor


def objective(name: str, *, count_scale: float = 1.0) -> Objective:
    """The objective called ``name``:

    * ``count_ce``: :func:`count_cross_entropy` (logits = counts / ``count_scale``), most spikes
      wins;
    * ``membrane_max`` / ``membrane_mean``: :func:`membrane_cross_entropy` on a membrane
      read-out, the largest max / mean membrane wins;
    * ``count_mse``: :func:`count_mse`, most spikes wins.
    """
    if name == "count_ce":
        return Objective(name, lambda o, y: count_cross_entropy(o, y, count_scale), predict)
    if name in ("membrane_max", "membrane_mean"):
        reduce = name.removeprefix("membrane_")
        return Objective(
            name,
            lambda o, y: membrane_cross_entropy(o, y, reduce),
            lambda o: reduce_membrane(o, reduce).argmax(dim=1),
        )
    if name == "count_mse":
        return Objective(name, count_mse, predict)
    raise ConfigError(f"loss={name!r} is unknown; choose one of {', '.join(OBJECTIVES)}")


# ---------------------------------------------------------------------------- loop helpers


@dataclass
class History:
    """Per-epoch training record."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    def summary(self) -> dict:
        """A JSON-friendly dict for ``result.json``'s ``extra``."""
        return {
            "train_loss": self.loss,
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
            "epochs_run": len(self.loss),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "seconds_per_epoch": (
                round(sum(self.epoch_seconds) / len(self.epoch_seconds), 2)
                if self.epoch_seconds
                else None
            ),
        }


def batches(n: int, batch_size: int, generator: torch.Generator | None, shuffle: bool):
    """Index tensors of consecutive batches of ``range(n)``, in a random order if ``shuffle``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders epoch ``epoch``: it depends on the seed and the epoch only, so
    every process of a distributed run draws the same permutation."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def rank_generator(generator: torch.Generator, rank: int) -> torch.Generator:
    """The encoding generator of process ``rank``: ``generator`` itself on rank 0, an
    independent stream seeded from it elsewhere."""
    if rank == 0:
        return generator
    return torch.Generator().manual_seed(generator.initial_seed() + 7919 * rank)


def split_validation(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor] | None]:
    """Hold out ``fraction`` of ``(x, y)`` (a seeded random subset) as a validation set.

    Returns ``((x_train, y_train), (x_val, y_val))``, or ``((x, y), None)`` for fraction 0.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"val_fraction={fraction} must be in [0, 1)")
    n_val = round(fraction * len(x))
    if n_val == 0:
        return (x, y), None
    if n_val >= len(x):
        raise ConfigError(f"val_fraction={fraction} leaves no training samples of {len(x)}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def make_optimizer(
    params, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum) by name."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"optimizer={name!r} is unknown; choose one of {', '.join(OPTIMIZERS)}")


def make_scheduler(
    optimiser: torch.optim.Optimizer,
    name: str,
    *,
    steps_per_epoch: int,
    epochs: int,
    step_epochs: int = 0,
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    r"""The learning-rate schedule, stepped once per batch:

    * ``cosine``: :math:`\eta_k = \frac{\eta_0}{2}(1 + \cos(\pi k / K))` over all
      :math:`K` = ``epochs * steps_per_epoch`` steps (Loshchilov & Hutter 2017);
    * ``step``: multiply by ``gamma`` every ``step_epochs`` epochs (default a third of them);
    * ``constant``: ``None``.
    """
    if name == "cosine":
        total = max(epochs * steps_per_epoch, 1)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, total)
    if name == "step":
        every = (step_epochs or max(epochs // 3, 1)) * max(steps_per_epoch, 1)
        return torch.optim.lr_scheduler.StepLR(optimiser, every, gamma=gamma)
    if name == "constant":
        return None
    raise ConfigError(f"schedule={name!r} is unknown; choose one of {', '.join(SCHEDULES)}")


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state (for restoring the best weights)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def global_batches(n: int, batch_size: int, size: int, seed: int, epoch: int):
    """The epoch's global batches of ``batch_size * size`` indices (one per optimiser step).

    With several processes a last batch smaller than ``size`` is dropped, so that no process is
    left without samples.
    """
    for idx in batches(n, batch_size * size, epoch_generator(seed, epoch), shuffle=True):
        if len(idx) >= size:
            yield idx


def count_global_batches(n: int, batch_size: int, size: int) -> int:
    """Number of optimiser steps per epoch, as :func:`global_batches` yields them."""
    full, rest = divmod(n, batch_size * size)
    return full + (1 if rest >= size else 0)


@dataclass
class _EpochTotals:
    loss: float = 0.0
    correct: int = 0
    seen: int = 0


def train_step(
    model: nn.Module,
    base: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    encode: Encoder,
    generator: torch.Generator,
    objective: Objective,
    optimiser: torch.optim.Optimizer,
    grad_clip: float | None,
    regularizer: Regularizer | None,
    augment: Augment | None,
) -> tuple[float, int]:
    """One optimiser step on a batch; returns (batch loss, correct decisions).

    ``model`` is what runs the batch (the DDP wrapper when distributed), ``base`` the plain
    module whose parameters the regulariser and the clipping see.
    """
    if augment is not None:
        x = augment(x, generator)
    output = model(encode(x, generator))
    loss = objective.loss(output, y)
    total = loss + regularizer(base) if regularizer is not None else loss
    optimiser.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(base.parameters(), grad_clip)
    optimiser.step()
    correct = int((objective.predict(output.detach()) == y).sum())
    return float(loss.detach()), correct


def validation_accuracy(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    seed: int,
    predict_fn: Predictor,
) -> float:
    """Accuracy (percent) on a validation set, shared out over the processes of a distributed run.

    Encoding uses a fresh generator seeded from ``seed`` and the rank, so the value does not
    depend on the training stream, and the counts are summed over processes, so every process
    takes the same early-stopping decision.
    """
    rank, size = distributed.world()
    chunk = -(-len(x) // size)
    mine = slice(rank * chunk, min((rank + 1) * chunk, len(x)))
    generator = torch.Generator().manual_seed(seed + 104729 * rank)
    correct = count_correct(
        model,
        encode,
        x[mine],
        y[mine],
        batch_size=batch_size,
        generator=generator,
        predict_fn=predict_fn,
    )
    correct_all, n_all = distributed.all_reduce_sum([correct, len(x[mine])])
    return 100.0 * correct_all / max(n_all, 1)


# ------------------------------------------------------------------------------ the loop


def fit(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    loss_fn: Loss | Objective = count_cross_entropy,
    predict_fn: Predictor | None = None,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    grad_clip: float | None = None,
    schedule: str = "cosine",
    step_epochs: int = 0,
    gamma: float = 0.1,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    val_fraction: float = 0.0,
    val_seed: int = 0,
    patience: int = 0,
    restore_best: bool = True,
    regularizer: Regularizer | None = None,
    augment: Augment | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``loss(model(encode(x_batch)), y_batch) [+ regularizer(model)]``.

    Args:
        encode: ``(x_batch, generator) -> model input`` (e.g. ``[T, B, ...]`` spikes).
        loss_fn: a loss ``(output, labels) -> scalar`` or an :class:`Objective` (its loss and
            decision); ``predict_fn`` overrides the decision (default: most spikes).
        optimizer, weight_decay, momentum: see :func:`make_optimizer`.
        grad_clip: clip the global gradient norm to this value (``None``/0: no clipping).
        schedule, step_epochs, gamma: see :func:`make_scheduler`.
        validation: an explicit ``(x_val, y_val)``; else ``val_fraction`` of the training data
            is held out (seeded by ``val_seed``).
        patience: stop when validation accuracy has not improved for this many epochs (0: never).
        restore_best: with validation, end with the weights of the best validation epoch.
        regularizer: ``model -> scalar`` added to the loss.
        augment: ``(x_batch, generator) -> x_batch``, applied to training batches only.

    Under ``torch.distributed`` the model is wrapped in DDP, every global batch of
    ``batch_size * world_size`` samples is shared out over the processes, and only rank 0 logs.
    Logs one line per epoch; shows a progress bar over batches when ``progress``.
    """
    check_finite(x, "training input")
    if epochs < 1 or batch_size < 1:
        raise ConfigError(f"need epochs >= 1 and batch_size >= 1, got {epochs} and {batch_size}")
    goal = loss_fn if isinstance(loss_fn, Objective) else Objective("custom", loss_fn, predict)
    if predict_fn is not None:
        goal = Objective(goal.name, goal.loss, predict_fn)
    if validation is None:
        (x, y), validation = split_validation(x, y, val_fraction, val_seed)
    rank, size = distributed.world()
    seed = generator.initial_seed()
    encode_gen = rank_generator(generator, rank)
    runner = distributed.wrap(model)
    optimiser = make_optimizer(model.parameters(), optimizer, lr, weight_decay, momentum)
    steps_per_epoch = count_global_batches(len(x), batch_size, size)
    scheduler = make_scheduler(
        optimiser,
        schedule,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        step_epochs=step_epochs,
        gamma=gamma,
    )
    history, best, best_acc, stale = History(), None, -math.inf, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        totals = _EpochTotals()
        bar = tqdm(
            list(global_batches(len(x), batch_size, size, seed, epoch)),
            desc=f"epoch {epoch}/{epochs}",
            disable=not (progress and rank == 0),
            leave=False,
        )
        for global_idx in bar:
            idx = distributed.shard(global_idx, rank, size)
            loss, correct = train_step(
                runner,
                model,
                x[idx],
                y[idx],
                encode=encode,
                generator=encode_gen,
                objective=goal,
                optimiser=optimiser,
                grad_clip=grad_clip,
                regularizer=regularizer,
                augment=augment,
            )
            if scheduler is not None:
                scheduler.step()
            totals.loss += loss * len(idx)
            totals.correct += correct
            totals.seen += len(idx)
            bar.set_postfix(loss=f"{totals.loss / totals.seen:.4f}")
        loss_sum, correct_sum, seen = distributed.all_reduce_sum(
            [totals.loss, totals.correct, totals.seen]
        )
        history.loss.append(loss_sum / max(seen, 1))
        history.train_accuracy.append(100.0 * correct_sum / max(seen, 1))
        history.lr.append(optimiser.param_groups[0]["lr"])
        line = (
            f"epoch {epoch}/{epochs} loss {history.loss[-1]:.4f} "
            f"train {history.train_accuracy[-1]:.2f}%"
        )
        if validation is not None:
            val_acc = validation_accuracy(
                model,
                encode,
                *validation,
                batch_size=batch_size,
                seed=seed,
                predict_fn=goal.predict,
            )
            history.val_accuracy.append(val_acc)
            line += f" val {val_acc:.2f}%"
            if val_acc > best_acc:
                best_acc, stale, history.best_epoch = val_acc, 0, epoch
                best = snapshot(model) if restore_best else None
            else:
                stale += 1
        history.epoch_seconds.append(time.perf_counter() - epoch_start)
        line += f" lr {history.lr[-1]:.2e} ({history.epoch_seconds[-1]:.1f} s)"
        if rank == 0:
            log.info(line)
        if patience and validation is not None and stale >= patience:
            history.stopped_early = True
            if rank == 0:
                log.info("early stop: no validation gain for %d epochs", patience)
            break
    if best is not None:
        model.load_state_dict(best)
        if rank == 0:
            log.info("restored the weights of epoch %d (val %.2f%%)", history.best_epoch, best_acc)
    history.seconds = time.perf_counter() - start
    return history


# -------------------------------------------------------------------------- evaluation


@torch.no_grad()
def count_correct(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    predict_fn: Predictor = predict,
) -> int:
    """Number of samples of ``(x, y)`` that ``model`` classifies correctly (eval mode)."""
    model.eval()
    correct = 0
    for idx in batches(len(x), batch_size, None, shuffle=False):
        correct += int((predict_fn(model(encode(x[idx], generator))) == y[idx]).sum())
    return correct


def accuracy(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    predict_fn: Predictor = predict,
) -> float:
    """Test accuracy in percent."""
    correct = count_correct(
        model, encode, x, y, batch_size=batch_size, generator=generator, predict_fn=predict_fn
    )
    return 100.0 * correct / max(len(x), 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    encode: Encoder,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    progress: bool = False,
    predict_fn: Predictor = predict,
) -> tuple[float, CostReport]:
    """Test accuracy (percent) and the cost report averaged over every test sample."""
    check_finite(x, "test input")
    model.eval()
    correct = 0
    with CostMeter(model) as meter:
        for idx in tqdm(
            list(batches(len(x), batch_size, None, shuffle=False)),
            desc="evaluate",
            disable=not progress,
            leave=False,
        ):
            correct += int((predict_fn(model(encode(x[idx], generator))) == y[idx]).sum())
    return 100.0 * correct / max(len(x), 1), meter.report()
