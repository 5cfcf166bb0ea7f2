#!/usr/bin/env bash
# Set up the environment focal_eiou_d2 runs in; idempotent, and quick when nothing changed.
#
#   scripts/setup_env.sh              # creates ./.venv (Python 3.11) and installs everything into it
#   PYTHON=/path/to/python scripts/setup_env.sh
#                                     # installs into an existing environment instead (for example
#                                     # one that already has an official CUDA build of Detectron2)
#
# torch/torchvision and Detectron2 are installed only when they do not import already.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  VENV=${VENV:-.venv}
  if [ ! -x "$VENV/bin/python" ]; then
    base=$(command -v python3.11 || command -v python3)
    echo "[setup] creating $VENV with $base"
    "$base" -m venv "$VENV"
  fi
  PYTHON="$VENV/bin/python"
fi

prefix=$("$PYTHON" -c 'import sys; print(sys.prefix)')
stamp="$prefix/.focal_eiou_d2-setup"
key=$(cat setup.py pyproject.toml scripts/setup_env.sh scripts/install_detectron2.py \
  scripts/detectron2_pure_C.py scripts/constraints-pure-detectron2.txt | sha256sum | cut -c1-16)
key="$key $(pwd)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] \
  && "$PYTHON" -c 'import torch, detectron2, focal_eiou_d2' 2>/dev/null; then
  echo "[setup] environment at $prefix is up to date"
  exit 0
fi

pip_install() { "$PYTHON" -m pip install --disable-pip-version-check "$@"; }

if ! "$PYTHON" -c 'import torch, torchvision' 2>/dev/null; then
  echo "[setup] installing torch 2.14.1 and torchvision 0.29.1"
  pip_install torch==2.14.1 torchvision==0.29.1
fi

"$PYTHON" scripts/install_detectron2.py

constraints=()
if "$PYTHON" -c 'import sys, detectron2._C as c; sys.exit(0 if getattr(c, "FOCAL_EIOU_D2_PURE_PYTHON", False) is True else 1)' 2>/dev/null; then
  constraints=(-c scripts/constraints-pure-detectron2.txt)
fi
echo "[setup] installing focal_eiou_d2 (editable) with its dev tools"
pip_install --no-build-isolation "${constraints[@]}" -e ".[dev]"

echo "$key" > "$stamp"
"$PYTHON" -m focal_eiou_d2.collect_env
