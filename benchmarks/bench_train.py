"""Benchmark of detector training speed per box loss (not a test): iterations per second.

Builds the trainer of ``--config-file`` (a YAML config) once per loss of ``--losses`` (same seed,
same data order), with that loss in the model's box head at the paper's weight
(``YamlRunConfig.loss_overrides``), and trains each ``--warmup`` untimed iterations. Then
``--iters`` timed iterations per loss follow in ``--rounds`` blocks that alternate between the
losses, so that a drift of the machine (clocks, other processes) affects every loss alike. Each
iteration is the training step without Detectron2's hooks and metrics: the next batch of the
trainer's data loader, forward, backward, optimizer step. Prints the iterations per second of
each loss and its ratio to the first loss's, all measured in one run, the rate of each block (their
spread shows the noise) and the share of the time spent waiting for data (above a few percent,
the data loader, not the model, sets the pace: raise DATALOADER.NUM_WORKERS). The losses must
stay finite.

The model trains on the embedded shapes dataset (``--dataset``) at ``--image-size`` pixels,
from scratch with trainable BatchNorm (no ImageNet weights offline; the model zoo's frozen
BatchNorm over random weights gives NaN losses within a few iterations), unless
``--keep-datasets`` keeps the config's own data and sizes.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_train.py --iters 20 --warmup 5 \\
        --config-file configs/quickstart/retinanet_R_18_FPN_shapes.yaml
    python benchmarks/bench_train.py --device cuda --batch-size 16 --iters 100 --warmup 20 \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml
    python benchmarks/bench_train.py --device cuda --batch-size 4 --image-size 800 \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml
"""

import argparse
import json
import math
import time

import torch
from detectron2.utils.events import EventStorage

from focal_eiou_d2.engine import load_run_config

DEFAULT_DATASET = "shapes_train"
DEFAULT_IMAGE_SIZE = 256  # the shapes dataset's own image size


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, help="a YAML config")
    parser.add_argument("--losses", nargs="+", default=["smooth_l1", "focal_eiou"])
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per loss")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations per loss")
    parser.add_argument(
        "--rounds", type=int, default=4, help="timed blocks per loss, alternating between losses"
    )
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE, e.g. cpu, cuda")
    parser.add_argument("--seed", type=int, default=0, help="SEED: weights and data order")
    parser.add_argument("--batch-size", type=int, help="SOLVER.IMS_PER_BATCH (default: config's)")
    parser.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"training dataset (default {DEFAULT_DATASET}; e.g. shapes_mini_train)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help=f"side of the training images in px (default {DEFAULT_IMAGE_SIZE}; COCO's is 800)",
    )
    parser.add_argument(
        "--keep-datasets",
        action="store_true",
        help="train on the config's datasets at its image sizes (no --dataset, --image-size)",
    )
    parser.add_argument("--output-dir", default="output/bench_train", help="the trainers' logs")
    parser.add_argument("--json", help="also write the results to this path")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    if not args.config_file.endswith((".yaml", ".yml")):
        parser.error(
            f"--config-file must be a YAML config (the benchmark sets YAML keys), got "
            f"{args.config_file} (configs/COCO-Detection/ has the RetinaNet and Faster R-CNN ones)"
        )
    if min(args.iters, args.rounds) < 1 or args.warmup < 0 or args.iters < args.rounds:
        parser.error("need --iters >= --rounds >= 1 and --warmup >= 0")
    if args.keep_datasets and (args.dataset != DEFAULT_DATASET or args.image_size):
        parser.error("--keep-datasets trains on the config's data: drop --dataset/--image-size")
    return args


def base_overrides(args):
    """Config overrides of every loss's run: device, batch size, data, from-scratch training."""
    opts = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", args.device, "SEED", str(args.seed)]
    opts += ["DATASETS.TEST", "()"]
    if args.batch_size:
        opts += ["SOLVER.IMS_PER_BATCH", str(args.batch_size)]
    if not args.keep_datasets:
        size = str(args.image_size or DEFAULT_IMAGE_SIZE)
        opts += [
            "DATASETS.TRAIN", f"('{args.dataset}',)",
            "INPUT.MIN_SIZE_TRAIN", f"({size},)", "INPUT.MAX_SIZE_TRAIN", size,
            "MODEL.RESNETS.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
        ]  # fmt: skip
    return opts + ["OUTPUT_DIR", args.output_dir] + list(args.opts)


