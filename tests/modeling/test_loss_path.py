"""The path from config key to loss stays short: one training step of the quickstart RetinaNet
enters few files of this project outside the backbone."""

import sys
from pathlib import Path

import torch
from detectron2.utils.events import EventStorage
from tiny_models import REPO

from focal_eiou_d2.engine import load_run_config

QUICKSTART = REPO / "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
PACKAGE = REPO / "focal_eiou_d2"
BACKBONE = PACKAGE / "modeling" / "backbone.py"
MOST_FILES = 5


def project_files_entered(step):
    """The files of the package (but the backbone's) in which ``step()`` calls a function."""
    entered = set()

    def profile(frame, event, arg):
        if event == "call":
            path = Path(frame.f_code.co_filename)
            if path.is_relative_to(PACKAGE) and path != BACKBONE:
                entered.add(str(path.relative_to(PACKAGE)))

    sys.setprofile(profile)
    try:
        step()
    finally:
        sys.setprofile(None)
    return sorted(entered)


def test_a_training_step_enters_at_most_five_project_files():
    config = load_run_config(str(QUICKSTART), classes_from="config")
    model = config.build_model().train()
    torch.manual_seed(0)
    boxes = torch.tensor([[20.0, 30.0, 90.0, 100.0], [60.0, 10.0, 120.0, 50.0]])
    batch = [
        {
            "image": torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8),
            "instances": _instances(boxes),
        }
        for _ in range(2)
    ]

    def step():
        with EventStorage(0):
            losses = model(batch)
        sum(losses.values()).backward()

    entered = project_files_entered(step)
    assert "modeling/retinanet.py" in entered and "modeling/box_loss.py" in entered
    assert len(entered) <= MOST_FILES, entered


def _instances(boxes):
    from detectron2.structures import Boxes, Instances

    instances = Instances((128, 128))
    instances.gt_boxes = Boxes(boxes)
    instances.gt_classes = torch.zeros(len(boxes), dtype=torch.int64)
    return instances
