#!/usr/bin/env python3
"""Set up deepspike (idempotently) and run its main tasks. Needs only Python 3.11+.

    python3 dev.py bench [ARGS...]   # set up if needed, then `deepspike bench ARGS`
    python3 dev.py test [ARGS...]    # set up if needed, then ruff and the fast test suite
    python3 dev.py setup             # only the set-up

The set-up makes a virtual environment in .venv, installs the pinned PyTorch build from
requirements/cpu.txt first (so pip never resolves a multi-GB CUDA build on a CPU machine), then
deepspike with its development extras. A stamp records what was installed; when the pins have not
changed, the set-up is skipped. Set DEEPSPIKE_TORCH_INDEX to a PyTorch wheel index URL to take
torch from there (for example the CPU index, on a machine whose PyPI would give a CUDA build).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".deepspike-setup"
PINNED = (ROOT / "pyproject.toml", ROOT / "requirements" / "cpu.txt")


def fingerprint() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in PINNED:
        digest.update(path.read_bytes())
    digest.update(os.environ.get("DEEPSPIKE_TORCH_INDEX", "").encode())
    return digest.hexdigest()


def pip(*args: str) -> None:
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", *args], check=True
    )


def setup() -> None:
    if STAMP.exists() and STAMP.read_text() == fingerprint() and (BIN / "deepspike").exists():
        return
    print("setting up .venv (first run only) ...", flush=True)
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    index = os.environ.get("DEEPSPIKE_TORCH_INDEX")
    pip(
        "install",
        "-q",
        "-r",
        str(ROOT / "requirements" / "cpu.txt"),
        *(["--index-url", index] if index else []),
    )
    pip("install", "-q", "-e", f"{ROOT}[dev]")
    STAMP.write_text(fingerprint())


def run(*cmd: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run(list(cmd), cwd=ROOT, env=env).returncode


def test(args: list[str]) -> int:
    env = dict(os.environ)
    shared = ROOT.parent / "shared" / "data"
    if "DEEPSPIKE_DATA" not in env and shared.is_dir():
        env["DEEPSPIKE_DATA"] = str(shared)
    env.setdefault("DEEPSPIKE_OFFLINE", "1")
    code = run(str(BIN / "ruff"), "check", ".", env=env)
    if code:
        return code
    return run(str(BIN / "python"), "-m", "pytest", "-q", *args, env=env)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script is what checks it
        print(f"deepspike needs Python 3.11 or newer; this is {sys.version.split()[0]}")
        return 2
    if not argv or argv[0] not in ("setup", "bench", "test"):
        print(__doc__)
        return 2
    setup()
    task, rest = argv[0], argv[1:]
    if task == "bench":
        return run(str(BIN / "deepspike"), "bench", *rest)
    if task == "test":
        return test(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
