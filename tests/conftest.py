"""Fixtures shared by the tests (helpers to import live in tests/tiny_models.py)."""

import pytest

from focal_eiou_d2.data import ShapesSpec, generate_shapes


@pytest.fixture
def event_storage():
    """A Detectron2 EventStorage, which the heads' losses log to."""
    from detectron2.utils.events import EventStorage

    with EventStorage(0) as storage:
        yield storage


@pytest.fixture(scope="session")
def tiny_spec():
    """A dataset small enough to generate in well under a second."""
    return ShapesSpec(train_images=6, val_images=4, image_size=128, seed=3)


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory, tiny_spec):
    """Directory of the generated ``tiny_spec`` dataset; tests must not modify it."""
    return generate_shapes(str(tmp_path_factory.mktemp("shapes") / "tiny"), tiny_spec)
