"""Training loops: losses on spike outputs, input validation and determinism."""

import pytest
import torch

from deepspike import training
from deepspike.errors import ConfigError, InputValueError
from deepspike.layers import Flatten, Linear
from deepspike.neurons import LIFParams, Neuron


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(Flatten(), Linear(6, 3), Neuron(LIFParams()))


def direct(x, generator):
    return x.unsqueeze(0).expand(8, *x.shape)


def test_count_cross_entropy_is_cross_entropy_of_summed_spikes():
    out = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])  # T=2, B=1, C=2: counts [2, 1]
    expected = -torch.log_softmax(torch.tensor([2.0, 1.0]), 0)[0]
    assert torch.isclose(training.count_cross_entropy(out, torch.tensor([0])), expected)


def test_membrane_cross_entropy_reduces_over_time():
    v = torch.tensor([[[0.0, 3.0]], [[2.0, 1.0]]])
    label = torch.tensor([1])
    by_max = -torch.log_softmax(torch.tensor([2.0, 3.0]), 0)[1]
    by_mean = -torch.log_softmax(torch.tensor([1.0, 2.0]), 0)[1]
    assert torch.isclose(training.membrane_cross_entropy(v, label, "max"), by_max)
    assert torch.isclose(training.membrane_cross_entropy(v, label, "mean"), by_mean)
    with pytest.raises(ConfigError):
        training.membrane_cross_entropy(v, label, "median")


def test_count_mse_targets_rates():
    out = torch.zeros(10, 1, 2)
    out[:8, 0, 1] = 1.0  # class 1 fires 8 of 10 steps: exactly its target
    loss = training.count_mse(out, torch.tensor([1]), on_rate=0.8, off_rate=0.1)
    assert torch.isclose(loss, torch.tensor(0.5 * 1.0**2))  # class 0: count 0 vs target 1


def test_fit_rejects_nan_input():
    x = torch.rand(8, 6)
    x[3, 2] = float("nan")
    with pytest.raises(InputValueError, match="NaN"):
        training.fit(
            tiny_net(),
            direct,
            x,
            torch.zeros(8, dtype=torch.long),
            epochs=1,
            batch_size=4,
            lr=1e-2,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )


def test_same_seed_gives_the_same_weights():
    x, y = torch.rand(16, 6), torch.randint(0, 3, (16,))

    def train_once():
        net = tiny_net(0)
        training.fit(
            net,
            direct,
            x,
            y,
            epochs=2,
            batch_size=4,
            lr=1e-2,
            generator=torch.Generator().manual_seed(7),
            progress=False,
        )
        return net[1].weight.detach().clone()

    assert torch.equal(train_once(), train_once())


def test_training_reduces_the_loss_on_a_separable_problem():
    torch.manual_seed(0)
    x = torch.rand(64, 6)
    y = (x[:, 0] > x[:, 1]).long()
    net = tiny_net(0)
    history = training.fit(
        net,
        direct,
        x,
        y,
        epochs=30,
        batch_size=16,
        lr=5e-2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    assert history.loss[-1] < history.loss[0]
    assert history.train_accuracy[-1] > 90.0
