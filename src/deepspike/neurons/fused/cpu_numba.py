r"""The threshold scan on CPU, compiled by numba's LLVM JIT (no C compiler needed).

Two kernels over a time-major ``[T, M]`` problem (``M`` neurons = batch x features, flattened):

* :func:`scan_forward` runs the recurrence of :mod:`deepspike.neurons.fused.scan`; the backward
  calls it again to recompute the pre-reset membrane ``h`` and threshold ``theta``;
* :func:`scan_backward` runs the adjoint recurrence from ``t = T-1`` down to 0.

Both split the neurons into blocks of :data:`BLOCK` and run the blocks in parallel (``prange``);
inside a block the time loop is outermost and the neuron loop innermost, so the state of a block
stays in L1 and the inner loop reads and writes contiguous memory. Every arithmetic operation is
the one :meth:`LIFParams.step` / :meth:`ALIFParams.step` does in torch, in the same order and in
the input's precision (no ``fastmath``, so LLVM contracts nothing into an FMA): the fused forward
is bit-identical to the per-step reference.

numba is imported only when a kernel is first called, and the compiled machine code is cached
on disk (``cache=True``), so ``import deepspike`` stays fast and a user pays the compilation
(a few seconds per dtype) once per machine.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

BLOCK = 512
"""Neurons per parallel work item: the block's state and parameters (a few KiB) stay in L1."""


