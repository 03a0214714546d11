r"""Synaptic eligibility traces, computed over a whole time-major sequence at once.

A trace low-pass filters a spike train :math:`s_t` with a per-step decay
:math:`d = e^{-\Delta t/\tau}`:

* **all-to-all** (every earlier spike counts, Morrison, Diesmann & Gerstner 2008):
  :math:`x_t = d\,x_{t-1} + s_t`, so
  :math:`x_t = \sum_{t' \le t} s_{t'}\, e^{-(t-t')\Delta t/\tau}`;
* **nearest** (only the latest spike counts): :math:`x_t = 1` when :math:`s_t = 1`, else
  :math:`d\,x_{t-1}`, so :math:`x_t = e^{-(t - t_{last})\Delta t/\tau}`;
* **box** (the rectangular EPSP of Nessler et al. 2013): :math:`y_t = 1` if the input spiked in
  the last ``steps`` steps (``t - steps < t' <= t``), else 0.

A third interaction of pair STDP, **immediate** (Morrison et al. 2008's nearest-spike scheme
restricted to immediate pairs, the one of Masquelier, Guyonneau & Thorpe 2008), is not a property
of a single trace but of which pairs count: only a pre and a post spike that are neighbours in
the merged spike train of their synapse interact (see :func:`deepspike.learning.pair_stdp`). Its
traces are the nearest-spike traces, so :func:`trace` refuses ``mode="immediate"``: ask for
``"nearest"``.

Traces *include* the spikes of their own step. :func:`before` gives the value just before a step's
spikes arrive, :math:`d\,x_{t-1}`, which is what a rule reads at a spike of the *other* side so a
pair at the same step is counted once.

No Python loop runs over time: the all-to-all filter is a blocked scan
(:math:`x_t = d^{t}\sum_{t'\le t} s_{t'} d^{-t'}` per block, in float64), the nearest trace is a
running maximum of spike indices. Every function takes an ``initial`` trace (the value at step
``-1``) so a long run can be processed in chunks with identical results.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from deepspike.errors import ConfigError, ShapeError

TraceMode = Literal["all_to_all", "nearest", "immediate"]
#: The spike interactions of the pair rule; :func:`trace` computes the first two.
TRACE_MODES: tuple[str, ...] = ("all_to_all", "nearest", "immediate")
_SINGLE_TRACE_MODES: tuple[str, ...] = ("all_to_all", "nearest")

# exp(600) is far below float64's maximum (exp(709)), so a block of this many decay lengths is
# scanned without overflow.
_MAX_BLOCK_DECAY_LENGTHS = 600.0


def decay_factor(tau: float, dt: float = 1.0) -> float:
    r"""Per-step decay :math:`e^{-\Delta t/\tau}` of a trace with time constant ``tau``."""
    if not tau > 0 or not dt > 0:
        raise ConfigError(f"need tau > 0 and dt > 0 for a trace, got tau={tau}, dt={dt}")
    return math.exp(-dt / tau)


def check_mode(mode: str, allowed: tuple[str, ...] = TRACE_MODES, user: str = "") -> str:
    """``mode`` if it is one of ``allowed``, else a :class:`ConfigError` (``user`` names the
    rule or function that refuses a mode it does not implement)."""
    if mode not in allowed:
        if mode in TRACE_MODES:
            raise ConfigError(
                f"{user or 'this rule'} does not implement trace={mode!r}; choose one of "
                f"{', '.join(allowed)}"
                + (
                    " (the traces of immediate pairing are nearest-spike traces)"
                    if mode == "immediate"
                    else ""
                )
            )
        raise ConfigError(f"trace={mode!r} is unknown; choose one of {', '.join(allowed)}")
    return mode


def _initial(spikes: torch.Tensor, initial: torch.Tensor | None) -> torch.Tensor:
    if spikes.dim() < 1:
        raise ShapeError("spikes must be time-major [T, ...]")
    if initial is None:
        return torch.zeros(spikes.shape[1:], dtype=torch.float64, device=spikes.device)
    return initial.to(torch.float64).expand(spikes.shape[1:])


def _all_to_all(spikes: torch.Tensor, d: float, x0: torch.Tensor) -> torch.Tensor:
    steps = spikes.shape[0]
    if d == 0.0:
        return spikes.to(torch.float64)
    block = max(1, min(steps, int(_MAX_BLOCK_DECAY_LENGTHS / -math.log(d))))
    shape = (-1,) + (1,) * (spikes.dim() - 1)
    j = torch.arange(block, dtype=torch.float64, device=spikes.device)
    grow, shrink = (d ** (-j)).reshape(shape), (d**j).reshape(shape)
    out, carry = [], x0
    for start in range(0, steps, block):
        s = spikes[start : start + block].to(torch.float64)
        n = s.shape[0]
        x = (torch.cumsum(s * grow[:n], dim=0) + d * carry) * shrink[:n]
        out.append(x)
        carry = x[-1]
    return torch.cat(out)


def _nearest(spikes: torch.Tensor, d: float, x0: torch.Tensor) -> torch.Tensor:
    steps = spikes.shape[0]
    shape = (-1,) + (1,) * (spikes.dim() - 1)
    t = torch.arange(steps, dtype=torch.float64, device=spikes.device).reshape(shape)
    stamped = torch.where(spikes > 0, t, torch.full_like(t, -1.0).expand_as(spikes))
    last = torch.cummax(stamped, dim=0).values
    since_initial = torch.as_tensor(d, dtype=torch.float64) ** (t + 1) * x0
    return torch.where(last >= 0, d ** (t - last), since_initial)


def trace(
    spikes: torch.Tensor,
    tau: float,
    dt: float = 1.0,
    mode: TraceMode = "all_to_all",
    initial: torch.Tensor | None = None,
) -> torch.Tensor:
    """The trace ``[T, ...]`` (float64) of ``spikes`` ``[T, ...]``; see the module docstring.

    Args:
        spikes: time-major spikes (0/1, or counts for ``all_to_all``).
        tau, dt: time constant and step, in the same unit (ms).
        mode: ``"all_to_all"`` or ``"nearest"`` (``"immediate"`` is a pairing rule whose traces
            are ``"nearest"``; it is refused here).
        initial: the trace at step ``-1`` (broadcastable to ``spikes[0]``), default 0.
    """
    d = decay_factor(tau, dt)
    x0 = _initial(spikes, initial)
    if check_mode(mode, _SINGLE_TRACE_MODES, "trace()") == "nearest":
        return _nearest(spikes, d, x0)
    return _all_to_all(spikes, d, x0)


def before(x: torch.Tensor, tau: float, dt: float = 1.0, initial: torch.Tensor | None = None):
    r"""The trace just before each step's own spikes: :math:`d\,x_{t-1}` (``x_{-1}=initial``)."""
    d = decay_factor(tau, dt)
    first = _initial(x, initial).unsqueeze(0).to(x.dtype)
    return d * torch.cat([first, x[:-1]])


def box(spikes: torch.Tensor, steps: int, initial: torch.Tensor | None = None) -> torch.Tensor:
    """1.0 where the input spiked within the last ``steps`` steps (this one included), else 0.

    ``initial`` ``[steps - 1, ...]`` are the spikes of the steps before the sequence (default
    none), so chunks give the same result as one long sequence.
    """
    if steps < 1:
        raise ConfigError(f"a box window needs steps >= 1, got {steps}")
    history = (
        torch.zeros((steps - 1, *spikes.shape[1:]), dtype=spikes.dtype, device=spikes.device)
        if initial is None
        else initial.to(spikes.dtype)
    )
    padded = torch.cat([history, spikes])
    c = torch.cumsum(padded.to(torch.float64), dim=0)
    c = torch.cat([torch.zeros_like(c[:1]), c])
    window = c[steps:] - c[:-steps]
    return (window > 0.5).to(spikes.dtype)
