"""Unsupervised STDP throughput: deepspike's Diehl & Cook 2015 recipe against BindsNET's
``DiehlAndCook2015``, in images per second with learning on.

Protocol: 100 excitatory neurons (with their inhibition), 784 Poisson inputs, 250 ms per image
at dt = 1 ms, learning on, one image at a time (Diehl & Cook's sequential protocol; BindsNET's
``eth_mnist`` example), MNIST training images at Diehl & Cook's maximum rate of 63.75 Hz
(synthetic MNIST-like images where the MNIST files cannot be found).

deepspike is timed by its recipe's own ``images_per_second`` hook, once at batch size 1 (the
protocol, used for the target) and once at the recipe's batched default (reported beside it).
Both run the model BindsNET's ``DiehlAndCook2015`` runs: current-based synapses, inhibition as a
current, pair STDP (also the recipe's default at this size). The paper's model, the recipe's
default from 400 neurons on (conductance-based synapses and the triplet rule, more arithmetic per
neuron and step), is timed at batch size 1 beside them (``paper_model``).
"""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path
from typing import Any

import torch

from speedbench.libraries import one_line, probe_module
from speedbench.spec import Settings

RECIPE_ID = "diehl2015-stdp"
MAX_RATE_HZ = 63.75
BATCHED = 16
BINDSNET_HINT = (
    " (not in the peers extra: BindsNET 0.3.4 requires torch>=2.14; "
    "install it beside it with benchmarks/bindsnet_side.sh, see benchmarks/README.md)"
)


def protocol(settings: Settings) -> dict[str, Any]:
    return {
        "excitatory_neurons": settings.stdp_neurons,
        "inputs": settings.stdp_inputs,
        "steps_per_image": settings.stdp_steps,
        "dt_ms": 1.0,
        "max_rate_hz": MAX_RATE_HZ,
        "images": settings.stdp_images,
    }


def unavailable(reason: str, **extra: Any) -> dict[str, Any]:
    return {"available": False, "reason": reason, "images_per_s": None, **extra}


def synthetic_images(n: int, pixels: int, seed: int = 0) -> torch.Tensor:
    """``[n, pixels]`` intensities in [0, 1]: 20 % of pixels lit, like an MNIST digit."""
    generator = torch.Generator().manual_seed(seed)
    lit = torch.rand(n, pixels, generator=generator) < 0.2
    return torch.rand(n, pixels, generator=generator) * lit


def images(n: int, pixels: int, data_dir: Path | None) -> tuple[torch.Tensor, str]:
    """The first ``n`` MNIST training images flattened to ``[n, pixels]`` in [0, 1], or
    synthetic ones when MNIST is not available here; with the name of the source."""
    from deepspike import data

    try:
        x, _ = data.load("mnist", "train", data_dir=data_dir)
    except Exception:  # offline without the files: fall back, and say so
        return synthetic_images(n, pixels), "synthetic"
    return x[:n].reshape(n, -1).float(), "mnist"


# --- deepspike ---------------------------------------------------------------------------


def deepspike_stdp(settings: Settings, data_dir: Path | None = None) -> dict[str, Any]:
    """Images per second of the ``diehl2015-stdp`` recipe (batch 1, and batched)."""
    from deepspike.errors import DataError
    from deepspike.recipes import RECIPES

    recipe = RECIPES.get(RECIPE_ID)
    if recipe is None:
        return unavailable(f"not available: {RECIPE_ID} recipe not registered")
    hook = getattr(importlib.import_module(recipe.train.__module__), "images_per_second", None)
    if hook is None:
        return unavailable(f"not available: {RECIPE_ID} has no images_per_second hook")

    accepted = inspect.signature(hook).parameters
    common = {
        "n_neurons": settings.stdp_neurons,
        "presentation_ms": float(settings.stdp_steps),
        "dataset": "mnist",
        "data_dir": str(data_dir) if data_dir else None,
        "threads": torch.get_num_threads(),  # the same threads as every other library
    }
    common = {key: value for key, value in common.items() if key in accepted}

    like_bindsnet = {"synapse": "current", "stdp_rule": "pair"}
    like_bindsnet = {key: value for key, value in like_bindsnet.items() if key in accepted}
    like_paper = {"synapse": "conductance", "stdp_rule": "triplet"}
    like_paper = {key: value for key, value in like_paper.items() if key in accepted}

    def rate(n_images: int, batch_size: int, **model: str) -> float:
        return hook(n_images=n_images, batch_size=batch_size, **common, **model)

    try:
        rate(1, 1, **like_bindsnet)  # warm-up: one-off compilation and data decoding
        rate(1, 1, **like_paper)
        sequential = rate(settings.stdp_images, 1, **like_bindsnet)
        batched = rate(settings.stdp_batched_images, BATCHED, **like_bindsnet)
        paper_model = rate(settings.stdp_images, 1, **like_paper)
    except DataError:
        return unavailable(
            f"{RECIPE_ID}: MNIST files not found (pass --data-dir or set "
            "DEEPSPIKE_DATA to a root holding mnist/)"
        )
    except Exception as error:  # a recipe failure: record it and go on
        return unavailable(f"{RECIPE_ID} failed: {one_line(error)}")
    return {
        "available": True,
        "images_per_s": round(sequential, 3),
        "batch_size": 1,
        "model": "current-based synapses and inhibition, pair STDP (as BindsNET)",
        "paper_model": {
            "model": "conductance-based synapses and inhibition, triplet STDP (the paper's)",
            "images_per_s": round(paper_model, 3),
        },
        "batched": {
            "batch_size": BATCHED,
            "images": settings.stdp_batched_images,
            "images_per_s": round(batched, 3),
        },
        "dataset": "mnist",
    }


# --- BindsNET ----------------------------------------------------------------------------


def bindsnet_stdp(settings: Settings, data_dir: Path | None = None) -> dict[str, Any]:
    """Images per second of BindsNET's ``DiehlAndCook2015`` with learning on."""
    status = probe_module("bindsnet", "bindsnet", "bindsnet", BINDSNET_HINT)
    if not status.available:
        return unavailable(status.reason or "unavailable", version=status.version)
    from bindsnet.encoding import poisson
    from bindsnet.models import DiehlAndCook2015

    side = int(settings.stdp_inputs**0.5)
    network = DiehlAndCook2015(
        n_inpt=settings.stdp_inputs,
        n_neurons=settings.stdp_neurons,
        exc=22.5,
        inh=17.5,
        dt=1.0,
        norm=78.4,
        theta_plus=0.05,
        inpt_shape=(1, side, side),
    )
    network.train(True)
    steps = settings.stdp_steps
    pictures, source = images(settings.stdp_images + 1, settings.stdp_inputs, data_dir)

    def present(image: torch.Tensor) -> None:
        spikes = poisson(datum=image * MAX_RATE_HZ, time=steps, dt=1.0)
        network.run(inputs={"X": spikes.view(steps, 1, 1, side, side)}, time=steps)
        network.reset_state_variables()

    present(pictures[0])  # warm-up
    start = time.perf_counter()
    for image in pictures[1:]:
        present(image)
    seconds = time.perf_counter() - start
    return {
        "available": True,
        "version": status.version,
        "images": settings.stdp_images,
        "source": source,
        "seconds": round(seconds, 3),
        "images_per_s": round(settings.stdp_images / seconds, 3),
    }
