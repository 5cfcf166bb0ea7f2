"""Detectron2's DefaultTrainer with exact resume (Detectron2 0.6 and main) and COCO evaluation."""

import weakref

from detectron2.engine import DefaultTrainer, hooks

from focal_eiou_d2.data.train_loader import build_train_loader

from .box_loss_stall import BoxLossStallWarning
from .checkpoint import TrainingCheckpointer
from .coco_evaluator import build_coco_evaluator
from .exact_resume import ExactResumeMixin, periodic_checkpointer

# Detectron2's git main checkpoints the optimizer itself (DefaultTrainer.state_dict/load_state_dict
# save and load "_trainer"); 0.6 does not, and this trainer adds it there.
_DETECTRON2_SAVES_OPTIMIZER = "load_state_dict" in vars(DefaultTrainer)


class FocalEIoUTrainer(ExactResumeMixin, DefaultTrainer):
    """DefaultTrainer whose resumed runs continue exactly as uninterrupted ones would.

    A checkpoint holds, beyond Detectron2's model, iteration and scheduler: the optimizer (on
    Detectron2 0.6; main saves it itself), the random state of every training process, and the
    seed of the training data order (see :class:`ExactResumeMixin`). Evaluation uses
    ``COCOEvaluator`` (with the fast C++ COCOeval only where Detectron2's compiled ops exist).
    """

    @property
    def initial_weights(self):
        return self.cfg.MODEL.WEIGHTS

    @property
    def output_dir(self):
        return self.cfg.OUTPUT_DIR

    @classmethod
    def build_train_loader(cls, cfg):
        return build_train_loader(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_coco_evaluator(cfg.OUTPUT_DIR, dataset_name, output_folder)

    def build_hooks(self):
        """Detectron2's hooks, with a :class:`TrainingCheckpointer` saving on every process, and
        a :class:`BoxLossStallWarning`.

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
            checkpointer = periodic_checkpointer(
                self.checkpointer, self.cfg.SOLVER.CHECKPOINT_PERIOD
            )
            hook_list.insert(position, checkpointer)
        return hook_list + [BoxLossStallWarning()]

    def state_dict(self):
        state = super().state_dict()
        if not _DETECTRON2_SAVES_OPTIMIZER:
            state["_trainer"] = self._trainer.state_dict()
        return {**state, **self.data_order_state()}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if not _DETECTRON2_SAVES_OPTIMIZER:
            self._trainer.load_state_dict(state_dict["_trainer"])
        self.load_data_order_state(state_dict)

    def train(self):
        """Train from ``start_iter``, then return the results of the last evaluation.

        Detectron2's ``DefaultTrainer.train`` returns them only when TEST.EXPECTED_RESULTS is set.

        Returns:
            OrderedDict or None: e.g. ``{"bbox": {"AP": ..., ...}}``; None if nothing was evaluated.
        """
        self.prepare_training()
        super().train()
        return getattr(self, "_last_eval_results", None)
