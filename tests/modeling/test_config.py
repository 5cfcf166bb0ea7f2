"""Every YAML under configs/ loads and builds; invalid values fail when the model is built."""

import pytest
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from tiny_models import REPO, tiny_cfg

from focal_eiou_d2 import add_focal_eiou_config

CONFIGS = sorted(REPO.glob("configs/**/*.yaml"))


def test_configs_exist():
    names = {path.name for path in CONFIGS}
    for loss in (
        "",
        "_iou",
        "_giou",
        "_ciou",
        "_focal_l1",
        "_eiou",
        "_focal_eiou_v1",
        "_focal_eiou",
    ):
        assert f"retinanet_R_50_FPN_1x{loss}.yaml" in names
    for model in ("faster_rcnn", "mask_rcnn", "retinanet"):
        for backbone in ("R_50", "X_101_32x4d"):
            assert f"{model}_{backbone}_FPN_1x.yaml" in names
            assert f"{model}_{backbone}_FPN_1x_focal_eiou.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_builds(path):
    cfg = get_cfg()
    add_focal_eiou_config(cfg)
    cfg.merge_from_file(str(path))
    assert cfg.VERSION == 2
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            "MODEL.RETINANET.BBOX_REG_LOSS_TYPE",
            "eoiu",
            "MODEL.RETINANET.BBOX_REG_LOSS_TYPE = 'eoiu': unknown box-regression loss 'eoiu'; "
            "valid names: iou, giou",
        ),
        ("MODEL.FOCAL_EIOU.GAMMA", -0.5, "MODEL.FOCAL_EIOU.GAMMA = -0.5: .*gamma must be a finite"),
        (
            "MODEL.FOCAL_EIOU.FOCAL_L1_BETA",
            0.2,
            "MODEL.FOCAL_EIOU.FOCAL_L1_BETA = 0.2: .*beta must lie in \\[1/e, 1\\]",
        ),
        (
            "MODEL.FOCAL_EIOU.BALANCED_L1_GAMMA",
            1000.0,
            "MODEL.FOCAL_EIOU.BALANCED_L1_GAMMA = 1000.0: .*gamma / alpha must be at most",
        ),
        (
            "MODEL.FOCAL_EIOU.DETACH_WEIGHT",
            1,
            "MODEL.FOCAL_EIOU.DETACH_WEIGHT = 1: .*detach_weight must be True or False",
        ),
        ("MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT", -1.0, "BBOX_REG_LOSS_WEIGHT must be finite"),
    ],
)
def test_invalid_values_fail_at_build(key, value, message):
    cfg = tiny_cfg("retinanet")
    node, name = key.rsplit(".", 1)
    parent = cfg
    for part in node.split("."):
        parent = parent[part]
    parent[name] = value
    with pytest.raises(ValueError, match=message):
        build_model(cfg)


@pytest.mark.parametrize("node", ["RPN", "ROI_BOX_HEAD"])
def test_invalid_rcnn_loss_type_fails_at_build(node):
    cfg = tiny_cfg("faster_rcnn")
    cfg.MODEL[node].BBOX_REG_LOSS_TYPE = "focal"
    with pytest.raises(ValueError, match=f"MODEL.{node}.BBOX_REG_LOSS_TYPE = 'focal'"):
        build_model(cfg)


def test_missing_config_keys_are_explained():
    cfg = get_cfg()  # add_focal_eiou_config not called
    cfg.MODEL.META_ARCHITECTURE = "FocalEIoURetinaNet"
    cfg.MODEL.DEVICE = "cpu"
    with pytest.raises(ValueError, match="add_focal_eiou_config"):
        build_model(cfg)
