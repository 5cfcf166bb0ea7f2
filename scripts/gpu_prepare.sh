#!/usr/bin/env bash
# Gather, on a machine with access to PyPI, what scripts/gpu_check.sh needs on a GPU machine
# that has its own Python and torch but no network; the GPU machine gets it as the folder .gpu/
# (git-ignored) next to the repository's files. See docs/gpu.md.
#
#   scripts/gpu_prepare.sh      # (re)fills .gpu/ in a few seconds; run before every GPU check
#
# .gpu/wheels/  Detectron2's dependencies that the GPU machine lacks, for its CPython
#               $GPU_PYTHON_VERSION (default 3.12) on x86-64 Linux: pure-Python and manylinux
#               wheels from PyPI, and wheels built here from the source-only distributions.
# .gpu/detectron2-main-<commit>.tar.gz
#               the snapshot of Detectron2's git main that scripts/test_detectron2_main.sh
#               tests against ($DETECTRON2_MAIN_SNAPSHOT); gpu_check.sh runs it as pure Python
#               with the detectron2._C stand-in (Detectron2 0.6 needs numpy < 1.24, which the
#               GPU machine's numpy 2 is not).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
TARGET=${GPU_PYTHON_VERSION:-3.12}
SNAPSHOT=${DETECTRON2_MAIN_SNAPSHOT:-../shared/vendor/detectron2-main-02b5c4e.tar.gz}
DEST=.gpu

# The versions .venv runs the test suite with. On PyPI as wheels:
WHEELS=(
  pycocotools==2.0.11 iopath==0.1.9 yacs==0.1.8 termcolor==3.3.0 omegaconf==2.3.1
  hydra-core==1.3.8
  # LazyConfig.to_py (the digest of a LazyConfig run) imports black.
  black==26.10.1 platformdirs==4.14.9 pytokens==0.4.1
)
# Only as source distributions (pure Python): built into wheels here.
SOURCES=(fvcore==0.1.5.post20221221 antlr4-python3-runtime==4.9.3)

if [ ! -f "$SNAPSHOT" ]; then
  echo "[gpu_prepare] error: no Detectron2 snapshot at $SNAPSHOT (DETECTRON2_MAIN_SNAPSHOT)" >&2
  exit 1
fi
if ! tar -tzf "$SNAPSHOT" | grep '^[^/]*/detectron2/__init__.py$' >/dev/null; then
  echo "[gpu_prepare] error: $SNAPSHOT holds no <folder>/detectron2/__init__.py" >&2
  exit 1
fi

rm -rf "$DEST"
mkdir -p "$DEST/wheels"
cp "$SNAPSHOT" "$DEST/"

pip() { "$PY" -m pip --disable-pip-version-check "$@"; }
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms+=(--platform "$tag")
done
echo "[gpu_prepare] wheels for CPython $TARGET x86-64: ${WHEELS[*]}"
pip download -q --no-deps --only-binary=:all: --implementation cp --python-version "$TARGET" \
  "${platforms[@]}" -d "$DEST/wheels" "${WHEELS[@]}"
echo "[gpu_prepare] building wheels of ${SOURCES[*]}"
pip wheel -q --no-deps --no-build-isolation -w "$DEST/wheels" "${SOURCES[@]}"

count=$(find "$DEST/wheels" -name '*.whl' | wc -l)
expected=$((${#WHEELS[@]} + ${#SOURCES[@]}))
if [ "$count" -ne "$expected" ]; then
  echo "[gpu_prepare] error: $count wheels in $DEST/wheels, expected $expected" >&2
  exit 1
fi
(cd "$DEST" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum) \
  > "$DEST/SHA256SUMS"
size=$(du -sh "$DEST" | cut -f1)
echo "[gpu_prepare] $DEST ready ($size): $count wheels and $(basename "$SNAPSHOT")"
echo "[gpu_prepare] on the GPU machine: bash scripts/gpu_check.sh (carry $DEST; see docs/gpu.md)"
