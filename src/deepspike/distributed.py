r"""Data-parallel training across processes: ``torchrun`` + DistributedDataParallel (gloo on CPU).

The shared loop :func:`deepspike.training.fit` checks :func:`world` and, when
``torch.distributed`` is initialised, wraps the model in
:class:`~torch.nn.parallel.DistributedDataParallel` (:func:`wrap`) and gives each process a
disjoint shard of every global batch (:func:`shard`), so recipes run unchanged.

Equivalence with one process (Li et al. 2020, *PyTorch Distributed*, VLDB): DDP averages the
gradients of the :math:`P` processes. With a mean loss over a per-process batch of :math:`b`
samples,

.. math::

    \frac{1}{P}\sum_{p=1}^{P} \nabla \frac{1}{b}\sum_{i \in B_p} \ell_i
    = \nabla \frac{1}{Pb}\sum_{i \in B_1 \cup \dots \cup B_P} \ell_i ,

which is one process's gradient on the union batch of :math:`Pb` samples. ``batch_size`` in
the loop is therefore *per process*; the global batch is ``batch_size * world_size``.

Launch a recipe on two processes (only rank 0 writes ``result.json`` and the checkpoint)::

    torchrun --nproc_per_node 2 -m deepspike.distributed train lee2016-fc --dataset mnist \
        --out results/lee2016-fc-ddp
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import distributed as dist
from torch import nn

from deepspike.errors import ConfigError

DEFAULT_BACKEND = "gloo"


class World(NamedTuple):
    """This process's ``rank`` among ``size`` processes (``World(0, 1)`` when not distributed)."""

    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_initialized() -> bool:
    """Whether a ``torch.distributed`` process group is up."""
    return dist.is_available() and dist.is_initialized()


def world() -> World:
    """Rank and world size of this process; ``World(0, 1)`` without a process group."""
    if not is_initialized():
        return World(0, 1)
    return World(dist.get_rank(), dist.get_world_size())


def is_main_process() -> bool:
    """True on rank 0 (and in every non-distributed run): the process that writes files."""
    return world().is_main


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` itself.

    The wrapper shares its parameters with ``model``, so training through it updates ``model``.
    """
    if world().size == 1:
        return model
    return nn.parallel.DistributedDataParallel(model)


def shard(indices: torch.Tensor, rank: int, size: int) -> torch.Tensor:
    """The part of one global batch that process ``rank`` of ``size`` trains on.

    Strided (``indices[rank::size]``), like ``DistributedSampler``: the shards are disjoint,
    their union is the batch, and their sizes differ by at most one.
    """
    if not 0 <= rank < size:
        raise ConfigError(f"rank {rank} is not in [0, {size})")
    return indices[rank::size]


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (the values themselves when alone)."""
    if world().size == 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def init_from_env(backend: str = DEFAULT_BACKEND) -> World:
    """Join the process group that ``torchrun`` describes in the environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); a no-op without it."""
    if is_initialized():
        return world()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend=backend)
    return world()


def shutdown(wait_for_peers: bool = True) -> None:
    """Leave the process group, if any.

    With ``wait_for_peers`` every process first meets the others at a barrier, so none tears
    its connections down while a peer still uses them (gloo then aborts the peer with
    "terminate called without an active exception"). After an error pass ``False``: the peers
    may never arrive.
    """
    if is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def rank_argv(argv: Sequence[str], rank: int, scratch: str) -> list[str]:
    """The CLI arguments for ``rank``: rank 0 keeps them; the others train and evaluate the same
    way but write into ``scratch`` (argparse keeps the last ``--out``) without progress bars."""
    argv = list(argv)
    if rank == 0 or not argv or argv[0] not in ("train", "bench"):
        return argv
    return [*argv, "--out", scratch, "--no-progress"]


def main(argv: Sequence[str] | None = None) -> int:
    """``torchrun ... -m deepspike.distributed <deepspike CLI arguments>``."""
    from deepspike.cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    current = init_from_env()
    finished = False
    try:
        with tempfile.TemporaryDirectory(prefix=f"deepspike-rank{current.rank}-") as scratch:
            code = cli_main(rank_argv(argv, current.rank, scratch))
        finished = True
        return code
    finally:
        shutdown(wait_for_peers=finished)


if __name__ == "__main__":
    raise SystemExit(main())
