"""A training data loader whose batches depend only on the seed and the iteration: exact resume.

Detectron2's training loader draws its shuffle order, its aspect-ratio buckets and its workers'
augmentation seeds from state that a checkpoint does not hold, so after a resume the data order
restarts. Here every batch is a pure function of (seed, rank, number of processes, iteration):

- the shuffle: epoch ``e`` of the global index stream is the permutation
  ``np.random.default_rng([seed, e])``; process ``rank`` of ``world_size`` takes every
  ``world_size``-th element of that stream, starting at ``rank`` (as ``TrainingSampler`` does);
- the batches: this process's stream is grouped by aspect ratio (width > height or not, as
  Detectron2's ``AspectRatioGroupedDataset``) in the main process, from the records' sizes, so
  the grouping of iteration ``k`` is replayed without reading any image;
- the augmentation: before mapping the sample at global stream position ``p``, the random
  generators of Python, NumPy and torch in the worker are seeded with ``(seed, p)``, so it does
  not matter which worker maps it, nor whether the workers were restarted by a resume.

Resuming at iteration ``k`` (:meth:`ResumableTrainLoader.start_at`) replays the grouping up to
``k`` and continues exactly where an uninterrupted run would be. With a different number of
processes than the run was saved with, the stream is a different one (the trainer warns).

An image that cannot be read or does not match its recorded size is reported with its path
(once per worker) and replaced by another sample chosen from the same seed, so training goes on.
"""

import logging
import random

import numpy as np
import torch
from detectron2.data import (
    DatasetFromList,
    DatasetMapper,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.detection_utils import SizeMismatchError
from detectron2.utils import comm

logger = logging.getLogger(__name__)

MAX_REPLACEMENTS = 20
"""Samples tried in place of an unreadable one before training stops with an error."""


def epoch_permutation(seed, epoch, size):
    """Epoch ``epoch`` of the global shuffle: a permutation of ``range(size)`` (np.ndarray)."""
    return np.random.default_rng([seed, epoch]).permutation(size)


def rank_stream(seed, size, rank, world_size):
    """This process's infinite stream of ``(global position, dataset index)`` pairs."""
    position = rank
    while True:
        epoch, offset = divmod(position, size)
        permutation = epoch_permutation(seed, epoch, size)
        while offset < size:
            yield position, int(permutation[offset])
            position += world_size
            offset += world_size
        # ``offset`` ran past this epoch; the next element lies in a later epoch.


def batch_stream(seed, groups, batch_size, rank, world_size):
    """This process's infinite stream of batches, lists of ``(position, index)`` pairs.

    Args:
        seed (int): the shuffle seed.
        groups (np.ndarray[N] of int): the bucket of each record (0: wider than tall, 1:
            otherwise; all 0 to batch in stream order).
        batch_size (int): images per batch of this process.
        rank (int): this process's rank.
        world_size (int): number of processes.
    """
    buckets = ([], [])
    for element in rank_stream(seed, len(groups), rank, world_size):
        bucket = buckets[groups[element[1]]]
        bucket.append(element)
        if len(bucket) == batch_size:
            yield list(bucket)
            bucket.clear()


def seed_sample(seed, position, attempt=0):
    """Seed Python's, NumPy's and torch's generators for one sample (in a data worker)."""
    sequence = np.random.SeedSequence([seed, position, attempt])
    words = sequence.generate_state(2)
    random.seed(int(words[0]))
    np.random.seed(int(words[1]))
    torch.manual_seed(int(words[0]) << 32 | int(words[1]))


class _SeededMapDataset(torch.utils.data.Dataset):
    """Maps ``(position, index)`` keys to training inputs, seeding the generators per sample."""

    def __init__(self, records, mapper, seed):
        self.records = records
        self.mapper = mapper
        self.seed = seed
        self._reported = set()

    def __len__(self):
        return len(self.records)

    def __getitem__(self, key):
        position, index = key
        for attempt in range(MAX_REPLACEMENTS + 1):
            seed_sample(self.seed, position, attempt)
            record = self.records[index]
            try:
                mapped = self.mapper(record)
            except (OSError, SizeMismatchError) as error:
                self._report(record, error)
                mapped = None
            if mapped is not None:
                return mapped
            index = int(np.random.default_rng([self.seed, position, attempt]).integers(len(self)))
        raise RuntimeError(
            f"{MAX_REPLACEMENTS + 1} training images in a row could not be read (see the errors "
            "above): check the dataset's image folder"
        )

    def _report(self, record, error):
        file_name = record.get("file_name", "?")
        if file_name not in self._reported:
            self._reported.add(file_name)
            logger.error("skipped training image %s, it cannot be read: %s", file_name, error)


class ResumableTrainLoader:
    """Infinite iterable of training batches (lists of mapped dicts), resumable at any iteration.

    Iterating creates the underlying ``torch.utils.data.DataLoader`` lazily, at the first batch,
    from the iteration set by :meth:`start_at`; so Detectron2's trainer may call ``iter()`` on it
    before a checkpoint is loaded.
    """

    def __init__(
        self,
        records,
        mapper,
        *,
        images_per_batch,
        seed,
        num_workers=0,
        aspect_ratio_grouping=True,
        rank=0,
        world_size=1,
    ):
        """
        Args:
            records (list[dict]): Detectron2 dataset dicts (with "width" and "height" when
                grouping by aspect ratio).
            mapper (callable): turns one record into a model input (e.g. ``DatasetMapper``); may
                return None to skip a record.
            images_per_batch (int): images per batch of this process.
            seed (int): seed of the shuffle and of every sample's augmentation.
            num_workers (int): data-loading worker processes.
            aspect_ratio_grouping (bool): batch images of the same orientation together.
            rank (int): this process's rank.
            world_size (int): number of training processes.
        """
        if not records:
            raise ValueError("the training dataset is empty")
        self.seed = int(seed)
        self.images_per_batch = images_per_batch
        self.num_workers = num_workers
        self.rank, self.world_size = rank, world_size
        self._groups = (
            np.array([0 if r["width"] > r["height"] else 1 for r in records], dtype=np.int8)
            if aspect_ratio_grouping
            else np.zeros(len(records), dtype=np.int8)
        )
        self._dataset = _SeededMapDataset(DatasetFromList(records, copy=False), mapper, self.seed)
        self._start_iteration = 0

    def start_at(self, iteration):
        """Make the next iteration over the loader begin with the batch of ``iteration``."""
        self._start_iteration = int(iteration)

    def batches(self, start_iteration=0):
        """The batches of ``(position, index)`` keys from ``start_iteration`` on (no image read)."""
        stream = batch_stream(
            self.seed, self._groups, self.images_per_batch, self.rank, self.world_size
        )
        for _ in range(start_iteration):
            next(stream)
        return stream

    def __iter__(self):
        loader = torch.utils.data.DataLoader(
            self._dataset,
            batch_sampler=self.batches(self._start_iteration),
            num_workers=self.num_workers,
            collate_fn=_as_list,
            # Its own generator: drawing the workers' base seed leaves torch's global one alone.
            generator=torch.Generator().manual_seed(self.seed),
        )
        yield from loader

    def state_dict(self):
        """What a checkpoint must hold to continue this data order."""
        return {"seed": self.seed, "world_size": self.world_size}

    def load_state_dict(self, state):
        """Continue the data order of a checkpoint (its seed, e.g. a random one drawn then)."""
        if state["seed"] != self.seed:
            self.seed = int(state["seed"])
            self._dataset.seed = self.seed


def _as_list(batch):
    return batch


def build_train_loader(cfg):
    """The training loader of a Detectron2 config: a :class:`ResumableTrainLoader` for the
    default ``TrainingSampler``, Detectron2's own loader (whose order a resume restarts) for the
    other samplers.

    Uses DATASETS.TRAIN, DATALOADER.{SAMPLER_TRAIN, NUM_WORKERS, ASPECT_RATIO_GROUPING,
    FILTER_EMPTY_ANNOTATIONS}, SOLVER.IMS_PER_BATCH (over all processes) and SEED (a negative
    one draws a seed shared by all processes).
    """
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        logger.info(
            "DATALOADER.SAMPLER_TRAIN = %s: Detectron2's train loader, whose data order restarts "
            "when a run is resumed",
            cfg.DATALOADER.SAMPLER_TRAIN,
        )
        return build_detection_train_loader(cfg)
    world_size = comm.get_world_size()
    if cfg.SOLVER.IMS_PER_BATCH % world_size:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH = {cfg.SOLVER.IMS_PER_BATCH} is not divisible by the "
            f"{world_size} training processes"
        )
    records = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN,
        filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
        min_keypoints=(
            cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
        ),
        proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
    )
    return ResumableTrainLoader(
        records,
        DatasetMapper(cfg, is_train=True),
        images_per_batch=cfg.SOLVER.IMS_PER_BATCH // world_size,
        seed=cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed(),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        rank=comm.get_rank(),
        world_size=world_size,
    )


