r"""R-STDP on a winner-take-all conv decision layer, one compiled loop over the images.

The decision layer of Mozafari et al. (2019) is a conv layer read from its earliest spike: the
first neuron to reach the threshold decides (the largest potential among those firing at that
step), over all maps and positions. The paper's neurons never reach their threshold, so the
neuron with the largest potential after the last input wave decides. Only the deciding neuron
learns, on its input patch at the winning position, with the inputs that fired by its decision
step :math:`t_d` (:math:`x_j = 1`) as before it (R-STDP, Mozafari et al. 2018, eq. 4):

.. math::

    \Delta w_j = \begin{cases}
        a_r^+ \text{ if } x_j = 1, \ a_r^- \text{ otherwise} & \text{correct decision} \\
        a_p^- \text{ if } x_j = 1, \ a_p^+ \text{ otherwise} & \text{wrong decision}
    \end{cases}
    \qquad w_j \leftarrow \mathrm{clip}(w_j + \Delta w_j, w_{min}, w_{max}),

optionally times the stabiliser :math:`(w_j - w_{min})(w_{max} - w_j)`. Every image's update
changes the next image's potentials, so images are processed one at a time.

The input is sparse (about a third of conv2's neurons fire), so the potentials
:math:`V_{m,p}(t) = \sum_j W_{m,j} [t_{j,p} \le t]` are accumulated from the active inputs
only, each adding one contiguous weight column (all maps) to every output position its kernel
reaches: a few times fewer additions than the dense product, and no unfold. A threshold no
potential can reach (above ``C kh kw w_max``) needs only the last step's sums; otherwise the
inputs are added step by step and the threshold checked after each. The sums are float32,
as in the dense product; only their order differs, so two potentials within rounding of each
other may rank differently. Ties go to the first neuron in map x position order, as
``argmax`` does. The weight update is the same float32 arithmetic as
:func:`deepspike.learning.rstdp_rows` followed by an SGD step of rate 1 and clipping.

Imported only when the first such loop runs; compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

from deepspike.learning.conv_stdp_kernel import learn_patch


@numba.njit(cache=True, nogil=True)
def rstdp_decision_chunk(
    weight_t: np.ndarray,  # [C, kh, kw, maps] float32, updated in place
    times: np.ndarray,  # [N, C, H, W] uint8 first-spike steps; ``steps`` or more: never
    steps: int,
    order: np.ndarray,  # [n] int64: the images to present, in order
    labels: np.ndarray,  # [N] int64
    keep: np.ndarray,  # [n, maps] bool: maps not dropped out (for the i-th image of order)
    rates: np.ndarray,  # [4] float32: a_r+, a_r-, a_p+, a_p-
    bounds: np.ndarray,  # [2] float32: w_min, w_max
    padding: int,
    maps_per_class: int,
    stabilise: bool,
    threshold: float,
    winners: np.ndarray,  # out [n] int64: flat winner map * positions + position
) -> int:
    """Present the images ``order`` one by one; returns the number of correct decisions."""
    channels, kh, kw, maps = weight_t.shape
    height, width = times.shape[2], times.shape[3]
    out_h = height + 2 * padding - kh + 1
    out_w = width + 2 * padding - kw + 1
    positions = out_h * out_w
    potentials = np.zeros((positions, maps), dtype=weight_t.dtype)
    active = np.empty((channels * height * width, 3), dtype=np.int64)
    a_r_plus, a_r_minus, a_p_plus, a_p_minus = rates[0], rates[1], rates[2], rates[3]
    w_min, w_max = bounds[0], bounds[1]
    stepwise = threshold <= channels * kh * kw * w_max
    hits = 0
    for i in range(order.shape[0]):
        image = order[i]
        n_active = 0
        for c in range(channels):
            for y in range(height):
                for x in range(width):
                    if times[image, c, y, x] < steps:
                        active[n_active, 0] = c
                        active[n_active, 1] = y
                        active[n_active, 2] = x
                        n_active += 1
        potentials[:] = 0.0
        t_decision, winner = steps - 1, -1
        for step in range(steps if stepwise else 1):
            for a in range(n_active):
                c, y, x = active[a, 0], active[a, 1], active[a, 2]
                if stepwise and times[image, c, y, x] != step:
                    continue
                _add_column(potentials, weight_t, c, y, x, padding, out_h, out_w)
            if stepwise:
                best, flat = _best_kept(potentials, keep[i], positions)
                if best >= threshold:
                    t_decision, winner = step, flat
                    break
        if winner < 0:
            winner = _best_kept(potentials, keep[i], positions)[1]
        winners[i] = winner
        m, p = winner // positions, winner % positions
        correct = m // maps_per_class == labels[image]
        hits += correct
        kernel = weight_t[:, :, :, m]  # [C, kh, kw], strided
        causal = a_r_plus if correct else a_p_minus
        anti = a_r_minus if correct else a_p_plus
        learn_patch(
            kernel, times[image], t_decision, p // out_w, p % out_w, padding,
            causal, anti, stabilise, w_min, w_max,
        )  # fmt: skip
    return hits


@numba.njit(cache=True, nogil=True, inline="always")
def _add_column(potentials, weight_t, c, y, x, padding, out_h, out_w) -> None:
    """Add input ``(c, y, x)``'s weight column (all maps) to every output position its kernel
    reaches: the positions p with 0 <= y + padding - p_y < kh (and likewise for x)."""
    kh, kw, maps = weight_t.shape[1], weight_t.shape[2], weight_t.shape[3]
    for py in range(max(0, y + padding - kh + 1), min(out_h, y + padding + 1)):
        dy = y + padding - py
        for px in range(max(0, x + padding - kw + 1), min(out_w, x + padding + 1)):
            dx = x + padding - px
            p = py * out_w + px
            for m in range(maps):
                potentials[p, m] += weight_t[c, dy, dx, m]


@numba.njit(cache=True, nogil=True, inline="always")
def _best_kept(potentials, keep, positions):
    """The largest potential of the kept maps and its flat index ``map * positions +
    position``; the first best wins, as ``argmax`` does."""
    best, winner = -np.inf, 0
    for m in range(potentials.shape[1]):
        if not keep[m]:
            continue
        for p in range(positions):
            if potentials[p, m] > best:
                best, winner = potentials[p, m], m * positions + p
    return best, winner
