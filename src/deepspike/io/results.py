"""The ``result.json`` record of one training or evaluation run (schema version 1).

Every accuracy deepspike reports comes from such a file, written by ``deepspike train``. The
required fields follow the project design; extra fields may be added, never renamed.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

from deepspike.errors import ConfigError, DataError
from deepspike.io.atomic import write_atomic

SCHEMA_VERSION = 1

REQUIRED_FIELDS: tuple[str, ...] = (
    "schema",
    "recipe",
    "paper",
    "dataset",
    "n_train",
    "n_test",
    "accuracy",
    "timesteps",
    "synops_per_sample",
    "ann_macs_per_sample",
    "spikes_per_neuron",
    "params",
    "energy_uj_per_sample",
    "local_learning",
    "train_seconds",
    "threads",
    "device",
    "seed",
    "command",
    "git_commit",
    "created",
)


def validate_result(result: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` if a result record lacks a field or has a non-finite accuracy."""
    missing = [k for k in REQUIRED_FIELDS if k not in result]
    if missing:
        raise ConfigError(f"result record lacks field(s) {', '.join(missing)}")
    if result["schema"] != SCHEMA_VERSION:
        raise ConfigError(f"result schema {result['schema']} is not {SCHEMA_VERSION}")
    acc = result["accuracy"]
    if not isinstance(acc, int | float) or not math.isfinite(acc) or not 0 <= acc <= 100:
        raise ConfigError(f"accuracy {acc!r} is not a percentage")


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Validate and atomically write a ``result.json``."""
    validate_result(result)
    return write_json_atomic(path, result)


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``result.json``; a missing or malformed file raises ``DataError``."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"no result file at {path}; run `deepspike train` first") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON ({e}); re-run the training") from None
    try:
        validate_result(result)
    except ConfigError as e:
        raise DataError(f"{path}: {e}") from None
    return result


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit of the source tree (``"unknown"`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
