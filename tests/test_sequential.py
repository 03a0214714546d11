"""deepspike.layers.Sequential: fused Linear -> Neuron pairs give the modules' spikes exactly."""

from __future__ import annotations

import pytest
import torch

from deepspike.layers import Linear, Sequential, synapse
from deepspike.layers import sequential as seq
from deepspike.metrics import CostMeter
from deepspike.neurons import IFParams, LIFParams, Neuron


@pytest.fixture
def fused_calls(monkeypatch) -> list[int]:
    """Counts the pairs that ran fused (a spy around ``fused_pair``)."""
    calls: list[int] = []
    original = seq.fused_pair

    def spy(*args):
        out = original(*args)
        if out is not None:
            calls.append(1)
        return out

    monkeypatch.setattr(seq, "fused_pair", spy)
    return calls


def _spikes(shape: tuple[int, ...], activity: float, seed: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < activity).to(dtype)


def _network(neuron_a, neuron_b, dtype=torch.float32, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers = [
        Linear(60, 40, event_threshold=1.0),
        neuron_a,
        Linear(40, 7, event_threshold=1.0),
        neuron_b,
    ]
    with torch.no_grad():
        for layer in layers[::2]:
            layer.weight.mul_(4.0)  # enough drive for the neurons to fire
    return torch.nn.Sequential(*layers).to(dtype)


NEURONS = [
    pytest.param(lambda: Neuron(LIFParams(tau_mem=4.0, v_th=0.5)), id="lif-subtract"),
    pytest.param(lambda: Neuron(LIFParams(tau_mem=4.0, v_th=0.5, reset="zero")), id="lif-zero"),
    pytest.param(lambda: Neuron(LIFParams(tau_mem=4.0, v_th=0.5, reset="none")), id="lif-none"),
    pytest.param(lambda: Neuron(IFParams(v_th=0.7, v_init=0.3)), id="if-v_init"),
]


@pytest.mark.parametrize("make", NEURONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [(1,), (3,), (2, 2)])
def test_fused_pairs_give_the_modules_event_path_spikes(
    make, dtype, batch, monkeypatch, fused_calls
) -> None:
    monkeypatch.setattr(synapse, "EVENT_MIN_SYNAPSES", 0)  # the modules take events too
    plain = _network(make(), make(), dtype)
    fused = Sequential(*plain)
    x = _spikes((9, *batch, 60), 0.1, seed=len(batch), dtype=dtype)
    with torch.no_grad():
        want, got = plain(x), fused(x)
    assert len(fused_calls) == 2  # both pairs ran fused
    assert got.dtype == dtype and got.shape == (9, *batch, 7)
    assert 0 < int(want.sum()) < want.numel()  # some output spikes, not all
    assert torch.equal(got, want)


def test_fused_pairs_equal_the_dense_path_where_sums_are_exact(fused_calls) -> None:
    """Weights on a grid of 1/1024 make every sum exact, so dense and event currents agree."""
    torch.manual_seed(3)
    net = _network(Neuron(LIFParams(tau_mem=2.0, v_th=0.5)), Neuron(LIFParams(v_th=0.5)))
    with torch.no_grad():
        for layer in net[::2]:
            layer.weight.copy_(torch.round(layer.weight * 1024) / 1024)
            layer.bias.copy_(torch.round(layer.bias * 1024) / 1024)
    x = _spikes((12, 4, 60), 0.08, seed=5)
    fused = Sequential(*net)
    with torch.no_grad():
        got = fused(x)
        for layer in net[::2]:
            layer.event_threshold = 0.0  # the dense path everywhere
        dense = net(x)
    assert len(fused_calls) == 2
    assert int(dense.sum()) > 0
    assert torch.equal(got, dense)


def test_pairs_that_do_not_qualify_run_as_modules(fused_calls) -> None:
    net = Sequential(
        Linear(30, 20, event_threshold=0.5),
        Neuron(LIFParams(v_th=0.5, t_ref=2.0)),  # refractory: not the plain recurrence
        Linear(20, 10, event_threshold=0.5),
        Neuron(LIFParams(v_th=0.5), stateful=True),  # carries state between calls
        Linear(10, 5, event_threshold=0.5),
        Neuron(LIFParams(v_th=0.5), output="membrane"),
        Linear(5, 4, event_threshold=0.5),
        Neuron(LIFParams(v_th=torch.full((4,), 0.5))),  # per-neuron threshold tensor
    )
    x = _spikes((5, 2, 30), 0.1, seed=1)
    with torch.no_grad():
        out = net(x)
    assert fused_calls == [] and out.shape == (5, 2, 4)


def test_busy_or_graded_input_and_training_take_the_module_path(fused_calls) -> None:
    net = Sequential(Linear(30, 8, event_threshold=0.1), Neuron(LIFParams(v_th=0.5)))
    sparse, busy = _spikes((5, 2, 30), 0.05, seed=2), _spikes((5, 2, 30), 0.6, seed=3)
    with torch.no_grad():
        net(busy)  # above the threshold: the kernel declines, the modules run
        net(sparse * 0.5)  # not spikes
    out = net(sparse)  # gradients needed
    out.sum().backward()
    assert fused_calls == [] and net[0].weight.grad is not None
    with torch.no_grad():
        net(sparse)
    assert len(fused_calls) == 1


def test_a_cost_meter_sees_the_same_model_fused_or_not(fused_calls) -> None:
    """Hooks (a cost meter's) turn fusion off, so the counts are those of the modules."""
    plain = _network(Neuron(LIFParams(v_th=0.5)), Neuron(LIFParams(v_th=0.5)))
    fused = Sequential(*plain)
    x = _spikes((6, 2, 60), 0.1, seed=4)
    reports = []
    for model in (plain, fused):
        with torch.no_grad(), CostMeter(model) as meter:
            model(x)
        reports.append(meter.report(samples=2))
    assert fused_calls == []
    assert reports[0].synops == reports[1].synops > 0
