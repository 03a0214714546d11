"""The threshold scan on CUDA as two Triton kernels (forward and adjoint).

The same two functions as :mod:`deepspike.neurons.fused.cpu_numba` (same arguments, same
equations, see ``scan.py``). Each program owns :data:`BLOCK` neurons, keeps their state in
registers and loops over time, so the input is read once and the spikes written once per step.
Kernels are launched with ``enable_fp_fusion=False``: no multiply-add is contracted into an FMA,
so the forward does the reference step's float operations exactly.

This module is imported only for CUDA inputs, and only when ``triton`` is importable; the CPU
package never needs triton. It is checked on CPU through Triton's interpreter
(``TRITON_INTERPRET=1``), and on a GPU by the CUDA tests of ``tests/test_fused.py``.
"""

from __future__ import annotations

import importlib.util

import torch

from deepspike.neurons.fused.config import ScanConfig, ScanTensors

BLOCK = 256
"""Neurons per Triton program."""

try:  # guarded: triton is optional and only ever used for CUDA tensors
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None


def available() -> bool:
    """Whether the Triton kernels can run: CUDA present and ``triton`` importable."""
    return (
        triton is not None
        and importlib.util.find_spec("triton") is not None
        and torch.cuda.is_available()
    )


if triton is not None:

    @triton.jit
    def _reset(h, s, theta, v_reset, RESET: tl.constexpr):
        if RESET == 0:
            out = h - s * theta
        elif RESET == 1:
            out = h - s * (h - v_reset)
        else:
            out = h
        return out

    @triton.jit
    def _forward_kernel(
        x_ptr,
        v0_ptr,
        a0_ptr,
        beta_ptr,
        vth_ptr,
        badapt_ptr,
        rho_ptr,
        gain_ptr,
        consts_ptr,
        s_ptr,
        v_ptr,
        a_ptr,
        h_ptr,
        theta_ptr,
        n_steps,
        n,
        RESET: tl.constexpr,
        ADAPTIVE: tl.constexpr,
        RECORD: tl.constexpr,
        KEEP_H: tl.constexpr,
        BLOCK_SIZE: tl.constexpr,
    ):
        offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < n
        v_reset = tl.load(consts_ptr)
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
        beta = tl.load(beta_ptr + offs, mask=mask, other=0.0)
        vth = tl.load(vth_ptr + offs, mask=mask, other=0.0)
        if ADAPTIVE:
            a = tl.load(a0_ptr + offs, mask=mask, other=0.0)
            badapt = tl.load(badapt_ptr + offs, mask=mask, other=0.0)
            rho = tl.load(rho_ptr + offs, mask=mask, other=0.0)
            gain = tl.load(gain_ptr + offs, mask=mask, other=0.0)
        else:
            a = tl.zeros_like(v)
            badapt = a
            rho = a
            gain = a
        # Row pointers advance one row per step: 64-bit pointer arithmetic, no int32 overflow.
        x_row = x_ptr + offs
        s_row = s_ptr + offs
        v_row = v_ptr + offs
        a_row = a_ptr + offs
        h_row = h_ptr + offs
        theta_row = theta_ptr + offs
        for _ in range(n_steps):
            x = tl.load(x_row, mask=mask, other=0.0)
            h = beta * v + x
            theta = vth + badapt * a if ADAPTIVE else vth
            s = (h - theta >= 0).to(h.dtype)
            v = _reset(h, s, theta, v_reset, RESET)
            if ADAPTIVE:
                a = rho * a + gain * s
            tl.store(s_row, s, mask=mask)
            if KEEP_H:
                tl.store(h_row, h, mask=mask)
                if ADAPTIVE:
                    tl.store(theta_row, theta, mask=mask)
            if RECORD:
                tl.store(v_row, v, mask=mask)
                if ADAPTIVE:
                    tl.store(a_row, a, mask=mask)
            x_row += n
            s_row += n
            v_row += n
            a_row += n
            h_row += n
            theta_row += n
        if not RECORD:
            tl.store(v_ptr + offs, v, mask=mask)
            if ADAPTIVE:
                tl.store(a_ptr + offs, a, mask=mask)

    @triton.jit
    def _backward_kernel(
        h_ptr,
        theta_ptr,
        slope_ptr,
        gs_ptr,
        gv_ptr,
        ga_ptr,
        v0_ptr,
        beta_ptr,
        vth_ptr,
        badapt_ptr,
        rho_ptr,
        gain_ptr,
        consts_ptr,
        dv_ptr,
        da_ptr,
        gbeta_ptr,
        gx_ptr,
        n_steps,
        t_end,
        n,
        last_row,
        slope_last_row,
        RESET: tl.constexpr,
        ADAPTIVE: tl.constexpr,
        DETACH: tl.constexpr,
        TRACED: tl.constexpr,
        WANT_BETA: tl.constexpr,
        BLOCK_SIZE: tl.constexpr,
    ):
        offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < n
        v_reset = tl.load(consts_ptr)
        beta = tl.load(beta_ptr + offs, mask=mask, other=0.0)
        vth = tl.load(vth_ptr + offs, mask=mask, other=0.0)
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
        dv = tl.load(dv_ptr + offs, mask=mask, other=0.0)
        if ADAPTIVE:
            badapt = tl.load(badapt_ptr + offs, mask=mask, other=0.0)
            rho = tl.load(rho_ptr + offs, mask=mask, other=0.0)
            gain = tl.load(gain_ptr + offs, mask=mask, other=0.0)
            da = tl.load(da_ptr + offs, mask=mask, other=0.0)
        else:
            badapt = tl.zeros_like(dv)
            rho = badapt
            gain = badapt
            da = badapt
        db = tl.zeros_like(dv)
        # Row pointers start at the last step t_end - 1 (offset ``last_row``, passed from the
        # host so that Triton types it i64 when needed) and move back one row per step.
        h_row = h_ptr + last_row + offs
        theta_row = theta_ptr + last_row + offs
        slope_row = slope_ptr + slope_last_row + offs
        gs_row = gs_ptr + last_row + offs
        gv_row = gv_ptr + last_row + offs
        ga_row = ga_ptr + last_row + offs
        gx_row = gx_ptr + last_row + offs
        for i in range(n_steps):
            has_prev = mask & (offs * 0 + i < t_end - 1)  # t = t_end-1-i > 0, as a block mask
            if TRACED:
                dv += tl.load(gv_row, mask=mask, other=0.0)
                if ADAPTIVE:
                    da += tl.load(ga_row, mask=mask, other=0.0)
            h = tl.load(h_row, mask=mask, other=0.0)
            theta = tl.load(theta_row, mask=mask, other=0.0) if ADAPTIVE else vth
            s = (h - theta >= 0).to(h.dtype)
            ds = tl.load(gs_row, mask=mask, other=0.0)
            if ADAPTIVE:
                ds += gain * da
            if not DETACH:
                if RESET == 0:
                    ds -= theta * dv
                elif RESET == 1:
                    ds -= (h - v_reset) * dv
            du = ds * tl.load(slope_row, mask=mask, other=0.0)
            dh = (1.0 - s) * dv + du if RESET == 1 else dv + du
            if WANT_BETA:
                h_p = tl.load(h_row - n, mask=has_prev, other=0.0)
                theta_p = tl.load(theta_row - n, mask=has_prev, other=0.0) if ADAPTIVE else vth
                s_p = (h_p - theta_p >= 0).to(h.dtype)
                v_prev = tl.where(has_prev, _reset(h_p, s_p, theta_p, v_reset, RESET), v0)
                db += dh * v_prev
            if ADAPTIVE:
                dtheta = -du
                if RESET == 0:
                    dtheta -= s * dv
                da = rho * da + badapt * dtheta
            tl.store(gx_row, dh, mask=mask)
            dv = beta * dh
            h_row -= n
            theta_row -= n
            slope_row -= n
            gs_row -= n
            gv_row -= n
            ga_row -= n
            gx_row -= n
        tl.store(dv_ptr + offs, dv, mask=mask)
        if ADAPTIVE:
            tl.store(da_ptr + offs, da, mask=mask)
        if WANT_BETA:
            tl.store(
                gbeta_ptr + offs, tl.load(gbeta_ptr + offs, mask=mask, other=0.0) + db, mask=mask
            )


