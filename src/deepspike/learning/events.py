r"""Event lists: the sparse form in which trace rules are evaluated.

Spikes ``[T, R, n]`` (dense or sparse COO) become a list of events ``(t, r, i)``. A pair rule
then works on *pairs* of a presynaptic and a postsynaptic event of the same row, found by
binary search, and never materialises a trace over ``T * R * n``:

* :func:`causal_pairs`: pre before (or at) post, :math:`t_{pre} \le t_{post}` -- the pairs that
  potentiate; with ``until`` only the post events before the pre neuron's next spike (the
  nearest-spike trace);
* :func:`acausal_pairs`: post strictly before pre, :math:`t_{post} < t_{pre}` -- the pairs that
  depress; with ``since`` only the post events from the pre neuron's previous spike on (the
  immediate pairs);
* :func:`final_trace`: the trace after the last step, to continue a sequence in chunks.

A pair's weight is :math:`a\,e^{-|\Delta t|\Delta t_{step}/\tau}`, computed exactly for each pair.
An ``initial`` trace (the value at step ``-1``) becomes a *virtual* event at ``t = -1`` whose
amplitude is the trace value; that is exact for the all-to-all and the nearest-spike trace.
The cost grows with the number of events and pairs, not with ``T * R * n``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from deepspike.learning.traces import decay_factor


class Events(NamedTuple):
    """Events sorted by ``key = (r * n + i) * stride + (t + 1)``, ``stride = T + 1``: the events
    of one row and input (a *segment*) are contiguous and in time order."""

    key: torch.Tensor  # int64 [E]
    time: torch.Tensor  # int64 [E], -1 for virtual initial events
    row: torch.Tensor  # int64 [E]
    col: torch.Tensor  # int64 [E]
    amp: torch.Tensor  # float64 [E]
    stride: int
    n: int


def spike_indices(spikes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(t, r, i, value)`` of the non-zero entries of ``spikes`` ``[T, R, n]``, dense or a
    sparse COO tensor (an event-sparse input never needs a dense form)."""
    if spikes.is_sparse:
        s = spikes.coalesce()
        t, r, i = s.indices()
        return t, r, i, s.values()
    t, r, i = spikes.nonzero(as_tuple=True)
    return t, r, i, spikes[t, r, i]


def events_of(spikes: torch.Tensor, initial: torch.Tensor | None = None) -> Events:
    """The sorted events of ``spikes`` ``[T, R, n]`` (dense or sparse COO; value = amplitude),
    plus virtual events at ``t = -1`` for the non-zero entries of ``initial`` ``[R, n]``."""
    return events_from(spike_indices(spikes), spikes.shape, initial)


def events_from(
    indices: tuple[torch.Tensor, ...], shape: torch.Size, initial: torch.Tensor | None = None
) -> Events:
    """:func:`events_of` from ``spike_indices`` already taken of a ``shape`` tensor."""
    steps, _, n = shape
    t, r, i, value = indices
    amp = value.to(torch.float64)
    if initial is not None:
        r0, i0 = initial.nonzero(as_tuple=True)
        t = torch.cat([torch.full_like(r0, -1), t])
        r, i = torch.cat([r0, r]), torch.cat([i0, i])
        amp = torch.cat([initial[r0, i0].to(torch.float64), amp])
    stride = steps + 1
    key = (r * n + i) * stride + (t + 1)
    key, order = torch.sort(key)
    return Events(key, t[order], r[order], i[order], amp[order], stride, n)


