"""Typed errors. Each message names the problem and the fix; the CLI prints it on one line."""

from __future__ import annotations

import math

import torch


class DeepSpikeError(Exception):
    """Base class of every error deepspike raises on purpose."""


class ConfigError(DeepSpikeError, ValueError):
    """An unknown recipe, data set, option or an invalid option value."""


class DataError(DeepSpikeError, OSError):
    """A data set is missing, corrupt, or cannot be downloaded."""


class ShapeError(DeepSpikeError, ValueError):
    """A tensor has the wrong number of dimensions or the wrong size."""


class InputValueError(DeepSpikeError, ValueError):
    """An input holds values the model cannot use (NaN, infinity, out of range)."""


class CheckpointError(DeepSpikeError, OSError):
    """A checkpoint is missing, unreadable, or does not match the model."""


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise :class:`InputValueError` if ``x`` contains NaN or infinity."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise InputValueError(
            f"{name} contains {n_bad} NaN or infinite value(s); clean or impute the data first"
        )


def check_time_major(x: torch.Tensor, feature_shape: tuple[int, ...], name: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``[T, B, *feature_shape]``.

    ``-1`` in ``feature_shape`` matches any size.
    """
    expected = len(feature_shape) + 2
    want = "[T, B, " + ", ".join("*" if s == -1 else str(s) for s in feature_shape) + "]"
    if x.dim() != expected or any(
        s != -1 and s != got for s, got in zip(feature_shape, x.shape[2:], strict=False)
    ):
        raise ShapeError(
            f"{name} has shape {list(x.shape)} but must be time-major {want}; "
            "add a time axis with x.unsqueeze(0) or encode it (deepspike.encoding)"
        )


def check_probability(p: float, name: str) -> None:
    if not (0.0 <= p <= 1.0) or math.isnan(p):
        raise ConfigError(f"{name}={p} is not a probability; choose a value in [0, 1]")
