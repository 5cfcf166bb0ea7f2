"""What both trainers of this package share: resume exactly where a run stopped."""

import logging
import os

from focal_eiou_d2.data.train_loader import ResumableTrainLoader

from .checkpoint import restore_rank_rng

logger = logging.getLogger(__name__)

# The name Detectron2's PeriodicCheckpointer gives the checkpoint after the last iteration.
FINAL_CHECKPOINT = "model_final"


class ExactResumeMixin:
    """Resume and train for a Detectron2 trainer whose resumed runs continue exactly as
    uninterrupted ones would.

    The trainer provides ``checkpointer`` (a ``TrainingCheckpointer``), ``data_loader``,
    ``start_iter``, ``max_iter``, ``iter``, ``initial_weights`` (what a new run starts from) and
    ``output_dir``; its checkpoints hold the random state of every training process and, through
    :meth:`data_order_state`, the seed of the data order, which a :class:`ResumableTrainLoader`
    continues at the resumed iteration.
    """

    def resume_or_load(self, resume=True):
        """Resume from the output folder's last checkpoint (if ``resume`` and there is one),
        restoring this process's random state; otherwise load the initial weights and start at
        iteration 0."""
        if not resume:
            self.checkpointer.load(self.initial_weights, checkpointables=[])
            return
        checkpoint = self.checkpointer.resume_training(self.initial_weights)
        if checkpoint is not None:
            self.start_iter = self.iter + 1
            restore_rank_rng(checkpoint.get("rng_states"))

    def data_order_state(self):
        """The data loader's part of a checkpoint (empty for loaders that cannot resume)."""
        if isinstance(self.data_loader, ResumableTrainLoader):
            return {"data_order": self.data_loader.state_dict()}
        return {}

    def load_data_order_state(self, state_dict):
        if isinstance(self.data_loader, ResumableTrainLoader) and "data_order" in state_dict:
            self.data_loader.load_state_dict(state_dict["data_order"])
        elif self.iter > 0:
            logger.warning(
                "this train loader cannot continue its data order: the resumed run sees other "
                "batches than an uninterrupted one would"
            )

    def prepare_training(self):
        """Point the data loader at ``start_iter``; write the final checkpoint if the run resumed
        from its last iteration because the final one was set aside as damaged."""
        if isinstance(self.data_loader, ResumableTrainLoader):
            self.data_loader.start_at(self.start_iter)
        final = os.path.join(self.output_dir, f"{FINAL_CHECKPOINT}.pth")
        if self.start_iter >= self.max_iter and not os.path.isfile(final):
            self.checkpointer.save(FINAL_CHECKPOINT)