@cache
def kernels() -> tuple[Any, Any]:
    """Compile (or load from numba's cache) the two kernels; ``ImportError`` without numba."""
    import numba
    from numba import prange

    jit = numba.njit(parallel=True, cache=True, nogil=True, boundscheck=False)

    @jit
    def scan_forward(
        x: np.ndarray,  # [T, M] input current
        v0: np.ndarray,  # [M] initial membrane
        a0: np.ndarray,  # [M] initial adaptation (ALIF)
        beta: np.ndarray,  # [M] membrane decay
        vth: np.ndarray,  # [M] base threshold
        badapt: np.ndarray,  # [M] threshold increment per unit adaptation (ALIF)
        rho: np.ndarray,  # [M] adaptation decay (ALIF)
        one_minus_rho: np.ndarray,  # [M] adaptation gain 1 - rho, as the reference computes it
        consts: np.ndarray,  # [3] = (v_reset, 0, 1) in the input's dtype
        reset: int,  # 0 subtract, 1 zero, 2 none
        adaptive: bool,
        spikes: np.ndarray,  # out [T, M]
        v_out: np.ndarray,  # out [T, M] post-reset membrane trace, or [1, M] final membrane
        a_out: np.ndarray,  # out like v_out (ALIF), else [1, M] scratch
        h_out: np.ndarray,  # out [T, M] pre-reset membrane for the backward, or [1, M] scratch
        theta_out: np.ndarray,  # out [T, M] threshold for the backward (ALIF), or [1, M]
    ) -> None:
        n_steps, n = x.shape
        v_step = 1 if v_out.shape[0] == n_steps else 0
        a_step = 1 if a_out.shape[0] == n_steps else 0
        h_step = 1 if h_out.shape[0] == n_steps else 0
        th_step = 1 if theta_out.shape[0] == n_steps else 0
        v_reset = consts[0]
        zero = consts[1]
        one = consts[2]
        n_blocks = (n + BLOCK - 1) // BLOCK
        for blk in prange(n_blocks):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, n)
            v = v0[lo:hi].copy()
            a = a0[lo:hi].copy()
            for t in range(n_steps):
                tv, ta, th, tt = t * v_step, t * a_step, t * h_step, t * th_step
                for j in range(hi - lo):
                    i = lo + j
                    h = beta[i] * v[j] + x[t, i]
                    if adaptive:
                        theta = vth[i] + badapt[i] * a[j]
                    else:
                        theta = vth[i]
                    s = one if h - theta >= zero else zero
                    if reset == 0:
                        vn = h - s * theta
                    elif reset == 1:
                        vn = h - s * (h - v_reset)
                    else:
                        vn = h
                    spikes[t, i] = s
                    v[j] = vn
                    v_out[tv, i] = vn
                    h_out[th, i] = h
                    if adaptive:
                        theta_out[tt, i] = theta
                        a[j] = rho[i] * a[j] + one_minus_rho[i] * s
                        a_out[ta, i] = a[j]

    @jit
    def scan_backward(
        h_in: np.ndarray,  # [T, M] pre-reset membrane (recomputed)
        theta_in: np.ndarray,  # [T, M] threshold (ALIF) or [1, M] base threshold
        grad_u: np.ndarray,  # [T, M] surrogate derivative at h - theta; overwritten by dL/dx
        grad_spikes: np.ndarray,  # [T, M]
        grad_v: np.ndarray,  # [T, M] grad of the v trace, or [1, M] grad of the final v
        grad_a: np.ndarray,  # like grad_v, for the adaptation (ALIF)
        v0: np.ndarray,
        beta: np.ndarray,
        badapt: np.ndarray,
        rho: np.ndarray,
        one_minus_rho: np.ndarray,
        consts: np.ndarray,
        reset: int,
        adaptive: bool,
        detach_reset: bool,
        want_beta: bool,
        grad_v0: np.ndarray,  # out [M]
        grad_a0: np.ndarray,  # out [M]
        grad_beta: np.ndarray,  # out [M] (summed over time)
    ) -> None:
        n_steps, n = h_in.shape
        traced = grad_v.shape[0] == n_steps
        th_step = 1 if theta_in.shape[0] == n_steps else 0
        v_reset = consts[0]
        zero = consts[1]
        one = consts[2]
        n_blocks = (n + BLOCK - 1) // BLOCK
        for blk in prange(n_blocks):
            lo = blk * BLOCK
            hi = min(lo + BLOCK, n)
            width = hi - lo
            dv = np.zeros(width, dtype=h_in.dtype)
            da = np.zeros(width, dtype=h_in.dtype)
            db = np.zeros(width, dtype=h_in.dtype)
            if not traced:
                dv[:] = grad_v[0, lo:hi]
                da[:] = grad_a[0, lo:hi]
            for t in range(n_steps - 1, -1, -1):
                tt = t * th_step
                tp = (t - 1) * th_step
                for j in range(width):
                    i = lo + j
                    if traced:
                        dv[j] += grad_v[t, i]
                        if adaptive:
                            da[j] += grad_a[t, i]
                    h = h_in[t, i]
                    theta = theta_in[tt, i]
                    s = one if h - theta >= zero else zero
                    ds = grad_spikes[t, i]
                    if adaptive:
                        ds += one_minus_rho[i] * da[j]
                    if not detach_reset:
                        if reset == 0:
                            ds -= theta * dv[j]
                        elif reset == 1:
                            ds -= (h - v_reset) * dv[j]
                    du = ds * grad_u[t, i]
                    if reset == 1:
                        dh = (one - s) * dv[j] + du
                    else:
                        dh = dv[j] + du
                    grad_u[t, i] = dh
                    if want_beta:
                        if t > 0:
                            hp = h_in[t - 1, i]
                            thp = theta_in[tp, i]
                            sp = one if hp - thp >= zero else zero
                            if reset == 0:
                                vp = hp - sp * thp
                            elif reset == 1:
                                vp = hp - sp * (hp - v_reset)
                            else:
                                vp = hp
                        else:
                            vp = v0[i]
                        db[j] += dh * vp
                    if adaptive:
                        dtheta = -du
                        if reset == 0:
                            dtheta -= s * dv[j]
                        da[j] = rho[i] * da[j] + badapt[i] * dtheta
                    dv[j] = beta[i] * dh
            grad_v0[lo:hi] = dv
            grad_a0[lo:hi] = da
            grad_beta[lo:hi] = db

    return scan_forward, scan_backward
