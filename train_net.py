#!/usr/bin/env python
"""Train or evaluate a Detectron2 model with focal_eiou_d2's box-regression losses.

Detectron2's ``tools/train_net.py``, for YAML configs (overrides as ``KEY VALUE``); a LazyConfig
``.py`` file (overrides as ``key=value``) is handed over to ``lazy_train_net.py`` beside this file,
with the same options. Copy it and edit ``Trainer`` to add your evaluators or hooks.

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
    # evaluation of a trained model (or --resume: the output folder's last checkpoint)
    python train_net.py --eval-only \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x_focal_eiou.yaml \\
        MODEL.WEIGHTS output/model_final.pth
    # two machines with 8 GPUs each (run on both, --machine-rank 0 and 1); a machine that has
    # not joined within --dist-timeout minutes (default 30) fails the other
    python train_net.py --config-file ... --num-gpus 8 --num-machines 2 --machine-rank 0 \\
        --dist-url tcp://<host of rank 0>:29500 --dist-timeout 10

An output folder belongs to one run and one config: a second process training into it is
refused, and so is another config, unless ``--force`` (which deletes the run it replaces).
"""

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # importing Detectron2 scripts functions: a torch FutureWarning

from detectron2.engine import default_setup, launch  # noqa: E402
from detectron2.evaluation import verify_results  # noqa: E402
from detectron2.utils import comm  # noqa: E402

from focal_eiou_d2.engine import (  # noqa: E402
    FocalEIoUTrainer,
    is_lazy_config,
    load_run_config,
    load_trained_weights,
)
from focal_eiou_d2.tools.cli import run_command  # noqa: E402
from focal_eiou_d2.tools.train_command import (  # noqa: E402
    check_before_launch,
    dist_timeout,
    evaluation_weights,
    keep_saved_config,
    parse_training_args,
    rendezvous_errors,
)


class Trainer(FocalEIoUTrainer):
    """Detectron2's ``DefaultTrainer`` plus exact resume: a resumed run continues as the
    uninterrupted one would (same random state, same data order).

    Add your hooks by overriding ``build_hooks`` (extend ``super().build_hooks()``), or with
    ``trainer.register_hooks`` in :func:`main`, as with ``DefaultTrainer``.
    """

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        """The evaluator of ``dataset_name``: Detectron2's ``COCOEvaluator``, writing its
        detections to ``<OUTPUT_DIR>/inference/<dataset>``. Return your own here (a
        ``DatasetEvaluators`` for several); training and ``--eval-only`` both use it."""
        return super().build_evaluator(cfg, dataset_name, output_folder)


def setup(args):
    """Create the config and perform basic setups (every process calls it: it registers the
    ``--coco-dataset`` datasets)."""
    config = load_run_config(
        args.config_file,
        args.opts,
        coco_datasets=args.coco_datasets,
        classes_from="run" if args.eval_only else "train",  # --eval-only: the weights' classes
    )
    with keep_saved_config(config.output_dir, args.eval_only):  # --eval-only: the run's stays
        default_setup(config.cfg, args)
    return config.cfg


def main(args):
    if is_lazy_config(args.config_file):  # a LazyConfig: lazy_train_net.py, beside this file
        import lazy_train_net

        return lazy_train_net.main(args)
    cfg = setup(args)

    if args.eval_only:
        model = Trainer.build_model(cfg)
        # with --resume the folder's last checkpoint; it must predict the test data's classes
        weights = evaluation_weights(
            cfg.MODEL.WEIGHTS, cfg.OUTPUT_DIR, args.resume, cfg.DATASETS.TEST
        )
        load_trained_weights(model, weights)  # they must fit the model
        res = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    # Hooks of your own: trainer.register_hooks([...]) here, or override Trainer.build_hooks.
    return trainer.train()


def invoke_main(argv=None):
    args = parse_training_args(argv)
    print("Command Line Args:", args)
    # once, before any process starts: the config, data, weights; claims the output folder
    check_before_launch(args)
    with rendezvous_errors(args):  # a machine that does not join in time: one line, no traceback
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
            timeout=dist_timeout(args),  # --dist-timeout: the rendezvous, the collectives
        )


if __name__ == "__main__":
    run_command("train_net.py", invoke_main)  # a user error: one line, exit status 1
