"""Checkpoints: every process's random state, atomic files, recovery, and weights that must fit."""

import logging
import os
import pickle
import re

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils import comm

from .rng import rng_state, set_rng_state

logger = logging.getLogger(__name__)

# Periodic checkpoints are named model_<7-digit iteration>.pth (Detectron2's PeriodicCheckpointer).
_PERIODIC = re.compile(r"model_(\d{7})\.pth")


# What torch.load and pickle raise on a damaged or foreign file.
READ_ERRORS = (
    OSError,
    RuntimeError,
    EOFError,
    IndexError,
    KeyError,
    ValueError,
    pickle.PickleError,
)


class WeightsError(ValueError):
    """Weights that cannot be used: unreadable, or not fitting the model."""


class WeightsMismatchError(WeightsError):
    """Weights that do not fit the model they are loaded into."""


class TrainingCheckpointer(DetectionCheckpointer):
    """Detectron2's checkpointer for training: with every process's random state, atomic saves,
    and a resume that survives a damaged last checkpoint.

    ``save`` is a collective call: every training process must make it (the trainer registers
    the periodic checkpointer on every rank); only the main process writes. The file is written
    under a temporary name and renamed, so a kill never leaves a truncated checkpoint behind.
    """

    def save(self, name, **kwargs):
        """Save ``<save_dir>/<name>.pth`` with ``rng_states``: one entry per process, by rank."""
        states = comm.all_gather(rng_state())
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs, rng_states=states)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {path}")
        partial = f"{path}.partial"
        with self.path_manager.open(partial, "wb") as f:
            torch.save(data, f)
        os.replace(partial, path)
        self.tag_last_checkpoint(basename)

    def resume_training(self, weights):
        """Resume from the last checkpoint of ``save_dir`` if there is one, else load ``weights``.

        A last checkpoint that is missing or cannot be read (a damaged file) is set aside with a
        warning (renamed to ``*.corrupt``), and the newest readable periodic checkpoint is used
        instead; with none left, training starts from ``weights``.

        Args:
            weights (str): the initial weights (MODEL.WEIGHTS) when there is nothing to resume.

        Returns:
            dict or None: the resumed checkpoint's remaining data (e.g. "iteration",
            "rng_states"); None when training starts from ``weights``.
        """
        while self.has_checkpoint():
            path = self.get_checkpoint_file()
            if not os.path.isfile(path):
                self._fall_back(path, "the file is missing")
                continue
            try:
                return self._loader().load(path)
            except (OSError, EOFError, RuntimeError) as error:
                self._fall_back(path, error)
        self._loader().load(weights, checkpointables=[])
        return None

    def _loader(self):
        """A checkpointer that loads into this one's model and checkpointables.

        Each attempt gets its own: Detectron2 main's checkpointer keeps per-load state that a
        failed load leaves behind, so a second ``load`` on the same object would be refused.
        """
        return DetectionCheckpointer(
            self.model, self.save_dir, save_to_disk=False, **self.checkpointables
        )

    def _fall_back(self, path, problem):
        """Set aside the unusable checkpoint ``path``; point ``last_checkpoint`` at the newest
        other periodic checkpoint, or remove it if there is none."""
        comm.synchronize()  # every process has tried ``path``
        renamed = os.path.isfile(path)
        if comm.is_main_process() and renamed:
            os.replace(path, f"{path}.corrupt")
        comm.synchronize()
        candidates = sorted(name for name in os.listdir(self.save_dir) if _PERIODIC.fullmatch(name))
        logger.warning(
            "checkpoint %s cannot be used (%s)%s; %s",
            path,
            problem,
            f", renamed to {os.path.basename(path)}.corrupt" if renamed else "",
            f"resuming from {candidates[-1]}" if candidates else "training starts over",
        )
        if comm.is_main_process():
            if candidates:
                self.tag_last_checkpoint(candidates[-1])
            else:
                os.remove(os.path.join(self.save_dir, "last_checkpoint"))
        comm.synchronize()


