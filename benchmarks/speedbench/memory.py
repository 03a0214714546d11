"""Training memory of one forward + backward, measured two ways.

* **Saved for backward** (reproducible): the bytes of every distinct tensor storage that
  autograd holds for the backward pass at the end of the forward pass, collected with
  ``torch.autograd.graph.saved_tensors_hooks`` (parameters excluded). This is the "BPTT memory";
  it does not depend on the allocator or on what else runs on the machine.
* **Peak RSS delta** (what the OS sees): a fresh subprocess builds the model and input, runs one
  warm-up pass, then measures the growth of its resident set's high-water mark over one more
  forward + backward. The high-water mark is reset through ``/proc/self/clear_refs`` where Linux
  allows it, and glibc is told to serve blocks over 64 KiB with ``mmap`` so that freed memory
  leaves the resident set at once.

Run as ``python -m speedbench.memory LIBRARY T BATCH HIDDEN THREADS`` it prints the subprocess
measurement as one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speedbench import libraries
from speedbench.spec import INPUT_ACTIVITY, N_CLASSES
from speedbench.workload import Workload, workload

MB = 1024.0 * 1024.0
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


class _Saved:
    """What autograd keeps in place of a saved tensor; dies with the graph node holding it."""

    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def saved_tensor_bytes(model: nn.Module, data: Workload) -> int:
    """Bytes of the distinct storages that autograd holds for the backward pass of ``model``.

    Tensors saved by graph branches that are dropped during the forward pass (a detached reset,
    say) are freed with their node and not counted. Parameters are not counted.
    """
    from deepspike.training import count_cross_entropy

    saved: list[weakref.ref[_Saved]] = []

    def pack(tensor: torch.Tensor) -> _Saved:
        box = _Saved(tensor.detach())  # no grad_fn: an output saved by its own node makes no cycle
        saved.append(weakref.ref(box))
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        loss = count_cross_entropy(model(data.x), data.y)
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}
    for ref in saved:
        box = ref()
        if box is None:
            continue
        storage = box.tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer and pointer not in parameters:
            storages[pointer] = storage.nbytes()
    loss.backward()
    return sum(storages.values())


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset the resident high-water mark to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """The resident high-water mark in bytes (``VmHWM``, else ``ru_maxrss``)."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def current_rss_bytes() -> int:
    rss = _status_kb("VmRSS")
    return rss * 1024 if rss is not None else peak_rss_bytes()


def measure_rss_delta(model: nn.Module, data: Workload, reset: Any) -> dict[str, Any]:
    """Peak-RSS growth over one forward + backward of ``model`` (in this process), after one
    untimed warm-up pass so that one-off costs (JIT compilation, thread pools) are left out."""
    from deepspike.training import count_cross_entropy

    def forward_backward() -> None:
        count_cross_entropy(model(data.x), data.y).backward()
        reset(model)

    forward_backward()
    model.zero_grad(set_to_none=True)
    peak_was_reset = reset_peak()
    before = current_rss_bytes()
    forward_backward()
    return {
        "peak_rss_delta_mb": round(max(0, peak_rss_bytes() - before) / MB, 2),
        "peak_reset": peak_was_reset,
    }


def child_main(argv: list[str]) -> None:
    """Entry of the measuring subprocess: print the RSS measurement as JSON."""
    name, timesteps, batch, hidden, threads = argv[0], *map(int, argv[1:5])
    torch.set_num_threads(threads)
    library = libraries.by_name(name)
    torch.manual_seed(0)
    model = library.mlp(784, hidden, N_CLASSES)
    data = workload(timesteps, batch, (784,), INPUT_ACTIVITY)
    print(json.dumps(measure_rss_delta(model, data, library.reset)))


def rss_in_subprocess(
    name: str, timesteps: int, batch: int, hidden: int, threads: int, timeout: float = 600.0
) -> dict[str, Any]:
    """Run :func:`child_main` in a fresh interpreter; return its JSON or an ``error``."""
    here = Path(__file__).resolve().parent.parent
    env = {**os.environ, **CHILD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(here), env.get("PYTHONPATH")]))
    command = [sys.executable, "-W", "ignore", "-m", "speedbench.memory"]
    args = [name, str(timesteps), str(batch), str(hidden), str(threads)]
    try:
        done = subprocess.run(
            command + args, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


if __name__ == "__main__":
    child_main(sys.argv[1:])
