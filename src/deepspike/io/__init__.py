"""Run records: ``result.json`` and safetensors checkpoints, both written atomically."""

from deepspike.io.checkpoint import load_checkpoint, save_checkpoint
from deepspike.io.results import (
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    git_commit,
    read_result,
    write_json_atomic,
    write_result,
)

__all__ = [
    "REQUIRED_FIELDS",
    "SCHEMA_VERSION",
    "git_commit",
    "load_checkpoint",
    "read_result",
    "save_checkpoint",
    "write_json_atomic",
    "write_result",
]
