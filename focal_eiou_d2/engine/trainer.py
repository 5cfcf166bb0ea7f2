"""Detectron2's DefaultTrainer with exact resume (Detectron2 0.6 and main) and COCO evaluation."""

import logging
import os
import weakref

from detectron2.engine import DefaultTrainer, hooks

from focal_eiou_d2.data.train_loader import ResumableTrainLoader, build_train_loader
from focal_eiou_d2.evaluation import build_coco_evaluator

from .checkpoint import TrainingCheckpointer, restore_rank_rng

logger = logging.getLogger(__name__)

# Detectron2's git main checkpoints the optimizer itself (DefaultTrainer.state_dict/load_state_dict
# save and load "_trainer"); 0.6 does not, and this trainer adds it there.
_DETECTRON2_SAVES_OPTIMIZER = "load_state_dict" in vars(DefaultTrainer)
# The name Detectron2's PeriodicCheckpointer gives the checkpoint after the last iteration.
FINAL_CHECKPOINT = "model_final"


class FocalEIoUTrainer(DefaultTrainer):
    """DefaultTrainer whose resumed runs continue exactly as uninterrupted ones would.

    A checkpoint holds, beyond Detectron2's model, iteration and scheduler: the optimizer (on
    Detectron2 0.6; main saves it itself), the random state of every training process, and the
    seed of the training data order; the train loader (:mod:`focal_eiou_d2.data.train_loader`)
    continues at the resumed iteration. Evaluation uses ``COCOEvaluator`` (with the fast C++
    COCOeval only where Detectron2's compiled ops exist).
    """

    @classmethod
    def build_train_loader(cls, cfg):
        return build_train_loader(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_coco_evaluator(cfg, dataset_name, output_folder)

    def build_hooks(self):
        """Detectron2's hooks, with a :class:`TrainingCheckpointer` saving on every process.

        ``DefaultTrainer.__init__`` creates its checkpointer just before it builds the hooks;
        it is replaced here so that the periodic checkpoints and ``resume_or_load`` use the same
        one. Detectron2 runs the periodic checkpointer on the main process only; saving gathers
        every process's random state, so every process runs it (only the main one writes).
        """
        self.checkpointer = TrainingCheckpointer(
            self.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        hook_list = super().build_hooks()
        if not any(isinstance(hook, hooks.PeriodicCheckpointer) for hook in hook_list):
            position = next(
                index for index, hook in enumerate(hook_list) if isinstance(hook, hooks.EvalHook)
            )
            checkpointer = hooks.PeriodicCheckpointer(
                self.checkpointer, self.cfg.SOLVER.CHECKPOINT_PERIOD
            )
            hook_list.insert(position, checkpointer)
        return hook_list

    def resume_or_load(self, resume=True):
        """Resume from OUTPUT_DIR's last checkpoint (if ``resume`` and there is one), restoring
        this process's random state; otherwise load MODEL.WEIGHTS and start at iteration 0."""
        if not resume:
            self.checkpointer.load(self.cfg.MODEL.WEIGHTS, checkpointables=[])
            return
        checkpoint = self.checkpointer.resume_training(self.cfg.MODEL.WEIGHTS)
        if checkpoint is not None:
            self.start_iter = self.iter + 1
            restore_rank_rng(checkpoint.get("rng_states"))

    def state_dict(self):
        state = super().state_dict()
        if not _DETECTRON2_SAVES_OPTIMIZER:
            state["_trainer"] = self._trainer.state_dict()
        if isinstance(self.data_loader, ResumableTrainLoader):
            state["data_order"] = self.data_loader.state_dict()
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if not _DETECTRON2_SAVES_OPTIMIZER:
            self._trainer.load_state_dict(state_dict["_trainer"])
        if isinstance(self.data_loader, ResumableTrainLoader) and "data_order" in state_dict:
            self.data_loader.load_state_dict(state_dict["data_order"])
        elif self.iter > 0:
            logger.warning(
                "this train loader (DATALOADER.SAMPLER_TRAIN = %s) cannot continue its data order: "
                "the resumed run sees other batches than an uninterrupted one would",
                self.cfg.DATALOADER.SAMPLER_TRAIN,
            )

    def train(self):
        """Train from ``start_iter``, then return the results of the last evaluation.

        Detectron2's ``DefaultTrainer.train`` returns them only when TEST.EXPECTED_RESULTS is set.

        Returns:
            OrderedDict or None: e.g. ``{"bbox": {"AP": ..., ...}}``; None if nothing was evaluated.
        """
        if isinstance(self.data_loader, ResumableTrainLoader):
            self.data_loader.start_at(self.start_iter)
        final = os.path.join(self.cfg.OUTPUT_DIR, f"{FINAL_CHECKPOINT}.pth")
        if self.start_iter >= self.max_iter and not os.path.isfile(final):
            # Resumed from the checkpoint of the last iteration, the final one having been set
            # aside as damaged: these are the final weights.
            self.checkpointer.save(FINAL_CHECKPOINT)
        super().train()
        return getattr(self, "_last_eval_results", None)
