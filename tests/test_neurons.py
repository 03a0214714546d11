"""Tests of the neuron models: closed forms, reference integrations, multi-step equivalence."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepspike.errors import ConfigError, ShapeError
from deepspike.neurons import (
    ALIF,
    IF,
    IZHIKEVICH_PRESETS,
    LIF,
    SRM,
    ALIFParams,
    CubaLIF,
    CubaLIFParams,
    IFParams,
    Izhikevich,
    IzhikevichParams,
    LIFParams,
    Neuron,
    SRMParams,
    StochasticLIF,
    StochasticLIFParams,
    run,
    step_loop,
)

# --------------------------------------------------------------------------------------------
# Every model, with an input scale that makes it fire a fair amount.


def _stochastic() -> StochasticLIFParams:
    return StochasticLIFParams(generator=torch.Generator().manual_seed(1234))


MODELS: dict[str, tuple[Callable[[], object], float]] = {
    "IF": (lambda: IFParams(), 0.6),
    "IF-zero": (lambda: IFParams(reset="zero", v_reset=-0.1), 0.6),
    "LIF": (lambda: LIFParams(tau_mem=5.0), 0.8),
    "LIF-ref": (lambda: LIFParams(tau_mem=5.0, t_ref=2.0, reset="zero"), 0.8),
    "LIF-tensor-tau": (lambda: LIFParams(tau_mem=torch.linspace(2.0, 20.0, 5)), 0.8),
    "CubaLIF": (lambda: CubaLIFParams(tau_syn=3.0, tau_mem=8.0), 0.3),
    "ALIF": (lambda: ALIFParams(tau_adapt=30.0, beta_adapt=3.0), 0.8),
    "ALIF-zero": (lambda: ALIFParams(reset="zero", detach_reset=True), 0.8),
    "SRM": (lambda: SRMParams(kernel_steps=20), 0.6),
    "SRM-tensor-tau": (lambda: SRMParams(tau_mem=torch.linspace(4.0, 12.0, 5)), 0.6),
    "Izhikevich-RS": (lambda: IzhikevichParams(), 25.0),
    "Izhikevich-CH": (lambda: IzhikevichParams.preset("CH", dt=1.0, substeps=3), 25.0),
    "StochasticLIF": (_stochastic, 0.6),
}


def _inputs(scale: float, T: int = 60, shape: tuple[int, ...] = (3, 5), seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((T, *shape), generator=gen) * scale


def _is_srm(name: str) -> bool:
    return name.startswith("SRM")


def _assert_states(a, b, exact: bool) -> None:
    assert type(a) is type(b)
    for fa, fb in zip(a, b, strict=True):
        if exact:
            assert torch.equal(fa, fb)
        else:
            torch.testing.assert_close(fa, fb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_multi_step_equals_step_loop(name: str) -> None:
    make, scale = MODELS[name]
    x = _inputs(scale)
    ref = step_loop(make(), x, record=True)
    got = run(make(), x, record=True)
    assert ref.spikes.sum() > 0, "the test input should make the model fire"
    assert torch.equal(got.spikes, ref.spikes)
    _assert_states(got.state, ref.state, exact=not _is_srm(name))
    _assert_states(got.trace, ref.trace, exact=not _is_srm(name))
    # Continuing from a carried state is the same as one long run.
    first = run(make(), x[:25])
    model = make()
    if isinstance(model, StochasticLIFParams):  # same random stream as the first run
        model = _stochastic()
        run(model, x[:25])
    second = run(model, x[25:], first.state)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), ref.spikes)
    _assert_states(second.state, ref.state, exact=not _is_srm(name))


@pytest.mark.parametrize("name", list(MODELS))
def test_module_path_equals_step_loop(name: str) -> None:
    make, scale = MODELS[name]
    x = _inputs(scale)
    ref = step_loop(make(), x, record=True)
    assert torch.equal(Neuron(make())(x), ref.spikes)
    membrane = Neuron(make(), output="membrane")(x)
    if _is_srm(name):
        torch.testing.assert_close(membrane, ref.trace.v, rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(membrane, ref.trace.v)
    streaming = Neuron(make(), stateful=True)
    out = torch.cat([streaming(x[:30]), streaming(x[30:])])
    assert torch.equal(out, ref.spikes)
    _assert_states(streaming.state, ref.state, exact=not _is_srm(name))
    streaming.reset()
    assert streaming.state is None


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_flow_to_the_input(name: str) -> None:
    make, scale = MODELS[name]
    x = _inputs(scale, T=40).requires_grad_()
    run(make(), x).spikes.sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_srm_gradients_of_both_paths_agree() -> None:
    x = _inputs(0.6, T=40, shape=(2, 4)).double().requires_grad_()
    model = SRMParams(kernel_steps=15)
    run(model, x).spikes.sum().backward()
    g_fused = x.grad.clone()
    x.grad = None
    step_loop(model, x).spikes.sum().backward()
    torch.testing.assert_close(g_fused, x.grad)


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (lambda: Neuron(LIFParams(), learn_tau=True, shape=(4,)), (4,)),
        (lambda: CubaLIF(learn_tau=True, shape=(4,)), (4,)),
        (lambda: ALIF(learn_tau=True, shape=(4,)), (4,)),
        (lambda: SRM(learn_tau=True, shape=(4,), kernel_steps=20), (4,)),
        (lambda: StochasticLIF(learn_tau=True, shape=(4,)), (4,)),
    ],
)
def test_learnable_tau_gets_a_gradient(layer, shape) -> None:
    neuron = layer()
    x = _inputs(0.7, T=30, shape=(3, *shape), seed=3)
    neuron(x).sum().backward()
    assert neuron.tau_mem.shape == shape
    assert neuron.tau_mem.grad is not None
    assert torch.isfinite(neuron.tau_mem.grad).all()
    assert neuron.tau_mem.grad.abs().sum() > 0


def test_learn_tau_needs_tau_mem_and_shape() -> None:
    with pytest.raises(ConfigError):
        Neuron(IzhikevichParams(), learn_tau=True, shape=(3,))
    with pytest.raises(ConfigError):
        Neuron(LIFParams(), learn_tau=True)


# --------------------------------------------------------------------------------------------
# LIF and IF: closed forms.


@pytest.mark.parametrize(
    ("tau", "ri", "t_ref"),
    [(10.0, 1.5, 0.0), (20.0, 1.2, 2.0), (5.0, 3.0, 1.0), (10.0, 1.05, 0.5), (15.0, 8.0, 3.0)],
)
def test_lif_fires_at_the_closed_form_rate(tau: float, ri: float, t_ref: float) -> None:
    dt, theta = 0.1, 1.0
    model = LIFParams(tau_mem=tau, dt=dt, v_th=theta, reset="zero", t_ref=t_ref)
    analytic = t_ref + tau * math.log(ri / (ri - theta))
    n_steps = int(6 * analytic / dt) + 10
    x = torch.full((n_steps, 1), (1.0 - model.beta) * ri, dtype=torch.float64)
    spikes = run(model, x).spikes.squeeze(1)
    steps = torch.nonzero(spikes).squeeze(1).double()
    assert len(steps) >= 4
    times = (steps + 1.0) * dt  # step i ends at time (i + 1) dt
    first = times[0].item()  # from rest, without a preceding refractory period
    assert analytic - t_ref - 1e-9 <= first <= analytic - t_ref + dt + 1e-9
    isi = torch.diff(times)
    assert (isi >= analytic - 1e-9).all(), (isi, analytic)
    assert (isi <= analytic + dt + 1e-9).all(), (isi, analytic)
    # measured rate vs 1 / (t_ref + tau ln(RI / (RI - theta)))
    rate = 1.0 / isi.mean().item()
    assert 1.0 / (analytic + dt) - 1e-9 <= rate <= 1.0 / analytic + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=64), min_size=1, max_size=120),
    threshold=st.integers(min_value=64, max_value=256),
)
def test_if_subtract_emits_floor_of_total_over_threshold(counts: list[int], threshold: int) -> None:
    # Dyadic inputs k/64 and threshold m/64 are exact in float64, so exact multiples of the
    # threshold are tested too (H(0) = 1 makes v = threshold fire). Each input is at most the
    # threshold, so one spike per step suffices.
    x = torch.tensor(counts, dtype=torch.float64).reshape(-1, 1) / 64.0
    model = IFParams(v_th=threshold / 64.0, reset="subtract")
    result = run(model, x)
    assert int(result.spikes.sum()) == sum(counts) // threshold
    assert float(result.state.v) == (sum(counts) % threshold) / 64.0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), theta=st.floats(0.3, 3.0))
def test_if_subtract_float_inputs(seed: int, theta: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((200, 4), generator=gen, dtype=torch.float64) * theta
    total = x.sum(0) / theta
    far_from_multiple = (total - total.round()).abs() > 1e-9
    spikes = run(IFParams(v_th=theta), x).spikes.sum(0)
    expected = torch.floor(total)
    assert torch.equal(spikes[far_from_multiple], expected[far_from_multiple])


def test_lif_refractory_period_is_respected() -> None:
    dt, t_ref = 0.5, 3.0
    model = LIFParams(tau_mem=5.0, dt=dt, t_ref=t_ref, reset="zero")
    x = _inputs(1.5, T=400, shape=(16,), seed=7)  # strong input: would fire every step
    spikes = run(model, x).spikes
    assert spikes.sum() > 50
    for column in spikes.t():
        steps = torch.nonzero(column).squeeze(1)
        gaps = torch.diff(steps).double() * dt
        assert (gaps > t_ref).all()
    # Without the refractory period the same input fires within t_ref of a spike.
    free = run(LIFParams(tau_mem=5.0, dt=dt, reset="zero"), x).spikes
    assert free.sum() > spikes.sum()


def test_lif_and_if_validation() -> None:
    with pytest.raises(ConfigError):
        LIFParams(reset="bogus")
    with pytest.raises(ConfigError):
        LIFParams(tau_mem=-1.0)
    with pytest.raises(ShapeError):
        run(LIFParams(), torch.ones(5))


# --------------------------------------------------------------------------------------------
# Current-based LIF.


def test_cuba_lif_subthreshold_response() -> None:
    model = CubaLIFParams(tau_syn=4.0, tau_mem=9.0, v_th=1e9)
    x = torch.zeros(300, 1, dtype=torch.float64)
    x[0] = 1.0
    trace = run(model, x, record=True).trace
    t = torch.arange(300, dtype=torch.float64)
    a, b = model.alpha, model.beta
    torch.testing.assert_close(trace.i[:, 0], a**t)
    # impulse response of the two cascaded filters: sum_j a^j b^(t-j)
    torch.testing.assert_close(trace.v[:, 0], (a ** (t + 1) - b ** (t + 1)) / (a - b))
    # constant drive: steady state x / ((1 - a)(1 - b))
    steady = run(model, torch.full((2000, 1), 0.01, dtype=torch.float64)).state.v
    torch.testing.assert_close(steady, torch.full_like(steady, 0.01 / ((1 - a) * (1 - b))))


def test_cuba_lif_validation() -> None:
    with pytest.raises(ConfigError):
        CubaLIFParams(tau_syn=0.0)
    with pytest.raises(ConfigError):
        CubaLIFParams(dt=-1.0)


# --------------------------------------------------------------------------------------------
# ALIF.


def test_alif_threshold_rises_and_rate_adapts() -> None:
    model = ALIFParams(tau_mem=20.0, tau_adapt=100.0, beta_adapt=5.0)
    x = torch.full((600, 1), 0.15)
    result = run(model, x, record=True)
    spikes = result.spikes[:, 0]
    steps = torch.nonzero(spikes).squeeze(1)
    assert len(steps) >= 5
    theta = model.threshold(result.trace.a[:, 0])
    for k in steps[:-1].tolist():
        assert theta[k] > theta[k - 1] if k > 0 else theta[k] > model.v_th
    isi = torch.diff(steps)
    # Intervals lengthen under constant drive (up to one step of discretisation jitter).
    assert (torch.diff(isi) >= -1).all(), isi
    assert isi[-10:].double().mean() >= isi[:3].double().mean() + 2, isi
    assert theta[-1] > model.v_th + 0.1
    # With no adaptation the same neuron fires regularly and more often.
    plain = run(ALIFParams(tau_mem=20.0, beta_adapt=0.0), x).spikes
    assert plain.sum() > spikes.sum()
    plain_isi = torch.diff(torch.nonzero(plain[:, 0]).squeeze(1))
    assert plain_isi.max() - plain_isi.min() <= 1


def test_alif_matches_lif_without_adaptation() -> None:
    x = _inputs(0.8, T=80, seed=5)
    alif = run(ALIFParams(tau_mem=7.0, beta_adapt=0.0), x)
    lif = run(LIFParams(tau_mem=7.0), x)
    assert torch.equal(alif.spikes, lif.spikes)


# --------------------------------------------------------------------------------------------
# SRM.


def test_srm_kernel_and_impulse_response() -> None:
    model = SRMParams(tau_mem=10.0, tau_syn=2.5, kernel_steps=60, v_th=1e9)
    eps = model.kernel(torch.float64)
    assert eps.shape == (60,)
    assert eps[0] == 0.0
    assert eps.max() == 1.0
    x = torch.zeros(80, 1, dtype=torch.float64)
    x[0] = 1.0
    v = run(model, x, record=True).trace.v[:, 0]
    torch.testing.assert_close(v[:60], eps)
    assert (v[60:] == 0).all()  # truncated kernel
    # tau_syn > tau_mem gives the same (positive) kernel shape
    swapped = SRMParams(tau_mem=2.5, tau_syn=10.0, kernel_steps=60).kernel(torch.float64)
    torch.testing.assert_close(swapped, eps)


def test_srm_refractory_kernel_follows_each_spike() -> None:
    eta, tau_ref = 0.7, 4.0
    model = SRMParams(eta=eta, tau_ref=tau_ref, kernel_steps=30)
    x = _inputs(0.5, T=100, shape=(1,), seed=2).double()
    result = run(model, x, record=True)
    spikes = result.spikes[:, 0]
    assert spikes.sum() >= 2
    psp = run(SRMParams(eta=0.0, kernel_steps=30, v_th=1e9), x, record=True).trace.v[:, 0]
    t = torch.arange(100, dtype=torch.float64)
    refractory = torch.zeros(100, dtype=torch.float64)
    for t_f in torch.nonzero(spikes).squeeze(1).tolist():
        after = t > t_f
        refractory[after] -= eta * torch.exp(-(t[after] - t_f) / tau_ref)
    torch.testing.assert_close(result.trace.v[:, 0], psp + refractory)


def test_srm_validation() -> None:
    for bad in (
        {"kernel_steps": 1},
        {"tau_mem": 3.0, "tau_syn": 3.0},
        {"eta": -1.0},
        {"tau_ref": 0.0},
    ):
        with pytest.raises(ConfigError):
            SRMParams(**bad)


# --------------------------------------------------------------------------------------------
# Izhikevich, against an independent fine-resolution integration.


@cache
def _izhikevich_reference(
    a: float, b: float, c: float, d: float, current: float, t_max: float = 1000.0
) -> np.ndarray:
    """Spike times (ms) by forward Euler at 0.005 ms with the paper's reset rule."""
    h = 0.005
    v, u = -65.0, b * -65.0
    times = []
    for k in range(round(t_max / h)):
        v, u = v + h * (0.04 * v * v + 5.0 * v + 140.0 - u + current), u + h * a * (b * v - u)
        if v >= 30.0:
            times.append((k + 1) * h)
            v, u = c, u + d
    return np.array(times)


