#!/usr/bin/env bash
# The GPU check of focal_eiou_d2: one command on a CUDA machine, under 8 minutes set-up included
# (docs/gpu.md). The machine needs Python with torch and torchvision, and .gpu/ from
# scripts/gpu_prepare.sh (Detectron2 main's sources and the wheels it lacks; no network used).
#
#   bash scripts/gpu_check.sh               # on the GPU machine
#   bash scripts/gpu_check.sh --cpu-smoke   # the same set-up and every part, briefly, on the CPU
#   bash scripts/gpu_check.sh --protocol [--cpu-smoke]
#                                           # instead of the parts: the reproduction protocol's
#                                           # runs on this device (docs/reproduction.md)
#
# Parts, most important first. Each runs under its own time limit, clipped to what is left of
# the whole budget, and a failed part stops none of the others:
#   tests_cuda        the tests skipped without CUDA (marked "needs CUDA"); on the GPU, a skip fails
#   nccl              Eq. 11's collectives in a one-process NCCL group with the distributed path
#                     forced (comm.get_world_size() patched to 2): BoxRegressionLoss, then one
#                     training step of tiny RetinaNet, FCOS and Faster R-CNN, all focal_eiou
#   train_retinanet   train_net.py --num-gpus 1, 50 iterations + evaluation, the quickstart
#   train_faster_rcnn Focal-EIoU configs on the shapes dataset (256 px), each in its own folder
#   bench_train_256   benchmarks/bench_train.py, RetinaNet R-50 from scratch, focal_eiou vs
#   bench_train_800   smooth_l1: 256 px x 16 images, and COCO's 800 px x 4 images (a GPU's share)
#   bench_losses      benchmarks/bench_losses.py --device cuda
#   tests_rest        the other tests of tests/layers and tests/modeling (not slow), as time allows
# With --protocol, one part instead:
#   protocol          Tables 1 and 2 of the protocol (9 rows x seeds 0-4, kept backbone):
#                     $PROTOCOL_JOBS runs at a time, each its own ablation runner process with
#                     its own folders, most important rows first, as many as the budget allows
#
# Results in $OUT (default output/gpu_check), 8 files: summary.md (PASS/FAIL per part and the
# figures), env.log, tests.log, nccl.log, train_net.log, bench_train.log, bench_losses.log,
# results.json; with --protocol: summary.md, env.log, protocol.log, results.json (empty) and
# protocol_results.tar.gz (the runs' result files, for a folder of reproduction/results/; packed,
# with the table, in the seconds after the budget). Scratch (site, Detectron2, datasets, runs) in
# $GPU_CHECK_WORK (/tmp/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
START=$(date +%s)

MODE=gpu
JOB=check
for arg in "$@"; do
  case $arg in
    --cpu-smoke) MODE=cpu-smoke ;;
    --protocol) JOB=protocol ;;
    *) echo "usage: bash scripts/gpu_check.sh [--cpu-smoke] [--protocol]" >&2; exit 2 ;;
  esac
done

MIN_PART_S=20  # a part with less time left is skipped
OUT=${OUT:-output/gpu_check}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check}
GPU_DIR=$REPO/.gpu
RETINANET=configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml
FASTER_RCNN=configs/quickstart/faster_rcnn_R_18_FPN_shapes_focal_eiou.yaml
BENCH_CONFIG=configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml

# The whole budget (set-up and parts; the script ends within it), and the factor on each part's
# own limit: the smoke run's small steps take longer on a few shared CPU cores than the GPU's.
if [ "$MODE" = gpu ]; then
  BUDGET_S=${GPU_CHECK_BUDGET_S:-$([ "$JOB" = protocol ] && echo 540 || echo 450)}
  PART_SCALE=1
  PY=${PYTHON:-python3}
  DEVICE=cuda
  BACKEND=nccl
  DATASETS=(shapes_train shapes_1class_train shapes_1class_val)
  TRAIN_OPTS=(MODEL.DEVICE cuda SOLVER.MAX_ITER 50 DATALOADER.NUM_WORKERS 4)
  BENCH_256=(--batch-size 16 --iters 100 --warmup 20 --rounds 4 DATALOADER.NUM_WORKERS 8)
  BENCH_800=(--batch-size 4 --image-size 800 --iters 60 --warmup 10 --rounds 4
    DATALOADER.NUM_WORKERS 8)
  LOSSES_ARGS=(--device cuda)
  REST_TESTS=(-m "not slow" tests/layers tests/modeling)
  PROTOCOL_JOBS=${PROTOCOL_JOBS:-8}
  PROTOCOL_MIN_RUN_S=60
  PROTOCOL_SEEDS=(0 1 2 3 4)
  PROTOCOL_OPTS=(MODEL.DEVICE cuda)
