"""Fused threshold scans (IF, LIF, ALIF) against the per-step reference, and truncated BPTT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepspike.errors import ConfigError
from deepspike.neurons import (
    ALIFParams,
    CubaLIFParams,
    IFParams,
    LIFParams,
    Neuron,
    SRMParams,
    run,
    step_loop,
)
from deepspike.neurons.fused import ENV_VAR, dispatch, select_backend, threshold_scan
from deepspike.surrogate import ArcTan, FastSigmoid, StraightThrough, SuperSpike, Triangle

CPU_BACKENDS = ("numba", "torch")
SURROGATES = (
    FastSigmoid(),
    ArcTan(alpha=3.0),
    Triangle(width=0.7),
    SuperSpike(),
    StraightThrough(),
)
HAS_CUDA = torch.cuda.is_available()
try:
    import triton  # noqa: F401

    HAS_TRITON = True
except ImportError:
    HAS_TRITON = False


def _model(kind: str, reset: str, detach: bool, surrogate, tau, v_th: float):
    common = {"reset": reset, "detach_reset": detach, "surrogate": surrogate, "v_th": v_th}
    if kind == "IF":
        return IFParams(v_reset=-0.1, **common)
    if kind == "LIF":
        return LIFParams(tau_mem=tau, v_reset=0.05, **common)
    return ALIFParams(tau_mem=tau, tau_adapt=12.0, beta_adapt=1.4, v_reset=0.05, **common)


def _objective(result, weights: torch.Tensor, record: bool) -> torch.Tensor:
    """A loss that touches every output: spikes, final state and (if recorded) the trace."""
    loss = (result.spikes * weights).sum()
    loss = loss + sum((0.3 + i) * field.sum() for i, field in enumerate(result.state))
    if record:
        loss = loss + sum(
            (0.7 - i) * (field * weights).sum() for i, field in enumerate(result.trace)
        )
    return loss


def _both_paths(model, x, state, record: bool, params: list[torch.Tensor]):
    """Forward and gradients of the reference loop and of the fused scan, on the same loss."""
    gen = torch.Generator().manual_seed(7)
    weights = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    out = []
    for fused in (False, True):
        xx = x.clone().requires_grad_()
        init = None if state is None else type(state)(*(f.clone() for f in state))
        inputs = [xx, *params, *(f for f in (init or ()) if f.requires_grad)]
        path = model.multi_step if fused else lambda *a: step_loop(model, *a)
        result = path(xx, init, record)
        grads = torch.autograd.grad(_objective(result, weights, record), inputs, allow_unused=True)
        out.append((result, grads))
    return out


@pytest.fixture(autouse=True)
def _default_dispatch(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["IF", "LIF", "ALIF"]),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    detach=st.booleans(),
    surrogate=st.sampled_from(SURROGATES),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 3), st.integers(1, 5)),
    tau_kind=st.sampled_from(["float", "tensor", "learnable"]),
    v_th=st.floats(0.3, 1.5),
    record=st.booleans(),
    given_state=st.booleans(),
    chunk=st.sampled_from([None, 1, 7, 20]),
    seed=st.integers(0, 2**16),
)
def test_fused_equals_reference(
    monkeypatch,
    backend,
    kind,
    reset,
    detach,
    surrogate,
    shape,
    tau_kind,
    v_th,
    record,
    given_state,
    chunk,
    seed,
) -> None:
    """Bit-identical forward and equal gradients, also when time runs in several chunks
    (``chunk`` elements per chunk: 1 means one step per chunk)."""
    monkeypatch.setenv(ENV_VAR, backend)
    if chunk is not None:
        monkeypatch.setitem(dispatch.CHUNK_ELEMENTS, backend, chunk)
    gen = torch.Generator().manual_seed(seed)
    n = shape[-1]
    x = torch.rand(shape, generator=gen, dtype=torch.float64) * 1.2 * v_th
    tau = 6.0
    if tau_kind != "float":
        tau = 2.0 + 10.0 * torch.rand(n, generator=gen, dtype=torch.float64)
        tau.requires_grad_(tau_kind == "learnable")
    model = _model(kind, reset, detach, surrogate, tau, v_th)
    state = None
    if given_state:
        state = model.initial_state(x[0])
        fields = [torch.rand(f.shape, generator=gen, dtype=f.dtype) * 0.5 for f in state]
        if kind == "LIF":
            fields[1] = torch.zeros_like(fields[1])  # the refractory counter
        state = type(state)(*(f.requires_grad_(i == 0) for i, f in enumerate(fields)))
    params = [tau] if tau_kind == "learnable" else []
    (ref, ref_grads), (got, got_grads) = _both_paths(model, x, state, record, params)
    assert torch.equal(got.spikes, ref.spikes)
    for a, c in zip(got.state, ref.state, strict=True):
        assert torch.equal(a, c)
    if record:
        for a, c in zip(got.trace, ref.trace, strict=True):
            assert torch.equal(a, c)
    for g_got, g_ref in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g_got, g_ref, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kind", ["IF", "LIF", "ALIF"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_float32_forward_is_bit_identical(backend, kind, reset, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, backend)
    x = torch.rand(40, 3, 70, generator=torch.Generator().manual_seed(1)) * 0.8
    tau = torch.linspace(2.0, 30.0, 70)
    model = _model(kind, reset, False, FastSigmoid(), tau, 1.0)
    ref = step_loop(model, x, record=True)
    got = model.multi_step(x, None, True)
    assert ref.spikes.sum() > 100
    assert torch.equal(got.spikes, ref.spikes)
    for a, c in zip((*got.state, *got.trace), (*ref.state, *ref.trace), strict=True):
        assert torch.equal(a, c)
    x = x.requires_grad_()
    model.multi_step(x, None, False).spikes.sum().backward()
    g_fused = x.grad.clone()
    x.grad = None
    step_loop(model, x).spikes.sum().backward()
    torch.testing.assert_close(g_fused, x.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["IF", "LIF"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_gradcheck_of_the_membrane_trace(kind, reset) -> None:
    """With the reset detached the membrane is piecewise linear in the input and in tau, so the
    hand-written backward must equal finite differences (away from threshold crossings)."""
    x = torch.rand(15, 2, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    tau = torch.tensor([3.0, 5.0, 9.0, 20.0], dtype=torch.float64, requires_grad=True)

    def trace(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        model = _model(kind, reset, True, FastSigmoid(), tau, 0.9)
        return model.multi_step(x, None, True).trace.v

    spikes = _model(kind, reset, True, FastSigmoid(), tau, 0.9).multi_step(x, None, False).spikes
    assert spikes.sum() > 5
    assert torch.autograd.gradcheck(trace, (x.requires_grad_(), tau), eps=1e-7, atol=1e-6)


def test_float32_and_float64_dispatch() -> None:
    assert select_backend(torch.zeros(2, 2)).name == "numba"
    assert select_backend(torch.zeros(2, 2, dtype=torch.float64)).name == "numba"
    assert select_backend(torch.zeros(2, 2, dtype=torch.float16)) is None
    assert select_backend(torch.zeros(2, 2), "torch").name == "torch"
    assert select_backend(torch.zeros(2, 2), "0") is None


def test_env_var_turns_the_fused_path_off_and_rejects_nonsense(monkeypatch) -> None:
    x = torch.rand(5, 2, 3)
    kwargs = {
        "beta": 0.9,
        "v_th": 1.0,
        "v_reset": 0.0,
        "reset": "subtract",
        "detach_reset": False,
        "surrogate": FastSigmoid(),
        "record": False,
    }
    assert threshold_scan(x, torch.zeros(2, 3), **kwargs) is not None
    monkeypatch.setenv(ENV_VAR, "0")
    assert threshold_scan(x, torch.zeros(2, 3), **kwargs) is None
    monkeypatch.setenv(ENV_VAR, "fast-please")
    with pytest.raises(ConfigError, match=ENV_VAR):
        run(LIFParams(), x)
    monkeypatch.setenv(ENV_VAR, "triton")
    if not (HAS_CUDA and HAS_TRITON):
        with pytest.raises(ConfigError, match="triton"):
            run(LIFParams(), x)


def test_ineligible_models_fall_back_to_the_reference() -> None:
    x = torch.rand(30, 2, 4, generator=torch.Generator().manual_seed(5))
    # a refractory period, a learnable threshold, a half-precision input, a wider tau
    v_th = torch.ones(4, requires_grad=True)
    cases = [
        (LIFParams(tau_mem=4.0, t_ref=2.0, reset="zero"), x),
        (LIFParams(v_th=v_th), x),
        (IFParams(v_th=v_th), x),
        (ALIFParams(v_th=v_th), x),
        (LIFParams(), x.to(torch.bfloat16)),
        (LIFParams(tau_mem=torch.full((3, 2, 4), 5.0)), x),
    ]
    for model, inputs in cases:
        ref = step_loop(model, inputs, record=True)
        got = run(model, inputs, record=True)
        assert torch.equal(got.spikes, ref.spikes)
        assert torch.equal(got.trace.v, ref.trace.v)
    run(LIFParams(v_th=v_th), x).spikes.sum().backward()
    assert v_th.grad is not None and v_th.grad.abs().sum() > 0


def test_learnable_tau_module_gets_the_reference_gradient(monkeypatch) -> None:
    x = torch.rand(25, 4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = []
    for mode in ("0", "numba"):
        monkeypatch.setenv(ENV_VAR, mode)
        layer = Neuron(LIFParams(tau_mem=4.0), output="membrane", learn_tau=True, shape=(6,))
        layer.double()
        layer(x).pow(2).sum().backward()
        grads.append(layer.tau_mem.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-12)


def _saved_bytes(fn, x: torch.Tensor) -> int:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(storages.values())


def test_fused_scan_saves_one_float_per_neuron_and_step() -> None:
    """LIF saves its pre-reset membrane, ALIF also its threshold, plus [B * N] vectors."""
    t, b, n = 50, 8, 64
    x = torch.rand(t, b, n).requires_grad_()
    tau = torch.full((n,), 5.0, requires_grad=True)
    for model, floats in ((LIFParams(tau_mem=tau, reset="zero"), 1), (ALIFParams(tau_mem=tau), 2)):
        fused = _saved_bytes(lambda x, m=model: m.multi_step(x, None, True), x)
        reference = _saved_bytes(lambda x, m=model: step_loop(m, x, None, True), x)
        assert fused <= floats * x.numel() * 4 + 4 * b * n * 4
        assert reference > 2 * fused


def test_import_does_not_load_numba() -> None:
    code = "import sys, deepspike.neurons, deepspike.layers; print('numba' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Triton: on CUDA for real; on CPU through Triton's interpreter when triton is installed.


@pytest.mark.skipif(not (HAS_CUDA and HAS_TRITON), reason="needs CUDA and triton")
@pytest.mark.parametrize("kind", ["IF", "LIF", "ALIF"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_equals_reference_on_cuda(kind, reset, dtype) -> None:
    assert select_backend(torch.zeros(1, 1, device="cuda")).name == "triton"
    gen = torch.Generator().manual_seed(11)
    x = (torch.rand(60, 4, 300, generator=gen, dtype=dtype) * 0.9).cuda()
    tau = torch.linspace(2.0, 30.0, 300, dtype=dtype, device="cuda").requires_grad_()
    model = _model(kind, reset, False, ArcTan(), tau, 1.0)
    (ref, ref_grads), (got, got_grads) = _both_paths(model, x, None, True, [tau])
    assert torch.equal(got.spikes, ref.spikes)
    for a, c in zip((*got.state, *got.trace), (*ref.state, *ref.trace), strict=True):
        assert torch.equal(a, c)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for g_got, g_ref in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g_got, g_ref, **tol)


_INTERPRETED = """
import torch
from deepspike.neurons.fused import cpu_numba, gpu_triton
from deepspike.neurons.fused.dispatch import Backend
from deepspike.neurons.fused.scan import RESET_CODES, ScanConfig, ScanTensors, _ThresholdScan
from deepspike.surrogate import ArcTan