def _spike_times(model: IzhikevichParams, current: float, t_max: float = 1000.0):
    x = torch.full((round(t_max / model.dt), 1), current, dtype=torch.float64)
    spikes = run(model, x).spikes[:, 0]
    return (torch.nonzero(spikes).squeeze(1).double().numpy() + 1.0) * model.dt


def test_izhikevich_regular_spiking_rate_matches_reference() -> None:
    ref = _izhikevich_reference(*IZHIKEVICH_PRESETS["RS"], 10.0)
    got = _spike_times(IzhikevichParams.preset("RS"), 10.0)
    assert len(ref) > 10
    assert abs(len(got) - len(ref)) <= 0.05 * len(ref)
    ref_isi = np.diff(ref[ref > 200.0])
    got_isi = np.diff(got[got > 200.0])
    assert abs(got_isi.mean() - ref_isi.mean()) <= 0.05 * ref_isi.mean()
    assert got_isi.std() / got_isi.mean() < 0.05  # tonic


def test_izhikevich_fast_spiking_is_faster_and_bursters_burst() -> None:
    names = ["RS", "FS", "IB", "CH"]
    a, b, c, d = (
        torch.tensor(p, dtype=torch.float64)
        for p in zip(*(IZHIKEVICH_PRESETS[n] for n in names), strict=True)
    )
    model = IzhikevichParams(a=a, b=b, c=c, d=d)
    x = torch.full((1000, len(names)), 10.0, dtype=torch.float64)  # 500 ms
    spikes = run(model, x).spikes
    isi = {n: np.diff(np.nonzero(spikes[:, i].numpy())[0]) * model.dt for i, n in enumerate(names)}
    assert len(isi["FS"]) > 2 * len(isi["RS"]) > 0
    # tonic RS: no interval much shorter than the longest one
    assert isi["RS"].min() > 0.3 * isi["RS"].max()
    # IB: an initial burst, then longer intervals; CH: repeated bursts
    for name in ("IB", "CH"):
        assert isi[name].min() < 0.2 * isi[name].max(), (name, isi[name])
    long_gaps = isi["CH"] > 5 * isi["CH"].min()
    assert long_gaps.sum() >= 3  # several bursts separated by pauses
    assert (~long_gaps).sum() >= 2 * long_gaps.sum()  # several spikes per burst


