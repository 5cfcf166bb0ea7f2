"""The narrow ResNet FPN backbones: widths, strides and feature names, and a bad depth."""

import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from tiny_models import tiny_cfg


def narrow_cfg(architecture, depth=18, width=16):
    cfg = tiny_cfg(architecture)
    name = "retinanet_resnet" if architecture == "retinanet" else "resnet"
    cfg.MODEL.BACKBONE.NAME = f"build_narrow_{name}_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = width
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = width
    return cfg


@pytest.mark.parametrize(
    "architecture,levels", [("retinanet", (3, 4, 5, 6, 7)), ("faster_rcnn", (2, 3, 4, 5, 6))]
)
def test_levels_strides_and_widths(architecture, levels):
    cfg = narrow_cfg(architecture, width=16)
    backbone = BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg, ShapeSpec(channels=3))
    assert backbone.bottom_up.output_shape()["res5"].channels == 16 * 8
    features = backbone(torch.zeros(1, 3, 128, 128))
    assert list(features) == [f"p{level}" for level in levels]
    for level in levels:
        assert features[f"p{level}"].shape == (1, 32, 128 >> level, 128 >> level)


def test_resnet34_has_more_blocks_than_resnet18():
    shallow, deep = (narrow_cfg("retinanet", depth) for depth in (18, 34))
    build = BACKBONE_REGISTRY.get(shallow.MODEL.BACKBONE.NAME)
    count = [len(build(cfg, ShapeSpec(channels=3)).bottom_up.res4) for cfg in (shallow, deep)]
    assert count == [2, 6]


def test_unsupported_depth_names_the_key():
    cfg = narrow_cfg("retinanet", depth=50)
    with pytest.raises(ValueError, match="depth 50 is not supported.*18, 34.*MODEL.RESNETS.DEPTH"):
        BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg, ShapeSpec(channels=3))