# The fields of a ``build_detection_train_loader`` node that :func:`build_lazy_train_loader` reads.
LAZY_TRAIN_LOADER_FIELDS = (
    "dataset",
    "mapper",
    "total_batch_size",
    "num_workers",
    "aspect_ratio_grouping",
)


def build_lazy_train_loader(train, seed):
    """The training loader of a LazyConfig's ``dataloader.train`` node.

    A node of Detectron2's ``build_detection_train_loader`` with a ``dataset`` and a ``mapper``
    (its model-zoo form) becomes a :class:`ResumableTrainLoader` over the same records, mapper,
    batch size, workers and grouping; any other node is instantiated as it is (its data order
    restarts when a run is resumed).

    Args:
        train (DictConfig): ``cfg.dataloader.train``.
        seed (int): the seed of the data order (a negative one draws a seed shared by all
            processes).

    Raises:
        ValueError: the node sets a field the resumable loader does not read (Detectron2 main's
            ``build_detection_train_loader`` takes ``**kwargs``, so a misspelt field passes the
            override check).
    """
    from detectron2.config import instantiate

    if train.get("_target_") is not build_detection_train_loader or train.get("sampler"):
        logger.info(
            "dataloader.train is not Detectron2's default loader: its order restarts on resume"
        )
        return instantiate(train)
    unused = sorted(set(train.keys()) - {"_target_", "sampler", *LAZY_TRAIN_LOADER_FIELDS})
    if unused:
        raise ValueError(
            f"dataloader.train.{unused[0]} is not used by the resumable training loader, which "
            f"takes {', '.join(LAZY_TRAIN_LOADER_FIELDS)} (check the spelling, or remove it)"
        )
    world_size = comm.get_world_size()
    if train.total_batch_size % world_size:
        raise ValueError(
            f"dataloader.train.total_batch_size = {train.total_batch_size} is not divisible by "
            f"the {world_size} training processes"
        )
    return ResumableTrainLoader(
        instantiate(train.dataset),
        instantiate(train.mapper),
        images_per_batch=train.total_batch_size // world_size,
        seed=seed if seed >= 0 else comm.shared_random_seed(),
        num_workers=train.get("num_workers", 0),
        aspect_ratio_grouping=train.get("aspect_ratio_grouping", True),
        rank=comm.get_rank(),
        world_size=world_size,
    )
