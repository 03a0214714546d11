"""Tests of deepspike.encoding: each encoder's defining property plus its input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepspike.encoding import (
    DoGFilter,
    GaborFilter,
    LatencyEncoder,
    PopulationEncoder,
    RankOrderEncoder,
    RateEncoder,
    delta,
    delta_reconstruct,
    dog_filter,
    dog_kernel,
    events_to_frames,
    events_to_frames_batch,
    gabor_filter,
    gabor_kernels,
    latency,
    peak_dog_kernel,
    poisson_rate_hz,
    population,
    population_centers,
    population_response,
    rank_order,
    rank_order_times,
    rate,
    spike_times,
)
from deepspike.errors import ConfigError, InputValueError, ShapeError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _first_step(spikes: torch.Tensor) -> torch.Tensor:
    """Index of the first spike along time, T where there is none."""
    T = spikes.shape[0]
    has = spikes.sum(0) > 0
    return torch.where(has, spikes.argmax(0), torch.full_like(has, T, dtype=torch.long))


# ----------------------------------------------------------------------------- rate


def test_rate_mean_matches_intensity_within_three_sigma():
    x = torch.tensor([[0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]])
    T = 4000
    s = rate(x, T, generator=_gen(1))
    assert s.shape == (T, 1, 7) and s.dtype == torch.float32
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    mean = s.mean(0)
    sigma = torch.sqrt(x * (1 - x) / T)
    assert torch.all((mean - x).abs() <= 3 * sigma + 1e-12)
    assert mean[0, 0] == 0 and mean[0, -1] == 1


def test_rate_max_rate_and_hz_scale_probability():
    x = torch.full((2, 3), 0.8)
    T = 5000
    s = rate(x, T, 0.5, generator=_gen(2))
    p = 0.4
    assert (s.mean(0) - p).abs().max() <= 3 * math.sqrt(p * (1 - p) / T)
    s = poisson_rate_hz(x, T, generator=_gen(3))  # 63.75 Hz at dt = 1 ms
    p = 0.8 * 63.75 / 1000
    assert (s.mean(0) - p).abs().max() <= 3 * math.sqrt(p * (1 - p) / T)
    s2 = rate(x, T, rate_hz=63.75, dt_ms=1.0, generator=_gen(3))
    assert torch.equal(s, s2)


def test_rate_is_deterministic_with_seeded_generator():
    x = torch.rand(4, 10, generator=_gen(0))
    a = rate(x, 50, generator=_gen(7))
    b = rate(x, 50, generator=_gen(7))
    c = rate(x, 50, generator=_gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    m = RateEncoder(50)
    assert torch.equal(m(x, generator=_gen(7)), a)


def test_rate_dtype_and_config_errors():
    x = torch.rand(2, 3, generator=_gen(0))
    assert rate(x, 3, dtype=torch.float64, generator=_gen(0)).dtype == torch.float64
    with pytest.raises(ConfigError):
        rate(x, 3, 1.5)
    with pytest.raises(ConfigError):
        rate(x, 3, rate_hz=2000.0, dt_ms=1.0)  # 2 spikes per step
    with pytest.raises(ConfigError):
        rate(x, 3, 0.5, rate_hz=10.0, dt_ms=1.0)
    with pytest.raises(ConfigError):
        rate(x, 3, rate_hz=10.0)
    with pytest.raises(ConfigError):
        rate(x, 3, dtype=torch.int64)


# ----------------------------------------------------------------------------- latency


def test_latency_linear_hand_computed():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    t = spike_times(x, 5)
    assert t[0, 0] == math.inf
    assert t[0, 1:].tolist() == [3.0, 2.0, 0.0]  # (T - 1)(1 - x) = 4 * (1 - x)
    s = latency(x, 5)
    expected = torch.zeros(5, 1, 4)
    expected[3, 0, 1] = expected[2, 0, 2] = expected[0, 0, 3] = 1
    assert torch.equal(s, expected)
    # unnormalized: t = tau (1 - x)
    t = spike_times(x, 10, tau=2.0, normalize=False)
    assert t[0, 1:].tolist() == [1.5, 1.0, 0.0]


def test_latency_brighter_spikes_earlier_and_once():
    x = torch.rand(8, 50, generator=_gen(4))
    x[:, :5] = 0.0
    for mode in ("linear", "log"):
        s = latency(x, 20, mode)
        assert s.shape == (20, 8, 50)
        assert torch.all(s.sum(0) <= 1)
        assert torch.all(s[:, :, :5] == 0)  # zero input never spikes
        first = _first_step(s)
        active = s.sum(0) > 0
        brighter = x.unsqueeze(-1) > x.unsqueeze(-2)  # [B, i, j]: x_i > x_j
        both = active.unsqueeze(-1) & active.unsqueeze(-2)
        later_or_same = first.unsqueeze(-1) <= first.unsqueeze(-2)
        assert torch.all(later_or_same | ~(brighter & both))
    # linear and normalized: every non-zero input spikes exactly once
    s = latency(x, 20)
    assert torch.equal(s.sum(0), (x > 0).float())


def test_latency_threshold_silences_dim_inputs():
    x = torch.tensor([[0.1, 0.2, 0.3, 0.9]])
    s = latency(x, 10, threshold=0.2)
    assert s.sum(0).tolist() == [[0.0, 0.0, 1.0, 1.0]]
    assert LatencyEncoder(10, threshold=0.2)(x).equal(s)


def test_latency_log_mode_monotone_and_rc_formula():
    x = torch.linspace(0.0, 1.0, 201)[None]
    t = spike_times(x, 100, "log")  # threshold 0.01 by default
    active = x[0] > 0.01
    assert torch.all(torch.isinf(t[0, ~active]))
    ta = t[0, active]
    assert torch.all(torch.isfinite(ta))
    assert torch.all(ta[1:] < ta[:-1])  # strictly earlier for brighter inputs
    assert ta[-1] == 0.0 and ta.max() <= 99
    steps = _first_step(latency(x, 100, "log"))[0, active]
    assert torch.all(steps[1:] <= steps[:-1])
    # RC charging without normalisation: t = tau * ln(x / (x - threshold))
    xs = torch.tensor([[0.5, 0.8]])
    t = spike_times(xs, 1000, "log", tau=10.0, threshold=0.25, normalize=False)
    assert torch.allclose(t, 10.0 * torch.log(xs / (xs - 0.25)).double())
    # spikes later than the window are dropped
    t = spike_times(
        torch.tensor([[0.2500001]]), 10, "log", tau=10.0, threshold=0.25, normalize=False
    )
    assert t.isinf().all()


# ----------------------------------------------------------------------------- rank order


def test_rank_order_follows_argsort_of_intensity():
    g = _gen(5)
    x = torch.rand(3, 12, generator=g)
    x[:, ::4] = 0.0
    s = rank_order(x)
    assert s.shape == (12, 3, 12)
    assert torch.equal(s.sum(0), (x > 0).float())  # once per non-zero, never for zero
    assert torch.all(s.sum((1, 2)) <= 3)  # at most one spike per sample per step
    times = rank_order_times(x)
    for b in range(3):
        active = torch.nonzero(x[b] > 0).flatten()
        by_time = active[torch.argsort(times[b, active])]
        by_value = active[torch.argsort(x[b, active], descending=True)]
        assert torch.equal(by_time, by_value)
        assert sorted(times[b, active].tolist()) == list(range(len(active)))
    assert torch.equal(RankOrderEncoder()(x), s)


def test_rank_order_bins_ranks_when_T_is_short():
    x = torch.tensor([[0.9, 0.1, 0.5, 0.7, 0.3, 0.0]])
    s = rank_order(x, T=2)
    assert s.shape == (2, 1, 6)
    assert s.sum(0).tolist() == [[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]]
    # 5 active ranks into 2 bins: floor(r * 2 / 5) = 0, 0, 0, 1, 1
    assert s[0, 0].tolist() == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    s_long = rank_order(x, T=8)
    assert _first_step(s_long)[0].tolist() == [0, 4, 2, 1, 3, 8]


def test_rank_order_validates():
    with pytest.raises(ShapeError):
        rank_order(torch.rand(5))
    with pytest.raises(InputValueError):
        rank_order(torch.tensor([[0.5, -0.1]]))


# ----------------------------------------------------------------------------- population


@settings(max_examples=60, deadline=None)
@given(
    value=st.floats(0.0, 1.0, allow_nan=False),
    n=st.integers(3, 16),
    layout=st.sampled_from(["uniform", "bohte"]),
)
def test_population_peak_is_nearest_center(value, n, layout):
    x = torch.tensor([[value]], dtype=torch.float64)
    a = population_response(x, n, layout=layout)[0, 0]
    centers = population_centers(n, layout=layout, dtype=torch.float64)
    dist = (centers - value).abs()
    nearest = int(torch.argmin(dist))
    assert a[nearest] == a.max()
    assert math.isclose(float(dist[int(torch.argmax(a))]), float(dist.min()), abs_tol=1e-12)
    s = population(x, n, 16, mode="latency", layout=layout)
    first = _first_step(s)[0, 0]
    assert first[nearest] == first.min()


def test_population_shapes_and_rate_mode():
    x = torch.rand(4, 3, 5, generator=_gen(6))
    s = population(x, 7, 12, generator=_gen(0))
    assert s.shape == (12, 4, 3, 5, 7)
    s = population(x, 7, 12, mode="latency")
    assert s.shape == (12, 4, 3, 5, 7) and torch.all(s.sum(0) == 1)
    # rate mode: the nearest centre fires most on average
    v = torch.tensor([[0.3]])
    counts = population(v, 5, 4000, generator=_gen(1)).sum(0)[0, 0]
    assert int(torch.argmax(counts)) == 1  # centres 0, .25, .5, .75, 1
    enc = PopulationEncoder(5, 10, x_min=-1.0, x_max=1.0, mode="latency")
    assert enc(torch.tensor([[-1.0, 0.0, 1.0]])).shape == (10, 1, 3, 5)
    with pytest.raises(InputValueError):
        population(torch.tensor([[1.5]]), 5, 10)
    with pytest.raises(ConfigError):
        population(v, 1, 10)
    with pytest.raises(ConfigError):
        population(v, 5, 10, x_min=1.0, x_max=0.0)
    with pytest.raises(ConfigError):
        population(v, 5, 10, mode="phase")


# ----------------------------------------------------------------------------- filters


def test_dog_kernel_is_balanced():
    k = dog_kernel(7, 1.0, 2.0, dtype=torch.float64)
    assert k.shape == (7, 7)
    assert abs(float(k.sum())) < 1e-12
    assert math.isclose(float(k[k > 0].sum()), 1.0, abs_tol=1e-12)
    assert math.isclose(float(k[k < 0].sum()), -1.0, abs_tol=1e-12)
    assert k[3, 3] == k.max()  # ON centre
    with pytest.raises(ConfigError):
        dog_kernel(6)
    with pytest.raises(ConfigError):
        dog_kernel(7, 2.0, 1.0)


def test_peak_dog_kernel_has_zero_mean_and_peak_one():
    on = peak_dog_kernel(7, 7 / 9, 14 / 9, dtype=torch.float64)
    off = peak_dog_kernel(7, 14 / 9, 7 / 9, dtype=torch.float64)
    for k in (on, off):
        assert abs(float(k.mean())) < 1e-15 and math.isclose(float(k.max()), 1.0)
    assert on[3, 3] == 1.0  # ON: the centre is the peak
    # OFF is the negated ON DoG (g_s - g_c), scaled to its own peak on the surround ring
    torch.testing.assert_close(off, -on / float(-on.min()))
    assert float(off[3, 3]) < -2.0  # so its centre weighs more than twice the ring's peak
    with pytest.raises(ConfigError, match="two widths"):
        peak_dog_kernel(7, 1.0, 1.0)


@pytest.mark.parametrize("padding_mode", ["replicate", "reflect", "circular"])
def test_dog_uniform_image_gives_zero_everywhere(padding_mode):
    images = torch.stack([torch.full((20, 24), v) for v in (0.0, 0.3, 1.0)])
    r = dog_filter(images, padding_mode=padding_mode)
    assert r.shape == (3, 2, 20, 24)
    assert torch.allclose(r, torch.zeros_like(r), atol=1e-6)


def test_dog_on_off_channels_respond_to_edges():
    img = torch.zeros(2, 1, 16, 16)
    img[:, :, :, 8:] = 1.0
    r = dog_filter(img)
    assert r.shape == (2, 2, 16, 16)
    assert torch.all(r >= 0)
    on, off = r[:, 0], r[:, 1]
    assert on[:, :, 8].min() > 0.1  # bright side of the edge
    assert off[:, :, 7].min() > 0.1  # dark side of the edge
    assert r.max() <= 1.0
    assert torch.allclose(DoGFilter()(img), r)
    bright_spot = torch.zeros(1, 9, 9)
    bright_spot[0, 4, 4] = 1.0
    r = dog_filter(bright_spot)
    assert r[0, 0, 4, 4] > 0 and r[0, 1, 4, 4] == 0


def test_gabor_kernels_zero_mean_unit_norm():
    k = gabor_kernels(7, 4, dtype=torch.float64)
    assert k.shape == (4, 7, 7)
    assert torch.allclose(k.sum((1, 2)), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(k.flatten(1).norm(dim=1), torch.ones(4, dtype=torch.float64))
    k8 = gabor_kernels(9, [math.pi / 8 + i * math.pi / 4 for i in range(4)], 4.6, 3.6)
    assert k8.shape == (4, 9, 9)


def test_gabor_orientation_selectivity():
    col = torch.arange(32.0)
    vertical = (0.5 + 0.5 * torch.cos(2 * math.pi * col / 3.5)).expand(32, 32)
    images = torch.stack([vertical, vertical.T])  # vertical stripes, horizontal stripes
    r = gabor_filter(images)  # angles 0, pi/4, pi/2, 3pi/4
    assert r.shape == (2, 4, 32, 32)
    energy = r[..., 6:-6, 6:-6].mean((2, 3))
    assert int(torch.argmax(energy[0])) == 0  # theta = 0 prefers vertical stripes
    assert int(torch.argmax(energy[1])) == 2
    assert energy[0, 0] > 5 * energy[0, 2]
    uniform = gabor_filter(torch.full((1, 16, 16), 0.6), rectify="none")
    assert torch.allclose(uniform, torch.zeros_like(uniform), atol=1e-6)
    assert torch.allclose(GaborFilter()(images), r)


def test_filters_validate_shape():
    with pytest.raises(ShapeError):
        dog_filter(torch.rand(2, 3, 8, 8))
    with pytest.raises(InputValueError):
        gabor_filter(torch.full((1, 8, 8), float("nan")))
    with pytest.raises(ConfigError):
        dog_filter(torch.rand(1, 2, 2), padding_mode="reflect")


# ----------------------------------------------------------------------------- delta


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_delta_reconstruction_tracks_sine_within_threshold(dtype):
    t = torch.linspace(0, 4 * math.pi, 2000, dtype=dtype)
    signal = torch.stack([torch.sin(t), 0.5 * torch.cos(3 * t)], dim=1)  # [T, B=2]
    theta = 0.05
    s = delta(signal, theta)
    assert s.shape == (2000, 2, 2)
    assert torch.all((s == 0) | (s == 1))
    assert torch.all(s.sum(-1) <= 1)  # never UP and DOWN at once
    rec = delta_reconstruct(s, theta, initial=signal[0])
    assert torch.all((rec - signal).abs() < theta)
    assert s[..., 0].sum() > 10 and s[..., 1].sum() > 10


def test_delta_constant_signal_emits_nothing():
    signal = torch.full((100, 3, 4), 0.7)
    assert delta(signal, 0.01).sum() == 0
    assert delta(signal, 0.01, initial=0.0)[..., 0].sum() > 0  # starts below: climbs up


def test_delta_up_only_and_slope_overload():
    ramp = torch.linspace(0, 1, 11)[:, None]  # rises 0.1 per step
    up = delta(ramp, 0.1, off_spike=False)
    assert up.shape == (11, 1, 1)
    jump = torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0])[:, None]
    s = delta(jump, 0.25)
    assert s[..., 0].flatten().tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]  # one spike per step
    with pytest.raises(ShapeError):
        delta(torch.rand(10), 0.1)
    with pytest.raises(ConfigError):
        delta(torch.rand(10, 1), 0.0)


# ----------------------------------------------------------------------------- events

_EV_DTYPE = [("x", "<u2"), ("y", "<u2"), ("p", "u1"), ("t", "<i8")]


def test_events_hand_built_land_in_right_cells():
    ev = np.array([(1, 2, 0, 100), (3, 4, 1, 150), (5, 6, 1, 299)], dtype=_EV_DTYPE)
    f = events_to_frames(ev, n_frames=2)  # window [100, 300): bins [100, 200), [200, 300)
    assert f.shape == (2, 2, 34, 34) and f.dtype == torch.float32
    assert f.sum() == 3
    assert f[0, 0, 2, 1] == 1  # [t, p, y, x]
    assert f[0, 1, 4, 3] == 1
    assert f[1, 1, 6, 5] == 1
    as_dict = {k: ev[k] for k in ("x", "y", "p", "t")}
    as_tuple = (ev["x"], ev["y"], ev["p"], ev["t"])
    assert torch.equal(events_to_frames(as_dict, n_frames=2), f)
    assert torch.equal(events_to_frames(as_tuple, n_frames=2), f)
    merged = events_to_frames(ev, bin_us=50, polarity=False)
    assert merged.shape == (4, 1, 34, 34)  # ceil(200 / 50)
    assert merged[0, 0, 2, 1] == merged[1, 0, 4, 3] == merged[3, 0, 6, 5] == 1


def test_events_counts_sum_to_number_in_window():
    rng = np.random.default_rng(0)
    n = 5000
    ev = np.zeros(n, dtype=_EV_DTYPE)
    ev["x"] = rng.integers(0, 34, n)
    ev["y"] = rng.integers(0, 34, n)
    ev["p"] = rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, 300_000, n))
    for kwargs in ({"n_frames": 7}, {"bin_us": 10_000}, {"n_frames": 1}):
        f = events_to_frames(ev, **kwargs)
        assert f.sum() == n
    f = events_to_frames(ev, n_frames=10, t_start=50_000, t_end=200_000)
    in_window = int(((ev["t"] >= 50_000) & (ev["t"] < 200_000)).sum())
    assert f.sum() == in_window
    assert f[:, 1].sum() == int(((ev["t"] >= 50_000) & (ev["t"] < 200_000) & (ev["p"] == 1)).sum())
    b = events_to_frames(ev, n_frames=10, mode="binary")
    assert set(b.unique().tolist()) <= {0.0, 1.0}


def test_events_batch_and_validation():
    ev = np.array([(1, 2, 0, 0), (3, 4, 1, 50), (5, 6, 1, 99)], dtype=_EV_DTYPE)
    out = events_to_frames_batch([ev, ev[:2]], bin_us=30)
    assert out.shape == (4, 2, 2, 34, 34)  # second recording padded from 2 to 4 frames
    assert out[:, 0].sum() == 3 and out[:, 1].sum() == 2 and out[2:, 1].sum() == 0
    out = events_to_frames_batch([ev, ev], n_frames=5, sensor_size=(34, 34, 2))
    assert out.shape == (5, 2, 2, 34, 34)
    with pytest.raises(ConfigError):
        events_to_frames(ev)
    with pytest.raises(ConfigError):
        events_to_frames(ev, n_frames=2, bin_us=10)
    with pytest.raises(InputValueError):
        events_to_frames(ev, n_frames=2, sensor_size=(4, 4))
    with pytest.raises(InputValueError):
        events_to_frames({"x": ev["x"], "y": ev["y"]}, n_frames=2)
    wide = np.array([(40, 1, 1, 0)], dtype=_EV_DTYPE)
    f = events_to_frames(wide, n_frames=1, sensor_size=(64, 8))  # (width, height)
    assert f.shape == (1, 2, 8, 64) and f[0, 1, 1, 40] == 1


# ----------------------------------------------------------------------------- errors

_UNIT_ENCODERS = {
    "rate": lambda x, T: rate(x, T, generator=_gen(0)),
    "poisson_rate_hz": lambda x, T: poisson_rate_hz(x, T, generator=_gen(0)),
    "latency": lambda x, T: latency(x, T),
    "latency_log": lambda x, T: latency(x, T, "log"),
    "population": lambda x, T: population(x, 4, T),
}


@pytest.mark.parametrize("name", [*_UNIT_ENCODERS, "rank_order"])
def test_nan_input_raises(name):
    x = torch.tensor([[0.5, float("nan")]])
    fn = _UNIT_ENCODERS.get(name, lambda x, T: rank_order(x, T))
    with pytest.raises(InputValueError, match="NaN"):
        fn(x, 5)


@pytest.mark.parametrize("name", list(_UNIT_ENCODERS))
@pytest.mark.parametrize("bad", [-0.1, 1.1])
def test_out_of_range_raises_with_hint(name, bad):
    x = torch.tensor([[0.5, bad]])
    with pytest.raises(InputValueError, match=r"outside \[0, 1\]"):
        _UNIT_ENCODERS[name](x, 5)


@pytest.mark.parametrize("name", [*_UNIT_ENCODERS, "rank_order"])
@pytest.mark.parametrize("T", [0, -3, 2.5, True])
def test_bad_T_raises_config_error(name, T):
    x = torch.tensor([[0.5, 0.2]])
    fn = _UNIT_ENCODERS.get(name, lambda x, T: rank_order(x, T))
    with pytest.raises(ConfigError):
        fn(x, T)


def test_bad_options_raise_config_error():
    x = torch.tensor([[0.5]])
    with pytest.raises(ConfigError):
        latency(x, 5, "cubic")
    with pytest.raises(ConfigError):
        latency(x, 5, "log", threshold=0.0)
    with pytest.raises(ConfigError):
        latency(x, 5, tau=-1.0, normalize=False)
    with pytest.raises(ConfigError):
        gabor_kernels(orientations=0)
    with pytest.raises(ConfigError):
        dog_filter(torch.rand(1, 8, 8), padding_mode="mirror")
