"""A checkpoint saved mid-training and resumed gives the same next-iteration loss."""

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from tiny_models import SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import FocalEIoUTrainer
from focal_eiou_d2.tools.quickstart import build_cfg

CONFIGS = {
    "retinanet": "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml",
    "faster_rcnn": "configs/quickstart/faster_rcnn_R_18_FPN_shapes_focal_eiou.yaml",
}


@pytest.fixture(scope="module")
def one_image_dataset(tmp_path_factory):
    """Every batch is the same image, so the data order cannot differ after a resume."""
    register_shapes(
        ("resume_src_train", "resume_src_val"), MINI_SPEC, str(tmp_path_factory.mktemp("d"))
    )
    record = DatasetCatalog.get("resume_src_train")[0]
    DatasetCatalog.register("resume_one_image", lambda: [dict(record)])
    MetadataCatalog.get("resume_one_image").set(
        thing_classes=MetadataCatalog.get("resume_src_train").thing_classes
    )
    yield "resume_one_image"
    DatasetCatalog.remove("resume_one_image")


def losses_per_iteration(cfg, resume):
    trainer = FocalEIoUTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    history = trainer.storage.history("total_loss").values()
    return {iteration: loss for loss, iteration in history}


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_resumed_training_continues_exactly(architecture, one_image_dataset, tmp_path):
    opts = SMOKE_OPTS + [
        "DATASETS.TRAIN", f"('{one_image_dataset}',)",
        "DATASETS.TEST", "()",
        "INPUT.RANDOM_FLIP", "none",
        "SOLVER.MAX_ITER", "4",
        "SOLVER.CHECKPOINT_PERIOD", "2",
        "SOLVER.STEPS", "(3,)",
    ]  # fmt: skip
    cfg = build_cfg(CONFIGS[architecture], opts, output_dir=str(tmp_path))
    uninterrupted = losses_per_iteration(cfg, resume=False)
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")  # saved after iteration 1
    resumed = losses_per_iteration(cfg, resume=True)
    assert sorted(resumed) == [2, 3]
    for iteration in (2, 3):
        torch.testing.assert_close(resumed[iteration], uninterrupted[iteration], rtol=1e-5, atol=0)
