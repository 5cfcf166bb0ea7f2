"""A box-regression loss of exactly 0 for 20 iterations in a row is a warning, once per stall, in
both trainers."""

import logging
from types import SimpleNamespace

import pytest
from detectron2.utils.events import EventStorage
from tiny_models import LAZY_SMOKE_OPTS, SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import load_run_config
from focal_eiou_d2.engine.box_loss_stall import BoxLossStallWarning

STALL = "has been exactly 0 for 20 iterations in a row"
RETINANET = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
FCOS = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"


def warnings_for(values, key="loss_box_reg", repeat_steps=1):
    """The stall warnings of a hook fed ``values``, one per iteration (each step seen
    ``repeat_steps`` times, as when no new value was recorded)."""
    hook = BoxLossStallWarning()
    with EventStorage() as storage:
        hook.trainer = SimpleNamespace(storage=storage)
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logger = logging.getLogger("focal_eiou_d2.engine.box_loss_stall")
        logger.addHandler(handler)
        try:
            for iteration, value in enumerate(values):
                storage.iter = iteration
                storage.put_scalar(key, value, smoothing_hint=False)
                for _ in range(repeat_steps):
                    hook.after_step()
        finally:
            logger.removeHandler(handler)
    return [record.getMessage() for record in records]


def test_warns_once_per_stall():
    assert warnings_for([0.0] * 19) == []
    (message,) = warnings_for([0.5] + [0.0] * 45)
    assert message.startswith("loss_box_reg " + STALL + " (up to iteration 20)")
    assert "docs/losses.md" in message
    assert len(warnings_for([0.0] * 20 + [0.1] + [0.0] * 20)) == 2
    assert len(warnings_for([0.0] * 20, key="loss_fcos_loc")) == 1


def test_a_nonzero_loss_or_no_new_value_is_no_stall():
    assert warnings_for([0.0] * 19 + [1e-8] + [0.0] * 19) == []
    assert warnings_for([0.0] * 10, repeat_steps=3) == []  # 30 steps, 10 values
    assert warnings_for([0.0] * 30, key="loss_cls") == []


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    register_shapes(("stall_train", "stall_val"), MINI_SPEC, str(tmp_path_factory.mktemp("d")))


@pytest.mark.slow
def test_training_with_box_loss_weight_0_warns(dataset, tmp_path, caplog):
    opts = SMOKE_OPTS + [
        "DATASETS.TRAIN", "('stall_train',)",
        "DATASETS.TEST", "()",
        "SOLVER.MAX_ITER", "21",
        "SOLVER.IMS_PER_BATCH", "2",
        "INPUT.MIN_SIZE_TRAIN", "(64,)",
        "INPUT.MAX_SIZE_TRAIN", "64",
        "MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT", "0.0",
    ]  # fmt: skip
    config = load_run_config(RETINANET, opts, output_dir=str(tmp_path))
    trainer = config.build_trainer()
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert ("loss_box_reg " + STALL + " (up to iteration 19)") in caplog.text


def test_the_lazy_trainer_has_the_hook(dataset, tmp_path):
    opts = LAZY_SMOKE_OPTS + ["dataloader.train.dataset.names=stall_train"]
    config = load_run_config(FCOS, opts, output_dir=str(tmp_path))
    assert any(isinstance(hook, BoxLossStallWarning) for hook in config.build_trainer()._hooks)
