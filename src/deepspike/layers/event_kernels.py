r"""Event-driven inference kernels on CPU, compiled by numba (imported on first use).

* :func:`accumulate_spikes`: the synapses of :class:`deepspike.layers.Linear` alone,
  :math:`y_r = b + \sum_{j:\,x_{rj} = 1} W_{:,j}`;
* :func:`linear_neuron_events`: the same synapses followed by an IF/LIF neuron layer, both in
  one call, row by row, so the currents never leave a one-row buffer
  (:class:`deepspike.layers.Sequential` calls it for each ``Linear`` -> ``Neuron`` pair).

Both first count the non-zero inputs, and give up on an input other than 0 or 1 (-2) or on more
than ``max_events`` of them (-1: the dense GEMM is then cheaper). The currents add the bias,
then the weight rows of the inputs that spiked in increasing input order, so both kernels
produce the same currents; they equal the dense :math:`W x + b` up to the order of the float
additions. The neuron update is :func:`deepspike.neurons.fused.cpu_numba.scan_forward`'s,
operation for operation, in the input's precision (no ``fastmath``).
"""

from __future__ import annotations

import numba
import numpy as np

from deepspike.neurons.fused.cpu_numba import _fire, _reset


@numba.njit(inline="always")
def _count_events(x: np.ndarray) -> int:
    """The number of non-zero entries of ``x`` ``[R, in]``, or -1 if one is not 1."""
    n_events = 0
    not_spikes = 0
    for r in range(x.shape[0]):
        xr = x[r]
        for j in range(x.shape[1]):
            value = xr[j]
            n_events += value != 0
            not_spikes += (value != 0) & (value != 1)
    return -1 if not_spikes else n_events


@numba.njit(inline="always")
def _events_or_status(x: np.ndarray, max_events: int) -> int:
    """The number of events in ``x``, or -2 if it is not spikes, or -1 if there are more than
    ``max_events``."""
    n_events = _count_events(x)
    if n_events < 0:
        return -2
    return -1 if n_events > max_events else n_events


@numba.njit(inline="always")
def _row_currents(
    xr: np.ndarray, table: np.ndarray, bias: np.ndarray, active: np.ndarray, y: np.ndarray
) -> None:
    """``y = b + W^T`` rows of the inputs that spiked in ``xr`` (binary), in input order.

    The indices are gathered without branches, and the rows are added four at a time, each
    output's sum still taken one row after the other (the same roundings as one row at a time,
    with a quarter of the loads and stores of ``y``)."""
    k = 0
    for j in range(xr.shape[0]):
        active[k] = j
        k += xr[j] != 0
    n_out = y.shape[0]
    if bias.shape[0] == n_out:
        y[:] = bias
    else:
        y[:] = 0
    q = 0
    while q + 4 <= k:
        a, b = table[active[q]], table[active[q + 1]]
        c, d = table[active[q + 2]], table[active[q + 3]]
        for o in range(n_out):
            y[o] = (((y[o] + a[o]) + b[o]) + c[o]) + d[o]
        q += 4
    while q < k:
        a = table[active[q]]
        for o in range(n_out):
            y[o] += a[o]
        q += 1


@numba.njit(cache=True, nogil=True)
def accumulate_spikes(
    x: np.ndarray, table: np.ndarray, bias: np.ndarray, max_events: int, y: np.ndarray
) -> int:
    r"""Event-driven synapses :math:`y_r = b + \sum_{j:\,x_{rj} = 1} W_{:,j}`.

    ``x`` is ``[R, in]``, ``table`` is :math:`W^\top` ``[in, out]`` (contiguous, so an event
    reads one contiguous row), ``bias`` is ``[out]`` or ``[0]``, ``y`` is the ``[R, out]``
    output. Returns the number of events, or (before any work) -2 for an input that is not a
    spike or -1 for more than ``max_events`` events.
    """
    n_events = _events_or_status(x, max_events)
    if n_events < 0:
        return n_events
    active = np.empty(x.shape[1], dtype=np.int64)
    for r in range(x.shape[0]):
        _row_currents(x[r], table, bias, active, y[r])
    return n_events


@numba.njit(cache=True, nogil=True)
def linear_neuron_events(
    x: np.ndarray,  # [T * B, in] binary input, time-major rows
    table: np.ndarray,  # [in, out] the transposed weight
    bias: np.ndarray,  # [out] or [0]
    max_events: int,
    batch: int,
    consts: np.ndarray,  # [6] = (v_reset, 0, 1, beta, v_th, v_init) in the input's dtype
    reset: int,  # 0 subtract, 1 zero, 2 none
    spikes: np.ndarray,  # out [T * B, out]
) -> int:
    r"""Synapses and neurons of one layer from a uniform membrane ``v_init``: for each row
    ``r = t * B + b``, :math:`I = b + \sum_{j:\,x_{rj}=1} W_{:,j}`, :math:`h = \beta v_b + I`,
    :math:`s = H(h - \vartheta)`, then the reset of :math:`v_b` (subtract, zero or none), as
    :func:`deepspike.neurons.fused.cpu_numba.scan_forward` computes it (IF: :math:`\beta = 1`).

    Returns the number of input events, or (before any work) -2 for an input that is not a
    spike or -1 for more than ``max_events`` events.
    """
    n_events = _events_or_status(x, max_events)
    if n_events < 0:
        return n_events
    n_out = table.shape[1]
    v_reset, zero, one, beta, v_th = consts[0], consts[1], consts[2], consts[3], consts[4]
    v = np.full((batch, n_out), consts[5], dtype=spikes.dtype)
    current = np.empty(n_out, dtype=spikes.dtype)
    active = np.empty(x.shape[1], dtype=np.int64)
    for r in range(x.shape[0]):
        _row_currents(x[r], table, bias, active, current)
        vb, sr = v[r % batch], spikes[r]
        for o in range(n_out):
            h = beta * vb[o] + current[o]
            s = _fire(h, v_th, zero, one)
            vb[o] = _reset(h, s, v_th, v_reset, reset)
            sr[o] = s
    return n_events