def _or(t: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """A real pointer for arguments a kernel never dereferences (zero-size tensors)."""
    return t if t.numel() else fallback


def _grid(n: int) -> tuple[int]:
    return ((n + BLOCK - 1) // BLOCK,)


def forward(
    x: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    p: ScanTensors,
    cfg: ScanConfig,
    spikes: torch.Tensor,
    v_out: torch.Tensor,
    a_out: torch.Tensor,
    h_out: torch.Tensor,
    theta_out: torch.Tensor,
) -> None:
    """Forward recurrence; see :func:`deepspike.neurons.fused.cpu_numba.scan_forward`."""
    n_steps, n = x.shape
    _forward_kernel[_grid(n)](
        x,
        v0,
        _or(a0, x),
        p.beta,
        p.v_th,
        _or(p.beta_adapt, x),
        _or(p.rho, x),
        _or(p.gain, x),
        p.consts,
        spikes,
        v_out,
        _or(a_out, x),
        _or(h_out, x),
        _or(theta_out, x),
        n_steps,
        n,
        RESET=cfg.reset_code,
        ADAPTIVE=cfg.adaptive,
        RECORD=v_out.shape[0] == n_steps,
        KEEP_H=h_out.shape[0] == n_steps,
        BLOCK_SIZE=BLOCK,
        enable_fp_fusion=False,
    )


def backward(
    h: torch.Tensor,
    theta: torch.Tensor,
    slope: torch.Tensor,
    grad_spikes: torch.Tensor,
    grad_v: torch.Tensor,
    grad_a: torch.Tensor,
    v0: torch.Tensor,
    p: ScanTensors,
    cfg: ScanConfig,
    want_beta: bool,
    steps: tuple[int, int],
    dv_carry: torch.Tensor,
    da_carry: torch.Tensor,
    grad_beta: torch.Tensor,
    grad_x: torch.Tensor,
) -> None:
    """Adjoint recurrence; see :func:`deepspike.neurons.fused.cpu_numba.scan_backward`."""
    t0, t1 = steps
    n = h.shape[1]
    _backward_kernel[_grid(n)](
        h,
        _or(theta, h),
        slope,
        grad_spikes,
        _or(grad_v, h),
        _or(grad_a, h),
        v0,
        p.beta,
        p.v_th,
        _or(p.beta_adapt, h),
        _or(p.rho, h),
        _or(p.gain, h),
        p.consts,
        dv_carry,
        _or(da_carry, h),
        _or(grad_beta, h),
        grad_x,
        t1 - t0,
        t1,
        n,
        (t1 - 1) * n,
        (t1 - 1 - t0) * n,
        RESET=cfg.reset_code,
        ADAPTIVE=cfg.adaptive,
        DETACH=cfg.detach_reset,
        TRACED=grad_v.shape[1] == n,
        WANT_BETA=want_beta,
        BLOCK_SIZE=BLOCK,
        enable_fp_fusion=False,
    )