else
  BUDGET_S=${GPU_CHECK_BUDGET_S:-1200}
  PART_SCALE=3
  PY=${PYTHON:-.venv/bin/python}
  DEVICE=cpu
  BACKEND=gloo
  DATASETS=(shapes_mini_train shapes_mini_val)
  TRAIN_OPTS=(MODEL.DEVICE cpu SOLVER.MAX_ITER 2 DATALOADER.NUM_WORKERS 0
    DATASETS.TRAIN "('shapes_mini_train',)" DATASETS.TEST "('shapes_mini_val',)"
    SOLVER.IMS_PER_BATCH 2 INPUT.MIN_SIZE_TRAIN "(128,)" INPUT.MAX_SIZE_TRAIN 128
    INPUT.MIN_SIZE_TEST 128 INPUT.MAX_SIZE_TEST 128)
  BENCH_256=(--dataset shapes_mini_train --image-size 128 --batch-size 2 --iters 2 --warmup 1
    --rounds 2 DATALOADER.NUM_WORKERS 0)
  BENCH_800=(--dataset shapes_mini_train --image-size 160 --batch-size 1 --iters 2 --warmup 1
    --rounds 2 DATALOADER.NUM_WORKERS 0)
  LOSSES_ARGS=(--device cpu --sizes 1e3 --rounds 2 --losses focal_eiou)
  REST_TESTS=(tests/modeling/test_config.py)
  PROTOCOL_JOBS=${PROTOCOL_JOBS:-2}
  PROTOCOL_MIN_RUN_S=10
  PROTOCOL_SEEDS=(0)
  PROTOCOL_OPTS=(MODEL.DEVICE cpu SOLVER.MAX_ITER 2 SOLVER.WARMUP_ITERS 1 "SOLVER.STEPS" "(1,)"
    DATASETS.TRAIN "('shapes_mini_train',)" DATASETS.TEST "('shapes_mini_val',)"
    SOLVER.IMS_PER_BATCH 2)
fi
# The protocol's rows, most important first (docs/reproduction.md: Tables 1 and 2).
PROTOCOL_LOSSES=(smooth_l1 focal_eiou eiou iou focal_eiou_v1 giou ciou focal_l1 balanced_l1)
if [ "$JOB" = protocol ]; then
  if [ "$MODE" = gpu ]; then
    DATASETS=(shapes_1class_train shapes_1class_val)
  else
    PROTOCOL_LOSSES=(smooth_l1 focal_eiou)
  fi
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{summary.md,env.log,tests.log,nccl.log,train_net.log,bench_train.log}
rm -f "$OUT"/{bench_losses.log,results.json,protocol.log,protocol_results.tar.gz}
rm -rf "$WORK"
mkdir -p "$WORK/logs"
ROWS=$WORK/rows.md

log() { echo "[gpu_check $(($(date +%s) - START))s] $*" | tee -a "$OUT/env.log"; }

# One part: run_part NAME BUDGET_S OUTPUT_LOG COMMAND...; its output goes to $WORK/logs/NAME.log
# (appended to OUTPUT_LOG); the status (PASS, FAIL, TIMEOUT, SKIPPED) to the summary's table.
run_part() {
  local name=$1 budget=$2 group=$3 left limit begin rc status
  shift 3
  budget=$((budget * PART_SCALE))
  left=$((START + BUDGET_S - $(date +%s)))
  limit=$((budget < left ? budget : left))
  if [ "$limit" -lt "$MIN_PART_S" ]; then
    echo "| $name | SKIPPED | 0 | ${left}s of the ${BUDGET_S}s budget left |" >> "$ROWS"
    log "$name skipped: ${left}s left"
    return
  fi
  log "$name (limit ${limit}s): $*"
  begin=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$WORK/logs/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=PASS ;;
    124 | 137) status=TIMEOUT ;;
    *) status=FAIL ;;
  esac
  { echo "===== $name: $* (rc $rc, $(($(date +%s) - begin))s)"; cat "$WORK/logs/$name.log"; } \
    >> "$OUT/$group"
  echo "| $name | $status | $(($(date +%s) - begin)) | $(part_note "$name") |" >> "$ROWS"
  log "$name: $status (rc $rc)"
  write_summary
}