def next_in_segment(ev: Events, horizon: int) -> torch.Tensor:
    """For each event, the time of the next event of the same row and input (``horizon`` if
    none): where a nearest-spike trace started by it is replaced."""
    following = torch.full_like(ev.time, horizon)
    if len(ev.key) > 1:
        same = (ev.key[1:] // ev.stride) == (ev.key[:-1] // ev.stride)
        following[:-1] = torch.where(same, ev.time[1:], following[:-1])
    return following


def previous_in_segment(ev: Events, none: int = -2) -> torch.Tensor:
    """For each event, the time of the previous event of the same row and input (``none`` if
    it is the first)."""
    preceding = torch.full_like(ev.time, none)
    if len(ev.key) > 1:
        same = (ev.key[1:] // ev.stride) == (ev.key[:-1] // ev.stride)
        preceding[1:] = torch.where(same, ev.time[:-1], preceding[1:])
    return preceding


class TimeOrder(NamedTuple):
    """Postsynaptic events re-sorted by ``(row, time)`` for the pair searches."""

    key: torch.Tensor  # row * stride + (t + 1), ascending
    index: torch.Tensor  # position of each in the original Events


def time_order(ev: Events) -> TimeOrder:
    key = ev.row * ev.stride + (ev.time + 1)
    key, index = torch.sort(key, stable=True)
    return TimeOrder(key, index)


def _expand(start: torch.Tensor, end: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(i, j)`` with ``start[i] <= j < end[i]``."""
    counts = (end - start).clamp(min=0)
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    offset = torch.arange(len(owner), device=counts.device) - first[owner]
    return owner, start[owner] + offset


def causal_pairs(
    pre: Events, order: TimeOrder, until: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``(pre_event, post_event)`` of one row with ``t_pre <= t_post`` and, if
    ``until`` (per pre event) is given, ``t_post < until``."""
    base = pre.row * pre.stride
    start = torch.searchsorted(order.key, base + pre.time + 1)
    stop = base + (pre.stride if until is None else until + 1)
    owner, position = _expand(start, torch.searchsorted(order.key, stop))
    return owner, order.index[position]


def acausal_pairs(
    pre: Events, order: TimeOrder, since: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``(pre_event, post_event)`` of one row with ``t_post < t_pre`` and, if
    ``since`` (per pre event) is given, ``t_post >= since``: the mirror of :func:`causal_pairs`
    (a post spike in the same step as a pre spike is not before it)."""
    base = pre.row * pre.stride
    first = base if since is None else base + since.clamp(min=-1) + 1
    start = torch.searchsorted(order.key, first)
    owner, position = _expand(start, torch.searchsorted(order.key, base + pre.time + 1))
    return owner, order.index[position]


def trace_age(x: torch.Tensor, tau: float, dt: float) -> torch.Tensor:
    r"""The steps from the spike that left the nearest-spike trace ``x`` to the step at which
    ``x`` is read (:math:`x = e^{-\mathrm{age}\,\Delta t/\tau}`), rounded to an integer;
    ``inf`` where ``x`` is 0 (no spike, or one so old that its trace underflowed)."""
    x = x.to(torch.float64)
    age = torch.round(torch.log(x) / math.log(decay_factor(tau, dt)))
    return torch.where(x > 0, age.clamp(min=0.0), torch.full_like(x, math.inf))


def decay_power(lag: torch.Tensor, tau: float, dt: float) -> torch.Tensor:
    r""":math:`e^{-\mathrm{lag}\,\Delta t/\tau}` for integer step lags."""
    return torch.exp(lag.to(torch.float64) * math.log(decay_factor(tau, dt)))


def final_trace(
    ev: Events, rows: int, last: int, tau: float, dt: float, nearest: bool
) -> torch.Tensor:
    """The trace ``[rows, n]`` after step ``last`` (spikes of ``last`` included)."""
    value = ev.amp * decay_power(last - ev.time, tau, dt)
    segment = ev.key // ev.stride
    out = torch.zeros(rows * ev.n, dtype=torch.float64, device=ev.key.device)
    if nearest:
        is_last = torch.ones_like(segment, dtype=torch.bool)
        is_last[:-1] = segment[1:] != segment[:-1]
        out[segment[is_last]] = value[is_last]
    else:
        out.index_add_(0, segment, value)
    return out.reshape(rows, ev.n)
