"""Checkpoints: tensors in safetensors, metadata as JSON in the same file's header.

Nothing is unpickled on load. A checkpoint is written to a temporary file and renamed into place,
so an interrupted save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from deepspike.errors import CheckpointError
from deepspike.io.atomic import write_atomic

METADATA_KEY = "deepspike"


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> Path:
    """Atomically save ``tensors`` (e.g. a ``state_dict``) with JSON-serialisable ``metadata``."""
    flat = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    header = {METADATA_KEY: json.dumps(metadata or {})}
    return write_atomic(path, lambda tmp: save_file(flat, str(tmp), metadata=header))


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first or check the run directory")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        metadata = json.loads(header.get(METADATA_KEY, "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a readable deepspike checkpoint ({e})") from None
    return tensors, metadata
