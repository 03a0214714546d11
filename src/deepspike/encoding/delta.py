r"""Delta (send-on-delta) modulation of analog signals such as audio or sensor traces.

**Convention.** Like every tensor in deepspike, the signal is *time-major*:
``signal[t, b, ...]`` with one step per sample. A batch of waveforms ``w`` of shape
``[B, L]`` becomes ``w.T`` (``[L, B]``); multichannel audio ``[B, C, L]`` becomes
``w.permute(2, 0, 1)`` (``[L, B, C]``). The output appends a trailing polarity axis:
``[T, B, ..., 2]`` with channel 0 = UP and channel 1 = DOWN (``[T, B, ..., 1]``, UP only,
when ``off_spike=False``).

**Rule.** A reference level :math:`r` starts at the first sample (or at ``initial``). At each
step, with :math:`d_t = x_t - r_{t-1}`,

.. math::

    \mathrm{up}_t = [d_t \ge \theta], \qquad
    \mathrm{down}_t = [d_t \le -\theta], \qquad
    r_t = r_{t-1} + \theta\,(\mathrm{up}_t - \mathrm{down}_t),

so at most one spike per input and step is emitted, and the reference moves by exactly one
threshold per spike (classic delta modulation; Kaiser et al.; the send-on-delta ADC of
Corradi & Indiveri 2015, "A neuromorphic event-based neural recording system for smart
brain-machine-interfaces", *IEEE TBioCAS* 9(5); snnTorch's ``spikegen.delta``).

**Reconstruction.** :func:`delta_reconstruct` returns
:math:`\hat x_t = r_0 + \theta \sum_{s \le t} (\mathrm{up}_s - \mathrm{down}_s) = r_t`.
If the signal never moves by more than :math:`\theta` per step
(:math:`|x_t - x_{t-1}| \le \theta`), then :math:`|x_t - \hat x_t| < \theta` for every
:math:`t`. Faster changes cause *slope overload*: the reference chases the signal at one
threshold per step until it catches up.

With ``off_spike=False`` downward crossings still move the reference (so later rises are
signalled correctly) but are not emitted.
"""

from __future__ import annotations

import torch

from deepspike.encoding._checks import as_tensor, check_dtype, check_positive
from deepspike.errors import ShapeError

__all__ = ["delta", "delta_reconstruct"]


def _check_signal(signal: torch.Tensor, name: str) -> torch.Tensor:
    x = as_tensor(signal, name)
    if x.dim() < 2:
        raise ShapeError(
            f"{name} has shape {list(x.shape)} but must be time-major [T, B, ...]; "
            "for one waveform w of shape [L] pass w[:, None], for a batch [B, L] pass w.T"
        )
    return x


def delta(
    signal: torch.Tensor,
    threshold: float,
    *,
    off_spike: bool = True,
    initial: torch.Tensor | float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Delta-modulation spikes of a time-major signal ``[T, B, ...]``.

    Args:
        signal: analog samples ``[T, B, ...]`` (any finite values; not restricted to [0, 1]).
        threshold: level change ``theta`` > 0 that triggers a spike.
        off_spike: also emit DOWN spikes (channel 1); otherwise only UP spikes are returned.
        initial: starting reference level (scalar or ``[B, ...]``); default ``signal[0]``,
            so no spike is emitted at ``t = 0``.
        dtype: floating dtype of the output.

    Returns:
        ``[T, B, ..., 2]`` (UP, DOWN) or ``[T, B, ..., 1]`` (UP) 0/1 spikes.

    Raises:
        InputValueError: NaN/inf in ``signal``.
        ShapeError: ``signal`` has fewer than 2 dims or ``initial`` does not broadcast.
        ConfigError: ``threshold`` not a positive number.
    """
    x = _check_signal(signal, "signal")
    theta = check_positive(threshold, "threshold")
    dtype = check_dtype(dtype)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(work)
    T = x.shape[0]
    if initial is None:
        base = x[0].clone() if T > 0 else torch.zeros(x.shape[1:], dtype=work, device=x.device)
    else:
        base = as_tensor(initial, "initial").to(dtype=work, device=x.device)
        try:
            base = torch.broadcast_to(base, x.shape[1:]).clone()
        except RuntimeError:
            raise ShapeError(
                f"initial has shape {list(base.shape)}, which does not broadcast to the "
                f"per-step shape {list(x.shape[1:])} of signal"
            ) from None
    n_channels = 2 if off_spike else 1
    out = torch.zeros((*x.shape, n_channels), dtype=dtype, device=x.device)
    level = torch.zeros(x.shape[1:], dtype=work, device=x.device)  # net spikes so far
    for t in range(T):
        d = x[t] - (base + theta * level)
        up = d >= theta
        down = d <= -theta
        level += up.to(work) - down.to(work)
        out[t, ..., 0] = up.to(dtype)
        if off_spike:
            out[t, ..., 1] = down.to(dtype)
    return out


def delta_reconstruct(
    spikes: torch.Tensor,
    threshold: float,
    initial: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Rebuild the signal from :func:`delta` spikes: ``initial + threshold * cumsum(up - down)``.

    Args:
        spikes: ``[T, B, ..., 2]`` (UP, DOWN) from ``delta(..., off_spike=True)``.
        threshold: the threshold used for encoding.
        initial: the starting reference (``signal[0]`` with the default of :func:`delta`).

    Returns:
        ``[T, B, ...]`` float tensor (the wider of the dtypes of ``spikes`` and ``initial``,
        at least float32).
    """
    s = as_tensor(spikes, "spikes")
    if s.dim() < 3 or s.shape[-1] != 2:
        raise ShapeError(
            f"spikes has shape {list(s.shape)} but must be [T, B, ..., 2] (UP, DOWN) as "
            "returned by delta(..., off_spike=True)"
        )
    theta = check_positive(threshold, "threshold")
    init = as_tensor(initial, "initial").to(device=s.device)
    work = torch.promote_types(torch.promote_types(s.dtype, init.dtype), torch.float32)
    net = (s[..., 0] - s[..., 1]).to(work)
    init = init.to(work)
    return init + theta * torch.cumsum(net, dim=0)