def restore_rank_rng(rng_states):
    """Restore this process's random state from a checkpoint's ``rng_states`` (one per rank).

    With another number of processes than the checkpoint was saved with, each process that has
    an entry takes it, the others keep their seeded state, and one warning says that the random
    stream (and the data order) differ from an uninterrupted run.
    """
    if not rng_states:
        logger.warning("the checkpoint holds no random state: the random stream restarts")
        return
    rank, world_size = comm.get_rank(), comm.get_world_size()
    if len(rng_states) != world_size and comm.is_main_process():
        logger.warning(
            "resuming a run saved by %d processes with %d: the random stream and the data order "
            "differ from an uninterrupted run",
            len(rng_states),
            world_size,
        )
    if rank < len(rng_states):
        set_rng_state(rng_states[rank])


class WeightsCheckpointer(DetectionCheckpointer):
    """Loads the weights of a trained detector, which must fit the model.

    Detectron2 loads what fits and only logs the rest, which is right for initializing a backbone
    but turns a detector evaluated with weights of another architecture into a partly random
    model. Here missing parameters, parameters of another shape and unexpected entries raise
    :class:`WeightsMismatchError`; a missing buffer (e.g. a normalizer that only training uses) is
    logged.
    """

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        parameters = {name for name, _ in self.model.named_parameters()}
        missing = [key for key in incompatible.missing_keys if key in parameters]
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing ({_first(missing)})")
        if incompatible.incorrect_shapes:
            shapes = [
                f"{key}: {tuple(saved)} in the file, {tuple(wanted)} in the model"
                for key, saved, wanted in incompatible.incorrect_shapes
            ]
            problems.append(f"{len(shapes)} of another shape ({_first(shapes)})")
        if incompatible.unexpected_keys:
            problems.append(
                f"{len(incompatible.unexpected_keys)} unexpected "
                f"({_first(incompatible.unexpected_keys)})"
            )
        if problems:
            raise WeightsMismatchError(
                f"the weights in {self._weights_path} do not fit the model built from the config: "
                f"{'; '.join(problems)}. Use the config the weights were trained with (the run's "
                "config.yaml in its output folder), or weights trained for this config."
            )
        return incompatible

    def load(self, path, *args, **kwargs):
        self._weights_path = path
        return super().load(path, *args, **kwargs)

    def _load_file(self, filename):
        try:
            return super()._load_file(filename)
        except READ_ERRORS as error:
            reason = (str(error).strip().splitlines() or [""])[0]
            raise WeightsError(
                f"cannot read the weights in {filename}: the file is damaged or not a checkpoint "
                f"({type(error).__name__}: {reason})"
            ) from error


def load_trained_weights(model, path):
    """Load a trained detector's weights into ``model``.

    Args:
        model (nn.Module): the model built from the config the weights were trained with.
        path (str): a checkpoint (``model_final.pth``) or any file Detectron2 reads.

    Raises:
        WeightsMismatchError: the weights do not fit the model.
        FileNotFoundError: ``path`` does not exist.
    """
    if not path:
        raise WeightsMismatchError("no weights given (MODEL.WEIGHTS is empty)")
    if "://" not in path and not os.path.isfile(path):
        raise FileNotFoundError(f"weights {path} not found")
    WeightsCheckpointer(model).load(path, checkpointables=[])


def _first(items, count=3):
    """The first ``count`` items, comma separated, with "..." when there are more."""
    shown = ", ".join(str(item) for item in items[:count])
    return shown + (", ..." if len(items) > count else "")


def export_weights(source, target, prefix):
    """Write the model entries of checkpoint ``source`` whose names start with ``prefix`` to
    ``target``, a checkpoint Detectron2 reads as initial weights (MODEL.WEIGHTS), atomically.

    E.g. ``prefix="backbone.bottom_up."`` keeps a trained detector's ResNet: a detector started
    from it gets that backbone and freshly initialized FPN and heads.

    Returns:
        int: the number of entries written.

    Raises:
        WeightsError: ``source`` cannot be read, or has no entry with ``prefix``.
    """
    try:
        model = torch.load(source, map_location="cpu", weights_only=True)["model"]
    except (*READ_ERRORS, TypeError) as error:
        raise WeightsError(f"cannot read the weights in {source}: {error}") from error
    kept = {name: value for name, value in model.items() if name.startswith(prefix)}
    if not kept:
        raise WeightsError(f"{source} has no weights named {prefix}*")
    partial = f"{target}.partial"
    torch.save({"model": kept, "__author__": f"{prefix}* of {source}"}, partial)
    os.replace(partial, target)
    return len(kept)
