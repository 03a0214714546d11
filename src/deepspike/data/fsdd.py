"""Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{index}.wav``, 8 kHz mono int16.

Standard split: index 0-4 is test (300 files), index 5-49 is train (2,700 files).
"""

from __future__ import annotations

import io
import math
import os
import re
import wave
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import torch

from deepspike.data.paths import PathArg
from deepspike.data.specs import get_spec
from deepspike.data.splits import Split, check_split
from deepspike.data.store import ensure
from deepspike.errors import ConfigError, DataError

NATIVE_RATE: Final = 8000
TEST_INDICES: Final = range(0, 5)
_NAME_RE: Final = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


class FSDDData(NamedTuple):
    """An FSDD split: waveforms (list of 1-D float32 tensors, or one ``[N, length]`` tensor),
    labels int64 ``[N]`` and the speaker of each recording."""

    waveforms: list[torch.Tensor] | torch.Tensor
    labels: torch.Tensor
    speakers: list[str]


class FSDDName(NamedTuple):
    """The parts of an FSDD file name."""

    digit: int
    speaker: str
    index: int


def parse_fsdd_name(filename: str) -> FSDDName:
    """Split ``'7_jackson_32.wav'`` (or a path ending in it) into digit, speaker and index."""
    m = _NAME_RE.match(Path(filename).name)
    if m is None:
        raise DataError(f"{filename!r} is not an FSDD file name '<digit>_<speaker>_<index>.wav'")
    return FSDDName(int(m.group(1)), m.group(2), int(m.group(3)))


def fsdd_split_of(index: int) -> Split:
    """The standard split of a recording by its index: 0-4 is ``'test'``, the rest ``'train'``."""
    return "test" if index in TEST_INDICES else "train"


def fsdd_files(split: str) -> list[str]:
    """The pinned relative paths of one split, ordered by (digit, speaker, index)."""
    check_split(split)
    names = [p for p in get_spec("fsdd").files if p.endswith(".wav")]
    chosen = [p for p in names if fsdd_split_of(parse_fsdd_name(p).index) == split]
    return sorted(chosen, key=parse_fsdd_name)


def read_wav(source: PathArg | bytes) -> tuple[np.ndarray, int]:
    """Decode a PCM WAV (8, 16 or 32 bit; channels averaged) to float32 in [-1, 1] and its rate."""
    name = "<bytes>" if isinstance(source, bytes | bytearray) else os.fspath(source)
    try:
        fh = io.BytesIO(source) if isinstance(source, bytes | bytearray) else open(name, "rb")  # noqa: SIM115
        with fh, wave.open(fh, "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise DataError(f"{name} is not a readable PCM WAV file: {e}") from e
    except OSError as e:
        raise DataError(f"cannot read {name}: {e}") from e
    if width == 1:
        x = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        ints = np.frombuffer(frames, f"<i{width}")
        x = ints.astype(np.float32) / np.float32(2 ** (8 * width - 1))
    else:
        raise DataError(f"{name} has {8 * width}-bit samples; only 8, 16 and 32 bit are supported")
    x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return x, rate


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a 1-D signal by a rational factor (polyphase filter), clipped to [-1, 1]."""
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(rate_in, rate_out)
    y = resample_poly(x, rate_out // g, rate_in // g)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def pad_or_crop(waves: list[torch.Tensor], length: int) -> torch.Tensor:
    """Stack 1-D signals into ``[N, length]``: longer ones keep their first ``length`` samples,
    shorter ones are zero-padded at the end."""
    out = torch.zeros(len(waves), length, dtype=torch.float32)
    for i, w in enumerate(waves):
        n = min(length, w.shape[0])
        out[i, :n] = w[:n]
    return out


def load_fsdd(
    split: str,
    data_dir: PathArg = None,
    sample_rate: int = NATIVE_RATE,
    length: int | None = None,
    *,
    download: bool | None = None,
) -> FSDDData:
    """Load an FSDD split (2,700 train / 300 test recordings) as float32 waveforms in [-1, 1].

    ``sample_rate`` resamples from the native 8 kHz. With ``length`` the waveforms come back as
    one ``[N, length]`` tensor (cropped or zero-padded at the end); otherwise as a list of 1-D
    tensors. Returns :class:`FSDDData` ``(waveforms, labels, speakers)``.
    """
    files = fsdd_files(split)
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if length is not None and (not isinstance(length, int) or length <= 0):
        raise ConfigError(f"length must be a positive number of samples or None, got {length!r}")
    folder = ensure("fsdd", data_dir, download)
    waves: list[torch.Tensor] = []
    labels: list[int] = []
    speakers: list[str] = []
    for relpath in files:
        x, rate = read_wav(folder / relpath)
        waves.append(torch.from_numpy(np.ascontiguousarray(resample(x, rate, sample_rate))))
        parts = parse_fsdd_name(relpath)
        labels.append(parts.digit)
        speakers.append(parts.speaker)
    y = torch.tensor(labels, dtype=torch.int64)
    return FSDDData(waves if length is None else pad_or_crop(waves, length), y, speakers)
