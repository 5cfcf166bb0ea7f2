#!/usr/bin/env bash
# Rebuild the tables and plots of the protocol (docs/reproduction.md) from its result files,
# without training: reproduction/tables/<table>.md (the command, then the table),
# <table>_ap_vs_iou.png and, for Fig. 9's sweeps, <table>_sweep.png. Run it after adding result
# files: tests/tools/test_reproduction_tables.py checks that the tables match the committed ones.
#
#   scripts/reproduction_tables.sh        (or: make tables)
#
# Each table is its command plus --finished-only (into output/reproduction/tables/): runs that
# have not finished are left out (the table's "seeds" column counts those it has). The command
# itself trains what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

# The protocol's commands (docs/reproduction.md): without --finished-only they train what is missing.
retinanet=(--config-file configs/reproduction/retinanet_R_18_FPN_shapes1.yaml
  --pretrain configs/reproduction/pretrain_retinanet_R_18_FPN_shapes1.yaml
  --output output/reproduction/retinanet_shapes1
  --results-dir reproduction/results/retinanet_shapes1)
# The same protocol from the backbone kept in git (reproduction/backbones/); retinanet_shapes1's
# backbone was not kept, and a pretraining trained again need not reproduce its bytes, so its
# tables are rebuilt but no longer extended. A results folder holds one fingerprint (code,
# protocol, torch, device): retinanet_shapes1_v2 (Fig. 9's gamma) is an earlier machine's and
# code's, retinanet_shapes1_avx512 (Tables 1 and 2) one AVX-512 machine's.
kept() { # array name, results folder name: the protocol from the kept backbone into that folder
  local -n into=$1
  into=(--config-file configs/reproduction/retinanet_R_18_FPN_shapes1.yaml
    --pretrain reproduction/backbones/retinanet_R_18_FPN_shapes1.pth
    --output "output/reproduction/$2" --results-dir "reproduction/results/$2")
}
kept retinanet_kept retinanet_shapes1_v2
kept retinanet_avx512 retinanet_shapes1_avx512
# The box-loss zoo, on code 370bc6d230daa7a9 and one AVX-512 machine's fingerprint
kept retinanet_zoo retinanet_shapes1_zoo
fcos=(--config-file configs/reproduction/fcos_R_18_FPN_shapes1.py
  --pretrain configs/reproduction/pretrain_retinanet_R_18_FPN_shapes1.yaml
  --output output/reproduction/fcos_shapes1
  --results-dir reproduction/results/fcos_shapes1)
seeds=(--seeds 0 1 2 3 4)
control="smooth_l1[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25]"
gamma=MODEL.FOCAL_EIOU.GAMMA
beta=MODEL.FOCAL_EIOU.FOCAL_L1_BETA
focal=MODEL.FOCAL_EIOU.FOCAL_GAMMA

tabulate() { # folder, then the protocol's command: its tables, into folder (the last
  # --output counts), from the result files, without training
  local folder=$1
  shift
  "$PY" -m focal_eiou_d2.tools.ablate "$@" --output "$folder" --finished-only \
    > "$folder.log" 2>&1 || { cat "$folder.log"; exit 1; }
}

table() { # name, then the protocol's command: the table (after the command) and its plot
  local name=$1 folder=output/reproduction/tables/$1
  shift
  echo "[tables] $name"
  tabulate "$folder" "$@"
  local words=() arg
  for arg in "$@"; do [[ $arg == *"["* ]] && words+=("\"$arg\"") || words+=("$arg"); done
  {
    echo "Command: \`python -m focal_eiou_d2.tools.ablate ${words[*]}\`"
    echo
    cat "$folder/table.md"
  } > "reproduction/tables/$name.md"
  cp "$folder/ap_vs_iou.png" "reproduction/tables/${name}_ap_vs_iou.png"
}

sweep() { # name, then the protocol's command with --set: the sweep plot only
  local name=$1 folder=output/reproduction/tables/$1_sweep
  shift
  echo "[tables] $name (sweep)"
  tabulate "$folder" "$@"
  cp "$folder/sweep.png" "reproduction/tables/${name}_sweep.png"
}