def test_izhikevich_presets_and_validation() -> None:
    assert set(IZHIKEVICH_PRESETS) == {"RS", "IB", "CH", "FS", "LTS", "TC", "RZ"}
    fs = IzhikevichParams.preset("fs", dt=0.25)
    assert (fs.a, fs.b, fs.c, fs.d, fs.dt) == (0.1, 0.2, -65.0, 2.0, 0.25)
    with pytest.raises(ConfigError):
        IzhikevichParams.preset("XX")
    with pytest.raises(ConfigError):
        IzhikevichParams.preset("RS", a=0.1)
    with pytest.raises(ConfigError):
        IzhikevichParams(substeps=0)
    with pytest.raises(ConfigError):
        IzhikevichParams(dt=0.0)


def test_izhikevich_resting_state_is_quiet() -> None:
    model = IzhikevichParams()
    result = run(model, torch.zeros(400, 2))
    assert result.spikes.sum() == 0
    assert result.state.v.min() > -75 and result.state.v.max() < -55


# --------------------------------------------------------------------------------------------
# Stochastic LIF.


@pytest.mark.parametrize("v0", [0.7, 0.9, 1.0, 1.15])
def test_stochastic_lif_spike_probability(v0: float) -> None:
    n = 100_000
    model = StochasticLIFParams(
        delta_u=0.2, rho0=0.5, dt=1.0, generator=torch.Generator().manual_seed(int(v0 * 100))
    )
    p = 1.0 - math.exp(-1.0 * 0.5 * math.exp((v0 - 1.0) / 0.2))
    assert model.firing_probability(torch.tensor(v0, dtype=torch.float64)).item() == pytest.approx(
        p, rel=1e-12
    )
    x = torch.full((n,), v0, dtype=torch.float64)  # from v = 0 the membrane is exactly v0
    s, _ = model.step(x, model.initial_state(x))
    count = float(s.sum())
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= 3 * sigma


