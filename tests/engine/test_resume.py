"""A run that crashes at any iteration and is resumed gives exactly the uninterrupted run's losses:
the data order (shuffle, epochs, augmentation, with data workers), the optimizer, the random
state and the schedule all continue where the last checkpoint left them. For both trainers: YAML
configs (RetinaNet, Faster R-CNN) and LazyConfig (FCOS)."""

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import HookBase
from tiny_models import LAZY_SMOKE_OPTS, SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import load_run_config

MAX_ITER = 9
CONFIGS = {
    "retinanet": (
        "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml",
        SMOKE_OPTS + [
            "DATASETS.TRAIN", "('resume_train',)",
            "DATASETS.TEST", "()",
            "DATALOADER.NUM_WORKERS", "2",
            "SOLVER.MAX_ITER", str(MAX_ITER),
            "SOLVER.CHECKPOINT_PERIOD", "3",
            "SOLVER.STEPS", "(6,)",
        ],
    ),
    "fcos": (
        "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py",
        LAZY_SMOKE_OPTS + [
            "dataloader.train.dataset.names=resume_train",
            "dataloader.train.num_workers=2",
            f"train.max_iter={MAX_ITER}",
            "train.checkpointer.period=3",
            "lr_multiplier.scheduler.values=[1.0,0.1]",
            "lr_multiplier.scheduler.milestones=[600]",  # at 6 / 9 of the run
            "lr_multiplier.scheduler.num_updates=900",
            "train.eval_period=0",
        ],
    ),
}  # fmt: skip
CONFIGS["faster_rcnn"] = (
    "configs/quickstart/faster_rcnn_R_18_FPN_shapes_focal_eiou.yaml",
    CONFIGS["retinanet"][1],
)


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
    register_shapes(("resume_train", "resume_val"), MINI_SPEC, str(tmp_path_factory.mktemp("d")))
    DatasetCatalog.get("shapes_mini_val")  # FCOS evaluates on it after its last iteration


def losses(config, resume=False, crash_at=None):
    """total_loss per iteration of a training of ``config``."""
    torch.manual_seed(0)
    trainer = config.build_trainer()
    if crash_at is not None:
        trainer.register_hooks([CrashAt(crash_at)])
    trainer.resume_or_load(resume=resume)
    if crash_at is None:
        trainer.train()
    else:
        with pytest.raises(Crash):
            trainer.train()
    return {iteration: loss for loss, iteration in trainer.storage.history("total_loss").values()}


@pytest.mark.slow
@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_resume_after_a_crash_continues_exactly(architecture, dataset, tmp_path):
    config_file, opts = CONFIGS[architecture]
    uninterrupted = losses(load_run_config(config_file, opts, output_dir=str(tmp_path / "a")))
    config = load_run_config(config_file, opts, output_dir=str(tmp_path / "b"))
    crashed = losses(config, crash_at=7)  # the last checkpoint is after iteration 5
    resumed = losses(config, resume=True)
    assert sorted(crashed) == list(range(8)) and sorted(resumed) == [6, 7, 8]
    for iteration in range(8):
        assert crashed[iteration] == uninterrupted[iteration]
    for iteration in (6, 7, 8):
        assert resumed[iteration] == uninterrupted[iteration], iteration
