r"""Spike-timing-dependent plasticity rules: pure functions of activity returning :math:`\Delta W`.

Every rule reads a connection through the row view of :mod:`deepspike.learning.views`:
presynaptic activity ``pre`` ``[T, R, n_in]`` (or ``[R, n_in]`` for the order rules) and
postsynaptic activity ``post`` ``[T, R, n_out]``, and returns updates shaped like the dense
matrix ``[n_out, n_in]``, summed over rows and time. One implementation therefore serves dense
and convolutional connections (see :class:`~deepspike.learning.views.ConvView`).

Trace rules return a :class:`Window`, the potentiation and depression parts (both non-negative,
amplitudes included), plus the final traces so a long run can be fed in chunks. A weight
dependence turns a window into :math:`\Delta W`:

* :func:`additive`: :math:`\Delta W = \mathrm{LTP} - \mathrm{LTD}` (weights clipped by the caller);
* :func:`soft_bound` (multiplicative, van Rossum et al. 2000; Gütig et al. 2003):
  :math:`\Delta W = (w_{max}-w)^{\mu}\,\mathrm{LTP} - (w - w_{min})^{\mu}\,\mathrm{LTD}`.

Rules
-----
:func:`pair_stdp`
    Pair STDP with exponential windows (Bi & Poo 1998; Song, Miller & Abbott 2000), trace based
    (all-to-all or nearest-spike, Morrison et al. 2008). For a pre spike at :math:`t_{pre}` and a
    post spike at :math:`t_{post}`, :math:`\Delta t = t_{post} - t_{pre}`:
    :math:`\Delta w = A_+ e^{-\Delta t/\tau_+}` if :math:`\Delta t \ge 0`, else
    :math:`-A_- e^{\Delta t/\tau_-}`. At a post spike LTP reads the presynaptic trace; at a pre
    spike LTD reads the postsynaptic trace from just before that step, so a pair in the same
    step counts once, as potentiation. ``trace="immediate"`` keeps only *immediate* pairs
    (Morrison, Diesmann & Gerstner 2008, the nearest-spike scheme restricted to neighbouring
    pre/post spikes; the rule of Masquelier, Guyonneau & Thorpe 2008): in the merged spike train
    of a synapse (pre before post within a step), a pre spike at :math:`t_{pre}` and a post spike
    at :math:`t_{post}` interact only if no other spike of either lies between them, so each pre
    spike potentiates at most once (at the unit's first post spike :math:`t_{post} \ge t_{pre}`,
    if the input has not fired again by then) and is depressed at most once (by the unit's last
    post spike :math:`t_{post} < t_{pre}`, if the input has not fired since that post spike).
:func:`triplet_stdp`
    Pfister & Gerstner (2006): at a post spike
    :math:`\Delta w^+ = r_1 (A_2^+ + A_3^+ o_2(t-\epsilon))`, at a pre spike
    :math:`\Delta w^- = o_1 (A_2^- + A_3^- r_2(t-\epsilon))`, with traces :math:`r_1, r_2`
    (pre; :math:`\tau_+, \tau_x`) and :math:`o_1, o_2` (post; :math:`\tau_-, \tau_y`).
:func:`order_stdp`
    Simplified STDP of Masquelier & Thorpe (2007) and Kheradpisheh et al. (2018):
    :math:`\Delta w = a^+ w(1-w)` if :math:`t_{pre} \le t_{post}` (or the pre neuron fired),
    else :math:`a^- w(1-w)` (:math:`a^- < 0`).
:func:`rstdp`
    Reward-modulated STDP of Mozafari et al. (2018, 2019): the order rule with the amplitudes
    :math:`(a_r^+, a_r^-)` on reward and anti-STDP :math:`(a_p^-, a_p^+)` on punishment.
:func:`nessler_stdp`
    Probabilistic STDP for a stochastic winner-take-all circuit (Nessler et al. 2009, 2013): at a
    spike of output :math:`k`, :math:`\Delta w_{ki} = \eta(e^{-w_{ki}} - 1)` if input :math:`i`
    spiked in the last :math:`\sigma` (``pre_recent = 1``), else :math:`-\eta`.

Any trace rule becomes a three-factor rule through ``modulation`` (a reward per row): both parts
are scaled by it, so a negative reward turns STDP into anti-STDP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from deepspike.errors import ConfigError, ShapeError
from deepspike.learning.events import (
    Events,
    TimeOrder,
    acausal_pairs,
    causal_pairs,
    decay_power,
    events_from,
    events_of,
    final_trace,
    next_in_segment,
    previous_in_segment,
    spike_indices,
    time_order,
    trace_age,
)
from deepspike.learning.traces import TraceMode, before, check_mode, trace

Amplitude = float | torch.Tensor
Bounds = tuple[float, float]


class Window(NamedTuple):
    """The two parts of an STDP update, each ``[n_out, n_in]`` and non-negative (for
    non-negative modulation): potentiation ``ltp`` and depression ``ltd``."""

    ltp: torch.Tensor
    ltd: torch.Tensor


class RowWindow(NamedTuple):
    """A :class:`Window` restricted to the output units it can change: ``ltp`` and ``ltd`` are
    ``[len(units), n_in]``, row ``k`` belonging to output unit ``units[k]``; every other row of
    the full ``[n_out, n_in]`` window is zero.

    A pair rule only changes the incoming weights of units that fired (or carry a trace), so
    in a large competitive layer this is a small fraction of the matrix.
    """

    units: torch.Tensor  # int64 [K], ascending
    ltp: torch.Tensor
    ltd: torch.Tensor
    n_out: int

    def dense(self) -> Window:
        """The full ``[n_out, n_in]`` window."""
        return Window(self._scatter(self.ltp), self._scatter(self.ltd))

    def _scatter(self, rows: torch.Tensor) -> torch.Tensor:
        return _scatter_rows(self.units, rows, self.n_out)


class RowDelta(NamedTuple):
    r""":math:`\Delta W` restricted to the output units it changes: ``rows`` ``[K, n_in]``
    belongs to ``units`` ``[K]`` (ascending); every other row of the ``[n_out, n_in]`` update is
    zero. Apply it with ``apply_update(weight, delta.rows, optimizer, units=delta.units)``."""

    units: torch.Tensor
    rows: torch.Tensor
    n_out: int

    def dense(self) -> torch.Tensor:
        """The full ``[n_out, n_in]`` update."""
        return _scatter_rows(self.units, self.rows, self.n_out)


def _scatter_rows(units: torch.Tensor, rows: torch.Tensor, n_out: int) -> torch.Tensor:
    out = rows.new_zeros(n_out, rows.shape[1])
    out[units] = rows
    return out


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """``[..., n]`` as ``[rows, n]``, with the row count explicit (``-1`` is ambiguous when
    ``n`` is 0, e.g. no neuron learns in this batch)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def outer(post_side: torch.Tensor, pre_side: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_{rows} \mathrm{post}^\top \mathrm{pre}`: ``[..., n_out]`` x ``[..., n_in]``
    -> ``[n_out, n_in]``.

    Event sparse: only rows (time steps x samples x positions) where both sides are non-zero
    take part in the product.
    """
    a = _as_rows(post_side)
    b = _as_rows(pre_side)
    if a.shape[0] != b.shape[0]:
        raise ShapeError(
            f"pre and post activity disagree on rows: {list(pre_side.shape)} vs "
            f"{list(post_side.shape)}; both must be [T, R, n] with the same T and R"
        )
    dtype = torch.promote_types(a.dtype, b.dtype)
    keep = (a != 0).any(dim=1) & (b != 0).any(dim=1)
    if not bool(keep.all()):
        rows = keep.nonzero().squeeze(1)
        a, b = a.index_select(0, rows), b.index_select(0, rows)
    return a.to(dtype).T @ b.to(dtype)


def _rows_modulated(x: torch.Tensor, modulation: torch.Tensor | None) -> torch.Tensor:
    """Scale ``x`` ``[T, R, n]`` by a per-row (``[R]``) or per-step-and-row (``[T, R]``) factor."""
    if modulation is None:
        return x
    m = modulation.to(x.dtype)
    if m.dim() == 1:
        m = m.unsqueeze(0)
    return x * m.unsqueeze(-1)


def _spike_dtype(pre: torch.Tensor, post: torch.Tensor) -> torch.dtype:
    return torch.promote_types(pre.dtype, post.dtype)


def _check_sequences(pre: torch.Tensor, post: torch.Tensor) -> None:
    """Both ``[T, R, n]`` (dense, or sparse COO for event-sparse input) with equal T and R."""
    if pre.dim() != 3 or post.dim() != 3 or pre.shape[:2] != post.shape[:2]:
        raise ShapeError(
            f"pre {list(pre.shape)} and post {list(post.shape)} must be [T, R, n] with the same "
            "T and R; convert layer activity with a view (deepspike.learning.view_of)"
        )


# --------------------------------------------------------------------------- pair STDP


@dataclass(frozen=True)
class PairSTDP:
    r"""Parameters of pair STDP; defaults after Song, Miller & Abbott (2000).

    ``a_plus``/``a_minus`` are the amplitudes :math:`A_\pm > 0` of the two exponential windows
    with time constants ``tau_plus``/``tau_minus`` (ms); ``trace`` chooses the interaction:

    * ``"all_to_all"``: every pre/post pair counts;
    * ``"nearest"``: symmetric nearest-spike (Morrison et al. 2008): a post spike potentiates
      from the input's latest pre spike, a pre spike is depressed by the unit's latest post
      spike, however many spikes of its own side came in between;
    * ``"immediate"``: nearest-spike restricted to immediate pairs (Morrison et al. 2008;
      Masquelier, Guyonneau & Thorpe 2008): a pair counts only if no other spike of either side
      lies between them; with :math:`t^{-}_{pre}` the input's previous spike and
      :math:`t^{+}_{post}` the unit's next post spike,

      .. math::

          \Delta w^+ = A_+ e^{-(t_{post} - t_{pre})/\tau_+}
          \quad\text{if } t_{pre} \le t_{post} \text{ is the first post spike at or after }
          t_{pre} \text{ and the input's next spike is later than } t_{post},

          \Delta w^- = A_- e^{-(t_{pre} - t_{post})/\tau_-}
          \quad\text{if } t_{post} < t_{pre} \le t^{+}_{post} \text{ and }
          t^{-}_{pre} \le t_{post}.

    Immediate pairing makes depression independent of the input rate at low postsynaptic rates
    (one pairing per post spike), which is what lets a single neuron settle on a repeated
    pattern in Masquelier et al.'s protocol.
    """

    a_plus: float = 0.005
    a_minus: float = 0.00525
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    dt: float = 1.0
    trace: TraceMode = "all_to_all"

    def __post_init__(self) -> None:
        check_mode(self.trace)
        if self.a_plus < 0 or self.a_minus < 0:
            raise ConfigError(
                f"a_plus={self.a_plus} and a_minus={self.a_minus} are magnitudes and must be "
                ">= 0; the sign of depression is built in"
            )


class PairTraces(NamedTuple):
    """Trace values after the last step: ``pre`` ``[R, n_in]``, ``post`` ``[R, n_out]``."""

    pre: torch.Tensor
    post: torch.Tensor


def _modulation_at(
    modulation: torch.Tensor | None, t: torch.Tensor, r: torch.Tensor
) -> torch.Tensor | float:
    """The modulation of events at steps ``t`` (``-1`` reads step 0) and rows ``r``."""
    if modulation is None:
        return 1.0
    m = modulation.to(torch.float64)
    return m[r] if m.dim() == 1 else m[t.clamp(min=0), r]


def _trace_amplitudes(ev: Events, nearest: bool) -> Events:
    """A nearest-spike trace restarts at 1 at a spike whatever its count; virtual initial events
    keep their trace value."""
    if not nearest:
        return ev
    return ev._replace(amp=torch.where(ev.time >= 0, torch.ones_like(ev.amp), ev.amp))


def pair_stdp(
    pre: torch.Tensor,
    post: torch.Tensor,
    params: PairSTDP,
    traces: PairTraces | None = None,
    modulation: torch.Tensor | None = None,
) -> tuple[Window, PairTraces]:
    r"""Pair STDP over a sequence ``pre`` ``[T, R, n_in]``, ``post`` ``[T, R, n_out]``.

    Event driven: LTP sums :math:`A_+ e^{-\Delta t/\tau_+}` over the (pre, post) spike pairs
    of a row with the pre spike not later (found by binary search,
    :mod:`deepspike.learning.events`; a nearest-spike trace keeps only each input's latest pre
    spike); LTD reads the postsynaptic trace, computed for the neurons that fired only, at the
    presynaptic spikes through one sparse product. Nothing of size ``T * R * n_in`` is built, and
    ``pre`` may be a sparse COO tensor.

    With ``trace="immediate"`` LTD is event driven too: for each pre spike, the post spikes
    since the input's previous spike that are their unit's last before it.

    ``traces`` continues from an earlier chunk (pass the returned traces back in); with it a run
    cut into chunks gives the same window as the whole. For ``"immediate"`` the carried traces
    are the nearest-spike traces; the ages of the two
    (:func:`~deepspike.learning.events.trace_age`) tell which side of each synapse spiked last.
    That is exact unless a trace has underflowed to 0 (a spike more than ~700 time constants
    old reads as none); the pairs misjudged then weigh at most
    :math:`A_\pm e^{-700\,\min(\tau_+,\tau_-)/\max(\tau_+,\tau_-)}`.

    ``modulation`` (``[R]`` or ``[T, R]``) scales each contribution by the row's factor at the
    time of the spike that triggers it (three-factor / reward-modulated STDP).

    :func:`pair_stdp_rows` returns the same window restricted to the units it changes.
    """
    rows, final = pair_stdp_rows(pre, post, params, traces, modulation)
    return rows.dense(), final


def pair_stdp_rows(
    pre: torch.Tensor,
    post: torch.Tensor,
    params: PairSTDP,
    traces: PairTraces | None = None,
    modulation: torch.Tensor | None = None,
) -> tuple[RowWindow, PairTraces]:
    """:func:`pair_stdp` as a :class:`RowWindow`: only the output units that fired in ``post``
    or carry a non-zero initial trace get a row, so the cost scales with ``K * n_in``, not
    ``n_out * n_in``."""
    return _pair_rows(pre, post, params, traces, modulation)


#: a factor per postsynaptic event of a pair rule's potentiation (see :func:`_pair_rows`)
PostGain = Callable[[Events], torch.Tensor]


def _pair_rows(
    pre: torch.Tensor,
    post: torch.Tensor,
    params: PairSTDP,
    traces: PairTraces | None,
    modulation: torch.Tensor | None,
    post_gain: PostGain | None = None,
) -> tuple[RowWindow, PairTraces]:
    """The row-sparse pair rule; ``post_gain(post_events)`` (one factor per post event) scales
    the potentiation each post spike triggers, which turns it into the triplet rule of
    :func:`triplet_stdp_rows`."""
    _check_sequences(pre, post)
    p = params
    nearest = p.trace in ("nearest", "immediate")  # immediate pairs read nearest-spike traces
    steps, rows, n_in = pre.shape
    n_out = post.shape[2]
    pre_spikes = spike_indices(pre)
    initial_pre = None if traces is None else traces.pre
    initial_post = None if traces is None else traces.post
    pre_raw = events_from(pre_spikes, pre.shape, initial_pre)
    pre_ev = _trace_amplitudes(pre_raw, nearest)
    post_ev = events_of(post, initial_post)
    units = _units_with_trace(post_ev, n_out)
    slot = torch.full((n_out,), -1, dtype=torch.int64)
    slot[units] = torch.arange(len(units))
    order = time_order(post_ev)
    last_was_pre = None if traces is None else _last_was_pre(traces, p)

    until = next_in_segment(pre_ev, steps) if nearest else None
    e, q = causal_pairs(pre_ev, order, until)
    real = post_ev.time[q] >= 0
    if p.trace == "immediate":
        # keep a pre spike's first post spike of each unit only, and only if the unit did not
        # fire between them (then that earlier post spike took the pre spike)
        before_q = previous_in_segment(post_ev)[q]
        first = before_q < pre_ev.time[e]
        if last_was_pre is not None:  # a carried pre and post spike: which came last?
            carried = (before_q == -1) & (pre_ev.time[e] == -1)
            first |= carried & last_was_pre(pre_ev.row[e], pre_ev.col[e], post_ev.col[q])
        real &= first
    e, q = e[real], q[real]
    gain = post_ev.amp[q] * _modulation_at(modulation, post_ev.time[q], post_ev.row[q])
    if post_gain is not None:
        gain = gain * post_gain(post_ev)[q]
    lag = post_ev.time[q] - pre_ev.time[e]
    ltp = pre_ev.amp[e] * decay_power(lag, p.tau_plus, p.dt) * gain
    ltp = _matrix(slot[post_ev.col[q]], pre_ev.col[e], ltp, len(units), n_in)
    post_trace = _trace_amplitudes(post_ev, nearest)
    if p.trace == "immediate":
        ltd = _immediate_depression(
            pre_raw, post_trace, order, slot, len(units), last_was_pre, p, modulation
        )
    else:
        ltd = _depression(pre_spikes, pre.shape, post, units, p, initial_post, modulation)

    final = PairTraces(
        final_trace(pre_ev, rows, steps - 1, p.tau_plus, p.dt, nearest),
        final_trace(post_trace, rows, steps - 1, p.tau_minus, p.dt, nearest),
    )
    dtype = _spike_dtype(pre, post)
    window = RowWindow(units, (p.a_plus * ltp).to(dtype), (p.a_minus * ltd).to(dtype), n_out)
    return window, final


def _last_was_pre(traces: PairTraces, p: PairSTDP):
    """For carried traces: whether, at synapse ``(row, unit, input)``, the last spike before the
    chunk was the pre spike (strictly after the unit's last post spike, so that pre spike has
    not potentiated yet and the post spike can depress no later pre spike). Read from the ages
    of the two nearest-spike traces."""
    age_pre = trace_age(traces.pre, p.tau_plus, p.dt)
    age_post = trace_age(traces.post, p.tau_minus, p.dt)

    def lookup(row: torch.Tensor, col: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        return age_pre[row, col] < age_post[row, unit]

    return lookup


def _immediate_depression(
    pre: Events,
    post: Events,
    order: TimeOrder,
    slot: torch.Tensor,
    k: int,
    last_was_pre,
    p: PairSTDP,
    modulation: torch.Tensor | None,
) -> torch.Tensor:
    r"""LTD of immediate pairs ``[k, n_in]``: each presynaptic spike at :math:`t` (weighted by its
    value) is depressed by :math:`e^{-(t - t_{post})\Delta t/\tau_-}` for the last post spike of
    each unit before it (:math:`t_{post} < t`), if no other spike of that input came between them
    (the input's previous spike at or before :math:`t_{post}`).

    Event based, the mirror of the LTP search: for each pre spike, the post events from the
    input's previous spike up to (not including) its own step, kept where they are their unit's
    last before it. ``post`` carries nearest-trace amplitudes (1, or the carried trace)."""
    since = previous_in_segment(pre, none=-1)
    e, q = acausal_pairs(pre, order, since)
    keep = (pre.time[e] >= 0) & (next_in_segment(post, pre.stride)[q] >= pre.time[e])
    if last_was_pre is not None:  # a carried post spike: no pre spike may have followed it
        carried = post.time[q] == -1
        keep &= ~(carried & last_was_pre(pre.row[e], pre.col[e], post.col[q]))
    e, q = e[keep], q[keep]
    lag = pre.time[e] - post.time[q]
    value = pre.amp[e] * post.amp[q] * decay_power(lag, p.tau_minus, p.dt)
    value = value * _modulation_at(modulation, pre.time[e], pre.row[e])
    return _matrix(slot[post.col[q]], pre.col[e], value, k, pre.n)


def _units_with_trace(post_ev: Events, n_out: int) -> torch.Tensor:
    """The output units (ascending) with a postsynaptic event: a spike or an initial trace."""
    marked = torch.zeros(n_out, dtype=torch.bool)
    marked[post_ev.col[post_ev.amp != 0]] = True
    return marked.nonzero().squeeze(1)


def _depression(
    pre_spikes: tuple[torch.Tensor, ...],
    pre_shape: torch.Size,
    post: torch.Tensor,
    units: torch.Tensor,
    p: PairSTDP,
    initial: torch.Tensor | None,
    modulation: torch.Tensor | None,
) -> torch.Tensor:
    """:math:`\\sum_t x^{post}_{t^-}{}^\\top s^{pre}_t` ``[len(units), n_in]``: the postsynaptic
    trace of ``units`` from just before each presynaptic spike, summed over those spikes.

    The trace is computed only for ``units`` (the others have none) and read at the
    presynaptic events through one sparse product.
    """
    steps, rows, n_in = pre_shape
    if len(units) == 0:
        return torch.zeros(0, n_in, dtype=torch.float64)
    start = None if initial is None else initial[:, units]
    x = trace(_dense(post)[:, :, units], p.tau_minus, p.dt, p.trace, start)
    x_before = before(x, p.tau_minus, p.dt, start).reshape(steps * rows, len(units))
    t, r, i, value = pre_spikes
    values = value.to(torch.float64) * _modulation_at(modulation, t, r)
    by_input = torch.sparse_coo_tensor(
        torch.stack([i, t * rows + r]), values, (n_in, steps * rows), check_invariants=False
    )
    return (by_input @ x_before.to(torch.float64)).T


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def _matrix(
    out_index: torch.Tensor, in_index: torch.Tensor, values: torch.Tensor, n_out: int, n_in: int
) -> torch.Tensor:
    """Sum ``values`` into an ``[n_out, n_in]`` matrix at ``(out_index, in_index)``."""
    flat = torch.bincount(out_index * n_in + in_index, weights=values, minlength=n_out * n_in)
    return flat.to(torch.float64).reshape(n_out, n_in)


# --------------------------------------------------------------------------- triplet STDP


@dataclass(frozen=True)
class TripletSTDP:
    r"""Parameters of triplet STDP (Pfister & Gerstner 2006, eqs. 3-4); times in ms.

    The defaults are the paper's *minimal all-to-all* model fitted to the visual-cortex pairing
    data of Sjöström et al. (2001) (Table 4): :math:`A_2^+ = 0`, :math:`A_3^+ = 6.5\cdot10^{-3}`,
    :math:`A_2^- = 7.1\cdot10^{-3}`, :math:`A_3^- = 0`, :math:`\tau_y = 125` ms, with
    :math:`\tau_+ = 16.8` ms and :math:`\tau_- = 33.7` ms from Bi & Poo (1998).
    :data:`VISUAL_CORTEX_FULL` holds the full all-to-all fit.
    """

    a2_plus: float = 0.0
    a3_plus: float = 6.5e-3
    a2_minus: float = 7.1e-3
    a3_minus: float = 0.0
    tau_plus: float = 16.8
    tau_minus: float = 33.7
    tau_x: float = 101.0
    tau_y: float = 125.0
    dt: float = 1.0
    trace: TraceMode = "all_to_all"

    def __post_init__(self) -> None:
        check_mode(self.trace, ("all_to_all", "nearest"), "TripletSTDP")
        amplitudes = (self.a2_plus, self.a3_plus, self.a2_minus, self.a3_minus)
        if min(amplitudes) < 0:
            raise ConfigError(f"triplet amplitudes {amplitudes} must all be >= 0")


VISUAL_CORTEX_MINIMAL = TripletSTDP()
VISUAL_CORTEX_FULL = TripletSTDP(
    a2_plus=5e-10, a3_plus=6.2e-3, a2_minus=7e-3, a3_minus=2.3e-4, tau_x=101.0, tau_y=125.0
)


class TripletTraces(NamedTuple):
    """Trace values after the last step: pre ``r1``, ``r2``; post ``o1``, ``o2``."""

    r1: torch.Tensor
    r2: torch.Tensor
    o1: torch.Tensor
    o2: torch.Tensor


def triplet_stdp(
    pre: torch.Tensor,
    post: torch.Tensor,
    params: TripletSTDP = VISUAL_CORTEX_MINIMAL,
    traces: TripletTraces | None = None,
    modulation: torch.Tensor | None = None,
) -> tuple[Window, TripletTraces]:
    """Triplet STDP over ``pre`` ``[T, R, n_in]`` and ``post`` ``[T, R, n_out]``; see
    :func:`pair_stdp` for ``traces`` and ``modulation``."""
    _check_sequences(pre, post)
    p, old = params, traces
    r1 = trace(pre, p.tau_plus, p.dt, p.trace, None if old is None else old.r1)
    r2 = trace(pre, p.tau_x, p.dt, p.trace, None if old is None else old.r2)
    o1 = trace(post, p.tau_minus, p.dt, p.trace, None if old is None else old.o1)
    o2 = trace(post, p.tau_y, p.dt, p.trace, None if old is None else old.o2)
    o1_before = before(o1, p.tau_minus, p.dt, None if old is None else old.o1)
    o2_before = before(o2, p.tau_y, p.dt, None if old is None else old.o2)
    r2_before = before(r2, p.tau_x, p.dt, None if old is None else old.r2)
    dtype = _spike_dtype(pre, post)
    post_gain = _rows_modulated(post * (p.a2_plus + p.a3_plus * o2_before).to(dtype), modulation)
    pre_gain = pre * (p.a2_minus + p.a3_minus * r2_before).to(dtype)
    ltp = outer(post_gain, r1.to(dtype))
    ltd = outer(_rows_modulated(o1_before.to(dtype), modulation), pre_gain)
    return Window(ltp, ltd), TripletTraces(r1[-1], r2[-1], o1[-1], o2[-1])


def triplet_stdp_rows(
    pre: torch.Tensor,
    post: torch.Tensor,
    params: TripletSTDP,
    modulation: torch.Tensor | None = None,
) -> RowWindow:
    r""":func:`triplet_stdp` with nearest-spike traces and :math:`A_3^- = 0`, as a
    :class:`RowWindow` computed from spike events (cost scales with the units that fired).

    At a post spike of unit :math:`j` at :math:`t`,
    :math:`\Delta w^+ = r_1(t)\,(A_2^+ + A_3^+\,o_2(t-\epsilon))` with
    :math:`o_2(t-\epsilon) = e^{-(t - t^{prev}_j)/\tau_y}` from the unit's previous spike
    (0 if none); at a pre spike :math:`\Delta w^- = A_2^-\,o_1(t-\epsilon)`. With
    :math:`A_2^+ = 0` this is the rule of Diehl & Cook's published simulation
    (``post2before``): a post spike potentiates only if the unit fired shortly before.

    Every sequence starts from zero traces (no ``traces`` argument): the rule serves
    presentations that begin from rest.
    """
    p = params
    if p.trace != "nearest" or p.a3_minus != 0:
        raise ConfigError(
            f"triplet_stdp_rows takes trace='nearest' and a3_minus=0 (got trace={p.trace!r}, "
            f"a3_minus={p.a3_minus}); use triplet_stdp for the general rule"
        )
    pair = PairSTDP(
        a_plus=1.0,
        a_minus=p.a2_minus,
        tau_plus=p.tau_plus,
        tau_minus=p.tau_minus,
        dt=p.dt,
        trace="nearest",
    )

    def post_gain(post_ev: Events) -> torch.Tensor:
        previous = previous_in_segment(post_ev)
        o2_before = torch.where(
            previous >= 0,
            decay_power(post_ev.time - previous, p.tau_y, p.dt),
            torch.zeros_like(post_ev.amp),
        )
        return p.a2_plus + p.a3_plus * o2_before

    window, _ = _pair_rows(pre, post, pair, None, modulation, post_gain)
    return window


# --------------------------------------------------------------------------- weight dependence


def additive(window: Window) -> torch.Tensor:
    r"""Additive STDP: :math:`\Delta W = \mathrm{LTP} - \mathrm{LTD}`."""
    return window.ltp - window.ltd


def soft_bound(
    window: Window,
    w: torch.Tensor,
    w_max: float = 1.0,
    w_min: float = 0.0,
    mu: float = 1.0,
) -> torch.Tensor:
    r"""Weight-dependent (multiplicative, soft-bound) STDP:
    :math:`\Delta W = (w_{max} - w)^{\mu}\,\mathrm{LTP} - (w - w_{min})^{\mu}\,\mathrm{LTD}`.

    ``w`` is the ``[n_out, n_in]`` matrix. For :math:`\mu = 1`, every update with
    :math:`\mathrm{LTP} + \mathrm{LTD} \le 1` keeps :math:`w` in :math:`[w_{min}, w_{max}]`:
    the new weight is a convex combination of :math:`w`, :math:`w_{min}` and :math:`w_{max}`.
    """
    if w.shape != window.ltp.shape:
        raise ShapeError(
            f"weights {list(w.shape)} do not match the update {list(window.ltp.shape)}; pass "
            "the [n_out, n_in] matrix (view.matrix(layer.weight) for a conv kernel)"
        )
    if not w_max > w_min:
        raise ConfigError(f"need w_max > w_min, got w_max={w_max}, w_min={w_min}")
    room_up = (w_max - w).clamp(min=0.0) ** mu
    room_down = (w - w_min).clamp(min=0.0) ** mu
    return room_up * window.ltp.to(w.dtype) - room_down * window.ltd.to(w.dtype)


# --------------------------------------------------------------------------- order-based rules


def order_stdp(
    pre_before: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    a_plus: Amplitude = 0.004,
    a_minus: Amplitude = -0.003,
    stabilizer: Bounds | None = (0.0, 1.0),
) -> torch.Tensor:
    r"""Simplified STDP (Kheradpisheh et al. 2018, eq. 3): :math:`\Delta w_{ij} = a^+ w(1-w)` if
    the pre neuron ``j`` fired at or before the post spike, else :math:`a^- w(1-w)`.

    With ``stabilizer = (lo, hi)`` the factor is :math:`(w - lo)(hi - w)` (SpykeTorch's
    general form; ``(0, 1)`` gives :math:`w(1-w)`); ``None`` drops it (additive rule, for hard
    bounds applied after the step, as Mozafari et al. 2019 use for R-STDP with ``[0.2, 0.8]``).

    Args:
        pre_before: ``[R, n_in]``, 1 where the presynaptic neuron had fired by the time of the
            row's postsynaptic spike (for a conv layer: the winner's unfolded input patch).
        post: ``[R, n_out]``, 1 for the neuron that learns in this row (a winner), else 0.
        w: the ``[n_out, n_in]`` weights, in ``[0, 1]``.
        a_plus, a_minus: learning rates (``a_minus`` is negative for depression); a float, or a
            ``[R]`` tensor giving each row its own rates (used by :func:`rstdp`).

    :func:`order_stdp_rows` returns the rows of the learning neurons only.
    """
    return order_stdp_rows(pre_before, post, w, a_plus, a_minus, stabilizer).dense()


def order_stdp_rows(
    pre_before: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    a_plus: Amplitude = 0.004,
    a_minus: Amplitude = -0.003,
    stabilizer: Bounds | None = (0.0, 1.0),
) -> RowDelta:
    """:func:`order_stdp` as a :class:`RowDelta`: only the neurons that learn (a non-zero
    column of ``post``) get a row, so the cost scales with the winners, not the layer."""
    if pre_before.dim() != 2 or post.dim() != 2 or pre_before.shape[0] != post.shape[0]:
        raise ShapeError(
            f"pre_before {list(pre_before.shape)} and post {list(post.shape)} must be "
            "[R, n_in] and [R, n_out] with the same number of rows"
        )
    units = (post != 0).any(0).nonzero().squeeze(1)
    learners = post[:, units]
    causal = outer(_scaled(learners, a_plus), pre_before)
    anti = outer(_scaled(learners, a_minus), 1.0 - pre_before)
    rows = (causal + anti).to(w.dtype)
    if stabilizer is not None:
        lo, hi = stabilizer
        w_units = w[units]
        rows = rows * (w_units - lo) * (hi - w_units)
    return RowDelta(units, rows, w.shape[0])


def _scaled(post: torch.Tensor, a: Amplitude) -> torch.Tensor:
    if isinstance(a, torch.Tensor) and a.dim() == 1:
        return post * a.to(post.dtype).unsqueeze(1)
    return post * a


def reward_amplitudes(
    reward: torch.Tensor,
    rewarded: tuple[float, float] = (0.004, -0.003),
    punished: tuple[float, float] = (0.0005, -0.004),
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-row amplitudes ``(a_causal, a_anticausal)`` of R-STDP (Mozafari et al. 2018, eq. 4).

    A positive reward applies STDP with :math:`(a_r^+, a_r^-)`: potentiate causal, depress
    anti-causal inputs. A negative reward (punishment) applies anti-STDP with
    :math:`(a_p^+, a_p^-)`: *depress* causal inputs by :math:`a_p^-` and potentiate anti-causal
    ones by :math:`a_p^+`. Zero reward gives zero.
    """
    r = reward.sign()
    zero = torch.zeros_like(r)
    a_causal = torch.where(r > 0, rewarded[0], torch.where(r < 0, punished[1], zero))
    a_anti = torch.where(r > 0, rewarded[1], torch.where(r < 0, punished[0], zero))
    return a_causal, a_anti


def rstdp(
    pre_before: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    reward: torch.Tensor,
    rewarded: tuple[float, float] = (0.004, -0.003),
    punished: tuple[float, float] = (0.0005, -0.004),
    stabilizer: Bounds | None = (0.0, 1.0),
) -> torch.Tensor:
    """Reward-modulated STDP (Mozafari et al. 2018): :func:`order_stdp` with each row's rates
    chosen by the sign of its ``reward`` ``[R]``; see :func:`reward_amplitudes`.
    :func:`rstdp_rows` returns the rows of the learning neurons only."""
    return rstdp_rows(pre_before, post, w, reward, rewarded, punished, stabilizer).dense()


def rstdp_rows(
    pre_before: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    reward: torch.Tensor,
    rewarded: tuple[float, float] = (0.004, -0.003),
    punished: tuple[float, float] = (0.0005, -0.004),
    stabilizer: Bounds | None = (0.0, 1.0),
) -> RowDelta:
    """:func:`rstdp` as a :class:`RowDelta` (see :func:`order_stdp_rows`)."""
    a_causal, a_anti = reward_amplitudes(reward.to(w.dtype), rewarded, punished)
    return order_stdp_rows(pre_before, post, w, a_causal, a_anti, stabilizer)


# --------------------------------------------------------------------------- probabilistic STDP


def nessler_stdp(
    pre_recent: torch.Tensor, post: torch.Tensor, w: torch.Tensor, lr: float
) -> torch.Tensor:
    r"""Probabilistic STDP of a stochastic WTA (Nessler et al. 2013, eq. 5):

    .. math::

        \Delta w_{ki} = \eta \sum_{t:\,k \text{ fires}} \left(y_i(t)\, e^{-w_{ki}} - 1\right),

    i.e. :math:`\eta(e^{-w_{ki}} - 1)` for inputs active in the window (``pre_recent``, e.g.
    :func:`deepspike.learning.traces.box`) and :math:`-\eta` for the others. Its fixed point is
    :math:`w_{ki} = \log p(y_i = 1 \mid k)`.

    Args:
        pre_recent: ``[..., n_in]`` 0/1, whether input ``i`` spiked within the window.
        post: ``[..., n_out]`` output spikes with the same leading axes.
        w: ``[n_out, n_in]`` weights (log-probabilities, so typically negative).
        lr: the learning rate :math:`\eta`.
    """
    hits = outer(post, pre_recent).to(w.dtype)
    fired = post.reshape(-1, post.shape[-1]).sum(0).to(w.dtype)
    return lr * (hits * torch.exp(-w) - fired.unsqueeze(1))
