"""What both trainers of this package share: resume exactly where a run stopped."""

import logging
import os

from detectron2.engine import hooks
from detectron2.utils import comm

from focal_eiou_d2.data.train_loader import ResumableTrainLoader

from .consensus import main_decides
from .rng import use_deterministic_mode

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
        restoring this process's random state and per-process buffers; otherwise load the initial
        weights and start at iteration 0. A collective call.

        Before anything runs on the model, this switches to deterministic algorithms if the
        environment asks for it (:func:`~focal_eiou_d2.engine.rng.use_deterministic_mode`).
        """
        use_deterministic_mode()
        if not resume:
            self.checkpointer.load_initial_weights(self.initial_weights)
            return
        checkpoint = self.checkpointer.resume_training(self.initial_weights)
        if checkpoint is not None:
            self.start_iter = self.iter + 1
            self.checkpointer.restore_rank_state(checkpoint)

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
        from its last iteration because the final one was set aside as damaged.

        Whether the final checkpoint exists is decided on the main process: saving is a
        collective call, which every process must make or none.
        """
        if isinstance(self.data_loader, ResumableTrainLoader):
            self.data_loader.start_at(self.start_iter)
        final = os.path.join(self.output_dir, f"{FINAL_CHECKPOINT}.pth")
        if self.start_iter >= self.max_iter and not main_decides(lambda: os.path.isfile(final)):
            self.checkpointer.save(FINAL_CHECKPOINT)


def periodic_checkpointer(checkpointer, period, max_to_keep=None, **kwargs):
    """Detectron2's ``PeriodicCheckpointer`` hook for a :class:`TrainingCheckpointer`, to be
    registered on every process (its saves are collective), pruning on the main process only.

    fvcore's periodic checkpointer deletes the oldest checkpoint beyond ``max_to_keep`` on every
    process that runs it: with several processes they would race to delete one file.

    Args:
        checkpointer (TrainingCheckpointer): the trainer's checkpointer.
        period (int): save every ``period`` iterations.
        max_to_keep (int or None): how many periodic checkpoints the main process keeps.
        kwargs: other arguments of ``PeriodicCheckpointer`` (``max_iter``, ``file_prefix``).
    """
    keep = max_to_keep if comm.is_main_process() else None
    return hooks.PeriodicCheckpointer(checkpointer, period, max_to_keep=keep, **kwargs)
