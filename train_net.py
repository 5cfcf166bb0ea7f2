#!/usr/bin/env python
"""Train or evaluate a Detectron2 model with focal_eiou_d2's box-regression losses.

Takes YAML configs (overrides as ``KEY VALUE``, as Detectron2's ``tools/train_net.py``) and
LazyConfig ``.py`` files (overrides as ``key=value``, as its ``tools/lazyconfig_train_net.py``).

Examples:
    # 8 GPUs on one machine
    python train_net.py --num-gpus 8 \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x_focal_eiou.yaml
    python train_net.py --num-gpus 8 \\
        --config-file configs/lazy/fcos_R_50_FPN_1x_focal_eiou.py train.max_iter=90000
    # resume an interrupted run (same config, same output folder)
    python train_net.py --num-gpus 8 --resume --config-file ...
    # your own COCO-format data (repeat --coco-dataset for each split)
    python train_net.py \\
        --config-file configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml \\
        --coco-dataset my_train train.json images/ --coco-dataset my_val val.json images/ \\
        DATASETS.TRAIN "('my_train',)" DATASETS.TEST "('my_val',)" OUTPUT_DIR output/mine
    # evaluation of a trained model
    python train_net.py --eval-only \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x_focal_eiou.yaml \\
        MODEL.WEIGHTS output/model_final.pth
    # two machines with 8 GPUs each (run on both, --machine-rank 0 and 1)
    python train_net.py --config-file ... --num-gpus 8 --num-machines 2 --machine-rank 0 \\
        --dist-url tcp://<host of rank 0>:29500

An output folder belongs to one run and one config: a second process training into it is
refused, and so is another config, unless ``--force`` (which deletes the run it replaces).
"""

import os
import sys

from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils import comm

from focal_eiou_d2.data import DatasetError, add_coco_dataset_argument, dataset_classes
from focal_eiou_d2.engine import (
    OutputDirError,
    check_datasets_exist,
    claim_output_dir,
    load_run_config,
    load_trained_weights,
)
from focal_eiou_d2.engine.setup import resolve_config_file


def load_config(args):
    """The config of the command line (registers its ``--coco-dataset`` datasets: every process
    calls it)."""
    return load_run_config(
        args.config_file,
        args.opts,
        coco_datasets=args.coco_datasets,
        classes_from="run" if args.eval_only else "train",
    )


def evaluate(config, args):
    """Evaluate the config's weights (or, with --resume, the output folder's last checkpoint)."""
    model = config.build_model()
    weights = config.weights
    last = os.path.join(config.output_dir, "last_checkpoint")
    if args.resume and os.path.isfile(last):
        with open(last) as f:
            weights = os.path.join(config.output_dir, f.read().strip())
    load_trained_weights(model, weights)
    results = config.evaluate(model)
    if comm.is_main_process() and config.kind == "yaml":
        verify_results(config.cfg, results)
    return results


def main(args):
    config = load_config(args)
    default_setup(config.cfg, args)
    if args.eval_only:
        return evaluate(config, args)
    trainer = config.build_trainer()
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def check_and_claim(args):
    """Before any process starts: check the config and its datasets and, to train, claim the
    output folder for this run (see the module docstring)."""
    config = load_config(args)
    names = config.test_datasets if args.eval_only else config.train_datasets + config.test_datasets
    check_datasets_exist(names)
    if args.eval_only or args.machine_rank != 0:
        return
    claim_output_dir(config, force=args.force, classes=dataset_classes(config.train_datasets))
    has_checkpoint = os.path.isfile(os.path.join(config.output_dir, "last_checkpoint"))
    if has_checkpoint and not (args.resume or args.force):
        raise OutputDirError(
            f"{config.output_dir} already holds a run of this config; pass --resume to continue "
            "it (or to evaluate it again once finished), or --force to delete it and start over."
        )


def parse_args(argv=None):
    parser = default_argument_parser()
    add_coco_dataset_argument(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete the run in the output folder (another config's, or this one's), train afresh",
    )
    args = parser.parse_args(argv)
    if args.num_gpus < 1 or args.num_machines < 1 or not 0 <= args.machine_rank < args.num_machines:
        parser.error("--num-gpus and --num-machines must be >= 1, 0 <= --machine-rank < machines")
    try:
        args.config_file = resolve_config_file(args.config_file)
    except FileNotFoundError as error:
        parser.error(str(error))
    return args


if __name__ == "__main__":
    args = parse_args()
    print("Command Line Args:", args)
    try:
        check_and_claim(args)
    except (OutputDirError, DatasetError, FileNotFoundError, KeyError, ValueError) as error:
        sys.exit(f"train_net.py: error: {error}")
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