backends = [Backend(m.__name__, m.forward, m.backward, 1500) for m in (cpu_numba, gpu_triton)]
for adaptive in (False, True):
    for reset in RESET_CODES.values():
        for record in (False, True):
            gen = torch.Generator().manual_seed(reset)
            x = torch.rand(9, 300, generator=gen, dtype=torch.float64) * 0.8
            m = x.shape[1]
            e = x.new_empty(0)
            rho = torch.full((m,), 0.9, dtype=x.dtype)
            fixed = ScanTensors(
                e,
                torch.ones(m, dtype=x.dtype),
                *((rho + 0.4, rho, 1 - rho) if adaptive else (e, e, e)),
                torch.tensor([-0.1, 0.0, 1.0], dtype=x.dtype),
            )
            cfg = ScanConfig(reset, adaptive, False, record, ArcTan())
            outs = []
            for backend in backends:
                xx, v0 = x.clone().requires_grad_(), torch.zeros(m, dtype=x.dtype)
                a0 = torch.zeros(m, dtype=x.dtype) if adaptive else e
                beta = torch.full((m,), 0.8, dtype=x.dtype, requires_grad=True)
                s, v, a = _ThresholdScan.apply(xx, v0, a0, beta, fixed, cfg, backend)
                w = torch.randn(s.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
                loss = (s * w).sum() + v.sum() + (a.sum() if adaptive else 0)
                outs.append((s, v, a, torch.autograd.grad(loss, (xx, beta))))
            (s1, v1, a1, g1), (s2, v2, a2, g2) = outs
            assert torch.equal(s1, s2) and torch.equal(v1, v2) and torch.equal(a1, a2)
            for p, q in zip(g1, g2):
                torch.testing.assert_close(p, q)
print("ok")
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
def test_triton_kernels_in_the_interpreter_match_numba() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _INTERPRETED],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        cwd=Path(__file__).parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------------------------
# Truncated backpropagation through time.


