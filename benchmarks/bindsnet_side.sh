#!/usr/bin/env bash
# Install BindsNET 0.3.4 into a side folder for the STDP case, without touching the pinned torch.
#
#   bash benchmarks/bindsnet_side.sh DIR
#   PYTHONPATH=DIR python benchmarks/speed.py --cases stdp --merge
#
# BindsNET 0.3.4 pins torch>=2.14 and torchvision>=0.29; its code runs on torch 2.13. It imports
# torchvision only for its data-set wrappers and ale_py only for Atari environments, neither of
# which the benchmark touches, so where no CPU torchvision can be installed DIR gets minimal
# stand-ins for those two imports (any real use raises). A working torchvision or ale_py already
# installed is used instead.
set -euo pipefail
dir="${1:?usage: bindsnet_side.sh DIR}"
mkdir -p "$dir"
python -m pip install --quiet --no-deps --target "$dir" bindsnet==0.3.4 gymnasium tensorboardX \
    opencv-python-headless scikit-image pandas matplotlib
if ! python -c "import torchvision" 2>/dev/null; then
    mkdir -p "$dir/torchvision"
    cat > "$dir/torchvision/__init__.py" <<'PY'
"""Stand-in: BindsNET imports torchvision for data-set wrappers the benchmark never uses."""
from . import datasets, transforms, utils
PY
    cat > "$dir/torchvision/datasets.py" <<'PY'
def __getattr__(name):
    def unavailable(*args, **kwargs):
        raise ImportError(f"torchvision.{name} is a stand-in; install a CPU torchvision")
    return type(name, (), {"__init__": unavailable})
PY
    cp "$dir/torchvision/datasets.py" "$dir/torchvision/transforms.py"
    cp "$dir/torchvision/datasets.py" "$dir/torchvision/utils.py"
fi
if ! python -c "import ale_py" 2>/dev/null; then
    mkdir -p "$dir/ale_py" && : > "$dir/ale_py/__init__.py"
fi
PYTHONPATH="$dir" python -c "from bindsnet.models import DiehlAndCook2015; print('bindsnet ok')"