def test_stochastic_lif_is_deterministic_given_the_seed() -> None:
    x = _inputs(0.6, T=100, shape=(8, 4), seed=11)
    a = run(StochasticLIFParams(generator=torch.Generator().manual_seed(5)), x).spikes
    b = run(StochasticLIFParams(generator=torch.Generator().manual_seed(5)), x).spikes
    c = run(StochasticLIFParams(generator=torch.Generator().manual_seed(6)), x).spikes
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}


def test_stochastic_lif_backward_is_dp_dv() -> None:
    model = StochasticLIFParams(delta_u=0.25, rho0=0.3, generator=torch.Generator().manual_seed(0))
    x = torch.linspace(0.0, 2.0, 41, dtype=torch.float64).requires_grad_()
    s, _ = model.step(x, model.initial_state(x))
    s.sum().backward()
    hazard = 0.3 * torch.exp((x.detach() - 1.0) / 0.25)
    expected = hazard / 0.25 * torch.exp(-hazard)
    torch.testing.assert_close(x.grad, expected)
    # saturated far above threshold: no overflow, no NaN
    y = torch.tensor([1e4], requires_grad=True)
    s, _ = model.step(y, model.initial_state(y))
    s.sum().backward()
    assert s.item() == 1.0 and torch.isfinite(y.grad).all()


