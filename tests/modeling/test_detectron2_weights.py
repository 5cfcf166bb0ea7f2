"""Weights trained here are Detectron2 weights: plain Detectron2 models of the model zoo's configs
load them and give the same detections, and Detectron2's export traces the trained model."""

import pytest
import torch
from detectron2 import model_zoo
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from focal_eiou_d2 import add_focal_eiou_config
from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer

# The project's training-state buffers: Detectron2 logs them as unused and ignores them.
TRAINING_STATE_BUFFERS = {"loss_normalizer"}

# Small enough to build and run in a second; the same for both models.
SMALL = [
    "MODEL.DEVICE", "cpu",
    "MODEL.WEIGHTS", "",
    "MODEL.RESNETS.DEPTH", "18",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
    "MODEL.FPN.OUT_CHANNELS", "32",
    "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "INPUT.MIN_SIZE_TEST", "0",
]  # fmt: skip

# model zoo config -> the overrides that make it this project's Focal-EIoU model
MODELS = {
    "COCO-Detection/retinanet_R_50_FPN_1x.yaml": [
        "MODEL.META_ARCHITECTURE", "FocalEIoURetinaNet",
        "MODEL.RETINANET.BBOX_REG_LOSS_TYPE", "focal_eiou",
        "MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT", "2.5",
    ],
    "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml": [
        "MODEL.ROI_HEADS.NAME", "FocalEIoUStandardROIHeads",
        "MODEL.PROPOSAL_GENERATOR.NAME", "FocalEIoURPN",
        "MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE", "focal_eiou",
    ],
}  # fmt: skip


def zoo_cfg(config, extra=()):
    cfg = get_cfg()
    add_focal_eiou_config(cfg)  # registers the project's components; upstream ignores the keys
    cfg.merge_from_file(model_zoo.get_config_file(config))
    cfg.merge_from_list(SMALL + list(extra))
    return cfg


def image(seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8, generator=generator)


def train_one_step(model):
    instances = Instances((96, 128))
    instances.gt_boxes = Boxes(torch.tensor([[10.0, 10.0, 60.0, 50.0], [40.0, 30.0, 120.0, 90.0]]))
    instances.gt_classes = torch.tensor([0, 5])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    with EventStorage(0):
        losses = model([{"image": image(0), "instances": instances}])
    sum(losses.values()).backward()
    optimizer.step()


@pytest.fixture(params=list(MODELS), ids=lambda config: config.split("/")[1].split("_R")[0])
def trained(request, tmp_path):
    """(model zoo config, path of a checkpoint of the project's model trained one step)."""
    torch.manual_seed(0)
    model = build_model(zoo_cfg(request.param, MODELS[request.param]))
    train_one_step(model)
    TrainingCheckpointer(model, str(tmp_path)).save("model_final")
    return request.param, tmp_path / "model_final.pth", model.eval()


def test_plain_detectron2_loads_the_weights_and_detects_the_same(trained):
    config, path, ours = trained
    upstream = build_model(zoo_cfg(config)).eval()
    assert type(upstream).__module__.startswith("detectron2.")
    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    incompatible = upstream.load_state_dict(state, strict=False)
    assert incompatible.missing_keys == []
    assert {key.rsplit(".", 1)[-1] for key in incompatible.unexpected_keys} <= (
        TRAINING_STATE_BUFFERS
    )
    DetectionCheckpointer(upstream).load(str(path))  # as a Detectron2 user loads it
    inputs = [{"image": image(seed)} for seed in (1, 2)]
    with torch.no_grad():
        expected, got = ours(inputs), upstream(inputs)
    for mine, theirs in zip(expected, got, strict=True):
        mine, theirs = mine["instances"], theirs["instances"]
        assert len(mine) > 0
        torch.testing.assert_close(theirs.pred_boxes.tensor, mine.pred_boxes.tensor)
        torch.testing.assert_close(theirs.scores, mine.scores)
        assert torch.equal(theirs.pred_classes, mine.pred_classes)


def test_detectron2_export_traces_the_trained_model(trained):
    try:
        from detectron2.export import TracingAdapter
    except ImportError as error:  # 0.6's detectron2.export imports caffe2, which torch dropped
        pytest.skip(f"Detectron2's export does not import here: {error}")
    config, path, ours = trained
    upstream = build_model(zoo_cfg(config)).eval()
    DetectionCheckpointer(upstream).load(str(path))
    inputs = [{"image": image(3).float()}]
    outputs = {}
    for name, model in (("ours", ours), ("upstream", upstream)):
        adapter = TracingAdapter(model, inputs)
        with torch.no_grad():
            traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
            outputs[name] = traced(*adapter.flattened_inputs)
    assert len(outputs["ours"]) == len(outputs["upstream"]) > 0
    for mine, theirs in zip(outputs["ours"], outputs["upstream"], strict=True):
        torch.testing.assert_close(mine, theirs)
