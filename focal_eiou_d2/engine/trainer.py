"""Detectron2's DefaultTrainer with COCO evaluation and checks of the configured datasets."""

import os

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultTrainer, default_setup
from detectron2.evaluation import COCOEvaluator

from focal_eiou_d2 import add_focal_eiou_config
from focal_eiou_d2.collect_env import detectron2_has_compiled_ops


class FocalEIoUTrainer(DefaultTrainer):
    """DefaultTrainer that evaluates with ``COCOEvaluator`` (fast C++ COCOeval only if compiled)."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return COCOEvaluator(
            dataset_name, output_dir=output_folder, use_fast_impl=detectron2_has_compiled_ops()
        )


def check_datasets_exist(cfg):
    """Raise FileNotFoundError naming the expected files when a configured dataset is missing.

    Datasets whose metadata names a ``json_file`` (Detectron2's builtin COCO registration, or
    ``register_coco_instances``) are checked; datasets generated on first use are skipped.
    """
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        metadata = MetadataCatalog.get(name)
        json_file = metadata.get("json_file", None)
        if json_file is None or metadata.get("generated_on_first_use", False):
            continue
        missing = [p for p in (json_file, metadata.get("image_root", ".")) if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"dataset {name!r} is not where Detectron2 expects it: missing {missing}. "
                f"Builtin datasets are read under $DETECTRON2_DATASETS (now {root!r}); for COCO "
                f"2017 that is {root}/coco/annotations/instances_{{train,val}}2017.json and "
                f"{root}/coco/{{train,val}}2017/. Set DETECTRON2_DATASETS to the folder holding "
                "coco/, or train on the embedded dataset (configs/quickstart/)."
            )


def setup_cfg(args):
    """Build the frozen config from ``--config-file`` and ``--opts`` and run Detectron2's setup.

    Args:
        args (argparse.Namespace): parsed by ``detectron2.engine.default_argument_parser``.

    Returns:
        CfgNode: the frozen config.
    """
    cfg = get_cfg()
    add_focal_eiou_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg
