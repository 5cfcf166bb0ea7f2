"""Benchmark of detector training speed per box loss (not a test): iterations per second.

Builds the model of ``--config-file`` once per loss type in ``--losses`` (same seed, same data
order), trains ``--warmup`` untimed then ``--iters`` timed iterations on the embedded shapes
dataset (or the config's own datasets with ``--keep-datasets``) and prints iterations/s and the
ratio against the first loss, all measured in one run. Losses must stay finite throughout.

    .venv/bin/python benchmarks/bench_train.py --iters 20 --warmup 5 \\
        --config-file configs/quickstart/retinanet_R_18_FPN_shapes.yaml
    python benchmarks/bench_train.py --device cuda --iters 300 \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml
"""

import argparse
import json
import math
import os
import time

import torch
from detectron2.utils.events import EventStorage

from focal_eiou_d2.engine import FocalEIoUTrainer
from focal_eiou_d2.tools.quickstart import build_cfg

LOSS_KEYS = {
    "RetinaNet": ("MODEL.RETINANET.BBOX_REG_LOSS_TYPE",),
    "GeneralizedRCNN": ("MODEL.RPN.BBOX_REG_LOSS_TYPE", "MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE"),
}
# The shapes dataset has 7 classes of 256 px images; COCO configs need these to train on it.
# Without ImageNet weights the backbone trains from scratch, which needs trainable BatchNorm (the
# model zoo's FrozenBN over random weights gives NaN losses within a few iterations).
SHAPES_OPTS = [
    "DATASETS.TRAIN", "('shapes_train',)", "DATASETS.TEST", "('shapes_val',)",
    "MODEL.RETINANET.NUM_CLASSES", "7", "MODEL.ROI_HEADS.NUM_CLASSES", "7",
    "INPUT.MIN_SIZE_TRAIN", "(256,)", "INPUT.MAX_SIZE_TRAIN", "256",
    "MODEL.RESNETS.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
]  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--losses", nargs="+", default=["smooth_l1", "focal_eiou"])
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per loss")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations per loss")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, help="overrides SOLVER.IMS_PER_BATCH")
    parser.add_argument("--keep-datasets", action="store_true", help="train on the config's data")
    parser.add_argument("--json", help="also write the results to this path")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def with_loss(cfg, loss):
    """A copy of ``cfg`` whose box losses are all ``loss``, with the paper's loss weight."""
    arch = "RetinaNet" if "RetinaNet" in cfg.MODEL.META_ARCHITECTURE else "GeneralizedRCNN"
    opts = []
    for key in LOSS_KEYS[arch]:
        opts += [key, loss]
    if arch == "RetinaNet":
        weight = "1.0" if loss in ("smooth_l1", "focal_l1") else "2.5"
        opts += ["MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT", weight]
    cfg = cfg.clone()
    cfg.defrost()
    cfg.merge_from_list(opts)
    cfg.freeze()
    return cfg


def time_training(cfg, warmup, iters):
    """Train ``warmup + iters`` iterations; returns (timed iterations per second, last losses)."""
    torch.manual_seed(cfg.SEED)
    trainer = FocalEIoUTrainer(cfg)
    model, optimizer = trainer.model, trainer.optimizer
    batches = trainer._trainer._data_loader_iter
    sync = torch.cuda.synchronize if cfg.MODEL.DEVICE.startswith("cuda") else (lambda: None)
    with EventStorage(0):
        for step in range(warmup + iters):
            if step == warmup:
                sync()
                start = time.perf_counter()
            losses = model(next(batches))
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        sync()
    elapsed = time.perf_counter() - start
    values = {k: float(v.detach()) for k, v in losses.items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise FloatingPointError(f"non-finite training losses {values}")
    return iters / elapsed, values


def main(argv=None):
    args = parse_args(argv)
    base = [] if args.keep_datasets else list(SHAPES_OPTS)
    base += ["MODEL.WEIGHTS", "", "MODEL.DEVICE", args.device, "OUTPUT_DIR", "output/bench_train"]
    if args.batch_size:
        base += ["SOLVER.IMS_PER_BATCH", str(args.batch_size)]
    base_cfg = build_cfg(args.config_file, base + list(args.opts))
    os.makedirs(base_cfg.OUTPUT_DIR, exist_ok=True)
    results = {}
    for loss in args.losses:
        cfg = with_loss(base_cfg, loss)
        speed, losses = time_training(cfg, args.warmup, args.iters)
        results[loss] = {"iters_per_s": speed, "last_losses": losses}
        images = cfg.SOLVER.IMS_PER_BATCH
        print(f"{loss:>16s}: {speed:7.2f} it/s ({images} images/iter)", flush=True)
    first = results[args.losses[0]]["iters_per_s"]
    print(f"\n| loss | it/s | vs {args.losses[0]} |\n|---|---|---|")
    for loss, row in results.items():
        print(f"| {loss} | {row['iters_per_s']:.2f} | {row['iters_per_s'] / first:.2f}x |")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"\ndevice: {device}, config: {args.config_file}, {args.iters} timed iterations")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "config": args.config_file, "results": results}, f)


if __name__ == "__main__":
    main()