def test_stochastic_lif_validation() -> None:
    with pytest.raises(ConfigError):
        StochasticLIFParams(delta_u=0.0)
    with pytest.raises(ConfigError):
        StochasticLIFParams(rho0=-1.0)


# --------------------------------------------------------------------------------------------
# Layer conveniences.


@pytest.mark.parametrize(
    ("factory", "params_type", "kw"),
    [
        (IF, IFParams, {"v_th": 2.0}),
        (LIF, LIFParams, {"tau_mem": 5.0}),
        (CubaLIF, CubaLIFParams, {"tau_syn": 2.0}),
        (ALIF, ALIFParams, {"beta_adapt": 1.0}),
        (SRM, SRMParams, {"kernel_steps": 10}),
        (StochasticLIF, StochasticLIFParams, {"delta_u": 0.3}),
        (Izhikevich, IzhikevichParams, {"d": 4.0}),
    ],
)
def test_layer_conveniences(factory, params_type, kw) -> None:
    layer = factory(output="membrane", stateful=True, **kw)
    assert isinstance(layer, Neuron)
    assert isinstance(layer.model, params_type)
    assert layer.output == "membrane" and layer.stateful
    for key, value in kw.items():
        assert getattr(layer.model, key) == value
    assert layer(torch.rand(5, 2, 3)).shape == (5, 2, 3)
    with pytest.raises(ConfigError):
        factory(not_an_option=1)


