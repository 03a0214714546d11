"""Event-driven inference in deepspike.layers.Linear: same result as the dense GEMM."""

from __future__ import annotations

import pytest
import torch

from deepspike.errors import ConfigError
from deepspike.layers import Linear, synapse
from deepspike.neurons import LIFParams, run


@pytest.fixture(autouse=True)
def small_layers_are_event_driven(monkeypatch) -> None:
    """These tests use small layers, which stay dense by default (EVENT_MIN_SYNAPSES)."""
    monkeypatch.setattr(synapse, "EVENT_MIN_SYNAPSES", 0)


@pytest.fixture
def event_calls(monkeypatch) -> list[int]:
    """Counts the outputs computed by the event path (a spy around ``event_linear``)."""
    calls: list[int] = []
    original = synapse.event_linear

    def spy(*args, **kwargs):
        y = original(*args, **kwargs)
        if y is not None:
            calls.append(1)
        return y

    monkeypatch.setattr(synapse, "event_linear", spy)
    return calls


def _spikes(t: int, b: int, n: int, activity: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, n, generator=gen) < activity).float()


def _dyadic_layer(n_in: int, n_out: int, seed: int) -> Linear:
    """Weights and biases on a grid of 2**-10 in [-1, 1): every partial sum of at most 2**13
    terms is exact in float32, so the dense and the event path agree bit for bit."""
    layer = Linear(n_in, n_out, event_threshold=1.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-1024, 1024, (n_out, n_in), generator=gen) / 1024)
        layer.bias.copy_(torch.randint(-1024, 1024, (n_out,), generator=gen) / 1024)
    return layer


@pytest.mark.parametrize("batch", [1, 128])
@pytest.mark.parametrize("activity", [0.01, 0.05, 0.2])
def test_event_path_equals_dense(batch: int, activity: float, event_calls) -> None:
    torch.manual_seed(0)
    layer = Linear(784, 800, event_threshold=1.0)
    x = _spikes(5, batch, 784, activity, seed=batch)
    with torch.no_grad():
        events = layer(x)
        assert len(event_calls) == 1
        dense = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert events.shape == dense.shape == (5, batch, 800)
    # Same sums in another order: float32 rounding differences only.
    torch.testing.assert_close(events, dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 128])
@pytest.mark.parametrize("activity", [0.01, 0.05, 0.2])
def test_event_path_gives_identical_downstream_spikes(
    batch: int, activity: float, event_calls
) -> None:
    layer = _dyadic_layer(784, 300, seed=3)
    x = _spikes(6, batch, 784, activity, seed=7)
    with torch.no_grad():
        events = layer(x)
        layer.event_threshold = 0.0
        dense = layer(x)
    assert len(event_calls) == 1
    assert torch.equal(events, dense)
    model = LIFParams(tau_mem=5.0, v_th=2.0)
    a, b = run(model, events), run(model, dense)
    assert a.spikes.sum() > 0
    assert torch.equal(a.spikes, b.spikes)


def test_dense_path_when_the_event_path_does_not_apply(event_calls) -> None:
    torch.manual_seed(1)
    layer = Linear(50, 20)  # default threshold
    sparse = _spikes(4, 3, 50, 0.02, seed=1)
    busy = _spikes(4, 3, 50, 0.5, seed=2)
    graded = sparse * 0.5
    layer(sparse)  # gradients needed (the weights require grad)
    with torch.no_grad():
        layer(busy)  # above the threshold
        layer(graded)  # not binary
        with pytest.raises(RuntimeError):  # a dtype mismatch fails as in torch, not silently
            layer(sparse.double())
    assert event_calls == []
    with torch.no_grad():
        layer(sparse)
    assert len(event_calls) == 1
    with torch.inference_mode():
        layer(sparse)
    assert len(event_calls) == 2
    off = Linear(50, 20, event_threshold=0.0)
    with torch.no_grad():
        off(sparse)
    assert len(event_calls) == 2