@pytest.mark.parametrize(
    "make",
    [
        lambda: LIFParams(tau_mem=6.0),
        lambda: ALIFParams(tau_adapt=20.0),
        lambda: CubaLIFParams(tau_syn=3.0, tau_mem=8.0),
        lambda: SRMParams(kernel_steps=12),
    ],
)
def test_truncated_bptt_keeps_the_forward_and_cuts_the_gradient(make) -> None:
    window, t_loss = 7, 17  # the loss step lies in the window [14, 21)
    x = torch.rand(30, 2, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    full = run(make(), x, record=True)
    xx = x.clone().requires_grad_()
    cut = run(make(), xx, record=True, bptt_window=window)
    assert torch.equal(cut.spikes, full.spikes)
    for a, c in zip((*cut.state, *cut.trace), (*full.state, *full.trace), strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(cut.trace.v[t_loss].sum(), xx)
    per_step = grad.abs().sum(dim=(1, 2))
    assert (per_step[:14] == 0).all()  # earlier windows: cut off
    assert (per_step[t_loss + 1 :] == 0).all()  # the future never matters
    assert per_step[14 : t_loss + 1].sum() > 0
    # the full graph does reach the earlier windows
    xx = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(run(make(), xx, record=True).trace.v[t_loss].sum(), xx)
    assert grad[:14].abs().sum() > 0


def test_truncated_bptt_validation_and_edge_cases() -> None:
    x = torch.rand(10, 2, 3)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="bptt_window"):
            run(LIFParams(), x, bptt_window=bad)
    whole = run(LIFParams(), x)
    assert torch.equal(run(LIFParams(), x, bptt_window=10).spikes, whole.spikes)
    assert torch.equal(run(LIFParams(), x, bptt_window=3).spikes, whole.spikes)


@pytest.mark.parametrize("kind", ["IF", "LIF"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_parameter_inference_path_is_bit_identical(kind, reset, dtype, monkeypatch) -> None:
    from deepspike.neurons.fused import cpu_numba

    calls = []
    original = cpu_numba.infer
    monkeypatch.setattr(cpu_numba, "infer", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setenv(ENV_VAR, "numba")
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(30, 4, 9, generator=g) * 0.9).to(dtype)
    model = _model(kind, reset, False, FastSigmoid(), 7.0, 1.0)
    state = model.initial_state(x[0])._replace(v=torch.rand(4, 9, generator=g).to(dtype))
    ref = step_loop(model, x, state)
    with torch.no_grad():
        got = model.multi_step(x, state)
    assert calls == [1]  # the lean path ran
    assert ref.spikes.sum() > 20
    assert torch.equal(got.spikes, ref.spikes) and got.spikes.dtype == dtype
    assert torch.equal(got.state.v, ref.state.v)
    x.requires_grad_()
    model.multi_step(x, state).spikes.sum().backward()  # a gradient: the general path
    assert calls == [1] and x.grad is not None


@pytest.mark.parametrize("adaptive", [False, True])
def test_numba_kernels_give_the_same_bits_for_any_block_width(adaptive) -> None:
    """Neurons are independent, so how the kernels split them into blocks (in cache: small
    blocks; beyond: all at once, :func:`cpu_numba.block_width`) must not change a bit."""
    import numpy as np

    from deepspike.neurons.fused import cpu_numba

    assert cpu_numba.block_width(10, 25_600) == cpu_numba.SMALL_BLOCK
    assert cpu_numba.block_width(25, 110_592) == 110_592
    assert cpu_numba.block_width(2, 3_000_000) == cpu_numba.MAX_BLOCK
    rng = np.random.default_rng(0)
    t, m = 7, 5_003
    f32 = np.float32
    x = (rng.standard_normal((t, m)) * 0.6 + 0.4).astype(f32)
    v0, beta, vth = rng.random(m).astype(f32), np.full(m, 0.9, f32), np.ones(m, f32)
    e0, e10 = np.empty(0, f32), np.empty((1, 0), f32)
    rho = np.full(m, 0.8, f32) if adaptive else e0
    badapt, gain, a0 = (rho * 2, 1 - rho, np.zeros(m, f32)) if adaptive else (e0, e0, e0)
    consts = np.array([0.0, 0.0, 1.0, 1.0, 5.0], f32)
    grad_s = rng.standard_normal((t, m)).astype(f32)
    outs = []
    for block in (37, cpu_numba.SMALL_BLOCK, m):
        spikes, h = np.empty((t, m), f32), np.empty((t, m), f32)
        v_out = np.empty((1, m), f32)
        a_out = np.empty((1, m if adaptive else 0), f32)
        theta = np.empty((t, m), f32) if adaptive else e10
        args = (x, v0, a0, beta, vth, badapt, rho, gain, consts[:3], 1, adaptive)
        cpu_numba.scan_forward(*args, spikes, v_out, a_out, h, theta, block)
        dv, da = np.zeros(m, f32), np.zeros(m if adaptive else 0, f32)
        grad_beta, grad_x = np.zeros(m, f32), np.empty((t, m), f32)
        cpu_numba.scan_backward(
            h, theta, e10, grad_s, e10, e10, v0, beta, vth, badapt, rho, gain, consts,
            1, adaptive, False, True, 0, t, dv, da, grad_beta, grad_x, block,
        )  # fmt: skip
        outs.append((spikes, v_out, a_out, grad_x, dv, da, grad_beta))
    assert outs[0][0].any() and not outs[0][0].all()
    for other in outs[1:]:
        for a, b in zip(outs[0], other, strict=True):
            assert np.array_equal(a, b)