# The figure or count that says what a part did, from its log.
part_note() {
  local file=$WORK/logs/$1.log
  case $1 in
    tests_*)
      grep -E "(passed|failed|error|skipped)" "$file" | tail -1 | sed -E 's/=+//g; s/^ +| +$//g'
      ;;
    nccl) echo "$(grep -c '^ok ' "$file") checks ok, $(grep -c '^FAIL ' "$file") failed" ;;
    train_*) grep '^run:' "$file" | tail -1 | cut -c6- ;;
    bench_train_*)
      awk -F' *[|] *' '/^[|] loss [|] it[/]s/ { table = 1; next }
        table && /^[|] [a-z]/ { printf "%s %s it/s (%s); ", $2, $3, $4 }' "$file"
      ;;
    bench_losses) echo "tables in bench_losses.log" ;;
    protocol)
      echo "$(find "$WORK/protocol/runs" -path '*/results/*.json' | wc -l) runs finished"
      ;;
  esac
}

write_summary() {
  {
    echo "# GPU check of focal_eiou_d2 ($MODE)"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ),"
    echo "commit $(git rev-parse --short HEAD 2> /dev/null || echo unknown),"
    echo "$(($(date +%s) - START)) s so far of a ${BUDGET_S} s budget. Environment: env.log."
    echo
    echo "| part | status | seconds | note |"
    echo "|---|---|---|---|"
    cat "$ROWS"
    for part in bench_train_256 bench_train_800; do
      if [ -f "$WORK/logs/$part.log" ]; then
        echo
        echo "## $part"
        echo
        # the results table and the line of settings after it
        awk '/^\| loss \| it\/s/ { table = 1 } table && /^(\||device:)/' "$WORK/logs/$part.log"
      fi
    done
    if [ -f "$WORK/protocol/table/table.md" ]; then
      echo
      echo "## protocol"
      echo
      cat "$WORK/protocol/table/table.md"
    fi
    if [ -f "$WORK/logs/bench_losses.log" ]; then
      echo
      echo "## bench_losses (last lines)"
      echo
      echo '```'
      grep -viE "warn" "$WORK/logs/bench_losses.log" | tail -n 40
      echo '```'
    fi
  } > "$OUT/summary.md"
  "$PY" - "$WORK" "$OUT/results.json" << 'EOF'
import glob, json, os, sys
work, target = sys.argv[1:]
results = {}
for path in sorted(glob.glob(os.path.join(work, "*.json"))):
    with open(path) as f:
        results[os.path.basename(path)[: -len(".json")]] = json.load(f)
with open(target, "w") as f:
    json.dump(results, f, indent=1)
EOF
}

