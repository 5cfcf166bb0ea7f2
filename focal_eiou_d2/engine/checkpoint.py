"""Checkpoints: every process's random state, atomic files, recovery, weights that must fit, and
``.pkl`` weights read without running code."""

import functools
import importlib
import logging
import os
import pickle
import re

import numpy
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

from .consensus import describe_failures, main_decides, on_every_process
from .rng import rng_state, set_rng_state
from .run_dir import OutputDirError

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


# The globals a .pkl of Detectron2's model zoo or of the ImageNet backbones it starts from holds:
# numpy arrays, their dtypes and numpy scalars (numpy 2 moved numpy.core to numpy._core), ordered
# dicts, and _codecs.encode, with which Python 3 writes bytes (an array's data) in protocol 2.
_NUMPY_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_PKL_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *((module, name) for module in _NUMPY_MULTIARRAY for name in ("_reconstruct", "scalar")),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}


class _RefusedGlobal(pickle.UnpicklingError):
    """A .pkl names a global outside :data:`_PKL_GLOBALS`."""


class _WeightsUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, strings, numbers, ordered dicts and
    numpy arrays, dtypes and scalars: a crafted file cannot call anything else."""

    def find_class(self, module, name):
        if (module, name) not in _PKL_GLOBALS:
            raise _RefusedGlobal(f"{module}.{name}")
        if module in _NUMPY_MULTIARRAY:  # the name this numpy version has
            module = _NUMPY_MULTIARRAY[int(numpy.__version__.split(".")[0]) >= 2]
        return getattr(importlib.import_module(module), name)


def load_pkl_weights(path):
    """Read a ``.pkl`` of weights (Detectron2's model zoo, Detectron's, an ImageNet backbone) as
    Detectron2's checkpointer does, without unpickling anything but data.

    Args:
        path (str): a local ``.pkl`` file.

    Returns:
        dict: ``{"model": {name: array}, "__author__": ..., ...}``: the file's own dict when it
        has "model" and "__author__" (Detectron2's model zoo), else its ``blobs`` (or the whole
        file) without the ``*_momentum`` entries, marked ``"__author__": "Caffe2"`` with
        ``"matching_heuristics": True``, which makes Detectron2 convert the names.

    Raises:
        WeightsError: the file names a global other than those of numpy arrays and ordered dicts
            (a crafted file: nothing of it has run), or is not a dict of weights.
    """
    try:
        with open(path, "rb") as f:
            data = _WeightsUnpickler(f, encoding="latin1").load()
    except _RefusedGlobal as refused:
        raise WeightsError(
            f"refusing to read the weights in {path}: the file names the global {refused}, which "
            "weights never hold (only numpy arrays, dtypes, scalars and ordered dicts); it may "
            "have been crafted to run code. Use weights from a source you trust."
        ) from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path} holds a {type(data).__name__}, not a dict of weights")
    if "model" in data and "__author__" in data:
        return data
    blobs = data.get("blobs", data)
    if not isinstance(blobs, dict):
        raise WeightsError(f"the blobs in {path} are a {type(blobs).__name__}, not a dict")
    weights = {key: value for key, value in blobs.items() if not key.endswith("_momentum")}
    return {"model": weights, "__author__": "Caffe2", "matching_heuristics": True}


class SafeCheckpointer(DetectionCheckpointer):
    """Detectron2's checkpointer, reading weights without running code from them.

    Detectron2 unpickles ``.pkl`` files with ``pickle``, so a crafted file runs its code: here
    :func:`load_pkl_weights` reads them. ``.pth`` files are read by ``torch.load`` with
    ``weights_only=True`` (PyTorch's default from 2.6 on, set here for 2.5 too), which builds
    tensors and containers only.
    """

    def _load_file(self, filename):
        if filename.endswith(".pkl"):
            data = load_pkl_weights(filename)
            self.logger.info(f"Reading a file from '{data['__author__']}'")
            return data
        if filename.endswith(".pyth"):  # pycls: Detectron2 converts it
            return super()._load_file(filename)
        with self.path_manager.open(filename, "rb") as f:
            loaded = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        return loaded if "model" in loaded else {"model": loaded}


class TrainingCheckpointer(SafeCheckpointer):
    """Detectron2's checkpointer for training: with every process's random state, atomic saves,
    and a resume that survives a damaged last checkpoint.

    ``save`` is a collective call: every training process must make it (the trainer registers
    the periodic checkpointer on every rank); only the main process writes. The file is written
    under a temporary name and renamed, so a kill never leaves a truncated checkpoint behind.
    ``resume_training`` and ``load_initial_weights`` are collective too: what they decide from the
    filesystem is decided on the main process, and a file that some processes can read and others
    cannot is an error on every process, never a hang.
    """

    def save(self, name, **kwargs):
        """Save ``<save_dir>/<name>.pth`` with ``rng_states`` and, when several processes train,
        ``rank_buffers`` (:func:`rank_buffers`): one entry per process, by rank."""
        buffers = rank_buffers(self.model) if comm.get_world_size() > 1 else None
        gathered = comm.all_gather((rng_state(), buffers))
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs, rng_states=[states for states, _ in gathered])
        if buffers is not None:
            data["rank_buffers"] = [buffers for _, buffers in gathered]
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

        A last checkpoint that is missing or that no process can read (a damaged file) is set
        aside with a warning (renamed to ``*.corrupt``), and the newest periodic checkpoint is
        used instead; with none left, training starts from ``weights``. Which checkpoint is
        tried, and whether it is missing, is decided on the main process.

        Args:
            weights (str): the initial weights (MODEL.WEIGHTS) when there is nothing to resume.

        Returns:
            dict or None: the resumed checkpoint's remaining data (e.g. "iteration",
            "rng_states"); None when training starts from ``weights``.

        Raises:
            OutputDirError: some processes read the checkpoint and others cannot (an output
                folder that the machines do not see alike).
        """
        while True:
            path, problem = main_decides(self._last_checkpoint)
            if path is None:
                break
            if problem is None:
                load = functools.partial(self._loader().load, path)
                checkpoint, _, failures = on_every_process(load, _CHECKPOINT_READ_ERRORS)
                if not failures:
                    return checkpoint
                if len(failures) < comm.get_world_size():
                    raise OutputDirError(
                        f"checkpoint {path} can be read by some training processes but not by "
                        f"{describe_failures(failures)}. The output folder must be on a filesystem "
                        "that every machine sees alike."
                    )
                problem = failures[0][2]
            self._fall_back(path, problem)
        self.load_initial_weights(weights)
        return None

    def load_initial_weights(self, weights):
        """Load the initial weights (MODEL.WEIGHTS) into the model, leniently as Detectron2 does.

        Raises:
            the loading error, on the processes where it failed; WeightsError naming those
            processes on the others, so that no process goes on to wait for them.
        """
        _, error, failures = on_every_process(
            lambda: self._loader().load(weights, checkpointables=[]), Exception
        )
        if error is not None:
            raise error
        if failures:
            raise WeightsError(
                f"cannot load the initial weights {weights} on {describe_failures(failures)}"
            )

    def restore_rank_state(self, checkpoint):
        """Restore this process's random state and per-process buffers from a resumed
        ``checkpoint`` (see :func:`restore_rank_rng`)."""
        restore_rank_rng(checkpoint.get("rng_states"))
        saved = checkpoint.get("rank_buffers")
        if saved and comm.get_rank() < len(saved):
            load_rank_buffers(self.model, saved[comm.get_rank()])

    def _last_checkpoint(self):
        """``(path, problem)`` of the last checkpoint: ``(None, None)`` when there is none,
        problem "the file is missing" when ``last_checkpoint`` names an absent file."""
        if not self.has_checkpoint():
            return None, None
        path = self.get_checkpoint_file()
        return path, None if os.path.isfile(path) else "the file is missing"

    def _loader(self):
        """A checkpointer that loads into this one's model and checkpointables.

        Each attempt gets its own: Detectron2 main's checkpointer keeps per-load state that a
        failed load leaves behind, so a second ``load`` on the same object would be refused.
        """
        return SafeCheckpointer(
            self.model, self.save_dir, save_to_disk=False, **self.checkpointables
        )

    def _fall_back(self, path, problem):
        """Set aside the unusable checkpoint ``path``; point ``last_checkpoint`` at the newest
        other periodic checkpoint, or remove it if there is none (on the main process; the
        others wait for it)."""
        renamed, candidates = main_decides(lambda: self._set_aside(path))
        logger.warning(
            "checkpoint %s cannot be used (%s)%s; %s",
            path,
            problem,
            f", renamed to {os.path.basename(path)}.corrupt" if renamed else "",
            f"resuming from {candidates[-1]}" if candidates else "training starts over",
        )

    def _set_aside(self, path):
        """Rename ``path`` to ``*.corrupt`` if it exists and retag ``last_checkpoint``.

        Returns:
            tuple: whether ``path`` was renamed, and the remaining periodic checkpoints, sorted.
        """
        renamed = os.path.isfile(path)
        if renamed:
            os.replace(path, f"{path}.corrupt")
        candidates = sorted(name for name in os.listdir(self.save_dir) if _PERIODIC.fullmatch(name))
        if candidates:
            self.tag_last_checkpoint(candidates[-1])
        else:
            os.remove(os.path.join(self.save_dir, "last_checkpoint"))
        return renamed, candidates


def rank_buffers(model):
    """This process's values of the model's buffers that a checkpoint holds, by name (on the CPU).

    DDP does not broadcast buffers in Detectron2's detectors (``broadcast_buffers=False``): each
    process updates its own from its own batches (RetinaNet's and FCOS's ``loss_normalizer``, the
    running statistics of BatchNorm), so they differ between processes while the weights do not.
    """
    model = _unwrapped(model)
    saved = model.state_dict(keep_vars=True)
    return {
        name: buffer.detach().cpu().clone()
        for name, buffer in model.named_buffers()
        if name in saved
    }


def load_rank_buffers(model, saved):
    """Set the model's buffers to ``saved``, a :func:`rank_buffers` result of this rank."""
    buffers = dict(_unwrapped(model).named_buffers())
    with torch.no_grad():
        for name, value in saved.items():
            if name in buffers:
                buffers[name].copy_(value)


def _unwrapped(model):
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


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


# What a damaged checkpoint, or one a process cannot see, raises when loaded.
_CHECKPOINT_READ_ERRORS = (OSError, EOFError, RuntimeError, AssertionError, pickle.PickleError)


class WeightsCheckpointer(SafeCheckpointer):
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
        except WeightsError:
            raise
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