class TrainingRun:
    """The model, optimizer and batches of one loss's trainer, stepped without hooks."""

    def __init__(self, config):
        torch.manual_seed(config.seed)
        trainer = config.build_trainer()
        self.model, self.optimizer = trainer.model, trainer.optimizer
        self.batches = iter(trainer.data_loader)
        self.synchronize = torch.cuda.synchronize if config.device.startswith("cuda") else None
        self.blocks = []  # (iterations, seconds) of each timed block
        self.data_seconds = 0.0
        self.losses = {}

    def step(self, count):
        """Train ``count`` iterations; returns their wall-clock seconds (device work included)
        and, of those, the seconds spent waiting for the data loader."""
        if self.synchronize:
            self.synchronize()
        start = time.perf_counter()
        data_seconds = 0.0
        for _ in range(count):
            waiting = time.perf_counter()
            batch = next(self.batches)
            data_seconds += time.perf_counter() - waiting
            losses = self.model(batch)
            self.optimizer.zero_grad()
            sum(losses.values()).backward()
            self.optimizer.step()
        if self.synchronize:
            self.synchronize()
        self.losses = losses
        return time.perf_counter() - start, data_seconds

    def finite_losses(self):
        """The last iteration's losses (dict of float); raises FloatingPointError if not finite."""
        values = {key: float(value.detach()) for key, value in self.losses.items()}
        if not all(math.isfinite(value) for value in values.values()):
            raise FloatingPointError(f"non-finite training losses {values}")
        return values


def blocks(iters, rounds):
    """``iters`` split into ``rounds`` nearly equal block sizes."""
    return [iters // rounds + (index < iters % rounds) for index in range(rounds)]


def main(argv=None):
    args = parse_args(argv)
    opts = base_overrides(args)
    base = load_run_config(args.config_file, opts)
    configs, runs = {}, {}
    with EventStorage(0):  # the heads log to it
        for loss in args.losses:
            configs[loss] = load_run_config(args.config_file, opts + base.loss_overrides(loss))
            runs[loss] = TrainingRun(configs[loss])
            runs[loss].step(args.warmup)
        for size in blocks(args.iters, args.rounds):
            for run in runs.values():
                seconds, data_seconds = run.step(size)
                run.blocks.append((size, seconds))
                run.data_seconds += data_seconds
    results = {}
    for loss, run in runs.items():
        seconds = sum(block_seconds for _, block_seconds in run.blocks)
        results[loss] = {
            "iters_per_s": args.iters / seconds,
            "block_iters_per_s": [size / block_seconds for size, block_seconds in run.blocks],
            "data_wait_fraction": run.data_seconds / seconds,
            "last_losses": run.finite_losses(),
        }
    config = configs[args.losses[0]]
    images = config.cfg.SOLVER.IMS_PER_BATCH
    size = config.cfg.INPUT.MIN_SIZE_TRAIN
    first = results[args.losses[0]]["iters_per_s"]
    print(f"\n| loss | it/s | vs {args.losses[0]} | blocks (it/s) | data wait |")
    print("|---|---|---|---|---|")
    for loss, row in results.items():
        spread = ", ".join(f"{rate:.2f}" for rate in row["block_iters_per_s"])
        ratio = row["iters_per_s"] / first
        wait = row["data_wait_fraction"]
        print(f"| {loss} | {row['iters_per_s']:.2f} | {ratio:.3f}x | {spread} | {wait:.0%} |")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    setting = {
        "device": device,
        "torch": torch.__version__,
        "config": args.config_file,
        "dataset": list(config.train_datasets),
        "image_size": list(size),
        "images_per_iter": images,
        "warmup": args.warmup,
        "iters": args.iters,
        "rounds": args.rounds,
        "opts": list(args.opts),
    }
    print("\n" + ", ".join(f"{key}: {value}" for key, value in setting.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**setting, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
