"""MNIST from the four canonical gzip-compressed IDX files."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import torch

from deepspike.data.paths import PathArg
from deepspike.data.splits import check_split
from deepspike.data.store import ensure
from deepspike.errors import DataError

#: IDX type code -> numpy dtype (big-endian for multi-byte types).
IDX_DTYPES: Final[dict[int, np.dtype]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAGIC_IMAGES: Final = 0x00000803  # unsigned bytes, 3 dimensions
MAGIC_LABELS: Final = 0x00000801  # unsigned bytes, 1 dimension

MNIST_FILES: Final[dict[str, tuple[str, str]]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def parse_idx(data: bytes, source: str = "IDX data", magic: int | None = None) -> np.ndarray:
    """Decode an (uncompressed) IDX file into an array of its shape and type.

    The header is two zero bytes, a type code, the number of dimensions, then one big-endian
    uint32 per dimension. With ``magic`` the first four bytes must equal it. A short, long or
    malformed file raises DataError.
    """
    if len(data) < 4:
        raise DataError(f"{source} is not an IDX file: only {len(data)} bytes")
    head = int.from_bytes(data[:4], "big")
    if magic is not None and head != magic:
        raise DataError(
            f"{source} has IDX magic number 0x{head:08x}, expected 0x{magic:08x}; "
            "the file is not the expected MNIST file or is corrupt"
        )
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{source} has a malformed IDX header (magic 0x{head:08x})")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{source} is truncated inside its IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_len != expected:
        raise DataError(
            f"{source} holds {len(data) - header_len} data bytes but its header {list(shape)} "
            f"needs {expected}; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)


def read_idx(path: PathArg, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gunzipped first if the name ends in ``.gz``); see :func:`parse_idx`."""
    path = Path(os.fspath(path))
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a valid gzip file ({e}); the file is corrupt") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e
    return parse_idx(data, source=str(path), magic=magic)


def load_mnist(
    split: str, data_dir: PathArg = None, *, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an MNIST split: images float32 ``[N, 28, 28]`` in [0, 1] and labels int64 ``[N]``.

    ``train`` has 60,000 images and ``test`` 10,000. Files are verified (and fetched, if
    allowed) by :func:`deepspike.data.ensure`.
    """
    images_name, labels_name = MNIST_FILES[check_split(split)]
    folder = ensure("mnist", data_dir, download)
    images = read_idx(folder / images_name, magic=MAGIC_IMAGES)
    labels = read_idx(folder / labels_name, magic=MAGIC_LABELS)
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise DataError(
            f"MNIST {split}: images {list(images.shape)} and labels {list(labels.shape)} "
            "do not match [N, 28, 28] / [N]"
        )
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"MNIST {split}: label {int(labels.max())} is outside 0-9")
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y
