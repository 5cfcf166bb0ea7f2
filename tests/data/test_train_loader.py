"""The training loader: every batch is a function of (seed, rank, processes, iteration), epochs are
permutations, ranks split the stream, aspect-ratio groups stay apart, and a corrupt image is
reported with its path and replaced."""

import itertools
import logging

import numpy as np
import pytest
from detectron2.data import DatasetCatalog

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.data.train_loader import ResumableTrainLoader, batch_stream, rank_stream


def test_each_epoch_is_a_permutation_and_ranks_split_the_stream():
    size, world = 10, 2
    streams = [list(itertools.islice(rank_stream(3, size, rank, world), 15)) for rank in range(2)]
    positions = sorted(position for stream in streams for position, _ in stream)
    assert positions == list(range(30))  # every position exactly once, across the two ranks
    by_position = dict(pair for stream in streams for pair in stream)
    for epoch in range(3):
        assert sorted(by_position[epoch * size + i] for i in range(size)) == list(range(size))
    other_seed = list(itertools.islice(rank_stream(4, size, 0, world), 15))
    assert other_seed != streams[0]


def test_batches_group_by_orientation_and_resume_at_any_iteration():
    groups = np.array([0, 1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=np.int8)
    batches = list(itertools.islice(batch_stream(5, groups, 2, 0, 1), 12))
    for batch in batches:
        assert len({groups[index] for _, index in batch}) == 1
    for start in (0, 3, 7):
        resumed = list(itertools.islice(batch_stream(5, groups, 2, 0, 1), start, 12))
        assert resumed == batches[start:]


def mapper_returning(records_seen):
    def mapper(record):
        records_seen.append(record["file_name"])
        if record["file_name"].endswith("000002.png"):
            raise OSError("image file is truncated (2 bytes not processed)")
        return {"file_name": record["file_name"], "draw": np.random.rand()}

    return mapper


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    register_shapes(("loader_train", "loader_val"), MINI_SPEC, str(tmp_path_factory.mktemp("d")))
    return DatasetCatalog.get("loader_train")


def first_batches(records, start, count, seen):
    loader = ResumableTrainLoader(
        records, mapper_returning(seen), images_per_batch=4, seed=11, num_workers=0
    )
    loader.start_at(start)
    return list(itertools.islice(iter(loader), count))


def test_augmentation_draws_depend_on_the_sample_position_only(records):
    full = first_batches(records, 0, 6, [])
    resumed = first_batches(records, 4, 2, [])
    assert resumed == full[4:]  # same images and the same random draws after a resume


def test_a_corrupt_image_is_reported_with_its_path_and_replaced(records, caplog):
    seen = []
    with caplog.at_level(logging.ERROR):
        batches = first_batches(records, 0, 8, seen)  # 32 samples: two epochs of 16 images
    assert all(len(batch) == 4 for batch in batches)
    assert not any(item["file_name"].endswith("000002.png") for b in batches for item in b)
    assert sum(name.endswith("000002.png") for name in seen) == 2  # read once per epoch
    messages = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(messages) == 1 and "000002.png" in messages[0] and "truncated" in messages[0]
