"""N-MNIST events (the small SLAYER subset): ``events/<ID>.bs2`` plus two label lists.

Each event is 5 bytes: byte 0 x, byte 1 y, bit 7 of byte 2 the polarity (1 ON, 0 OFF), and the
low 23 bits of bytes 2-4 (big-endian) the timestamp in microseconds. The sensor is 34x34.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import numpy as np
import torch

from deepspike.data.paths import PathArg
from deepspike.data.splits import check_split
from deepspike.data.store import ensure
from deepspike.errors import DataError

SENSOR_SIZE: Final = (34, 34)  # (width, height)
EVENT_DTYPE: Final = np.dtype([("x", np.int16), ("y", np.int16), ("p", np.int8), ("t", np.int64)])
LABEL_FILES: Final[dict[str, str]] = {"train": "train1K.txt", "test": "test100.txt"}


def read_nmnist_events(source: bytes | bytearray | memoryview | PathArg) -> np.ndarray:
    """Decode N-MNIST ``.bin``/``.bs2`` events into a structured array (fields x, y, p, t in µs).

    ``source`` is the raw bytes or a path. A length that is not a multiple of 5 raises DataError.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data, name = bytes(source), "<bytes>"
    else:
        name = os.fspath(source)  # type: ignore[arg-type]
        try:
            data = Path(name).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read N-MNIST events {name}: {e}") from e
    if len(data) % 5:
        raise DataError(
            f"N-MNIST events {name} has {len(data)} bytes, not a multiple of 5; it is truncated"
        )
    a = np.frombuffer(data, np.uint8).reshape(-1, 5)
    out = np.empty(a.shape[0], EVENT_DTYPE)
    out["x"] = a[:, 0]
    out["y"] = a[:, 1]
    out["p"] = a[:, 2] >> 7
    t = (a[:, 2].astype(np.int64) & 0x7F) << 16
    out["t"] = t | (a[:, 3].astype(np.int64) << 8) | a[:, 4]
    return out


def parse_label_list(text: str, source: str = "label list") -> list[tuple[int, int]]:
    """Parse a ``#sample #class`` list (whitespace-separated ID and label per line) in order."""
    rows: list[tuple[int, int]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            sample, label = int(parts[0]), int(parts[1])
        except (IndexError, ValueError) as e:
            raise DataError(f"{source} line {lineno} is not '<sample> <class>': {raw!r}") from e
        if not 0 <= label <= 9:
            raise DataError(f"{source} line {lineno}: class {label} is outside 0-9")
        rows.append((sample, label))
    return rows


def load_nmnist(
    split: str, data_dir: PathArg = None, *, download: bool | None = None
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Load an N-MNIST-small split: a list of event arrays and labels int64 ``[N]``.

    ``train`` has 1,000 samples (MNIST training digits 1-1000) and ``test`` 100 (IDs
    60001-60100). Events have fields x, y (0-33), p (1 ON, 0 OFF) and t (µs, non-decreasing).
    """
    label_file = LABEL_FILES[check_split(split)]
    folder = ensure("nmnist-small", data_dir, download)
    rows = parse_label_list((folder / label_file).read_text(encoding="utf-8"), label_file)
    width, height = SENSOR_SIZE
    samples: list[np.ndarray] = []
    for sample_id, _ in rows:
        ev = read_nmnist_events(folder / "events" / f"{sample_id}.bs2")
        if ev.size and (int(ev["x"].max()) >= width or int(ev["y"].max()) >= height):
            raise DataError(f"N-MNIST sample {sample_id} has events outside the 34x34 sensor")
        samples.append(ev)
    labels = torch.tensor([label for _, label in rows], dtype=torch.int64)
    return samples, labels