def test_frozen_weights_use_the_event_path_with_grad_mode_on(event_calls) -> None:
    layer = Linear(40, 10).requires_grad_(False)
    x = _spikes(3, 2, 40, 0.03, seed=4)
    y = layer(x)
    assert len(event_calls) == 1
    torch.testing.assert_close(y, torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_rows_without_events_get_the_bias_and_no_bias_works() -> None:
    x = torch.zeros(2, 3, 30)
    x[0, 1, 4] = 1.0
    for bias in (True, False):
        layer = Linear(30, 7, bias=bias, event_threshold=1.0)
        with torch.no_grad():
            y = layer(x)
            expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
        torch.testing.assert_close(y, expected)
    with torch.no_grad():
        assert Linear(30, 7, event_threshold=1.0)(torch.zeros(2, 0, 30)).shape == (2, 0, 7)


def test_cached_transpose_follows_weight_updates() -> None:
    torch.manual_seed(2)
    layer = Linear(60, 9, event_threshold=1.0)
    x = _spikes(4, 2, 60, 0.1, seed=5)

    def check() -> None:
        with torch.no_grad():
            torch.testing.assert_close(
                layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias)
            )

    check()
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer.weight.grad = torch.randn_like(layer.weight)
    optimiser.step()  # in place: bumps the version counter
    check()
    with torch.no_grad():
        layer.weight.mul_(-1.0)
    check()
    layer.load_state_dict({"weight": torch.randn(9, 60), "bias": torch.randn(9)})
    check()
    layer.weight = torch.nn.Parameter(torch.randn(9, 60))  # a new tensor
    check()
    layer.weight.data.add_(1.0)  # .data bypasses the version counter ...
    layer.clear_event_cache()  # ... so it needs an explicit refresh
    check()
    layer.double()
    x = x.double()
    check()


def test_event_threshold_validation() -> None:
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="event_threshold"):
            Linear(3, 2, event_threshold=bad)
    assert Linear(3, 2).event_threshold == synapse.EVENT_THRESHOLD


@pytest.mark.parametrize("compiled", [False, True])
def test_accumulate_spikes_kernel_status_codes(compiled: bool) -> None:
    from deepspike.layers import event_kernels

    kernel = event_kernels.accumulate_spikes
    kernel = kernel if compiled else kernel.py_func
    gen = torch.Generator().manual_seed(6)
    table = torch.randn(12, 5, generator=gen, dtype=torch.float64).numpy()
    bias = torch.randn(5, generator=gen, dtype=torch.float64).numpy()
    x = torch.zeros(3, 12, dtype=torch.float64)
    x[0, [1, 4]] = 1.0
    x[2, 11] = 1.0
    y = torch.empty(3, 5, dtype=torch.float64)
    assert kernel(x.numpy(), table, bias, 3, y.numpy()) == 3
    expected = x @ torch.from_numpy(table) + torch.from_numpy(bias)
    torch.testing.assert_close(y, expected)
    assert kernel(x.numpy(), table, bias, 2, y.numpy()) == -1  # too many events
    x[1, 0] = 0.5
    assert kernel(x.numpy(), table, bias, 10, y.numpy()) == -2  # not spikes
    no_bias = torch.zeros(0, dtype=torch.float64).numpy()
    x[1, 0] = 0.0
    assert kernel(x.numpy(), table, no_bias, 10, y.numpy()) == 3
    torch.testing.assert_close(y, x @ torch.from_numpy(table))


def test_layers_below_the_minimum_size_stay_dense(monkeypatch, event_calls) -> None:
    monkeypatch.setattr(synapse, "EVENT_MIN_SYNAPSES", 50 * 20 + 1)
    x = (torch.rand(5, 2, 50) < 0.05).float()
    with torch.no_grad():
        Linear(50, 20)(x)
        assert event_calls == []
        Linear(51, 20)(x.new_zeros(5, 2, 51))
    assert len(event_calls) == 1