def test_izhikevich_convenience_with_preset() -> None:
    layer = Izhikevich("CH", dt=1.0)
    assert (layer.model.c, layer.model.d, layer.model.dt) == (-50.0, 2.0, 1.0)


def test_neuron_module_truncates_bptt_through_its_window():
    from deepspike.neurons import LIFParams, Neuron

    x = torch.rand(6, 2, 3, requires_grad=True)
    layer = Neuron(LIFParams(tau_mem=20.0), output="membrane", bptt_window=3)
    layer(x)[-1].sum().backward()
    assert torch.all(x.grad[:3] == 0) and torch.any(x.grad[3:] != 0)


# --------------------------------------------------------------------------- conductance-based LIF


def test_coba_membrane_leaks_exactly_without_input() -> None:
    from deepspike.neurons import CobaLIFParams

    model = CobaLIFParams(tau_mem=50.0, v_th=100.0, t_ref=0.0)
    state = model.initial_state(torch.zeros(1, 1, dtype=torch.float64))._replace(
        v=torch.full((1, 1), 10.0, dtype=torch.float64)
    )
    for t in range(1, 6):
        _, state = model.step(torch.zeros(1, 1, dtype=torch.float64), state)
        assert state.v.item() == pytest.approx(10.0 * math.exp(-t / 50.0), rel=1e-12)


