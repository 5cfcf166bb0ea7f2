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
        ("MODEL.FOCAL_EIOU.FOCAL_GAMMA", -1.0, "FOCAL_GAMMA = -1.0: gamma must be a finite"),
        ("MODEL.FOCAL_EIOU.SIOU_THETA", 0.5, "SIOU_THETA = 0.5: .*theta must be a finite"),
        ("MODEL.FOCAL_EIOU.SHAPE_IOU_SCALE", -1.0, "SHAPE_IOU_SCALE = -1.0: .*scale must be"),
        ("MODEL.FOCAL_EIOU.WIOU_ALPHA", 0.0, "WIOU_ALPHA = 0.0: .*alpha must be a finite"),
        ("MODEL.FOCAL_EIOU.WIOU_DELTA", -3.0, "WIOU_DELTA = -3.0: .*delta must be a finite"),
        ("MODEL.FOCAL_EIOU.WIOU_MOMENTUM", 1.5, "WIOU_MOMENTUM = 1.5: must be a number in"),
        ("MODEL.FOCAL_EIOU.WIOU_MOMENTUM", None, "WIOU_MOMENTUM = None: must be a number in"),
        ("MODEL.FOCAL_EIOU.ALPHA_IOU_ALPHA", 0.0, "ALPHA_IOU_ALPHA = 0.0: .*alpha must be"),
        ("MODEL.FOCAL_EIOU.INNER_IOU_RATIO", 0.0, "INNER_IOU_RATIO = 0.0: .*ratio must be"),
        ("MODEL.FOCAL_EIOU.INNER_IOU_BASE", "l1", "INNER_IOU_BASE = 'l1': .*base must be one of"),
        ("MODEL.FOCAL_EIOU.NWD_CONSTANT", 0.0, "NWD_CONSTANT = 0.0: .*constant must be"),
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


@pytest.mark.parametrize(
    "key, value, param, expected",
    [
        ("SIOU_THETA", 2.0, "theta", 2.0),
        ("FOCAL_GAMMA", 0.5, "gamma", 0.5),
        ("INNER_IOU_BASE", "siou", "base", "siou"),
    ],
)
def test_zoo_keys_reach_the_loss(key, value, param, expected):
    loss_type = {"SIOU_THETA": "shape_iou", "FOCAL_GAMMA": "mpdiou"}.get(key, "inner_iou")
    cfg = tiny_cfg("retinanet", loss_type)
    cfg.MODEL.FOCAL_EIOU[key] = value
    assert build_model(cfg).box_loss.params[param] == expected


def test_wiou_v3_momentum_key_overrides_the_paper_rule():
    from focal_eiou_d2.layers import wiou_momentum

    cfg = tiny_cfg("retinanet", "wiou_v3")
    assert build_model(cfg).box_loss.momentum == wiou_momentum(cfg.SOLVER.MAX_ITER)
    cfg.MODEL.FOCAL_EIOU.WIOU_MOMENTUM = 0.25
    assert build_model(cfg).box_loss.momentum == 0.25