# ---- set-up: Detectron2 main (pure Python + the _C stand-in) and the wheels, on PYTHONPATH ----
# (sets PYTHONPATH: the repository, Detectron2's sources, the wheels' packages, in that order)
setup() {
  if [ ! -d "$GPU_DIR/wheels" ]; then
    echo "no $GPU_DIR/wheels: run scripts/gpu_prepare.sh where PyPI is reachable, carry .gpu" >&2
    return 1
  fi
  local snapshots=("$GPU_DIR"/detectron2-*.tar.gz)
  if [ ! -f "${snapshots[0]}" ] || [ ${#snapshots[@]} -ne 1 ]; then
    echo "expected one $GPU_DIR/detectron2-*.tar.gz (scripts/gpu_prepare.sh)" >&2
    return 1
  fi
  (cd "$GPU_DIR" && sha256sum --quiet -c SHA256SUMS) || return 1
  mkdir -p "$WORK/detectron2"
  tar -xzf "${snapshots[0]}" -C "$WORK/detectron2" || return 1
  local source
  source=$(dirname "$(dirname "$(ls "$WORK"/detectron2/*/detectron2/__init__.py)")")
  cp scripts/detectron2_pure_C.py "$source/detectron2/_C.py"
  # The wheels this interpreter can use (all, on the GPU machine's CPython 3.12); the others
  # (the smoke run's) leave their packages to the interpreter's own environment.
  local fit=() skipped=()
  while read -r verdict wheel; do
    if [ "$verdict" = fit ]; then fit+=("$wheel"); else skipped+=("$(basename "$wheel")"); fi
  done < <("$PY" - "$GPU_DIR/wheels" << 'EOF'
import pathlib, sys
try:
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename
except ImportError:
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import parse_wheel_filename
supported = set(sys_tags())
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    print("fit" if parse_wheel_filename(wheel.name)[3] & supported else "skip", wheel)
EOF
  )
  if [ ${#skipped[@]} -gt 0 ]; then
    echo "wheels not for this interpreter: ${skipped[*]}"
    if [ "$MODE" = gpu ]; then
      echo "scripts/gpu_prepare.sh built them for another Python (GPU_PYTHON_VERSION)" >&2
      return 1
    fi
  fi
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
    --no-cache-dir --target "$WORK/site" "${fit[@]}" || return 1
  PYTHONPATH=$REPO:$source:$WORK/site
}

setup_check() {
  "$PY" - "$REPO" "$WORK" << 'EOF'
import importlib, sys
repo, work = sys.argv[1:]
expected = {"focal_eiou_d2": repo, "detectron2": work + "/detectron2/"}
bad = []
for name in ("focal_eiou_d2", "detectron2", "fvcore", "iopath", "yacs", "omegaconf", "hydra",
             "pycocotools", "termcolor", "black", "torch", "torchvision", "numpy", "cv2"):
    module = importlib.import_module(name)
    where = module.__file__
    print(f"{name:14s} {getattr(module, '__version__', '?'):28s} {where}")
    if name in expected and not where.startswith(expected[name]):
        bad.append(f"{name} imported from {where}, expected under {expected[name]}")
import detectron2._C as stand_in
if not getattr(stand_in, "FOCAL_EIOU_D2_PURE_PYTHON", False):
    bad.append("detectron2._C is not the pure-Python stand-in")
try:  # Detectron2's model zoo imports it; no part of this check needs the model zoo
    import pkg_resources  # noqa: F401
except ImportError:
    print("note: no pkg_resources (setuptools >= 81): detectron2.model_zoo and the LazyConfig "
          "configs will not import here")
sys.exit("\n".join(bad) if bad else 0)
EOF
}

generate_datasets() {
  "$PY" - "$@" << 'EOF'
import sys
from detectron2.data import DatasetCatalog
import focal_eiou_d2.data  # noqa: F401  registers the shapes datasets
for name in sys.argv[1:]:
    print(name, len(DatasetCatalog.get(name)), "images", flush=True)
EOF
}

# ---- the parts ----
tests_cuda() {
  local files
  files=$(grep -rl "needs CUDA" tests --include='test_*.py')
  "$PY" -m pytest -q -rs -p no:cacheprovider -m skipif $XDIST $files || return
  if [ "$MODE" = gpu ] && grep -q "needs CUDA" "$WORK/logs/tests_cuda.log"; then
    echo "FAIL: tests needing CUDA were skipped on a CUDA machine"
    return 1
  fi
}

tests_rest() {
  "$PY" -m pytest -q -rs -p no:cacheprovider $XDIST "$@"
}

train() {
  local config=$1 folder=$WORK/train/$2
  shift 2
  "$PY" train_net.py --num-gpus 1 --config-file "$config" "$@" OUTPUT_DIR "$folder" || return
  "$PY" - "$folder" << 'EOF'
import json, math, os, sys
folder = sys.argv[1]
with open(os.path.join(folder, "metrics.json")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
last = max((r for r in rows if "total_loss" in r), key=lambda r: r["iteration"])
evaluation = [r for r in rows if "bbox/AP" in r]
ap = f", bbox/AP {evaluation[-1]['bbox/AP']:.2f}" if evaluation else ", not evaluated"
losses = {k: v for k, v in last.items() if k.startswith("loss") or k == "total_loss"}
print(f"run: iteration {last['iteration'] + 1}, total_loss {last['total_loss']:.3f}{ap}")
assert all(math.isfinite(v) for v in losses.values()), f"non-finite losses {losses}"
assert os.path.isfile(os.path.join(folder, "model_final.pth")), "no model_final.pth"
EOF
}

bench_train() {
  local size=$1
  shift
  "$PY" benchmarks/bench_train.py --config-file "$BENCH_CONFIG" --device "$DEVICE" \
    --output-dir "$WORK/bench_train_$size" --json "$WORK/bench_train_$size.json" "$@"
}

bench_losses() {
  "$PY" benchmarks/bench_losses.py "$@" --json "$WORK/bench_losses.json"
}

nccl() {
  "$PY" - --backend "$BACKEND" --device "$DEVICE" << 'EOF'
"""Eq. 11's collectives through a real process group, the distributed path forced.

One process forms a group of world size 1 and Detectron2's comm.get_world_size() returns 2, so
the losses call torch.distributed.all_reduce for real; NCCL raises on a tensor off the GPU.
"""
import argparse, os, sys, tempfile

import torch
import torch.distributed as dist
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.utils import comm
from detectron2.utils.events import EventStorage

from focal_eiou_d2.modeling import BoxRegressionLoss
from focal_eiou_d2.modeling.box_loss import EQ11_FORMS

sys.path.insert(0, "tests")
from tiny_models import build_tiny_model, make_inputs  # noqa: E402

FORCED_WORLD_SIZE = 2
PAIRS = 4096  # as many as a real batch has
parser = argparse.ArgumentParser()
parser.add_argument("--backend", required=True)
parser.add_argument("--device", required=True)
args = parser.parse_args()
device = torch.device(args.device)
if device.type == "cuda":
    torch.cuda.set_device(0)
    device = torch.device("cuda", 0)
store = os.path.join(tempfile.mkdtemp(), "store")
dist.init_process_group(args.backend, init_method=f"file://{store}", rank=0, world_size=1)
real_all_reduce, real_world_size = dist.all_reduce, comm.get_world_size
reduced, failures = [], []


def recording_all_reduce(tensor, *args, **kwargs):
    reduced.append(tensor.device)
    return real_all_reduce(tensor, *args, **kwargs)


def forced(function):
    """function() with the distributed path forced; returns its result and the reduced devices."""
    reduced.clear()
    dist.all_reduce, comm.get_world_size = recording_all_reduce, lambda: FORCED_WORLD_SIZE
    try:
        return function(), list(reduced)
    finally:
        dist.all_reduce, comm.get_world_size = real_all_reduce, real_world_size


def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message, flush=True)
    if not ok:
        failures.append(message)


if args.backend == "nccl":
    try:
        real_all_reduce(torch.ones(2, dtype=torch.float64))
        rejected = "no error"
    except Exception as error:  # what NCCL raises for a host tensor
        rejected = f"{type(error).__name__}: {error}"
    check(rejected != "no error", f"control: NCCL rejects a CPU tensor ({rejected[:90]})")

generator = torch.Generator().manual_seed(0)
corner = torch.rand(PAIRS, 2, generator=generator) * 500
anchors = torch.cat([corner, corner + 20 + torch.rand(PAIRS, 2, generator=generator) * 80], 1)
targets = anchors + torch.randn(PAIRS, 4, generator=generator) * 6
initial = torch.randn(PAIRS, 4, generator=generator) * 0.1
anchors, targets = anchors.to(device), targets.to(device)
normalizer = torch.tensor(float(PAIRS), device=device)
for form in EQ11_FORMS:
    loss = BoxRegressionLoss("focal_eiou", Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), eq11_form=form)
    deltas = initial.to(device).requires_grad_()
    alone = loss(anchors, deltas, targets, normalizer).detach()
    value, devices = forced(lambda: loss(anchors, deltas, targets, normalizer))
    value.backward()
    # One process: the sums are its own, so sum_of_weights is the undistributed value times the
    # world size (which DDP's gradient averaging divides out) and mean_weight the same value.
    expected = alone * (FORCED_WORLD_SIZE if form == "sum_of_weights" else 1)
    check(bool(devices) and all(d == device for d in devices),
          f"{form}: {len(devices)} all_reduce call(s), on {sorted(set(map(str, devices)))}")
    check(torch.allclose(value.detach(), expected, rtol=1e-5),
          f"{form}: loss {value.item():.6f}, expected {expected.item():.6f}")
    check(bool(torch.isfinite(deltas.grad).all()) and deltas.grad.abs().sum().item() > 0,
          f"{form}: finite non-zero gradient")

for architecture in ("retinanet", "fcos", "faster_rcnn"):
    model = build_tiny_model(architecture, "focal_eiou").to(device).train()
    with EventStorage(0):
        losses, devices = forced(lambda: model(make_inputs(num_images=2, boxes_per_image=3)))
        sum(losses.values()).backward()
    values = {name: value.item() for name, value in losses.items()}
    check(bool(devices) and all(d == device for d in devices)
          and all(torch.isfinite(torch.tensor(list(values.values())))),
          f"{architecture} training step: {len(devices)} all_reduce call(s) on "
          f"{sorted(set(map(str, devices)))}, losses {values}")
dist.destroy_process_group()
sys.exit(f"{len(failures)} check(s) failed" if failures else 0)
EOF
}

# The reproduction protocol's runs (docs/reproduction.md) on this device: every (row, seed),
# $PROTOCOL_JOBS at a time, each an ablation runner of its own (the runner locks its folders);
# none starts with less than $PROTOCOL_MIN_RUN_S seconds of the budget left. The result files are
# gathered in $WORK/protocol/results afterwards, also those of runs cut off after writing theirs.
PROTOCOL="--config-file configs/reproduction/retinanet_R_18_FPN_shapes1.yaml
  --pretrain reproduction/backbones/retinanet_R_18_FPN_shapes1.pth"
protocol() {
  mkdir -p "$WORK/protocol/runs"
  local loss seed
  for loss in $PROTOCOL_LOSS_LIST; do
    for seed in $PROTOCOL_SEED_LIST; do echo "$loss $seed"; done
  done | xargs -r -P "$PROTOCOL_JOBS" -L 1 bash -c 'protocol_run "$@"' _
}

protocol_run() {
  local loss=$1 seed=$2 folder=$WORK/protocol/runs/$1__seed$2 begin=$(date +%s) rc
  if [ $((PROTOCOL_DEADLINE - begin)) -lt "$PROTOCOL_MIN_RUN_S" ]; then
    echo "$loss seed $seed: not started, $((PROTOCOL_DEADLINE - begin))s of the budget left"
    return 0
  fi
  # shellcheck disable=SC2086  # the options, one word each, as exported
  "$PY" -m focal_eiou_d2.tools.ablate $PROTOCOL --losses "$loss" --seeds "$seed" \
    --output "$folder" --results-dir "$folder/results" $PROTOCOL_OPT_LIST > "$folder.log" 2>&1
  rc=$?
  echo "$loss seed $seed: rc $rc, $(($(date +%s) - begin))s"
  [ $rc -eq 0 ] || tail -n 20 "$folder.log"
  return $rc
}

protocol_table() {
  # shellcheck disable=SC2086
  "$PY" -m focal_eiou_d2.tools.ablate $PROTOCOL --losses $PROTOCOL_LOSS_LIST \
    --seeds $PROTOCOL_SEED_LIST --finished-only --output "$WORK/protocol/table" \
    --results-dir "$WORK/protocol/results" $PROTOCOL_OPT_LIST
}

# ---- run ----
log "mode $MODE, python $PY, repo $REPO, work $WORK, output $OUT"
: > "$ROWS"
begin=$(date +%s)
if ! setup >> "$OUT/env.log" 2>&1; then
  echo "| setup | FAIL | $(($(date +%s) - begin)) | see env.log |" >> "$ROWS"
  write_summary
  log "set-up failed: nothing else can run"
  exit 1
fi
export PYTHONPATH DETECTRON2_DATASETS=$WORK/datasets TORCHINDUCTOR_CACHE_DIR=$WORK/inductor
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
export -f tests_cuda tests_rest train bench_train bench_losses nccl generate_datasets
export PY MODE WORK DEVICE BACKEND BENCH_CONFIG
XDIST=""
if "$PY" -c "import xdist" 2> /dev/null; then
  XDIST="-n 4"
fi
export XDIST
if ! setup_check >> "$OUT/env.log" 2>&1; then
  echo "| setup | FAIL | $(($(date +%s) - begin)) | see env.log |" >> "$ROWS"
  write_summary
  log "set-up check failed: nothing else can run"
  exit 1
fi
echo "| setup | PASS | $(($(date +%s) - begin)) | Detectron2 main and wheels in use |" >> "$ROWS"
{
  "$PY" -m focal_eiou_d2.collect_env
  if command -v nvidia-smi > /dev/null; then nvidia-smi; fi
} >> "$OUT/env.log" 2>&1
# One process per split, in the background while the first parts run (on the GPU machine: about
# a minute for shapes_train on one core).
datasets_pids=()
for name in "${DATASETS[@]}"; do
  timeout 240 bash -c 'generate_datasets "$1"' _ "$name" >> "$WORK/logs/datasets.log" 2>&1 &
  datasets_pids+=($!)
done

if [ "$JOB" = protocol ]; then
  datasets_rc=0
  for pid in "${datasets_pids[@]}"; do
    wait "$pid" || datasets_rc=$?
  done
  { echo "===== datasets (rc $datasets_rc)"; cat "$WORK/logs/datasets.log"; } >> "$OUT/env.log"
  if [ "$datasets_rc" -ne 0 ]; then  # the runs would all generate them at once
    echo "| datasets | FAIL | - | generating ${DATASETS[*]}: see env.log |" >> "$ROWS"
    write_summary
    log "dataset generation failed: no protocol run"
    exit 1
  fi
  # Arrays do not pass to the part's shell: its lists go as words (none of them holds a space).
  export PROTOCOL_LOSS_LIST="${PROTOCOL_LOSSES[*]}" PROTOCOL_SEED_LIST="${PROTOCOL_SEEDS[*]}"
  export PROTOCOL_OPT_LIST="${PROTOCOL_OPTS[*]}" PROTOCOL_JOBS PROTOCOL PROTOCOL_MIN_RUN_S
  export PROTOCOL_DEADLINE=$((START + BUDGET_S))
  export -f protocol protocol_run
  # the CPU's cores shared between the runs (data loading, evaluation)
  export OMP_NUM_THREADS=$(($(nproc) / PROTOCOL_JOBS > 0 ? $(nproc) / PROTOCOL_JOBS : 1))
  run_part protocol "$BUDGET_S" protocol.log bash -c protocol
  mkdir -p "$WORK/protocol/results"
  cp "$WORK"/protocol/runs/*/results/*.json "$WORK/protocol/results/" 2> /dev/null
  tar -czf "$OUT/protocol_results.tar.gz" -C "$WORK/protocol/results" .
  protocol_table >> "$OUT/protocol.log" 2>&1
  write_summary
  log "done in $(($(date +%s) - START))s: $OUT/summary.md, $OUT/protocol_results.tar.gz"
  grep -qE '\| (FAIL|TIMEOUT) \|' "$ROWS" && exit 1
  exit 0
fi

run_part tests_cuda 150 tests.log bash -c tests_cuda
run_part nccl 45 nccl.log bash -c nccl
datasets_rc=0
for pid in "${datasets_pids[@]}"; do
  wait "$pid" || datasets_rc=$?
done
{ echo "===== datasets (rc $datasets_rc)"; cat "$WORK/logs/datasets.log"; } >> "$OUT/env.log"
if [ "$datasets_rc" -ne 0 ]; then
  echo "| datasets | FAIL | - | generating ${DATASETS[*]}: see env.log |" >> "$ROWS"
fi
# Arrays do not pass through bash -c: each part takes its own as arguments.
run_part train_retinanet 60 train_net.log bash -c 'train "$@"' _ "$RETINANET" retinanet \
  "${TRAIN_OPTS[@]}"
run_part train_faster_rcnn 60 train_net.log bash -c 'train "$@"' _ "$FASTER_RCNN" faster_rcnn \
  "${TRAIN_OPTS[@]}"
run_part bench_train_256 60 bench_train.log bash -c 'bench_train "$@"' _ 256 "${BENCH_256[@]}"
run_part bench_train_800 75 bench_train.log bash -c 'bench_train "$@"' _ 800 "${BENCH_800[@]}"
run_part bench_losses 60 bench_losses.log bash -c 'bench_losses "$@"' _ "${LOSSES_ARGS[@]}"
run_part tests_rest 120 tests.log bash -c 'tests_rest "$@"' _ "${REST_TESTS[@]}"

write_summary
log "done in $(($(date +%s) - START))s: $OUT/summary.md"
if grep -qE '\| (FAIL|TIMEOUT) \|' "$ROWS"; then
  exit 1
fi
