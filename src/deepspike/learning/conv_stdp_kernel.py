r"""One image of layer-wise conv STDP (Kheradpisheh et al. 2018; Mozafari et al. 2019),
compiled: potentials, first spikes, k winners and the update of their kernels.

Every input fires at most once (at its first-spike step, ``steps`` or more: never), and the
non-leaky IF neurons have non-negative weights, so the potential of map ``f`` at position
``p`` is cumulative,

.. math::

    V_t(f, p) = \sum_{t' \le t} \sum_{j:\, t_j = t'} W_f[j - p],

summed here from the inputs that fire, each adding one weight column (all maps) at every
output position its kernel reaches, then accumulated over the steps. A neuron fires at the
first step with :math:`V_t \ge \vartheta`.

Winners (:func:`deepspike.learning.conv_k_winners`): up to ``k`` by earliest spike, then
largest potential at that step; each excludes its map and every map within ``radius``
(Chebyshev) of its position. With ``pointwise`` the candidates are first reduced to the best
map of each position (:func:`deepspike.learning.position_inhibition`). Ties go to the first
in map x row x column order, as ``argmax`` does. Each winner's kernel learns from its input
patch at its spike step by the simplified STDP rule with the soft bound
(:func:`deepspike.learning.order_stdp`),

.. math::

    \Delta w = a^{\pm}\, w (1 - w), \qquad w \leftarrow \mathrm{clip}(w + \Delta w, 0, 1),

:math:`a^+` where the input fired by then, :math:`a^-` elsewhere: the same float32 arithmetic
as the torch path. The potentials are float32 sums as in the convolution, in another order,
so values within rounding of the threshold or of each other may decide differently.

Imported only when the first such image is trained; compiled once per machine
(``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def conv_stdp_image(
    weight: np.ndarray,  # [F, C, k, k] float32, the winners' kernels updated in place
    times: np.ndarray,  # [C, H, W] uint8 first-spike steps of the input
    steps: int,
    threshold: np.float32,
    padding: int,
    k_winners: int,
    radius: int,
    pointwise: bool,
    a_plus: np.float32,
    a_minus: np.float32,
    winners: np.ndarray,  # out [k, 4] int64: map, row, column, spike step
) -> int:
    """Train ``weight`` on one image; returns the number of winners written to ``winners``."""
    maps, channels, kh, kw = weight.shape
    height, width = times.shape[1], times.shape[2]
    out_h = height + 2 * padding - kh + 1
    out_w = width + 2 * padding - kw + 1
    by_column = np.empty((channels, kh, kw, maps), dtype=weight.dtype)
    for f in range(maps):
        for c in range(channels):
            for dy in range(kh):
                for dx in range(kw):
                    by_column[c, dy, dx, f] = weight[f, c, dy, dx]
    v = np.zeros((steps, out_h, out_w, maps), dtype=weight.dtype)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                t = times[c, y, x]
                if t >= steps:
                    continue
                for oy in range(max(0, y + padding - kh + 1), min(out_h, y + padding + 1)):
                    dy = y + padding - oy
                    for ox in range(max(0, x + padding - kw + 1), min(out_w, x + padding + 1)):
                        dx = x + padding - ox
                        for f in range(maps):
                            v[t, oy, ox, f] += by_column[c, dy, dx, f]
    for t in range(1, steps):
        for oy in range(out_h):
            for ox in range(out_w):
                for f in range(maps):
                    v[t, oy, ox, f] += v[t - 1, oy, ox, f]
    # first spike step (steps: never) and the potential then, per neuron: steps outermost,
    # so that v is read in memory order
    first_pos = np.full((out_h, out_w, maps), steps, dtype=np.int64)
    value_pos = v[steps - 1].copy()
    for t in range(steps):
        for oy in range(out_h):
            for ox in range(out_w):
                for f in range(maps):
                    if first_pos[oy, ox, f] == steps and v[t, oy, ox, f] >= threshold:
                        first_pos[oy, ox, f] = t
                        value_pos[oy, ox, f] = v[t, oy, ox, f]
    first = np.empty((maps, out_h, out_w), dtype=np.int64)
    value = np.empty((maps, out_h, out_w), dtype=weight.dtype)
    for f in range(maps):
        for oy in range(out_h):
            for ox in range(out_w):
                first[f, oy, ox] = first_pos[oy, ox, f]
                value[f, oy, ox] = value_pos[oy, ox, f]
    candidate = first < steps
    if pointwise:  # keep each position's best map only
        for oy in range(out_h):
            for ox in range(out_w):
                best = -1
                for f in range(maps):
                    if candidate[f, oy, ox] and (
                        best < 0 or _better(first, value, f, best, oy, ox)
                    ):
                        best = f
                for f in range(maps):
                    candidate[f, oy, ox] = f == best
    n_winners = 0
    for _ in range(min(k_winners, maps)):
        bf, by, bx = -1, 0, 0
        for f in range(maps):
            for oy in range(out_h):
                for ox in range(out_w):
                    if not candidate[f, oy, ox]:
                        continue
                    if bf < 0 or _beats(first, value, f, oy, ox, bf, by, bx):
                        bf, by, bx = f, oy, ox
        if bf < 0:
            break
        winners[n_winners, 0], winners[n_winners, 1] = bf, by
        winners[n_winners, 2], winners[n_winners, 3] = bx, first[bf, by, bx]
        n_winners += 1
        for oy in range(out_h):
            for ox in range(out_w):
                candidate[bf, oy, ox] = False
        for f in range(maps):
            for oy in range(max(0, by - radius), min(out_h, by + radius + 1)):
                for ox in range(max(0, bx - radius), min(out_w, bx + radius + 1)):
                    candidate[f, oy, ox] = False
    zero, one = np.float32(0.0), np.float32(1.0)
    for i in range(n_winners):
        f, oy, ox, t_fire = winners[i, 0], winners[i, 1], winners[i, 2], winners[i, 3]
        learn_patch(weight[f], times, t_fire, oy, ox, padding, a_plus, a_minus, True, zero, one)
    return n_winners


@numba.njit(cache=True, nogil=True)
def learn_patch(
    kernel: np.ndarray,  # [C, kh, kw] one neuron's weights, updated in place
    times: np.ndarray,  # [C, H, W] first-spike steps of the input
    t_fire: int,
    oy: int,
    ox: int,
    padding: int,
    a_fired: np.float32,
    a_silent: np.float32,
    stabilise: bool,
    w_min: np.float32,
    w_max: np.float32,
) -> None:
    """Order STDP of the neuron at ``(oy, ox)`` that fired at step ``t_fire``: ``a_fired`` for
    the inputs of its patch that fired by then, ``a_silent`` for the others (padding
    included), times :math:`(w - w_{min})(w_{max} - w)` when ``stabilise``, then clipped to
    ``[w_min, w_max]``; float32 in the order of :func:`deepspike.learning.order_stdp_rows`
    and :func:`deepspike.learning.apply_update`."""
    channels, kh, kw = kernel.shape
    height, width = times.shape[1], times.shape[2]
    for c in range(channels):
        for dy in range(kh):
            y = oy + dy - padding
            for dx in range(kw):
                x = ox + dx - padding
                inside = 0 <= y < height and 0 <= x < width
                delta = a_fired if inside and times[c, y, x] <= t_fire else a_silent
                w = kernel[c, dy, dx]
                if stabilise:
                    delta = delta * (w - w_min)
                    delta = delta * (w_max - w)
                kernel[c, dy, dx] = min(max(w + delta, w_min), w_max)


@numba.njit(cache=True, nogil=True, inline="always")
def _better(first, value, f, g, oy, ox) -> bool:
    """Whether map ``f`` beats map ``g`` at one position: earlier, or as early and larger."""
    return first[f, oy, ox] < first[g, oy, ox] or (
        first[f, oy, ox] == first[g, oy, ox] and value[f, oy, ox] > value[g, oy, ox]
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _beats(first, value, f, oy, ox, g, gy, gx) -> bool:
    """Whether neuron ``(f, oy, ox)`` beats ``(g, gy, gx)``: earlier, or as early and larger."""
    return first[f, oy, ox] < first[g, gy, gx] or (
        first[f, oy, ox] == first[g, gy, gx] and value[f, oy, ox] > value[g, gy, gx]
    )
