"""Detectron2's DefaultTrainer with COCO evaluation and checks of the configured datasets."""

import itertools
import os

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultTrainer, default_setup
from detectron2.evaluation import COCOEvaluator

from focal_eiou_d2 import add_focal_eiou_config
from focal_eiou_d2.collect_env import detectron2_has_compiled_ops

from .rng import rng_state, set_rng_state


class FocalEIoUTrainer(DefaultTrainer):
    """DefaultTrainer that evaluates with ``COCOEvaluator`` (fast C++ COCOeval only if compiled)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        # Detectron2's grouped train loader creates its DataLoader iterator at the first batch,
        # drawing a seed from torch's global generator. Start it now, before a resume restores
        # the generators, so that the step after a resume samples as an uninterrupted run does.
        batches = self._trainer._data_loader_iter
        self._trainer._data_loader_iter = itertools.chain([next(batches)], batches)

    def train(self):
        """Train, then return the results of the evaluation after the last iteration.

        Detectron2's ``DefaultTrainer.train`` returns them only when TEST.EXPECTED_RESULTS is set.

        Returns:
            OrderedDict or None: e.g. ``{"bbox": {"AP": ..., ...}}``; None if nothing was evaluated.
        """
        super().train()
        return getattr(self, "_last_eval_results", None)

    def state_dict(self):
        """The checkpointed training state, with what Detectron2 0.6 leaves out.

        Detectron2 0.6's ``DefaultTrainer`` saves neither the optimizer (momentum, learning rates)
        nor the random generators, so a resumed run diverges from an uninterrupted one. Both are
        added here; the data loader's order still restarts after a resume, as in Detectron2.
        """
        state = super().state_dict()
        state["_trainer"] = self._trainer.state_dict()
        state["rng"] = rng_state()
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])
        if "rng" in state_dict:
            set_rng_state(state_dict["rng"])

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