def test_coba_steady_state_of_a_constant_conductance_input() -> None:
    r"""An increment :math:`x` every step holds the mean conductance at :math:`x\tau_e/\Delta t`,
    so :math:`v \to m E_e / (1 + m)` with :math:`m = x\tau_e/\Delta t`."""
    from deepspike.neurons import CobaLIFParams

    model = CobaLIFParams(tau_mem=20.0, tau_exc=3.0, v_th=1e9, t_ref=0.0)
    x = torch.full((1, 1), 0.1, dtype=torch.float64)
    state = model.initial_state(x)
    for _ in range(2000):
        _, state = model.step(x, state)
    m = 0.1 * 3.0
    assert state.v.item() == pytest.approx(m * 65.0 / (1 + m), rel=1e-9)


@pytest.mark.parametrize(("drive", "bound"), [("g_inh", -35.0), ("g_exc", 65.0)])
def test_coba_conductances_cannot_drive_past_their_reversal_potential(drive, bound) -> None:
    from deepspike.neurons import CobaLIFParams

    model = CobaLIFParams(v_th=1e9, t_ref=0.0)
    state = model.initial_state(torch.zeros(1, 1, dtype=torch.float64))
    path = []
    for _ in range(20):
        state = state._replace(**{drive: getattr(state, drive) + 1e4})  # huge conductance
        _, state = model.step(torch.zeros(1, 1, dtype=torch.float64), state)
        path.append(state.v.item())
    assert min(path) >= min(bound, 0.0) and max(path) <= max(bound, 0.0)
    assert path[-1] == pytest.approx(bound, rel=1e-3)  # v_inf = m E / (1 + m), m ~ 1e5


def test_coba_spike_resets_and_holds_the_membrane_while_refractory() -> None:
    from deepspike.neurons import CobaLIFParams

    model = CobaLIFParams(v_th=5.0, v_reset=-2.0, t_ref=3.0)
    x = torch.full((1, 1), 1.0)
    state, spikes, membrane = model.initial_state(x), [], []
    for _ in range(30):
        s, state = model.step(x, state)
        spikes.append(s.item())
        membrane.append(state.v.item())
    first = spikes.index(1.0)
    assert membrane[first : first + 4] == [-2.0] * 4  # the spike's step and 3 refractory steps
    assert membrane[first + 4] > -2.0


def _constant_drive(model, steps: int = 60) -> tuple[list[int], list[float]]:
    """Spike steps and membrane of one conductance-based neuron under a constant input."""
    x = torch.full((1, 1), 5.0)
    state, times, membrane = model.initial_state(x), [], []
    for t in range(steps):
        s, state = model.step(x, state)
        times += [t] if s.item() else []
        membrane.append(state.v.item())
    return times, membrane


def test_coba_refire_interval_spaces_spikes_but_lets_the_membrane_integrate() -> None:
    """With ``t_refire`` 12 and ``t_ref`` 3 (ms, dt 1): the membrane is held for 3 steps after
    a spike, then integrates and crosses the threshold, yet the next spike comes only 13 steps
    after the last (Diehl & Cook's timer: no spike until ``t_refire`` has passed)."""
    from deepspike.neurons import CobaLIFParams

    model = CobaLIFParams(v_th=5.0, v_reset=-2.0, t_ref=3.0, t_refire=12.0)
    times, membrane = _constant_drive(model)
    assert len(times) >= 3 and {b - a for a, b in itertools.pairwise(times)} == {13}
    first = times[0]
    assert membrane[first : first + 4] == [-2.0] * 4  # the spike's step and 3 held steps
    assert max(membrane[first + 4 : first + 13]) >= 5.0  # above threshold, yet no spike
    free, _ = _constant_drive(CobaLIFParams(v_th=5.0, v_reset=-2.0, t_ref=3.0))
    assert free[1] - free[0] < 13  # without the interval it fires sooner


def test_coba_rejects_reversal_potentials_on_the_wrong_side_of_rest() -> None:
    from deepspike.neurons import CobaLIFParams

    with pytest.raises(ConfigError, match="e_inh <= 0 <= e_exc"):
        CobaLIFParams(e_inh=10.0)
    with pytest.raises(ConfigError, match="tau_exc"):
        CobaLIFParams(tau_exc=0.0)