table1() { # prefix, then a protocol: Table 1 against smooth L1, then against EIoU (the paper's
  # orderings among the IoU losses), then Focal-EIoU against v1
  local prefix=$1
  shift
  table "${prefix}_table1" "$@" "${seeds[@]}" \
    --losses smooth_l1 iou giou ciou focal_l1 eiou focal_eiou_v1 focal_eiou
  table "${prefix}_table1_vs_eiou" "$@" "${seeds[@]}" \
    --losses eiou iou giou ciou focal_eiou_v1 focal_eiou
  table "${prefix}_focal_eiou_vs_v1" "$@" "${seeds[@]}" --losses focal_eiou_v1 focal_eiou
}

table2() { # prefix, then a protocol: Table 2 against smooth L1, then FocalL1 against BalancedL1
  local prefix=$1
  shift
  table "${prefix}_table2" "$@" "${seeds[@]}" --losses smooth_l1 balanced_l1 focal_l1
  table "${prefix}_table2_vs_balanced_l1" "$@" "${seeds[@]}" --losses balanced_l1 focal_l1
}

mkdir -p output/reproduction/tables
table retinanet_shapes1 "${retinanet[@]}" "${seeds[@]}" \
  --losses smooth_l1 eiou focal_eiou "$control"
table1 retinanet_shapes1 "${retinanet[@]}"
table2 retinanet_shapes1 "${retinanet[@]}"
# Fig. 9 (gamma of Focal-EIoU): the rows give the differences to the default gamma 0.5 ...
table retinanet_shapes1_v2_gamma "${retinanet_kept[@]}" "${seeds[@]}" --baseline focal_eiou \
  --losses "focal_eiou[$gamma=0.25]" focal_eiou "focal_eiou[$gamma=1.0]" "focal_eiou[$gamma=2.0]"
# ... the grid, the same runs, gives Fig. 9's plot (AP against gamma)
sweep retinanet_shapes1_v2_gamma "${retinanet_kept[@]}" "${seeds[@]}" \
  --losses focal_eiou --set "$gamma=0.25,0.5,1.0,2.0"
# Tables 1 and 2 from the kept backbone, on one machine's fingerprint
table1 retinanet_shapes1_avx512 "${retinanet_avx512[@]}"
table2 retinanet_shapes1_avx512 "${retinanet_avx512[@]}"
# Fig. 9, beta of FocalL1 (differences to the default 0.8) and its plot
table retinanet_shapes1_avx512_focal_l1_beta "${retinanet_avx512[@]}" "${seeds[@]}" \
  --baseline focal_l1 --losses "focal_l1[$beta=0.4]" focal_l1 "focal_l1[$beta=1.0]"
sweep retinanet_shapes1_avx512_focal_l1_beta "${retinanet_avx512[@]}" "${seeds[@]}" \
  --losses focal_l1 --set "$beta=0.4,0.8,1.0"
# ... and the same runs against smooth L1
table retinanet_shapes1_avx512_focal_l1_beta_vs_smooth_l1 "${retinanet_avx512[@]}" "${seeds[@]}" \
  --losses smooth_l1 "focal_l1[$beta=0.4]" focal_l1 "focal_l1[$beta=1.0]"
table fcos_shapes1 "${fcos[@]}" "${seeds[@]}" --losses giou eiou focal_eiou
# The box-loss zoo (with Focal-SIoU and Focal-MPDIoU) against smooth L1, then the same runs
# against Focal-EIoU, then each focal row against its loss without the weight
zoo=(smooth_l1 eiou focal_eiou siou shape_iou wiou_v1 wiou_v3 alpha_iou mpdiou inner_iou nwd
  "siou[$focal=0.5]" "mpdiou[$focal=0.5]")
table retinanet_shapes1_zoo "${retinanet_zoo[@]}" "${seeds[@]}" --losses "${zoo[@]}"
table retinanet_shapes1_zoo_vs_focal_eiou "${retinanet_zoo[@]}" "${seeds[@]}" \
  --baseline focal_eiou --losses "${zoo[@]}"
table retinanet_shapes1_zoo_focal_siou "${retinanet_zoo[@]}" "${seeds[@]}" \
  --losses siou "siou[$focal=0.5]"
table retinanet_shapes1_zoo_focal_mpdiou "${retinanet_zoo[@]}" "${seeds[@]}" \
  --losses mpdiou "mpdiou[$focal=0.5]"
