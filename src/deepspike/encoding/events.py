r"""Address-event streams (DVS, N-MNIST, DVS Gesture) to dense frames.

An event stream is a list of tuples :math:`(x_k, y_k, p_k, t_k)`: pixel column, pixel row,
polarity and timestamp in microseconds, e.g. N-MNIST (Orchard et al. 2015, "Converting static
image datasets to spiking neuromorphic datasets using saccades", *Front. Neurosci.* 9:437).
The window :math:`[t_0, t_1)` is cut into :math:`T` bins and event :math:`k` is added to

.. math::

    F[f_k, c_k, y_k, x_k] \mathrel{+}= 1, \qquad
    f_k = \left\lfloor \frac{(t_k - t_0)\,T}{t_1 - t_0} \right\rfloor
    \;\text{(n\_frames)} \quad\text{or}\quad
    f_k = \left\lfloor \frac{t_k - t_0}{\Delta} \right\rfloor \;\text{(bin\_us)},

with channel :math:`c_k = [p_k > 0]` (0 = OFF, 1 = ON; polarities ``{0, 1}``, ``{-1, 1}`` and
booleans all work). Binning is done in integer arithmetic, so every event inside the window
lands in exactly one frame: the frame counts sum to the number of events in the window.

Accepted inputs: a numpy structured array with fields ``x, y, p, t`` (the layout of tonic and
of the N-MNIST loaders), a mapping with those keys (arrays or tensors), or a tuple/list of
four equal-length arrays in the order ``(x, y, p, t)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from deepspike.encoding._checks import check_choice, check_dtype, check_positive_int
from deepspike.errors import ConfigError, InputValueError

__all__ = ["events_to_frames", "events_to_frames_batch"]

_FIELDS = ("x", "y", "p", "t")
_MODES = ("count", "binary")


def _field(arr: Any, name: str) -> np.ndarray:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    a = np.asarray(arr)
    if a.ndim != 1:
        raise InputValueError(f"event field {name!r} has shape {a.shape}; it must be 1-D")
    if a.dtype == np.bool_:
        return a.astype(np.int64)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputValueError(f"event field {name!r} has dtype {a.dtype}; it must be numeric")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputValueError(f"event field {name!r} contains NaN or infinity")
        if name in ("x", "y", "t") and not np.array_equal(a, np.floor(a)):
            raise InputValueError(
                f"event field {name!r} holds non-integer values; pixel coordinates and "
                "microsecond timestamps must be whole numbers"
            )
    return a.astype(np.int64) if name != "p" else a


def _unpack(events: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(events, np.ndarray) and events.dtype.names is not None:
        missing = [f for f in _FIELDS if f not in events.dtype.names]
        if missing:
            raise InputValueError(
                f"events lacks field(s) {missing}; it has {list(events.dtype.names)} "
                "but needs x, y, p, t"
            )
        cols = [events[f].reshape(-1) for f in _FIELDS]
    elif isinstance(events, Mapping):
        missing = [f for f in _FIELDS if f not in events]
        if missing:
            raise InputValueError(
                f"events lacks key(s) {missing}; it needs x, y, p, t (t in microseconds)"
            )
        cols = [events[f] for f in _FIELDS]
    elif isinstance(events, Sequence) and not isinstance(events, str) and len(events) == 4:
        cols = list(events)
    else:
        raise InputValueError(
            "events must be a numpy structured array with fields x, y, p, t, a mapping with "
            "those keys, or a tuple (x, y, p, t) of equal-length arrays"
        )
    x, y, p, t = (_field(c, f) for c, f in zip(cols, _FIELDS, strict=True))
    if not len(x) == len(y) == len(p) == len(t):
        raise InputValueError(
            f"event fields differ in length (x {len(x)}, y {len(y)}, p {len(p)}, t {len(t)})"
        )
    return x, y, p, t


def _sensor(sensor_size: Sequence[int]) -> tuple[int, int]:
    if not isinstance(sensor_size, Sequence) or len(sensor_size) not in (2, 3):
        raise ConfigError(
            f"sensor_size={sensor_size!r} must be (width, height) or (width, height, "
            "polarities), e.g. (34, 34) for N-MNIST"
        )
    width = check_positive_int(sensor_size[0], "sensor_size width")
    height = check_positive_int(sensor_size[1], "sensor_size height")
    if len(sensor_size) == 3:
        check_positive_int(sensor_size[2], "sensor_size polarities")
    return width, height


def _time_bins(
    t: np.ndarray,
    n_frames: int | None,
    bin_us: int | None,
    t_start: int | None,
    t_end: int | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return (frame index, in-window mask, number of frames)."""
    if (n_frames is None) == (bin_us is None):
        raise ConfigError("give exactly one of n_frames (frame count) or bin_us (bin width)")
    first = int(t.min()) if len(t) else 0
    t0 = first if t_start is None else int(t_start)
    if t_end is not None:
        t1 = int(t_end)
    elif len(t):
        t1 = int(t.max()) + 1
    else:
        t1 = t0
    if t_end is not None and t_start is not None and t1 <= t0:
        raise ConfigError(f"t_end={t1} must be greater than t_start={t0} (microseconds)")
    if n_frames is not None:
        T = check_positive_int(n_frames, "n_frames")
        span = max(t1 - t0, 1)
        rel = t - t0
        inside = (rel >= 0) & (t < t1)
        idx = np.where(inside, rel, 0) * T // span
    else:
        width = check_positive_int(bin_us, "bin_us")
        T = max(-(-(t1 - t0) // width), 0)
        rel = t - t0
        inside = (rel >= 0) & (t < t1)
        idx = np.where(inside, rel, 0) // width
    return idx.astype(np.int64), inside, T


def events_to_frames(
    events: Any,
    n_frames: int | None = None,
    bin_us: int | None = None,
    sensor_size: Sequence[int] = (34, 34),
    polarity: bool = True,
    mode: str = "count",
    *,
    t_start: int | None = None,
    t_end: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Bin an event stream into frames ``[T, 2, H, W]`` (``[T, 1, H, W]`` if not ``polarity``).

    Args:
        events: structured array / mapping / ``(x, y, p, t)`` tuple (see module docstring).
        n_frames: split the window into this many equal bins ...
        bin_us: ... or into bins of this many microseconds (the last may be partial).
        sensor_size: ``(width, height)`` as in tonic (a third entry, the polarity count, is
            accepted and ignored); N-MNIST is ``(34, 34)``.
        polarity: keep OFF/ON in channels 0/1; ``False`` merges them into one channel.
        mode: ``'count'`` (events per pixel and bin) or ``'binary'`` (1 where any event).
        t_start: window start in µs (default: first event).
        t_end: window end in µs, exclusive (default: last event + 1).
        dtype: floating dtype of the output.

    Returns:
        frames ``[T, P, H, W]`` on the CPU; in ``'count'`` mode ``frames.sum()`` equals the
        number of events with ``t_start <= t < t_end``.

    Raises:
        ConfigError: both or neither of ``n_frames``/``bin_us``, bad sizes or mode.
        InputValueError: malformed events, or coordinates outside ``sensor_size``.
    """
    check_choice(mode, "mode", _MODES)
    dtype = check_dtype(dtype)
    width, height = _sensor(sensor_size)
    x, y, p, t = _unpack(events)
    idx, inside, T = _time_bins(t, n_frames, bin_us, t_start, t_end)
    x, y, p, idx = x[inside], y[inside], p[inside], idx[inside]
    bad = (x < 0) | (x >= width) | (y < 0) | (y >= height)
    if bad.any():
        raise InputValueError(
            f"{int(bad.sum())} event(s) lie outside the sensor of width {width} and height "
            f"{height} (x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}]); pass the "
            "right sensor_size=(width, height)"
        )
    n_pol = 2 if polarity else 1
    c = (p > 0).astype(np.int64) if polarity else np.zeros_like(x)
    flat = ((idx * n_pol + c) * height + y) * width + x
    counts = np.bincount(flat, minlength=T * n_pol * height * width)
    frames = torch.from_numpy(counts.reshape(T, n_pol, height, width))
    if mode == "binary":
        frames = frames > 0
    return frames.to(dtype)


def events_to_frames_batch(
    events_list: Sequence[Any],
    n_frames: int | None = None,
    bin_us: int | None = None,
    sensor_size: Sequence[int] = (34, 34),
    polarity: bool = True,
    mode: str = "count",
    *,
    t_start: int | None = None,
    t_end: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Frames of several recordings stacked time-major: ``[T, B, P, H, W]``.

    Each recording is binned on its own by :func:`events_to_frames` (its own window unless
    ``t_start``/``t_end`` are given). With ``bin_us`` the recordings may yield different frame
    counts; shorter ones are padded with empty frames at the end up to the longest.
    """
    if isinstance(events_list, np.ndarray | Mapping) or not isinstance(events_list, Sequence):
        raise ConfigError(
            "events_list must be a list of recordings; for one recording use events_to_frames"
        )
    if len(events_list) == 0:
        raise ConfigError("events_list is empty; pass at least one recording")
    frames = [
        events_to_frames(
            ev,
            n_frames,
            bin_us,
            sensor_size,
            polarity,
            mode,
            t_start=t_start,
            t_end=t_end,
            dtype=dtype,
        )
        for ev in events_list
    ]
    T = max(f.shape[0] for f in frames)
    out = torch.zeros((T, len(frames), *frames[0].shape[1:]), dtype=dtype)
    for b, f in enumerate(frames):
        out[: f.shape[0], b] = f
    return out
