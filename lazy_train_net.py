#!/usr/bin/env python
"""Train or evaluate a LazyConfig (``.py``) model with focal_eiou_d2's box-regression losses.

Detectron2's ``tools/lazyconfig_train_net.py``: the config's ``model``, ``optimizer``,
``lr_multiplier``, ``dataloader`` and ``train`` nodes (``configs/lazy/``), overrides as
``key=value``; the options of ``train_net.py`` (which hands LazyConfig files over to this one).

Examples:
    python lazy_train_net.py --num-gpus 8 \\
        --config-file configs/lazy/fcos_R_50_FPN_1x_focal_eiou.py train.max_iter=90000
    python lazy_train_net.py --num-gpus 8 --resume --config-file ...   # resume exactly
    python lazy_train_net.py --eval-only --config-file ... \\
        train.init_checkpoint=<run>/model_final.pth
"""

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # importing Detectron2 scripts functions: a torch FutureWarning

from detectron2.engine import default_setup, launch  # noqa: E402

from focal_eiou_d2.engine import (  # noqa: E402
    is_lazy_config,
    load_run_config,
    load_trained_weights,
)
from focal_eiou_d2.engine.lazy_trainer import LazyTrainer, evaluate  # noqa: E402
from focal_eiou_d2.tools.cli import run_command  # noqa: E402
from focal_eiou_d2.tools.train_command import (  # noqa: E402
    check_before_launch,
    dist_timeout,
    evaluation_weights,
    keep_saved_config,
    parse_training_args,
    rendezvous_errors,
)


def do_test(cfg, model):
    """Evaluate ``model`` on ``dataloader.test`` with ``dataloader.evaluator`` (a
    ``COCOEvaluator`` writes to ``<train.output_dir>/inference/<dataset>``); ``LazyTrainer``
    evaluates the same way every ``train.eval_period`` iterations and at the end."""
    return evaluate(cfg, model)


def do_train(args, cfg):
    """Train the config's model; a resumed run continues as the uninterrupted one would.

    Args:
        cfg: a LazyConfig with ``model``, ``optimizer``, ``lr_multiplier``,
            ``dataloader.{train,test,evaluator}`` and ``train`` (``output_dir``,
            ``init_checkpoint``, ``max_iter``, ``amp.enabled``, ``eval_period``, ``log_period``,
            ``device``, ``checkpointer``, ``ddp`` and optionally ``seed``).

    Returns:
        dict or None: the results of the last evaluation.
    """
    trainer = LazyTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def main(args):
    config = load_run_config(
        args.config_file,
        args.opts,
        coco_datasets=args.coco_datasets,  # registered in every process
        classes_from="run" if args.eval_only else "train",  # --eval-only: the weights' classes
    )
    cfg = config.cfg
    with keep_saved_config(config.output_dir, args.eval_only):  # --eval-only: the run's stays
        default_setup(cfg, args)

    if args.eval_only:
        model = config.build_model()
        # with --resume the folder's last checkpoint; it must predict the test data's classes
        weights = evaluation_weights(
            cfg.train.init_checkpoint, cfg.train.output_dir, args.resume, config.test_datasets
        )
        load_trained_weights(model, weights)  # they must fit the model
        return do_test(cfg, model)
    return do_train(args, cfg)


def invoke_main(argv=None):
    args = parse_training_args(argv)
    if not is_lazy_config(args.config_file):
        raise ValueError(
            f"{args.config_file} is not a LazyConfig (.py): train it with train_net.py"
        )
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
    run_command("lazy_train_net.py", invoke_main)  # a user error: one line, exit status 1
