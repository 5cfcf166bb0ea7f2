"""A box-regression loss of exactly 0 in 20 recorded values in a row is a warning, once per stall,
in both trainers."""

import logging
import re
from types import SimpleNamespace

import pytest
from detectron2.utils.events import EventStorage
from tiny_models import LAZY_SMOKE_OPTS, SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import load_run_config
from focal_eiou_d2.engine.box_loss_stall import BoxLossStallWarning

STALL = re.compile(r"(\w+) has been exactly 0 from iteration (\d+) to (\d+) \(20 values in a row\)")
RETINANET = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
FCOS = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"


def stalls(values, key="loss_box_reg", per_step=1, every=1):
    """(key, first, last iteration) of each stall warning of a hook fed ``values``: one recorded
    every ``every`` iterations, ``per_step`` of them between two steps of the hook (as when
    metrics are written asynchronously), and the hook stepped again with nothing new."""
    hook = BoxLossStallWarning()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("focal_eiou_d2.engine.box_loss_stall")
    logger.addHandler(handler)
    try:
        with EventStorage() as storage:
            hook.trainer = SimpleNamespace(storage=storage)
            for index, value in enumerate(values):
                storage.iter = index * every
                storage.put_scalar(key, value, smoothing_hint=False)
                if (index + 1) % per_step == 0:
                    hook.after_step()
                    hook.after_step()
    finally:
        logger.removeHandler(handler)
    found = [STALL.match(record.getMessage()) for record in records]
    assert all(found)
    return [(match[1], int(match[2]), int(match[3])) for match in found]


def test_warns_once_per_stall():
    assert stalls([0.0] * 19) == []
    assert stalls([0.5] + [0.0] * 45) == [("loss_box_reg", 1, 20)]
    assert stalls([0.0] * 20 + [0.1] + [0.0] * 20) == [
        ("loss_box_reg", 0, 19),
        ("loss_box_reg", 21, 40),
    ]


def test_every_box_loss_is_watched():
    assert stalls([0.0] * 20, key="loss_fcos_loc") == [("loss_fcos_loc", 0, 19)]
    assert stalls([0.0] * 20, key="loss_box_reg_stage2") == [("loss_box_reg_stage2", 0, 19)]
    assert stalls([0.0] * 30, key="loss_cls") == []


def test_every_recorded_value_counts_once():
    assert stalls([0.0] * 19 + [1e-8] + [0.0] * 19, per_step=2) == []
    assert stalls([0.0] * 40, per_step=3) == [("loss_box_reg", 0, 19)]
    assert stalls([0.0] * 20, every=5) == [("loss_box_reg", 0, 95)]


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
    assert "loss_box_reg has been exactly 0 from iteration 0 to 19 (20 values" in caplog.text


def test_the_lazy_trainer_has_the_hook(dataset, tmp_path):
    opts = LAZY_SMOKE_OPTS + ["dataloader.train.dataset.names=stall_train"]
    config = load_run_config(FCOS, opts, output_dir=str(tmp_path))
    assert any(isinstance(hook, BoxLossStallWarning) for hook in config.build_trainer()._hooks)
