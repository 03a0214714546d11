"""Data-parallel training: two gloo processes on CPU equal one process with twice the batch."""

import socket

import pytest
import torch
from torch import multiprocessing as mp

from deepspike import distributed, training
from deepspike.errors import ConfigError
from deepspike.layers import Flatten, Linear
from deepspike.neurons import LIFParams, Neuron

N_SAMPLES, PER_PROCESS_BATCH, SEED = 48, 4, 11


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N_SAMPLES, 6, generator=g)
    y = (x[:, 0] > x[:, 1]).long() + (x[:, 2] > 0.5).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        Flatten(),
        Linear(6, 8),
        Neuron(LIFParams()),
        Linear(8, 3),
        Neuron(LIFParams(), output="membrane"),
    )
    return model, x, y


def direct(x, generator):
    return x.unsqueeze(0).expand(4, *x.shape)


def train(model, x, y, batch_size, optimizer):
    training.fit(
        model,
        direct,
        x,
        y,
        epochs=1,
        batch_size=batch_size,
        lr=0.05,
        optimizer=optimizer,
        schedule="constant",
        loss_fn=training.objective("membrane_mean"),
        generator=torch.Generator().manual_seed(SEED),
        progress=False,
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


OPTIMIZERS = ("sgd", "adam")


def worker(rank: int, size: int, port: int, out: str) -> None:
    """One process of the data-parallel run: train with each optimiser, rank 0 saves."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size
    )
    finished = False
    try:
        states = {}
        for optimizer in OPTIMIZERS:
            model, x, y = tiny_problem()
            states[optimizer] = train(model, x, y, PER_PROCESS_BATCH, optimizer)
        if distributed.is_main_process():
            torch.save(states, out)
        finished = True
    finally:
        distributed.shutdown(wait_for_peers=finished)


def test_two_processes_match_one_process_with_twice_the_batch(tmp_path):
    out = str(tmp_path / "rank0.pt")
    mp.spawn(worker, args=(2, free_port(), out), nprocs=2, join=True)
    parallel = torch.load(out)
    start = tiny_problem()[0].state_dict()
    for optimizer in OPTIMIZERS:
        model, x, y = tiny_problem()
        single = train(model, x, y, 2 * PER_PROCESS_BATCH, optimizer)
        assert any(not torch.equal(single[k], start[k]) for k in single)  # weights moved
        for k in single:
            assert torch.allclose(parallel[optimizer][k], single[k], atol=1e-5), (optimizer, k)


def test_shards_are_disjoint_and_cover_the_batch():
    idx = torch.arange(10, 17)
    parts = [distributed.shard(idx, r, 3) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == idx.tolist()
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    with pytest.raises(ConfigError):
        distributed.shard(idx, 3, 3)


def test_without_a_process_group_everything_is_single_process():
    assert distributed.world() == distributed.World(0, 1)
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
    assert distributed.all_reduce_sum([1.0, 2.0]) == [1.0, 2.0]


def test_only_rank_zero_writes_into_the_requested_folder():
    argv = ["train", "lee2016-fc", "--out", "results/x"]
    assert distributed.rank_argv(argv, 0, "/scratch") == argv
    other = distributed.rank_argv(argv, 1, "/scratch")
    assert other[-3:] == ["--out", "/scratch", "--no-progress"]
    assert distributed.rank_argv(["recipes"], 1, "/scratch") == ["recipes"]


def test_last_small_global_batch_is_dropped_only_when_distributed():
    sizes = [len(b) for b in training.global_batches(10, 4, 1, 0, 1)]
    assert sizes == [4, 4, 2]
    sizes = [len(b) for b in training.global_batches(9, 2, 2, 0, 1)]
    assert sizes == [4, 4]  # the ninth sample alone cannot feed two processes
    for n, b, size in [(10, 4, 1), (9, 2, 2), (10, 2, 2), (3, 5, 2), (1, 5, 2)]:
        steps = len(list(training.global_batches(n, b, size, 0, 1)))
        assert training.count_global_batches(n, b, size) == steps
