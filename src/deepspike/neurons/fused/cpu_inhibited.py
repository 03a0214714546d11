r"""Forward scan of inhibited (and optionally threshold-adaptive) LIF neurons, compiled by numba.

One kernel for the excitatory layer of Diehl & Cook (2015): LIF neurons with a refractory period,
an optional adaptive threshold :math:`\theta`, and lateral inhibition, where every spike inhibits
every *other* neuron of the same sample at the next step by :math:`g`. Per step and sample:

.. math::

    x_i &\leftarrow x_i - g\,(\textstyle\sum_j s_{t-1,j} - s_{t-1,i}) \\
    h_i &= \beta v_i + x_i, \quad h_i \leftarrow v_{reset} \text{ while refractory} \\
    \vartheta_i &= \vartheta_{0,i} + \theta_i \ \text{(adaptive)}, \quad
        s_i = H(h_i - \vartheta_i) \\
    v_i &= \text{reset}(h_i, s_i), \quad
        r_i \leftarrow n_{ref} \text{ if } s_i \text{ else } \max(r_i - 1, 0) \\
    \theta_i &\leftarrow \theta_i d + \theta_+ s_i \ \text{(adaptive)}.

Every arithmetic operation is the one the per-step path
(:class:`deepspike.layers.LateralInhibition` around
:class:`deepspike.learning.AdaptiveThreshold` around :class:`deepspike.neurons.LIFParams`) does
in torch, in the same order and precision, so the spikes are bit-identical. It has no backward:
it serves plasticity rules and inference (no autograd graph), where the per-step path spends
almost all its time in Python overhead on a ``[B, N]`` slice per step.

:func:`coba_inhibited_scan` is the same loop for the conductance-based neuron of
:mod:`deepspike.neurons.coba`, where inhibition opens a conductance toward :math:`E_i` instead of
subtracting a current.

Imported only when the first such scan runs; compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def inhibited_scan(
    x: np.ndarray,  # [T, B, N] input current
    v: np.ndarray,  # [B, N] membrane, updated in place
    refractory: np.ndarray,  # [B, N] refractory steps left, updated in place
    theta: np.ndarray,  # [B, N] adaptive threshold, updated in place (adaptive only)
    prev: np.ndarray,  # [B, N] spikes of the step before, updated in place
    vth: np.ndarray,  # [B, N] base threshold
    params: np.ndarray,  # [8] beta, v_reset, g, decay, theta_plus, n_ref, 0, 1 (input dtype)
    reset: int,  # 0 subtract, 1 zero, 2 none
    adaptive: bool,
    spikes: np.ndarray,  # out [T, B, N]
) -> None:
    n_steps, batch, n = x.shape
    beta, v_reset, g, decay = params[0], params[1], params[2], params[3]
    theta_plus, n_ref, zero, one = params[4], params[5], params[6], params[7]
    for b in range(batch):
        for t in range(n_steps):
            total = zero
            for j in range(n):
                total += prev[b, j]
            for j in range(n):
                xi = x[t, b, j]
                if g != zero:
                    xi = xi - g * (total - prev[b, j])
                h = beta * v[b, j] + xi
                if n_ref > zero and refractory[b, j] > zero:
                    h = v_reset
                thr = vth[b, j] + theta[b, j] if adaptive else vth[b, j]
                s = one if h - thr >= zero else zero
                if reset == 0:
                    h = h - s * thr
                elif reset == 1:
                    h = h - s * (h - v_reset)
                v[b, j] = h
                if n_ref > zero:
                    refractory[b, j] = n_ref if s > zero else max(refractory[b, j] - one, zero)
                if adaptive:
                    theta[b, j] = theta[b, j] * decay + theta_plus * s
                spikes[t, b, j] = s
            for j in range(n):
                prev[b, j] = spikes[t, b, j]


# error_model="numpy": the divisions are by the total conductance (at least 1) and by the fourth
# power of a polynomial at least 1, so the zero-divisor check (which also stops vectorisation)
# can never fire. The loop body is branch-free, so LLVM vectorises it across neurons.
@numba.njit(cache=True, nogil=True, error_model="numpy")
def coba_inhibited_scan(
    x: np.ndarray,  # [T, B, N] excitatory conductance increments
    v: np.ndarray,  # [B, N] membrane, updated in place
    refractory: np.ndarray,  # [B, N] refractory steps left, updated in place
    g_exc: np.ndarray,  # [B, N] excitatory conductance, updated in place
    g_inh: np.ndarray,  # [B, N] inhibitory conductance, updated in place
    theta: np.ndarray,  # [B, N] adaptive threshold, updated in place (stays 0 unless adaptive)
    prev: np.ndarray,  # [B, N] spikes of the step before, updated in place
    vth: np.ndarray,  # [B, N] base threshold
    params: np.ndarray,  # [22] see _coba_scan in deepspike.layers.competition (input dtype)
    spikes: np.ndarray,  # out [T, B, N]
) -> None:
    """The conductance-based neuron of :mod:`deepspike.neurons.coba` under lateral inhibition
    (every spike opens every *other* neuron's inhibitory conductance by ``g`` at the next step),
    with an adaptive threshold (:math:`\\theta_+ = 0` and decay 1 without one): the same
    operations as its ``step``, :math:`e^{-y}` included
    (:func:`~deepspike.neurons.coba.decay_factor`). ``refractory`` counts the steps until a
    neuron may fire again (``n_refire`` after a spike); the membrane is held at the reset while
    more than ``held_above`` (``n_refire - n_ref``) are left."""
    n_steps, batch, n = x.shape
    decay_exc, decay_inh, mean_exc, mean_inh = params[0], params[1], params[2], params[3]
    rate, e_exc, e_inh, v_reset = params[4], params[5], params[6], params[7]
    g, decay, theta_plus, n_refire = params[8], params[9], params[10], params[11]
    zero, one, quarter = params[12], params[13], params[14]
    c1, c2, c3, c4, c5, c6 = params[15], params[16], params[17], params[18], params[19], params[20]
    held_above = params[21]
    for b in range(batch):
        for t in range(n_steps):
            total = zero
            for j in range(n):
                total += prev[b, j]
            for j in range(n):
                ge = g_exc[b, j] + x[t, b, j]
                gi = g_inh[b, j] + g * (total - prev[b, j])
                me, mi = ge * mean_exc, gi * mean_inh
                conductance = one + me + mi
                v_inf = (me * e_exc + mi * e_inh) / conductance
                z = conductance * rate * quarter
                p = one + z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * c6)))))
                p = p * p
                h = v_inf + (v[b, j] - v_inf) * (one / (p * p))
                h = h if refractory[b, j] <= held_above else v_reset
                fired = (h >= vth[b, j] + theta[b, j]) & (refractory[b, j] <= zero)
                s = one if fired else zero
                v[b, j] = v_reset if fired else h
                refractory[b, j] = n_refire if fired else max(refractory[b, j] - one, zero)
                theta[b, j] = theta[b, j] * decay + theta_plus * s
                g_exc[b, j] = ge * decay_exc
                g_inh[b, j] = gi * decay_inh
                spikes[t, b, j] = s
            for j in range(n):
                prev[b, j] = spikes[t, b, j]
