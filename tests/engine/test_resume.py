"""A run that crashes at any iteration and is resumed gives exactly the uninterrupted run's losses:
the data order (shuffle, epochs, augmentation, with data workers), the optimizer, the random
state and the schedule all continue where the last checkpoint left them."""

import pytest
import torch
from detectron2.engine import HookBase
from tiny_models import SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import FocalEIoUTrainer, build_config

CONFIGS = {
    "retinanet": "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml",
    "faster_rcnn": "configs/quickstart/faster_rcnn_R_18_FPN_shapes_focal_eiou.yaml",
}
MAX_ITER = 9


class Crash(Exception):
    pass


class CrashAt(HookBase):
    """Raises after training iteration ``iteration``, as a killed run stops."""

    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            raise Crash(self.iteration)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """16 training images: batches of 2 over 9 iterations cross an epoch boundary."""
    names = ("resume_train", "resume_val")
    register_shapes(names, MINI_SPEC, str(tmp_path_factory.mktemp("data")))
    return names[0]


def losses(cfg, resume=False, crash_at=None):
    """total_loss per iteration of a training of ``cfg``."""
    torch.manual_seed(0)
    trainer = FocalEIoUTrainer(cfg)
    if crash_at is not None:
        trainer.register_hooks([CrashAt(crash_at)])
    trainer.resume_or_load(resume=resume)
    if crash_at is None:
        trainer.train()
    else:
        with pytest.raises(Crash):
            trainer.train()
    return {iteration: loss for loss, iteration in trainer.storage.history("total_loss").values()}


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_resume_after_a_crash_continues_exactly(architecture, dataset, tmp_path):
    opts = SMOKE_OPTS + [
        "DATASETS.TRAIN", f"('{dataset}',)",
        "DATASETS.TEST", "()",
        "DATALOADER.NUM_WORKERS", "2",
        "SOLVER.MAX_ITER", str(MAX_ITER),
        "SOLVER.CHECKPOINT_PERIOD", "3",
        "SOLVER.STEPS", "(6,)",
    ]  # fmt: skip
    uninterrupted = losses(
        build_config(CONFIGS[architecture], opts, output_dir=str(tmp_path / "a"))
    )
    cfg = build_config(CONFIGS[architecture], opts, output_dir=str(tmp_path / "b"))
    crashed = losses(cfg, crash_at=7)  # the last checkpoint is after iteration 5
    resumed = losses(cfg, resume=True)
    assert sorted(crashed) == list(range(8)) and sorted(resumed) == [6, 7, 8]
    for iteration in range(8):
        assert crashed[iteration] == uninterrupted[iteration]
    for iteration in (6, 7, 8):
        assert resumed[iteration] == uninterrupted[iteration], iteration
